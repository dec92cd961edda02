"""A Hydra multirun's parent run: opened before the jobs start, closed with the sweep's outcome.

The parent's id reaches the jobs through ``$IMBLAB_PARENT_RUN_ID``, set before the launcher starts,
so it is inherited by joblib worker processes as well as by in-process jobs. The Hydra callback that
calls these functions lives in ``imblab.app.sweep`` (it is the part that sees Hydra's config).

Jobs on other machines (``hydra/launcher=submitit_slurm``) may not inherit the environment, so the id
is also written to ``<sweep dir>/.imblab-sweep.json`` (the sweep directory is shared with the jobs:
submitit keeps its job files there); a job without the variable reads it from there.

The parent records how many jobs the sweep launches (``imblab.n_jobs``) when it opens, so a reader
can tell a finished sweep from one that is still running or was killed before every job had run
(:func:`sweep_progress`).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mlflow.entities import Run, RunStatus
from mlflow.tracking import MlflowClient

from imblab.secrets import mask
from imblab.tracking.layout import (
    ROLE_SWEEP,
    TAG_COMMAND,
    TAG_ERROR,
    TAG_N_CHILDREN,
    TAG_N_FINISHED,
    TAG_N_JOBS,
    TAG_ROLE,
    TAG_SWEPT_KEYS,
)
from imblab.tracking.lifecycle import OPEN_RUNS, location_tags, mark_killed
from imblab.tracking.reaper import child_runs
from imblab.tracking.runs import TAG_LIMIT, command_line, git_tags
from imblab.tracking.store import ensure_experiment, resolve_tracking_uri, use_tracking

PARENT_ENV = "IMBLAB_PARENT_RUN_ID"
PARENT_URI_ENV = "IMBLAB_PARENT_TRACKING_URI"
SWEPT_ENV = "IMBLAB_SWEPT_KEYS"  # JSON list: the keys the sweep varies, for its jobs' run names
SWEEP_FILE = ".imblab-sweep.json"  # in the sweep directory: the parent run id for jobs elsewhere
UNFINISHED = ("FAILED", "KILLED", "RUNNING", "SCHEDULED")


def open_sweep(
    tracking_uri: str | None,
    experiment: str,
    run_name: str,
    n_jobs: int | None = None,
    sweep_dir: Path | None = None,
    swept: Sequence[str] = (),
) -> str:
    """Create the parent run of a sweep and publish its id to the jobs; returns the id.

    ``run_name`` (:func:`sweep_run_name`) is stored with its passwords masked. ``n_jobs``: how many jobs
    the sweep launches, when known; recorded as ``imblab.n_jobs``.
    ``sweep_dir``: the sweep's output directory, where the id is also written for remote jobs.
    ``swept``: the keys the sweep varies, in sweep order (``imblab.swept_keys``; the jobs name their runs
    by these keys' values, :func:`job_run_name`).
    """
    uri = use_tracking(tracking_uri, write=True)
    exp_id = ensure_experiment(experiment, uri)
    tags = {TAG_ROLE: ROLE_SWEEP, TAG_COMMAND: command_line()[:TAG_LIMIT], **git_tags(), **location_tags()}
    if n_jobs is not None:
        tags[TAG_N_JOBS] = str(n_jobs)
    tags[TAG_SWEPT_KEYS] = json.dumps(list(swept))
    run = MlflowClient(uri).create_run(exp_id, run_name=mask(run_name)[:250] or "sweep", tags=tags)
    OPEN_RUNS.add(run.info.run_id, uri)  # it beats until close_sweep
    os.environ[PARENT_ENV] = run.info.run_id
    os.environ[PARENT_URI_ENV] = uri
    os.environ[SWEPT_ENV] = json.dumps(list(swept))
    if sweep_dir is not None:
        sweep_dir.mkdir(parents=True, exist_ok=True)
        # The id only: the tracking URI comes from the job's own config (it may hold credentials).
        record = {"parent_run_id": run.info.run_id, "swept_keys": list(swept)}
        (sweep_dir / SWEEP_FILE).write_text(json.dumps(record))
    return run.info.run_id


def sweep_run_name(label: str, swept: Sequence[str], n_jobs: int | None) -> str:
    """The parent's name as the UI lists it: ``secom: sampler × threshold (4 jobs)``."""
    varied = " × ".join(swept) or "sweep"
    jobs = "" if n_jobs is None else f" ({n_jobs} job{'s' * (n_jobs != 1)})"
    return f"{label}: {varied}{jobs}"


def job_run_name(swept: Sequence[str], values: dict[str, str]) -> str | None:
    """A job's name: the values of the swept keys, in sweep order (``smote·lgbm·best_f1``); None when the
    sweep varies nothing. A value that is no word on its own (a number, a dotted key's value) keeps the key's
    last part (``cost_fn=20``): ``20·1`` would not say what differs."""
    parts = []
    for key in swept:
        value = values.get(key, "?")
        bare = "." not in key and value[:1].isalpha()
        parts.append(value if bare else f"{key.rsplit('.', 1)[-1].lstrip('+~')}={value}")
    return "·".join(parts)[:250] or None


def sweep_children(client: MlflowClient, run_id: str) -> list[Run]:
    """Every job run of sweep ``run_id``, oldest first, whatever its status or experiment."""
    return child_runs(client, run_id)


def close_sweep(
    failed: bool, killed: str | None = None, failures: Sequence[str] = ()
) -> tuple[str, str] | None:
    """Terminate the open sweep parent (if any): FAILED if a child, a job or the sweep itself failed.

    ``killed`` (the reason, e.g. a signal) ends it KILLED instead, and its still RUNNING children with it:
    the launcher has already stopped their jobs. ``failures`` are the jobs that failed (``job N
    (overrides): message``), some before their run started: they are recorded on the parent
    (``imblab.error``), beside how many of its job runs finished. Returns ``(tracking URI, parent run
    id)`` of the sweep it closed (for its summary), else None.
    """
    run_id = os.environ.pop(PARENT_ENV, None)
    uri = os.environ.pop(PARENT_URI_ENV, None) or resolve_tracking_uri(None)
    os.environ.pop(SWEPT_ENV, None)
    if not run_id:
        return None
    OPEN_RUNS.remove(run_id)
    client = MlflowClient(uri)
    run = client.get_run(run_id)
    if run.info.status != "RUNNING":
        return None
    jobs = sweep_children(client, run_id)
    client.set_tag(run_id, TAG_N_CHILDREN, str(len(jobs)))
    if failures:
        client.set_tag(run_id, TAG_ERROR, mask("\n".join(failures))[:TAG_LIMIT])
    if killed:
        for job in jobs:
            if job.info.status == "RUNNING":
                mark_killed(client, job.info.run_id, f"its sweep {run_id} was {killed}")
        mark_killed(client, run_id, killed)
        return uri, run_id
    n_jobs = run.data.tags.get(TAG_N_JOBS, "")
    missing = n_jobs.isdigit() and len(jobs) < int(n_jobs)  # a job ended before its run began
    bad = failed or bool(failures) or missing or any(j.info.status in UNFINISHED for j in jobs)
    client.set_tag(run_id, TAG_N_FINISHED, str(sum(j.info.status == "FINISHED" for j in jobs)))
    client.set_terminated(run_id, RunStatus.to_string(RunStatus.FAILED if bad else RunStatus.FINISHED))
    return uri, run_id


def parent_run_id(in_multirun: bool, sweep_dir: Path | None = None) -> str | None:
    """The sweep parent this job belongs to when it runs inside a multirun; None otherwise.

    From ``$IMBLAB_PARENT_RUN_ID`` (jobs on this machine), else from the sweep directory's record.
    """
    if not in_multirun:
        return None
    if os.environ.get(PARENT_ENV):
        return os.environ[PARENT_ENV]
    record = sweep_dir / SWEEP_FILE if sweep_dir is not None else None
    if record is not None and record.is_file():
        return str(json.loads(record.read_text())["parent_run_id"])
    return None


def swept_keys(sweep_dir: Path | None = None) -> list[str]:
    """The keys the current sweep varies (:func:`open_sweep`), from the environment or the sweep directory."""
    if os.environ.get(SWEPT_ENV):
        return list(json.loads(os.environ[SWEPT_ENV]))
    record = sweep_dir / SWEEP_FILE if sweep_dir is not None else None
    if record is not None and record.is_file():
        return list(json.loads(record.read_text()).get("swept_keys", []))
    return []


@dataclass(frozen=True)
class SweepProgress:
    """How far a sweep got: its parent's status, the jobs it launched and how its job runs ended."""

    sweep_id: str
    status: str  # the parent run's: RUNNING while the sweep goes on, then FINISHED, FAILED or KILLED
    n_jobs: int | None  # jobs launched (recorded at start; older sweeps: job runs counted at the end)
    children: tuple[Run, ...]  # the job runs, oldest first

    @property
    def running(self) -> bool:
        return self.status == "RUNNING"

    @property
    def finished(self) -> int:
        return sum(c.info.status == "FINISHED" for c in self.children)

    @property
    def expected(self) -> int:
        """Jobs the sweep should have: the recorded count, or the job runs found if none was."""
        return max(self.n_jobs or 0, len(self.children))

    @property
    def missing(self) -> int:
        """Jobs without a run: not started yet, or killed or failed before their run began."""
        return self.expected - len(self.children)

    @property
    def unfinished(self) -> tuple[Run, ...]:
        """The job runs that did not finish (FAILED, KILLED, or still RUNNING)."""
        return tuple(c for c in self.children if c.info.status != "FINISHED")

    @property
    def complete(self) -> bool:
        return self.status == "FINISHED" and self.missing == 0 and self.finished == len(self.children)

    def describe(self) -> str:
        """E.g. 'parent run KILLED; 3 of 5 jobs finished, 1 FAILED, 1 without a run'."""
        counts = Counter(c.info.status for c in self.children if c.info.status != "FINISHED")
        parts = [f"{self.finished} of {self.expected} jobs finished"]
        parts += [f"{n} {status}" for status, n in sorted(counts.items())]
        if self.missing:
            parts.append(f"{self.missing} without a run")
        return f"parent run {self.status}; {', '.join(parts)}"


def sweep_progress(client: MlflowClient, parent: Run) -> SweepProgress:
    """The progress of the sweep whose parent run is ``parent``."""
    tags = parent.data.tags
    recorded = tags.get(TAG_N_JOBS) or tags.get(TAG_N_CHILDREN)
    return SweepProgress(
        sweep_id=parent.info.run_id,
        status=parent.info.status,
        n_jobs=int(recorded) if recorded and recorded.isdigit() else None,
        children=tuple(sweep_children(client, parent.info.run_id)),
    )
