"""imblab.metrics.resampled (Nadeau-Bengio corrected resampled t) against a direct computation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from imblab.errors import ImblabError
from imblab.metrics.resampled import corrected_t_interval, overlap_ratio, paired_corrected_t


def _direct(values: list[float], n_train: float, n_test: float, level: float) -> tuple[float, float, float]:
    """The formula written out by hand: mean -/+ t_{J-1} * sqrt((1/J + n2/n1) * s^2)."""
    j = len(values)
    mean = sum(values) / j
    s2 = sum((v - mean) ** 2 for v in values) / (j - 1)
    half = stats.t.ppf(1 - (1 - level) / 2, df=j - 1) * math.sqrt((1 / j + n_test / n_train) * s2)
    return mean, mean - half, mean + half


def test_corrected_interval_matches_the_formula() -> None:
    values = [0.61, 0.55, 0.70, 0.48, 0.66, 0.59, 0.63, 0.52, 0.68, 0.57]  # 2 x 5-fold
    ci = corrected_t_interval(values, n_train=1254, n_test=313, level=0.95)
    mean, low, high = _direct(values, 1254, 313, 0.95)
    assert (ci.mean, ci.low, ci.high) == pytest.approx((mean, low, high), rel=1e-12)
    assert ci.n_folds == 10 and ci.level == 0.95
    # The correction widens the naive t interval (overlapping training sets): by sqrt(1 + J n2/n1).
    naive = stats.t.ppf(0.975, 9) * np.std(values, ddof=1) / math.sqrt(10)
    assert (ci.high - ci.low) / (2 * naive) == pytest.approx(math.sqrt(1 + 10 * 313 / 1254))
    ci90 = corrected_t_interval(values, 1254, 313, level=0.90)
    assert ci.low < ci90.low < ci90.high < ci.high


def test_unequal_fold_sizes_use_the_ratio_of_mean_sizes() -> None:
    values = [0.2, 0.3, 0.25, 0.4]
    n_train, n_test = [100, 200, 300, 400], [100, 100, 100, 100]
    assert overlap_ratio(n_train, n_test) == pytest.approx(100 / 250)
    ci = corrected_t_interval(values, n_train, n_test)
    assert (ci.mean, ci.low, ci.high) == pytest.approx(_direct(values, 250, 100, 0.95))


def test_undefined_folds_are_left_out_and_too_few_give_no_interval() -> None:
    ci = corrected_t_interval([0.5, math.nan, 0.7, 0.6], 80, 20)
    assert ci.n_folds == 3
    assert (ci.mean, ci.low, ci.high) == pytest.approx(_direct([0.5, 0.7, 0.6], 80, 20, 0.95))
    one = corrected_t_interval([0.5, math.nan], 80, 20)
    assert one.mean == 0.5 and math.isnan(one.low) and math.isnan(one.high)
    with pytest.raises(ImblabError, match="fold sizes must be positive"):
        corrected_t_interval([0.5, 0.6], 0, 20)
    with pytest.raises(ImblabError, match="level"):
        corrected_t_interval([0.5, 0.6], 80, 20, level=95)


def test_paired_test_is_the_corrected_t_on_differences() -> None:
    rng = np.random.default_rng(0)
    a = rng.uniform(0.4, 0.7, 25)
    b = a - 0.02 + rng.normal(0, 0.01, 25)
    res = paired_corrected_t(a, b, n_train=1254, n_test=313)
    d = list(a - b)
    mean, low, high = _direct(d, 1254, 313, 0.95)
    assert (res.mean, res.low, res.high) == pytest.approx((mean, low, high), rel=1e-12)
    se = math.sqrt((1 / 25 + 313 / 1254) * np.var(d, ddof=1))
    assert res.t == pytest.approx(mean / se)
    assert res.p_value == pytest.approx(2 * stats.t.sf(abs(mean / se), 24))
    # Swapping the variants flips the sign, not the evidence.
    swapped = paired_corrected_t(b, a, 1254, 313)
    assert swapped.mean == pytest.approx(-res.mean) and swapped.p_value == pytest.approx(res.p_value)
    # A pair with an undefined value in either run is dropped from both.
    a2, b2 = np.r_[a, math.nan], np.r_[b, 0.5]
    assert paired_corrected_t(a2, b2, 1254, 313).n_folds == 25


def test_paired_test_edge_cases() -> None:
    same = paired_corrected_t([0.5, 0.6, 0.7], [0.5, 0.6, 0.7], 80, 20)
    assert same.mean == 0 and same.p_value == 1.0
    shifted = paired_corrected_t([0.75, 0.5, 0.625], [0.5, 0.25, 0.375], 80, 20)  # exact binary fractions
    assert shifted.mean == 0.25 and shifted.low == shifted.high == 0.25 and shifted.p_value == 0.0
    with pytest.raises(ImblabError, match="same outer folds"):
        paired_corrected_t([0.5, 0.6, 0.7], [0.5, 0.6], 80, 20)
