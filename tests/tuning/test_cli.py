"""The CLI: imblab train / imblab tune-worker as real processes."""

from __future__ import annotations

import subprocess
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from imblab.tracking.layout import TAG_STUDY, TAG_TRIAL_NUMBER
from imblab.tracking.store import use_tracking
from imblab.tuning.attrs import ATTR_SURPLUS, ATTR_WORKER
from tests.support.processes import spawn, stopped_at_exit
from tests.tuning.common import IMBLAB, TUNE, env, load_study, trial_runs


def test_cli_bad_input_exits_2_with_a_clear_message(tracking_uri: str) -> None:
    args = [*TUNE, f"tracking.uri={tracking_uri}"]
    commands = {  # run side by side: each process spends seconds importing
        "train": [*IMBLAB, "train", *args, "tuning.metric=nope"],
        "tune-worker": [*IMBLAB, "tune-worker", *args],
    }
    procs = {
        name: spawn(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env())
        for name, cmd in commands.items()
    }
    with stopped_at_exit(*procs.values()):
        errors = {name: proc.communicate(timeout=120)[1] for name, proc in procs.items()}
    assert {name: proc.returncode for name, proc in procs.items()} == {"train": 2, "tune-worker": 2}, errors
    assert "imblab: error: unknown tuning.metric='nope'" in errors["train"]
    assert "imblab: error: tune-worker joins a shared study: set tuning.storage" in errors["tune-worker"]


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["journal", "sqlite"])
def test_two_worker_processes_share_one_study(kind: str, tmp_path: Path) -> None:
    storage = (
        f"journal:{tmp_path / 'optuna.log'}" if kind == "journal" else f"sqlite:///{tmp_path / 'optuna.db'}"
    )
    # Both workers are the first users of a new MLflow store: imblab creates it (and the experiment)
    # once, under its file lock, however they interleave.
    tracking_uri = f"sqlite:///{tmp_path / 'new-store' / 'mlflow.db'}"
    # Trials of ~0.5 s (no early stopping or pruning to cut them short), so neither worker can
    # finish the study before the other has started.
    args = [
        *TUNE,
        "data.n_samples=2000",
        "model.search_space.n_estimators.low=300",
        "model.search_space.n_estimators.high=500",
        "tuning.early_stopping.enabled=false",
        "tuning/pruner=none",
        "tuning.n_trials=16",
        f"tuning.storage={storage}",
        "tuning.study_name=shared",
        f"tracking.uri={tracking_uri}",
        "tracking.experiment=workers",
    ]
    workers = [
        spawn(
            [*IMBLAB, "tune-worker", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env(),
        )
        for _ in range(2)
    ]
    with stopped_at_exit(*workers):
        outputs = [w.communicate(timeout=300)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs

    study = load_study(storage, "shared")
    numbers = [t.number for t in study.trials]
    assert len(numbers) == len(set(numbers)) == numbers[-1] + 1  # no duplicate or missing trial numbers
    finished = [t for t in study.trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(finished) == 16
    assert not [t for t in study.trials if t.state == TrialState.RUNNING]
    assert len({t.user_attrs[ATTR_WORKER] for t in finished}) == 2, outputs  # both did work

    client = MlflowClient(tracking_uri)
    exp = client.get_experiment_by_name("workers").experiment_id
    parents = client.search_runs([exp], "tags.`imblab.role` = 'tune-worker'")
    assert len(parents) == 2 and {p.info.status for p in parents} == {"FINISHED"}
    assert {p.data.tags[TAG_STUDY] for p in parents} == {"shared"}
    trial_runs_ = [r for p in parents for r in trial_runs(tracking_uri, p.info.run_id)]
    logged = sorted(int(r.data.tags[TAG_TRIAL_NUMBER]) for r in trial_runs_)
    assert logged == sorted(t.number for t in study.trials if not t.user_attrs.get(ATTR_SURPLUS))


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
            [*IMBLAB, "train", *args, f"tuning.n_trials={n}"], capture_output=True, text=True, env=env()
        )
        assert done.returncode == 0, done.stderr
    assert len(load_study(storage, "cli").trials) == 4
    client = MlflowClient(tracking_uri)
    runs = client.search_runs(
        [client.get_experiment_by_name("cli").experiment_id], "tags.`imblab.role` = 'run'"
    )
    assert [len(trial_runs(tracking_uri, r.info.run_id)) for r in runs] == [2, 2]  # newest first
    newest = runs[0]
    assert newest.data.metrics["tuning_trials_run_here"] == 2
    assert newest.data.metrics["tuning_n_complete"] + newest.data.metrics["tuning_n_pruned"] == 4
    use_tracking(tracking_uri)
    model = mlflow.pyfunc.load_model(f"runs:/{newest.info.run_id}/model")
    frame = pd.DataFrame(np.zeros((3, 12)), columns=[f"x{i}" for i in range(12)])
    frame.columns = model.metadata.metadata["feature_names"]
    assert len(model.predict(frame)) == 3
