"""imblab.data.table: CSV / Parquet loading, target mapping, id / timestamp columns and their errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from imblab.data.table import load_table
from imblab.errors import ImblabError


def _frame(n: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "lot": [f"L{i:03d}" for i in range(n)],
            "a": rng.normal(size=n),
            "b": rng.integers(0, 5, size=n),
            "flag": rng.random(n) < 0.5,
            "when": pd.date_range("2024-03-01", periods=n, freq="D").strftime("%Y-%m-%d %H:%M:%S"),
            "label": np.where(np.arange(n) % 8 == 0, 1, 0),
        }
    )


@pytest.mark.parametrize("fname", ["t.csv", "t.csv.gz", "t.parquet", "t.pq"])
def test_load_table_round_trip(tmp_path: Path, fname: str) -> None:
    df = _frame()
    df.loc[3, "a"] = np.nan
    path = tmp_path / fname
    if ".csv" in fname:
        df.to_csv(path, index=False)
    else:
        df.to_parquet(path, index=False)
    ds = load_table(str(path), target="label", id_columns=["lot"], timestamp_column="when")
    assert ds.name == "t"
    assert list(ds.X.columns) == ["a", "b", "flag"]
    assert (ds.X.dtypes == np.float64).all()
    assert np.isnan(ds.X.loc[3, "a"])
    np.testing.assert_allclose(ds.X["a"].to_numpy(), df["a"].to_numpy())
    assert ds.y.name == "target" and ds.y.dtype == np.int64
    assert ds.y.tolist() == df["label"].tolist()
    assert ds.ids is not None and ds.ids["lot"].tolist() == df["lot"].tolist()
    assert ds.timestamps is not None and ds.timestamps.iloc[1] == pd.Timestamp("2024-03-02")
    assert ds.X.index.equals(pd.RangeIndex(len(df)))


def test_load_table_drop_columns_and_name(tmp_path: Path) -> None:
    path = tmp_path / "plant.csv"
    _frame().to_csv(path, index=False)
    ds = load_table(str(path), target="label", drop_columns=["lot", "when"], name="plant-a")
    assert ds.name == "plant-a" and list(ds.X.columns) == ["a", "b", "flag"]
    assert ds.ids is None and ds.timestamps is None


@pytest.mark.parametrize(
    ("values", "expected"),
    [([0, 1], [0, 1]), ([False, True], [0, 1]), ([-1, 1], [0, 1]), ([1.0, 0.0], [1, 0])],
)
def test_load_table_numeric_targets_map_larger_to_one(tmp_path: Path, values: list, expected: list) -> None:
    path = tmp_path / "t.parquet"
    pd.DataFrame({"x": [1.0, 2.0] * 3, "y": values * 3}).to_parquet(path)
    assert load_table(str(path), target="y").y.tolist() == expected * 3


def test_load_table_string_labels_need_positive_label(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "status": ["pass", "fail", "pass", "pass"]}).to_csv(
        path, index=False
    )
    with pytest.raises(ImblabError, match="positive_label") as exc:
        load_table(str(path), target="status")
    assert "'fail'" in str(exc.value) and "'pass'" in str(exc.value)
    assert load_table(str(path), target="status", positive_label="fail").y.tolist() == [0, 1, 0, 0]
    with pytest.raises(ImblabError, match="'broken' is not one of"):
        load_table(str(path), target="status", positive_label="broken")


def test_load_table_positive_label_overrides_and_is_lenient(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": [0, 1, 0]}).to_csv(path, index=False)
    assert load_table(str(path), target="y", positive_label=0).y.tolist() == [1, 0, 1]
    assert load_table(str(path), target="y", positive_label="1").y.tolist() == [0, 1, 0]


def test_load_table_absent_target_lists_columns(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    pd.DataFrame({f"c{i}": [1.0, 2.0] for i in range(25)}).to_csv(path, index=False)
    with pytest.raises(ImblabError, match="'nope'") as exc:
        load_table(str(path), target="nope")
    msg = str(exc.value)
    assert "c0" in msg and "c19" in msg and "c20" not in msg and "25" in msg


def test_load_table_one_class(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    pd.DataFrame({"x": [1.0, 2.0], "y": [0, 0]}).to_csv(path, index=False)
    with pytest.raises(ImblabError, match=r"only one class \(0\).*needs both"):
        load_table(str(path), target="y")


def test_load_table_three_classes(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": ["a", "b", "c"]}).to_csv(path, index=False)
    with pytest.raises(ImblabError, match="3 distinct values"):
        load_table(str(path), target="y", positive_label="a")


def test_load_table_null_target(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "y": [0, None, 1, None]}).to_csv(path, index=False)
    with pytest.raises(ImblabError, match=r"2 missing values.*drop"):
        load_table(str(path), target="y")


def test_load_table_bad_paths(tmp_path: Path) -> None:
    bad = tmp_path / "t.xlsx"
    bad.write_text("x")
    with pytest.raises(ImblabError, match=r"\.csv, \.csv\.gz, \.parquet, \.pq"):
        load_table(str(bad), target="y")
    with pytest.raises(ImblabError, match="not found") as exc:
        load_table(str(tmp_path / "absent.csv"), target="y")
    assert "absent.csv" in str(exc.value)


def test_load_table_unknown_id_and_ambiguous_timestamps(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    df = pd.DataFrame({"x": [1.0, 2.0], "y": [0, 1], "when": ["02/08/2008 10:00", "13/08/2008 10:00"]})
    df.to_csv(path, index=False)
    with pytest.raises(ImblabError, match=r"data\.id_columns"):
        load_table(str(path), target="y", id_columns=["lot"], drop_columns=["when"])
    with pytest.raises(ImblabError, match="ISO 8601"):
        load_table(str(path), target="y", timestamp_column="when")


def test_load_table_non_numeric_feature_suggests_drop(tmp_path: Path) -> None:
    """Text columns are categorical features (tests/data/test_categorical_table.py), unless they look like
    identifiers: a distinct value in (almost) every row."""
    path = tmp_path / "t.csv"
    n = 120
    tools = [f"T{i}" for i in range(n)]
    frame = pd.DataFrame({"x": np.arange(n, dtype=float), "tool": tools, "y": [0, 1] * (n // 2)})
    frame.to_csv(path, index=False)
    with pytest.raises(ImblabError, match=r"'tool'.*identifier.*data\.drop_columns=\[tool\]"):
        load_table(str(path), target="y")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", r"data file .*t\.csv is empty: it has no header and no rows"),
        ("lot,x,y\n", r"data file .*t\.csv has column names \(lot, x, y\) but no rows"),
    ],
    ids=["empty", "header-only"],
)
def test_load_table_without_rows(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "t.csv"
    path.write_text(content)
    with pytest.raises(ImblabError, match=message):
        load_table(str(path), target="y")
