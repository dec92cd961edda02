"""Optuna tuning: nested MLflow trial runs, resume, shared storages, pruning, honest folds, bad input.

Real Optuna studies, a real SQLite MLflow store, real Hydra composition and real subprocesses; tiny
synthetic data so a trial takes a fraction of a second.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections import Counter
from pathlib import Path

import mlflow
import numpy as np
import optuna
import pandas as pd
import pytest
from hydra.utils import instantiate
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState
from sklearn.base import clone

from imblab import runner, tuning
from imblab.errors import ImblabError
from imblab.pipeline import build_pipeline
from imblab.protocol import cv_folds, holdout_split
from imblab.tracking import ensure_experiment, use_tracking
from tests.conftest import FAST, compose_config

# FAST with a small LightGBM search space around its 40 trees, so a trial takes ~0.1 s.
TUNE = (
    *FAST,
    "tuning=optuna",
    "tuning.progress_bar=false",
    "model.search_space.n_estimators.low=10",
    "model.search_space.n_estimators.high=60",
)
IMBLAB = [sys.executable, "-m", "imblab"]


def _setup(*overrides: str):  # type: ignore[no-untyped-def]
    cfg = compose_config(*TUNE, *overrides)
    dataset = instantiate(cfg.data)
    return cfg, dataset, holdout_split(dataset, cfg.split)


def _load(storage: str, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=tuning.open_storage(storage))


def _trial_runs(uri: str, parent: str) -> list:  # type: ignore[type-arg]
    client = MlflowClient(uri)
    run = client.get_run(parent)
    return client.search_runs(
        [run.info.experiment_id], f"tags.mlflow.parentRunId = '{parent}'", max_results=1000
    )


# --------------------------------------------------------------------------------------------------
# A tuned training run: nested trial runs, parent summary, frozen model
# --------------------------------------------------------------------------------------------------


def test_tuned_run_logs_trials_as_nested_runs_and_a_reloadable_model(tracking_uri: str) -> None:
    cfg = compose_config(
        *TUNE,
        "tuning.n_trials=8",
        "tuning.percentile_pruner.n_startup_trials=2",
        "model.search_space.n_estimators.low=1",
        f"tracking.uri={tracking_uri}",
        "tracking.experiment=tune",
    )
    outcome = runner.run_experiment(cfg)
    client = MlflowClient(tracking_uri)
    parent = client.get_run(outcome.run_id)
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["tuning"] == "optuna"
    assert parent.data.tags[tuning.TAG_STUDY].startswith("imblab-synthetic-smote-lgbm-pr_auc-")
    assert parent.data.tags[tuning.TAG_STORAGE] == "in-memory"
    assert parent.data.metrics["tuning_n_complete"] + parent.data.metrics["tuning_n_pruned"] == 8
    best_params = {k.split(".", 1)[1] for k in parent.data.params if k.startswith("best_params.")}
    assert set(cfg.model.search_space) == best_params
    artifacts = {a.path for a in client.list_artifacts(outcome.run_id, "tuning")}
    assert {
        "tuning/optimization_history.png",
        "tuning/param_importances.png",
        "tuning/trials.csv",
    } <= artifacts

    trials = _trial_runs(tracking_uri, outcome.run_id)
    assert len(trials) == 8
    assert sorted(int(r.data.tags[tuning.TAG_TRIAL_NUMBER]) for r in trials) == list(range(8))
    states = Counter(r.data.tags[tuning.TAG_TRIAL_STATE] for r in trials)
    assert states["COMPLETE"] >= 2 and states["PRUNED"] >= 1, states
    for r in trials:
        state = TrialState[r.data.tags[tuning.TAG_TRIAL_STATE]]
        assert r.info.status == tuning.MLFLOW_STATUS[state]
        assert r.data.tags["imblab.role"] == "trial"
        assert set(r.data.params) == best_params
        assert r.data.metrics["duration_seconds"] >= 0
        history = client.get_metric_history(r.info.run_id, "cv_fold_pr_auc")
        assert len(history) == r.data.metrics["folds_done"] >= 1
        if state == TrialState.COMPLETE:
            assert len(history) == 3 and "trial_value" in r.data.metrics
        else:
            assert r.data.metrics["folds_done"] < 3 and "trial_value" not in r.data.metrics
    best = max(
        (r for r in trials if "trial_value" in r.data.metrics), key=lambda r: r.data.metrics["trial_value"]
    )
    assert parent.data.metrics["tuning_best_value"] == pytest.approx(best.data.metrics["trial_value"])
    assert parent.data.metrics["tuning_best_trial"] == int(best.data.tags[tuning.TAG_TRIAL_NUMBER])
    # The best trial's parameters, with early-stopped rounds, are what the run refitted.
    tuned = {k.split(".", 1)[1]: v for k, v in parent.data.params.items() if k.startswith("best_params.")}
    assert tuned["n_estimators"] == str(int(best.data.metrics["n_estimators_effective"]))
    assert tuned["num_leaves"] == best.data.params["num_leaves"]

    model = mlflow.pyfunc.load_model(outcome.model_uri)
    dataset = instantiate(cfg.data)
    out = model.predict(dataset.X.iloc[:25])
    assert list(out.columns) == ["decision", "probability"] and len(out) == 25
    assert set(out["decision"].unique()) <= {0, 1}


def test_failing_trials_are_recorded_and_stop_the_run_with_a_clear_error(tracking_uri: str) -> None:
    cfg = compose_config(
        *TUNE,
        "tuning.n_trials=6",
        "+model.search_space.boosting_type={type: categorical, choices: [no_such_booster]}",
        f"tracking.uri={tracking_uri}",
        "tracking.experiment=tune",
    )
    with pytest.raises(ImblabError, match=r"3 trials in a row failed.*no_such_booster"):
        runner.run_experiment(cfg)
    client = MlflowClient(tracking_uri)
    (run,) = client.search_runs(
        [client.get_experiment_by_name("tune").experiment_id], "tags.`imblab.role` = 'run'"
    )
    assert run.info.status == "FAILED"
    trials = _trial_runs(tracking_uri, run.info.run_id)
    assert len(trials) == 3
    assert {r.info.status for r in trials} == {"FAILED"}
    assert {r.data.tags[tuning.TAG_TRIAL_STATE] for r in trials} == {"FAIL"}
    assert all("no_such_booster" in r.data.tags["imblab.error"] for r in trials)


# --------------------------------------------------------------------------------------------------
# Resume, reaping and the n_trials budget
# --------------------------------------------------------------------------------------------------


def test_a_resumed_study_continues_its_trial_count(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    common = (f"tuning.storage={storage}", "tuning.study_name=resume")
    cfg, dataset, split = _setup(*common, "tuning.n_trials=3")
    first = tuning.tune(dataset, split, cfg)
    assert len(_load(storage, "resume").trials) == 3

    cfg, dataset, split = _setup(*common, "tuning.n_trials=5")
    second = tuning.tune(dataset, split, cfg)
    study = _load(storage, "resume")
    assert [t.number for t in study.trials] == [0, 1, 2, 3, 4]
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in study.trials)
    # The resumed sampler did not replay the first run's random start-up trials.
    assert study.trials[3].params != study.trials[0].params
    assert set(first) == set(second)

    again = tuning.tune(dataset, split, cfg)  # the study is full: no new trial, same best
    assert len(_load(storage, "resume").trials) == 5 and again == second


def test_trials_of_dead_workers_are_failed_and_running_ones_fill_the_budget(tmp_path: Path) -> None:
    storage = f"journal:{tmp_path / 'optuna.log'}"
    cfg, dataset, split = _setup(f"tuning.storage={storage}", "tuning.study_name=shared", "tuning.n_trials=2")
    session = tuning.open_session(dataset, cfg)
    host = socket.gethostname()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    for worker in (f"{host}:{dead.pid}", f"{host}:1", f"{host}:1"):  # pid 1 is alive: a live worker
        trial = session.study.ask()
        trial.set_user_attr(tuning.ATTR_WORKER, worker)
    # Opening the study again reaps the dead worker's trial; the two live RUNNING ones fill n_trials=2.
    session = tuning.open_session(dataset, cfg)
    assert [t.state for t in session.study.trials] == [
        TrialState.FAIL,
        TrialState.RUNNING,
        TrialState.RUNNING,
    ]
    assert tuning.run_trials(session, dataset, split, cfg, None) == 0
    last = session.study.trials[-1]
    assert last.state == TrialState.FAIL and last.user_attrs[tuning.ATTR_SURPLUS] is True


# --------------------------------------------------------------------------------------------------
# Pruning reports, threads, other models and metrics
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("pruner", ["wilcoxon", "median", "percentile", "none"])
def test_each_fold_is_reported_to_the_pruner(pruner: str) -> None:
    cfg, dataset, split = _setup(f"tuning.pruner={pruner}", "tuning.n_trials=4")
    session = tuning.open_session(dataset, cfg)
    tuning.run_trials(session, dataset, split, cfg, None)
    expected_pruner = {
        "wilcoxon": optuna.pruners.WilcoxonPruner,
        "median": optuna.pruners.MedianPruner,
        "percentile": optuna.pruners.PercentilePruner,
    }
    assert isinstance(session.study.pruner, expected_pruner.get(pruner, optuna.pruners.NopPruner))
    for trial in session.study.trials:
        scores = trial.user_attrs[tuning.ATTR_FOLD_SCORES]
        reported = [trial.intermediate_values[k] for k in range(len(scores))]
        if pruner in ("median", "percentile"):  # running mean: what they compare across trials
            assert reported == pytest.approx(np.cumsum(scores) / np.arange(1, len(scores) + 1))
        else:  # the fold's own score at step = fold index: what WilcoxonPruner pairs
            assert reported == pytest.approx(scores)
        if trial.state == TrialState.COMPLETE:
            assert trial.value == pytest.approx(np.mean(scores)) and len(scores) == 3


def test_a_seeded_single_threaded_study_is_reproducible() -> None:
    cfg, dataset, split = _setup("tuning.n_trials=4")
    assert tuning.tune(dataset, split, cfg) == tuning.tune(dataset, split, cfg)


def test_parallel_threads_and_a_non_lightgbm_model_tune() -> None:
    cfg, dataset, split = _setup("tuning.n_jobs=2", "tuning.n_trials=4")
    assert set(tuning.tune(dataset, split, cfg)) == set(cfg.model.search_space)

    cfg = compose_config(
        *FAST[:-3], "model=logreg", "tuning=optuna", "tuning.n_trials=3", "tuning.progress_bar=false"
    )
    dataset = instantiate(cfg.data)
    params = tuning.tune(dataset, holdout_split(dataset, cfg.split), cfg)
    assert set(params) == {"C"} and 1e-4 <= params["C"] <= 100


def test_a_threshold_metric_is_minimised_at_the_policys_threshold() -> None:
    cfg, dataset, split = _setup("tuning.metric=expected_cost", "threshold=min_cost", "tuning.n_trials=3")
    session = tuning.open_session(dataset, cfg)
    assert session.direction == "minimize"
    tuning.run_trials(session, dataset, split, cfg, None)
    assert session.study.direction == optuna.study.StudyDirection.MINIMIZE
    assert all(0 <= t.value <= 5 for t in session.study.trials if t.state == TrialState.COMPLETE)


# --------------------------------------------------------------------------------------------------
# The fast path is the run's pipeline; early stopping never uses a row's own label
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("sampler", ["smote", "class_weight", "smote_enn"])
def test_cached_folds_and_lightgbm_datasets_reproduce_the_pipeline(sampler: str) -> None:
    cfg, dataset, split = _setup(
        f"sampler={sampler}", "data.missing_rate=0.05", "tuning.early_stopping.enabled=false"
    )
    specs = tuning.parse_search_space(cfg.model.search_space, cfg.model)
    assert tuning.LightGBMTrainer.applies(cfg, specs)
    trainer = tuning.LightGBMTrainer(cfg, tuning.prepare_folds(dataset, split, cfg, False), None)
    X, y = dataset.X.iloc[split.train], dataset.y.to_numpy()[split.train]
    for params in (
        {"num_leaves": 20, "min_child_samples": 15, "n_estimators": 30},
        {"min_child_samples": 40},
    ):
        pipeline = build_pipeline(cfg, params)
        for k, (tr, va) in enumerate(cv_folds(y, cfg.cv)):
            expected = clone(pipeline).fit(X.iloc[tr], y[tr]).predict_proba(X.iloc[va])[:, 1]
            proba, rounds = trainer.fit_predict(k, params)
            np.testing.assert_allclose(proba, expected, rtol=0, atol=1e-12)
            assert rounds is None


def test_early_stopping_scores_each_half_at_the_iteration_chosen_on_the_other() -> None:
    cfg, dataset, split = _setup("data.n_samples=1200", "model.estimator.n_estimators=300")
    folds = tuning.prepare_folds(dataset, split, cfg, True)
    params = {"n_estimators": 300, "learning_rate": 0.3}
    proba, rounds = tuning.LightGBMTrainer(cfg, folds, cfg.tuning.early_stopping).fit_predict(0, params)
    assert rounds is not None and rounds < 300  # stopped early
    # Scramble the labels of half A: the scores of A's rows must not move (their iteration was
    # chosen on B); B's rows may, since A's labels chose theirs.
    a, _ = folds[0].halves  # type: ignore[misc]
    rng = np.random.default_rng(0)
    scrambled = folds[0].y_val.copy()
    scrambled[a] = rng.permutation(scrambled[a])
    scrambled[a[:3]] = 1 - scrambled[a[:3]]
    changed = [
        tuning.Fold(f.X_fit, f.y_fit, f.X_val, scrambled if i == 0 else f.y_val, f.halves)
        for i, f in enumerate(folds)
    ]
    again, _ = tuning.LightGBMTrainer(cfg, changed, cfg.tuning.early_stopping).fit_predict(0, params)
    np.testing.assert_array_equal(again[a], proba[a])


# --------------------------------------------------------------------------------------------------
# Bad input: a clear error before any trial runs
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["tuning.metric=pr_aux"], r"unknown tuning.metric='pr_aux'; use one of \[.*'pr_auc'"),
        (["tuning.metric=threshold"], "not a quality measure"),
        (["tuning.direction=up"], "tuning.direction must be maximize, minimize or null"),
        (["tuning.pruner=hyperband"], "tuning.pruner must be one of"),
        (["tuning.percentile_pruner.percentile=120"], "tuning.percentile_pruner: .*percentile"),
        (["tuning.n_trials=0"], "tuning.n_trials must be a whole number >= 1"),
        (["model.search_space.num_leaves.low=32", "model.search_space.num_leaves.high=32"], "empty range"),
        (["model.search_space.num_leaves.low=64", "model.search_space.num_leaves.high=16"], "inverted range"),
        (["model.search_space.reg_alpha.low=0"], "log range needs low > 0"),
        (["model.search_space.max_depth.type=integer"], "type must be int, float or categorical"),
        (["+model.search_space.num_leavs={type: int, low: 2, high: 8}"], "has no parameter 'num_leavs'"),
        (["~model.search_space"], "is empty: there is nothing to tune"),
        (["tuning.storage=optuna.db"], "is not a storage URL"),
        (["tuning.storage=nosuchdb://host/x"], "cannot open the Optuna storage nosuchdb://host/x"),
        (["tuning.storage=postgresql://imblab:s3cret@127.0.0.1:9/optuna"], "cannot open the Optuna storage"),
    ],
)
def test_bad_tuning_input_fails_before_any_trial(overrides: list[str], message: str) -> None:
    cfg, dataset, split = _setup(*overrides)
    with pytest.raises(ImblabError, match=message) as info:
        tuning.tune(dataset, split, cfg)
    assert "s3cret" not in str(info.value)


def test_unopenable_storage_paths_fail_clearly(tmp_path: Path) -> None:
    for url in (f"sqlite:///{tmp_path}", f"journal:{tmp_path}"):  # directories, not files
        cfg, dataset, split = _setup(f"tuning.storage={url}")
        with pytest.raises(ImblabError, match=r"cannot open the Optuna storage .* is a directory"):
            tuning.tune(dataset, split, cfg)


def test_an_existing_study_with_another_direction_or_setup_is_refused(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    common = (f"tuning.storage={storage}", "tuning.study_name=s", "tuning.n_trials=2")
    cfg, dataset, split = _setup(*common)
    tuning.tune(dataset, split, cfg)
    cases = [
        (
            ["tuning.metric=brier"],
            r"created to maximize \(pr_auc\), but tuning.metric=brier needs to minimize",
        ),
        (["sampler=random_over"], r"different setup \(differs in: sampler\)"),
        (["model.search_space.num_leaves.high=64"], r"different setup \(differs in: search_space\)"),
        (["data.n_samples=700"], r"different setup \(differs in: data\)"),
    ]
    for overrides, message in cases:
        cfg, dataset, split = _setup(*common, *overrides)
        with pytest.raises(ImblabError, match=message):
            tuning.tune(dataset, split, cfg)
    assert len(_load(storage, "s").trials) == 2  # nothing ran


def test_a_bad_tuning_config_fails_the_run_without_trials(tracking_uri: str) -> None:
    cfg = compose_config(
        *TUNE, "tuning.metric=nope", f"tracking.uri={tracking_uri}", "tracking.experiment=bad"
    )
    with pytest.raises(ImblabError, match=r"unknown tuning\.metric"):
        runner.run_experiment(cfg)
    client = MlflowClient(tracking_uri)
    runs = client.search_runs([client.get_experiment_by_name("bad").experiment_id])
    assert [r.info.status for r in runs] == ["FAILED"]  # the run itself, no trial runs


# --------------------------------------------------------------------------------------------------
# The CLI: imblab train / imblab tune-worker as real processes
# --------------------------------------------------------------------------------------------------


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("MLFLOW_TRACKING_URI", None)
    return env


def test_cli_bad_input_exits_2_with_a_clear_message(tracking_uri: str) -> None:
    args = [*TUNE, f"tracking.uri={tracking_uri}"]
    commands = {  # run side by side: each process spends seconds importing
        "train": [*IMBLAB, "train", *args, "tuning.metric=nope"],
        "tune-worker": [*IMBLAB, "tune-worker", *args],
    }
    procs = {
        name: subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
        for name, cmd in commands.items()
    }
    errors = {name: proc.communicate(timeout=120)[1] for name, proc in procs.items()}
    assert {name: proc.returncode for name, proc in procs.items()} == {"train": 2, "tune-worker": 2}, errors
    assert "imblab: error: unknown tuning.metric='nope'" in errors["train"]
    assert "imblab: error: tune-worker joins a shared study: set tuning.storage" in errors["tune-worker"]


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["journal", "sqlite"])
def test_two_worker_processes_share_one_study(kind: str, tmp_path: Path, tracking_uri: str) -> None:
    storage = (
        f"journal:{tmp_path / 'optuna.log'}" if kind == "journal" else f"sqlite:///{tmp_path / 'optuna.db'}"
    )
    # Trials of ~0.5 s (no early stopping or pruning to cut them short), so neither worker can
    # finish the study before the other has started.
    args = [
        *TUNE,
        "data.n_samples=2000",
        "model.search_space.n_estimators.low=300",
        "model.search_space.n_estimators.high=500",
        "tuning.early_stopping.enabled=false",
        "tuning.pruner=none",
        "tuning.n_trials=16",
        f"tuning.storage={storage}",
        "tuning.study_name=shared",
        f"tracking.uri={tracking_uri}",
        "tracking.experiment=workers",
    ]
    # Create the MLflow store first: two processes migrating one fresh SQLite file race in MLflow.
    ensure_experiment("workers", use_tracking(tracking_uri))
    workers = [
        subprocess.Popen(
            [*IMBLAB, "tune-worker", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=_env(),
        )
        for _ in range(2)
    ]
    outputs = [w.communicate(timeout=300)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs

    study = _load(storage, "shared")
    numbers = [t.number for t in study.trials]
    assert len(numbers) == len(set(numbers)) == numbers[-1] + 1  # no duplicate or missing trial numbers
    finished = [t for t in study.trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(finished) == 16
    assert not [t for t in study.trials if t.state == TrialState.RUNNING]
    assert len({t.user_attrs[tuning.ATTR_WORKER] for t in finished}) == 2, outputs  # both did work

    client = MlflowClient(tracking_uri)
    exp = client.get_experiment_by_name("workers").experiment_id
    parents = client.search_runs([exp], "tags.`imblab.role` = 'tune-worker'")
    assert len(parents) == 2 and {p.info.status for p in parents} == {"FINISHED"}
    assert {p.data.tags[tuning.TAG_STUDY] for p in parents} == {"shared"}
    trial_runs = [r for p in parents for r in _trial_runs(tracking_uri, p.info.run_id)]
    logged = sorted(int(r.data.tags[tuning.TAG_TRIAL_NUMBER]) for r in trial_runs)
    assert logged == sorted(t.number for t in study.trials if not t.user_attrs.get(tuning.ATTR_SURPLUS))


@pytest.mark.slow
def test_cli_train_resumes_a_study_and_logs_a_frozen_model(tmp_path: Path, tracking_uri: str) -> None:
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    args = [
        *TUNE,
        f"tuning.storage={storage}",
        "tuning.study_name=cli",
        f"tracking.uri={tracking_uri}",
        "tracking.experiment=cli",
    ]
    for n in (2, 4):
        done = subprocess.run(
            [*IMBLAB, "train", *args, f"tuning.n_trials={n}"], capture_output=True, text=True, env=_env()
        )
        assert done.returncode == 0, done.stderr
    assert len(_load(storage, "cli").trials) == 4
    client = MlflowClient(tracking_uri)
    runs = client.search_runs(
        [client.get_experiment_by_name("cli").experiment_id], "tags.`imblab.role` = 'run'"
    )
    assert [len(_trial_runs(tracking_uri, r.info.run_id)) for r in runs] == [2, 2]  # newest first
    newest = runs[0]
    assert newest.data.metrics["tuning_trials_run_here"] == 2
    assert newest.data.metrics["tuning_n_complete"] + newest.data.metrics["tuning_n_pruned"] == 4
    use_tracking(tracking_uri)
    model = mlflow.pyfunc.load_model(f"runs:/{newest.info.run_id}/model")
    frame = pd.DataFrame(np.zeros((3, 12)), columns=[f"x{i}" for i in range(12)])
    frame.columns = model.metadata.metadata["feature_names"]
    assert len(model.predict(frame)) == 3
