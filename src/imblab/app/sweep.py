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
from imblab.tracking.sweeps import open_sweep

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

    params = [f"{key}={value}" for key, value in (sweeper.get("params") or {}).items()]
    arguments = [*params, *config.hydra.overrides.task]
    try:
        overrides = OverridesParser.create().parse_overrides(arguments)
        return sum(len(batch) for batch in BasicSweeper.split_arguments(overrides, None))
    except Exception as exc:  # e.g. a glob() sweep, which needs Hydra's config loader
        log.debug("number of sweep jobs unknown: %s", exc)
        return None


class SweepCallback(Callback):
    """Opens the sweep's parent run and its failure record (``imblab.app.failures``) before the launcher
    starts; closes the parent with the sweep's outcome."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        overrides = list(config.hydra.overrides.task) if "hydra" in config else []
        jobs = n_jobs(config) if "hydra" in config else None
        where = Path(str(config.hydra.sweep.dir)) if "hydra" in config else None
        try:
            if "hydra" in config:
                open_failures(config, overrides)
            name = f"sweep {' '.join(overrides)}"
            open_sweep(config.tracking.uri, str(config.tracking.experiment), name, jobs, where)
        except ImblabError as exc:
            # Raised inside Hydra, an ImblabError would become a traceback; SystemExit passes through it.
            print_error(exc)
            raise SystemExit(2) from None

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        close_and_report_sweep(failed=False)
