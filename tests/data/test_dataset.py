"""imblab.data.dataset: the content fingerprint and Dataset.validate's messages."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from imblab.data.dataset import Dataset
from imblab.errors import ImblabError


def test_fingerprint_nan_payload_and_time_unit_stable() -> None:
    weird_nan = np.frombuffer(np.uint64(0x7FF8DEADBEEF0001).tobytes(), dtype=np.float64)[0]
    assert np.isnan(weird_nan)
    ts = pd.Series(pd.date_range("2024-01-01", periods=2, freq="h"))
    a = Dataset("a", pd.DataFrame({"x": [np.nan, 0.0]}), pd.Series([0, 1], name="target"), ts)
    b = Dataset(
        "b", pd.DataFrame({"x": [weird_nan, -0.0]}), pd.Series([0, 1], name="target"), ts.dt.as_unit("s")
    )
    assert a.fingerprint() == b.fingerprint()


def _ds(X: pd.DataFrame, y: list[int] | None = None) -> Dataset:
    y = y if y is not None else [i % 2 for i in range(len(X))]
    return Dataset("t", X, pd.Series(y, name="target", dtype=np.int64))


def test_validate_infinite_values_names_columns() -> None:
    X = pd.DataFrame(
        {f"c{i}": [1.0, np.inf if i % 2 else 0.0, -np.inf if i == 6 else 2.0] for i in range(14)}
    )
    with pytest.raises(ImblabError, match="infinite") as exc:
        _ds(X).validate()
    msg = str(exc.value)
    assert all(f"'c{i}'" in msg for i in (1, 3, 5, 6, 7))
    assert "'c9'" not in msg and "and 3 more" in msg and "NaN" in msg


def test_validate_all_nan_features() -> None:
    _ds(pd.DataFrame({"a": [np.nan, 1.0], "b": [1.0, 2.0]})).validate()  # one value is enough
    with pytest.raises(
        ImblabError,
        match=r"no values at all \(every row NaN\): 'a', 'c'\. .*"
        r"data\.drop_columns=\[a,c\]",
    ):
        _ds(pd.DataFrame({"a": [np.nan, np.nan], "b": [1.0, 2.0], "c": [np.nan, np.nan]})).validate()
    with pytest.raises(ImblabError, match="every feature column is entirely missing"):
        _ds(pd.DataFrame({"a": [np.nan, np.nan], "b": [np.nan, np.nan]})).validate()


def test_validate_non_numeric_columns() -> None:
    X = pd.DataFrame(
        {"a": [1.0, 2.0], "tool": ["A", "B"], "day": pd.to_datetime(["2024-01-01", "2024-01-02"])}
    )
    with pytest.raises(ImblabError, match="non-numeric") as exc:
        _ds(X).validate()
    msg = str(exc.value)
    assert "'tool'" in msg and "'day'" in msg and "'a'" not in msg and "data.drop_columns" in msg


def test_validate_target_problems() -> None:
    X = pd.DataFrame({"a": [1.0, 2.0, 3.0]})
    with pytest.raises(ImblabError, match=r"target column 'target' has only one class \(0\).*needs both"):
        _ds(X, [0, 0, 0]).validate()
    with pytest.raises(ImblabError, match="0/1"):
        _ds(X, [0, 1, 2]).validate()
    with pytest.raises(ImblabError, match="duplicate feature column names"):
        _ds(pd.DataFrame([[1.0, 2.0], [3.0, 4.0]], columns=["a", "a"])).validate()
    with pytest.raises(ImblabError, match="no rows"):
        _ds(pd.DataFrame({"a": pd.Series([], dtype=float)}), []).validate()
