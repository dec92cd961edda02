"""Synthetic imbalanced data (scikit-learn ``make_classification``): fast, for tests and demos."""

from __future__ import annotations

import numpy as np
import pandas as pd

from imblab.data.dataset import TARGET_NAME, Dataset
from imblab.errors import ImblabError


def make_synthetic(
    n_samples: int = 2000,
    n_features: int = 20,
    positive_rate: float = 0.066,
    n_informative: int = 5,
    class_sep: float = 1.0,
    missing_rate: float = 0.0,
    seed: int = 0,
) -> Dataset:
    """An imbalanced ``make_classification`` problem (default rate ~ SECOM's 6.6%) with hourly timestamps.

    ``missing_rate`` blanks cells completely at random (seeded) to exercise imputation.
    """
    from sklearn.datasets import make_classification  # deferred: sklearn import is slow and rarely needed

    if not 0 < positive_rate < 0.5:
        raise ImblabError(
            "positive_rate must be between 0 and 0.5 (exclusive) for an imbalanced problem, "
            f"got {positive_rate}."
        )
    if not 0 <= missing_rate < 1:
        raise ImblabError(f"missing_rate must be in [0, 1), got {missing_rate}.")
    if n_features < 1 or not 1 <= n_informative <= n_features:
        raise ImblabError(
            f"need n_features >= 1 and 1 <= n_informative <= n_features, got n_features={n_features}, "
            f"n_informative={n_informative}."
        )
    if n_samples * positive_rate < 2:
        raise ImblabError(
            f"n_samples={n_samples} with positive_rate={positive_rate} gives fewer than 2 positives; "
            "raise n_samples."
        )

    X, y = make_classification(
        n_samples=n_samples,
        n_features=n_features,
        n_informative=n_informative,
        n_redundant=min(2, n_features - n_informative),
        n_repeated=0,
        n_clusters_per_class=2 if n_informative >= 2 else 1,  # sklearn needs 2*clusters <= 2**informative
        weights=[1 - positive_rate],
        flip_y=0.0,
        class_sep=class_sep,
        random_state=seed,
    )
    if missing_rate > 0:
        X[np.random.default_rng(seed).random(X.shape) < missing_rate] = np.nan
    width = max(2, len(str(n_features - 1)))
    ds = Dataset(
        name="synthetic",
        X=pd.DataFrame(X, columns=[f"x{j:0{width}d}" for j in range(n_features)]),
        y=pd.Series(y.astype(np.int64), name=TARGET_NAME),
        timestamps=pd.Series(pd.date_range("2024-01-01", periods=n_samples, freq="h"), name="timestamp"),
    )
    ds.validate()
    return ds
