"""Feature importances of a fitted pipeline, named after preprocessing, and their plot.

What "importance" means depends on the model, so the table says which kind it holds:

- LightGBM: total **gain** of the splits on the feature (the booster's ``importance_type="gain"``;
  the estimator's default, split counts, rewards features that are split often but uselessly).
- Tree ensembles with ``feature_importances_`` (random forest, balanced random forest): mean
  **impurity decrease**, normalised by scikit-learn to sum to 1.
- Linear models (logistic regression): **|coef| × SD** of the feature as the model sees it (after
  preprocessing, on the training rows): the change in log-odds per standard deviation. With the default
  standard scaler the SD is 1, so this is |coef| on the scaled features; with ``preprocess/scaler=none``
  it still compares features on one scale.

Models without any (e.g. ``easy_ensemble``: a bag of AdaBoost pipelines) give None, not an error.
Object-oriented matplotlib only, like ``imblab.report.figures``.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.calibration import CalibratedClassifierCV
from sklearn.pipeline import Pipeline as SkPipeline

from imblab.pipeline import SAMPLER_STEP

log = logging.getLogger(__name__)

TOP = 20  # features drawn; the CSV keeps every feature


def _fitted_pipeline(fitted: Any) -> Any:
    """The fitted preprocess -> (sampler) -> model pipeline; a calibrated fit (``ensemble=False``) holds
    it refitted on all of the fit's rows as its one calibrated classifier's estimator."""
    if isinstance(fitted, CalibratedClassifierCV):
        return fitted.calibrated_classifiers_[0].estimator
    return fitted


def _split(fitted: Any) -> tuple[SkPipeline | None, Any]:
    """(the fitted steps that transform features, without the sampler; the model)."""
    pipeline = _fitted_pipeline(fitted)
    steps = getattr(pipeline, "steps", None)
    if not steps:
        return None, pipeline
    transform = [(name, step) for name, step in steps[:-1] if name != SAMPLER_STEP and step != "passthrough"]
    return (SkPipeline(transform) if transform else None), steps[-1][1]


def _names(transform: SkPipeline | None, model: Any, X: pd.DataFrame, n: int) -> list[str]:
    """Feature names after preprocessing (dropped columns gone, one-hot columns spelled out); the model's
    own names, or x0.. when a step cannot name its output."""
    candidates = []
    if transform is not None:
        try:
            candidates.append(transform.get_feature_names_out(np.asarray(X.columns, dtype=object)))
        except (AttributeError, TypeError, ValueError) as exc:  # a step without get_feature_names_out
            log.debug("feature names after preprocessing unavailable: %s", exc)
    else:
        candidates.append(X.columns)
    candidates.append(getattr(model, "feature_names_in_", None))
    for names in candidates:
        if names is not None and len(names) == n:
            return [str(name) for name in names]
    return [f"x{i}" for i in range(n)]


def _importances(transform: SkPipeline | None, model: Any, X: pd.DataFrame) -> tuple[np.ndarray, str] | None:
    """(importance per model input, what kind) or None when the model has none."""
    booster = getattr(model, "booster_", None)
    if booster is not None:  # LightGBM
        return np.asarray(booster.feature_importance(importance_type="gain"), dtype=float), "gain"
    coef = getattr(model, "coef_", None)
    if coef is not None and np.ndim(coef) == 2 and np.shape(coef)[0] == 1:
        magnitude = np.abs(np.asarray(coef, dtype=float)[0])
        try:
            seen = transform.transform(X) if transform is not None else X
            seen = seen.toarray() if hasattr(seen, "toarray") else seen  # a sparse one-hot output
            sd = np.nanstd(np.asarray(seen, dtype=float), axis=0)
        except (TypeError, ValueError) as exc:  # inputs that are not numbers: no scale to put on them
            log.debug("importance without the inputs' SD: %s", exc)
            return magnitude, "|coef|"
        return magnitude * sd, "|coef| × SD of the model's input"
    try:
        values = model.feature_importances_
    except (AttributeError, ValueError):  # e.g. EasyEnsembleClassifier has none
        return None
    return np.asarray(values, dtype=float), "mean impurity decrease"


def feature_importances(fitted: Any, X_train: pd.DataFrame) -> pd.DataFrame | None:
    """One row per model input (after preprocessing), most important first: ``rank``, ``feature``,
    ``importance``, ``share`` (of the total) and ``kind``; None for a model without importances.

    ``fitted``: the fitted pipeline (or its calibrated wrapper); ``X_train``: the rows it was fitted on
    (only read for the SD of a linear model's inputs).
    """
    transform, model = _split(fitted)
    found = _importances(transform, model, X_train)
    if found is None:
        return None
    values, kind = found
    names = _names(transform, model, X_train, len(values))
    total = float(np.nansum(values))
    table = pd.DataFrame(
        {
            "feature": names,
            "importance": values,
            "share": values / total if total > 0 else np.nan,
            "kind": kind,
        }
    )
    table = table.sort_values("importance", ascending=False, kind="stable").reset_index(drop=True)
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    return table


def importance_figure(table: pd.DataFrame, top: int = TOP) -> Figure:
    """Horizontal bars of the ``top`` most important features (largest on top), kind in the title."""
    shown = table.head(top).iloc[::-1]
    fig = Figure(figsize=(7.5, 0.28 * len(shown) + 1.4), layout="constrained")
    ax = fig.subplots()
    ax.barh(shown["feature"], shown["importance"], color="C0")
    ax.tick_params(axis="y", labelsize=8)
    kind = table["kind"].iloc[0]
    ax.set_xlabel(kind)
    ax.set_title(f"Feature importance ({kind}): top {len(shown)} of {len(table)} features", fontsize=10)
    return fig
