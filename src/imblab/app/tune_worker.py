"""``imblab tune-worker [overrides]``: join a shared Optuna study (the overrides of ``imblab train``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from imblab.app.hydra import run_hydra
from imblab.errors import ImblabError


def _task(cfg: Any) -> None:
    from imblab.config.compose import experiment_from_config
    from imblab.tuning.run import run_worker

    experiment = experiment_from_config(cfg)
    if not experiment.tuning.enabled:
        raise ImblabError("tune-worker needs tuning=optuna (the default for tune-worker); drop tuning=none")
    run_worker(experiment)


def main(argv: Sequence[str]) -> int:
    args = list(argv)
    chosen = any(a.startswith(("tuning=", "+tuning=", "~tuning")) for a in args)
    run_hydra(_task, args, overrides=[] if chosen else ["tuning=optuna"])
    return 0
