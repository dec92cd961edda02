"""The gate of repeated-CV runs: no test rows to score, so champion and challenger are compared on the outer
folds they share.

A repeated-CV run's frozen model was refitted on all rows, so no row is a held-out row for it: scoring
it on "test rows" would pretend. What the run does have is its metrics on each of the R x K outer folds
(``scores/rcv_folds.csv``). When the champion is a repeated-CV run on the same folds (data fingerprint,
evaluation seed, repeats, folds and every fold's sizes), the gate is the paired corrected resampled t of
the per-fold differences (``imblab.metrics.resampled.paired_corrected_t``). A holdout champion, or one
on other folds, cannot be paired: promote refuses and says what to do; ``--force`` compares the two runs'
logged estimates unpaired (recorded as not comparable).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd
from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from imblab.metrics.names import QUALITY_METRICS
from imblab.metrics.ranking import REPEATED_CV, protocol_of
from imblab.metrics.resampled import PairedTest, paired_corrected_t
from imblab.registry.gate import SUMMARY_METRICS, GateRows, run_header
from imblab.registry.versions import parse_registered_uri, training_run
from imblab.tracking.artifacts import read_rcv_folds
from imblab.tracking.evaluation import fold_differences
from imblab.tracking.layout import WORKLOAD_BINARY


@dataclass
class FoldGateData:
    """The challenger run and its model URI; the fold tables of the runs met so far, by model URI."""

    client: MlflowClient
    run: Run
    model_uri: str
    folds: dict[str, pd.DataFrame] = field(default_factory=dict)

    def run_of(self, model_uri: str) -> Run:
        """The training run behind a model URI (the challenger's, or a registered version's)."""
        if model_uri == self.model_uri:
            return self.run
        return training_run(self.client, parse_registered_uri(self.client, model_uri).run_id)

    def folds_of(self, model_uri: str) -> pd.DataFrame:
        if model_uri not in self.folds:
            self.folds[model_uri] = read_rcv_folds(self.run_of(model_uri))
        return self.folds[model_uri]


def estimates(model_uri: str, data: FoldGateData) -> dict[str, float]:
    """The model's logged estimate of every metric: ``rcv_<m>`` of a repeated-CV run (the mean over its
    outer folds), ``test_<m>`` of a holdout run (compared only under --force)."""
    run = data.run_of(model_uri)
    prefix = "rcv" if protocol_of(run.data.tags) == REPEATED_CV else "test"
    return {m: float(run.data.metrics.get(f"{prefix}_{m}", math.nan)) for m in QUALITY_METRICS}


def pair(challenger_uri: str, champion_uri: str, base: str, data: FoldGateData) -> PairedTest:
    """Challenger minus champion in ``base``, fold by fold, with the corrected resampled t interval."""
    mine, theirs = data.folds_of(challenger_uri), data.folds_of(champion_uri)
    level = float(data.run.data.params.get("evaluation.level", 0.95))
    return paired_corrected_t(mine[base], theirs[base], mine["n_train"], mine["n_test"], level)


def fold_problem(champion_run: Run, data: FoldGateData) -> str | None:
    """Why the champion cannot be paired fold by fold with the challenger; None when it can."""
    if protocol_of(champion_run.data.tags) != REPEATED_CV:
        return "it was evaluated on a holdout split (a test set, no outer folds)"
    ours = data.folds_of(data.model_uri)
    theirs = read_rcv_folds(champion_run)
    diffs = fold_differences(
        (data.run.data.tags, data.run.data.params, ours),
        (champion_run.data.tags, champion_run.data.params, theirs),
    )
    return f"its outer folds differ ({'; '.join(diffs)})" if diffs else None


def fold_refusal(run_id: str) -> Callable[[str, str], str]:
    """The error message when the champion cannot be paired with repeated-CV run ``run_id``."""

    def message(problem: str, version: str) -> str:
        return (
            f"champion version {version} cannot be compared with repeated-CV run {run_id} fold by fold: "
            f"{problem}. A repeated-CV model was refitted on all rows, so it has no test rows to be scored "
            "on; the only honest gate is a paired one on the same outer folds. Retrain one of them under "
            "the other's protocol (the champion's variant with evaluation=repeated_cv and the same "
            "evaluation.seed, repeats and folds, or this variant with evaluation=holdout), promote under "
            "another --name, or pass --force to compare their logged estimates unpaired (recorded)"
        )

    return message


def fold_rows(client: MlflowClient, run: Run, model_uri: str) -> GateRows:
    """The gate's side for a binary repeated-CV run: its outer folds."""
    data = FoldGateData(client, run, model_uri)
    folds = data.folds_of(model_uri)
    p, tags = run.data.params, run.data.tags
    settings = {k: tags.get(k, "?") for k in ("sampler", "model", "threshold_policy", "threshold", "data")}
    settings["evaluation"] = (
        f"repeated_cv {p.get('evaluation.repeats', '?')}x{p.get('evaluation.folds', '?')}"
    )
    io = (
        f"Data fingerprint {tags.get('data_fingerprint', '?')}; refitted on all rows. Input: one row per "
        "item with the model's feature columns; output: decision, probability (params: threshold)."
    )
    label = f"outer folds (evaluation.seed {p.get('evaluation.seed', '?')})"
    return GateRows(
        WORKLOAD_BINARY,
        len(folds),
        label,
        SUMMARY_METRICS,
        run_header(WORKLOAD_BINARY, run.info.run_id, str(run.info.run_name), settings, io),
        data,
        estimates,
        fold_problem,
        pair=pair,
        refusal=fold_refusal(run.info.run_id),
        gate_prefix="rcv",
    )
