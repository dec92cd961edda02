"""``imblab panel tuning=optuna``: pruning per epoch, nested trial runs, the objective, resume."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import numpy as np
import optuna
import pytest
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

from imblab.config.panel import panel_experiment_from_config
from imblab.errors import ImblabError
from imblab.panel.dataset import PanelPrediction
from imblab.panel.examples import Standardizer, build_examples, person_split
from imblab.panel.experiment import run_panel
from imblab.panel.recurrent import RecurrentModel
from imblab.panel.synthetic import make_panel_synthetic
from imblab.panel.tuning import model_value, val_objective
from imblab.tracking.layout import TAG_TRIAL_NUMBER, TAG_TRIAL_STATE
from tests.panel.test_app import compose_panel

TINY = (
    "data=panel_synthetic",
    "data.n_persons=150",
    "max_len=4",
    "model=lstm",
    "model.max_epochs=4",
    "model.patience=4",
    "model.search_space.units1={type:int,low:4,high:8}",
    "model.search_space.units2={type:int,low:2,high:4}",
    "model.search_space.batch_size={type:categorical,choices:[64,128]}",
    "torch.threads=1",
)
TUNED = (
    "tuning=optuna",
    "tuning/pruner=percentile",
    "tuning.pruner.n_startup_trials=2",
    "tuning.pruner.percentile=25",
    "tuning.tpe_startup_trials=2",
    "tuning.progress_bar=false",
    "tuning.seed=0",
)


def _tuned(tracking_uri: str, *extra: str):
    cfg = compose_panel(*TINY, *TUNED, f"tracking.uri={tracking_uri}", "tracking.experiment=tune", *extra)
    return panel_experiment_from_config(cfg)


def test_study_prunes_nests_trials_and_finishes(tmp_path: Path, tracking_uri: str) -> None:
    outcome = run_panel(_tuned(tracking_uri, "tuning.n_trials=6"))
    client = MlflowClient(tracking_uri)
    parent = client.get_run(outcome.run_id)
    assert parent.info.status == "FINISHED" and outcome.model_uri
    data = parent.data
    assert {f"best_params.{k}" for k in ("units1", "units2", "dropout", "learning_rate")} <= set(data.params)
    assert "best_params.class_loss_weight" in data.params and "tuning_best_value" in data.metrics
    assert data.metrics["tuning_n_complete"] + data.metrics["tuning_n_pruned"] == 6
    assert data.metrics["tuning_n_pruned"] >= 1  # percentile pruner, 2 start-up trials, seeded
    trials = client.search_runs(
        [outcome.experiment_id], f"tags.`{MLFLOW_PARENT_RUN_ID}` = '{outcome.run_id}'", max_results=50
    )
    assert len(trials) == 6
    states = {r.data.tags[TAG_TRIAL_STATE] for r in trials}
    assert states == {"COMPLETE", "PRUNED"}
    assert {r.info.status for r in trials} == {"FINISHED"}  # pruned is not an error
    pruned = next(r for r in trials if r.data.tags[TAG_TRIAL_STATE] == "PRUNED")
    history = client.get_metric_history(pruned.info.run_id, "epoch_val_objective")
    assert [m.step for m in history] == list(range(len(history))) and len(history) < 4
    number = pruned.data.tags[TAG_TRIAL_NUMBER]
    assert pruned.info.run_name == f"trial-{number} pruned@epoch {len(history)}"
    complete = next(r for r in trials if r.data.tags[TAG_TRIAL_STATE] == "COMPLETE")
    value = complete.data.metrics["trial_value"]
    assert complete.info.run_name == f"trial-{complete.data.tags[TAG_TRIAL_NUMBER]} val_objective={value:.4f}"
    artifacts = {a.path for a in client.list_artifacts(outcome.run_id, "tuning")}
    assert "tuning/optimization_history.png" in artifacts
    assert np.isfinite(outcome.test_metrics["class_macro_f1"])


def test_resume_continues_to_n_trials(tmp_path: Path, tracking_uri: str) -> None:
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    extra = (f"tuning.storage={storage}", "tuning.study_name=panel-resume", "tracking.log_model=false")
    run_panel(_tuned(tracking_uri, "tuning.n_trials=2", *extra))
    second = run_panel(_tuned(tracking_uri, "tuning.n_trials=4", *extra))
    study = optuna.load_study(study_name="panel-resume", storage=storage)
    assert len(study.trials) == 4
    assert study.metric_names == ["val_objective"]  # optuna-dashboard labels its axis with it
    metrics = MlflowClient(tracking_uri).get_run(second.run_id).data.metrics
    assert metrics["tuning_trials_run_here"] == 2


def test_objective_does_not_depend_on_the_class_loss_weight() -> None:
    panel = make_panel_synthetic(n_persons=120, seed=1)
    examples = build_examples(panel, 4)
    persons = person_split(examples, (0.7, 0.15, 0.15), 0)
    raw = [examples.of_persons(p) for p in persons]
    scaler = Standardizer().fit(raw[0])
    train, val = scaler.transform(raw[0]), scaler.transform(raw[1])
    low = RecurrentModel(units1=4, units2=2, max_epochs=2, class_loss_weight=0.2, n_threads=1)
    low.fit(train, val)
    high = copy.deepcopy(low)  # the same fitted network, another tuned w
    high.class_loss_weight = 0.8
    assert model_value(low, val) == pytest.approx(model_value(high, val))
    # the same quantity the model logs per epoch (at the epoch it keeps)
    assert model_value(low, val) == pytest.approx(low.history_[low.best_epoch_]["val_objective"], rel=1e-4)
    pred = low.predict(val)
    worse = PanelPrediction(wage=pred.wage + 1.0, logits=pred.logits)
    scale = (low.wage_mean_, low.wage_std_)
    assert val_objective(val, worse, *scale) > val_objective(val, pred, *scale)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (("data=panel_synthetic", "model=persistence"), "recurrent panel models"),
        ((*TINY, "tuning.metric=pr_auc"), "val_objective"),
    ],
)
def test_bad_tuning_is_refused_before_a_run(overrides: tuple[str, ...], message: str) -> None:
    with pytest.raises(ImblabError, match=re.escape(message)):
        panel_experiment_from_config(compose_panel(*overrides, *TUNED))
