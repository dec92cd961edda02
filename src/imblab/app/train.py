"""``imblab train [overrides]``: one experiment, or a sweep with ``-m`` (Hydra parses the overrides)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from imblab.app.hydra import in_multirun, run_hydra, sweep_dir


def _task(cfg: Any) -> float:
    from imblab.config.compose import experiment_from_config
    from imblab.experiment import run_experiment
    from imblab.tracking.sweeps import parent_run_id

    outcome = run_experiment(experiment_from_config(cfg), parent_run_id(in_multirun(), sweep_dir()))
    return float(outcome.test_metrics["pr_auc"])


def main(argv: Sequence[str]) -> int:
    run_hydra(_task, "imblab", list(argv))
    return 0
