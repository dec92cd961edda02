"""The one place that turns a composed Hydra config into typed objects (``Experiment`` and its specs).

``hydra.utils.instantiate`` builds every ``_target_`` (data loader, scaler, sampler, model, threshold
policy, pruner); errors of imblab's own code surface as they are, anything else as an
``ImblabError`` naming the config group.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Mapping
from typing import Any

from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from imblab.config.params import check_params
from imblab.config.specs import (
    CacheSpec,
    CalibrationSpec,
    CVSpec,
    EarlyStoppingSpec,
    EvaluationSpec,
    Experiment,
    SplitSpec,
    TrackingSpec,
    TuningSpec,
)
from imblab.data.dataset import Dataset
from imblab.errors import ImblabError
from imblab.metrics.costs import Costs, effective_costs
from imblab.pipeline import assemble
from imblab.preprocess import build_preprocess_steps
from imblab.thresholds import ThresholdPolicy


def build(node: Any, what: str) -> Any:
    """``hydra.utils.instantiate`` with imblab's errors surfaced as they are and others made readable."""
    try:
        return instantiate(node, _convert_="all")
    except InstantiationException as exc:
        cause = exc.__cause__
        if isinstance(cause, ImblabError):
            raise cause from None
        target = node.get("_target_", "?") if isinstance(node, Mapping | DictConfig) else "?"
        msg = f"could not build {what} ({target}): {cause or exc}; check its config keys"
        raise ImblabError(msg) from exc


def plain(cfg: DictConfig) -> dict[str, Any]:
    """The resolved config as plain data, without Hydra's own section."""
    container = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(container, dict)
    container.pop("hydra", None)
    return container


def check_complete(cfg: DictConfig) -> None:
    """Config checks that need no data: fail before a run is opened."""
    missing = OmegaConf.missing_keys(cfg)
    if missing:
        raise ImblabError(
            f"missing required config values: {sorted(missing)}; set them on the command line: "
            + " ".join(f"{key}=..." for key in sorted(missing))
        )


def load_dataset(node: dict[str, Any]) -> Dataset:
    """Build the ``data`` group's loader and check what it returns."""
    dataset = build(node, "data")
    if not isinstance(dataset, Dataset):
        raise ImblabError(f"data: {node.get('_target_')} returned {type(dataset).__name__}, not a Dataset")
    dataset.validate()
    return dataset


def group_options(group: str) -> list[str]:
    """The options of config group ``group`` in the running Hydra app ([] for no group, or outside an app)."""
    from hydra.core.global_hydra import GlobalHydra

    hydra = GlobalHydra.instance()
    if not hydra.is_initialized():
        return []
    return sorted(hydra.config_loader().get_group_options(group))


def section(config: dict[str, Any], key: str) -> dict[str, Any]:
    """A required config section; a removed group (``~sampler``) names the options to pick from."""
    node = config.get(key)
    if not isinstance(node, dict):
        options = group_options(key)
        if options:
            raise ImblabError(
                f"config group {key!r} has no option selected (~{key} removes it); every run needs one: "
                f"choose {key}=<option>, one of {', '.join(options)}"
            )
        raise ImblabError(f"config section {key!r} is missing or not a mapping; check your overrides")
    return node


def build_model(model: dict[str, Any], sampler: dict[str, Any]) -> Any:
    """The classifier of the ``model`` group, with the sampler group's class weights when it has them."""
    estimator = build(model.get("estimator"), "model")
    class_weight = sampler.get("class_weight")
    if class_weight is not None:
        if "class_weight" not in estimator.get_params():
            raise ImblabError(
                f"sampler=class_weight needs a model with a class_weight parameter; model "
                f"{model.get('name')!r} ({type(estimator).__name__}) has none. Use sampler=none instead."
            )
        estimator.set_params(class_weight=class_weight)
    check_params(estimator, "model.estimator")
    return estimator


def build_pipeline(config: dict[str, Any]) -> Any:
    """preprocess -> optional sampler -> model, unfitted, from the plain config."""
    pre = section(config, "preprocess")
    scaler_node = pre.get("scaler")
    scaler = build(scaler_node, "scaler") if scaler_node and scaler_node.get("_target_") else None
    check_params(scaler, "preprocess.scaler")
    steps = build_preprocess_steps(
        max_missing=pre.get("max_missing", 0.5),
        drop_constant=pre.get("drop_constant", True),
        impute=pre.get("impute", "median"),
        scaler=scaler,
    )
    sampler_cfg = section(config, "sampler")
    estimator = sampler_cfg.get("estimator")
    sampler = None if estimator is None else build(estimator, "sampler")
    check_params(sampler, "sampler.estimator")
    return assemble(steps, sampler, build_model(section(config, "model"), sampler_cfg))


def typed_spec(cls: type, node: dict[str, Any], key: str) -> Any:
    """``cls(**node)`` with unknown keys reported as a config error rather than a TypeError."""
    known = set(cls.__dataclass_fields__)
    unknown = sorted(set(node) - known)
    if unknown:
        raise ImblabError(f"unknown {key} key(s) {unknown}; known: {sorted(known)}")
    return cls(**node)


def tuning_spec(node: dict[str, Any] | None) -> TuningSpec:
    """The ``tuning`` group as a spec (the Optuna pruner built from its ``pruner`` subgroup)."""
    node = dict(node or {})
    if not node.get("enabled", False):
        return TuningSpec(enabled=False)
    pruner_node = node.pop("pruner", None)
    pruner = None
    if isinstance(pruner_node, str):  # the pre-0.2 spelling tuning.pruner=median
        raise ImblabError(
            f"tuning.pruner is a config group now: use tuning/pruner={pruner_node} (options: percentile, "
            "median, wilcoxon, none, or a YAML of your own with an optuna.pruners _target_)"
        )
    if pruner_node:
        with warnings.catch_warnings():  # e.g. WilcoxonPruner is "experimental" in Optuna
            warnings.simplefilter("ignore")
            try:
                pruner = build(pruner_node, "tuning pruner")
            except (TypeError, ValueError) as exc:
                raise ImblabError(f"tuning.pruner: {exc}") from None
    es = typed_spec(EarlyStoppingSpec, node.pop("early_stopping", None) or {}, "tuning.early_stopping")
    return typed_spec(TuningSpec, {**node, "pruner": pruner, "early_stopping": es}, "tuning")


def experiment_from_config(cfg: DictConfig | dict[str, Any]) -> Experiment:
    """Validate the composed config and build the typed ``Experiment`` (no data is read yet).

    Accepts a ``DictConfig`` (``imblab train``) or the plain dict a run logged as ``config.yaml``
    (the registry rebuilds a run's data and split from it).
    """
    if isinstance(cfg, DictConfig):
        check_complete(cfg)
        config = plain(cfg)
    else:
        config = dict(cfg)
    policy = build(section(config, "threshold"), "threshold policy")
    if not isinstance(policy, ThresholdPolicy):
        raise ImblabError(f"threshold: {type(policy).__name__} is not an imblab threshold policy")
    costs = effective_costs(Costs(**section(config, "costs")), policy.costs_override())
    cv = section(config, "cv")
    cache = config.get("cache") or {}
    model = section(config, "model")
    # Configs logged before evaluation/calibration existed (the registry reads them back) mean the defaults.
    evaluation = typed_spec(EvaluationSpec, config.get("evaluation") or {}, "evaluation")
    tuning = tuning_spec(config.get("tuning"))
    if evaluation.repeated and tuning.enabled:
        raise ImblabError(
            "evaluation=repeated_cv does not tune inside every outer fold yet, and tuning on all rows "
            "would leak the outer-test labels into the model; tune with evaluation=holdout, then rerun "
            "with the best values as model.estimator.<param>=... overrides and tuning=none"
        )
    return Experiment(
        load_data=functools.partial(load_dataset, section(config, "data")),
        pipeline=build_pipeline(config),
        sampler_name=str(section(config, "sampler").get("name", "?")),
        model_name=str(model.get("name", "?")),
        policy=policy,
        costs=costs,
        split=typed_spec(SplitSpec, section(config, "split"), "split"),
        cv=typed_spec(CVSpec, cv, "cv"),
        cache=CacheSpec(bool(cache.get("enabled", False)), cache.get("dir")),
        tracking=typed_spec(TrackingSpec, section(config, "tracking"), "tracking"),
        tuning=tuning,
        search_space=dict(model.get("search_space") or {}),
        seed=int(config.get("seed", 0)),
        config=config,
        evaluation=evaluation,
        calibration=typed_spec(CalibrationSpec, config.get("calibration") or {}, "calibration"),
    )
