"""Repeated cross-validation around the holdout protocol (``evaluation=repeated_cv``).

One 20% holdout of SECOM holds 21 failing lots: too few to tell most variants apart. Here every row is
an outer-test row once per repeat. For each of the R x K outer folds the *whole* holdout protocol runs
on the outer-training part only (inner CV -> out-of-fold scores -> threshold policy -> refit, through
the same ``fit_and_score`` and the same fit cache as a holdout run), and the outer-test part is scored
once, at that fold's own threshold. No outer-test label reaches a fit or a threshold.

Outer folds are a function of (labels, timestamps, ``evaluation``) only, never of the sampler, model or
policy: every variant of a sweep with the same ``evaluation.seed`` is scored on the same folds, so two
runs can be compared fold by fold (``imblab.metrics.resampled.paired_corrected_t``).

Pure protocol: no MLflow. ``imblab.tracking.evaluation`` logs the result.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.model_selection import RepeatedStratifiedKFold

from imblab.config.specs import EvaluationSpec
from imblab.data.dataset import Dataset
from imblab.errors import ImblabError
from imblab.metrics.core import threshold_metrics
from imblab.metrics.costs import Costs
from imblab.metrics.resampled import corrected_t_interval
from imblab.protocol.cv import FitResult
from imblab.protocol.split import Split, time_order
from imblab.thresholds import ThresholdPolicy

PREFIX = "rcv"  # rcv_<metric>, rcv_<metric>_ci_low/_ci_high, rcv_fold_<metric> (step = fold index)


@dataclass(frozen=True)
class OuterFold:
    """One outer fold: its position (``step`` = repeat * folds + fold, the logged step) and its rows."""

    step: int
    repeat: int
    fold: int
    split: Split


@dataclass
class FoldResult:
    """What one outer fold's protocol produced: its threshold and the outer-test scores and metrics."""

    outer: OuterFold
    threshold: float
    feasible: bool
    test_scores: np.ndarray
    metrics: dict[str, float]
    cache_hit: bool
    fit_seconds: float


def outer_folds(dataset: Dataset, spec: EvaluationSpec) -> list[OuterFold]:
    """The outer folds of ``spec``: repeated stratified K-fold, or forward-chaining blocks by timestamp."""
    y = dataset.y.to_numpy()
    if spec.kind == "stratified":
        smallest = int(min(np.bincount(y, minlength=2)))
        if smallest < spec.folds:
            raise ImblabError(
                f"evaluation.folds={spec.folds} needs at least {spec.folds} rows of each class, but the "
                f"minority class has {smallest}; lower evaluation.folds"
            )
        rskf = RepeatedStratifiedKFold(n_splits=spec.folds, n_repeats=spec.repeats, random_state=spec.seed)
        parts = [(i // spec.folds, i % spec.folds, tr, te) for i, (tr, te) in enumerate(rskf.split(y, y))]
    else:
        order = time_order(dataset, "evaluation.kind=time", "evaluation=repeated_cv (stratified)")
        blocks = np.array_split(order, spec.folds + 1)
        parts = [(0, k, np.concatenate(blocks[: k + 1]), blocks[k + 1]) for k in range(spec.folds)]
    folds = []
    for repeat, fold, train, test in parts:
        for part, rows in (("training", train), ("test", test)):
            classes = np.unique(y[rows])
            if len(classes) < 2:
                raise ImblabError(
                    f"outer fold {fold} of evaluation.kind={spec.kind} has only class {classes.tolist()} in "
                    f"its {part} part; lower evaluation.folds"
                )
        step = repeat * spec.folds + fold
        folds.append(OuterFold(step, repeat, fold, Split(np.sort(train), np.sort(test))))
    return folds


def run_outer_folds(
    dataset: Dataset,
    folds: list[OuterFold],
    fit: Callable[[Split], tuple[FitResult, bool]],
    policy: ThresholdPolicy,
    costs: Costs,
    on_fold: Callable[[], None] | None = None,
) -> list[FoldResult]:
    """The holdout protocol in every outer fold: ``fit(split)`` (inner CV + refit, usually cached), the
    policy on the inner out-of-fold scores, the outer-test rows scored once at that threshold.
    ``on_fold`` is called after each outer fold (progress)."""
    y = dataset.y.to_numpy()
    results = []
    for outer in folds:
        start = time.perf_counter()
        result, hit = fit(outer.split)
        # The policy sees the outer-training part's out-of-fold scores only: never an outer-test label.
        choice = policy.choose(y[outer.split.train], result.oof_scores)
        scores = np.asarray(result.test_scores, dtype=float)
        metrics = threshold_metrics(y[outer.split.test], scores, choice.threshold, costs)
        seconds = result.fit_seconds if not hit else time.perf_counter() - start
        results.append(FoldResult(outer, choice.threshold, choice.feasible, scores, metrics, hit, seconds))
        if on_fold is not None:
            on_fold()
    return results


def fold_table(results: list[FoldResult], dataset: Dataset) -> pd.DataFrame:
    """One row per outer fold: step, repeat, fold, sizes, threshold and every outer-test metric."""
    y = dataset.y.to_numpy()
    rows = []
    for r in results:
        split = r.outer.split
        rows.append(
            {
                "step": r.outer.step,
                "repeat": r.outer.repeat,
                "fold": r.outer.fold,
                "n_train": len(split.train),
                "n_test": len(split.test),
                "positives_test": int(y[split.test].sum()),
                "threshold_feasible": r.feasible,
                "cache_hit": r.cache_hit,
                **r.metrics,
            }
        )
    return pd.DataFrame(rows)


def fold_scores(results: list[FoldResult], dataset: Dataset) -> pd.DataFrame:
    """One row per (outer fold, outer-test row): ids to pair runs later, label, score and decision."""
    y = dataset.y.to_numpy()
    frames = [
        pd.DataFrame(
            {
                "step": r.outer.step,
                "repeat": r.outer.repeat,
                "fold": r.outer.fold,
                "row": dataset.X.index[r.outer.split.test],
                "y_true": y[r.outer.split.test],
                "score": r.test_scores,
                "threshold": r.threshold,
                "decision": (r.test_scores >= r.threshold).astype("int64"),
            }
        )
        for r in results
    ]
    return pd.concat(frames, ignore_index=True)


@dataclass
class OuterEvaluation:
    """A repeated-CV evaluation: the per-fold table, the per-row outer-test scores, the rcv_ summary."""

    table: pd.DataFrame
    scores: pd.DataFrame
    summary: dict[str, float]


def evaluate_outer(
    dataset: Dataset,
    spec: EvaluationSpec,
    fit: Callable[[Split], tuple[FitResult, bool]],
    policy: ThresholdPolicy,
    costs: Costs,
    metric_names: list[str],
    on_fold: Callable[[], None] | None = None,
) -> OuterEvaluation:
    """Outer folds of ``spec``, the protocol in each, and ``rcv_<m>`` with intervals for ``metric_names``."""
    results = run_outer_folds(dataset, outer_folds(dataset, spec), fit, policy, costs, on_fold)
    table = fold_table(results, dataset)
    return OuterEvaluation(table, fold_scores(results, dataset), summarise(table, metric_names, spec.level))


def summarise(table: pd.DataFrame, metric_names: list[str], level: float) -> dict[str, float]:
    """``rcv_<m>`` (mean over the outer folds) and its corrected resampled t interval, for every metric."""
    out: dict[str, float] = {}
    for name in metric_names:
        ci = corrected_t_interval(table[name], table["n_train"], table["n_test"], level)
        out[f"{PREFIX}_{name}"] = ci.mean
        out[f"{PREFIX}_{name}_ci_low"] = ci.low
        out[f"{PREFIX}_{name}_ci_high"] = ci.high
    return out
