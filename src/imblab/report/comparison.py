"""A sweep's runs side by side, ranked by the shared rule (``imblab.metrics.ranking``), each against the best.

Select on cross-validation, confirm on test. The best run is the first by the ranking rule (by default
the CV metric); every other run is compared with it on paired data:

- **holdout** runs are scored on the same test rows, so the rows are resampled *once* and the same
  resamples are reused for every variant (``imblab.metrics.bootstrap`` describes the scheme): the test
  metrics get 95% percentile CIs, and the fraction of resamples in which a variant beats the best run
  says whether a gap is more than noise;
- **repeated-CV** runs have no test set but share their outer folds, so each variant's per-fold
  difference from the best gets the corrected resampled t interval and p-value (Nadeau and Bengio,
  ``imblab.metrics.resampled.paired_corrected_t``).

Which runs are compared and their stored scores: ``imblab.report.sweeps``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from imblab.errors import ImblabError
from imblab.metrics.bootstrap import (
    index_chunks,
    paired_stats,
    percentile_ci,
    resample_weights,
    weighted_metrics,
)
from imblab.metrics.names import BOOT_METRICS, METRICS, bootstrap_metric
from imblab.metrics.ranking import HOLDOUT, REPEATED_CV, RankingRule, ranking_rule
from imblab.metrics.resampled import paired_corrected_t
from imblab.report.sweeps import (  # noqa: F401  (re-exported: the comparison's public API)
    ALL_RUNS,
    RunScores,
    Sweep,
    check_same_folds,
    check_same_test_set,
    latest_sweep_id,
    load_sweep,
)

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
_MAX_CELLS = 4_000_000  # resamples x rows held in memory at once (32 MB of float64 weights)
# What a row's scores are called in the table (test_<m>, rcv_<m>) under each protocol.
SCORE_PREFIX = {HOLDOUT: "test", REPEATED_CV: "rcv"}


def comparison_rule(metric: str | None, protocol: str) -> RankingRule:
    """The ranking rule of ``imblab compare --metric`` on runs of ``protocol`` (None: the CV default).

    A bare ``<m>`` means ``test_<m>`` under a holdout (as before) and ``rcv_<m>`` under repeated CV.
    Under a holdout the base metric must be one the test bootstrap computes.
    """
    if metric in METRICS:
        metric = f"{SCORE_PREFIX[protocol]}_{metric}"
    rule = ranking_rule(metric, protocol)
    if protocol == HOLDOUT and rule.base not in BOOT_METRICS:
        bootstrap_metric(f"test_{rule.base}")  # its error names the metrics that can be compared
    return rule


@dataclass
class Comparison:
    """A comparison of a sweep's runs; ``table`` has one row per run, best first."""

    sweep: Sweep
    metric: str  # ranking metric without prefix, e.g. "pr_auc": the paired differences are in it
    metrics: list[str]  # metrics with intervals in the table, ranking metric first
    n_boot: int  # bootstrap resamples (holdout); 0 under repeated CV
    seed: int
    best_run_id: str
    table: pd.DataFrame
    # holdout: run_id -> metric -> bootstrap values; repeated CV: run_id -> metric -> per-fold values
    samples: dict[str, dict[str, NDArray[np.float64]]] = field(repr=False)
    rule: RankingRule  # how the runs were ranked
    notes: list[str] = field(default_factory=list)  # warnings every format repeats

    @property
    def higher_is_better(self) -> bool:
        return METRICS[self.metric].higher_is_better

    @property
    def protocol(self) -> str:
        return self.sweep.protocol

    @property
    def score_prefix(self) -> str:
        """``test`` (holdout: bootstrap CIs on the test rows) or ``rcv`` (repeated CV: outer folds)."""
        return SCORE_PREFIX[self.protocol]


def check_n_boot(n_boot: object) -> int:
    """``n_boot`` if it is a positive integer; a clear error otherwise."""
    if isinstance(n_boot, bool) or not isinstance(n_boot, int) or n_boot < 1:
        raise ImblabError(f"--n-boot must be a positive integer, got {n_boot!r}")
    return n_boot


def compare(sweep: Sweep, metric: str | None = None, **options: Any) -> Comparison:
    """The comparison the sweep's protocol calls for: bootstrap over test rows (``bootstrap_table``), or
    paired outer folds (``folds_table``). ``options``: ``metrics``; ``n_boot``, ``seed`` (bootstrap only)."""
    if sweep.protocol == REPEATED_CV:
        return folds_table(sweep, metric, options.get("metrics", DEFAULT_METRICS))
    return bootstrap_table(sweep, metric, **options)


def _ranked(sweep: Sweep, rule: RankingRule) -> tuple[list[RunScores], list[str]]:
    """The sweep's runs best first by ``rule`` (runs without the metric last), and the rule's warning."""
    ranked = sorted(sweep.runs, key=lambda r: rule.key(r.metrics, r.start_time, r.run_id))
    notes = [w for w in [rule.warning(len(ranked))] if w]
    for note in notes:
        log.warning("%s", note)
    return ranked, notes


def _identity(rank: int, r: RunScores) -> dict[str, object]:
    return {
        "rank": rank,
        "variant": r.label,
        "run_name": r.run_name,
        "run_id": r.run_id,
        "sampler": r.sampler,
        "model": r.model,
        "threshold_policy": r.policy,
        "tuning": r.tags.get("tuning", "none"),
        "threshold": r.threshold,
    }


def bootstrap_table(
    sweep: Sweep,
    metric: str | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    metrics: Sequence[str] = DEFAULT_METRICS,
) -> Comparison:
    """Test metrics with 95% percentile bootstrap CIs and a paired comparison against the best run.

    The best run is the first by the ranking rule of ``metric`` (default ``cv_pr_auc``; ``test_<m>`` or
    a bare ``<m>`` rank on the test set). For every run the table gives, on the same resamples, the
    difference ``run - best`` in test ``<m>`` with its 95% CI and ``p_beats_best``: the fraction of
    resamples in which the run is strictly better than the best.
    """
    rule = comparison_rule(metric, HOLDOUT)
    key = rule.base
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

    sign = 1.0 if rule.higher_is_better else -1.0
    ranked, notes = _ranked(sweep, rule)
    best = ranked[0].run_id
    rows = []
    for rank, r in enumerate(ranked, start=1):
        row = _identity(rank, r) | {
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
    return Comparison(sweep, key, shown, n_boot, seed, best, pd.DataFrame(rows), boot, rule, notes)


def folds_table(
    sweep: Sweep, metric: str | None = None, metrics: Sequence[str] = DEFAULT_METRICS
) -> Comparison:
    """Repeated-CV runs on their shared outer folds: each run's ``rcv_<m>`` with its logged corrected
    interval and, against the best run (ranking rule, default ``rcv_pr_auc``), the mean per-fold
    difference ``run - best`` with its corrected resampled t interval and two-sided p-value.

    ``p_ties_best`` is 1 when the two runs are equal in every fold (e.g. two policies of one fitted
    model on a threshold-free metric), so the shared verdict says 'tied'.
    """
    rule = comparison_rule(metric, REPEATED_CV)
    key = rule.base
    shown = list(dict.fromkeys([key, *metrics]))
    ranked, notes = _ranked(sweep, rule)
    best = ranked[0]
    level = float(best.params.get("evaluation.level", 0.95))
    values = {r.run_id: {m: r.folds[m].to_numpy(dtype=np.float64) for m in shown} for r in sweep.runs}
    n_train, n_test = best.folds["n_train"], best.folds["n_test"]
    rows = []
    for rank, r in enumerate(ranked, start=1):
        row = _identity(rank, r) | {"n_folds": len(r.folds)}
        for m in shown:
            row.update(
                {
                    f"rcv_{m}": r.metrics.get(f"rcv_{m}", np.nan),
                    f"rcv_{m}_lo": r.metrics.get(f"rcv_{m}_ci_low", np.nan),
                    f"rcv_{m}_hi": r.metrics.get(f"rcv_{m}_ci_high", np.nan),
                }
            )
        mine, theirs = values[r.run_id][key], values[best.run_id][key]
        test = paired_corrected_t(mine, theirs, n_train, n_test, level)
        same = r.run_id == best.run_id
        row.update(
            {
                "diff_vs_best": test.mean,
                "diff_vs_best_lo": test.low,
                "diff_vs_best_hi": test.high,
                "diff_vs_best_se": test.se,
                "p_value": math.nan if same else test.p_value,
                "p_ties_best": math.nan if same else float(np.array_equal(mine, theirs, equal_nan=True)),
                "is_best": same,
            }
        )
        rows.append(row)
    return Comparison(sweep, key, shown, 0, 0, best.run_id, pd.DataFrame(rows), values, rule, notes)


def _scores(run: RunScores) -> NDArray[np.float64]:
    return run.test["score"].to_numpy(dtype=np.float64)
