"""A Hydra multirun's parent run: opened before the jobs start, closed with the sweep's outcome.

The parent's id reaches the jobs through ``$IMBLAB_PARENT_RUN_ID``, set before the launcher starts,
so it is inherited by joblib worker processes as well as by in-process jobs. The Hydra callback that
calls these functions lives in ``imblab.app.sweep`` (it is the part that sees Hydra's config).
"""

from __future__ import annotations

import os

from mlflow.entities import RunStatus
from mlflow.tracking import MlflowClient

from imblab.tracking.layout import ROLE_SWEEP, TAG_COMMAND, TAG_N_CHILDREN, TAG_ROLE
from imblab.tracking.lifecycle import OPEN_RUNS, location_tags, mark_killed
from imblab.tracking.reaper import children
from imblab.tracking.runs import TAG_LIMIT, command_line, git_tags
from imblab.tracking.store import ensure_experiment, use_tracking

PARENT_ENV = "IMBLAB_PARENT_RUN_ID"
PARENT_URI_ENV = "IMBLAB_PARENT_TRACKING_URI"


def open_sweep(tracking_uri: str | None, experiment: str, run_name: str) -> str:
    """Create the parent run of a sweep and publish its id to the jobs; returns the id."""
    uri = use_tracking(tracking_uri)
    exp_id = ensure_experiment(experiment, uri)
    run = MlflowClient(uri).create_run(
        exp_id,
        run_name=run_name[:250] or "sweep",
        tags={TAG_ROLE: ROLE_SWEEP, TAG_COMMAND: command_line()[:TAG_LIMIT], **git_tags(), **location_tags()},
    )
    OPEN_RUNS.add(run.info.run_id, uri)  # it beats until close_sweep
    os.environ[PARENT_ENV] = run.info.run_id
    os.environ[PARENT_URI_ENV] = uri
    return run.info.run_id


def close_sweep(failed: bool, killed: str | None = None) -> None:
    """Terminate the open sweep parent (if any): FAILED if a child or the sweep itself failed.

    ``killed`` (the reason, e.g. a signal) ends it KILLED instead, and its still RUNNING children with it:
    the launcher has already stopped their jobs.
    """
    run_id = os.environ.pop(PARENT_ENV, None)
    uri = os.environ.pop(PARENT_URI_ENV, None)
    if not run_id:
        return
    OPEN_RUNS.remove(run_id)
    client = MlflowClient(uri)
    run = client.get_run(run_id)
    if run.info.status != "RUNNING":
        return
    jobs = children(client, run_id)
    if killed:
        for job in jobs:
            if job.info.status == "RUNNING":
                mark_killed(client, job.info.run_id, f"its sweep {run_id} was {killed}")
        client.set_tag(run_id, TAG_N_CHILDREN, str(len(jobs)))
        mark_killed(client, run_id, killed)
        return
    bad = failed or any(j.info.status in ("FAILED", "KILLED", "RUNNING") for j in jobs)
    client.set_tag(run_id, TAG_N_CHILDREN, str(len(jobs)))
    client.set_terminated(run_id, RunStatus.to_string(RunStatus.FAILED if bad else RunStatus.FINISHED))


def parent_run_id(in_multirun: bool) -> str | None:
    """The sweep parent this job belongs to when it runs inside a multirun; None otherwise."""
    return (os.environ.get(PARENT_ENV) or None) if in_multirun else None
