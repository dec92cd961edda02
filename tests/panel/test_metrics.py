"""Panel metrics: names fixed by the issue, values equal to scikit-learn's and to hand computations."""

from __future__ import annotations

import numpy as np
import pytest

from imblab.errors import ImblabError
from imblab.panel.metrics import class_metrics, slug, wage_metrics

NAMES = ["under 35", "35-40", "over 40"]


def test_wage_metrics_by_hand() -> None:
    y = np.log(np.array([10.0, 20.0, 30.0, 40.0]))
    pred = y + np.array([0.1, -0.1, 0.2, 0.0])
    m = wage_metrics(y, pred)
    assert set(m) == {"wage_rmse", "wage_mae", "wage_r2", "wage_rmse_level"}
    assert m["wage_rmse"] == pytest.approx(np.sqrt((0.01 + 0.01 + 0.04) / 4))
    assert m["wage_mae"] == pytest.approx(0.1)
    assert m["wage_r2"] == pytest.approx(1 - 0.06 / np.sum((y - y.mean()) ** 2))
    level = np.exp(pred) - np.exp(y)
    assert m["wage_rmse_level"] == pytest.approx(np.sqrt(np.mean(level**2)))


def test_class_metrics_names_and_values() -> None:
    y = np.array([0, 0, 1, 1, 1, 1, 2, 2])
    pred = np.array([0, 1, 1, 1, 1, 0, 1, 1])
    m = class_metrics(y, pred, NAMES)
    assert list(m)[:3] == ["class_accuracy", "class_balanced_accuracy", "class_macro_f1"]
    assert m["class_accuracy"] == pytest.approx(4 / 8)
    assert m["class_balanced_accuracy"] == pytest.approx((1 / 2 + 3 / 4 + 0) / 3)
    f1 = [2 * 1 / (2 + 2), 2 * 3 / (4 + 6), 0.0]
    assert m["class_macro_f1"] == pytest.approx(np.mean(f1))
    assert m["recall_under_35"] == pytest.approx(0.5) and m["precision_under_35"] == pytest.approx(0.5)
    assert m["recall_35_40"] == pytest.approx(0.75) and m["precision_35_40"] == pytest.approx(3 / 6)
    assert m["recall_over_40"] == 0.0 and m["precision_over_40"] == 0.0  # never predicted: 0, not NaN


def test_slug_and_bad_inputs() -> None:
    assert [slug(c) for c in NAMES] == ["under_35", "35_40", "over_40"]
    assert "recall_class_1" in class_metrics([0, 1], [0, 1], ["a", "--"])
    with pytest.raises(ImblabError, match=r"clashing metric names"):
        class_metrics([0, 1], [0, 1], ["a b", "a-b"])
    with pytest.raises(ImblabError, match=r"outside 0..2"):
        class_metrics([0, 3], [0, 1], NAMES)
    with pytest.raises(ImblabError, match=r"equally long"):
        wage_metrics([1.0, 2.0], [1.0])
    with pytest.raises(ImblabError, match=r"NaN or infinite"):
        wage_metrics([1.0, 2.0], [1.0, np.nan])
