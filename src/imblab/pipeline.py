"""Build the leakage-free pipeline: preprocess -> sampler -> model, as one imblearn ``Pipeline``.

The sampler sits *inside* the pipeline that cross-validation clones, so resampling is fitted
on each training fold only and is skipped at predict time. The frozen model drops it entirely.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from imblearn.pipeline import Pipeline as ImbPipeline
from omegaconf import DictConfig, OmegaConf
from sklearn.pipeline import Pipeline as SkPipeline

from imblab.errors import ImblabError
from imblab.preprocess import build_preprocess_steps

SAMPLER_STEP = "sampler"
MODEL_STEP = "model"


def build(node: DictConfig, what: str) -> Any:
    """``hydra.utils.instantiate`` with our errors surfaced as they are and others made readable."""
    try:
        return instantiate(node, _convert_="all")
    except InstantiationException as exc:
        cause = exc.__cause__
        if isinstance(cause, ImblabError):
            raise cause from None
        target = node.get("_target_", "?") if isinstance(node, DictConfig) else "?"
        msg = f"could not build {what} ({target}): {cause or exc}; check its config keys"
        raise ImblabError(msg) from exc


def build_sampler(sampler_cfg: DictConfig) -> Any | None:
    """The imblearn sampler named by the ``sampler`` group, or None (none / class_weight)."""
    est = sampler_cfg.get("estimator")
    return None if est is None else build(est, "sampler")


def build_model(model_cfg: DictConfig, sampler_cfg: DictConfig, params: dict[str, Any] | None = None) -> Any:
    """The classifier named by the ``model`` group, with ``params`` (e.g. tuned values) on top."""
    model = build(model_cfg.estimator, "model")
    if params:
        model.set_params(**params)
    class_weight = sampler_cfg.get("class_weight")
    if class_weight is not None:
        if "class_weight" not in model.get_params():
            raise ImblabError(
                f"sampler=class_weight needs a model with a class_weight parameter; model "
                f"{model_cfg.get('name')!r} ({type(model).__name__}) has none. Use sampler=none instead."
            )
        model.set_params(
            class_weight=OmegaConf.to_object(class_weight)
            if isinstance(class_weight, DictConfig)
            else class_weight
        )
    return model


def build_pipeline(cfg: DictConfig, model_params: dict[str, Any] | None = None) -> ImbPipeline:
    """preprocess steps + optional sampler + model, unfitted."""
    steps = build_preprocess_steps(cfg.preprocess)
    sampler = build_sampler(cfg.sampler)
    if sampler is not None:
        steps.append((SAMPLER_STEP, sampler))
    steps.append((MODEL_STEP, build_model(cfg.model, cfg.sampler, model_params)))
    return ImbPipeline(steps)


def predict_pipeline(fitted: ImbPipeline) -> SkPipeline:
    """The fitted pipeline without its sampler: what is frozen and served."""
    return SkPipeline([(name, step) for name, step in fitted.steps if name != SAMPLER_STEP])


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


def check_sampler_feasible(cfg: DictConfig, minority_counts: list[int]) -> None:
    """Fail before any fit when a fold has too few minority rows for the sampler's neighbours.

    ``minority_counts`` are the minority-class sizes of every training set the sampler will see
    (each CV training fold and the full training set).
    """
    sampler = build_sampler(cfg.sampler)
    if sampler is None:
        return
    smallest = min(minority_counts)
    for param, k in _neighbour_requirements(sampler).items():
        if k + 1 > smallest:
            key = "sampler.estimator." + param.replace("__", ".")
            raise ImblabError(
                f"sampler {cfg.sampler.name!r} needs {param}+1 = {k + 1} minority rows in every training "
                f"fold, but the smallest fold has {smallest}. Lower it ({key}={max(smallest - 1, 1)}), "
                "use fewer CV folds (cv.folds=...), or pick a sampler without neighbours "
                "(sampler=random_over)."
            )
