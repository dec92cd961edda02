"""A Hydra multirun's parent run: opened before the jobs start, closed with the sweep's outcome.

The parent's id reaches the jobs through ``$IMBLAB_PARENT_RUN_ID``, set before the launcher starts,
so it is inherited by joblib worker processes as well as by in-process jobs. The Hydra callback that
calls these functions lives in ``imblab.app.sweep`` (it is the part that sees Hydra's config).
"""

from __future__ import annotations

import os

from mlflow.entities import RunStatus, ViewType
from mlflow.tracking import MlflowClient

from imblab.secrets import mask
from imblab.tracking.layout import ROLE_SWEEP, TAG_COMMAND, TAG_N_CHILDREN, TAG_ROLE
from imblab.tracking.runs import TAG_LIMIT, command_line, git_tags
from imblab.tracking.store import ensure_experiment, use_tracking

PARENT_ENV = "IMBLAB_PARENT_RUN_ID"
PARENT_URI_ENV = "IMBLAB_PARENT_TRACKING_URI"


def open_sweep(tracking_uri: str | None, experiment: str, run_name: str) -> str:
    """Create the parent run of a sweep and publish its id to the jobs; returns the id.

    ``run_name`` (the sweep's overrides) is stored with its passwords masked.
    """
    uri = use_tracking(tracking_uri)
    exp_id = ensure_experiment(experiment, uri)
    run = MlflowClient(uri).create_run(
        exp_id,
        run_name=mask(run_name)[:250] or "sweep",
        tags={TAG_ROLE: ROLE_SWEEP, TAG_COMMAND: command_line()[:TAG_LIMIT], **git_tags()},
    )
    os.environ[PARENT_ENV] = run.info.run_id
    os.environ[PARENT_URI_ENV] = uri
    return run.info.run_id


def close_sweep(failed: bool) -> None:
    """Terminate the open sweep parent (if any): FAILED if a child or the sweep itself failed."""
    run_id = os.environ.pop(PARENT_ENV, None)
    uri = os.environ.pop(PARENT_URI_ENV, None)
    if not run_id:
        return
    client = MlflowClient(uri)
    run = client.get_run(run_id)
    if run.info.status != "RUNNING":
        return
    # Children may live in other experiments when a sweep varies tracking.experiment.
    experiments = [e.experiment_id for e in client.search_experiments(view_type=ViewType.ALL)]
    statuses = [
        c.info.status
        for c in client.search_runs(
            experiments,
            f"tags.mlflow.parentRunId = '{run_id}'",
            run_view_type=ViewType.ALL,
            max_results=50000,
        )
    ]
    bad = failed or any(s in ("FAILED", "KILLED", "RUNNING") for s in statuses)
    client.set_tag(run_id, TAG_N_CHILDREN, str(len(statuses)))
    client.set_terminated(run_id, RunStatus.to_string(RunStatus.FAILED if bad else RunStatus.FINISHED))


def parent_run_id(in_multirun: bool) -> str | None:
    """The sweep parent this job belongs to when it runs inside a multirun; None otherwise."""
    return (os.environ.get(PARENT_ENV) or None) if in_multirun else None
