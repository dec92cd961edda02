"""Trials as MLflow runs: opened (RUNNING) when a trial starts, filled and ended when it finishes.

The run is opened at the start so that a worker that dies mid-trial leaves a trace that can be
ended: the run id is on the trial (``imblab.mlflow_trial_run_id``), where whoever fails the stale
trial finds it (:class:`imblab.tuning.workers.StaleTrials`). A tune-worker nests its trial runs under
the study's training run while that run is RUNNING, so one parent holds every trial of the study
(the worker's own run is named on each, tag ``imblab.worker_run_id``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import optuna
from mlflow.tracking import MlflowClient
from optuna.trial import FrozenTrial, TrialState

from imblab.tracking.trials import TrialLogger, TrialRecord, kill_trial_run
from imblab.tuning.attrs import (
    ATTR_ERROR,
    ATTR_FOLD_SCORES,
    ATTR_N_ESTIMATORS,
    ATTR_RUN_ID,
    ATTR_SURPLUS,
    ATTR_TRIAL_RUN,
)
from imblab.tuning.study import Session
from imblab.tuning.workers import retried_from

log = logging.getLogger(__name__)

ParentOf = Callable[[optuna.Study], str | None]


def trial_record(trial: FrozenTrial) -> TrialRecord:
    """A finished trial as the plain record ``imblab.tracking.trials`` logs."""
    attrs = trial.user_attrs
    complete = trial.state == TrialState.COMPLETE and trial.value is not None
    return TrialRecord(
        number=trial.number,
        state=trial.state.name,
        start=trial.datetime_start,
        end=trial.datetime_complete,
        params=dict(trial.params),
        fold_scores=[float(s) for s in attrs.get(ATTR_FOLD_SCORES, [])],
        value=trial.value if complete else None,
        n_estimators=int(attrs[ATTR_N_ESTIMATORS]) if ATTR_N_ESTIMATORS in attrs else None,
        error=str(attrs[ATTR_ERROR]) if ATTR_ERROR in attrs else None,
        retry_of=retried_from(trial),
    )


class TrialRuns:
    """``start`` (called by the objective as a trial begins) and an ``optimize`` callback (as it ends).

    Thread-safe (trials may run in threads): plain client calls, the open runs behind a lock.
    """

    def __init__(self, logger: TrialLogger, parent_of: ParentOf | None = None) -> None:
        self.logger = logger
        self.parent_of = parent_of
        self.open: dict[int, str] = {}
        self.lock = threading.Lock()

    def start(self, trial: optuna.Trial) -> None:
        try:
            parent = self.parent_of(trial.study) if self.parent_of is not None else None
            run_id = self.logger.start(trial.number, trial.datetime_start, parent)
        except Exception as exc:  # tracking trouble must not cost the trial: its run is made at the end
            log.warning(
                "trial %d: could not open its MLflow run (%s); logging it when it ends", trial.number, exc
            )
            return
        trial.set_user_attr(ATTR_TRIAL_RUN, run_id)
        with self.lock:
            self.open[trial.number] = run_id

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        with self.lock:
            run_id = self.open.pop(trial.number, None)
        if not trial.user_attrs.get(ATTR_SURPLUS):  # a surplus trial ran nothing
            self.logger.log(trial_record(trial), run_id)

    def abandon(self, reason: str) -> None:
        """End the runs of trials that never reached the callback (an interrupt stopped the study)
        KILLED: none is left RUNNING."""
        with self.lock:
            left, self.open = self.open, {}
        for number, run_id in left.items():
            try:
                kill_trial_run(self.logger.client, run_id, f"trial {number}: {reason}")
            except Exception as exc:  # the store is away: the run reaper will find it
                log.warning("trial %d: could not end its MLflow run %s: %s", number, run_id, exc)


def study_run_parent(client: MlflowClient, experiment_id: str) -> ParentOf:
    """For a tune-worker: the study's training run (``imblab.mlflow_run_id``) while it is RUNNING in the
    same experiment, else None (the worker's own run)."""

    def parent_of(study: optuna.Study) -> str | None:
        run_id = study.user_attrs.get(ATTR_RUN_ID)
        if not run_id:
            return None
        try:
            run = client.get_run(str(run_id))
        except Exception:  # another store
            return None
        ok = run.info.status == "RUNNING" and run.info.experiment_id == experiment_id
        return str(run_id) if ok else None

    return parent_of


def trial_logger(
    tracking_uri: str,
    experiment_id: str,
    parent_run_id: str,
    session: Session,
    steps: str = "fold",
    parent_of: ParentOf | None = None,
) -> TrialRuns:
    """Trial runs nested under ``parent_run_id`` (or ``parent_of(study)`` when that names a run)."""
    logger = TrialLogger(
        tracking_uri, experiment_id, parent_run_id, session.study.study_name, session.metric, steps
    )
    return TrialRuns(logger, parent_of)
