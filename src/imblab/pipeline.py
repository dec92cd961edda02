"""The leakage-free pipeline: preprocess -> sampler -> model, as one imblearn ``Pipeline``.

The sampler sits *inside* the pipeline that cross-validation clones, so resampling is fitted on each
training fold only and is skipped at predict time. The frozen model drops it entirely. With
``calibration`` on, the unit every fit clones is that pipeline wrapped in a calibrator (``calibrated``).
Everything here works on built objects; turning config into them is ``imblab.config``'s job.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
from imblearn.pipeline import Pipeline as ImbPipeline
from sklearn.base import clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline as SkPipeline

from imblab.config.specs import CalibrationSpec
from imblab.errors import ImblabError

SAMPLER_STEP = "sampler"
MODEL_STEP = "model"


def assemble(preprocess_steps: list[tuple[str, Any]], sampler: Any | None, model: Any) -> ImbPipeline:
    """preprocess steps + optional sampler + model, unfitted."""
    steps = list(preprocess_steps)
    if sampler is not None:
        steps.append((SAMPLER_STEP, sampler))
    steps.append((MODEL_STEP, model))
    return ImbPipeline(steps)


def sampler_of(pipeline: ImbPipeline) -> Any | None:
    return pipeline.named_steps.get(SAMPLER_STEP)


def model_of(pipeline: ImbPipeline) -> Any:
    return pipeline.named_steps[MODEL_STEP]


def preprocess_of(pipeline: ImbPipeline) -> SkPipeline:
    """An unfitted clone of the steps before the sampler and the model (identity when there are none)."""
    steps = [(n, clone(s)) for n, s in pipeline.steps if n not in (SAMPLER_STEP, MODEL_STEP)]
    return SkPipeline(steps or [("identity", "passthrough")])


def with_model_params(pipeline: ImbPipeline, params: dict[str, Any] | None) -> ImbPipeline:
    """An unfitted clone of ``pipeline`` whose model has ``params`` (e.g. tuned values) on top."""
    fresh = clone(pipeline)
    if params:
        fresh.set_params(**{f"{MODEL_STEP}__{k}": v for k, v in params.items()})
    return fresh


def calibrated(pipeline: ImbPipeline, spec: CalibrationSpec) -> Any:
    """``pipeline`` as the unit every fit clones: itself, or wrapped in a calibrator when calibration is on.

    Why ``CalibratedClassifierCV(pipeline, cv=k, ensemble=False)``: each of its k folds fits the *whole*
    pipeline, sampler included, on its training part and scores its held-out part, rows no sampler ever
    saw, so the calibrator learns the map from scores to the true class prior (resampling shifts the
    prior; calibrating on resampled rows would learn the shifted one). ``ensemble=False`` then refits the
    pipeline on all of the fit's rows, the same fit as without calibration, and freezes one model with
    one calibrator: sigmoid calibration is then a monotone map of the uncalibrated scores (same ranking,
    same PR-AUC), and the frozen model is one pipeline, not k. The price is k extra fits per fit; a
    held-out calibration split would be cheaper but would take rows, and positives, from every fit.
    """
    if not spec.enabled:
        return pipeline
    folds = StratifiedKFold(spec.folds, shuffle=True, random_state=spec.seed)
    return CalibratedClassifierCV(pipeline, method=spec.method, cv=folds, ensemble=False)


def base_pipeline(estimator: Any) -> Any:
    """The preprocess -> sampler -> model pipeline inside ``estimator`` (itself when not calibrated)."""
    return estimator.estimator if isinstance(estimator, CalibratedClassifierCV) else estimator


def calibration_folds(estimator: Any) -> Any | None:
    """The calibration folds' splitter of a ``calibrated`` estimator, else None."""
    return estimator.cv if isinstance(estimator, CalibratedClassifierCV) else None


def predict_pipeline(fitted: Any) -> Any:
    """The fitted pipeline without its sampler: what is frozen and served.

    A calibrated fit keeps its calibrator; its refitted pipeline loses the sampler (a shallow copy:
    the fitted object itself, e.g. a cached one, is not changed).
    """
    if isinstance(fitted, CalibratedClassifierCV):
        frozen = copy.copy(fitted)
        frozen.calibrated_classifiers_ = []
        for member in fitted.calibrated_classifiers_:
            member = copy.copy(member)
            member.estimator = predict_pipeline(member.estimator)
            frozen.calibrated_classifiers_.append(member)
        return frozen
    return SkPipeline([(name, step) for name, step in fitted.steps if name != SAMPLER_STEP])


def positive_proba(estimator: Any, X: Any) -> np.ndarray:
    """P(class 1) from any fitted classifier or pipeline, whatever the order of its ``classes_``."""
    proba = estimator.predict_proba(X)
    return np.asarray(proba[:, list(estimator.classes_).index(1)], dtype=float)


def _neighbour_requirements(sampler: Any) -> dict[str, int]:
    """Neighbour counts a sampler draws from the minority class, by parameter name."""
    needs: dict[str, int] = {}
    for name, value in sampler.get_params(deep=True).items():
        if not isinstance(value, int | np.integer) or isinstance(value, bool):
            continue
        leaf = name.rsplit("__", 1)[-1]
        # SMOTE-family samplers interpolate between minority neighbours (k_neighbors); ADASYN
        # calls the same thing n_neighbors. ENN/Tomek neighbours run on all rows and are safe.
        if leaf == "k_neighbors" or (leaf == "n_neighbors" and type(sampler).__name__ == "ADASYN"):
            needs[name] = int(value)
    return needs


def check_sampler_feasible(pipeline: Any, sampler_name: str, minority_counts: list[int]) -> None:
    """Fail before any fit when a fold has too few minority rows for the sampler's neighbours.

    ``minority_counts`` are the minority-class sizes of every training set the sampler will see
    (each CV training fold and the full training set; with calibration, their calibration folds).
    """
    sampler = sampler_of(base_pipeline(pipeline))
    if sampler is None:
        return
    smallest = min(minority_counts)
    for param, k in _neighbour_requirements(sampler).items():
        if k + 1 > smallest:
            key = "sampler.estimator." + param.replace("__", ".")
            raise ImblabError(
                f"sampler {sampler_name!r} needs {param}+1 = {k + 1} minority rows in every training "
                f"fold, but the smallest fold has {smallest}. Lower it ({key}={max(smallest - 1, 1)}), "
                "use fewer CV folds (cv.folds=...), or pick a sampler without neighbours "
                "(sampler=random_over)."
            )
