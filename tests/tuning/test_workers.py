"""A worker killed mid-trial: its trial is failed and queued again, its MLflow trial run ends KILLED.

A real worker process (a small script on the imblab API) runs one trial that never ends, on a SQLite
study with heartbeats; it is SIGKILLed while its trial run is RUNNING. Its trial is then found either by
its stale heartbeat (as for a worker on another machine) or because its process is gone (this machine).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from imblab.tracking.layout import TAG_KILLED, TAG_TRIAL_STATE
from imblab.tuning.attrs import ATTR_TRIAL_RUN
from imblab.tuning.storage import open_storage
from imblab.tuning.workers import StaleTrials, reap_dead_trials, retried_from
from tests.support.processes import spawn, stop_group
from tests.tuning.common import env

WORKER = """
import sys, time
import optuna
from imblab.tracking.trials import TrialLogger
from imblab.tuning.attrs import ATTR_WORKER
from imblab.tuning.storage import open_storage
from imblab.tuning.trial_runs import TrialRuns
from imblab.tuning.workers import worker_id

storage_url, tracking_uri, experiment_id, parent, where = sys.argv[1:]
study = optuna.load_study(study_name="s", storage=open_storage(storage_url, heartbeat_interval=1))
runs = TrialRuns(TrialLogger(tracking_uri, experiment_id, parent, "s", "pr_auc"))

def objective(trial):
    trial.suggest_float("x", 0.0, 1.0)
    trial.set_user_attr(ATTR_WORKER, worker_id() if where == "here" else "another-machine:1")
    runs.start(trial)
    print("running", flush=True)
    time.sleep(600)

study.optimize(objective, n_trials=1, callbacks=[runs])
"""


@pytest.mark.parametrize("where", ["here", "elsewhere"])
def test_a_killed_workers_trial_is_retried_and_its_run_ends_killed(
    tmp_path: Path, tracking_uri: str, where: str
) -> None:
    storage_url = f"sqlite:///{tmp_path / 'optuna.db'}"
    optuna.create_study(study_name="s", storage=storage_url)
    client = MlflowClient(tracking_uri)
    experiment_id = client.create_experiment("w")
    parent = client.create_run(experiment_id).info.run_id
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    argv = [sys.executable, str(script), storage_url, tracking_uri, experiment_id, parent, where]
    worker = spawn(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env())
    try:
        line = worker.stdout.readline() if worker.stdout else ""
        assert line.strip() == "running", worker.stderr.read() if worker.stderr else ""
    finally:
        os.killpg(worker.pid, signal.SIGKILL)  # no handler runs, nothing is cleaned up
        stop_group(worker)
    on_stale = StaleTrials(retries=1)
    on_stale.tracking_uri = tracking_uri
    study = optuna.load_study(
        study_name="s",
        storage=open_storage(storage_url, heartbeat_interval=1, grace_period=2, on_stale=on_stale),
    )
    run_id = study.trials[0].user_attrs[ATTR_TRIAL_RUN]
    assert client.get_run(run_id).info.status == "RUNNING"  # opened as the trial started, left by the dead

    if where == "elsewhere":  # another machine's pid cannot be checked: only the heartbeat tells
        assert reap_dead_trials(study, on_stale) == 0 and study.trials[0].state == TrialState.RUNNING
        time.sleep(3.5)  # > grace_period since the last beat
    reap_dead_trials(study, on_stale)

    trials = study.trials
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.WAITING]
    assert retried_from(trials[1]) == 0 and trials[1].params == trials[0].params
    run = client.get_run(run_id)
    assert run.info.status == "KILLED" and run.data.tags[TAG_TRIAL_STATE] == "FAIL"
    reason = "stopped beating (Optuna heartbeat)" if where == "elsewhere" else "worker process"
    assert reason in run.data.tags[TAG_KILLED]
    # A second look changes nothing: the trial is failed and retried once, its run ended once.
    reap_dead_trials(study, on_stale)
    assert len(study.trials) == 2 and client.get_run(run_id).info.end_time == run.info.end_time
