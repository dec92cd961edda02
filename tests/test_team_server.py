"""imblab at team scale, on real servers: PostgreSQL 15, an S3-compatible server (moto) and an MLflow
tracking server with its artifacts in the S3 bucket, all on loopback (``tests/support/team.py``).

Every command runs as a real ``imblab`` subprocess whose only link to the stack is what a team member
has: ``MLFLOW_TRACKING_URI`` and ``PGPASSFILE`` (no password on any command line).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import optuna
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState
from sqlalchemy.engine import make_url

from imblab.tracking.layout import TAG_KILLED, TAG_TRIAL_NUMBER, TAG_WORKER_RUN
from imblab.tracking.sweeps import SWEEP_FILE
from imblab.tuning.attrs import ATTR_RUN_ID, ATTR_TRIAL_RUN, ATTR_WORKER
from imblab.tuning.storage import open_storage
from imblab.tuning.workers import retried_from
from tests.conftest import FAST
from tests.support.cli import imblab, runs_of
from tests.support.processes import spawn, stop_group, stopped_at_exit
from tests.support.serving import free_port, payload
from tests.support.team import Team, postgres_available, team_stack
from tests.test_notebook import execute_notebook, output_text
from tests.tuning.common import IMBLAB, TUNE

pytestmark = [
    pytest.mark.slow,
    # CI's machine image has PostgreSQL: there a missing server fails the fixture instead of skipping.
    pytest.mark.skipif(
        not postgres_available() and not os.environ.get("CI"),
        reason="PostgreSQL server binaries are not installed (imblab team-server needs them)",
    ),
]
# Trials of about a second (no early stopping or pruning to cut them short), so that two processes
# share the study and a worker can be caught mid-trial.
SLOW_TRIALS = (
    *TUNE,
    "data.n_samples=2000",
    "model.search_space.n_estimators.low=300",
    "model.search_space.n_estimators.high=500",
    "tuning.early_stopping.enabled=false",
    "tuning/pruner=none",
)
FEATURES = [f"x{j:02d}" for j in range(12)]  # FAST's synthetic data


@pytest.fixture(scope="session")
def team() -> Iterator[Team]:
    with team_stack() as stack:
        yield stack


def run_ok(*args: str, cwd: Path, team: Team, timeout: int = 900) -> subprocess.CompletedProcess:
    done = imblab(*args, cwd=cwd, env=team.env(), timeout=timeout)
    assert done.returncode == 0, done.stderr[-4000:]
    return done


def load_study(team: Team, name: str) -> optuna.Study:
    os.environ["PGPASSFILE"] = team.pgpassfile  # this process reads the study too
    return optuna.load_study(study_name=name, storage=open_storage(team.storage))


def sweep_runs(team: Team, experiment: str) -> tuple[object, list]:
    runs = runs_of(team.tracking_uri, experiment)
    parents = [r for r in runs if r.data.tags.get("imblab.role") == "sweep"]
    children = [r for r in runs if r.data.tags.get("imblab.role") == "run"]
    assert len(parents) == 1
    return parents[0], children


# --------------------------------------------------------------------------------------------------
# A joblib sweep, then compare (cached), promote, set-threshold, predict, serve and the notebook
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sweep(team: Team, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A 2x2 joblib sweep on the server; its parent run id."""
    cwd = tmp_path_factory.mktemp("team-sweep")
    run_ok(
        "train", "-m", *[o for o in FAST if not o.startswith("sampler=")],
        "sampler=none,smote", "threshold=fixed,best_f1", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
        "tracking.experiment=team-sweep", cwd=cwd, team=team,
    )  # fmt: skip
    parent, children = sweep_runs(team, "team-sweep")
    assert parent.info.status == "FINISHED" and parent.data.tags["imblab.n_children"] == "4"
    assert len(children) == 4 and {c.info.status for c in children} == {"FINISHED"}
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parent.info.run_id}
    assert {c.info.artifact_uri.split(":")[0] for c in children} == {"mlflow-artifacts"}  # via the server
    return str(parent.info.run_id)


def test_joblib_sweep_artifacts_are_in_the_bucket(team: Team, sweep: str) -> None:
    _, children = sweep_runs(team, "team-sweep")
    keys = team.bucket_keys()
    for child in children:
        assert any(k.endswith(f"{child.info.run_id}/artifacts/scores/test_scores.parquet") for k in keys)
    assert not (team.root / "artifacts").exists()  # nothing went to the local default


def test_compare_downloads_each_runs_scores_once(team: Team, sweep: str, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    env = {**team.env(), "IMBLAB_CACHE_DIR": str(cache)}
    args = ["compare", "--experiment", "team-sweep", "--n-boot", "200", "--no-log"]
    first = imblab(*args, cwd=tmp_path, env=env, timeout=600)
    assert first.returncode == 0, first.stderr[-3000:]
    report = tmp_path / "reports" / f"team-sweep-{sweep}" / "comparison.csv"
    table = report.read_text()
    _, children = sweep_runs(team, "team-sweep")
    assert sorted(p.name for p in (cache / "artifacts").iterdir()) == sorted(c.info.run_id for c in children)
    # With the scores gone from the server, a second compare still works: it reads the cache only.
    scores = [k for k in team.bucket_keys() if "/artifacts/scores/" in k or k.endswith("threshold.json")]
    scores = [k for k in scores if any(c.info.run_id in k for c in children)]
    assert len(scores) == 4 * 4  # oof, test, cv folds, threshold.json per run
    team.delete_keys(scores)
    report.unlink()
    second = imblab(*args, cwd=tmp_path, env=env, timeout=600)
    assert second.returncode == 0, second.stderr[-3000:]
    assert report.read_text() == table
    # Without the cache, the missing scores are a clear error, not a crash.
    third = imblab(*args, cwd=tmp_path, env={**env, "IMBLAB_CACHE_DIR": str(tmp_path / "empty")}, timeout=600)
    assert third.returncode == 2 and "imblab: error:" in third.stderr


@pytest.fixture(scope="module")
def promoted(team: Team, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A second small sweep (scores intact) promoted to models:/team-defects@champion."""
    cwd = tmp_path_factory.mktemp("team-promote")
    run_ok(
        "train",
        "-m",
        *FAST,
        "threshold=fixed,best_f1",
        "tracking.experiment=team-promote",
        cwd=cwd,
        team=team,
    )
    run_ok("promote", "--experiment", "team-promote", "--model-name", "team-defects", cwd=cwd, team=team)
    return cwd


def test_promote_registers_a_model_whose_files_are_in_the_bucket(team: Team, promoted: Path) -> None:
    client = MlflowClient(team.tracking_uri)
    version = client.get_model_version_by_alias("team-defects", "champion")
    where = client.get_model_version_download_uri("team-defects", version.version)
    scheme, _, path = where.partition(":/")
    assert scheme == "mlflow-artifacts"  # served by the tracking server, which keeps it in the bucket
    assert f"artifacts/{path.strip('/')}/MLmodel" in team.bucket_keys()


def test_set_threshold_and_predict_through_the_server(team: Team, promoted: Path) -> None:
    run_ok(
        "set-threshold", "models:/team-defects@champion", "--policy", "min_cost", "--cost-fn", "20",
        "--cost-fp", "1", "--alias", "staging", cwd=promoted, team=team,
    )  # fmt: skip
    client = MlflowClient(team.tracking_uri)
    staging = client.get_model_version_by_alias("team-defects", "staging")
    champion = client.get_model_version_by_alias("team-defects", "champion")
    assert int(staging.version) == int(champion.version) + 1
    lots = pd.DataFrame([[0.1 * (i + j) for i in range(12)] for j in range(5)], columns=FEATURES)
    lots.insert(0, "lot_id", range(5))
    lots.to_csv(promoted / "lots.csv", index=False)
    run_ok("predict", "models:/team-defects@staging", "lots.csv", "-o", "scored.csv", cwd=promoted, team=team)
    scored = pd.read_csv(promoted / "scored.csv")
    assert list(scored["lot_id"]) == list(range(5)) and {"decision", "probability"} <= set(scored.columns)


def test_serve_the_champion_from_the_servers_registry(team: Team, promoted: Path) -> None:
    port = free_port()
    server = spawn(
        [*IMBLAB, "serve", "models:/team-defects@champion", "--port", str(port), "--no-access-log"],
        cwd=promoted, env={**os.environ, **team.env()}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    with stopped_at_exit(server):
        frame = pd.DataFrame([[0.0] * 12], columns=FEATURES)
        deadline = time.monotonic() + 300
        while True:
            assert server.poll() is None, server.stderr.read() if server.stderr else ""
            try:
                request = urllib.request.Request(
                    f"http://127.0.0.1:{port}/invocations",
                    data=payload(frame),
                    headers={"Content-Type": "application/json"},
                )
                with urllib.request.urlopen(request, timeout=10) as resp:
                    body = json.loads(resp.read())
                break
            except OSError:
                assert time.monotonic() < deadline, "imblab serve did not answer"
                time.sleep(0.5)
    assert set(body["predictions"][0]) == {"decision", "probability"}


def test_the_notebook_reads_a_sweep_from_the_server(
    team: Team, promoted: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PGPASSFILE", team.pgpassfile)
    text = output_text(execute_notebook(tmp_path, monkeypatch, team.tracking_uri, "team-promote"))
    assert "smote × lgbm × best_f1" in text and "p_beats_best" in text


# --------------------------------------------------------------------------------------------------
# Launchers that run jobs in other processes (and, on a cluster, other machines)
# --------------------------------------------------------------------------------------------------


def test_submitit_local_sweep_nests_both_jobs_under_one_parent(team: Team, tmp_path: Path) -> None:
    run_ok(
        "train", "-m", *FAST, "threshold=fixed,best_f1", "hydra/launcher=submitit_local",
        "hydra.launcher.timeout_min=20", "tracking.experiment=team-submitit", cwd=tmp_path, team=team,
    )  # fmt: skip
    parent, children = sweep_runs(team, "team-submitit")
    assert parent.info.status == "FINISHED" and len(children) == 2
    assert {c.info.status for c in children} == {"FINISHED"}
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parent.info.run_id}
    # Each job ran in a process of its own, started by submitit, and the sweep directory records the
    # parent for jobs that do not inherit the environment (other machines).
    [record] = list((tmp_path / "multirun").glob(f"*/*/{SWEEP_FILE}"))
    expected = {"parent_run_id": parent.info.run_id, "swept_keys": ["threshold"]}
    assert json.loads(record.read_text()) == expected
    assert len(list(record.parent.glob(".submitit/*/*_result.pkl"))) == 2


# --------------------------------------------------------------------------------------------------
# Optuna on the PostgreSQL study storage: a run and a tune-worker; a worker killed mid-trial
# --------------------------------------------------------------------------------------------------


def wait_for(condition: object, what: str, timeout: float = 600.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def start_tuning(team: Team, cwd: Path, study: str, experiment: str, *extra: str) -> tuple:
    """``imblab train`` tuning on the PostgreSQL study, then (once the study has its training run) one
    ``imblab tune-worker``; both running."""
    args = [*SLOW_TRIALS, f"tuning.storage={team.storage}", f"tuning.study_name={study}",
            f"tracking.experiment={experiment}", *extra]  # fmt: skip
    env = {**os.environ, **team.env()}
    out = {"stdout": subprocess.PIPE, "stderr": subprocess.STDOUT, "text": True, "cwd": cwd, "env": env}
    train = spawn([*IMBLAB, "train", *args], **out)
    try:
        wait_for(lambda: _has_run(team, study) or train.poll() is not None, "the study's training run")
        assert train.poll() is None, train.communicate()[0][-3000:]
        worker = spawn([*IMBLAB, "tune-worker", *args], **out)
    except BaseException:
        stop_group(train)
        raise
    return train, worker


def _has_run(team: Team, study: str) -> bool:
    try:
        return ATTR_RUN_ID in load_study(team, study).user_attrs
    except KeyError:  # not created yet
        return False


def test_a_run_and_a_tune_worker_share_a_postgresql_study(team: Team, tmp_path: Path) -> None:
    train, worker = start_tuning(team, tmp_path, "shared-12", "team-tune", "tuning.n_trials=12")
    with stopped_at_exit(train, worker):
        outputs = [p.communicate(timeout=900)[0] for p in (train, worker)]
    assert [train.returncode, worker.returncode] == [0, 0], [o[-3000:] for o in outputs]

    study = load_study(team, "shared-12")
    finished = [t for t in study.trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(finished) == 12 and not [t for t in study.trials if t.state == TrialState.RUNNING]
    assert len({t.user_attrs[ATTR_WORKER] for t in finished}) == 2, outputs  # both did work
    runs = runs_of(team.tracking_uri, "team-tune")
    assert not [r for r in runs if r.info.status == "RUNNING"]
    [run] = [r for r in runs if r.data.tags.get("imblab.role") == "run"]
    [worker_run] = [r for r in runs if r.data.tags.get("imblab.role") == "tune-worker"]
    trials = [r for r in runs if r.data.tags.get("imblab.role") == "trial"]
    # Every trial is a nested run of the training run, whichever process ran it.
    assert {r.data.tags["mlflow.parentRunId"] for r in trials} == {run.info.run_id}
    assert sorted(int(r.data.tags[TAG_TRIAL_NUMBER]) for r in trials) == sorted(t.number for t in finished)
    by_worker = [r for r in trials if r.data.tags.get(TAG_WORKER_RUN) == worker_run.info.run_id]
    assert 0 < len(by_worker) < 12
    assert {t.user_attrs[ATTR_TRIAL_RUN] for t in finished} == {r.info.run_id for r in trials}
    assert run.data.metrics["tuning_n_complete"] == 12 and run.info.status == "FINISHED"


def test_a_worker_killed_mid_trial_is_retried_and_its_trial_run_ends_killed(
    team: Team, tmp_path: Path
) -> None:
    """A tune-worker is SIGKILLed in a trial; the training run that comes next finds the dead trial,
    ends its MLflow run KILLED, runs it again and completes the study."""
    args = [*SLOW_TRIALS, f"tuning.storage={team.storage}", "tuning.study_name=killed",
            "tuning.n_trials=8", "tuning.heartbeat_interval=1", "tuning.grace_period=5",
            "tracking.experiment=team-kill"]  # fmt: skip
    out = {"stdout": subprocess.PIPE, "stderr": subprocess.STDOUT, "text": True, "cwd": tmp_path,
           "env": {**os.environ, **team.env()}}  # fmt: skip
    worker = spawn([*IMBLAB, "tune-worker", *args], **out)
    me = f"{socket.gethostname()}:{worker.pid}"  # the worker's imblab.worker

    def worker_in_a_trial() -> bool:
        assert worker.poll() is None, worker.communicate()[0][-3000:]
        try:
            running = load_study(team, "killed").get_trials(states=(TrialState.RUNNING,))
        except KeyError:  # not created yet
            return False
        return any(t.user_attrs.get(ATTR_WORKER) == me and ATTR_TRIAL_RUN in t.user_attrs for t in running)

    with stopped_at_exit(worker):
        wait_for(worker_in_a_trial, "a trial of the worker")
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()
    train = imblab("train", *args, cwd=tmp_path, env=team.env(), timeout=900)
    assert train.returncode == 0, train.stderr[-3000:]

    study = load_study(team, "killed")
    [dead] = [t for t in study.trials if t.user_attrs.get(ATTR_WORKER) == me and t.state == TrialState.FAIL]
    retries = [t for t in study.trials if retried_from(t) == dead.number]
    assert len(retries) == 1 and retries[0].state in (TrialState.COMPLETE, TrialState.PRUNED)
    # The retry keeps what the dead trial had drawn (it may have been killed before drawing them all).
    assert dead.params.items() <= retries[0].params.items()
    finished = [t for t in study.trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    live = (TrialState.RUNNING, TrialState.WAITING)
    assert len(finished) == 8 and not [t for t in study.trials if t.state in live]

    client = MlflowClient(team.tracking_uri)
    killed = client.get_run(dead.user_attrs[ATTR_TRIAL_RUN])
    assert killed.info.status == "KILLED"
    # Whoever saw the dead process first ended it: the run reaper (it opens with the training run's
    # store) or the tuning side (StaleTrials); both name the process.
    reason = killed.data.tags[TAG_KILLED]
    assert str(worker.pid) in reason and "is gone" in reason, reason
    runs = runs_of(team.tracking_uri, "team-kill")
    [run] = [r for r in runs if r.data.tags.get("imblab.role") == "run"]
    [worker_run] = [r for r in runs if r.data.tags.get("imblab.role") == "tune-worker"]
    assert run.info.status == "FINISHED" and killed.data.tags["mlflow.parentRunId"] == worker_run.info.run_id
    trial_runs = [r for r in runs if r.data.tags.get("imblab.role") == "trial"]
    # Only the dead worker's own run (role tune-worker) may still be RUNNING: that is the run reaper's.
    assert not [r for r in trial_runs if r.info.status == "RUNNING"]
    retried = client.get_run(retries[0].user_attrs[ATTR_TRIAL_RUN])
    assert retried.info.status == "FINISHED" and retried.data.tags["mlflow.parentRunId"] == run.info.run_id
    assert retried.data.tags["optuna.retry_of"] == str(dead.number)


# --------------------------------------------------------------------------------------------------
# The stack itself
# --------------------------------------------------------------------------------------------------


def test_start_again_leaves_a_running_stack_as_it_is(team: Team, tmp_path: Path) -> None:
    again = imblab("team-server", "start", "--dir", str(team.root), cwd=tmp_path, timeout=300)
    assert again.returncode == 0, again.stderr
    assert (
        "already running" in again.stderr
        and f"export MLFLOW_TRACKING_URI={team.tracking_uri}" in again.stdout
    )
    status = imblab("team-server", "status", "--dir", str(team.root), "--json", cwd=tmp_path)
    assert [s["pid"] for s in json.loads(status.stdout)["servers"]] == [s.pid for s in team.servers]


def test_the_database_password_is_only_in_the_pgpass_files(team: Team) -> None:
    password = Path(team.pgpassfile).read_text().strip().rsplit(":", 1)[1]
    assert len(password) >= 16
    allowed = {Path(team.pgpassfile).name, "postgres-admin.pgpass"}
    found = [
        str(p)
        for p in team.root.rglob("*")
        if p.is_file() and p.name not in allowed and password.encode() in p.read_bytes()
    ]
    assert not found  # not in the state file, the logs, nor the cluster's files (SCRAM keeps a hash)
    assert make_url(team.storage).password is None and make_url(team.storage).username == "imblab"
