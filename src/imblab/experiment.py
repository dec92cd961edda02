"""One experiment run: data -> split -> (tuning) -> fit/out-of-fold -> policy -> metrics -> MLflow.

``run_experiment(experiment)`` is what ``imblab train`` calls for every Hydra job. The threshold is
chosen on out-of-fold training scores only; test labels are used once, for reporting.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import mlflow
import numpy as np
import pandas as pd

import imblab
from imblab.config.specs import Experiment
from imblab.console.progress import RunProgress, duration
from imblab.data.dataset import Dataset
from imblab.frozen import FrozenModel
from imblab.metrics.core import threshold_metrics
from imblab.pipeline import predict_pipeline, with_model_params
from imblab.protocol.cache import FitCache, fit_key
from imblab.protocol.cv import FitResult, fit_and_score, fold_metrics
from imblab.protocol.split import Split, holdout_split
from imblab.report.figures import confusion_matrix_figure, pr_roc_figure, threshold_curves_figure
from imblab.thresholds import ThresholdChoice
from imblab.tracking.artifacts import log_run_artifacts, threshold_record
from imblab.tracking.layout import (
    ROLE_RUN,
    TAG_CACHE_HIT,
    TAG_COMMAND,
    TAG_DATA_FINGERPRINT,
    TAG_FIT_KEY,
    TAG_ROLE,
    TAG_SWEEP,
    TAG_VERSION,
)
from imblab.tracking.models import log_frozen_model
from imblab.tracking.runs import TAG_LIMIT, command_line, flatten, tracked_run
from imblab.tracking.store import ensure_experiment, use_tracking

log = logging.getLogger(__name__)

# Config sections that determine a fit (and so its cache key); the policy, costs and tracking do not.
FIT_INPUTS = ("split", "preprocess", "sampler", "model", "cv", "seed")


@dataclass
class RunOutcome:
    run_id: str
    experiment_id: str
    choice: ThresholdChoice
    cv_metrics: dict[str, float]
    test_metrics: dict[str, float]
    cache_hit: bool
    model_uri: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _tune(experiment: Experiment, dataset: Dataset, split: Split) -> dict[str, Any]:
    """Tuned model parameters when tuning is on (Optuna, inside this run), else none."""
    if not experiment.tuning.enabled:
        return {}
    from imblab.tuning.run import tune  # imported lazily: plain runs do not need Optuna

    return tune(experiment, dataset, split)


def _fit_inputs(experiment: Experiment) -> dict[str, Any]:
    inputs = experiment.section(*FIT_INPUTS)
    model = inputs.get("model")
    # The search space does not change a fit; only the estimator (and tuned params) do.
    inputs["model"] = model.get("estimator") if isinstance(model, dict) else model
    return inputs


def run_experiment(
    experiment: Experiment, parent_run_id: str | None = None, live: bool | None = None
) -> RunOutcome:
    """Run one configured experiment and log it to MLflow; the run ends FINISHED or FAILED.

    ``live``: the progress display on stderr (:class:`imblab.console.progress.RunProgress`): None draws
    it when stderr is a terminal, False never (a parallel sweep's jobs).
    """
    uri = use_tracking(experiment.tracking.uri)
    experiment_id = ensure_experiment(experiment.tracking.experiment, uri)
    policy = experiment.policy
    tags = {
        "sampler": experiment.sampler_name,
        "model": experiment.model_name,
        "threshold_policy": policy.name,
        "tuning": "optuna" if experiment.tuning.enabled else "none",
        TAG_VERSION: imblab.__version__,
        TAG_COMMAND: command_line()[:TAG_LIMIT],
        TAG_ROLE: ROLE_RUN,
    }
    if parent_run_id:
        tags[TAG_SWEEP] = parent_run_id
    title = f"imblab train: {experiment.sampler_name} · {experiment.model_name} · {policy.name}"
    with (
        tracked_run(experiment_id, experiment.run_name, tags, parent_run_id=parent_run_id) as run,
        RunProgress(title, live) as progress,
    ):
        with progress.stage("data") as stage:
            mlflow.log_params(flatten(experiment.config))
            dataset = experiment.load_data()
            fingerprint = dataset.fingerprint()
            mlflow.set_tags(
                {
                    "data": dataset.name,
                    TAG_DATA_FINGERPRINT: fingerprint,
                    "data_rows": str(len(dataset.y)),
                    "data_positive_rate": f"{dataset.positive_rate:.4f}",
                }
            )
            split = holdout_split(dataset, experiment.split)
            stage.detail = (
                f"{dataset.name}: {len(dataset.y)} rows, {dataset.X.shape[1]} features, "
                f"{dataset.positive_rate:.1%} positive; {len(split.train)} train / {len(split.test)} test"
            )
        if experiment.tuning.enabled:
            with progress.stage("tuning", bar=False) as stage:  # the study draws its own trial bar
                model_params = _tune(experiment, dataset, split)
                stage.detail = f"best parameters: {model_params}"[:100]
        else:
            model_params = {}

        cache = FitCache(experiment.cache.dir, experiment.cache.enabled)
        key = fit_key(fingerprint, _fit_inputs(experiment), model_params)
        pipeline = with_model_params(experiment.pipeline, model_params)
        start = time.perf_counter()
        folds = experiment.cv.folds
        with progress.stage("fit", total=folds + 1, unit="fit") as stage:
            fit, hit = cache.get_or_fit(
                key,
                lambda: fit_and_score(
                    dataset,
                    split,
                    pipeline,
                    experiment.cv,
                    experiment.sampler_name,
                    model_params,
                    stage.advance,
                ),
            )
            stage.detail = (
                f"reused cached fit {key[:12]} (fitted in {duration(fit.fit_seconds)})"
                if hit
                else f"{folds} folds + final fit" + (f", cached as {key[:12]}" if cache.enabled else "")
            )
        mlflow.set_tags({TAG_FIT_KEY: key, TAG_CACHE_HIT: str(hit).lower()})
        mlflow.log_metrics(
            {"fit_seconds": fit.fit_seconds, "fit_or_load_seconds": time.perf_counter() - start}
        )

        with progress.stage("scoring") as stage:
            y_train = dataset.y.to_numpy()[split.train]
            y_test = dataset.y.to_numpy()[split.test]
            # The policy sees out-of-fold training scores only: never a test label.
            choice = policy.choose(y_train, fit.oof_scores)
            costs = experiment.costs
            cv = threshold_metrics(y_train, fit.oof_scores, choice.threshold, costs)
            test = threshold_metrics(y_test, fit.test_scores, choice.threshold, costs)
            folds_table = fold_metrics(y_train, fit.oof_scores, fit.fold_ids)
            cv["pr_auc_fold_mean"] = float(folds_table["pr_auc"].mean())
            cv["pr_auc_fold_se"] = float(folds_table["pr_auc"].std(ddof=1) / np.sqrt(len(folds_table)))
            cv["roc_auc_fold_mean"] = float(folds_table["roc_auc"].mean())
            stage.detail = f"threshold {choice.threshold:.4f} ({policy.name} on out-of-fold scores)"

        with progress.stage("logging") as stage:
            model_info = None
            frozen = FrozenModel(
                predict_pipeline(fit.pipeline),
                choice.threshold,
                [str(c) for c in dataset.X.columns],
                policy.name,
            )
            if experiment.tracking.log_model:
                model_info = log_frozen_model(frozen, dataset.X.iloc[split.train[:5]])
            metrics = {**{f"cv_{k}": v for k, v in cv.items()}, **{f"test_{k}": v for k, v in test.items()}}
            mlflow.log_metrics(metrics, model_id=model_info.model_id if model_info else None)
            for row in folds_table.itertuples():
                mlflow.log_metric("cv_fold_pr_auc", float(row.pr_auc), step=int(row.fold))
            mlflow.set_tags(
                {"threshold": f"{choice.threshold:.6g}", "threshold_feasible": str(choice.feasible).lower()}
            )
            _log_artifacts(experiment, dataset, split, fit, choice, cv, test, folds_table)
            stage.detail = ("model, " if model_info else "") + "metrics, scores, plots"
        return RunOutcome(
            run.info.run_id,
            experiment_id,
            choice,
            cv,
            test,
            hit,
            model_info.model_uri if model_info else None,
        )


def _log_artifacts(
    experiment: Experiment,
    dataset: Dataset,
    split: Split,
    fit: FitResult,
    choice: ThresholdChoice,
    cv: dict[str, float],
    test: dict[str, float],
    folds: pd.DataFrame,
) -> None:
    y_train = dataset.y.to_numpy()[split.train]
    y_test = dataset.y.to_numpy()[split.test]
    costs, policy = experiment.costs, experiment.policy
    oof_frame = pd.DataFrame(
        {
            "row": dataset.X.index[split.train],
            "fold": fit.fold_ids,
            "y_true": y_train,
            "score": fit.oof_scores,
        }
    )
    test_frame = pd.DataFrame(
        {
            "row": dataset.X.index[split.test],
            "y_true": y_test,
            "score": fit.test_scores,
            "decision": (fit.test_scores >= choice.threshold).astype("int64"),
        }
    )
    record = threshold_record(
        policy.name,
        policy.params(),
        choice.threshold,
        choice.objective,
        choice.feasible,
        choice.detail,
        costs.__dict__,
        "out-of-fold training scores",
    )
    figures = {
        "confusion_matrix_test": confusion_matrix_figure(y_test, fit.test_scores, choice.threshold, "test"),
        "confusion_matrix_cv": confusion_matrix_figure(
            y_train, fit.oof_scores, choice.threshold, "out-of-fold (train)"
        ),
        "pr_roc_curves": pr_roc_figure(
            {"test": (y_test, fit.test_scores), "out-of-fold": (y_train, fit.oof_scores)}, choice.threshold
        ),
        "threshold_curves": threshold_curves_figure(y_train, fit.oof_scores, costs, choice.threshold),
    }
    log_run_artifacts(
        experiment.config, oof_frame, test_frame, folds, {"cv": cv, "test": test}, record, figures
    )
