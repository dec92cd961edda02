"""Cluster bootstrap over test PERSONS for panel runs: every metric from per-person sums, all resamples
at once.

Resampling scheme (the binary scheme of :mod:`imblab.metrics.bootstrap`, applied to persons)::

    persons = np.unique(test_person)          # sorted: the same order for every run
    idx = np.random.default_rng(seed).integers(0, len(persons), size=(n_boot, len(persons)))

Resample ``b`` is the multiset of persons ``persons[idx[b]]``; a person drawn twice brings all of its test
examples twice. A person's waves are not independent (the same person, the same habits), so resampling
examples would understate the uncertainty; resampling persons keeps each person's examples together.

Every metric is a function of sums over examples (squared errors, confusion counts, ...). Those sums are
computed once per person (``person_sums``); a resample's sums are then ``weights @ person_sums`` with
``weights[b, p]`` = how often person ``p`` was drawn. That gives, to rounding, the numbers scikit-learn
computes on the concatenated examples of the drawn persons (tests check it), for all resamples in one
matrix product. A row of ones gives the metrics of the test set itself.

Conventions (scikit-learn's, as :mod:`imblab.panel.metrics` logs them): balanced accuracy is the mean
recall over the classes present; macro-F1 averages all K classes, 0 where a class is neither true nor
predicted. Per-class recall / precision are NaN here where undefined (the class absent from the
resample's truth / predictions), so a comparison can leave those resamples out of the interval rather
than count them as 0 (the logged metrics say 0 for the test set itself). No MLflow, no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from imblab.metrics.arrays import safe_div
from imblab.metrics.bootstrap import bootstrap_indices, resample_weights
from imblab.panel.metrics import CLASS_METRICS, WAGE_METRICS

# Columns of person_sums before the K x K confusion counts.
_SUMS = ("n", "y", "y2", "se", "ae", "se_level")


def boot_metric_names(slugs: Sequence[str]) -> list[str]:
    """Every metric ``panel_metrics`` returns, for classes with these metric-name slugs."""
    return [
        *WAGE_METRICS,
        *CLASS_METRICS,
        *(f"recall_{s}" for s in slugs),
        *(f"precision_{s}" for s in slugs),
    ]


def person_codes(person: NDArray[np.generic]) -> tuple[NDArray[np.int64], int]:
    """Each example's index into the sorted distinct persons, and how many persons there are."""
    uniq, codes = np.unique(np.asarray(person), return_inverse=True)
    return codes.astype(np.int64), len(uniq)


def person_sums(
    codes: NDArray[np.int64],
    n_persons: int,
    y_wage: NDArray[np.float64],
    wage: NDArray[np.float64],
    y_class: NDArray[np.int64],
    pred_class: NDArray[np.int64],
    n_classes: int,
    center: float,
) -> NDArray[np.float64]:
    """``(n_persons, 6 + K*K)``: per person the example count, sums of ``y - center`` and its square,
    squared and absolute errors (log units), squared level errors, and confusion counts (true x predicted).

    ``center`` (e.g. the test mean of ``y``) keeps the variance sums free of cancellation; any value gives
    the same metrics, but every run compared must use the same one.
    """
    y = np.asarray(y_wage, dtype=np.float64)
    p = np.asarray(wage, dtype=np.float64)
    err, dy = p - y, y - center
    per_example = [np.ones_like(y), dy, dy**2, err**2, np.abs(err), (np.exp(p) - np.exp(y)) ** 2]
    sums = [np.bincount(codes, weights=v, minlength=n_persons) for v in per_example]
    k2 = n_classes * n_classes
    cell = (
        codes * k2 + np.asarray(y_class, dtype=np.int64) * n_classes + np.asarray(pred_class, dtype=np.int64)
    )
    confusion = np.bincount(cell, minlength=n_persons * k2).reshape(n_persons, k2)
    return np.column_stack([*sums, confusion]).astype(np.float64)


def person_weights(n_persons: int, n_boot: int, seed: int) -> NDArray[np.float64]:
    """``(n_boot, n_persons)``: how often each person is drawn in each resample (the module's scheme)."""
    return resample_weights(bootstrap_indices(n_persons, n_boot, seed), n_persons)


def panel_metrics(totals: NDArray[np.float64], slugs: Sequence[str]) -> dict[str, NDArray[np.float64]]:
    """The metrics of ``boot_metric_names(slugs)`` from summed ``person_sums`` rows ``(n_resamples, m)``."""
    k = len(slugs)
    n, sy, sy2, se, ae, se_level = (totals[:, i] for i in range(len(_SUMS)))
    cm = totals[:, len(_SUMS) :].reshape(-1, k, k)
    nan = np.nan
    sst = sy2 - safe_div(sy**2, n)
    out: dict[str, NDArray[np.float64]] = {
        "wage_rmse": np.sqrt(safe_div(se, n, nan)),
        "wage_mae": safe_div(ae, n, nan),
        "wage_r2": 1 - safe_div(se, np.where(sst > 0, sst, 0.0), nan),  # undefined without spread in y
        "wage_rmse_level": np.sqrt(safe_div(se_level, n, nan)),
    }
    diag = np.diagonal(cm, axis1=1, axis2=2)
    true_k, pred_k = cm.sum(axis=2), cm.sum(axis=1)
    recall, precision = safe_div(diag, true_k, nan), safe_div(diag, pred_k, nan)
    present = true_k > 0
    out["class_accuracy"] = safe_div(diag.sum(axis=1), n, nan)
    out["class_balanced_accuracy"] = safe_div(
        np.where(present, recall, 0.0).sum(axis=1), present.sum(axis=1), nan
    )
    out["class_macro_f1"] = safe_div(2 * diag, true_k + pred_k).mean(axis=1)
    for j, s in enumerate(slugs):
        out[f"recall_{s}"] = recall[:, j]
    for j, s in enumerate(slugs):
        out[f"precision_{s}"] = precision[:, j]
    return out
