"""Servers that demand a password, and a counter of where a planted password ended up.

``mlflow_auth_server``: a real ``mlflow server --app-name basic-auth`` on loopback (its own store and
process group); ``postgres_cluster``: a private PostgreSQL 15 cluster (``initdb``/``pg_ctl`` run as user
``postgres``) with one password-protected role and database. ``occurrences`` greps files byte for byte
(SQLite databases and their WAL included) and captured text. Used by ``tests/test_secrets_cli.py`` and
``benchmarks/faults_secrets.py``.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import FAST
from tests.support.processes import spawn, stop_group, wait_for_health
from tests.support.serving import free_port
from tests.tuning.common import TUNE  # FAST + tuning=optuna with a tiny LightGBM search

PG_BIN = Path("/usr/lib/postgresql/15/bin")
ADMIN = "admin"


def occurrences(needle: str, paths: Iterable[Path] = (), texts: Iterable[str] = ()) -> dict[str, int]:
    """How often ``needle`` occurs in each file under ``paths`` (read as bytes) and in each text; only the
    places where it occurs."""
    raw = needle.encode()
    found: dict[str, int] = {}
    for root in paths:
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for file in files:
            with contextlib.suppress(OSError):
                n = file.read_bytes().count(raw)
                if n:
                    found[str(file)] = n
    for k, text in enumerate(texts):
        n = text.count(needle)
        if n:
            found[f"<text {k}>"] = n
    return found


@dataclass(frozen=True)
class AuthServer:
    url: str  # http://127.0.0.1:PORT, no credentials
    store: Path  # its backend store, auth database and artifacts live here

    def url_with(self, password: str, user: str = ADMIN) -> str:
        return self.url.replace("http://", f"http://{user}:{password}@")


@contextlib.contextmanager
def mlflow_auth_server(root: Path, admin_password: str, timeout: float = 180.0) -> Iterator[AuthServer]:
    """``mlflow server --app-name basic-auth`` on loopback: user ``admin`` with ``admin_password``; every
    request without valid credentials gets a 401. Stopped (whole process group) on the way out."""
    root.mkdir(parents=True, exist_ok=True)
    config = root / "basic_auth.ini"
    config.write_text(
        "[mlflow]\ndefault_permission = READ\n"
        f"database_uri = sqlite:///{root / 'basic_auth.db'}\nadmin_username = {ADMIN}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
        # Without it the server hashes the password (PBKDF2) on every request: slow on a loaded machine.
        "auth_cache_ttl_seconds = 600\n"
    )
    port = free_port()
    mlflow = Path(sys.executable).with_name("mlflow")
    argv = [
        str(mlflow), "server", "--app-name", "basic-auth", "--host", "127.0.0.1", "--port", str(port),
        "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
        "--artifacts-destination", str(root / "artifacts"), "--workers", "1",
    ]  # fmt: skip
    env = {
        **os.environ,
        "MLFLOW_AUTH_CONFIG_PATH": str(config),
        "MLFLOW_AUTH_ADMIN_PASSWORD": admin_password,  # the server's, never imblab's environment
        "MLFLOW_FLASK_SERVER_SECRET_KEY": os.urandom(16).hex(),
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",  # no background job workers (GenAI jobs) to start
    }
    log = open(root / "server.log", "wb")  # noqa: SIM115
    proc = spawn(argv, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=root)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_health(proc, f"{base}/health", root / "server.log", "mlflow server", timeout)
        yield AuthServer(base, root)
    finally:
        stop_group(proc)
        log.close()


# runuser lives in /usr/sbin, which a minimal PATH (CI's `env -i`) leaves out.
RUNUSER = shutil.which("runuser") or shutil.which("runuser", path="/usr/sbin:/sbin")


def postgres_available() -> bool:
    """PostgreSQL 15 and runuser are here; under CI their absence fails the tests instead of skipping."""
    found = (PG_BIN / "initdb").is_file() and RUNUSER is not None
    return found or os.environ.get("CI") == "true"


@dataclass(frozen=True)
class Postgres:
    port: int
    user: str
    database: str
    data: Path  # the cluster's directory (owned by user postgres)

    def url(self, password: str | None = None, driver: str = "postgresql") -> str:
        auth = f"{self.user}:{password}" if password else self.user
        return f"{driver}://{auth}@127.0.0.1:{self.port}/{self.database}"


def _as_postgres(*argv: str) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [str(RUNUSER), "-u", "postgres", "--", *argv], capture_output=True, text=True, timeout=120
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {proc.stderr[-2000:]}")
    return proc


@contextlib.contextmanager
def postgres_cluster(user: str, password: str, database: str = "optuna") -> Iterator[Postgres]:
    """A throwaway PostgreSQL 15 cluster on a free loopback port (password authentication over TCP), with
    role ``user`` (``password``) owning ``database``; stopped and deleted on the way out.

    Its directory is made outside pytest's ``tmp_path`` (user ``postgres`` cannot enter that one).
    """
    base = Path(tempfile.mkdtemp(prefix="imblab-pg-"))
    shutil.chown(base, "postgres", "postgres")
    data, port = base / "data", free_port()
    pwfile = base / "superuser.pw"
    pwfile.write_text(os.urandom(12).hex())
    shutil.chown(pwfile, "postgres", "postgres")
    started, pg_ctl = False, str(PG_BIN / "pg_ctl")
    try:
        _as_postgres(
            str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "--auth-local=trust",
            "--auth-host=scram-sha-256", f"--pwfile={pwfile}", "--no-sync",
        )  # fmt: skip
        options = f"-h 127.0.0.1 -p {port} -k {base} -c fsync=off"
        _as_postgres(pg_ctl, "-D", str(data), "-o", options, "-l", str(base / "pg.log"), "-w", "start")
        started = True
        sql = f"CREATE ROLE {user} LOGIN PASSWORD '{password}'; CREATE DATABASE {database} OWNER {user};"
        # Over the socket with trust: the superuser needs no password there.
        for sql_ in sql.split("; "):
            _as_postgres(str(PG_BIN / "psql"), "-h", str(base), "-p", str(port), "-U", "postgres", "-c", sql_)
        yield Postgres(port, user, database, data)
    finally:
        if started:
            with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                _as_postgres(pg_ctl, "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(base, ignore_errors=True)


# --------------------------------------------------------------------------------------------------
# The scenarios of the leak drill (tests/test_secrets_cli.py and benchmarks/faults_secrets.py)
# --------------------------------------------------------------------------------------------------

ENV_PASSWORD = "IMBLAB_TEST_MLFLOW_PASSWORD"  # referenced as ${oc.env:...} from a config


@dataclass
class Step:
    """One ``imblab`` command of a scenario and what it printed."""

    name: str
    proc: subprocess.CompletedProcess

    @property
    def output(self) -> str:
        return self.proc.stdout + self.proc.stderr


def _imblab(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    # Imported here: tests.support.cli imports mlflow, which a drill's parent process need not pay for.
    from tests.support.cli import imblab

    return imblab(*args, cwd=cwd, env=env, timeout=900)


def http_scenario(server: AuthServer, password: str, workdir: Path) -> list[Step]:
    """The tracking server's password given every way imblab supports, plus a wrong one:

    ``url``: in ``tracking.uri`` (a ``-m`` sweep, two joblib worker processes); ``env``: through
    ``MLFLOW_TRACKING_USERNAME/PASSWORD`` (a tuned run with nested trial runs, SQLite study);
    ``oc.env``: ``${oc.env:VAR}`` inside ``tracking.uri``; ``wrong``: a wrong password (must exit 2).
    """
    workdir.mkdir(parents=True, exist_ok=True)
    port = server.url.rsplit(":", 1)[-1]
    sweep = ["-m", "threshold=fixed,best_f1", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]
    tuned = [*TUNE[len(FAST) :], "tuning.n_trials=3", f"tuning.storage=sqlite:///{workdir}/optuna.db"]
    env_login = {"MLFLOW_TRACKING_USERNAME": ADMIN, "MLFLOW_TRACKING_PASSWORD": password}
    referenced = f"http://{ADMIN}:${{oc.env:{ENV_PASSWORD}}}@127.0.0.1:{port}"
    wrong = server.url_with("not-" + password)
    run = functools.partial(_imblab, workdir, "train", *FAST)
    sweep_args = [*sweep, *FAST, f"tracking.uri={server.url_with(password)}", "tracking.experiment=sweep"]
    return [
        Step("url", _imblab(workdir, "train", *sweep_args)),  # -m comes first
        Step("env", run(*tuned, f"tracking.uri={server.url}", "tracking.experiment=tuned", env=env_login)),
        Step(
            "oc.env",
            run(f"tracking.uri={referenced}", "tracking.experiment=env", env={ENV_PASSWORD: password}),
        ),
        Step("wrong", run(f"tracking.uri={wrong}", "tracking.experiment=wrong")),
    ]


def postgres_scenario(pg: Postgres, password: str, workdir: Path, tracking_uri: str) -> list[Step]:
    """The PostgreSQL study storage's password every way: in the URL (``postgresql+psycopg2://``), from
    ``PGPASSWORD`` (the study resumes), from a ``.pgpass`` file (``PGPASSFILE``, a tune-worker), and none
    (must exit 2). The ``.pgpass`` file is written outside ``workdir``."""
    workdir.mkdir(parents=True, exist_ok=True)
    pgpass = Path(tempfile.mkdtemp(prefix="imblab-pgpass-")) / "pgpass"
    pgpass.write_text(f"127.0.0.1:{pg.port}:{pg.database}:{pg.user}:{password}\n")
    pgpass.chmod(0o600)  # libpq ignores a .pgpass that others can read
    common = [*TUNE, "tuning.study_name=secrets", f"tracking.uri={tracking_uri}", "tracking.experiment=pg"]
    in_url = f"tuning.storage={pg.url(password, 'postgresql+psycopg2')}"
    no_password = f"tuning.storage={pg.url()}"
    try:
        return [
            Step("url", _imblab(workdir, "train", *common, "tuning.n_trials=2", in_url)),
            Step(
                "PGPASSWORD",
                _imblab(
                    workdir, "train", *common, "tuning.n_trials=4", no_password, env={"PGPASSWORD": password}
                ),
            ),
            Step(
                ".pgpass",
                _imblab(
                    workdir,
                    "tune-worker",
                    *common,
                    "tuning.n_trials=6",
                    no_password,
                    env={"PGPASSFILE": str(pgpass)},
                ),
            ),
            Step("none", _imblab(workdir, "train", *common, no_password, env={"PGPASSFILE": "/nonexistent"})),
        ]
    finally:
        shutil.rmtree(pgpass.parent, ignore_errors=True)
