"""``imblab panel tuning=optuna``: an Optuna study over the model's ``search_space`` inside the run.

Reuses the binary workload's tuning machinery (``imblab.tuning``: storage, study setup/signature and
resume, ``Controller`` budget, best parameters, ``TrialLogger`` nested runs, ``log_study``); only the
objective is panel-specific. A trial builds the model with its parameters, fits it on the TRAINING
persons and early-stops on the VALIDATION persons; after every epoch it reports that epoch's
``val_objective`` to the pruner (step = epoch) and is pruned from inside ``on_epoch``. The trial's value
is :func:`val_objective` of the model the trial keeps (best epoch restored) on the validation persons:
standardised wage MSE + plain cross-entropy, unweighted, so trials with different ``class_loss_weight``
compare on one scale (the weighted training loss would not). The run then refits the best parameters
(the seeded fit reproduces the best trial's model) and continues as an untuned run; test persons are
never seen by the study.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import mlflow
import numpy as np
import optuna
import pandas as pd

from imblab.config.panel import PANEL_TUNING_METRIC
from imblab.config.specs import TuningSpec
from imblab.errors import ImblabError
from imblab.panel.dataset import Panel, PanelPrediction
from imblab.panel.examples import Examples
from imblab.tracking.trials import log_study
from imblab.tuning.attrs import ATTR_ERROR, ATTR_FOLD_SCORES, ATTR_RUN_ID, ATTR_WORKER, error_attr
from imblab.tuning.progress import Controller
from imblab.tuning.run import best_params, study_record, wait_for_running
from imblab.tuning.settings import check_budget
from imblab.tuning.space import ParamSpec, parse_search_space
from imblab.tuning.study import (
    Session,
    finished,
    open_spec_storage,
    open_study,
    quiet_optuna,
    signature,
    trial_counts,
)
from imblab.tuning.trial_runs import TrialRuns, trial_logger
from imblab.tuning.workers import reap_dead_trials, worker_id

log = logging.getLogger(__name__)
DIRECTION = "minimize"


def val_objective(examples: Examples, pred: PanelPrediction, wage_mean: float, wage_std: float) -> float:
    """Standardised wage MSE + plain (unweighted) cross-entropy: what a panel study minimises.

    Depends on the predictions only, never on ``class_loss_weight`` or the class balance; the same
    quantity as the per-epoch ``val_objective`` of :class:`imblab.panel.recurrent.RecurrentModel`.
    """
    y = (np.asarray(examples.y_reg, dtype=np.float64) - wage_mean) / wage_std
    mse = float(np.mean(((pred.wage - wage_mean) / wage_std - y) ** 2))
    logits = pred.logits - pred.logits.max(axis=1, keepdims=True)
    log_prob = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    codes = np.asarray(examples.y_cls, dtype=np.int64)
    return mse - float(np.mean(log_prob[np.arange(len(codes)), codes]))


def model_value(model: Any, val: Examples) -> float:
    """:func:`val_objective` of a fitted recurrent model on the validation persons."""
    return val_objective(val, model.predict(val), float(model.wage_mean_), float(model.wage_std_))


def with_params(model: Any, params: dict[str, Any]) -> Any:
    """A new unfitted model: ``model``'s parameters with ``params`` on top."""
    return type(model)(**{**model.get_params(), **params})


def study_setup(config: dict[str, Any], panel: Panel, model_name: str) -> dict[str, Any]:
    """What a trial's value depends on (plain config sections + the panel's content): resume guard."""
    frame_hash = int(pd.util.hash_pandas_object(panel.frame, index=False).sum())
    model = {k: v for k, v in (config.get("model") or {}).items() if k != "search_space"}
    return {
        "workload": "panel",
        "data": {"config": config.get("data"), "rows": len(panel.frame), "hash": frame_hash},
        "split": config.get("split"),
        "max_len": config.get("max_len"),
        "class_balance": config.get("class_balance"),
        "model": {"name": model_name, "params": model},
        "search_space": (config.get("model") or {}).get("search_space"),
        "metric": PANEL_TUNING_METRIC,
        "direction": DIRECTION,
    }


def open_panel_session(
    spec: TuningSpec, search_space: Any, model: Any, model_name: str, setup: dict[str, Any]
) -> Session:
    """Check the settings and space, open (or resume) the study; every bad input fails here."""
    check_budget(spec)
    specs = parse_search_space(search_space, model, model_name)
    storage, on_stale = open_spec_storage(spec)
    sig = signature(setup)
    name = spec.study_name or f"imblab-panel-{model_name}-{PANEL_TUNING_METRIC}-{sig[:8]}"
    study = open_study(storage, str(name), DIRECTION, setup, spec, worker=False)
    if storage is not None:
        reap_dead_trials(study, on_stale)
    return Session(study, spec.storage or None, PANEL_TUNING_METRIC, DIRECTION, specs, setup, on_stale)


class PanelObjective:
    """One trial: fit on training persons, report ``val_objective`` per epoch, prune from ``on_epoch``."""

    def __init__(
        self,
        model: Any,
        specs: list[ParamSpec],
        train: Examples,
        val: Examples,
        runs: TrialRuns | None = None,
    ) -> None:
        self.model, self.specs, self.train, self.val = model, specs, train, val
        self.worker = worker_id()
        self.runs = runs

    def __call__(self, trial: optuna.Trial) -> float:
        trial.set_user_attr(ATTR_WORKER, self.worker)
        if self.runs is not None:
            self.runs.start(trial)  # the trial's MLflow run is RUNNING while it trains
        params = {spec.name: spec.suggest(trial) for spec in self.specs}
        model = with_params(self.model, params)
        values: list[float] = []

        def on_epoch(epoch: int, logs: dict[str, float]) -> None:
            values.append(float(logs[PANEL_TUNING_METRIC]))
            trial.set_user_attr(ATTR_FOLD_SCORES, values)
            trial.report(values[-1], epoch)
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned after epoch {epoch + 1}")

        try:
            model.fit(self.train, self.val, on_epoch=on_epoch)
            value = model_value(model, self.val)
        except optuna.TrialPruned:
            raise
        except Exception as exc:
            trial.set_user_attr(ATTR_ERROR, error_attr(exc))
            raise
        if not np.isfinite(value):
            raise ImblabError(f"{PANEL_TUNING_METRIC} is not finite ({value})")
        return value


def _optimize(study: optuna.Study, objective: PanelObjective, spec: TuningSpec, callbacks: list[Any]) -> None:
    controller = callbacks[-1]
    try:
        with quiet_optuna():
            study.optimize(
                objective,
                n_trials=None,  # the Controller stops the study at n_trials COMPLETE + PRUNED (study-wide)
                timeout=spec.timeout,
                n_jobs=1,  # torch uses the cores (torch.threads); trials run one after another
                catch=(Exception,),
                callbacks=callbacks,
            )
    finally:
        controller.close()


def tune_panel(
    spec: TuningSpec,
    search_space: Any,
    model: Any,
    model_name: str,
    setup: dict[str, Any],
    train: Examples,
    val: Examples,
) -> dict[str, Any]:
    """Run the study to ``spec.n_trials`` COMPLETE + PRUNED trials; returns the best parameters.

    Inside an active MLflow run, trials become its nested runs and the study's summary (``best_params.*``,
    ``tuning_best_value``, counts, plots) is logged on it.
    """
    session = open_panel_session(spec, search_space, model, model_name, setup)
    study, n_trials = session.study, int(spec.n_trials)
    parent = mlflow.active_run()
    callbacks: list[Any] = []
    runs = None
    if parent is not None:
        study.set_user_attr(ATTR_RUN_ID, parent.info.run_id)
        uri, experiment_id, run_id = mlflow.get_tracking_uri(), parent.info.experiment_id, parent.info.run_id
        runs = trial_logger(uri, experiment_id, run_id, session, steps="epoch")
        callbacks.append(runs)
        if session.on_stale is not None:
            session.on_stale.tracking_uri = uri
    controller = Controller(n_trials, session.metric, study, spec.progress_bar)
    start = time.perf_counter()
    if finished(trial_counts(study)) >= n_trials:
        log.info("study %s already holds %d finished trials: nothing to run", study.study_name, n_trials)
        controller.close()
    else:
        objective = PanelObjective(model, session.specs, train, val, runs)
        try:
            _optimize(study, objective, spec, [*callbacks, controller])
        finally:
            if runs is not None:
                runs.abandon("the study was interrupted before the trial ended")
    if controller.too_many_failures:
        assert controller.failed is not None
        error = controller.failed.user_attrs.get(ATTR_ERROR, "see the log")
        raise ImblabError(
            f"{controller.failures} trials in a row failed (last: {error}); check the search space"
        )
    if session.storage_url:
        wait_for_running(study, float(spec.wait_for_workers), session.on_stale)
    seconds = time.perf_counter() - start
    best, params = best_params(study)
    log.info(
        "panel tuning: best %s=%.4f (trial %d): %s", PANEL_TUNING_METRIC, best.value, best.number, params
    )
    if parent is not None:
        with quiet_optuna():
            log_study(study, study_record(session, seconds, controller.ran))
    return params
