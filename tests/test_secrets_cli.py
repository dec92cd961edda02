"""Planted passwords never reach the store, the artifacts, Hydra's output files or the terminal.

Real ``imblab`` subprocesses; a real SQLite store, a real ``mlflow server --app-name basic-auth`` that
refuses requests without the password, and a real PostgreSQL 15 cluster for the study storage.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from tests.conftest import FAST
from tests.support.cli import imblab, runs_of
from tests.support.credentials import (
    ENV_PASSWORD,
    AuthServer,
    http_scenario,
    mlflow_auth_server,
    occurrences,
    postgres_available,
    postgres_cluster,
    postgres_scenario,
)


def planted(kind: str) -> str:
    """A password that occurs nowhere unless imblab leaks it."""
    return f"{kind}-{uuid.uuid4().hex[:12]}"


def test_planted_passwords_reach_no_file_and_no_output(tmp_path: Path, tracking_uri: str) -> None:
    """A sweep (one job) with a password under a secret key, in a URL and in ``${oc.env:...}``."""
    key_pw, url_pw, env_pw = planted("key"), planted("url"), planted("env")
    env_ref = "${oc.env:IMBLAB_TEST_DB_PASSWORD}"
    proc = imblab(
        "train",
        "-m",
        *FAST,
        f"+db.password={key_pw}",
        f"+db.url=postgresql://u:{url_pw}@h/db",
        f"+db.env_url=postgresql://u:{env_ref}@h/db",
        f"tracking.uri={tracking_uri}",
        "tracking.experiment=secrets",
        cwd=tmp_path,
        env={"IMBLAB_TEST_DB_PASSWORD": env_pw},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    # The scan finds a planted password where it really is (the command line) ...
    assert occurrences(key_pw, texts=[" ".join(proc.args)])
    # ... and nowhere imblab, MLflow or Hydra wrote or printed anything.
    for password in (key_pw, url_pw, env_pw):
        assert occurrences(password, [tmp_path], [proc.stdout, proc.stderr]) == {}

    # What was written instead: masked values, still telling what was configured.
    runs = runs_of(tracking_uri, "secrets")
    (child,) = [r for r in runs if r.data.tags["imblab.role"] == "run"]
    (parent,) = [r for r in runs if r.data.tags["imblab.role"] == "sweep"]
    assert child.info.status == "FINISHED" and parent.info.status == "FINISHED"
    params = child.data.params
    assert params["db.password"] == "***"
    assert params["db.url"] == params["db.env_url"] == "postgresql://u:***@h/db"
    for text in (child.data.tags["imblab.command"], parent.data.tags["imblab.command"]):
        assert "+db.password=*** +db.url=postgresql://u:***@h/db" in text
    # The parent is named after what the sweep varies (nothing here), not after the overrides typed.
    assert parent.info.run_name == "synthetic: sweep (1 job)"
    config = yaml.safe_load(
        (Path(child.info.artifact_uri.removeprefix("file://")) / "config.yaml").read_text()
    )
    assert config["db"] == {
        "password": "***",
        "url": "postgresql://u:***@h/db",
        "env_url": "postgresql://u:***@h/db",
    }

    # Hydra's own files: rewritten masked, still YAML, the ${oc.env:...} reference kept.
    (sweep_dir,) = tmp_path.glob("multirun/*/*")
    files = [sweep_dir / "multirun.yaml", *sorted((sweep_dir / "0" / ".hydra").glob("*.yaml"))]
    assert [f.name for f in files] == ["multirun.yaml", "config.yaml", "hydra.yaml", "overrides.yaml"]
    for file in files:
        yaml.safe_load(file.read_text())
    overrides = yaml.safe_load(files[-1].read_text())
    assert "+db.password=***" in overrides
    (env_url,) = [o for o in overrides if o.startswith("+db.env_url=")]
    assert (
        env_url == "+db.env_url=postgresql\\://u\\:$\\{oc.env\\:IMBLAB_TEST_DB_PASSWORD\\}@h/db"
    )  # Hydra-escaped


def test_a_storage_error_shows_the_url_masked_and_fails_the_run(tmp_path: Path, tracking_uri: str) -> None:
    password = planted("pg")
    proc = imblab(
        "train",
        *FAST,
        "tuning=optuna",
        f"tuning.storage=postgresql://optuna:{password}@127.0.0.1:1/optuna",  # nothing listens on port 1
        f"tracking.uri={tracking_uri}",
        "tracking.experiment=bad",
        cwd=tmp_path,
    )
    assert proc.returncode == 2
    assert (
        "imblab: error: cannot open the Optuna storage postgresql://optuna:***@127.0.0.1:1/optuna"
        in proc.stderr
    )
    (run,) = runs_of(tracking_uri, "bad")
    assert (
        run.info.status == "FAILED"
        and "postgresql://optuna:***@127.0.0.1:1/optuna" in run.data.tags["imblab.error"]
    )
    assert occurrences(password, [tmp_path], [proc.stdout, proc.stderr]) == {}


# --------------------------------------------------------------------------------------------------
# A tracking server that needs the password
# --------------------------------------------------------------------------------------------------

SERVER_PASSWORD = planted("srv")


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthServer]:
    with mlflow_auth_server(tmp_path_factory.mktemp("auth-server"), SERVER_PASSWORD) as server:
        yield server


@pytest.mark.slow
def test_tracking_server_password_every_way_and_never_leaked(tmp_path: Path, auth_server: AuthServer) -> None:
    steps = {s.name: s for s in http_scenario(auth_server, SERVER_PASSWORD, tmp_path / "work")}
    for name in ("url", "env", "oc.env"):
        assert steps[name].proc.returncode == 0, (name, steps[name].output[-3000:])
    wrong = steps["wrong"].proc
    assert wrong.returncode == 2
    assert "refused the credentials (HTTP 401)" in wrong.stderr and "MLFLOW_TRACKING_PASSWORD" in wrong.stderr

    # Every way reached the server: the runs are there, finished (read back with the password).
    client = MlflowClient(auth_server.url_with(SERVER_PASSWORD))
    statuses = {
        name: sorted(
            (r.data.tags.get("imblab.role"), r.info.status) for r in runs_of(client.tracking_uri, name)
        )
        for name in ("sweep", "tuned", "env", "wrong")
    }
    assert statuses["sweep"] == [("run", "FINISHED")] * 2 + [("sweep", "FINISHED")]
    assert statuses["tuned"][0] == ("run", "FINISHED")  # then its trials (a pruned one ends KILLED)
    assert [role for role, _ in statuses["tuned"]] == ["run"] + ["trial"] * 3
    assert statuses["env"] == [("run", "FINISHED")]
    assert statuses["wrong"] == []  # refused before any run was opened
    (run,) = runs_of(client.tracking_uri, "env")
    assert run.data.params["tracking.uri"] == auth_server.url_with("***")
    assert "View run" in steps["url"].proc.stdout and auth_server.url_with("***") in steps["url"].proc.stdout

    # The server's store and artifacts, the study, Hydra's outputs and everything printed: no password.
    outputs = [s.output for s in steps.values()]
    assert occurrences(SERVER_PASSWORD, [auth_server.store, tmp_path], outputs) == {}
    assert occurrences(SERVER_PASSWORD, texts=[f"{ENV_PASSWORD}={SERVER_PASSWORD}"])  # the scan can find it


# --------------------------------------------------------------------------------------------------
# A PostgreSQL study storage that needs the password
# --------------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.skipif(not postgres_available(), reason="PostgreSQL 15 server binaries are not installed")
def test_postgres_study_password_every_way_and_never_leaked(tmp_path: Path, tracking_uri: str) -> None:
    password = planted("pg")
    with postgres_cluster("imblab", password) as pg:
        steps = {s.name: s for s in postgres_scenario(pg, password, tmp_path / "work", tracking_uri)}
        for name in ("url", "PGPASSWORD", ".pgpass"):
            assert steps[name].proc.returncode == 0, (name, steps[name].output[-3000:])
        none = steps["none"].proc
        assert none.returncode == 2
        assert f"cannot open the Optuna storage {pg.url()}" in none.stderr and "password" in none.stderr
        # The cluster's files hold the study imblab wrote (and a SCRAM hash of the password, not it).
        leaks = occurrences(password, [pg.data, tmp_path], [s.output for s in steps.values()])
    assert leaks == {}

    # One study, continued by every way in: 2 + 2 trials by train, 2 more by the tune-worker.
    runs = runs_of(tracking_uri, "pg")
    trials = [r for r in runs if r.data.tags.get("imblab.role") == "trial"]
    assert len(trials) == 6 and {r.data.tags["optuna.study_name"] for r in trials} == {"secrets"}
    storages = {r.data.tags["optuna.storage"] for r in runs if "optuna.storage" in r.data.tags}
    assert storages == {pg.url("***", "postgresql+psycopg2"), pg.url()}
