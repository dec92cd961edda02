"""A sweep's runs side by side: their stored scores, with bootstrap CIs and a paired comparison.

Every run of a sweep is scored on the same test rows, so the rows are resampled *once* and the same
resamples are reused for every variant (``imblab.metrics.bootstrap`` describes the scheme): the
fraction of resamples in which a variant beats the best run says whether a gap is more than noise.

A sweep that is still running is compared only on request (``partial``); one that ended before every
job finished is compared, marked incomplete, with its unfinished job runs listed. Comparing every run
of an experiment keeps the newest run of each variant (``imblab.report.variants``), so a rerun sweep
does not show each variant twice.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from mlflow.entities import Run
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from numpy.typing import NDArray

from imblab.errors import ImblabError
from imblab.metrics.bootstrap import (
    index_chunks,
    paired_stats,
    percentile_ci,
    resample_weights,
    weighted_metrics,
)
from imblab.metrics.costs import Costs
from imblab.metrics.names import LOWER_IS_BETTER, bootstrap_metric
from imblab.report.variants import labels, newest_per_variant
from imblab.tracking.artifacts import read_scores, read_threshold
from imblab.tracking.layout import ROLE_RUN, ROLE_SWEEP, TAG_DATA_FINGERPRINT, TAG_ROLE, TAG_SWEEP
from imblab.tracking.store import client_for, find_experiment
from imblab.tracking.sweeps import SweepProgress, sweep_progress

log = logging.getLogger(__name__)

# Shown in the tables besides the ranking metric (which always comes first).
DEFAULT_METRICS: tuple[str, ...] = (
    "pr_auc",
    "roc_auc",
    "recall",
    "precision",
    "f1",
    "mcc",
    "expected_cost",
    "net_saving",
)
SPLIT_PARAMS = ("split.kind", "split.test_size", "split.seed")
ALL_RUNS = "all"
_MAX_CELLS = 4_000_000  # resamples x rows held in memory at once (32 MB of float64 weights)


# --------------------------------------------------------------------------------------------------
# Loading a sweep from MLflow
# --------------------------------------------------------------------------------------------------


@dataclass
class RunScores:
    """One training run with the stored scores the comparison is computed from."""

    run_id: str
    run_name: str
    label: str  # "sampler × model × policy", unique within a sweep
    tags: dict[str, str]
    params: dict[str, str]
    metrics: dict[str, float]  # as logged in MLflow (cv_*, test_*)
    threshold: float  # the frozen decision threshold
    costs: Costs  # the costs this run reports expected cost / net saving under
    oof: pd.DataFrame  # out-of-fold training scores: row, fold, y_true, score
    test: pd.DataFrame  # test scores: row, y_true, score, decision

    @property
    def sampler(self) -> str:
        return self.tags.get("sampler", "?")

    @property
    def model(self) -> str:
        return self.tags.get("model", "?")

    @property
    def policy(self) -> str:
        return self.tags.get("threshold_policy", "?")


@dataclass
class Sweep:
    """The runs compared: the finished children of one sweep, or all finished runs of an experiment."""

    experiment: str
    experiment_id: str
    sweep_id: str | None  # the parent run id; None when comparing all runs of the experiment
    tracking_uri: str
    runs: list[RunScores]
    progress: SweepProgress | None = None  # how far the sweep got; None when comparing all runs
    reruns_left_out: int = 0  # older runs of a variant that was run again

    @property
    def name(self) -> str:
        return f"{self.experiment}-{self.sweep_id or ALL_RUNS}"

    @property
    def state(self) -> str:
        """'complete'; 'partial' (still running: the runs finished so far); 'incomplete' (it ended
        before every job finished); 'all runs' when comparing the experiment's finished runs."""
        if self.progress is None:
            return "all runs"
        if self.progress.complete:
            return "complete"
        return "partial" if self.progress.running else "incomplete"

    @property
    def y_test(self) -> NDArray[np.int64]:
        return self.runs[0].test["y_true"].to_numpy(dtype=np.int64)

    def run(self, run_id: str) -> RunScores:
        return next(r for r in self.runs if r.run_id == run_id)


def latest_sweep_id(client: MlflowClient, experiment_id: str) -> str | None:
    """The most recently started sweep parent run of the experiment, if any."""
    parents = client.search_runs(
        [experiment_id],
        f"tags.`{TAG_ROLE}` = '{ROLE_SWEEP}'",
        max_results=1,
        order_by=["attributes.start_time DESC"],
    )
    return parents[0].info.run_id if parents else None


def _sweep_parent(client: MlflowClient, sweep_id: str) -> Run:
    try:
        parent = client.get_run(sweep_id)
    except MlflowException as exc:
        raise ImblabError(
            f"no run {sweep_id!r} in the tracking store: {exc.message}. "
            "Pass the parent run id of a sweep (see `imblab runs`, column sweep_id)"
        ) from None
    role = parent.data.tags.get(TAG_ROLE)
    if role != ROLE_SWEEP:
        hint = f" it belongs to sweep {parent.data.tags[TAG_SWEEP]}." if TAG_SWEEP in parent.data.tags else ""
        raise ImblabError(
            f"run {sweep_id} is not a sweep parent ({TAG_ROLE}={role!r});{hint} "
            "Pass the parent run id of an `imblab train -m` sweep, or --sweep all"
        )
    return parent


def _load_run(run: Run, label: str) -> RunScores:
    oof, test = read_scores(run)
    costs = read_threshold(run).get("costs", {})
    metrics = dict(run.data.metrics)
    # The logged metric keeps full float precision; the tag is a 6-digit rendering of it.
    threshold = metrics.get("test_threshold", float(run.data.tags.get("threshold", "nan")))
    if math.isnan(threshold):
        raise ImblabError(f"run {run.info.run_id} has no test_threshold metric nor threshold tag; re-run it")
    return RunScores(
        run_id=run.info.run_id,
        run_name=run.info.run_name or run.info.run_id,
        label=label,
        tags=dict(run.data.tags),
        params=dict(run.data.params),
        metrics=metrics,
        threshold=float(threshold),
        costs=Costs(**costs),
        oof=oof,
        test=test,
    )


def load_sweep(
    experiment: str | None = None,
    sweep: str | None = None,
    tracking_uri: str | None = None,
    partial: bool = False,
    keep_reruns: bool = False,
) -> Sweep:
    """The finished runs of a sweep, with their stored out-of-fold and test scores.

    ``sweep``: a sweep parent run id; ``"all"`` for every finished run of the experiment; None for
    the experiment's most recent sweep, or all its finished runs when it has no sweep. With a sweep
    id and no ``experiment``, the experiment is the parent run's. A sweep still running raises
    ImblabError unless ``partial``. Of several runs of one variant only the newest is kept unless
    ``keep_reruns``. Raises ImblabError when the runs were not all scored on the same test rows (a
    paired comparison needs that).
    """
    client = client_for(tracking_uri)
    sweep_id: str | None = None
    parent: Run | None = None
    if sweep and sweep != ALL_RUNS:
        parent = _sweep_parent(client, sweep)
        sweep_id = parent.info.run_id
        exp = (
            find_experiment(client, experiment)
            if experiment
            else client.get_experiment(parent.info.experiment_id)
        )
    else:
        exp = find_experiment(client, experiment or "imblab")
        if sweep is None:
            sweep_id = latest_sweep_id(client, exp.experiment_id)
            parent = client.get_run(sweep_id) if sweep_id else None
    progress = sweep_progress(client, parent) if parent else None
    if progress and progress.running and not partial:
        raise ImblabError(
            f"sweep {sweep_id} is still running ({progress.finished} of {progress.expected} children "
            "finished); rerun when it ends or pass --partial"
        )

    filters = [f"tags.`{TAG_ROLE}` = '{ROLE_RUN}'"]
    if sweep_id:
        filters.append(f"tags.`{TAG_SWEEP}` = '{sweep_id}'")
    candidates = client.search_runs(
        [exp.experiment_id], " and ".join(filters), max_results=5000, order_by=["attributes.start_time ASC"]
    )
    found = [r for r in candidates if r.info.status == "FINISHED"]
    if len(found) < len(candidates):
        log.warning(
            "leaving out %d run(s) that did not finish (FAILED, KILLED or still RUNNING)",
            len(candidates) - len(found),
        )
    found, reruns = (found, 0) if keep_reruns else newest_per_variant(found)
    if reruns:
        log.info("leaving out %d older run(s) of variants run again (--all-runs keeps them)", reruns)
    if not found:
        where = f"sweep {sweep_id}" if sweep_id else f"experiment {exp.name!r}"
        if sweep_id and sweep is None:
            where = f"the latest sweep of experiment {exp.name!r} ({sweep_id})"
        raise ImblabError(
            f"{where} has no FINISHED training runs to compare; wait for the sweep to finish, "
            "check `imblab runs --all`, or pick another --sweep ID (or --sweep all) / --experiment"
        )

    runs = [_load_run(run, label) for run, label in zip(found, labels(found), strict=True)]
    result = Sweep(exp.name, exp.experiment_id, sweep_id, client.tracking_uri, runs, progress, reruns)
    check_same_test_set(result)
    return result


def check_same_test_set(sweep: Sweep) -> None:
    """Raise ImblabError unless every run was scored on the same data, split and test rows."""
    ref = sweep.runs[0]

    def identity(r: RunScores) -> tuple[str, ...]:
        return (r.tags.get(TAG_DATA_FINGERPRINT, "?"), *(r.params.get(p, "?") for p in SPLIT_PARAMS))

    for other in sweep.runs[1:]:
        same_rows = (
            len(other.test) == len(ref.test)
            and np.array_equal(other.test["row"].to_numpy(), ref.test["row"].to_numpy())
            and np.array_equal(other.test["y_true"].to_numpy(), ref.test["y_true"].to_numpy())
        )
        if identity(other) == identity(ref) and same_rows:
            continue
        keys = (TAG_DATA_FINGERPRINT, *SPLIT_PARAMS)
        diffs = [
            f"{k}: {a} vs {b}" for k, a, b in zip(keys, identity(ref), identity(other), strict=True) if a != b
        ] or ["the stored test rows differ"]
        raise ImblabError(
            f"runs {ref.run_name!r} ({ref.run_id[:8]}) and {other.run_name!r} ({other.run_id[:8]}) were "
            f"tested on different test sets ({'; '.join(diffs)}), so a paired bootstrap comparison is "
            "meaningless. Compare the runs of one sweep (--sweep ID), or keep runs on other data or "
            "splits in their own experiment"
        )


# --------------------------------------------------------------------------------------------------
# The comparison
# --------------------------------------------------------------------------------------------------


@dataclass
class Comparison:
    """Bootstrap comparison of a sweep's runs; ``table`` has one row per run, best first."""

    sweep: Sweep
    metric: str  # ranking metric without prefix, e.g. "pr_auc"
    metrics: list[str]  # metrics with CIs in the table, ranking metric first
    n_boot: int
    seed: int
    best_run_id: str
    table: pd.DataFrame
    samples: dict[str, dict[str, NDArray[np.float64]]] = field(repr=False)  # run_id -> metric -> values

    @property
    def higher_is_better(self) -> bool:
        return self.metric not in LOWER_IS_BETTER


def check_n_boot(n_boot: object) -> int:
    """``n_boot`` if it is a positive integer; a clear error otherwise."""
    if isinstance(n_boot, bool) or not isinstance(n_boot, int) or n_boot < 1:
        raise ImblabError(f"--n-boot must be a positive integer, got {n_boot!r}")
    return n_boot


def bootstrap_table(
    sweep: Sweep,
    metric: str = "test_pr_auc",
    n_boot: int = 1000,
    seed: int = 0,
    metrics: Sequence[str] = DEFAULT_METRICS,
) -> Comparison:
    """Test metrics with 95% percentile bootstrap CIs and a paired comparison against the best run.

    The best run is the one with the best test ``metric`` on the full test set. For every run the
    table gives, on the same resamples, the difference ``run - best`` with its 95% CI and
    ``p_beats_best``: the fraction of resamples in which the run is strictly better than the best.
    """
    key = bootstrap_metric(metric).base
    check_n_boot(n_boot)
    shown = list(dict.fromkeys([key, *(bootstrap_metric(m).base for m in metrics)]))
    y = sweep.y_test
    n = len(y)
    ones = np.ones((1, n))
    point = {
        r.run_id: {
            m: float(v[0])
            for m, v in weighted_metrics(y, _scores(r), r.threshold, r.costs, ones, shown).items()
        }
        for r in sweep.runs
    }
    samples: dict[str, dict[str, list[NDArray[np.float64]]]] = {
        r.run_id: {m: [] for m in shown} for r in sweep.runs
    }
    # Blocks of resamples bound memory on large test sets; the weights are shared by every run.
    for idx in index_chunks(n, n_boot, seed, step=max(1, _MAX_CELLS // n)):
        w = resample_weights(idx, n)
        for r in sweep.runs:
            for m, v in weighted_metrics(y, _scores(r), r.threshold, r.costs, w, shown).items():
                samples[r.run_id][m].append(v)
    boot = {rid: {m: np.concatenate(v) for m, v in per.items()} for rid, per in samples.items()}

    sign = -1.0 if key in LOWER_IS_BETTER else 1.0
    # Stable sort on the sweep's run order, so ties (e.g. policies picking the same threshold) keep it.
    ranked = sorted(sweep.runs, key=lambda r: -sign * _nan_last(point[r.run_id][key], sign))
    best = ranked[0].run_id
    rows = []
    for rank, r in enumerate(ranked, start=1):
        row: dict[str, object] = {
            "rank": rank,
            "variant": r.label,
            "run_name": r.run_name,
            "run_id": r.run_id,
            "sampler": r.sampler,
            "model": r.model,
            "threshold_policy": r.policy,
            "tuning": r.tags.get("tuning", "none"),
            "threshold": r.threshold,
            "cv_pr_auc": r.metrics.get("cv_pr_auc", np.nan),
            "cv_pr_auc_fold_se": r.metrics.get("cv_pr_auc_fold_se", np.nan),
        }
        for m in shown:
            row[f"cv_{m}"] = r.metrics.get(f"cv_{m}", np.nan)
        for m in shown:
            lo, hi = percentile_ci(boot[r.run_id][m])
            row.update({f"test_{m}": point[r.run_id][m], f"test_{m}_lo": lo, f"test_{m}_hi": hi})
        diff = boot[r.run_id][key] - boot[best][key]
        row["diff_vs_best"] = point[r.run_id][key] - point[best][key]
        row.update(paired_stats(diff, sign, is_best=r.run_id == best))
        rows.append(row)
    return Comparison(sweep, key, shown, n_boot, seed, best, pd.DataFrame(rows), boot)


def _scores(run: RunScores) -> NDArray[np.float64]:
    return run.test["score"].to_numpy(dtype=np.float64)


def _nan_last(value: float, sign: float) -> float:
    return -sign * math.inf if math.isnan(value) else value
