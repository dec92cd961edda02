"""Any person-year panel from a CSV / Parquet file (or a DataFrame), with a class target in a given order."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
from pandas.api.types import is_numeric_dtype

from imblab.data.table import read_frame
from imblab.errors import ImblabError
from imblab.panel.dataset import Panel, validate


def load_panel_table(
    path: str,
    id: str,
    time: str,
    regression_target: str,
    class_target: str,
    class_order: Sequence[Any],
    features: Sequence[str] | None = None,
    known: Sequence[str] = (),
    name: str | None = None,
) -> Panel:
    """Load a panel from ``.csv``, ``.csv.gz``, ``.parquet`` or ``.pq`` (one row per person and wave).

    ``class_order`` lists the raw class values from first to last (e.g. ``["low", "mid", "high"]``); they
    become codes 0..K-1 and their ``str`` the class names. ``features=None`` takes every numeric column that
    has no other role. Rows with a missing target are dropped and counted (see :func:`validate`).
    """
    df, stem = read_frame(path, "panel file")
    return panel_from_frame(
        df,
        id=id,
        time=time,
        regression_target=regression_target,
        class_target=class_target,
        class_order=class_order,
        features=features,
        known=known,
        name=name or stem,
    )


def panel_from_frame(
    df: pd.DataFrame,
    *,
    id: str,
    time: str,
    regression_target: str,
    class_target: str,
    class_order: Sequence[Any],
    features: Sequence[str] | None = None,
    known: Sequence[str] = (),
    name: str = "panel",
    dropped: dict[str, int] | None = None,
) -> Panel:
    """A validated :class:`Panel` from a frame whose class column holds the raw values of ``class_order``."""
    if class_target not in df.columns:
        raise ImblabError(
            f"panel '{name}': class target '{class_target}' not in the columns (first 30 of {df.shape[1]}): "
            f"{list(df.columns[:30])}."
        )
    order = list(class_order)
    df = df.reset_index(drop=True)
    df = df.assign(**{class_target: class_codes(df[class_target], order, name)})
    known = list(known)
    if features is None:
        taken = {id, time, regression_target, class_target, *known}
        features = [c for c in df.columns if c not in taken and is_numeric_dtype(df[c])]
    panel = Panel(
        name=name,
        frame=df,
        id=id,
        time=time,
        features=list(features),
        known=known,
        regression_target=regression_target,
        class_target=class_target,
        class_names=[str(v) for v in order],
        dropped=dict(dropped or {}),
    )
    return validate(panel)


def class_codes(s: pd.Series, class_order: list[Any], name: str) -> pd.Series:
    """Raw class values -> codes 0..K-1 (float, NaN stays NaN to be dropped); a value outside is an error.

    Values match by equality (1 == 1.0), then by their text, then as numbers, since a YAML override may
    give 1 for "1" and a CSV column with gaps reads 1 as 1.0.
    """
    if len(class_order) < 2 or len({str(v) for v in class_order}) != len(class_order):
        raise ImblabError(
            f"panel '{name}': class_order must list at least two distinct class values in order, got "
            f"{class_order}."
        )
    mapping = {v: _position(v, class_order) for v in pd.unique(s.dropna())}
    unknown = [v for v, code in mapping.items() if code is None]
    if unknown:
        counts = s[s.isin(unknown)].value_counts()
        shown = ", ".join(f"{v!r} ({n} rows)" for v, n in counts.head(10).items())
        raise ImblabError(
            f"panel '{name}': class target '{s.name}' has values outside class_order {class_order}: {shown}. "
            "Add them to class_order in their place, or drop or recode those rows before loading."
        )
    return s.map(mapping).astype("float64")


def _position(value: Any, class_order: list[Any]) -> int | None:
    for key in (lambda v: v, str, _as_float):
        wanted = key(value)
        if wanted is None:
            continue
        for i, item in enumerate(class_order):
            if key(item) is not None and key(item) == wanted:
                return i
    return None


def _as_float(v: Any) -> float | None:
    try:
        return float(v)
    except (TypeError, ValueError):
        return None
