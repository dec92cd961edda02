"""Bootstrap maths on a fixed test set: resamples as row weights, metrics vectorised over resamples.

Resampling scheme (documented because tests and readers can reproduce it exactly)::

    idx = np.random.default_rng(seed).integers(0, n_test, size=(n_boot, n_test))

Resample ``b`` is the multiset of test rows ``idx[b]``; a row drawn twice counts twice. Ranking
metrics (PR-AUC = average precision, ROC-AUC) and the threshold-dependent metrics at a run's frozen
threshold are computed for all resamples at once from per-row weights (how often each row was
drawn), which gives the same numbers as scikit-learn on ``y[idx[b]], score[idx[b]]`` (to 1e-15) but
over a hundred times faster than a loop calling it (1000 resamples of SECOM's 314 test rows: 0.03 s
instead of 4 s per run). CIs are 95% percentile intervals; resamples in which a metric is undefined
(a resample without positives has no PR-AUC) are left out of that metric's interval.

No MLflow, no I/O: :mod:`imblab.report.comparison` loads the runs and applies these functions.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator

import numpy as np
from numpy.typing import NDArray

from imblab.errors import ImblabError
from imblab.metrics.arrays import safe_div
from imblab.metrics.costs import Costs, expected_cost_array, net_saving_array
from imblab.metrics.names import BOOT_METRICS


def bootstrap_indices(n: int, n_boot: int, seed: int) -> NDArray[np.int64]:
    """The resampled row positions, ``(n_boot, n)``: the scheme in the module docstring."""
    return np.concatenate(list(index_chunks(n, n_boot, seed, n_boot)))


def index_chunks(n: int, n_boot: int, seed: int, step: int) -> Iterator[NDArray[np.int64]]:
    """``bootstrap_indices`` in blocks of ``step`` resamples (the same numbers: one generator stream)."""
    rng = np.random.default_rng(seed)
    for start in range(0, n_boot, step):
        yield rng.integers(0, n, size=(min(step, n_boot - start), n))


def resample_weights(idx: NDArray[np.int64], n: int) -> NDArray[np.float64]:
    """How often each row was drawn in each resample: ``(len(idx), n)``."""
    flat = idx + (np.arange(idx.shape[0]) * n)[:, None]
    return np.bincount(flat.ravel(), minlength=idx.shape[0] * n).reshape(idx.shape[0], n).astype(np.float64)


def _ranking_metrics(
    y: NDArray[np.int64], s: NDArray[np.float64], w: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Average precision and ROC-AUC per weight row, as sklearn computes them (NaN with one class)."""
    order = np.argsort(-s, kind="stable")
    s_sorted, y_sorted, w_sorted = s[order], y[order], w[:, order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(s_sorted)), len(s) - 1]  # one threshold per distinct score
    tp = np.cumsum(w_sorted * y_sorted, axis=1)[:, last_of_tie]
    fp = np.cumsum(w_sorted * (1 - y_sorted), axis=1)[:, last_of_tie]
    pos, neg = tp[:, -1:], fp[:, -1:]
    recall = safe_div(tp, pos)
    precision = safe_div(tp, tp + fp)
    ap = (np.diff(recall, axis=1, prepend=0.0) * precision).sum(axis=1)
    tpr = np.pad(recall, ((0, 0), (1, 0)))
    fpr = np.pad(safe_div(fp, neg), ((0, 0), (1, 0)))
    auc = (np.diff(fpr, axis=1) * (tpr[:, 1:] + tpr[:, :-1]) / 2).sum(axis=1)
    undefined = (pos[:, 0] == 0) | (neg[:, 0] == 0)
    ap[undefined] = np.nan
    auc[undefined] = np.nan
    return ap, auc


def weighted_metrics(
    y: NDArray[np.int64],
    s: NDArray[np.float64],
    threshold: float,
    costs: Costs,
    w: NDArray[np.float64],
    names: Iterable[str] = BOOT_METRICS,
) -> dict[str, NDArray[np.float64]]:
    """``BOOT_METRICS`` for each row of weights ``w`` (n_resamples, n_rows).

    With integer weights ``w[b]`` the values equal ``imblab.metrics.core.threshold_metrics`` on the rows
    repeated that often; a row of ones gives the metrics of the test set itself.
    """
    names = list(names)
    unknown = [m for m in names if m not in BOOT_METRICS]
    if unknown:
        raise ImblabError(f"cannot bootstrap metric(s) {unknown}; choose from {list(BOOT_METRICS)}")
    y = np.asarray(y, dtype=np.int64)
    s = np.asarray(s, dtype=np.float64)
    pred = s >= threshold
    tp = w @ (y * pred).astype(np.float64)
    fp = w @ ((1 - y) * pred).astype(np.float64)
    fn = w @ (y * ~pred).astype(np.float64)
    tn = w @ ((1 - y) * ~pred).astype(np.float64)
    n = tp + fp + fn + tn
    pos, neg = tp + fn, tn + fp
    recall, specificity = safe_div(tp, pos), safe_div(tn, neg)
    # Mean recall over the classes present, like sklearn's balanced_accuracy_score.
    balanced = np.where(
        (pos > 0) & (neg > 0), (recall + specificity) / 2, np.where(pos > 0, recall, specificity)
    )
    out: dict[str, NDArray[np.float64]] = {
        "brier": safe_div(w @ (s - y) ** 2, n),
        "accuracy": safe_div(tp + tn, n),
        "precision": safe_div(tp, tp + fp),
        "recall": recall,
        "specificity": specificity,
        "f1": safe_div(2 * tp, 2 * tp + fp + fn),
        "balanced_accuracy": balanced,
        "mcc": safe_div(tp * tn - fp * fn, np.sqrt((tp + fp) * pos * neg * (tn + fn))),
        "g_mean": np.sqrt(recall * specificity),
        "expected_cost": expected_cost_array(tn, fp, fn, tp, costs),
        "net_saving": net_saving_array(tn, fp, fn, tp, costs),
    }
    if {"pr_auc", "roc_auc"} & set(names):  # the only costly ones: a sort and cumsums per resample
        out["pr_auc"], out["roc_auc"] = _ranking_metrics(y, s, w)
    return {m: out[m] for m in names}


def paired_stats(diff: NDArray[np.float64], sign: float, is_best: bool) -> dict[str, object]:
    """CI of the per-resample difference to the best run and how often the run beats / ties it."""
    valid = diff[~np.isnan(diff)]
    lo, hi = percentile_ci(diff)
    # The best run cannot beat itself: NaN rather than a misleading 0.
    undefined = is_best or valid.size == 0
    return {
        "diff_vs_best_lo": lo,
        "diff_vs_best_hi": hi,
        "p_beats_best": math.nan if undefined else float(np.mean(sign * valid > 0)),
        "p_ties_best": math.nan if undefined else float(np.mean(valid == 0)),
        "is_best": is_best,
        "n_boot_valid": int(valid.size),
    }


def percentile_ci(values: NDArray[np.float64], level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of the finite values (NaN, NaN when there are none)."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return math.nan, math.nan
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(finite, [tail, 100 - tail])
    return float(lo), float(hi)
