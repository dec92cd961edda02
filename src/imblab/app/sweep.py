"""The Hydra callback that gives every multirun one MLflow parent run (``hydra.callbacks`` in train.yaml)."""

from __future__ import annotations

from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from imblab.tracking.sweeps import close_sweep, open_sweep


class SweepCallback(Callback):
    """Opens the sweep's parent run before the launcher starts; closes it with the sweep's outcome."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        overrides = list(config.hydra.overrides.task) if "hydra" in config else []
        open_sweep(config.tracking.uri, str(config.tracking.experiment), f"sweep {' '.join(overrides)}")

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        close_sweep(failed=False)
