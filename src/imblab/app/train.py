"""``imblab train [overrides]``: one experiment, or a sweep with ``-m`` (Hydra parses the overrides)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from imblab.app.hydra import in_multirun, named_for_sweep, progress_display, report_run, run_hydra, sweep_dir


def _task(cfg: Any) -> float:
    from imblab.config.compose import experiment_from_config
    from imblab.experiment import run_experiment
    from imblab.tracking.store import resolve_tracking_uri
    from imblab.tracking.sweeps import parent_run_id

    experiment = experiment_from_config(cfg)
    experiment.tracking = named_for_sweep(experiment.tracking)
    outcome = run_experiment(experiment, parent_run_id(in_multirun(), sweep_dir()), progress_display())
    report_run(resolve_tracking_uri(experiment.tracking.uri), outcome.run_id, outcome.model_uri)
    # The job's return value: test PR-AUC, or its repeated-CV mean (evaluation=repeated_cv has no test set).
    if outcome.rcv_metrics:
        return float(outcome.rcv_metrics["rcv_pr_auc"])
    return float(outcome.test_metrics["pr_auc"])


def main(argv: Sequence[str]) -> int:
    return run_hydra(_task, list(argv))
