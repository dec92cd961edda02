"""Panel metrics: wage error (log and level units) and multi-class scores that accuracy cannot hide behind.

Names are fixed by the panel issue (``wage_rmse`` ... ``class_macro_f1``, per class ``recall_<slug>`` and
``precision_<slug>``); the tracking layer adds the ``val_`` / ``test_`` prefixes. Plain functions of arrays
on top of scikit-learn.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    f1_score,
    mean_absolute_error,
    precision_recall_fscore_support,
    r2_score,
    root_mean_squared_error,
)

from imblab.errors import ImblabError

# Panel metrics a promotion can rank and gate on (with the val_ or test_ prefix): name -> higher is better.
# Per-class ``recall_<slug>`` / ``precision_<slug>`` are accepted too (higher is better).
RANKING_METRICS: dict[str, bool] = {
    "class_balanced_accuracy": True,
    "class_macro_f1": True,
    "class_accuracy": True,
    "wage_rmse": False,
    "wage_mae": False,
    "wage_rmse_level": False,
    "wage_r2": True,
}
DEFAULT_RANKING_METRIC = "test_class_balanced_accuracy"
RANKING_PREFIXES = ("test", "val")
_LOWER = ", ".join(m for m, higher in RANKING_METRICS.items() if not higher)
RANKING_USAGE = (
    f"use test_<m> or val_<m> with <m> one of {list(RANKING_METRICS)} or recall_<class> / "
    f"precision_<class> (e.g. {DEFAULT_RANKING_METRIC}; {_LOWER} count as lower-is-better)"
)


def ranking_metric(name: str) -> tuple[str, bool]:
    """``(base metric, higher_is_better)`` of a panel ranking metric such as ``test_class_macro_f1``."""
    for prefix in RANKING_PREFIXES:
        base = name.removeprefix(f"{prefix}_") if isinstance(name, str) else ""
        if base != name and (base in RANKING_METRICS or re.fullmatch(r"(recall|precision)_[a-z0-9_]+", base)):
            return base, RANKING_METRICS.get(base, True)
    raise ImblabError(f"--metric {name!r} cannot rank panel models; {RANKING_USAGE}")


def slug(name: str) -> str:
    """``"under 35"`` -> ``"under_35"``, ``"35-40"`` -> ``"35_40"``: a metric-name-safe class name."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def wage_metrics(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """RMSE, MAE and R^2 in the target's units (log wage), and ``wage_rmse_level``: the RMSE of the wage
    level, exp of both (a log-wage error means little to a reader; a money error does)."""
    y, pred = _pair(y, pred, "wage")
    return {
        "wage_rmse": float(root_mean_squared_error(y, pred)),
        "wage_mae": float(mean_absolute_error(y, pred)),
        "wage_r2": float(r2_score(y, pred)) if len(y) > 1 else float("nan"),
        "wage_rmse_level": float(root_mean_squared_error(np.exp(y), np.exp(pred))),
    }


def class_metrics(y: np.ndarray, pred_classes: np.ndarray, class_names: Sequence[str]) -> dict[str, float]:
    """Accuracy, balanced accuracy (mean recall over the classes present in ``y``), macro-F1 over all K
    classes, and per class ``recall_<slug>`` / ``precision_<slug>`` (0 where nothing is there to divide)."""
    y, pred = _pair(y, pred_classes, "class")
    k = len(class_names)
    slugs = [slug(c) or f"class_{i}" for i, c in enumerate(class_names)]
    if len(set(slugs)) < k:
        raise ImblabError(f"class names {list(class_names)} give clashing metric names {slugs}; rename them.")
    v = np.concatenate([y, pred])
    outside = np.unique(v[(v < 0) | (v >= k) | (v != np.round(v))])
    if len(outside):
        raise ImblabError(
            f"class codes {outside[:10].tolist()} are outside 0..{k - 1} ({list(class_names)})."
        )
    y, pred, labels = y.astype(np.int64), pred.astype(np.int64), list(range(k))
    with warnings.catch_warnings():  # e.g. "y_pred contains classes not in y_true": covered by the docs
        warnings.simplefilter("ignore")
        precision, recall, _, _ = precision_recall_fscore_support(
            y, pred, labels=labels, average=None, zero_division=0
        )
        out = {
            "class_accuracy": float(accuracy_score(y, pred)),
            "class_balanced_accuracy": float(balanced_accuracy_score(y, pred)),
            "class_macro_f1": float(f1_score(y, pred, labels=labels, average="macro", zero_division=0)),
        }
    for s, r, p in zip(slugs, recall, precision, strict=True):
        out[f"recall_{s}"] = float(r)
        out[f"precision_{s}"] = float(p)
    return out


def _pair(y: np.ndarray, pred: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray]:
    y, pred = np.asarray(y, dtype=np.float64).ravel(), np.asarray(pred, dtype=np.float64).ravel()
    if len(y) != len(pred) or len(y) == 0:
        raise ImblabError(
            f"{what} metrics need equally long, non-empty arrays; got {len(y)} and {len(pred)}."
        )
    if not (np.isfinite(y).all() and np.isfinite(pred).all()):
        raise ImblabError(f"{what} metrics got NaN or infinite values; check the model's predictions.")
    return y, pred


# What wage_metrics / class_metrics return (their display order in reports); the direction of each is
# RANKING_METRICS'.
WAGE_METRICS: tuple[str, ...] = ("wage_rmse", "wage_mae", "wage_r2", "wage_rmse_level")
CLASS_METRICS: tuple[str, ...] = ("class_accuracy", "class_balanced_accuracy", "class_macro_f1")
