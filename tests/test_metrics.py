"""imblab.metrics.core / .costs against scikit-learn, hand-computed costs and a brute-force sweep."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    balanced_accuracy_score,
    brier_score_loss,
    confusion_matrix,
    f1_score,
    matthews_corrcoef,
    precision_recall_fscore_support,
    precision_score,
    recall_score,
    roc_auc_score,
)

from imblab.errors import ImblabError
from imblab.metrics.core import SWEEP_COLUMNS, confusion_counts, metrics_vs_threshold, threshold_metrics
from imblab.metrics.costs import Costs, effective_costs, expected_cost, net_saving, roi
from imblab.metrics.names import METRIC_NAMES
from imblab.thresholds import candidate_thresholds

COSTS = Costs(fn=7.0, fp=1.5, defect_value=12.0, inspection=0.75)


def make_case(seed: int, n: int = 300, pos_rate: float = 0.05, decimals: int = 2) -> tuple[np.ndarray, ...]:
    """Imbalanced labels with informative, rounded (hence heavily tied) scores in [0, 1]."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < pos_rate).astype(int)
    s = np.clip(rng.beta(2, 5, n) + 0.25 * y * rng.random(n), 0.0, 1.0).round(decimals)
    return y, s


def _cases() -> list[tuple[str, np.ndarray, np.ndarray]]:
    cases = [(f"seed{seed}", *make_case(seed, decimals=1 + seed % 3)) for seed in range(6)]
    y, s = make_case(100, n=500, pos_rate=0.02, decimals=3)
    cases.append(("rare", y, s))
    _, s = make_case(101, n=50)
    cases.append(("all_negative_labels", np.zeros(50, dtype=int), s))
    cases.append(("all_positive_labels", np.ones(50, dtype=int), s))
    cases.append(("edge_scores", np.array([0, 1, 0, 1, 0, 0]), np.array([0.0, 1.0, 1.0, 0.0, 0.5, 0.5])))
    return cases


CASES = _cases()


def _thresholds_for(s: np.ndarray) -> list[float]:
    # 0 flags everything, nextafter(max) flags nothing (all-negative predictions), the rest are in between.
    return [
        0.0,
        float(np.median(s)),
        float(np.quantile(s, 0.95)),
        float(s.max()),
        float(np.nextafter(s.max(), 2)),
    ]


def _sk(fn, *args, **kwargs) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn warns about one-class inputs; the value is what we compare
        return float(fn(*args, **kwargs))


@pytest.mark.parametrize(("label", "y", "s"), CASES, ids=[c[0] for c in CASES])
def test_threshold_metrics_match_sklearn(label: str, y: np.ndarray, s: np.ndarray) -> None:
    for t in _thresholds_for(s):
        m = threshold_metrics(y, s, t, COSTS)
        pred = (s >= t).astype(int)
        tn, fp, fn, tp = confusion_matrix(y, pred, labels=[0, 1]).ravel()
        assert (m["tn"], m["fp"], m["fn"], m["tp"]) == (tn, fp, fn, tp)
        assert m["accuracy"] == pytest.approx(_sk(accuracy_score, y, pred))
        assert m["precision"] == pytest.approx(_sk(precision_score, y, pred, zero_division=0))
        assert m["recall"] == pytest.approx(_sk(recall_score, y, pred, zero_division=0))
        assert m["specificity"] == pytest.approx(_sk(recall_score, y, pred, pos_label=0, zero_division=0))
        assert m["f1"] == pytest.approx(_sk(f1_score, y, pred, zero_division=0))
        assert m["balanced_accuracy"] == pytest.approx(_sk(balanced_accuracy_score, y, pred))
        assert m["mcc"] == pytest.approx(_sk(matthews_corrcoef, y, pred), abs=1e-12)
        assert m["g_mean"] == pytest.approx(math.sqrt(m["recall"] * m["specificity"]))
        assert m["brier"] == pytest.approx(_sk(brier_score_loss, y, s, pos_label=1))
        assert m["positive_rate"] == pytest.approx(pred.mean())
        assert m["n"] == len(y)
        assert m["threshold"] == t
        if 0 < y.sum() < len(y):
            assert m["roc_auc"] == pytest.approx(roc_auc_score(y, s))
            assert m["pr_auc"] == pytest.approx(average_precision_score(y, s))
        else:
            assert math.isnan(m["roc_auc"])
            assert math.isnan(m["pr_auc"])


def test_threshold_metrics_keys_and_types() -> None:
    y, s = make_case(7)
    m = threshold_metrics(y, s, 0.4, Costs())
    assert tuple(m) == METRIC_NAMES
    assert all(isinstance(v, float) for v in m.values())
    for key in ("tn", "fp", "fn", "tp", "n"):
        assert m[key] == int(m[key])


def test_all_negative_predictions_give_zero_not_nan() -> None:
    y, s = make_case(3)
    m = threshold_metrics(y, s, float(np.nextafter(s.max(), 2)), Costs())
    assert m["tp"] == m["fp"] == 0
    assert m["precision"] == m["recall"] == m["f1"] == m["mcc"] == m["g_mean"] == m["positive_rate"] == 0.0
    assert m["specificity"] == 1.0
    assert math.isnan(m["roi"])  # nothing inspected, so there is no spend to return on


def test_accepts_bool_labels_lists_and_series() -> None:
    y, s = make_case(5)
    ref = threshold_metrics(y, s, 0.3, Costs())
    series = threshold_metrics(
        pd.Series(y.astype(bool), index=np.arange(len(y))[::-1]), list(s), 0.3, Costs()
    )
    assert series == pytest.approx(ref, nan_ok=True)


def test_confusion_counts_always_two_by_two() -> None:
    assert confusion_counts([0, 0, 0], [0, 0, 0]) == (3, 0, 0, 0)
    assert confusion_counts([1, 1], [1, 0]) == (0, 0, 1, 1)
    assert confusion_counts([0, 1, 0, 1, 1], [1, 1, 0, 0, 1]) == (1, 1, 1, 2)
    assert all(isinstance(c, int) for c in confusion_counts([0, 1], [1, 1]))


def test_costs_by_hand() -> None:
    # 10 lots: tn=5, fp=2, fn=1, tp=2.
    y = np.array([0, 0, 0, 0, 0, 0, 0, 1, 1, 1])
    s = np.array([0.1, 0.1, 0.2, 0.2, 0.3, 0.8, 0.9, 0.2, 0.7, 0.95])
    costs = Costs(fn=5.0, fp=1.0, defect_value=10.0, inspection=1.0)
    m = threshold_metrics(y, s, 0.7, costs)
    assert (m["tn"], m["fp"], m["fn"], m["tp"]) == (5, 2, 1, 2)
    assert m["expected_cost"] == pytest.approx((5 * 1 + 1 * 2) / 10)  # 0.7
    assert m["net_saving"] == pytest.approx((10 * 2 - 5 * 1 - 1 * (2 + 2)) / 10)  # 1.1
    assert m["roi"] == pytest.approx((10 * 2 - 5 * 1 - 1 * (2 + 2)) / (1 * (2 + 2)))  # 2.75
    assert expected_cost(5, 2, 1, 2, costs) == pytest.approx(0.7)
    assert net_saving(5, 2, 1, 2, costs) == pytest.approx(1.1)
    assert roi(5, 2, 1, 2, costs) == pytest.approx(2.75)
    # Different costs change the answer the way the formulas say.
    other = Costs(fn=20.0, fp=0.5, defect_value=3.0, inspection=2.0)
    assert expected_cost(5, 2, 1, 2, other) == pytest.approx((20 * 1 + 0.5 * 2) / 10)
    assert net_saving(5, 2, 1, 2, other) == pytest.approx((3 * 2 - 20 * 1 - 2 * 4) / 10)
    assert roi(5, 2, 1, 2, other) == pytest.approx((3 * 2 - 20 * 1 - 2 * 4) / (2 * 4))


def test_roi_nan_without_inspection_spend_and_empty_counts() -> None:
    assert math.isnan(roi(5, 0, 3, 0, Costs()))  # nothing flagged
    assert math.isnan(roi(5, 2, 1, 2, Costs(inspection=0.0)))  # inspections are free
    assert expected_cost(0, 0, 0, 0, Costs()) == 0.0
    assert net_saving(0, 0, 0, 0, Costs()) == 0.0


def test_costs_validated_and_coerced() -> None:
    assert Costs(fn=20, fp=1).fn == 20.0
    assert isinstance(Costs(fn=20).fn, float)
    with pytest.raises(ImblabError, match=r"costs\.fp"):
        Costs(fp=-1.0)
    with pytest.raises(ImblabError, match=r"costs\.inspection"):
        Costs(inspection=math.nan)
    with pytest.raises(ImblabError, match=r"costs\.fn"):
        Costs(fn="5")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("y", "s", "match"),
    [
        ([0, 1, 0], [0.1, 0.2], "same length"),
        ([], [], "empty"),
        ([-1, 1, 1], [0.1, 0.2, 0.3], "0/1"),
        ([0, 2, 1], [0.1, 0.2, 0.3], "0/1"),
        ([0, math.nan, 1], [0.1, 0.2, 0.3], "0/1"),
        (["a", "b", "a"], [0.1, 0.2, 0.3], "0/1"),
        ([0, 1, 0], [0.1, math.nan, 0.3], "NaN"),
        ([0, 1, 0], [0.1, math.inf, 0.3], "NaN/inf"),
        ([0, 1, 0], [0.1, 1.2, 0.3], r"\[0, 1\]"),
        ([0, 1, 0], [-0.1, 0.2, 0.3], r"\[0, 1\]"),
        ([0, 1, 0], ["x", "y", "z"], "numeric"),
        ([[0, 1], [1, 0]], [[0.1, 0.2], [0.3, 0.4]], "1-D"),
    ],
)
def test_bad_inputs_raise_imblab_error(y: list, s: list, match: str) -> None:
    with pytest.raises(ImblabError, match=match):
        threshold_metrics(y, s, 0.5, Costs())
    with pytest.raises(ImblabError, match=match):
        metrics_vs_threshold(y, s, Costs())


def test_bad_threshold_and_prediction_inputs() -> None:
    with pytest.raises(ImblabError, match="NaN"):
        threshold_metrics([0, 1], [0.2, 0.8], math.nan, Costs())
    with pytest.raises(ImblabError, match="NaN"):
        metrics_vs_threshold([0, 1], [0.2, 0.8], Costs(), thresholds=[0.5, math.nan])
    with pytest.raises(ImblabError, match="y_pred"):
        confusion_counts([0, 1], [0, 3])
    with pytest.raises(ImblabError, match="same length"):
        confusion_counts([0, 1], [0, 1, 1])


def _brute_force_sweep(y: np.ndarray, s: np.ndarray, thresholds: np.ndarray, costs: Costs) -> pd.DataFrame:
    rows = []
    for t in thresholds:
        pred = (s >= t).astype(int)
        tp, fp = int(np.sum(pred & y)), int(np.sum(pred & (1 - y)))
        fn, tn = int(np.sum((1 - pred) & y)), int(np.sum((1 - pred) & (1 - y)))
        # One sklearn call per threshold: per-class precision/recall/F1; recall of class 0 is specificity.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            prec, rec, f1, _ = precision_recall_fscore_support(y, pred, labels=[0, 1], zero_division=0)
        n = len(y)
        gain = costs.defect_value * tp - costs.fn * fn - costs.inspection * (tp + fp)
        spend = costs.inspection * (tp + fp)
        rows.append(
            {
                "threshold": t,
                "tn": tn,
                "fp": fp,
                "fn": fn,
                "tp": tp,
                "precision": prec[1],
                "recall": rec[1],
                "specificity": rec[0],
                "f1": f1[1],
                "expected_cost": (costs.fn * fn + costs.fp * fp) / n,
                "net_saving": gain / n,
                "roi": gain / spend if spend else math.nan,
            }
        )
    return pd.DataFrame(rows)


@pytest.mark.parametrize(("label", "y", "s"), CASES, ids=[c[0] for c in CASES])
def test_metrics_vs_threshold_matches_brute_force(label: str, y: np.ndarray, s: np.ndarray) -> None:
    table = metrics_vs_threshold(y, s, COSTS)
    assert tuple(table.columns) == SWEEP_COLUMNS
    np.testing.assert_array_equal(table["threshold"], candidate_thresholds(s))
    expected = _brute_force_sweep(y, s, table["threshold"].to_numpy(), COSTS)
    pd.testing.assert_frame_equal(table, expected, check_dtype=False, rtol=1e-12, atol=1e-12)
    for col in ("tn", "fp", "fn", "tp"):
        assert table[col].dtype.kind == "i"


def test_metrics_vs_threshold_custom_thresholds_keep_order() -> None:
    y, s = make_case(11, decimals=3)
    thresholds = np.array([0.5, 0.0, 0.123456, 1.0, np.inf, -np.inf, 0.25])  # off-grid, unsorted, extremes
    table = metrics_vs_threshold(y, s, COSTS, thresholds=thresholds)
    np.testing.assert_array_equal(table["threshold"], thresholds)
    expected = _brute_force_sweep(y, s, thresholds, COSTS)
    pd.testing.assert_frame_equal(table, expected, check_dtype=False, rtol=1e-12, atol=1e-12)


def test_metrics_vs_threshold_agrees_with_threshold_metrics() -> None:
    y, s = make_case(12)
    table = metrics_vs_threshold(y, s, COSTS)
    for row in table.iloc[::7].itertuples(index=False):
        m = threshold_metrics(y, s, row.threshold, COSTS)
        for col in SWEEP_COLUMNS:
            assert getattr(row, col) == pytest.approx(m[col], nan_ok=True), col


def test_metrics_vs_threshold_does_not_mutate_inputs() -> None:
    y, s = make_case(13)
    y_copy, s_copy = y.copy(), s.copy()
    metrics_vs_threshold(y, s, COSTS)
    threshold_metrics(y, s, 0.3, COSTS)
    np.testing.assert_array_equal(y, y_copy)
    np.testing.assert_array_equal(s, s_copy)


def test_confusion_counts_of_nothing_is_zero() -> None:
    assert confusion_counts([], []) == (0, 0, 0, 0)


def test_effective_costs_puts_policy_costs_on_top() -> None:
    base = Costs(fn=5, fp=1, defect_value=10, inspection=1)
    assert effective_costs(base, {}) == base
    assert effective_costs(base, {"fn": 20, "fp": 2.5}) == Costs(
        fn=20.0, fp=2.5, defect_value=10.0, inspection=1.0
    )
    with pytest.raises(ImblabError, match=r"\['cost_fn'\] are not cost fields"):
        effective_costs(base, {"cost_fn": 20.0})
    with pytest.raises(ImblabError, match=r"costs\.fn must be a finite number >= 0"):
        effective_costs(base, {"fn": -1.0})
