"""imblab.panel.dataset: validate() cleans what it may (missing targets) and names everything else."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from imblab.errors import ImblabError
from imblab.panel.dataset import MIN_PERSONS, Panel, PanelPrediction, validate


def small_panel(n_persons: int = 12, waves: int = 3, **changes: object) -> Panel:
    """A tiny valid panel: persons 0..n-1 with ``waves`` yearly waves each, rows deliberately unsorted."""
    rows = [
        {
            "pid": p,
            "t": 2000 + w,
            "x": float(p + w),
            "age": 30.0 + w,
            "wage": 2.0 + 0.1 * w,
            "cls": (p + w) % 3,
        }
        for p in range(n_persons)
        for w in range(waves)
    ]
    frame = pd.DataFrame(rows[::-1])
    panel = Panel(
        name="small",
        frame=frame,
        id="pid",
        time="t",
        features=["x"],
        known=["age"],
        regression_target="wage",
        class_target="cls",
        class_names=["a", "b", "c"],
    )
    return replace(panel, **changes)


def test_validate_sorts_types_and_keeps_only_named_columns() -> None:
    panel = small_panel()
    panel.frame["unused"] = "text"
    out = validate(panel)
    f = out.frame
    assert list(f.columns) == ["pid", "t", "x", "age", "wage", "cls"]
    assert f.index.equals(pd.RangeIndex(len(f)))
    assert f[["pid", "t"]].equals(f[["pid", "t"]].sort_values(["pid", "t"]).reset_index(drop=True))
    assert f["cls"].dtype == np.int64 and f["x"].dtype == np.float64
    assert out.dropped == {} and out.n_persons == 12 and out.n_single_wave_persons == 0 and out.n_classes == 3
    assert validate(out).frame.equals(f)  # idempotent


def test_missing_targets_are_dropped_and_counted_and_single_wave_persons_counted() -> None:
    panel = small_panel(dropped={"earlier reason": 2})
    f = panel.frame
    f.loc[(f.pid == 0) & (f.t >= 2001), "wage"] = np.nan  # person 0 keeps one wave
    f.loc[(f.pid == 1) & (f.t == 2000), "cls"] = np.nan
    f.loc[(f.pid == 2) & (f.t == 2000), ["wage", "cls"]] = np.nan  # both: counted once, under the wage
    out = validate(panel)
    assert out.dropped == {"earlier reason": 2, "missing wage": 3, "missing cls": 1}
    assert len(out.frame) == 36 - 4
    assert out.n_single_wave_persons == 1 and out.n_persons == 12


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"id": "nope"}, r"id column \['nope'\] not in the frame"),
        ({"time": "when"}, r"time column \['when'\] not in the frame"),
        ({"features": ["x", "zz"]}, r"feature columns \['zz'\] not in the frame"),
        ({"features": ["x", "wage"]}, r"also the id, time or a target"),
        ({"known": ["cls"]}, r"also the id, time or a target"),
        ({"features": ["x", "x"]}, r"more than once"),
        ({"class_target": "wage"}, r"four different columns"),
        ({"class_names": ["a", "b", "b"]}, r"at least two distinct names"),
        ({"class_names": ["a", "b"]}, r"outside the class order 0..1"),
    ],
)
def test_bad_roles_are_clear_errors(change: dict, message: str) -> None:
    with pytest.raises(ImblabError, match=message):
        validate(small_panel(**change))


def test_duplicate_rows_are_named() -> None:
    panel = small_panel()
    panel = replace(panel, frame=pd.concat([panel.frame, panel.frame.iloc[[0, 5]]], ignore_index=True))
    with pytest.raises(ImblabError, match=r"2 duplicate \(pid, t\) rows, e.g. \(11, 2002\), \(10, 2000\)"):
        validate(panel)


def test_class_value_outside_the_order_is_named() -> None:
    panel = small_panel()
    panel.frame.loc[3, "cls"] = 7
    with pytest.raises(ImblabError, match=r"values \[7.0\] outside the class order 0..2"):
        validate(panel)
    panel.frame["cls"] = panel.frame["cls"].astype(str)
    with pytest.raises(ImblabError, match=r"must hold int codes 0..2.*class_order"):
        validate(panel)


def test_non_numeric_or_infinite_inputs_and_bad_times_are_clear_errors() -> None:
    panel = small_panel()
    panel.frame["x"] = panel.frame["x"].astype(str)
    with pytest.raises(ImblabError, match=r"feature columns must be numeric, found 'x'"):
        validate(panel)
    panel = small_panel()
    panel.frame.loc[0, "age"] = np.inf
    with pytest.raises(ImblabError, match=r"known-in-advance columns \['age'\] hold infinite values"):
        validate(panel)
    panel = small_panel()
    panel.frame.loc[0, "t"] = np.nan
    with pytest.raises(ImblabError, match=r"missing or infinite time"):
        validate(panel)
    panel = small_panel()
    panel.frame.loc[0, "pid"] = np.nan
    with pytest.raises(ImblabError, match=r"no person id"):
        validate(panel)


def test_too_few_persons_with_two_waves() -> None:
    validate(small_panel(n_persons=MIN_PERSONS))
    with pytest.raises(ImblabError, match=rf"{MIN_PERSONS - 1} persons with two or more waves"):
        validate(small_panel(n_persons=MIN_PERSONS - 1))
    with pytest.raises(
        ImblabError, match=r"0 persons with two or more waves \(30 persons in all, 30 with a single"
    ):
        validate(small_panel(n_persons=30, waves=1))


def test_panel_prediction_checks_shapes_and_gives_probabilities() -> None:
    pred = PanelPrediction(wage=[1.0, 2.0], logits=[[0.0, 0.0], [np.log(3.0), 0.0]])
    np.testing.assert_allclose(pred.probabilities(), [[0.5, 0.5], [0.75, 0.25]])
    with pytest.raises(ImblabError, match=r"wage of shape \(n,\) and logits of shape \(n, K\)"):
        PanelPrediction(wage=np.zeros(3), logits=np.zeros((2, 3)))
