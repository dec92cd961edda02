"""Business costs and the money metrics derived from confusion counts: expected cost, net saving, ROI.

The ``*_array`` functions are vectorised over any broadcastable counts (a threshold sweep, bootstrap
resamples); the scalar functions call them, so every formula exists once.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields

import numpy as np
from numpy.typing import ArrayLike, NDArray

from imblab.errors import ImblabError
from imblab.metrics.arrays import safe_div


@dataclass(frozen=True)
class Costs:
    """Business costs used to report expected cost and net saving/ROI.

    All values are per lot and must be finite and >= 0; ints from a config are stored as floats.
    """

    fn: float = 5.0  # cost of a missed defect (false negative)
    fp: float = 1.0  # cost of a false alarm (false positive)
    defect_value: float = 10.0  # value of a caught defect (true positive)
    inspection: float = 1.0  # cost of one inspection (every predicted-positive lot is inspected)

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            # bool is an int subclass; a YAML `true` here is a config mistake, not a cost of 1.
            if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
                raise ImblabError(f"costs.{f.name} must be a number >= 0, got {value!r}")
            if not math.isfinite(value) or value < 0:
                raise ImblabError(f"costs.{f.name} must be a finite number >= 0, got {value!r}")
            object.__setattr__(self, f.name, float(value))


def effective_costs(base: Costs, overrides: Mapping[str, float]) -> Costs:
    """``base`` with a threshold policy's ``costs_override()`` values on top.

    A policy that optimises its own costs (e.g. ``min_cost``'s ``cost_fn``) must be reported under those
    same costs, else the logged expected cost would not be the quantity the threshold minimised.
    """
    unknown = sorted(set(overrides) - {f.name for f in fields(Costs)})
    if unknown:
        raise ImblabError(
            f"cost override(s) {unknown} are not cost fields; use {[f.name for f in fields(Costs)]}"
        )
    return Costs(**{**asdict(base), **overrides})


def _gain(fp: ArrayLike, fn: ArrayLike, tp: ArrayLike, costs: Costs) -> NDArray[np.float64]:
    """Total money gained versus not inspecting at all: caught value minus misses minus inspections."""
    fp, fn, tp = (np.asarray(a, dtype=np.float64) for a in (fp, fn, tp))
    return costs.defect_value * tp - costs.fn * fn - costs.inspection * (tp + fp)


def _total(tn: ArrayLike, fp: ArrayLike, fn: ArrayLike, tp: ArrayLike) -> NDArray:
    return np.asarray(tn) + np.asarray(fp) + np.asarray(fn) + np.asarray(tp)


def expected_cost_array(
    tn: ArrayLike, fp: ArrayLike, fn: ArrayLike, tp: ArrayLike, costs: Costs
) -> NDArray[np.float64]:
    """:func:`expected_cost` elementwise over broadcastable counts (0.0 where n == 0)."""
    misclassified = costs.fn * np.asarray(fn, dtype=np.float64) + costs.fp * np.asarray(fp, dtype=np.float64)
    return safe_div(misclassified, _total(tn, fp, fn, tp))


def net_saving_array(
    tn: ArrayLike, fp: ArrayLike, fn: ArrayLike, tp: ArrayLike, costs: Costs
) -> NDArray[np.float64]:
    """:func:`net_saving` elementwise over broadcastable counts (0.0 where n == 0)."""
    return safe_div(_gain(fp, fn, tp, costs), _total(tn, fp, fn, tp))


def roi_array(
    tn: ArrayLike, fp: ArrayLike, fn: ArrayLike, tp: ArrayLike, costs: Costs
) -> NDArray[np.float64]:
    """:func:`roi` elementwise over broadcastable counts (NaN where nothing is inspected)."""
    spend = costs.inspection * (np.asarray(tp, dtype=np.float64) + np.asarray(fp, dtype=np.float64))
    return safe_div(_gain(fp, fn, tp, costs), spend, empty=np.nan)


def expected_cost(tn: int, fp: int, fn: int, tp: int, costs: Costs) -> float:
    """Misclassification cost per lot: ``(costs.fn*FN + costs.fp*FP) / n`` (0.0 when n == 0)."""
    return float(expected_cost_array(tn, fp, fn, tp, costs))


def net_saving(tn: int, fp: int, fn: int, tp: int, costs: Costs) -> float:
    """Net saving per lot: ``(defect_value*TP - fn*FN - inspection*(TP+FP)) / n`` (0.0 when n == 0)."""
    return float(net_saving_array(tn, fp, fn, tp, costs))


def roi(tn: int, fp: int, fn: int, tp: int, costs: Costs) -> float:
    """Return on inspection spend: net gain / ``(inspection*(TP+FP))``; NaN when nothing is spent."""
    return float(roi_array(tn, fp, fn, tp, costs))
