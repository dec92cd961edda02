"""A Hydra multirun as one sweep: its MLflow parent run (``hydra.callbacks`` in train.yaml / panel.yaml) and
the record of the jobs that failed with an ``ImblabError``.

A failed job does not stop the sweep: it is written to ``<sweep dir>/imblab_failures/<job>.json`` and the
job returns, so the launcher (basic or joblib, whose workers are other processes) goes on with the others.
When the launcher is done, ``imblab.app.hydra.run_hydra`` prints one ``imblab: error: job N (...)`` line per
failure and exits 2, and the parent run ends FAILED with the failures as its ``imblab.error`` tag.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from imblab.app.main import print_error
from imblab.errors import ImblabError
from imblab.secrets import mask
from imblab.tracking.sweeps import close_sweep, open_sweep

log = logging.getLogger(__name__)
BASIC_SWEEPER = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"
# The failure folder; set before the launcher starts, so joblib workers inherit it.
FAILURES_ENV = "IMBLAB_SWEEP_FAILURES"
FAILURES_DIR = "imblab_failures"
SHARED_OVERRIDES = "sweep_overrides.json"  # the sweep's own command line, beside the failures


@dataclass(frozen=True)
class JobFailure:
    """One sweep job that failed with an ``ImblabError``."""

    num: int
    overrides: tuple[str, ...]
    message: str

    def __str__(self) -> str:
        return f"job {self.num} ({' '.join(self.overrides) or 'no overrides'}): {self.message}"


def record_failure(num: int, overrides: list[str], message: str) -> bool:
    """Write a failed job for the sweep's process to report; False when no sweep records failures."""
    folder = os.environ.get(FAILURES_ENV)
    if not folder:
        return False
    record = {"num": num, "overrides": [mask(o) for o in overrides], "message": mask(message)}
    (Path(folder) / f"job-{num}.json").write_text(json.dumps(record))
    return True


def job_failures() -> list[JobFailure]:
    """The failures recorded by the current sweep's jobs, in job order, each with the overrides that set
    it apart (those the whole sweep shares are left out)."""
    folder = os.environ.get(FAILURES_ENV)
    if not folder or not Path(folder).is_dir():
        return []
    shared_file = Path(folder) / SHARED_OVERRIDES
    shared = {_plain(o) for o in json.loads(shared_file.read_text())} if shared_file.is_file() else set()
    records = [json.loads(p.read_text()) for p in Path(folder).glob("job-*.json")]
    return sorted(
        (
            JobFailure(
                int(r["num"]), tuple(o for o in r["overrides"] if _plain(o) not in shared), str(r["message"])
            )
            for r in records
        ),
        key=lambda f: f.num,
    )


def _plain(override: str) -> str:
    """An override without Hydra's escapes: a job's ``a=sqlite\\:///x`` is the sweep's ``a=sqlite:///x``."""
    return override.replace("\\", "")


def end_sweep(failed: bool, error: str | None = None) -> list[JobFailure]:
    """Close the sweep's parent run (if one is open) with the jobs' failures and the sweep's own ``error``
    (e.g. an override Hydra refused); returns the jobs' failures."""
    failures = job_failures()
    os.environ.pop(FAILURES_ENV, None)
    recorded = [str(f) for f in failures] + ([error] if error else [])
    close_sweep(failed=failed or bool(recorded), failures=recorded)
    return failures


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


def _failure_folder(config: DictConfig, overrides: list[str]) -> Path:
    """``<sweep dir>/imblab_failures``, emptied (a sweep started in the same second uses the same dir), with
    the sweep's overrides."""
    folder = Path(str(config.hydra.sweep.dir)) / FAILURES_DIR
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob("*.json"):
            stale.unlink()
        (folder / SHARED_OVERRIDES).write_text(json.dumps([mask(o) for o in overrides]))
    except OSError as exc:
        raise ImblabError(
            f"cannot write the sweep's folder {folder.parent} ({exc.strerror}); run from a writable "
            "directory or set hydra.sweep.dir=<a writable path>"
        ) from None
    return folder


class SweepCallback(Callback):
    """Opens the sweep's parent run and its failure folder before the launcher starts.

    ``run_hydra`` closes both when the launcher is done (or fails): see :func:`end_sweep`.
    """

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            overrides = list(config.hydra.overrides.task) if "hydra" in config else []
            if "hydra" in config:
                os.environ[FAILURES_ENV] = str(_failure_folder(config, overrides))
            jobs = n_jobs(config) if "hydra" in config else None
            open_sweep(
                config.tracking.uri, str(config.tracking.experiment), f"sweep {' '.join(overrides)}", jobs
            )
        except ImblabError as exc:
            # Raised inside Hydra, an ImblabError would become a traceback; SystemExit passes through it.
            print_error(exc)
            raise SystemExit(2) from None
