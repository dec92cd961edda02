"""The sweep jobs that failed with an ``ImblabError``, recorded for the sweep's own process to report.

A failed job does not stop the sweep: it is written to ``<sweep dir>/imblab_failures/job-<N>.json`` and
the job returns, so the launcher (basic, or joblib, whose workers are other processes) goes on with the
others. When the launcher is done, ``imblab.app.hydra.run_hydra`` prints one ``imblab: error: job N
(...): ...`` line per failure and exits 2; the parent run ends FAILED with them in its ``imblab.error``.
The folder reaches the jobs through ``$IMBLAB_SWEEP_FAILURES``, set before the launcher starts.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig

from imblab.errors import ImblabError
from imblab.secrets import mask

FAILURES_ENV = "IMBLAB_SWEEP_FAILURES"
FAILURES_DIR = "imblab_failures"
SHARED_OVERRIDES = "sweep_overrides.json"  # the sweep's own command line, beside the failures


@dataclass(frozen=True)
class JobFailure:
    """One sweep job that failed with an ``ImblabError``."""

    num: int
    overrides: tuple[str, ...]  # those that set this job apart from the sweep's other jobs
    message: str

    def __str__(self) -> str:
        return f"job {self.num} ({' '.join(self.overrides) or 'no overrides'}): {self.message}"


def open_failures(config: DictConfig, overrides: list[str]) -> None:
    """Create ``<sweep dir>/imblab_failures`` (emptied: a sweep started in the same second shares the
    folder) with the sweep's overrides, and publish it to the jobs."""
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
    os.environ[FAILURES_ENV] = str(folder)


def close_failures() -> None:
    os.environ.pop(FAILURES_ENV, None)


def record_failure(num: int, overrides: list[str], message: str) -> bool:
    """Write a failed job for the sweep's process to report; False when no sweep records failures."""
    folder = os.environ.get(FAILURES_ENV)
    if not folder:
        return False
    record = {"num": num, "overrides": [mask(o) for o in overrides], "message": mask(message)}
    (Path(folder) / f"job-{num}.json").write_text(json.dumps(record))
    return True


def job_failures() -> list[JobFailure]:
    """The failures recorded by the current sweep's jobs, in job order."""
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
