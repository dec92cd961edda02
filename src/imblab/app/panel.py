"""``imblab panel [overrides]``: one panel run, or a sweep with ``-m`` (Hydra parses the overrides).

The config root is ``conf/panel`` (entry ``panel.yaml``); the main ``conf/`` is on Hydra's search path,
so the ``tracking`` and ``tuning`` groups are the ones ``imblab train`` uses.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from imblab.app.hydra import (
    conf_dir,
    in_multirun,
    named_for_sweep,
    progress_display,
    report_run,
    run_hydra,
    sweep_dir,
)

CONFIG_NAME = "panel"


def panel_conf_dir() -> Path:
    return conf_dir() / "panel"


def search_path_override() -> str:
    """The Hydra override that makes the shared groups of ``conf/`` (tracking, tuning) resolvable."""
    return f"hydra.searchpath=[file://{conf_dir()}]"


def _task(cfg: Any) -> float:
    from imblab.config.panel import panel_experiment_from_config
    from imblab.panel.experiment import run_panel
    from imblab.tracking.store import resolve_tracking_uri
    from imblab.tracking.sweeps import parent_run_id

    experiment = panel_experiment_from_config(cfg)
    experiment.tracking = named_for_sweep(experiment.tracking)
    outcome = run_panel(experiment, parent_run_id(in_multirun(), sweep_dir()), progress_display())
    report_run(resolve_tracking_uri(experiment.tracking.uri), outcome.run_id, outcome.model_uri)
    return float(outcome.test_metrics["class_macro_f1"])


def main(argv: Sequence[str]) -> int:
    return run_hydra(_task, list(argv), CONFIG_NAME, panel_conf_dir(), [search_path_override()])
