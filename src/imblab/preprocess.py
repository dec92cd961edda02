"""Preprocessing steps, fitted on training rows only and frozen with the model.

Every step follows the scikit-learn estimator contract so it can sit inside the imblearn
``Pipeline`` that cross-validation clones: nothing is learned outside ``fit``.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.impute import SimpleImputer
from sklearn.utils.validation import check_is_fitted

from imblab.errors import ImblabError

IMPUTE_STRATEGIES = ("mean", "median", "most_frequent")


def _as_array(X: Any) -> np.ndarray:
    return X.to_numpy(dtype=float) if isinstance(X, pd.DataFrame) else np.asarray(X, dtype=float)


class _ColumnSelector(TransformerMixin, BaseEstimator):
    """Base for steps that keep a subset of columns chosen in ``fit``."""

    keep_: np.ndarray
    n_features_in_: int

    def _select(self, X: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def fit(self, X: Any, y: Any = None) -> _ColumnSelector:
        arr = _as_array(X)
        self.n_features_in_ = arr.shape[1]
        if isinstance(X, pd.DataFrame):
            self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.keep_ = self._select(arr)
        if not self.keep_.any():
            raise ImblabError(
                f"preprocessing step {type(self).__name__} removed every feature column; "
                "relax preprocess.max_missing or check the input data"
            )
        return self

    def transform(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "keep_")
        arr = _as_array(X)
        if arr.shape[1] != self.n_features_in_:
            raise ImblabError(f"expected {self.n_features_in_} feature columns, got {arr.shape[1]}")
        return arr[:, self.keep_]

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        names = getattr(self, "feature_names_in_", None)
        if names is None:
            names = np.asarray(
                input_features
                if input_features is not None
                else [f"x{i}" for i in range(self.n_features_in_)],
                dtype=object,
            )
        return np.asarray(names, dtype=object)[self.keep_]


class DropMissingColumns(_ColumnSelector):
    """Drop columns whose fraction of missing values exceeds ``max_missing``."""

    def __init__(self, max_missing: float = 0.5) -> None:
        self.max_missing = max_missing

    def _select(self, X: np.ndarray) -> np.ndarray:
        if not 0.0 <= self.max_missing <= 1.0:
            raise ImblabError(f"preprocess.max_missing must be in [0, 1], got {self.max_missing}")
        missing = np.isnan(X).mean(axis=0)
        # An all-NaN column carries no information even when max_missing=1.0.
        return (missing <= self.max_missing) & (missing < 1.0)


class DropConstantColumns(_ColumnSelector):
    """Drop columns with at most one distinct non-missing value (SECOM has over a hundred)."""

    def _select(self, X: np.ndarray) -> np.ndarray:
        with warnings.catch_warnings():  # all-NaN columns warn; they are dropped below anyway
            warnings.simplefilter("ignore", RuntimeWarning)
            spread = np.nanmax(X, axis=0) - np.nanmin(X, axis=0)
        return np.nan_to_num(spread, nan=0.0) > 0.0


def build_preprocess_steps(
    max_missing: float = 0.5, drop_constant: bool = True, impute: str = "median", scaler: Any = None
) -> list[tuple[str, Any]]:
    """Column filters, imputation and an optional scaler (an unfitted sklearn transformer, e.g. built
    from the ``preprocess/scaler`` config group), in the order they run."""
    if impute not in IMPUTE_STRATEGIES:
        raise ImblabError(f"preprocess.impute must be one of {IMPUTE_STRATEGIES}, got {impute!r}")
    steps: list[tuple[str, Any]] = [("drop_missing", DropMissingColumns(float(max_missing)))]
    if drop_constant:
        steps.append(("drop_constant", DropConstantColumns()))
    steps.append(("impute", SimpleImputer(strategy=impute)))
    if scaler is not None:
        steps.append(("scale", scaler))
    return steps
