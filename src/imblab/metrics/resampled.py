"""Intervals for metrics estimated by repeated cross-validation (the corrected resampled t).

J = R x K outer folds give J metric values, but they are not independent: any two training sets share
most of their rows, so the plain standard error ``sd / sqrt(J)`` is far too small and a t interval on it
far too narrow. Nadeau and Bengio (2003, "Inference for the generalization error", Machine Learning 52)
correct the variance of the mean for that overlap::

    var(mean) = (1/J + n_test/n_train) * s^2        s^2: sample variance of the J values (ddof=1)

and use Student's t with J - 1 degrees of freedom. ``n_test/n_train`` is the ratio of one fold's test
and training sizes; for folds of unequal size (forward-chaining time folds) the ratio of the mean sizes
is used. A paired version applies the same to per-fold *differences* of two variants evaluated on the
same outer folds, which is how two runs are compared (the fold-to-fold spread they share cancels).

Values that are not finite (a fold whose metric is undefined, e.g. ROI without inspections) are left
out, together with their partner in the paired version; J counts the rest. Pure numpy/scipy, no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

from imblab.errors import ImblabError


@dataclass(frozen=True)
class CorrectedInterval:
    """Mean of J per-fold values with its corrected resampled t interval."""

    mean: float
    low: float
    high: float
    se: float  # corrected standard error of the mean
    n_folds: int  # J, finite values only
    level: float


@dataclass(frozen=True)
class PairedTest:
    """Mean per-fold difference a - b, its corrected interval, and the two-sided p-value of no difference."""

    mean: float
    low: float
    high: float
    se: float
    t: float
    p_value: float
    n_folds: int
    level: float


def overlap_ratio(n_train: ArrayLike, n_test: ArrayLike) -> float:
    """``n_test / n_train`` of the folds (the ratio of mean sizes when they differ between folds)."""
    train = np.asarray(n_train, dtype=float)
    test = np.asarray(n_test, dtype=float)
    if train.size == 0 or test.size == 0 or np.any(train <= 0) or np.any(test <= 0):
        raise ImblabError(f"fold sizes must be positive, got n_train={n_train!r}, n_test={n_test!r}")
    return float(test.mean() / train.mean())


def _check_level(level: float) -> float:
    if not 0.0 < level < 1.0:
        raise ImblabError(f"interval level must be in (0, 1), got {level!r}")
    return float(level)


def _interval(values: np.ndarray, ratio: float, level: float) -> tuple[float, float, float, float, int]:
    """mean, se, half-width, df-quantile and J of the finite ``values``."""
    v = values[np.isfinite(values)]
    j = int(v.size)
    if j == 0:
        return math.nan, math.nan, math.nan, math.nan, 0
    mean = float(v.mean())
    if j < 2:
        return mean, math.nan, math.nan, math.nan, j
    se = math.sqrt((1.0 / j + ratio) * float(v.var(ddof=1)))
    q = float(stats.t.ppf(0.5 + level / 2.0, j - 1))
    return mean, se, q * se, q, j


def corrected_t_interval(
    per_fold_values: ArrayLike, n_train: ArrayLike, n_test: ArrayLike, level: float = 0.95
) -> CorrectedInterval:
    """The Nadeau-Bengio corrected resampled t interval of the mean of ``per_fold_values``.

    ``n_train``/``n_test``: the training and test size of a fold (scalars, or one per fold). Fewer
    than two finite values give NaN bounds: no spread, no interval.
    """
    level = _check_level(level)
    values = np.asarray(per_fold_values, dtype=float).ravel()
    mean, se, half, _, j = _interval(values, overlap_ratio(n_train, n_test), level)
    return CorrectedInterval(mean, mean - half, mean + half, se, j, level)


def paired_corrected_t(
    a: ArrayLike, b: ArrayLike, n_train: ArrayLike, n_test: ArrayLike, level: float = 0.95
) -> PairedTest:
    """Compare two variants scored on the *same* outer folds: the corrected t on ``a - b`` per fold.

    ``p_value`` is two-sided (H0: mean difference 0). Identical differences in every fold (zero
    spread) give p = 0 when they are not zero, 1 when they are.
    """
    level = _check_level(level)
    va, vb = np.asarray(a, dtype=float).ravel(), np.asarray(b, dtype=float).ravel()
    if va.shape != vb.shape:
        raise ImblabError(
            f"paired comparison needs one value per fold for both variants, got {va.size} and {vb.size}; "
            "were they evaluated on the same outer folds (same evaluation.seed, repeats and folds)?"
        )
    diff = va - vb
    mean, se, half, _, j = _interval(diff, overlap_ratio(n_train, n_test), level)
    if j < 2:
        return PairedTest(mean, math.nan, math.nan, math.nan, math.nan, math.nan, j, level)
    if se == 0.0:
        t, p = (math.inf if mean else 0.0), (0.0 if mean else 1.0)
    else:
        t = mean / se
        p = float(2.0 * stats.t.sf(abs(t), j - 1))
    return PairedTest(mean, mean - half, mean + half, se, t, p, j, level)
