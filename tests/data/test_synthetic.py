"""imblab.data.synthetic: make_synthetic's shape, rates, seeding and argument checks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from imblab.data.synthetic import make_synthetic
from imblab.errors import ImblabError


def test_make_synthetic_defaults() -> None:
    ds = make_synthetic()
    assert ds.X.shape == (2000, 20) and ds.X.columns[0] == "x00" and ds.X.columns[-1] == "x19"
    assert (ds.X.dtypes == np.float64).all() and ds.y.dtype == np.int64 and ds.y.name == "target"
    assert abs(ds.positive_rate - 0.066) < 0.01
    assert ds.X.isna().sum().sum() == 0
    assert ds.timestamps is not None and ds.timestamps.is_monotonic_increasing
    assert (ds.timestamps.diff().dropna() == pd.Timedelta(hours=1)).all()


def test_make_synthetic_missing_rate_and_seed() -> None:
    ds = make_synthetic(n_samples=3000, n_features=10, positive_rate=0.2, missing_rate=0.1, seed=3)
    assert abs(ds.positive_rate - 0.2) < 0.01
    assert abs(float(ds.X.isna().to_numpy().mean()) - 0.1) < 0.01
    same = make_synthetic(n_samples=3000, n_features=10, positive_rate=0.2, missing_rate=0.1, seed=3)
    other = make_synthetic(n_samples=3000, n_features=10, positive_rate=0.2, missing_rate=0.1, seed=4)
    assert same.fingerprint() == ds.fingerprint()
    assert other.fingerprint() != ds.fingerprint()


def test_make_synthetic_small_informative() -> None:
    ds = make_synthetic(n_samples=200, n_features=1, n_informative=1, positive_rate=0.1)
    assert ds.X.shape == (200, 1)


@pytest.mark.parametrize("rate", [0.0, 0.5, 0.7, -0.1])
def test_make_synthetic_rejects_bad_rate(rate: float) -> None:
    with pytest.raises(ImblabError, match="positive_rate"):
        make_synthetic(positive_rate=rate)
