"""Tuning in MLflow: one nested run per Optuna trial, and the study's summary on the parent run.

Takes plain records (``TrialRecord``, ``StudyRecord``) built by ``imblab.tuning.run``; the Optuna
study itself is only read here for its trials table and plots.
"""

from __future__ import annotations

import json
import logging
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import mlflow
import numpy as np
import optuna
from matplotlib.figure import Figure
from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

from imblab.secrets import mask, mask_tags
from imblab.tracking.artifacts import log_figures
from imblab.tracking.layout import (
    ROLE_TRIAL,
    TAG_ERROR,
    TAG_RETRY_OF,
    TAG_ROLE,
    TAG_STORAGE,
    TAG_STUDY,
    TAG_STUDY_DIRECTION,
    TAG_STUDY_METRIC,
    TAG_TRIAL_NUMBER,
    TAG_TRIAL_STATE,
    TAG_WORKER_RUN,
    TUNING_DIR,
)
from imblab.tracking.lifecycle import OPEN_RUNS, client_run, location_tags, mark_killed
from imblab.tracking.runs import PARAM_LIMIT, TAG_LIMIT

log = logging.getLogger(__name__)

# Optuna trial state -> MLflow run status of the trial's run. A pruned trial is not an error (KILLED would
# show a red cross in the UI): it ends FINISHED, and the tag optuna.state says PRUNED.
MLFLOW_STATUS = {"COMPLETE": "FINISHED", "PRUNED": "FINISHED", "FAIL": "FAILED"}
RUN_NAME_LIMIT = 40  # what the MLflow UI's run column shows without cutting


def trial_run_name(number: int, state: str, metric: str, value: float | None, steps: int, step: str) -> str:
    """``trial-7 val_objective=1.0412``, ``trial-7 pruned@epoch 3``, ``trial-7 failed``: readable in the UI.

    ``steps``: values reported before the end (a pruned trial stopped after that many ``step`` s).
    """
    prefix = f"trial-{number}"
    if state == "COMPLETE" and value is not None:
        value_text = f"={value:.4f}"
        room = RUN_NAME_LIMIT - len(prefix) - 1 - len(value_text)
        return f"{prefix} {metric[: max(room, 6)]}{value_text}"
    if state == "PRUNED":
        return f"{prefix} pruned@{step} {steps}"
    return f"{prefix} {state.lower()}"


@dataclass(frozen=True)
class TrialRecord:
    """One finished trial, as plain values."""

    number: int
    state: str  # COMPLETE | PRUNED | FAIL
    start: datetime | None
    end: datetime | None
    params: dict[str, Any]
    fold_scores: list[float]  # per step: fold (imblab train) or epoch (imblab panel)
    value: float | None = None  # COMPLETE trials only
    n_estimators: int | None = None  # early-stopped rounds (LightGBM)
    error: str | None = None
    retry_of: int | None = None  # the number of the (dead worker's) trial this one runs again


def _ms(moment: datetime | None) -> int | None:
    return int(moment.timestamp() * 1000) if moment is not None else None


class TrialLogger:
    """One nested MLflow run per finished trial (thread-safe: plain client calls, no fluent state)."""

    def __init__(
        self,
        tracking_uri: str,
        experiment_id: str,
        parent_run_id: str,
        study_name: str,
        metric: str,
        steps: str = "fold",
    ) -> None:
        """``steps``: what a trial's reported values are per; ``"fold"`` (``cv_fold_<metric>``, fold mean
        and SE) or ``"epoch"`` (``epoch_<metric>``, step = epoch, and ``epochs_done``)."""
        self.client = MlflowClient(tracking_uri)
        self.experiment_id = experiment_id
        self.parent = parent_run_id
        self.study_name = study_name
        self.metric = metric
        self.steps = steps

    def _tags(self, number: int, state: str, parent: str | None) -> dict[str, str]:
        tags = {
            MLFLOW_PARENT_RUN_ID: parent or self.parent,
            TAG_ROLE: ROLE_TRIAL,
            TAG_STUDY: self.study_name,
            TAG_TRIAL_NUMBER: str(number),
            TAG_TRIAL_STATE: state,
        }
        if parent not in (None, self.parent):
            tags[TAG_WORKER_RUN] = self.parent
        return tags

    def start(self, number: int, start: datetime | None, parent: str | None = None) -> str:
        """Open trial ``number``'s run (RUNNING, beating) when the trial starts; its run id.

        ``parent``: the run to nest it under when not this logger's own (a tune-worker nests its
        trials under the study's training run); this logger's run is then tagged as the worker's.
        """
        tags = mask_tags({**self._tags(number, "RUNNING", parent), **location_tags()})
        run = self.client.create_run(
            self.experiment_id, start_time=_ms(start), tags=tags, run_name=f"trial-{number} running"
        )
        # It beats while the trial runs, and a signal's last resort ends it KILLED (imblab.app.signals).
        OPEN_RUNS.add(run.info.run_id, self.client.tracking_uri)
        return str(run.info.run_id)

    def log(self, trial: TrialRecord, run_id: str | None = None) -> None:
        """Fill and end the trial's run (``run_id`` from :meth:`start`; None: create it now)."""
        start, end = _ms(trial.start), _ms(trial.end) or int(time.time() * 1000)
        tags = {TAG_TRIAL_STATE: trial.state}
        if trial.error is not None:
            tags[TAG_ERROR] = trial.error[:TAG_LIMIT]
        if trial.retry_of is not None:
            tags[TAG_RETRY_OF] = str(trial.retry_of)
        scores = [float(s) for s in trial.fold_scores]
        name = trial_run_name(trial.number, trial.state, self.metric, trial.value, len(scores), self.steps)
        if run_id is None:
            created = {**self._tags(trial.number, trial.state, None), **location_tags()}
            run = self.client.create_run(
                self.experiment_id, start_time=start, tags=mask_tags(created), run_name=name
            )
            run_id = str(run.info.run_id)
        else:
            self.client.update_run(run_id, name=name)
        with client_run(self.client, run_id):  # never left RUNNING, even by a signal
            self._fill(run_id, trial, scores, end, tags)

    def _fill(
        self, run_id: str, trial: TrialRecord, scores: list[float], end: int, tags: dict[str, str]
    ) -> None:
        """Log the trial's scores, params and final tags on its run and end it with the trial's state."""
        start = _ms(trial.start)
        per_fold = self.steps == "fold"
        series = f"cv_fold_{self.metric}" if per_fold else f"{self.steps}_{self.metric}"
        metrics = [Metric(series, s, end, k) for k, s in enumerate(scores)]
        summary = {
            "duration_seconds": (end - (start or end)) / 1000,
            f"{self.steps}s_done": float(len(scores)),
        }
        if scores and per_fold:
            summary[f"cv_{self.metric}_fold_mean"] = float(np.mean(scores))
        if len(scores) > 1 and per_fold:
            summary[f"cv_{self.metric}_fold_se"] = float(np.std(scores, ddof=1) / math.sqrt(len(scores)))
        if trial.state == "COMPLETE" and trial.value is not None:
            summary["trial_value"] = float(trial.value)
        if trial.n_estimators is not None:
            summary["n_estimators_effective"] = float(trial.n_estimators)
        metrics += [Metric(k, v, end, 0) for k, v in summary.items()]
        params = [Param(k, str(v)[:PARAM_LIMIT]) for k, v in trial.params.items()]
        run_tags = [RunTag(k, v) for k, v in mask_tags(tags).items()]
        self.client.log_batch(run_id, metrics=metrics, params=params, tags=run_tags)
        self.client.set_terminated(run_id, MLFLOW_STATUS.get(trial.state, "FAILED"), end_time=end)


def kill_trial_run(client: MlflowClient, run_id: str, reason: str) -> bool:
    """End a trial run that its worker left RUNNING as KILLED, with ``reason`` (tag
    ``imblab.killed_reason``) and trial state FAIL; False if it had already ended."""
    OPEN_RUNS.remove(run_id)  # when it is this process's own (an interrupted study)
    if client.get_run(run_id).info.status != "RUNNING":
        return False
    client.set_tag(run_id, TAG_TRIAL_STATE, "FAIL")
    mark_killed(client, run_id, mask(reason))
    return True


@dataclass
class StudyRecord:
    """What a run's tuning came to, as plain values."""

    name: str
    storage: str  # password masked
    metric: str
    direction: str
    counts: dict[str, int]  # trials by state name, whole study
    seconds: float
    ran_here: int
    setup: dict[str, Any]
    best_trial: int | None = None
    best_value: float | None = None
    best_params: dict[str, Any] = field(default_factory=dict)


def log_study(study: optuna.Study, record: StudyRecord) -> None:
    """Best parameters, counts, plots and the trial table on the active MLflow run."""
    mlflow.set_tags(
        mask_tags(
            {
                TAG_STUDY: record.name,
                TAG_STORAGE: record.storage,
                TAG_STUDY_DIRECTION: record.direction,
                TAG_STUDY_METRIC: record.metric,
            }
        )
    )
    metrics = {
        "tuning_seconds": record.seconds,
        "tuning_trials_run_here": float(record.ran_here),
        "tuning_n_complete": float(record.counts.get("COMPLETE", 0)),
        "tuning_n_pruned": float(record.counts.get("PRUNED", 0)),
        "tuning_n_fail": float(record.counts.get("FAIL", 0)),
    }
    summary: dict[str, Any] = {
        "study_name": record.name,
        "storage": record.storage,
        "metric": record.metric,
        "direction": record.direction,
        "counts": {state: n for state, n in record.counts.items() if n},
    }
    if record.best_trial is not None and record.best_value is not None:
        metrics["tuning_best_value"] = float(record.best_value)
        metrics["tuning_best_trial"] = float(record.best_trial)
        mlflow.log_params({f"best_params.{k}": str(v) for k, v in record.best_params.items()})
        summary.update(
            best_trial=record.best_trial, best_value=record.best_value, best_params=record.best_params
        )
    mlflow.log_metrics(metrics)
    study_json = json.dumps({**summary, "setup": record.setup}, indent=2, default=str)
    mlflow.log_text(mask(study_json), f"{TUNING_DIR}/study.json")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        frame = study.trials_dataframe(
            attrs=("number", "state", "value", "datetime_start", "duration", "params", "user_attrs")
        )
        # user_attrs carry failed trials' error messages
        mlflow.log_text(mask(frame.to_csv(index=False)), f"{TUNING_DIR}/trials.csv")
        log_figures(study_figures(study, record.metric), TUNING_DIR)


# Parameter importances (fANOVA over the complete trials) from fewer trials than this are rough: a
# random forest fitted to a handful of points; the plot's title says so and how many there were.
MIN_TRIALS_FOR_IMPORTANCE = 20


def importance_title(n_complete: int) -> str:
    """The parameter-importance plot's title: with a caveat when it rests on few complete trials."""
    title = f"Hyperparameter importances ({n_complete} complete trials)"
    if n_complete < MIN_TRIALS_FOR_IMPORTANCE:
        title += f"\nrough: fewer than {MIN_TRIALS_FOR_IMPORTANCE} complete trials, read as a hint only"
    return title


def study_figures(study: optuna.Study, metric: str) -> dict[str, Figure]:
    """Optuna's optimisation-history and parameter-importance plots (those that can be drawn), their axis
    labelled with the study's metric (Optuna's single-objective plots default to 'Objective Value');
    the importances carry a caveat in their title when there are few complete trials."""
    from optuna.visualization import matplotlib as ovm

    plots: dict[str, Callable[[optuna.Study], Any]] = {
        "optimization_history": ovm.plot_optimization_history,
        "param_importances": ovm.plot_param_importances,
    }
    n_complete = len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)))
    figures = {}
    for name, plot in plots.items():
        try:
            ax = plot(study, target_name=metric)
            if name == "param_importances":
                ax.set_title(importance_title(n_complete), loc="left", fontsize=10)  # replaces Optuna's
            figure = ax.figure if hasattr(ax, "figure") else np.ravel(ax)[0].figure
            figure.tight_layout()
        except Exception as exc:  # e.g. importances need two COMPLETE trials with varied parameters
            log.info("skipped the %s plot: %s", name, exc)
            continue
        figures[name] = figure
    return figures
