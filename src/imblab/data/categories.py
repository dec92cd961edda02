"""Categorical feature values as text: the one normalisation shared by loading, fitting and prediction.

A categorical feature column is a pandas ``category`` column of a ``Dataset.X``. Its values are text, so
that a tool id read as ``7`` from a CSV, as ``7.0`` from a Parquet file with missing values and as
``"7"`` from a JSON request are the same category.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from pandas.api.types import CategoricalDtype

MISSING = "<missing>"  # missing values form their own category: in a defect log, absence is information


def category_text(value: Any) -> Any:
    """``value`` as category text: NaN/None -> ``MISSING``, integral numbers without ``.0``."""
    if value is None or value is pd.NA or value is pd.NaT:
        return MISSING
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, float | np.floating):
        if math.isnan(value):
            return MISSING
        if float(value).is_integer():
            return str(int(value))
    if isinstance(value, np.integer):
        return str(int(value))
    return str(value)


def as_category_text(values: pd.Series) -> pd.Series:
    """Every value of ``values`` through :func:`category_text` (object dtype, same index)."""
    return pd.Series([category_text(v) for v in values.tolist()], index=values.index, dtype=object)


def is_categorical(series: pd.Series) -> bool:
    """A categorical feature column (pandas ``category`` dtype)."""
    return isinstance(series.dtype, CategoricalDtype)


def categorical_columns(X: pd.DataFrame) -> list[str]:
    """Names of the categorical feature columns of ``X``, in column order."""
    return [str(c) for c in X.columns if is_categorical(X[c])]
