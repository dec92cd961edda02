"""Runs whose process died: found among the RUNNING runs and ended KILLED, with the reason in a tag.

A run records where it lives (``imblab.tracking.lifecycle``). A RUNNING run is dead when

- it lives on this machine (same host, boot and PID namespace) and its process is gone: no such pid, a
  zombie, or the pid now names a process with another start time (pid reuse);
- it lives elsewhere and its heartbeat is stale: ``STALE_BEATS`` beats missed;
- it has no location (a run of an older imblab) and its parent run is dead or ended.

A sweep parent is closed only once none of its children is still RUNNING, with ``imblab.n_children``
counted. ``reap`` is what every imblab command runs when it opens a store (``imblab.tracking.store``);
it is one search for RUNNING runs, plus writes for the dead ones only.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from mlflow.entities import Run, ViewType
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID, MLFLOW_RUN_NAME

from imblab.process import ProcessId, liveness, this_process
from imblab.tracking.layout import (
    ROLE_SWEEP,
    TAG_HEARTBEAT,
    TAG_HEARTBEAT_SECONDS,
    TAG_HOST,
    TAG_N_CHILDREN,
    TAG_PID,
    TAG_PID_SCOPE,
    TAG_PROCESS_START,
    TAG_ROLE,
)
from imblab.tracking.lifecycle import DEFAULT_HEARTBEAT_SECONDS, mark_killed

log = logging.getLogger(__name__)

STALE_BEATS = 4  # a run on another machine is dead once this many heartbeats are missed
SEARCH_LIMIT = 50000  # MLflow's largest page


@dataclass(frozen=True)
class Reaped:
    """A run the reaper ended KILLED, and why."""

    run_id: str
    name: str
    reason: str


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text else None
    except ValueError:
        return None


def _when(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def has_location(run: Run) -> bool:
    return bool(run.data.tags.get(TAG_HOST)) and run.data.tags.get(TAG_PID, "").isdigit()


def last_seen(run: Run) -> float:
    """Unix seconds of the run's last heartbeat (its start when it never beat)."""
    return _number(run.data.tags.get(TAG_HEARTBEAT)) or run.info.start_time / 1000


def verdict(run: Run, me: ProcessId, now: float) -> str | None:
    """Why the RUNNING ``run`` is dead, judged from where it lives; None while it may be alive (or when it
    does not say where it lives)."""
    if not has_location(run):
        return None
    tags = run.data.tags
    host, pid = tags[TAG_HOST], tags[TAG_PID]
    if host == me.host and tags.get(TAG_PID_SCOPE, "") == me.scope:
        state = liveness(int(pid), tags.get(TAG_PROCESS_START, ""))
        if state == "gone":
            return f"process {pid} on host {host} is gone"
        if state == "reused":
            return f"process {pid} on host {host} is gone (the pid now belongs to another process)"
        return None
    every = _number(tags.get(TAG_HEARTBEAT_SECONDS)) or DEFAULT_HEARTBEAT_SECONDS
    seen = last_seen(run)
    if now - seen > STALE_BEATS * every:
        return (
            f"no heartbeat from process {pid} on host {host} since {_when(seen)} "
            f"({now - seen:.0f} s; it promised one every {every:g} s)"
        )
    return None


def child_runs(client: MlflowClient, run_id: str) -> list[Run]:
    """Every child run of ``run_id``, oldest first, in any experiment (a sweep may vary
    ``tracking.experiment``)."""
    experiments = [e.experiment_id for e in client.search_experiments(view_type=ViewType.ALL)]
    return client.search_runs(
        experiments,
        f"tags.`{MLFLOW_PARENT_RUN_ID}` = '{run_id}'",
        run_view_type=ViewType.ALL,
        max_results=SEARCH_LIMIT,
        order_by=["attributes.start_time ASC"],
    )


def _dead_runs(client: MlflowClient, running: dict[str, Run], now: float) -> dict[str, str]:
    """run id -> reason, for the RUNNING runs that are dead (sweep parents with live children excluded)."""
    me = this_process()
    dead = {run_id: why for run_id, run in running.items() if (why := verdict(run, me, now))}
    ended: dict[str, str] = {}  # status of parents outside ``running``

    def parent_verdict(run: Run) -> str | None:
        parent = run.data.tags.get(MLFLOW_PARENT_RUN_ID)
        if not parent:
            return None
        if parent in dead:
            return f"its parent run {parent} is dead: {dead[parent]}"
        if parent in running:
            return None
        if parent not in ended:
            try:
                ended[parent] = client.get_run(parent).info.status
            except Exception:
                ended[parent] = "DELETED"
        return None if ended[parent] == "RUNNING" else f"its parent run {parent} ended {ended[parent]}"

    # Runs that do not say where they live follow their parent (to any depth).
    changed = True
    while changed:
        changed = False
        for run_id, run in running.items():
            if run_id not in dead and not has_location(run) and (why := parent_verdict(run)):
                dead[run_id], changed = why, True
    # A dead sweep parent waits for its last live child.
    for run_id in [r for r in dead if running[r].data.tags.get(TAG_ROLE) == ROLE_SWEEP]:
        if any(
            run.data.tags.get(MLFLOW_PARENT_RUN_ID) == run_id and child_id not in dead
            for child_id, run in running.items()
        ):
            del dead[run_id]
    return dead


def reap(
    client: MlflowClient, experiment_ids: list[str] | None = None, now: float | None = None
) -> list[Reaped]:
    """End KILLED every RUNNING run (of ``experiment_ids``; default all) whose process is dead.

    Each gets tag ``imblab.killed_reason`` and ends at its last heartbeat; a sweep parent also gets
    ``imblab.n_children``. Returns what was reaped. Safe to run from several processes at once.
    """
    now = time.time() if now is None else now
    if experiment_ids is None:
        experiment_ids = [e.experiment_id for e in client.search_experiments(view_type=ViewType.ALL)]
    if not experiment_ids:
        return []
    found = client.search_runs(
        experiment_ids, "attributes.status = 'RUNNING'", run_view_type=ViewType.ALL, max_results=SEARCH_LIMIT
    )
    running = {run.info.run_id: run for run in found}
    dead = _dead_runs(client, running, now)
    # Children first, so that a sweep parent counts them ended.
    order = sorted(dead, key=lambda r: running[r].data.tags.get(TAG_ROLE) == ROLE_SWEEP)
    reaped = []
    for run_id in order:
        run, reason = running[run_id], dead[run_id]
        if run.data.tags.get(TAG_ROLE) == ROLE_SWEEP:
            client.set_tag(run_id, TAG_N_CHILDREN, str(len(child_runs(client, run_id))))
        # It died after its last beat: end it there (never before its start), or now if it never beat.
        end = max(int(last_seen(run) * 1000), run.info.start_time) if has_location(run) else None
        mark_killed(client, run_id, reason, end_time=end)
        reaped.append(Reaped(run_id, run.data.tags.get(MLFLOW_RUN_NAME, ""), reason))
        log.debug("reaped run %s: %s", run_id, reason)
    return reaped
