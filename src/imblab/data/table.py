"""Generic CSV / Parquet tables with a binary target column, for data sets other than SECOM."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pandas.api.types import is_datetime64_any_dtype, is_numeric_dtype

from imblab.data.categories import as_category_text
from imblab.data.dataset import TARGET_NAME, Dataset, py_scalar, sorted_values
from imblab.errors import ImblabError

TABLE_SUFFIXES = (".csv", ".csv.gz", ".parquet", ".pq")


def read_frame(path: str, what: str = "data file") -> tuple[pd.DataFrame, str]:
    """A CSV (``.csv``, ``.csv.gz``) or Parquet (``.parquet``, ``.pq``) file and its name without suffix."""
    p = Path(path).expanduser()
    suffix = next((s for s in TABLE_SUFFIXES if p.name.lower().endswith(s)), None)
    if suffix is None:
        raise ImblabError(
            f"cannot read {p}: unsupported file type; supported suffixes are {', '.join(TABLE_SUFFIXES)}."
        )
    if not p.is_file():
        raise ImblabError(f"{what} not found: {p} (resolved from {path!r}); check data.path.")
    try:
        df = pd.read_parquet(p) if suffix in (".parquet", ".pq") else pd.read_csv(p, low_memory=False)
    except (OSError, ValueError, pd.errors.ParserError, ImportError) as e:
        raise unreadable(p, suffix[1:], e, what) from None
    return df, p.name[: -len(suffix)]


def unreadable(path: Path, kind: str, error: Exception, what: str = "data file") -> ImblabError:
    """The error for a table file pandas cannot read; an empty file ("No columns to parse") says so."""
    if isinstance(error, pd.errors.EmptyDataError):
        return ImblabError(
            f"{what} {path} is empty: it has no header and no rows; give a header row of column names and "
            "the data rows (was the file written completely?)"
        )
    return ImblabError(f"could not read {what} {path} as {kind}: {error}")


def no_rows(path: Path, columns: list[Any], what: str = "data file") -> ImblabError:
    """The error for a table with column names but no rows."""
    shown = [str(c) for c in columns[:10]] + (["..."] if len(columns) > 10 else [])
    return ImblabError(
        f"{what} {path} has column names ({', '.join(shown)}) but no rows; give the data rows too "
        "(was the file written completely?)"
    )


def load_table(
    path: str,
    target: str,
    positive_label: str | int | float | None = None,
    drop_columns: list[str] | None = None,
    id_columns: list[str] | None = None,
    timestamp_column: str | None = None,
    name: str | None = None,
    categorical_columns: list[str] | None = None,
) -> Dataset:
    """Load a CSV (``.csv``, ``.csv.gz``) or Parquet (``.parquet``, ``.pq``) file as a binary Dataset.

    ``target`` must have exactly two classes. 0/1, False/True and -1/1 targets map the larger value to 1;
    any other pair (e.g. "pass"/"fail") needs ``positive_label``. ``id_columns`` and ``timestamp_column``
    leave X and travel in ``ids`` / ``timestamps``; numeric features become float64; text/category
    features and the numeric ones named in ``categorical_columns`` become categorical features.
    """
    df, stem = read_frame(path)
    p = Path(path).expanduser()
    if len(df) == 0:
        raise no_rows(p, list(df.columns))
    df = df.reset_index(drop=True)
    columns = list(df.columns)

    def need(cols: Iterable[str], what: str) -> None:
        absent = [c for c in cols if c not in df.columns]
        if absent:
            raise ImblabError(
                f"{what} {absent} not in {p}; available columns (first 20 of {len(columns)}): {columns[:20]}."
            )

    need([target], "target column")
    drop_columns, id_columns = list(drop_columns or []), list(id_columns or [])
    need(drop_columns, "data.drop_columns")
    need(id_columns, "data.id_columns")
    if timestamp_column is not None:
        need([timestamp_column], "timestamp column")
    special = [*drop_columns, *id_columns, *([timestamp_column] if timestamp_column else [])]
    if target in special:
        raise ImblabError(
            f"target column '{target}' is also listed in drop_columns/id_columns/timestamp_column."
        )

    y = _binary_target(df[target], target, positive_label, p)
    timestamps = _parse_timestamps(df[timestamp_column], timestamp_column, p) if timestamp_column else None
    ids = df[id_columns].copy() if id_columns else None
    X = df.drop(columns=[target, *special])
    X = _categorical_features(X, list(categorical_columns or []), p)
    # Numeric features (ints, bools, nullable types) become float64 with NaN; anything else is left as is so
    # that validate() can name it.
    X = X.astype({c: np.float64 for c in X.columns if is_numeric_dtype(X[c])})

    ds = Dataset(name=name or stem, X=X, y=y, timestamps=timestamps, ids=ids)
    ds.validate()
    return ds


def _categorical_features(X: pd.DataFrame, declared: list[str], path: Path) -> pd.DataFrame:
    """Text and category columns, and the ``declared`` ones (numeric codes), as categorical features.

    Inferred from the dtype so a table with a tool or shift column just works; numeric codes (tool 7)
    stay numbers unless declared in ``data.categorical_columns``. Values become text categories
    (``imblab.data.categories``); the categories a model knows are learned inside each training fold.
    """
    absent = [c for c in declared if c not in X.columns]
    if absent:
        raise ImblabError(
            f"data.categorical_columns {absent} are not feature columns of {path} (the target, id, timestamp "
            f"and dropped columns are not features); feature columns (first 20): {list(X.columns)[:20]}."
        )
    inferred = [c for c in X.columns if not is_numeric_dtype(X[c]) and not is_datetime64_any_dtype(X[c])]
    columns = [*declared, *(c for c in inferred if c not in declared)]
    if not columns:
        return X
    X = X.copy()
    for c in columns:
        text = as_category_text(X[c])
        distinct = int(text.nunique())
        # One category per row teaches nothing and one-hot encodes into a column per row: an identifier.
        if distinct > max(50, len(X) // 2):
            raise ImblabError(
                f"feature column '{c}' in {path} has {distinct} distinct text values in {len(X)} rows: it "
                "looks like an identifier or free text, not a category. Declare it with "
                f"data.id_columns=[{c}] or drop it with data.drop_columns=[{c}]."
            )
        X[c] = text.astype("category")
    return X


def _binary_target(s: pd.Series, target: str, positive_label: Any, path: Path) -> pd.Series:
    n_null = int(s.isna().sum())
    if n_null:
        rows = s.index[s.isna()][:5].tolist()
        raise ImblabError(
            f"target column '{target}' in {path} has {n_null} missing values (first data rows, 0-based: "
            f"{rows}); drop those rows before loading, imblab does not guess labels."
        )
    values = sorted_values([py_scalar(v) for v in pd.unique(s)])
    if len(values) == 1:
        raise ImblabError(
            f"target column '{target}' has only one class ({values[0]!r}) in {len(s)} rows; imbalanced "
            "classification needs both classes. Check that this is the right column and file."
        )
    if len(values) > 2:
        shown = values[:10] + (["..."] if len(values) > 10 else [])
        raise ImblabError(
            f"target column '{target}' has {len(values)} distinct values {shown}; imblab needs a binary "
            "target. Map it to two classes before loading (e.g. defect vs. no defect)."
        )
    if positive_label is None:
        if set(values) in ({0, 1}, {-1, 1}):  # also matches {False, True} and {0.0, 1.0}
            positive = max(values)
        else:
            raise ImblabError(
                f"target column '{target}' has values {values}; set positive_label to the one that marks the "
                f"positive (rare) class, e.g. data.positive_label={values[0]}."
            )
    else:
        positive = _match_label(values, positive_label, target)
    return pd.Series((s == positive).to_numpy(dtype=np.int64), name=TARGET_NAME)


def _match_label(values: list[Any], label: Any, target: str) -> Any:
    """Find ``label`` among the target values, leniently: YAML may give 1 for "1" or "1" for 1.0."""
    for same in (
        lambda v: type(v) is type(label) and v == label,
        lambda v: v == label,
        lambda v: _as_float(v) is not None and _as_float(v) == _as_float(label),
        lambda v: str(v) == str(label),
    ):
        hits = [v for v in values if same(v)]
        if len(hits) == 1:
            return hits[0]
    raise ImblabError(
        f"positive_label {label!r} is not one of the values of target column '{target}': {values}; "
        "set data.positive_label to one of them."
    )


def _as_float(v: Any) -> float | None:
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def _parse_timestamps(s: pd.Series, column: str, path: Path) -> pd.Series:
    if not is_datetime64_any_dtype(s):
        if is_numeric_dtype(s):
            raise ImblabError(
                f"timestamp column '{column}' in {path} is numeric ({s.dtype}); store it as ISO 8601 text "
                "or a datetime column so its unit is unambiguous."
            )
        try:
            # ISO 8601 only: formats like 01/02/2008 are ambiguous (day/month) and silently mis-order time.
            s = pd.to_datetime(s, format="ISO8601")
        except (ValueError, TypeError) as e:
            raise ImblabError(
                f"timestamp column '{column}' in {path} is not ISO 8601 (e.g. 2008-07-19 11:55:00): {e}. "
                "Convert it before loading."
            ) from e
    return s.copy()
