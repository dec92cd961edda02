"""One ``imblab panel`` run, end to end: panel -> examples -> person split -> fit -> decision -> MLflow.

``run_panel(experiment)`` is what every Hydra job of ``imblab panel`` calls. The standardiser is fitted on
training persons, the model early-stops on validation persons, the decision offsets are chosen on the
VALIDATION persons only, and the test persons are scored once, for reporting.

Metrics: per epoch (``step=epoch``) the recurrent models' logs (``train_loss``, ``val_loss``,
``val_wage_rmse``, ``val_class_*``); then the final model's ``val_*`` and ``test_*`` metrics, logged at
step ``epochs_run`` (0 for the baselines) so that a run's latest value of ``val_class_macro_f1`` is the
final model's with its decision, and the history stays intact before it.
"""

from __future__ import annotations

import inspect
import json
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import mlflow
import numpy as np
import pandas as pd

from imblab.console.progress import RunProgress, Stage
from imblab.frozen import pip_requirements
from imblab.panel.dataset import Panel, PanelPrediction
from imblab.panel.examples import Examples, Standardizer, build_examples, person_split
from imblab.panel.frozen import PanelFrozenModel, panel_input_example, panel_signature
from imblab.panel.metrics import class_metrics, slug, wage_metrics
from imblab.report.panel_figures import class_confusion_figure, history_figure, wage_figure
from imblab.tracking.artifacts import log_config, log_figures, log_parquet
from imblab.tracking.layout import (
    DECISION_JSON,
    METRICS_JSON,
    PANEL_TEST_PREDICTIONS,
    PLOTS_DIR,
    TAG_WORKLOAD,
    WORKLOAD_PANEL,
)
from imblab.tracking.models import log_pyfunc
from imblab.tracking.runs import TAG_LIMIT, flatten, training_run
from imblab.tracking.store import ensure_experiment, use_tracking

if TYPE_CHECKING:
    from imblab.config.panel import PanelExperiment

log = logging.getLogger(__name__)
PARTS = ("train", "val", "test")


@dataclass
class PanelOutcome:
    run_id: str
    experiment_id: str
    val_metrics: dict[str, float]
    test_metrics: dict[str, float]
    model_uri: str | None = None


def _fit(model: Any, train: Examples, val: Examples, stage: Stage) -> list[dict[str, float]]:
    """Fit ``model``; a model with epochs logs each one (``step=epoch``). Returns the epoch history."""
    if "on_epoch" not in inspect.signature(model.fit).parameters:
        model.fit(train, val)
        return []

    def on_epoch(epoch: int, logs: dict[str, float]) -> None:
        mlflow.log_metrics(logs, step=epoch)
        stage.advance()

    model.fit(train, val, on_epoch=on_epoch)
    return list(getattr(model, "history_", []))


def _scores(ex: Examples, pred: PanelPrediction, classes: np.ndarray, names: list[str]) -> dict[str, float]:
    return {**wage_metrics(ex.y_reg, pred.wage), **class_metrics(ex.y_cls, classes, names)}


def _counts(panel: Panel, parts: list[Examples]) -> dict[str, float]:
    counts: dict[str, float] = {
        "data_rows": len(panel.frame),
        "data_persons": panel.n_persons,
        "data_single_wave_persons": panel.n_single_wave_persons,
        "data_dropped_rows": sum(panel.dropped.values()),
    }
    for part, ex in zip(PARTS, parts, strict=True):
        counts[f"n_examples_{part}"] = len(ex)
        counts[f"n_persons_{part}"] = len(np.unique(ex.person))
    return counts


def run_panel(
    experiment: PanelExperiment, parent_run_id: str | None = None, live: bool | None = None
) -> PanelOutcome:
    """Run one configured panel experiment and log it to MLflow; the run ends FINISHED or FAILED.

    ``live``: the progress display on stderr, as for :func:`imblab.experiment.run_experiment`.
    """
    uri = use_tracking(experiment.tracking.uri, write=True)
    experiment_id = ensure_experiment(experiment.tracking.experiment, uri)
    tags = {
        "model": experiment.model_name,
        "class_balance": experiment.class_balance,
        "decision": experiment.decision_name,
        "data": experiment.data_name,
        TAG_WORKLOAD: WORKLOAD_PANEL,
    }
    title = f"imblab panel: {experiment.model_name} · {experiment.class_balance} · {experiment.decision_name}"
    with (
        training_run(experiment_id, experiment.run_name, tags, parent_run_id) as run,
        RunProgress(title, live) as progress,
    ):
        with progress.stage("data") as stage:
            mlflow.log_params(flatten(experiment.config))
            panel = experiment.load_data()
            mlflow.set_tags({"data": panel.name, "data_dropped": json.dumps(panel.dropped)[:TAG_LIMIT]})
            examples = build_examples(panel, experiment.max_len)
            persons = person_split(examples, experiment.split.fractions, experiment.split.seed)
            raw = [examples.of_persons(p) for p in persons]
            mlflow.log_metrics(_counts(panel, raw))
            scaler = Standardizer().fit(raw[0])
            train, val, test = (scaler.transform(ex) for ex in raw)
            sizes = " / ".join(f"{len(ex)} {part}" for part, ex in zip(PARTS, raw, strict=True))
            stage.detail = f"{panel.name}: {panel.n_persons} persons; examples {sizes}"

        model = experiment.model
        if getattr(model, "n_classes", 0) is None:  # a class may be absent from the training persons
            model.n_classes = panel.n_classes
        if experiment.tuning.enabled:  # the study sees training and validation persons only
            with progress.stage("tuning", bar=False) as stage:  # the study draws its own trial bar
                model = _tuned(experiment, panel, model, train, val)
        epochs = getattr(model, "max_epochs", None)
        with progress.stage("fit", total=epochs, unit="epoch") as stage:
            history = _fit(model, train, val, stage)
            best = getattr(model, "best_epoch_", -1) + 1  # best_epoch_ is 0-based
            stage.detail = f"{len(history)} epochs, best: epoch {best}" if history else type(model).__name__
        with progress.stage("scoring") as stage:
            val_pred, test_pred = model.predict(val), model.predict(test)
            policy, names = experiment.decision, panel.class_names
            offsets = policy.choose(val.y_cls, val_pred.logits)  # validation persons only
            val_cls = policy.decide(val_pred.logits, offsets)
            test_cls = policy.decide(test_pred.logits, offsets)
            val_m, test_m = _scores(val, val_pred, val_cls, names), _scores(test, test_pred, test_cls, names)
            stage.detail = f"decision {experiment.decision_name} (chosen on validation persons)"

        with progress.stage("logging") as stage:
            model_info = None
            if experiment.tracking.log_model:
                frozen = PanelFrozenModel(
                    model, scaler, panel, experiment.max_len, offsets, experiment.decision_name
                )
                example = panel_input_example(panel, persons[0][:3])
                requirements = [*pip_requirements(), f"torch=={_version('torch')}"]
                metadata = {
                    "columns": frozen.columns,
                    "class_names": names,
                    "decision": experiment.decision_name,
                }
                model_info = log_pyfunc(
                    frozen, example, panel_signature(frozen, example), metadata, requirements
                )
            final = {
                **{f"val_{k}": v for k, v in val_m.items()},
                **{f"test_{k}": v for k, v in test_m.items()},
            }
            if history:
                final |= {"best_epoch": float(getattr(model, "best_epoch_", -1)), "epochs_run": len(history)}
            mlflow.log_metrics(final, step=len(history), model_id=model_info.model_id if model_info else None)
            best_epoch = getattr(model, "best_epoch_", None)
            _log_artifacts(
                experiment, panel, test, test_pred, test_cls, offsets, history, best_epoch, val_m, test_m
            )
            stage.detail = ("model, " if model_info else "") + "metrics, predictions, plots"
        return PanelOutcome(
            run.info.run_id, experiment_id, val_m, test_m, model_info.model_uri if model_info else None
        )


def _tuned(experiment: PanelExperiment, panel: Panel, model: Any, train: Examples, val: Examples) -> Any:
    """Run the study (trials nested under this run); the unfitted model with the best parameters.

    The best parameters are refitted below like an untuned run's (seeded: the best trial's model again).
    """
    from imblab.panel.tuning import study_setup, tune_panel, with_params

    setup = study_setup(experiment.config, panel, experiment.model_name)
    params = tune_panel(
        experiment.tuning, experiment.search_space, model, experiment.model_name, setup, train, val
    )
    return with_params(model, params)


def _version(lib: str) -> str:
    from importlib.metadata import version

    return version(lib)


def _log_artifacts(
    experiment: PanelExperiment,
    panel: Panel,
    test: Examples,
    pred: PanelPrediction,
    test_cls: np.ndarray,
    offsets: np.ndarray,
    history: list[dict[str, float]],
    best_epoch: int | None,
    val_m: dict[str, float],
    test_m: dict[str, float],
) -> None:
    names = np.asarray(panel.class_names, dtype=object)
    frame = pd.DataFrame(
        {
            "person": test.person,
            "time": test.time,
            "y_wage": test.y_reg,
            "y_class": names[test.y_cls],
            "wage": pred.wage,
            "class": names[test_cls],
        }
    )
    for c, p in zip(panel.class_names, pred.probabilities().T, strict=True):
        frame[f"prob_{slug(c)}"] = p
    log_parquet(frame, PANEL_TEST_PREDICTIONS)
    log_config(experiment.config)
    mlflow.log_dict({"val": val_m, "test": test_m}, METRICS_JSON)
    mlflow.log_dict(
        {
            "decision": experiment.decision_name,
            "offsets": dict(zip(panel.class_names, map(float, offsets), strict=True)),
            "chosen_on": "validation persons",
        },
        DECISION_JSON,
    )
    reg = panel.regression_target
    figures = {
        "wage_test": wage_figure(test.y_reg, pred.wage, reg, f"{reg}: test persons"),
        "confusion_matrix_test": class_confusion_figure(
            test.y_cls, test_cls, panel.class_names, False, f"{panel.class_target}: test (counts)"
        ),
        "confusion_matrix_test_normalized": class_confusion_figure(
            test.y_cls, test_cls, panel.class_names, True, f"{panel.class_target}: test (row = recall)"
        ),
    }
    if history:
        figures["training_history"] = history_figure(history, best_epoch)
    log_figures(figures, PLOTS_DIR)
