"""Classification metrics of (labels, scores) at one threshold or at every threshold at once.

Pure numpy/scikit-learn/pandas: no tracking, no I/O, so every function can be unit-tested against
scikit-learn and reused by the threshold policies, the runner, the reports and the plots. The money
metrics come from :mod:`imblab.metrics.costs`, the names and directions from :mod:`imblab.metrics.names`.

Conventions used everywhere in imblab:

* label 1 is the positive class (defect / fail), label 0 the negative class;
* a row is predicted positive when ``score >= threshold``;
* a ratio whose denominator is zero is 0.0 (scikit-learn's ``zero_division=0``), except ROC-AUC and
  PR-AUC with a single class present and ROI without inspection spend, which are NaN because no value
  would be honest there.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from sklearn.metrics import average_precision_score, confusion_matrix, roc_auc_score

from imblab.errors import ImblabError
from imblab.metrics.arrays import safe_div
from imblab.metrics.costs import (
    Costs,
    expected_cost,
    expected_cost_array,
    net_saving,
    net_saving_array,
    roi,
    roi_array,
)

# The columns of metrics_vs_threshold, in order.
SWEEP_COLUMNS: tuple[str, ...] = (
    "threshold",
    "tn",
    "fp",
    "fn",
    "tp",
    "precision",
    "recall",
    "specificity",
    "f1",
    "expected_cost",
    "net_saving",
    "roi",
)


# --------------------------------------------------------------------------------------------------
# Input validation
# --------------------------------------------------------------------------------------------------


def _as_1d(values: ArrayLike, name: str) -> NDArray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ImblabError(f"{name} must be a 1-D array (one value per row), got shape {arr.shape}")
    return arr


def _as_float_1d(values: ArrayLike, name: str, what: str) -> NDArray[np.float64]:
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:  # strings, pd.NA, ragged lists
        raise ImblabError(f"{name} must be {what}: {exc}") from None
    return _as_1d(arr, name)


def validate_labels(y: ArrayLike, name: str = "y_true") -> NDArray[np.int64]:
    """Return ``y`` as an int64 array of 0/1, or raise ImblabError explaining how to encode it."""
    arr = _as_1d(y, name)
    if arr.dtype.kind == "b":
        return arr.astype(np.int64)
    if arr.dtype.kind not in "iuf":
        raise ImblabError(
            f"{name} must contain only 0/1 labels (1 = defect/fail), got dtype {arr.dtype}; "
            "map the classes to 0/1 before computing metrics"
        )
    bad = ~np.isin(arr, (0, 1))  # NaN is not in (0, 1), so missing labels are caught here too
    if bad.any():
        examples = np.unique(arr[bad])[:5].tolist()
        raise ImblabError(
            f"{name} must contain only 0/1 labels (1 = defect/fail); found {int(bad.sum())} other "
            f"value(s), e.g. {examples}. Map the classes to 0/1 (e.g. SECOM's -1/1 to 0/1)"
        )
    return arr.astype(np.int64)


def validate_scores(scores: ArrayLike, name: str = "y_score") -> NDArray[np.float64]:
    """Return ``scores`` as a non-empty float64 array of probabilities in [0, 1], or raise ImblabError."""
    arr = _as_float_1d(scores, name, "numeric scores in [0, 1]")
    if arr.size == 0:
        raise ImblabError(f"{name} is empty; metrics and thresholds need at least one scored row")
    if not np.isfinite(arr).all():
        raise ImblabError(
            f"{name} contains {int((~np.isfinite(arr)).sum())} NaN/inf value(s); "
            "fix the model or the features producing them before thresholding"
        )
    outside = (arr < 0.0) | (arr > 1.0)
    if outside.any():
        raise ImblabError(
            f"{name} must be probabilities in [0, 1]; {int(outside.sum())} value(s) are outside "
            f"(min {arr.min():.4g}, max {arr.max():.4g}). Use predict_proba or apply a sigmoid first"
        )
    return arr


def validate_inputs(y_true: ArrayLike, y_score: ArrayLike) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Validate a (labels, scores) pair: same length, non-empty, 0/1 labels, finite scores in [0, 1]."""
    y = validate_labels(y_true, "y_true")
    s = validate_scores(y_score, "y_score")
    if y.shape[0] != s.shape[0]:
        raise ImblabError(
            f"y_true and y_score must have the same length, got {y.shape[0]} and {s.shape[0]}; "
            "score exactly the rows whose labels you pass"
        )
    return y, s


def _validate_threshold_values(thresholds: ArrayLike) -> NDArray[np.float64]:
    arr = _as_float_1d(thresholds, "thresholds", "numbers")
    if np.isnan(arr).any():
        raise ImblabError("thresholds must not contain NaN; pass numbers (inf means 'flag nothing')")
    return arr


def candidate_thresholds_of(scores: NDArray[np.float64]) -> NDArray[np.float64]:
    """Unique *validated* scores ascending, plus the next float above the max ("flag nothing").

    Lives here rather than in ``thresholds`` so that ``metrics_vs_threshold`` can default to it
    without an import cycle; ``thresholds.candidate_thresholds`` validates raw scores and calls it.
    """
    unique = np.unique(scores)
    return np.append(unique, np.nextafter(unique[-1], np.inf))


# --------------------------------------------------------------------------------------------------
# Counts
# --------------------------------------------------------------------------------------------------


def confusion_counts(y_true: ArrayLike, y_pred: ArrayLike) -> tuple[int, int, int, int]:
    """Return ``(tn, fp, fn, tp)`` as ints, always from a 2x2 matrix, even when one class is absent.

    scikit-learn's ``confusion_matrix`` with ``labels=[0, 1]`` does the counting (it would shrink to 1x1
    without them); imblab's validation comes first so bad labels get imblab's messages.
    """
    y = validate_labels(y_true, "y_true")
    p = validate_labels(y_pred, "y_pred")
    if y.shape[0] != p.shape[0]:
        raise ImblabError(f"y_true and y_pred must have the same length, got {y.shape[0]} and {p.shape[0]}")
    if y.shape[0] == 0:  # scikit-learn refuses empty input; zero counts are the honest answer
        return 0, 0, 0, 0
    tn, fp, fn, tp = confusion_matrix(y, p, labels=[0, 1]).ravel().tolist()
    return tn, fp, fn, tp


# --------------------------------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------------------------------


def threshold_metrics(
    y_true: ArrayLike, y_score: ArrayLike, threshold: float, costs: Costs
) -> dict[str, float]:
    """All reported metrics at one threshold, keyed in ``imblab.metrics.names.METRIC_NAMES`` order.

    Count-based metrics are computed from the confusion counts (same values as scikit-learn with
    ``zero_division=0``); ``balanced_accuracy`` averages the recall of the classes present in
    ``y_true``, exactly like ``sklearn.metrics.balanced_accuracy_score``.
    """
    y, s = validate_inputs(y_true, y_score)
    threshold = float(threshold)
    if math.isnan(threshold):
        raise ImblabError("threshold must be a number, got NaN")
    tn, fp, fn, tp = confusion_counts(y, (s >= threshold).astype(np.int64))
    n = tn + fp + fn + tp
    pos, neg = tp + fn, tn + fp

    precision = float(safe_div(tp, tp + fp))
    recall = float(safe_div(tp, pos))
    specificity = float(safe_div(tn, neg))
    f1 = float(safe_div(2 * tp, 2 * tp + fp + fn))
    present_recalls = [r for r, count in ((recall, pos), (specificity, neg)) if count > 0]
    balanced_accuracy = float(np.mean(present_recalls))
    # Floats, not ints, so the four products cannot overflow on large data sets.
    mcc_den = math.sqrt(float(tp + fp) * float(pos) * float(neg) * float(tn + fn))
    mcc = (float(tp) * tn - float(fp) * fn) / mcc_den if mcc_den > 0 else 0.0

    both_classes = pos > 0 and neg > 0
    # Ranking metrics are undefined with one class; NaN keeps that visible instead of a fake 0 or 1.
    roc_auc = float(roc_auc_score(y, s)) if both_classes else math.nan
    pr_auc = float(average_precision_score(y, s)) if both_classes else math.nan

    values: dict[str, float] = {
        "accuracy": (tp + tn) / n,
        "precision": precision,
        "recall": recall,
        "specificity": specificity,
        "f1": f1,
        "balanced_accuracy": balanced_accuracy,
        "roc_auc": roc_auc,
        "pr_auc": pr_auc,
        "mcc": mcc,
        "g_mean": math.sqrt(recall * specificity),
        "brier": float(np.mean((s - y) ** 2)),
        "tn": float(tn),
        "fp": float(fp),
        "fn": float(fn),
        "tp": float(tp),
        "expected_cost": expected_cost(tn, fp, fn, tp, costs),
        "net_saving": net_saving(tn, fp, fn, tp, costs),
        "roi": roi(tn, fp, fn, tp, costs),
        "threshold": threshold,
        "n": float(n),
        "positive_rate": (tp + fp) / n,
    }
    return values


def metrics_vs_threshold(
    y_true: ArrayLike,
    y_score: ArrayLike,
    costs: Costs,
    thresholds: ArrayLike | None = None,
) -> pd.DataFrame:
    """Confusion counts, rates and costs for many thresholds at once, in O((n + k) log n).

    One row per threshold (default ``thresholds.candidate_thresholds(y_score)``, in the given order)
    with columns ``SWEEP_COLUMNS``. Scores are sorted once; for each threshold a binary search gives
    how many rows score below it and a cumulative sum of the sorted labels how many of those are
    positive, so no per-threshold pass over the data is needed.
    """
    y, s = validate_inputs(y_true, y_score)
    t = candidate_thresholds_of(s) if thresholds is None else _validate_threshold_values(thresholds)

    order = np.argsort(s, kind="stable")
    s_sorted = s[order]
    positives_below = np.concatenate(([0], np.cumsum(y[order])))  # positives among the i lowest scores
    n_rows = s.shape[0]
    n_pos = int(positives_below[-1])
    n_neg = n_rows - n_pos

    below = np.searchsorted(s_sorted, t, side="left")  # rows with score < t, i.e. predicted negative
    tp = n_pos - positives_below[below]
    fp = (n_rows - below) - tp
    fn = n_pos - tp
    tn = n_neg - fp

    return pd.DataFrame(
        {
            "threshold": t,
            "tn": tn.astype(np.int64),
            "fp": fp.astype(np.int64),
            "fn": fn.astype(np.int64),
            "tp": tp.astype(np.int64),
            "precision": safe_div(tp, tp + fp),
            "recall": safe_div(tp, np.full_like(tp, n_pos)),
            "specificity": safe_div(tn, np.full_like(tn, n_neg)),
            "f1": safe_div(2 * tp, 2 * tp + fp + fn),
            "expected_cost": expected_cost_array(tn, fp, fn, tp, costs),
            "net_saving": net_saving_array(tn, fp, fn, tp, costs),
            "roi": roi_array(tn, fp, fn, tp, costs),
        },
        columns=list(SWEEP_COLUMNS),
    )
