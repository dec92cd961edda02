"""Which process runs a trial, and what happens to the RUNNING trials of a process that died."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import warnings

import optuna
from optuna.trial import TrialState

from imblab.process import liveness
from imblab.tuning.attrs import ATTR_WORKER

log = logging.getLogger(__name__)


def worker_id() -> str:
    """``host:pid`` of this process, recorded on every trial it runs (``imblab.worker``)."""
    return f"{socket.gethostname()}:{os.getpid()}"


def process_gone(worker: str) -> bool:
    """Whether ``worker`` (``host:pid``) is a process of this machine that no longer exists."""
    host, _, pid = worker.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    return liveness(int(pid)) != "alive"


def reap_dead_trials(study: optuna.Study) -> int:
    """Mark RUNNING trials of dead workers FAIL: Optuna's heartbeat (SQL storages) and local process ids."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    reaped = 0
    me = worker_id()
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker = trial.user_attrs.get(ATTR_WORKER)
        if worker and worker != me and process_gone(worker):
            with contextlib.suppress(Exception):  # another process may have reaped it first
                study.tell(trial.number, state=TrialState.FAIL, skip_if_finished=True)
                reaped += 1
    if reaped:
        log.info("marked %d RUNNING trial(s) of dead workers as FAIL", reaped)
    return reaped
