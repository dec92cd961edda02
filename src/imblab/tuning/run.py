"""Running a study: trials until the budget is reached, the best parameters, and the two entry points.

``tune`` runs inside ``imblab train``'s MLflow run (``imblab.experiment.run_experiment``);
``run_worker`` is ``imblab tune-worker``: it joins a shared study under an MLflow run of its own.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from typing import Any

import mlflow
import numpy as np
import optuna
from mlflow.tracking import MlflowClient
from optuna.trial import FrozenTrial, TrialState

from imblab.config.specs import Experiment
from imblab.data.dataset import Dataset
from imblab.errors import ImblabError
from imblab.pipeline import model_of
from imblab.protocol.split import Split, holdout_split
from imblab.tracking.layout import ROLE_WORKER, TAG_COMMAND, TAG_ROLE, TAG_STORAGE, TAG_STUDY, TAG_STUDY_RUN
from imblab.tracking.runs import TAG_LIMIT, command_line, tracked_run
from imblab.tracking.store import ensure_experiment, use_tracking
from imblab.tracking.trials import StudyRecord, log_study
from imblab.tuning.attrs import ATTR_ERROR, ATTR_N_ESTIMATORS, ATTR_RUN_ID
from imblab.tuning.folds import prepare_folds
from imblab.tuning.objective import FoldScorer, Objective, reports_fold_values
from imblab.tuning.progress import Controller
from imblab.tuning.settings import check
from imblab.tuning.study import (
    Session,
    best_trial,
    check_worker_storage,
    finished,
    open_session,
    quiet_optuna,
    trial_counts,
)
from imblab.tuning.trainers import LightGBMTrainer, SklearnTrainer
from imblab.tuning.trial_runs import TrialRuns, study_run_parent, trial_logger
from imblab.tuning.workers import StaleTrials, reap_dead_trials

log = logging.getLogger(__name__)

TrialCallback = Callable[[optuna.Study, FrozenTrial], None]
MAX_ROUNDS = 10  # optimize() rounds for trials queued again (each round needs a newly dead worker)


# --------------------------------------------------------------------------------------------------
# Trials
# --------------------------------------------------------------------------------------------------


def run_trials(
    session: Session,
    dataset: Dataset,
    split: Split,
    experiment: Experiment,
    trial_callback: TrialCallback | None = None,
    wait: float | None = None,
) -> int:
    """Run trials until the study holds ``tuning.n_trials`` COMPLETE + PRUNED ones; returns the number run.

    ``wait``: seconds to wait for other workers' running trials at the end (the training run does,
    before it refits). Trials of dead workers queued again meanwhile are run here too.
    """
    spec = experiment.tuning
    study, n_trials = session.study, int(spec.n_trials)
    if finished(trial_counts(study)) >= n_trials:
        log.info("study %s already holds %d finished trials: nothing to run", study.study_name, n_trials)
        return 0
    model = model_of(experiment.pipeline)
    use_lgbm = LightGBMTrainer.applies(model, session.specs)
    early_stopping = bool(use_lgbm and spec.early_stopping.enabled)
    start = time.perf_counter()
    folds = prepare_folds(dataset, split, experiment, early_stopping)
    trainer: SklearnTrainer | LightGBMTrainer = (
        LightGBMTrainer(model, folds, spec.early_stopping if early_stopping else None)
        if use_lgbm
        else SklearnTrainer(model, folds)
    )
    log.info(
        "tuning: %d folds preprocessed and resampled in %.1fs; %s%s",
        len(folds),
        time.perf_counter() - start,
        type(trainer).__name__,
        ", early stopping on validation halves" if early_stopping else "",
    )
    scorer = FoldScorer(session.metric, experiment.policy, experiment.costs)
    on_start = trial_callback.start if isinstance(trial_callback, TrialRuns) else None
    objective = Objective(
        session.specs, trainer, folds, scorer, n_trials, reports_fold_values(study.pruner), on_start
    )
    controller = Controller(n_trials, session.metric, study, spec.progress_bar)
    n_jobs = (os.cpu_count() or 1) if spec.n_jobs == -1 else int(spec.n_jobs)
    callbacks = [cb for cb in (trial_callback, controller) if cb is not None]
    try:
        for _ in range(MAX_ROUNDS):
            with quiet_optuna():
                study.optimize(
                    objective, n_trials=None, timeout=spec.timeout, n_jobs=n_jobs, catch=(Exception,),
                    callbacks=callbacks,
                )  # fmt: skip
            if controller.too_many_failures:
                break
            if wait is not None:
                wait_for_running(study, wait, session.on_stale)
            counts = trial_counts(study)
            if spec.timeout is not None:  # the time is up: queued retries are left to other workers
                break
            if not counts[TrialState.WAITING] or finished(counts) >= n_trials:
                break
            log.info(
                "tuning: %d trial(s) of dead workers queued again: running them", counts[TrialState.WAITING]
            )
    finally:
        controller.close()
        if isinstance(trial_callback, TrialRuns):
            trial_callback.abandon("the study was interrupted before the trial ended")
    if controller.too_many_failures:
        assert controller.failed is not None
        error = controller.failed.user_attrs.get(ATTR_ERROR, "see the log")
        raise ImblabError(
            f"{controller.failures} trials in a row failed (last: #{controller.failed.number}, {error}); "
            "fix the model or search-space configuration"
        )
    return controller.ran


def wait_for_running(
    study: optuna.Study, limit: float, on_stale: StaleTrials | None = None, poll: float = 1.0
) -> None:
    """Let other workers' RUNNING trials finish (up to ``limit`` seconds) before the best is taken;
    trials of workers that died meanwhile are failed (and queued again) by ``on_stale``."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        reap_dead_trials(study, on_stale)
        running = trial_counts(study)[TrialState.RUNNING]
        if not running:
            return
        log.info("waiting for %d running trial(s) of other workers", running)
        time.sleep(poll)


def best_params(study: optuna.Study) -> tuple[FrozenTrial, dict[str, Any]]:
    """The best COMPLETE trial and the model parameters to refit (early-stopped rounds included)."""
    best = best_trial(study)
    if best is None:
        failed = [t for t in study.trials if t.state == TrialState.FAIL and ATTR_ERROR in t.user_attrs]
        why = f"; last error: {failed[-1].user_attrs[ATTR_ERROR]}" if failed else ""
        raise ImblabError(
            f"no trial of study {study.study_name!r} completed ({len(study.trials)} trials){why}; raise "
            "tuning.n_trials or tuning.timeout, or check the search space"
        )
    params = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in best.params.items()}
    if ATTR_N_ESTIMATORS in best.user_attrs:
        params["n_estimators"] = int(best.user_attrs[ATTR_N_ESTIMATORS])
    return best, params


def study_record(session: Session, seconds: float, ran_here: int) -> StudyRecord:
    """The study's summary as the plain record ``imblab.tracking.trials.log_study`` logs."""
    study = session.study
    record = StudyRecord(
        name=study.study_name,
        storage=session.storage_label,
        metric=session.metric,
        direction=session.direction,
        counts={state.name: n for state, n in trial_counts(study).items()},
        seconds=seconds,
        ran_here=ran_here,
        setup=session.setup,
    )
    best = best_trial(study)
    if best is not None:
        _, record.best_params = best_params(study)
        record.best_trial, record.best_value = best.number, best.value
    return record


# --------------------------------------------------------------------------------------------------
# Entry points
# --------------------------------------------------------------------------------------------------


def tune(experiment: Experiment, dataset: Dataset, split: Split) -> dict[str, Any]:
    """Tune the model on the training rows of ``split``; returns the best model parameters.

    Called by ``imblab.experiment.run_experiment`` inside its active MLflow run (trials become its
    children); without an active run the trials are simply not logged.
    """
    parent = mlflow.active_run()
    uri = mlflow.get_tracking_uri() if parent is not None else None
    session = open_session(experiment, dataset, tracking_uri=uri)
    study = session.study
    callback = None
    if parent is not None and uri is not None:
        study.set_user_attr(ATTR_RUN_ID, parent.info.run_id)
        callback = trial_logger(uri, parent.info.experiment_id, parent.info.run_id, session)
    start = time.perf_counter()
    wait = float(experiment.tuning.wait_for_workers) if session.storage_url else None
    ran = run_trials(session, dataset, split, experiment, callback, wait)
    seconds = time.perf_counter() - start
    best, params = best_params(study)
    log.info(
        "tuning: best %s=%.4f (trial %d of %d) after %.0fs: %s",
        session.metric,
        best.value,
        best.number,
        len(study.trials),
        seconds,
        params,
    )
    if parent is not None:
        with quiet_optuna():
            log_study(study, study_record(session, seconds, ran))
    return params


def run_worker(experiment: Experiment) -> int:
    """Join the study named by ``tuning.*`` and run its remaining trials under a ``tune-worker`` run."""
    spec = experiment.tuning
    if not spec.enabled:
        raise ImblabError("tune-worker needs tuning=optuna (the default for tune-worker); drop tuning=none")
    check(spec)  # settings and the shared storage first: no data is read for a bad command
    check_worker_storage(spec)
    dataset = experiment.load_data()
    split = holdout_split(dataset, experiment.split)
    uri = use_tracking(experiment.tracking.uri, write=True)
    experiment_id = ensure_experiment(experiment.tracking.experiment, uri)
    session = open_session(experiment, dataset, worker=True, tracking_uri=uri)
    study = session.study
    tags = {
        TAG_ROLE: ROLE_WORKER,
        TAG_STUDY: study.study_name,
        TAG_STORAGE: session.storage_label,
        "sampler": experiment.sampler_name,
        "model": experiment.model_name,
        TAG_COMMAND: command_line()[:TAG_LIMIT],
    }
    if study.user_attrs.get(ATTR_RUN_ID):
        tags[TAG_STUDY_RUN] = str(study.user_attrs[ATTR_RUN_ID])
    with tracked_run(experiment_id, f"tune-worker {study.study_name}", tags) as run:
        # Trials nest under the study's training run while it runs: one parent holds the whole study.
        parent_of = study_run_parent(MlflowClient(uri), experiment_id)
        callback = trial_logger(uri, experiment_id, run.info.run_id, session, parent_of=parent_of)
        start = time.perf_counter()
        ran = run_trials(session, dataset, split, experiment, callback)
        with quiet_optuna():
            log_study(study, study_record(session, time.perf_counter() - start, ran))
    log.info("tune-worker: ran %d trial(s) of study %s", ran, study.study_name)
    return ran
