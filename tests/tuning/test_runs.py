"""A tuned training run in MLflow: nested trial runs, the parent's summary, the refitted frozen model."""

from __future__ import annotations

import re
from collections import Counter

import mlflow
import optuna
import pytest
from mlflow.tracking import MlflowClient

from imblab.errors import ImblabError
from imblab.experiment import run_experiment
from imblab.tracking.layout import TAG_STORAGE, TAG_STUDY, TAG_TRIAL_NUMBER, TAG_TRIAL_STATE
from imblab.tracking.trials import RUN_NAME_LIMIT, study_figures, trial_run_name
from tests.tuning.common import experiment, trial_runs


def test_tuned_run_logs_trials_as_nested_runs_and_a_reloadable_model(tracking_uri: str) -> None:
    exp = experiment(
        "tuning.n_trials=8",
        "tuning.pruner.n_startup_trials=2",
        "model.search_space.n_estimators.low=1",
        f"tracking.uri={tracking_uri}",
        "tracking.experiment=tune",
    )
    outcome = run_experiment(exp)
    client = MlflowClient(tracking_uri)
    parent = client.get_run(outcome.run_id)
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["tuning"] == "optuna"
    assert parent.data.tags[TAG_STUDY].startswith("imblab-synthetic-smote-lgbm-pr_auc-")
    assert parent.data.tags[TAG_STORAGE] == "in-memory"
    assert parent.data.metrics["tuning_n_complete"] + parent.data.metrics["tuning_n_pruned"] == 8
    best_params = {k.split(".", 1)[1] for k in parent.data.params if k.startswith("best_params.")}
    assert set(exp.search_space) == best_params
    artifacts = {a.path for a in client.list_artifacts(outcome.run_id, "tuning")}
    assert {
        "tuning/optimization_history.png",
        "tuning/param_importances.png",
        "tuning/trials.csv",
        "tuning/study.json",
    } <= artifacts

    trials = trial_runs(tracking_uri, outcome.run_id)
    assert len(trials) == 8
    assert sorted(int(r.data.tags[TAG_TRIAL_NUMBER]) for r in trials) == list(range(8))
    states = Counter(r.data.tags[TAG_TRIAL_STATE] for r in trials)
    assert states["COMPLETE"] >= 2 and states["PRUNED"] >= 1, states
    for r in trials:
        state = r.data.tags[TAG_TRIAL_STATE]
        # A pruned trial is not an error: FINISHED (no red cross in the UI), PRUNED in optuna.state.
        assert r.info.status == "FINISHED"
        number = r.data.tags[TAG_TRIAL_NUMBER]
        if state == "PRUNED":
            done = int(r.data.metrics["folds_done"])
            assert r.info.run_name == f"trial-{number} pruned@fold {done}"
        else:
            assert re.fullmatch(rf"trial-{number} pr_auc=0\.\d{{4}}", r.info.run_name), r.info.run_name
            assert float(r.info.run_name.split("=")[1]) == pytest.approx(
                r.data.metrics["trial_value"], abs=5e-5
            )
        assert r.data.tags["imblab.role"] == "trial"
        assert set(r.data.params) == best_params
        assert r.data.metrics["duration_seconds"] >= 0
        history = client.get_metric_history(r.info.run_id, "cv_fold_pr_auc")
        assert len(history) == r.data.metrics["folds_done"] >= 1
        if state == "COMPLETE":
            assert len(history) == 3 and "trial_value" in r.data.metrics
        else:
            assert r.data.metrics["folds_done"] < 3 and "trial_value" not in r.data.metrics
    best = max(
        (r for r in trials if "trial_value" in r.data.metrics), key=lambda r: r.data.metrics["trial_value"]
    )
    assert parent.data.metrics["tuning_best_value"] == pytest.approx(best.data.metrics["trial_value"])
    assert parent.data.metrics["tuning_best_trial"] == int(best.data.tags[TAG_TRIAL_NUMBER])
    # The best trial's parameters, with early-stopped rounds, are what the run refitted.
    tuned = {k.split(".", 1)[1]: v for k, v in parent.data.params.items() if k.startswith("best_params.")}
    assert tuned["n_estimators"] == str(int(best.data.metrics["n_estimators_effective"]))
    assert tuned["num_leaves"] == best.data.params["num_leaves"]

    model = mlflow.pyfunc.load_model(outcome.model_uri)
    frozen_model = model.unwrap_python_model().pipeline.named_steps["model"]
    assert frozen_model.n_estimators == int(tuned["n_estimators"])
    assert frozen_model.num_leaves == int(tuned["num_leaves"])
    assert frozen_model.learning_rate == pytest.approx(float(tuned["learning_rate"]))
    dataset = exp.load_data()
    out = model.predict(dataset.X.iloc[:25])
    assert list(out.columns) == ["decision", "probability"] and len(out) == 25
    assert set(out["decision"].unique()) <= {0, 1}


def test_failing_trials_are_recorded_and_stop_the_run_with_a_clear_error(tracking_uri: str) -> None:
    exp = experiment(
        "tuning.n_trials=6",
        "+model.search_space.boosting_type={type: categorical, choices: [no_such_booster]}",
        f"tracking.uri={tracking_uri}",
        "tracking.experiment=tune",
    )
    with pytest.raises(ImblabError, match=r"3 trials in a row failed.*no_such_booster"):
        run_experiment(exp)
    client = MlflowClient(tracking_uri)
    (run,) = client.search_runs(
        [client.get_experiment_by_name("tune").experiment_id], "tags.`imblab.role` = 'run'"
    )
    assert run.info.status == "FAILED"
    trials = trial_runs(tracking_uri, run.info.run_id)
    assert len(trials) == 3
    assert {r.info.status for r in trials} == {"FAILED"}
    assert {r.data.tags[TAG_TRIAL_STATE] for r in trials} == {"FAIL"}
    assert all("no_such_booster" in r.data.tags["imblab.error"] for r in trials)


def test_a_bad_tuning_config_fails_the_run_without_trials(tracking_uri: str) -> None:
    exp = experiment("tuning.metric=nope", f"tracking.uri={tracking_uri}", "tracking.experiment=bad")
    with pytest.raises(ImblabError, match=r"unknown tuning\.metric"):
        run_experiment(exp)
    client = MlflowClient(tracking_uri)
    runs = client.search_runs([client.get_experiment_by_name("bad").experiment_id])
    assert [r.info.status for r in runs] == ["FAILED"]  # the run itself, no trial runs


def test_trial_run_names_say_the_value_or_where_the_trial_stopped() -> None:
    assert (
        trial_run_name(7, "COMPLETE", "val_objective", 1.04123, 20, "epoch") == "trial-7 val_objective=1.0412"
    )
    assert trial_run_name(7, "PRUNED", "val_objective", None, 3, "epoch") == "trial-7 pruned@epoch 3"
    assert trial_run_name(12, "PRUNED", "pr_auc", None, 2, "fold") == "trial-12 pruned@fold 2"
    assert trial_run_name(3, "FAIL", "pr_auc", None, 0, "fold") == "trial-3 fail"
    long = trial_run_name(123, "COMPLETE", "a_very_long_metric_name_that_goes_on_and_on", 0.5, 5, "fold")
    assert len(long) <= RUN_NAME_LIMIT and long.startswith("trial-123 a_very") and long.endswith("=0.5000")


def test_study_plots_label_their_axis_with_the_metric() -> None:
    study = optuna.create_study(direction="maximize")
    study.optimize(lambda t: t.suggest_float("x", 0, 1) + t.suggest_float("y", 0, 1), n_trials=4)
    figures = study_figures(study, "pr_auc")
    assert figures["optimization_history"].axes[0].get_ylabel() == "pr_auc"
    assert figures["param_importances"].axes[0].get_legend_handles_labels()[1] == ["pr_auc"]


def test_an_interrupted_study_leaves_no_trial_run_running(
    tracking_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Trial runs open when their trial starts: Ctrl-C mid-trial must still end every one of them."""
    from imblab.tracking.layout import TAG_KILLED
    from imblab.tuning.trainers import LightGBMTrainer

    fits = {"n": 0}
    fit_predict = LightGBMTrainer.fit_predict

    def interrupted_in_the_third_trial(self, k, params):  # type: ignore[no-untyped-def]
        fits["n"] += 1
        if fits["n"] == 7:  # 3 folds per trial: the first fold of trial 2
            raise KeyboardInterrupt
        return fit_predict(self, k, params)

    monkeypatch.setattr(LightGBMTrainer, "fit_predict", interrupted_in_the_third_trial)
    exp = experiment("tuning.n_trials=5", "tuning/pruner=none", f"tracking.uri={tracking_uri}")
    with pytest.raises(KeyboardInterrupt):
        run_experiment(exp)
    client = MlflowClient(tracking_uri)
    runs = client.search_runs([client.get_experiment_by_name("imblab").experiment_id])
    [parent] = [r for r in runs if r.data.tags.get("imblab.role") == "run"]
    trials = {
        int(r.data.tags[TAG_TRIAL_NUMBER]): r for r in runs if r.data.tags.get("imblab.role") == "trial"
    }
    assert parent.info.status == "KILLED" and sorted(trials) == [0, 1, 2]
    assert [trials[n].info.status for n in (0, 1)] == ["FINISHED", "FINISHED"]
    assert trials[2].info.status == "KILLED"
    assert trials[2].data.tags[TAG_KILLED] == "trial 2: the study was interrupted before the trial ended"
