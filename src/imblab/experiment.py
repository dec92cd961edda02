"""One experiment run: data -> split -> (tuning) -> fit/out-of-fold -> policy -> metrics -> MLflow.

``run_experiment(experiment)`` is what ``imblab train`` calls for every Hydra job. The threshold is
chosen on out-of-fold training scores only; test labels are used once, for reporting. Under
``evaluation=repeated_cv`` the same protocol runs in every outer fold (``imblab.protocol.outer``)
and the frozen model is the one refitted on all rows, thresholded on their out-of-fold scores.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import mlflow
import numpy as np
import pandas as pd

from imblab.categorical import for_features
from imblab.config.specs import Experiment
from imblab.console.progress import RunProgress, duration
from imblab.data.categories import categorical_columns
from imblab.data.dataset import Dataset
from imblab.errors import ImblabError
from imblab.frozen import FrozenModel
from imblab.metrics.core import threshold_metrics
from imblab.metrics.names import METRIC_NAMES
from imblab.pipeline import calibrated, predict_pipeline, with_model_params
from imblab.protocol.cache import FitCache, fit_key
from imblab.protocol.cv import FitResult, fit_and_score, fold_metrics
from imblab.protocol.outer import PREFIX, OuterEvaluation, evaluate_outer
from imblab.protocol.split import Split, holdout_split
from imblab.report.evaluation_figures import outer_folds_figure, reliability_figure
from imblab.report.figures import confusion_matrix_figure, pr_roc_figure, threshold_curves_figure
from imblab.report.importance import feature_importances, importance_figure
from imblab.thresholds import ThresholdChoice
from imblab.tracking.artifacts import log_run_artifacts, threshold_record
from imblab.tracking.evaluation import log_repeated_cv
from imblab.tracking.layout import (
    TAG_CACHE_HIT,
    TAG_DATA_FINGERPRINT,
    TAG_FIT_KEY,
)
from imblab.tracking.models import log_frozen_model
from imblab.tracking.runs import TAG_LIMIT, flatten, training_run
from imblab.tracking.store import ensure_experiment, use_tracking

log = logging.getLogger(__name__)

# Config sections that determine a fit (and so its cache key); the policy, costs and tracking do not.
FIT_INPUTS = ("split", "preprocess", "sampler", "model", "calibration", "cv", "seed")


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
    rcv_metrics: dict[str, float] = field(default_factory=dict)  # evaluation=repeated_cv only


def _tune(experiment: Experiment, dataset: Dataset, split: Split) -> dict[str, Any]:
    """Tuned model parameters when tuning is on (Optuna, inside this run), else none."""
    if not experiment.tuning.enabled:
        return {}
    from imblab.tuning.run import tune  # imported lazily: plain runs do not need Optuna

    return tune(experiment, dataset, split)


def _for_data(experiment: Experiment, dataset: Dataset) -> Experiment:
    """The experiment with its pipeline adapted to the data's categorical columns (if it has any)."""
    columns = categorical_columns(dataset.X)
    if columns and experiment.tuning.enabled:
        raise ImblabError(
            f"tuning=optuna does not handle categorical feature columns yet ({columns[:10]}); drop them "
            "(data.drop_columns=[...]), encode them as numbers before loading, or use tuning=none"
        )
    pipeline = for_features(experiment.pipeline, dataset.X, experiment.sampler_name)
    if columns:
        mlflow.set_tags({"categorical_features": ",".join(columns)[:TAG_LIMIT]})
    return replace(experiment, pipeline=pipeline)


def _fit_inputs(experiment: Experiment) -> dict[str, Any]:
    inputs = experiment.section(*FIT_INPUTS)
    model = inputs.get("model")
    # The search space does not change a fit; only the estimator (and tuned params) do.
    inputs["model"] = model.get("estimator") if isinstance(model, dict) else model
    return inputs


def _rows_digest(rows: Any) -> str:
    return hashlib.sha256(np.asarray(rows, dtype="<i8").tobytes()).hexdigest()[:16]


def _fitter(
    experiment: Experiment, fingerprint: str, model_params: dict[str, Any], dataset: Dataset
) -> tuple[Callable[[Split], str], Callable[..., tuple[FitResult, bool]]]:
    """``(key_of, fit)``: the cache key of a split's fit, and that fit (from the cache when it has it;
    ``fit(split, on_fit)`` calls ``on_fit`` after each of its fits, for progress).

    A holdout key is the config's fit inputs, as always. Under repeated CV the ``split`` group is not
    used; the key holds the rows instead (each outer fold's training and test positions, or all rows
    for the final refit), so a sweep over policies fits each outer fold once, while another sampler,
    model or calibration is another key, as always.
    """
    cache = FitCache(experiment.cache.dir, experiment.cache.enabled)
    estimator = calibrated(with_model_params(experiment.pipeline, model_params), experiment.calibration)

    def key_of(split: Split) -> str:
        inputs = _fit_inputs(experiment)
        if experiment.evaluation.repeated:
            inputs.pop("split")
            inputs["rows"] = {"train": _rows_digest(split.train), "test": _rows_digest(split.test)}
        return fit_key(fingerprint, inputs, model_params)

    def fit(split: Split, on_fit: Callable[[], None] | None = None) -> tuple[FitResult, bool]:
        return cache.get_or_fit(
            key_of(split),
            lambda: fit_and_score(
                dataset, split, estimator, experiment.cv, experiment.sampler_name, model_params, on_fit
            ),
        )

    return key_of, fit


def run_experiment(
    experiment: Experiment, parent_run_id: str | None = None, live: bool | None = None
) -> RunOutcome:
    """Run one configured experiment and log it to MLflow; the run ends FINISHED or FAILED.

    ``live``: the progress display on stderr (:class:`imblab.console.progress.RunProgress`): None draws
    it when stderr is a terminal, False never (a parallel sweep's jobs).
    """
    uri = use_tracking(experiment.tracking.uri, write=True)
    experiment_id = ensure_experiment(experiment.tracking.experiment, uri)
    policy = experiment.policy
    tags = {
        "sampler": experiment.sampler_name,
        "model": experiment.model_name,
        "threshold_policy": policy.name,
        "tuning": "optuna" if experiment.tuning.enabled else "none",
        # repeated_cv: the frozen model was refitted on all rows, so no row is a held-out test row.
        "evaluation": experiment.evaluation.name,
        "calibration": experiment.calibration.method,
    }
    title = f"imblab train: {experiment.sampler_name} · {experiment.model_name} · {policy.name}"
    evaluation = experiment.evaluation
    with (
        training_run(experiment_id, experiment.run_name, tags, parent_run_id) as run,
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
            experiment = _for_data(experiment, dataset)
            # Repeated CV: every outer fold runs the protocol below; the frozen model is the refit on all
            # rows (no holdout test part), thresholded on their out-of-fold scores.
            positions = np.arange(len(dataset.y))
            split = (
                Split(positions, positions[:0])
                if evaluation.repeated
                else holdout_split(dataset, experiment.split)
            )
            parts = (
                f"{evaluation.repeats}x{evaluation.folds} outer folds ({evaluation.kind})"
                if evaluation.repeated
                else f"{len(split.train)} train / {len(split.test)} test"
            )
            stage.detail = (
                f"{dataset.name}: {len(dataset.y)} rows, {dataset.X.shape[1]} features, "
                f"{dataset.positive_rate:.1%} positive; {parts}"
            )
        if experiment.tuning.enabled:
            with progress.stage("tuning", bar=False) as stage:  # the study draws its own trial bar
                model_params = _tune(experiment, dataset, split)
                stage.detail = f"best parameters: {model_params}"[:100]
        else:
            model_params = {}

        key_of, fit_split = _fitter(experiment, fingerprint, model_params, dataset)
        outer = None
        if evaluation.repeated:
            n_outer = evaluation.repeats * evaluation.folds
            with progress.stage("outer", total=n_outer, unit="fold") as stage:
                outer = evaluate_outer(
                    dataset,
                    evaluation,
                    fit_split,
                    policy,
                    experiment.costs,
                    list(METRIC_NAMES),
                    stage.advance,
                )
                s = outer.summary
                stage.detail = (
                    f"{n_outer} folds ({int(outer.table['cache_hit'].sum())} cached): {PREFIX} PR-AUC "
                    f"{s[f'{PREFIX}_pr_auc']:.4f} [{s[f'{PREFIX}_pr_auc_ci_low']:.4f}, "
                    f"{s[f'{PREFIX}_pr_auc_ci_high']:.4f}]"
                )

        key = key_of(split)
        start = time.perf_counter()
        folds = experiment.cv.folds
        with progress.stage("fit", total=folds + 1, unit="fit") as stage:
            fit, hit = fit_split(split, stage.advance)
            stage.detail = (
                f"reused cached fit {key[:12]} (fitted in {duration(fit.fit_seconds)})"
                if hit
                else f"{folds} folds + final fit"
                + (f", cached as {key[:12]}" if experiment.cache.enabled else "")
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
            test = threshold_metrics(y_test, fit.test_scores, choice.threshold, costs) if len(y_test) else {}
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
            model_id = model_info.model_id if model_info else None
            metrics = {**{f"cv_{k}": v for k, v in cv.items()}, **{f"test_{k}": v for k, v in test.items()}}
            mlflow.log_metrics(metrics, model_id=model_id)
            for row in folds_table.itertuples():
                mlflow.log_metric("cv_fold_pr_auc", float(row.pr_auc), step=int(row.fold))
            mlflow.set_tags(
                {"threshold": f"{choice.threshold:.6g}", "threshold_feasible": str(choice.feasible).lower()}
            )
            _log_artifacts(
                experiment, dataset, split, fit, choice, {"cv": cv, "test": test}, folds_table, outer
            )
            if outer is not None:
                log_repeated_cv(
                    outer.table, outer.scores, outer.summary, list(METRIC_NAMES), PREFIX, model_id
                )
            stage.detail = ("model, " if model_info else "") + "metrics, scores, plots"
        return RunOutcome(
            run.info.run_id,
            experiment_id,
            choice,
            cv,
            test,
            hit,
            model_info.model_uri if model_info else None,
            rcv_metrics=outer.summary if outer is not None else {},
        )


def _log_artifacts(
    experiment: Experiment,
    dataset: Dataset,
    split: Split,
    fit: FitResult,
    choice: ThresholdChoice,
    metrics: dict[str, dict[str, float]],
    folds: pd.DataFrame,
    outer: OuterEvaluation | None,
) -> None:
    """Scores, config, metrics, threshold and plots of the run (``test`` parts only with a holdout)."""
    y_train = dataset.y.to_numpy()[split.train]
    y_test = dataset.y.to_numpy()[split.test]
    costs, policy, t = experiment.costs, experiment.policy, choice.threshold
    oof_frame = pd.DataFrame(
        {
            "row": dataset.X.index[split.train],
            "fold": fit.fold_ids,
            "y_true": y_train,
            "score": fit.oof_scores,
        }
    )
    record = threshold_record(
        policy.name,
        policy.params(),
        t,
        choice.objective,
        choice.feasible,
        choice.detail,
        costs.__dict__,
        "out-of-fold training scores" if outer is None else "out-of-fold scores of all rows",
    )
    oof = (y_train, fit.oof_scores)
    figures = {
        "confusion_matrix_cv": confusion_matrix_figure(*oof, t, "out-of-fold (train)"),
        "threshold_curves": threshold_curves_figure(*oof, costs, t),
    }
    test_frame = None
    if outer is None:
        test = (y_test, fit.test_scores)
        test_frame = pd.DataFrame(
            {
                "row": dataset.X.index[split.test],
                "y_true": y_test,
                "score": fit.test_scores,
                "decision": (fit.test_scores >= t).astype("int64"),
            }
        )
        figures["confusion_matrix_test"] = confusion_matrix_figure(*test, t, "test")
        figures["pr_roc_curves"] = pr_roc_figure({"test": test, "out-of-fold": oof}, t)
        figures["reliability"] = reliability_figure({"test": test, "out-of-fold": oof})
    else:
        # Pooled outer-test scores come from R x K models, each thresholded on its own fold.
        pooled = (outer.scores["y_true"].to_numpy(), outer.scores["score"].to_numpy())
        figures["pr_roc_curves"] = pr_roc_figure({"outer test (pooled)": pooled, "out-of-fold": oof}, t)
        figures["reliability"] = reliability_figure({"outer test (pooled)": pooled, "out-of-fold": oof})
        figures["rcv_folds"] = outer_folds_figure(outer.table, outer.summary, PREFIX)
        metrics = {**metrics, PREFIX: outer.summary}
    # Of the frozen model (refitted on all training rows); None for a model without importances.
    importances = feature_importances(fit.pipeline, dataset.X.iloc[split.train])
    if importances is not None:
        figures["feature_importances"] = importance_figure(importances)
    log_run_artifacts(experiment.config, oof_frame, test_frame, folds, metrics, record, figures, importances)
