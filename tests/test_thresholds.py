"""Threshold policies vs a brute-force loop over every candidate threshold; purity and validation."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest

from imblab.errors import ImblabError
from imblab.metrics.costs import Costs
from imblab.thresholds import (
    POLICIES,
    BestF1,
    FixedThreshold,
    MaxROI,
    MinCost,
    PrecisionAtRecall,
    RecallAtPrecision,
    ThresholdChoice,
    ThresholdPolicy,
    candidate_thresholds,
)

SEEDS = range(30)
Row = dict[str, float]


def make_data(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """~5% positives, informative scores rounded to 1-3 decimals so many rows tie."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(80, 400))
    y = (rng.random(n) < 0.05).astype(int)
    y[rng.choice(n, size=2, replace=False)] = [0, 1]  # both classes always present
    decimals = int(rng.choice([1, 2, 2, 3]))
    s = np.clip(rng.beta(2, 6, n) + 0.3 * y * rng.random(n), 0.0, 1.0).round(decimals)
    return y, s


def make_policies(seed: int) -> list[ThresholdPolicy]:
    """Every policy with per-seed parameters.

    Costs come from small sets (integers, and decimals like 0.3 and 0.7 whose float sums round
    differently) so exact and float-noise ties of the optimum are common; targets include 1.0, which
    is often infeasible for recall_at_precision.
    """
    rng = np.random.default_rng(10_000 + seed)

    def pick(*values: float) -> float:
        return float(rng.choice(values))

    return [
        FixedThreshold(value=pick(0.0, 0.3, 0.5, 1.0)),
        BestF1(),
        MinCost(cost_fn=pick(0.3, 0.7, 1, 2, 5, 20), cost_fp=pick(0.3, 0.7, 1, 2)),
        MaxROI(
            defect_value=pick(0.3, 0.7, 1, 3, 10),
            cost_fn=pick(0, 0.3, 0.7, 2, 5),
            inspection_cost=pick(0, 0.3, 0.7, 1),
        ),
        PrecisionAtRecall(min_recall=pick(0.3, 0.5, 0.8, 0.9, 1.0)),
        RecallAtPrecision(min_precision=pick(0.05, 0.2, 0.5, 0.8, 1.0)),
    ]


# --------------------------------------------------------------------------------------------------
# Brute force: one plain-numpy pass over the data per candidate threshold
# --------------------------------------------------------------------------------------------------


def brute_rows(y: np.ndarray, s: np.ndarray, costs: Costs) -> list[Row]:
    candidates = [*sorted(set(s.tolist())), float(np.nextafter(s.max(), np.inf))]
    rows = []
    for t in candidates:
        pred = s >= t
        tp = int(np.sum(pred & (y == 1)))
        fp = int(np.sum(pred & (y == 0)))
        fn = int(np.sum(~pred & (y == 1)))
        n = len(y)
        rows.append(
            {
                "threshold": t,
                "precision": tp / (tp + fp) if tp + fp else 0.0,
                "recall": tp / (tp + fn),
                "f1": 2 * tp / (2 * tp + fp + fn),
                "cost": (costs.fn * fn + costs.fp * fp) / n,
                "saving": (costs.defect_value * tp - costs.fn * fn - costs.inspection * (tp + fp)) / n,
            }
        )
    return rows


def brute_pick(rows: list[Row], keys: list[Callable[[Row], float]]) -> Row:
    """Maximise ``keys`` lexicographically (1e-12 relative ties), then take the highest threshold."""
    keep = rows
    for key in keys:
        values = [key(r) for r in keep]
        best, scale = max(values), max(abs(v) for v in values)
        keep = [r for r, v in zip(keep, values, strict=True) if v >= best - 1e-12 * scale]
    return max(keep, key=lambda r: r["threshold"])


def brute_force(policy: ThresholdPolicy, y: np.ndarray, s: np.ndarray) -> tuple[float, float, bool]:
    """(threshold, objective, feasible) that the policy must return, computed independently."""
    rows = brute_rows(y, s, Costs(**policy.costs_override()))
    if isinstance(policy, FixedThreshold):
        return policy.value, math.nan, True
    if isinstance(policy, BestF1):
        r = brute_pick(rows, [lambda r: r["f1"]])
        return r["threshold"], r["f1"], True
    if isinstance(policy, MinCost):
        r = brute_pick(rows, [lambda r: -r["cost"]])
        return r["threshold"], r["cost"], True
    if isinstance(policy, MaxROI):
        r = brute_pick(rows, [lambda r: r["saving"]])
        return r["threshold"], r["saving"], True
    if isinstance(policy, PrecisionAtRecall):
        obj, con, target = "precision", "recall", policy.min_recall
    elif isinstance(policy, RecallAtPrecision):
        obj, con, target = "recall", "precision", policy.min_precision
    else:  # pragma: no cover
        raise AssertionError(policy)
    feasible = [r for r in rows if r[con] >= target]
    if feasible:
        r = brute_pick(feasible, [lambda r: r[obj], lambda r: r[con]])
    else:
        r = brute_pick(rows, [lambda r: r[con], lambda r: r[obj]])
    return r["threshold"], r[obj], bool(feasible)


@pytest.mark.parametrize("seed", SEEDS)
def test_policies_match_brute_force(seed: int) -> None:
    y, s = make_data(seed)
    for policy in make_policies(seed):
        choice = policy.choose(y, s)
        threshold, objective, feasible = brute_force(policy, y, s)
        assert choice.policy == policy.name
        assert choice.threshold == threshold, (policy, choice)
        assert choice.objective == pytest.approx(objective, rel=1e-12, abs=1e-15, nan_ok=True), policy
        assert choice.feasible is feasible, policy
        assert choice.detail


def test_brute_force_cases_cover_ties_and_infeasible_targets() -> None:
    # Guards the test data itself: the comparison above is only meaningful if it exercises ties,
    # rare positives and both outcomes of the constrained policies.
    tied, infeasible, feasible = 0, 0, 0
    for seed in SEEDS:
        y, s = make_data(seed)
        assert 0 < y.sum() < len(y)
        tied += len(np.unique(s)) < len(s)
        choice = make_policies(seed)[-1].choose(y, s)
        infeasible += not choice.feasible
        feasible += choice.feasible
    assert tied == len(SEEDS)
    assert infeasible > 0 and feasible > 0


# --------------------------------------------------------------------------------------------------
# Candidates, tie-breaks and infeasibility
# --------------------------------------------------------------------------------------------------


def test_candidate_thresholds() -> None:
    s = np.array([0.3, 0.1, 0.3, 0.7, 0.1])
    c = candidate_thresholds(s)
    np.testing.assert_array_equal(c[:-1], [0.1, 0.3, 0.7])
    assert c[-1] == np.nextafter(0.7, np.inf)
    assert not (s >= c[-1]).any()  # the last candidate flags nothing
    ones = candidate_thresholds([1.0, 1.0])
    assert ones[-1] > 1.0
    with pytest.raises(ImblabError, match=r"\[0, 1\]"):
        candidate_thresholds([0.2, 1.5])
    with pytest.raises(ImblabError, match="empty"):
        candidate_thresholds([])


def test_ties_go_to_highest_threshold() -> None:
    y = np.array([0, 0, 1, 0, 1, 0])
    s = np.array([0.1, 0.2, 0.4, 0.5, 0.6, 0.9])
    # Only false alarms cost: every threshold above all negatives costs 0 -> "flag nothing" wins.
    choice = MinCost(cost_fn=0.0, cost_fp=1.0).choose(y, s)
    assert choice.threshold == np.nextafter(0.9, np.inf) and choice.objective == 0.0
    # Only misses cost: every threshold <= the lowest positive score costs 0 -> the highest such, 0.4.
    choice = MinCost(cost_fn=1.0, cost_fp=0.0).choose(y, s)
    assert choice.threshold == 0.4 and choice.objective == 0.0
    # recall >= 1 holds for thresholds <= 0.4; precision is best (2/4) at 0.4 itself.
    choice = PrecisionAtRecall(min_recall=1.0).choose(y, s)
    assert (choice.threshold, choice.objective, choice.feasible) == (0.4, 0.5, True)


def test_float_noise_does_not_break_ties() -> None:
    # Equal costs make cost proportional to the number of errors: flagging nothing (5 misses) and
    # threshold 0.4 (3 misses + 2 false alarms) tie exactly, but 0.7*3 + 0.7*2 rounds to 3.4999999999999996
    # < 0.7*5. The tie tolerance must still hand the tie to the highest threshold.
    y = np.array([1, 1, 1, 0, 0, 1, 0, 0, 1, 0, 0])
    s = np.array([0.3, 0.4, 0.2, 0.1, 0.3, 0.3, 0.4, 0.5, 0.4, 0.3, 0.3])
    choice = MinCost(cost_fn=0.7, cost_fp=0.7).choose(y, s)
    assert choice.threshold == np.nextafter(0.5, np.inf)
    assert choice.objective == pytest.approx(0.7 * 5 / 11)


def test_precision_ties_prefer_higher_recall() -> None:
    y = np.array([1, 0, 1, 0, 1, 1, 0])
    s = np.array([0.9, 0.8, 0.7, 0.6, 0.55, 0.5, 0.1])
    # With recall >= 0.5 the best precision is 2/3, reached at 0.7 (recall 1/2) and 0.5 (recall 1):
    # the secondary key (recall) beats the highest-threshold rule.
    choice = PrecisionAtRecall(min_recall=0.5).choose(y, s)
    assert (choice.threshold, choice.feasible) == (0.5, True)
    assert choice.objective == pytest.approx(2 / 3)


def test_recall_at_precision_infeasible_is_best_effort() -> None:
    # The top score is a negative, so precision never reaches 1.
    y = np.array([0, 1, 0, 1, 0, 0])
    s = np.array([0.1, 0.5, 0.55, 0.6, 0.7, 0.9])
    choice = RecallAtPrecision(min_precision=1.0).choose(y, s)
    assert not choice.feasible
    assert "no threshold reaches precision >= 1" in choice.detail
    # Precision by threshold: 0.5 -> 2/4, 0.55 -> 1/3, 0.6 -> 1/2, 0.7 -> 0, 0.9 -> 0. Max precision 1/2
    # ties at 0.5 (recall 1) and 0.6 (recall 1/2): the secondary key, recall, picks 0.5.
    assert choice.threshold == 0.5
    assert choice.objective == pytest.approx(1.0)  # objective = recall at the chosen threshold


def test_precision_at_recall_is_feasible_whenever_both_classes_exist() -> None:
    for seed in range(10):
        y, s = make_data(seed)
        choice = PrecisionAtRecall(min_recall=1.0).choose(y, s)
        assert choice.feasible
        assert choice.threshold == s[y == 1].min()  # highest threshold that still catches every defect


def test_fixed_threshold() -> None:
    y, s = make_data(0)
    choice = FixedThreshold(0.37).choose(y, s)
    assert choice == ThresholdChoice(0.37, "fixed", choice.objective, True, choice.detail)
    assert math.isnan(choice.objective)
    assert FixedThreshold().params() == {"value": 0.5}


# --------------------------------------------------------------------------------------------------
# Leakage / purity
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
def test_choice_ignores_rows_it_never_sees(seed: int) -> None:
    rng = np.random.default_rng(seed)
    y, s = make_data(seed)
    train = rng.random(len(y)) < 0.7
    y_flipped = y.copy()
    y_flipped[~train] = 1 - y_flipped[~train]  # change only "test" labels
    s_noisy = s.copy()
    s_noisy[~train] = rng.random((~train).sum()).round(2)  # and test scores
    for policy in make_policies(seed):
        assert policy.choose(y[train], s[train]) == policy.choose(y_flipped[train], s_noisy[train])


@pytest.mark.parametrize("seed", range(5))
def test_choice_is_a_pure_function(seed: int) -> None:
    y, s = make_data(seed)
    y_copy, s_copy = y.copy(), s.copy()
    y.flags.writeable = False  # any in-place write inside choose would raise
    s.flags.writeable = False
    perm = np.random.default_rng(seed).permutation(len(y))
    for policy in make_policies(seed):
        first = policy.choose(y, s)
        assert policy.choose(y, s) == first
        assert policy.choose(list(y), list(s)) == first
        assert policy.choose(y[perm], s[perm]) == first  # row order carries no information
    np.testing.assert_array_equal(y, y_copy)
    np.testing.assert_array_equal(s, s_copy)


# --------------------------------------------------------------------------------------------------
# Configuration and validation
# --------------------------------------------------------------------------------------------------


def test_registry_and_config_surface() -> None:
    assert set(POLICIES) == {
        "fixed",
        "best_f1",
        "min_cost",
        "max_roi",
        "precision_at_recall",
        "recall_at_precision",
    }
    assert all(cls.name == name for name, cls in POLICIES.items())
    assert MinCost(cost_fn=20, cost_fp=1).params() == {"cost_fn": 20.0, "cost_fp": 1.0}
    assert MinCost(cost_fn=20, cost_fp=1).costs_override() == {"fn": 20.0, "fp": 1.0}
    assert MaxROI(defect_value=8, cost_fn=3, inspection_cost=0.5).costs_override() == {
        "defect_value": 8.0,
        "fn": 3.0,
        "inspection": 0.5,
    }
    for cls in (FixedThreshold, BestF1, PrecisionAtRecall, RecallAtPrecision):
        assert cls().costs_override() == {}
    assert BestF1().params() == {}
    assert PrecisionAtRecall(0.9).params() == {"min_recall": 0.9}
    # Every override is a valid Costs field, so the runner can do dataclasses.replace(costs, **override).
    for cls in POLICIES.values():
        Costs(**cls().costs_override())


def test_hydra_instantiate_uses_config_keys() -> None:
    hydra_utils = pytest.importorskip("hydra.utils")
    policy = hydra_utils.instantiate({"_target_": "imblab.thresholds.MinCost", "cost_fn": 20, "cost_fp": 1})
    assert isinstance(policy, MinCost) and policy.params() == {"cost_fn": 20.0, "cost_fp": 1.0}
    with pytest.raises(Exception, match=r"threshold\.min_recall"):
        hydra_utils.instantiate({"_target_": "imblab.thresholds.PrecisionAtRecall", "min_recall": 1.5})


@pytest.mark.parametrize(
    ("cls", "kwargs", "match"),
    [
        (FixedThreshold, {"value": 1.5}, r"threshold\.value must be in \[0, 1\], got 1.5"),
        (FixedThreshold, {"value": -0.1}, r"threshold\.value"),
        (FixedThreshold, {"value": "0.5"}, r"threshold\.value must be a number"),
        (MinCost, {"cost_fn": -1.0}, r"threshold\.cost_fn must be >= 0"),
        (MinCost, {"cost_fp": math.inf}, r"threshold\.cost_fp must be a finite number"),
        (MinCost, {"cost_fn": 0, "cost_fp": 0}, r"threshold\.cost_fn and threshold\.cost_fp are both 0"),
        (MinCost, {"cost_fn": True}, r"threshold\.cost_fn must be a number"),
        (MaxROI, {"defect_value": -5.0}, r"threshold\.defect_value must be >= 0"),
        (MaxROI, {"inspection_cost": math.nan}, r"threshold\.inspection_cost"),
        (MaxROI, {"defect_value": 0, "cost_fn": 0, "inspection_cost": 0}, "all 0"),
        (PrecisionAtRecall, {"min_recall": 1.5}, r"threshold\.min_recall must be in \(0, 1\], got 1.5"),
        (PrecisionAtRecall, {"min_recall": 0.0}, r"threshold\.min_recall must be in \(0, 1\]"),
        (RecallAtPrecision, {"min_precision": -0.2}, r"threshold\.min_precision must be in \(0, 1\]"),
        (RecallAtPrecision, {"min_precision": None}, r"threshold\.min_precision must be a number"),
    ],
)
def test_bad_params_name_the_config_key(cls: type, kwargs: dict, match: str) -> None:
    with pytest.raises(ImblabError, match=match):
        cls(**kwargs)


@pytest.mark.parametrize("name", sorted(POLICIES))
@pytest.mark.parametrize("label", [0, 1])
def test_one_class_labels_rejected(name: str, label: int) -> None:
    s = np.linspace(0, 1, 20)
    with pytest.raises(ImblabError, match="both classes"):
        POLICIES[name]().choose(np.full(20, label), s)


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_bad_inputs_rejected(name: str) -> None:
    policy = POLICIES[name]()
    with pytest.raises(ImblabError, match="same length"):
        policy.choose([0, 1, 0], [0.1, 0.9])
    with pytest.raises(ImblabError, match=r"\[0, 1\]"):
        policy.choose([0, 1, 0], [0.1, 0.9, 3.0])
    with pytest.raises(ImblabError, match="0/1"):
        policy.choose([-1, 1, -1], [0.1, 0.9, 0.3])
