"""The :class:`Dataset` every loader returns, its content fingerprint and its validation.

Kept apart from the loaders so that modules which only pass data sets around (protocol, runner,
tuning, registry) do not import pandas readers, urllib or scikit-learn's generators.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from pandas.api.types import is_datetime64_any_dtype, is_numeric_dtype

from imblab.data.categories import categorical_columns
from imblab.errors import ImblabError

TARGET_NAME = "target"


@dataclass
class Dataset:
    """A binary classification data set; ``y == 1`` marks the positive (rare) class."""

    name: str
    X: pd.DataFrame
    y: pd.Series
    timestamps: pd.Series | None = None
    ids: pd.DataFrame | None = None

    @property
    def positive_rate(self) -> float:
        """Share of positive rows (NaN for an empty data set)."""
        return float(self.y.mean()) if len(self.y) else float("nan")

    def fingerprint(self) -> str:
        """Content hash (16 hex chars) of column names, X, y and timestamps; ``name`` and ``ids`` excluded.

        NaNs are hashed through a mask so NaN bit patterns do not matter; ``-0.0`` hashes like ``0.0``.
        """
        h = hashlib.sha256()
        h.update(b"imblab-dataset-v1\0")
        h.update(json.dumps([str(c) for c in self.X.columns]).encode())
        h.update(np.int64(len(self.X)).tobytes())
        for j in range(self.X.shape[1]):
            s = self.X.iloc[:, j]
            if is_numeric_dtype(s):  # excludes datetime/timedelta
                a = s.to_numpy(dtype=np.float64, na_value=np.nan, copy=True)
                nan = np.isnan(a)
                a[nan] = 0.0
                a += 0.0  # turns -0.0 into 0.0
                h.update(b"n" + np.packbits(nan).tobytes() + a.astype("<f8", copy=False).tobytes())
            else:
                h.update(b"o" + pd.util.hash_pandas_object(s, index=False).to_numpy().tobytes())
        h.update(b"y" + self.y.to_numpy(dtype=np.int64).astype("<i8", copy=False).tobytes())
        if self.timestamps is None:
            h.update(b"t-none")
        else:
            # Unit-normalised int64 (UTC for tz-aware) so s/us/ns resolutions of the same instants agree.
            ns = pd.DatetimeIndex(self.timestamps).as_unit("ns").asi8
            h.update(b"t" + ns.astype("<i8", copy=False).tobytes())
        return h.hexdigest()[:16]

    def validate(self) -> None:
        """Check the data set is usable for imbalanced binary classification; raise ImblabError otherwise."""
        n, p = self.X.shape
        if n == 0:
            raise ImblabError(f"data set '{self.name}' has no rows; check the file and any row filtering.")
        if p == 0:
            raise ImblabError(
                f"data set '{self.name}' has no feature columns; check data.drop_columns / data.id_columns "
                "did not remove them all."
            )
        dupes = self.X.columns[self.X.columns.duplicated()].unique().tolist()
        if dupes:
            raise ImblabError(
                f"data set '{self.name}' has duplicate feature column names {dupes[:10]}; rename them."
            )
        if len(self.y) != n or not self.y.index.equals(self.X.index):
            raise ImblabError(
                f"data set '{self.name}': y ({len(self.y)} rows) is not aligned with X ({n} rows)."
            )
        for attr in ("timestamps", "ids"):
            part = getattr(self, attr)
            if part is not None and (len(part) != n or not part.index.equals(self.X.index)):
                raise ImblabError(
                    f"data set '{self.name}': {attr} ({len(part)} rows) is not aligned with X ({n} rows)."
                )
        self._validate_target()
        self._validate_features()
        if self.timestamps is not None:
            if not is_datetime64_any_dtype(self.timestamps):
                raise ImblabError(
                    f"data set '{self.name}': timestamps have dtype {self.timestamps.dtype}, "
                    "expected datetime64."
                )
            n_nat = int(self.timestamps.isna().sum())
            if n_nat:
                raise ImblabError(
                    f"data set '{self.name}': {n_nat} rows have no timestamp; drop those rows or fill "
                    "them in, since the time split needs a time for every row."
                )

    def _validate_target(self) -> None:
        y = self.y
        name = y.name if y.name is not None else TARGET_NAME
        if y.isna().any():
            raise ImblabError(
                f"target column '{name}' has {int(y.isna().sum())} missing values; drop those rows."
            )
        values = sorted_values([py_scalar(v) for v in pd.unique(y)])
        if not set(values) <= {0, 1}:
            raise ImblabError(
                f"target column '{name}' must hold 0/1 labels (1 = positive class), found {values[:10]}."
            )
        if len(values) < 2:
            raise ImblabError(
                f"target column '{name}' has only one class ({values[0]}) in {len(y)} rows; imbalanced "
                "classification needs both classes (0 = negative, 1 = positive). Check the target column, "
                "positive_label and any row filtering."
            )

    def _validate_features(self) -> None:
        # Categorical (pandas category) columns are features too; the numeric checks are for the rest.
        X = self.X.drop(columns=categorical_columns(self.X))
        non_numeric = [c for c in X.columns if not is_numeric_dtype(X[c])]
        if non_numeric:
            kinds = ", ".join(f"{c!r} ({X[c].dtype})" for c in non_numeric[:10])
            more = f" and {len(non_numeric) - 10} more" if len(non_numeric) > 10 else ""
            listed = ",".join(str(c) for c in non_numeric[:10])
            raise ImblabError(
                f"data set '{self.name}' has non-numeric feature columns: {kinds}{more}. Drop them with "
                f"data.drop_columns=[{listed}], declare id columns with data.id_columns, or encode them as "
                "numbers (or as pandas category columns) before loading."
            )
        values = X.to_numpy(dtype=np.float64, na_value=np.nan)
        inf_cols = [X.columns[j] for j in np.flatnonzero(np.isinf(values).any(axis=0))]
        if inf_cols:
            shown = ", ".join(repr(c) for c in inf_cols[:5])
            more = f" and {len(inf_cols) - 5} more" if len(inf_cols) > 5 else ""
            raise ImblabError(
                f"data set '{self.name}' has infinite values in columns {shown}{more}; replace them with NaN "
                "(treated as missing) or drop those columns (data.drop_columns)."
            )
        empty = [X.columns[j] for j in np.flatnonzero(np.isnan(values).all(axis=0))]
        if X.shape[1] and len(empty) == X.shape[1]:
            raise ImblabError(
                f"data set '{self.name}': every feature column is entirely missing (NaN); check the file's "
                "separator/format and data.drop_columns."
            )
        # A column without a single value carries nothing to learn and usually means a broken export or
        # a wrong column: dropping it silently would hide that (and preprocess=none would feed NaN on).
        if empty:
            shown = ", ".join(repr(c) for c in empty[:10])
            more = f" and {len(empty) - 10} more" if len(empty) > 10 else ""
            listed = ",".join(str(c) for c in empty)
            raise ImblabError(
                f"data set '{self.name}' has feature columns with no values at all (every row NaN): "
                f"{shown}{more}. Check the file, or drop them with data.drop_columns=[{listed}]."
            )


def py_scalar(v: Any) -> Any:
    """Numpy scalar -> Python scalar, so sets/messages behave (np.True_ == 1, clean reprs)."""
    return v.item() if isinstance(v, np.generic) else v


def sorted_values(values: list[Any]) -> list[Any]:
    """Sorted if the values are comparable (numbers, strings), else by repr, for stable messages."""
    try:
        return sorted(values)
    except TypeError:
        return sorted(values, key=repr)
