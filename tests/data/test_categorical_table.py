"""Categorical feature columns of ``data=table``: inferred from text/category dtypes or declared, loaded as
pandas categories with normalised text values, fingerprinted and validated like any other feature."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from imblab.data.categories import MISSING, categorical_columns, category_text
from imblab.data.table import load_table
from imblab.errors import ImblabError


def _write(tmp_path: Path, frame: pd.DataFrame, name: str = "t.parquet") -> str:
    path = tmp_path / name
    frame.to_parquet(path) if name.endswith("parquet") else frame.to_csv(path, index=False)
    return str(path)


def test_text_columns_become_categorical_features(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "x": [1.0, 2.0, 3.0, 4.0],
            "tool": ["A", "B", None, "A"],
            "shift": pd.Categorical(["day", "night", "day", "day"]),
            "y": [0, 1, 0, 1],
        }
    )
    ds = load_table(_write(tmp_path, frame), target="y")
    assert categorical_columns(ds.X) == ["tool", "shift"] and ds.X["x"].dtype == np.float64
    assert list(ds.X["tool"]) == ["A", "B", MISSING, "A"]  # missing is a category of its own


def test_declared_numeric_codes_are_categorical_and_read_alike_from_csv_and_parquet(tmp_path: Path) -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "tool": [7, 8, np.nan, 7], "y": [0, 1, 0, 1]})
    fingerprints = []
    for name in ("t.csv", "t.parquet"):
        ds = load_table(_write(tmp_path, frame, name), target="y", categorical_columns=["tool"])
        assert categorical_columns(ds.X) == ["tool"]
        assert list(ds.X["tool"]) == ["7", "8", MISSING, "7"]  # 7.0 (NaN made it float) is the category "7"
        fingerprints.append(ds.fingerprint())
    assert fingerprints[0] == fingerprints[1]
    undeclared = load_table(_write(tmp_path, frame), target="y")
    assert categorical_columns(undeclared.X) == [] and undeclared.fingerprint() != fingerprints[0]
    with pytest.raises(ImblabError, match=r"data\.categorical_columns \['y'\] are not feature columns"):
        load_table(_write(tmp_path, frame), target="y", categorical_columns=["y"])


@pytest.mark.parametrize(
    ("value", "text"),
    [(7, "7"), (7.0, "7"), (np.int64(7), "7"), (7.5, "7.5"), ("7", "7"), (None, MISSING), (np.nan, MISSING)],
)
def test_category_text_is_one_spelling_per_value(value: object, text: str) -> None:
    assert category_text(value) == text
