"""The Hydra callback that gives every multirun one MLflow parent run (``hydra.callbacks`` in train.yaml)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from imblab.app.failures import open_failures
from imblab.app.hydra import close_and_report_sweep
from imblab.app.main import print_error
from imblab.errors import ImblabError
from imblab.tracking.sweeps import open_sweep, sweep_run_name

log = logging.getLogger(__name__)
BASIC_SWEEPER = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"


def n_jobs(config: DictConfig) -> int | None:
    """How many jobs Hydra's basic sweeper launches for this multirun; None if that cannot be told.

    The same arguments the sweeper expands (``hydra.sweeper.params`` first, then the command line's
    overrides) go through its own ``split_arguments``, so the count is the sweeper's, not a copy of it.
    """
    sweeper = config.hydra.get("sweeper") or {}
    if sweeper.get("_target_") != BASIC_SWEEPER:
        return None  # another sweeper plugin decides its jobs as it goes
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper

    try:
        overrides = OverridesParser.create().parse_overrides(sweep_arguments(config))
        return sum(len(batch) for batch in BasicSweeper.split_arguments(overrides, None))
    except Exception as exc:  # e.g. a glob() sweep, which needs Hydra's config loader
        log.debug("number of sweep jobs unknown: %s", exc)
        return None


def sweep_arguments(config: DictConfig) -> list[str]:
    """What the basic sweeper expands: ``hydra.sweeper.params`` first, then the command line's overrides."""
    sweeper = config.hydra.get("sweeper") or {}
    params = [f"{key}={value}" for key, value in (sweeper.get("params") or {}).items()]
    return [*params, *config.hydra.overrides.task]


def swept_keys(config: DictConfig) -> list[str]:
    """The keys the sweep varies (``sampler=none,smote``), in the order the sweeper combines them (the
    first place a key is given; a later override of the same key replaces its values, not its place)."""
    try:
        overrides = OverridesParser.create().parse_overrides(sweep_arguments(config))
    except Exception as exc:  # Hydra reports an unparsable override itself, before any job
        log.debug("swept keys unknown: %s", exc)
        return []
    order: dict[str, bool] = {}
    for override in overrides:
        order[override.get_key_element()] = override.is_sweep_override()
    return [key for key, swept in order.items() if swept]


def sweep_label(config: DictConfig, swept: list[str]) -> str:
    """What the sweep is about, in the user's words: the named recipe (``experiment=...``) if one was chosen,
    else the data (``secom``); the tracking experiment when the data itself is swept."""
    choices = config.hydra.runtime.get("choices") or {}
    for group in ("experiment", "data"):
        if choices.get(group) and group not in swept:
            return str(choices[group])
    return str(config.tracking.experiment)


class SweepCallback(Callback):
    """Opens the sweep's parent run and its failure record (``imblab.app.failures``) before the launcher
    starts; closes the parent with the sweep's outcome."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        overrides = list(config.hydra.overrides.task) if "hydra" in config else []
        jobs = n_jobs(config) if "hydra" in config else None
        where = Path(str(config.hydra.sweep.dir)) if "hydra" in config else None
        swept = swept_keys(config) if "hydra" in config else []
        label = sweep_label(config, swept) if "hydra" in config else str(config.tracking.experiment)
        try:
            if "hydra" in config:
                open_failures(config, overrides)
            name = sweep_run_name(label, swept, jobs)
            open_sweep(config.tracking.uri, str(config.tracking.experiment), name, jobs, where, swept)
        except ImblabError as exc:
            # Raised inside Hydra, an ImblabError would become a traceback; SystemExit passes through it.
            print_error(exc)
            raise SystemExit(2) from None

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        close_and_report_sweep(failed=False)
