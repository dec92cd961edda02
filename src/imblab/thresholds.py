"""Decision-threshold policies: turn (labels, scores) into one threshold, ``score >= threshold`` -> 1.

Policies are built by Hydra from YAML such as
``{_target_: imblab.thresholds.MinCost, cost_fn: 20, cost_fp: 1}``, so constructor keyword arguments
are the config keys and every validation message names ``threshold.<key>``.

A policy only ever sees the ``(y_true, y_score)`` passed to :meth:`ThresholdPolicy.choose` (the caller
passes out-of-fold *training* scores), so the chosen threshold cannot leak test labels. Every policy
evaluates all :func:`candidate_thresholds` at once through :func:`imblab.metrics.core.metrics_vs_threshold`
(O(n log n)) instead of looping over thresholds in Python.

Tie-break rule: among thresholds whose objective is optimal within ``REL_TOL`` (relative to the
largest absolute objective value over the compared candidates), take the highest threshold, i.e. the
fewest alarms. Constrained policies first break ties by their constrained metric (higher is better).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, fields
from typing import ClassVar

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from imblab.errors import ImblabError
from imblab.metrics.core import (
    candidate_thresholds_of,
    metrics_vs_threshold,
    validate_inputs,
    validate_scores,
)
from imblab.metrics.costs import Costs

__all__ = [
    "POLICIES",
    "REL_TOL",
    "BestF1",
    "FixedThreshold",
    "MaxROI",
    "MinCost",
    "PrecisionAtRecall",
    "RecallAtPrecision",
    "ThresholdChoice",
    "ThresholdPolicy",
    "candidate_thresholds",
]

REL_TOL = 1e-12  # objectives this close count as tied, so float noise cannot beat "fewest alarms"


@dataclass(frozen=True)
class ThresholdChoice:
    """The threshold a policy picked, with the objective value that justified it."""

    threshold: float
    policy: str  # e.g. "min_cost"
    objective: float  # the policy's objective at the chosen threshold (NaN for "fixed": nothing optimised)
    feasible: bool = True  # False when a constrained policy could not meet its target (best effort)
    detail: str = ""  # one human sentence explaining the choice


def candidate_thresholds(y_score: ArrayLike) -> NDArray[np.float64]:
    """Sorted unique scores plus ``np.nextafter(max, inf)``, the threshold that flags nothing.

    With ``score >= threshold`` these are exactly the distinct decisions available on ``y_score``:
    threshold ``s`` flags every row scoring ``>= s``, and the extra value flags none.
    """
    return candidate_thresholds_of(validate_scores(y_score, "y_score"))


# --------------------------------------------------------------------------------------------------
# Selection helpers (vectorised; index arrays follow the ascending candidate order)
# --------------------------------------------------------------------------------------------------


def _near_max(values: NDArray[np.float64], mask: NDArray[np.bool_]) -> NDArray[np.bool_]:
    """Sub-mask of ``mask`` whose ``values`` are within REL_TOL of the maximum over ``mask``."""
    compared = values[mask]
    best = compared.max()
    tol = REL_TOL * np.abs(compared).max()
    return mask & (values >= best - tol)


def _highest(thresholds: NDArray[np.float64], mask: NDArray[np.bool_]) -> int:
    """Index of the highest threshold within ``mask`` (the fewest alarms)."""
    idx = np.flatnonzero(mask)
    return int(idx[np.argmax(thresholds[idx])])


def _number(value: object, key: str) -> float:
    # bool is an int subclass; `true` in YAML is a config mistake, not 1.0.
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise ImblabError(f"threshold.{key} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise ImblabError(f"threshold.{key} must be a finite number, got {value!r}")
    return float(value)


def _non_negative(value: object, key: str) -> float:
    v = _number(value, key)
    if v < 0:
        raise ImblabError(f"threshold.{key} must be >= 0, got {value!r}")
    return v


def _target(value: object, key: str) -> float:
    v = _number(value, key)
    if not 0.0 < v <= 1.0:
        raise ImblabError(f"threshold.{key} must be in (0, 1], got {value!r}")
    return v


# --------------------------------------------------------------------------------------------------
# Policies
# --------------------------------------------------------------------------------------------------


class ThresholdPolicy(ABC):
    """Base class: validates inputs, sweeps all candidate thresholds, lets the subclass pick one.

    Subclasses are frozen dataclasses whose fields are the config keys.
    """

    name: ClassVar[str]

    def choose(self, y_true: ArrayLike, y_score: ArrayLike) -> ThresholdChoice:
        """Pick a threshold from ``(y_true, y_score)`` only; inputs are not modified."""
        y, s = validate_inputs(y_true, y_score)
        n_pos = int(y.sum())
        if n_pos == 0 or n_pos == y.shape[0]:
            raise ImblabError(
                f"threshold policy '{self.name}' needs both classes in the labels it is tuned on, but all "
                f"{y.shape[0]} rows are class {int(y[0])}; use stratified folds or more training data"
            )
        # The sweep's cost columns use the policy's own costs, the same ones costs_override() reports.
        table = metrics_vs_threshold(y, s, Costs(**self.costs_override()))
        return self._select(table)

    @abstractmethod
    def _select(self, table: pd.DataFrame) -> ThresholdChoice:
        """Choose from the ``metrics_vs_threshold`` table (rows in ascending threshold order)."""

    def params(self) -> dict[str, float]:
        """The policy's config values, for logging."""
        return {f.name: float(getattr(self, f.name)) for f in fields(self)}

    def costs_override(self) -> dict[str, float]:
        """``Costs`` field values this policy defines, so reports use the costs it optimised."""
        return {}

    def _best(self, table: pd.DataFrame, objective: NDArray[np.float64]) -> int:
        """Row maximising ``objective`` with the highest-threshold tie-break."""
        thresholds = table["threshold"].to_numpy()
        return _highest(thresholds, _near_max(objective, np.ones(len(table), dtype=bool)))

    def _constrained(
        self,
        table: pd.DataFrame,
        objective_col: str,
        constraint_col: str,
        target: float,
        target_key: str,
    ) -> ThresholdChoice:
        """Maximise ``objective_col`` subject to ``constraint_col >= target``; best effort if impossible."""
        thresholds = table["threshold"].to_numpy()
        objective = table[objective_col].to_numpy()
        constraint = table[constraint_col].to_numpy()
        ok = constraint >= target
        if ok.any():
            keep = _near_max(constraint, _near_max(objective, ok))
        else:
            # Nothing meets the target: get as close to it as possible, then prefer the better objective.
            keep = _near_max(objective, _near_max(constraint, np.ones(len(table), dtype=bool)))
        i = _highest(thresholds, keep)
        threshold, obj, con = float(thresholds[i]), float(objective[i]), float(constraint[i])
        if ok.any():
            detail = (
                f"highest {objective_col} ({obj:.4g}) among thresholds with {constraint_col} >= "
                f"{target:g} ({constraint_col} {con:.4g} at threshold {threshold:.6g})"
            )
        else:
            detail = (
                f"no threshold reaches {constraint_col} >= {target:g} (threshold.{target_key}); chose the "
                f"one with highest {constraint_col} ({con:.4g}, {objective_col} {obj:.4g}) at {threshold:.6g}"
            )
        return ThresholdChoice(threshold, self.name, obj, feasible=bool(ok.any()), detail=detail)


@dataclass(frozen=True)
class FixedThreshold(ThresholdPolicy):
    """Use a configured threshold as is (the usual 0.5 baseline)."""

    name: ClassVar[str] = "fixed"
    value: float = 0.5

    def __post_init__(self) -> None:
        v = _number(self.value, "value")
        if not 0.0 <= v <= 1.0:
            raise ImblabError(f"threshold.value must be in [0, 1], got {self.value!r}")
        object.__setattr__(self, "value", v)

    def _select(self, table: pd.DataFrame) -> ThresholdChoice:
        # Nothing is optimised, so there is no objective value to report.
        return ThresholdChoice(
            self.value, self.name, math.nan, detail=f"fixed threshold {self.value:g} from the config"
        )


@dataclass(frozen=True)
class BestF1(ThresholdPolicy):
    """Maximise F1 of the positive class."""

    name: ClassVar[str] = "best_f1"

    def _select(self, table: pd.DataFrame) -> ThresholdChoice:
        f1 = table["f1"].to_numpy()
        i = self._best(table, f1)
        threshold = float(table["threshold"].iat[i])
        return ThresholdChoice(
            threshold,
            self.name,
            float(f1[i]),
            detail=f"highest F1 ({f1[i]:.4g}) over {len(table)} candidate thresholds, at {threshold:.6g}",
        )


@dataclass(frozen=True)
class MinCost(ThresholdPolicy):
    """Minimise expected misclassification cost per lot, ``(cost_fn*FN + cost_fp*FP) / n``."""

    name: ClassVar[str] = "min_cost"
    cost_fn: float = 5.0
    cost_fp: float = 1.0

    def __post_init__(self) -> None:
        cost_fn = _non_negative(self.cost_fn, "cost_fn")
        cost_fp = _non_negative(self.cost_fp, "cost_fp")
        if cost_fn == 0 and cost_fp == 0:
            raise ImblabError(
                "threshold.cost_fn and threshold.cost_fp are both 0, so every threshold costs nothing; "
                "set at least one of them > 0"
            )
        object.__setattr__(self, "cost_fn", cost_fn)
        object.__setattr__(self, "cost_fp", cost_fp)

    def costs_override(self) -> dict[str, float]:
        return {"fn": self.cost_fn, "fp": self.cost_fp}

    def _select(self, table: pd.DataFrame) -> ThresholdChoice:
        cost = table["expected_cost"].to_numpy()
        i = self._best(table, -cost)
        threshold = float(table["threshold"].iat[i])
        return ThresholdChoice(
            threshold,
            self.name,
            float(cost[i]),
            detail=(
                f"lowest expected cost per lot ({cost[i]:.4g}, cost_fn={self.cost_fn:g}, "
                f"cost_fp={self.cost_fp:g}) over {len(table)} candidate thresholds, at {threshold:.6g}"
            ),
        )


@dataclass(frozen=True)
class MaxROI(ThresholdPolicy):
    """Maximise net saving per lot, ``(defect_value*TP - cost_fn*FN - inspection_cost*(TP+FP)) / n``.

    Net saving rather than the ROI ratio is maximised because the ratio rewards inspecting a handful
    of sure defects and ignoring the rest; the objective reported is that net saving per lot.
    """

    name: ClassVar[str] = "max_roi"
    defect_value: float = 10.0
    cost_fn: float = 5.0
    inspection_cost: float = 1.0

    def __post_init__(self) -> None:
        values = {f.name: _non_negative(getattr(self, f.name), f.name) for f in fields(self)}
        if not any(values.values()):
            raise ImblabError(
                "threshold.defect_value, threshold.cost_fn and threshold.inspection_cost are all 0, so "
                "every threshold saves nothing; set at least one of them > 0"
            )
        for key, value in values.items():
            object.__setattr__(self, key, value)

    def costs_override(self) -> dict[str, float]:
        return {"defect_value": self.defect_value, "fn": self.cost_fn, "inspection": self.inspection_cost}

    def _select(self, table: pd.DataFrame) -> ThresholdChoice:
        saving = table["net_saving"].to_numpy()
        i = self._best(table, saving)
        threshold = float(table["threshold"].iat[i])
        return ThresholdChoice(
            threshold,
            self.name,
            float(saving[i]),
            detail=(
                f"highest net saving per lot ({saving[i]:.4g}) over {len(table)} candidate thresholds, "
                f"at {threshold:.6g}"
            ),
        )


@dataclass(frozen=True)
class PrecisionAtRecall(ThresholdPolicy):
    """Highest precision among thresholds whose recall is at least ``min_recall``."""

    name: ClassVar[str] = "precision_at_recall"
    min_recall: float = 0.8

    def __post_init__(self) -> None:
        object.__setattr__(self, "min_recall", _target(self.min_recall, "min_recall"))

    def _select(self, table: pd.DataFrame) -> ThresholdChoice:
        # With both classes present the lowest candidate has recall 1, so this is always feasible;
        # the infeasible branch of _constrained is kept for symmetry with RecallAtPrecision.
        return self._constrained(table, "precision", "recall", self.min_recall, "min_recall")


@dataclass(frozen=True)
class RecallAtPrecision(ThresholdPolicy):
    """Highest recall among thresholds whose precision is at least ``min_precision``."""

    name: ClassVar[str] = "recall_at_precision"
    min_precision: float = 0.5

    def __post_init__(self) -> None:
        object.__setattr__(self, "min_precision", _target(self.min_precision, "min_precision"))

    def _select(self, table: pd.DataFrame) -> ThresholdChoice:
        return self._constrained(table, "recall", "precision", self.min_precision, "min_precision")


POLICIES: dict[str, type[ThresholdPolicy]] = {
    cls.name: cls for cls in (FixedThreshold, BestF1, MinCost, MaxROI, PrecisionAtRecall, RecallAtPrecision)
}
