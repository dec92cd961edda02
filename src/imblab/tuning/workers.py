"""Which process runs a trial, and what happens to the RUNNING trials of a process that died.

A worker that dies (SIGKILL, a lost machine) leaves its trial RUNNING in the study and the trial's
MLflow run RUNNING. Two things find such a trial: Optuna's heartbeat on SQL storages (a trial that has
not beaten for ``tuning.grace_period`` seconds is failed by the next worker that asks for a trial,
on any machine), and, on this machine and for any storage, a worker whose process is gone. Either way
:class:`StaleTrials` ends the trial's MLflow run KILLED with the reason, then queues the trial again
with Optuna's own retry callback (up to ``tuning.retries`` times).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import warnings

import optuna
from mlflow.tracking import MlflowClient
from optuna.trial import FrozenTrial, TrialState

from imblab.process import liveness
from imblab.tracking.trials import kill_trial_run
from imblab.tuning.attrs import ATTR_TRIAL_RUN, ATTR_WORKER

log = logging.getLogger(__name__)

# Optuna 4.9 renamed RetryFailedTrialCallback (deprecated, removed in 6) to this.
RetryCallback = getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", None) or (
    optuna.storages.RetryFailedTrialCallback
)


def worker_id() -> str:
    """``host:pid`` of this process, recorded on every trial it runs (``imblab.worker``)."""
    return f"{socket.gethostname()}:{os.getpid()}"


def process_gone(worker: str) -> bool:
    """Whether ``worker`` (``host:pid``) is a process of this machine that no longer exists."""
    host, _, pid = worker.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    return liveness(int(pid)) != "alive"


def retried_from(trial: FrozenTrial) -> int | None:
    """The number of the trial that ``trial`` runs again (Optuna's record), or None."""
    with warnings.catch_warnings():  # "experimental" in Optuna
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return RetryCallback.retried_trial_number(trial)


class StaleTrials:
    """Called with each trial failed because its worker died: end its MLflow run, then retry it.

    ``tracking_uri`` is set once this process knows its MLflow store; the run is found through the
    trial's ``imblab.mlflow_trial_run_id``. Without a store, the run is left to the run reaper.
    """

    def __init__(self, retries: int) -> None:
        self.tracking_uri: str | None = None
        self.retries = retries
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # experimental / deprecated, depending on Optuna's version
            self.retry = RetryCallback(max_retry=retries) if retries > 0 else None

    def __call__(self, study: optuna.Study, trial: FrozenTrial, reason: str | None = None) -> None:
        worker = trial.user_attrs.get(ATTR_WORKER, "?")
        why = reason or f"the trial's worker {worker} stopped beating (Optuna heartbeat)"
        run_id = trial.user_attrs.get(ATTR_TRIAL_RUN)
        if run_id and self.tracking_uri:
            try:
                if kill_trial_run(
                    MlflowClient(self.tracking_uri), str(run_id), f"trial {trial.number}: {why}"
                ):
                    log.info("trial %d: its MLflow run %s ended KILLED (%s)", trial.number, run_id, why)
            except Exception as exc:  # the run lives in another store, or the server is away
                log.warning("trial %d: could not end its MLflow run %s: %s", trial.number, run_id, exc)
        elif run_id:
            log.warning(
                "trial %d: its MLflow run %s is left to the run reaper (no store here)", trial.number, run_id
            )
        if self.retry is not None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                self.retry(study, trial)
                retried = len(RetryCallback.retry_history(trial)) < self.retries
            log.warning(
                "trial %d failed: %s; %s", trial.number, why, "queued again" if retried else "not retried"
            )


def reap_dead_trials(study: optuna.Study, on_stale: StaleTrials | None = None) -> int:
    """Mark RUNNING trials of dead workers FAIL: Optuna's heartbeat (SQL storages, which calls the
    storage's stale-trial callback itself) and local process ids (``on_stale`` called here)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    reaped = 0
    me = worker_id()
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker = trial.user_attrs.get(ATTR_WORKER)
        if worker and worker != me and process_gone(worker):
            try:  # another process may reap it first: only the one whose tell succeeds goes on
                study.tell(trial.number, state=TrialState.FAIL)
            except Exception:
                continue
            reaped += 1
            if on_stale is not None:
                with contextlib.suppress(Exception):
                    failed = next(
                        t for t in study.get_trials(states=(TrialState.FAIL,)) if t.number == trial.number
                    )
                    on_stale(study, failed, f"the trial's worker process {worker} is gone")
    if reaped:
        log.info("marked %d RUNNING trial(s) of dead workers as FAIL", reaped)
    return reaped
