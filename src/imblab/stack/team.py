"""The team stack: PostgreSQL + an artifact store + an MLflow tracking server, started and stopped as one.

``start`` is idempotent: a stack whose servers all run is left as it is; a half-dead one is stopped
and started again (the data stays). Every server runs in its own process group, recorded with its
pid and start time in ``<dir>/team-server.json`` as soon as it is up, so ``stop`` (another process,
maybe after a crash of ``start``) finds and stops every group, and checks that no process is left.

Artifacts are proxied by the tracking server (``--artifacts-destination``): clients read and write
them through it and need no storage credentials. The destination is ``<dir>/artifacts`` by default,
or any URI MLflow supports (``s3://bucket/path`` with ``$MLFLOW_S3_ENDPOINT_URL`` and AWS credentials
from the environment of ``start``; none of them is written anywhere). ``s3_trial`` starts a local
S3-compatible server (moto) to try that setup on one machine.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import socket
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from imblab.errors import ImblabError
from imblab.serving.server import port_free
from imblab.stack import postgres
from imblab.stack.processes import Server, launch, stop

STATE = "team-server.json"
PG_PORT_FILE = "postgres.port"  # kept after a stop: the next start reuses the port
TRIAL_BUCKET = "imblab"
ANY_HOST = ("0.0.0.0", "::", "*", "")


@dataclass
class Settings:
    """What ``imblab team-server start`` was asked for."""

    root: Path
    host: str = "127.0.0.1"
    port: int = 5000
    pg_port: int = 0  # 0: a free port
    artifacts_destination: str | None = None  # None: <root>/artifacts
    s3_trial: bool = False
    workers: int = 2
    pg_options: list[str] = field(default_factory=list)
    mlflow_args: list[str] = field(default_factory=list)


@dataclass
class Stack:
    """A running (or recorded) stack: what clients use, and the servers behind it."""

    root: Path
    tracking_uri: str
    storage: str  # the Optuna storage URL, no password
    artifacts: str
    servers: list[Server]
    s3_endpoint: str | None = None

    @property
    def pgpass(self) -> Path:
        return self.root / ".pgpass"

    def to_json(self) -> dict[str, Any]:
        return {
            "tracking_uri": self.tracking_uri,
            "storage": self.storage,
            "pgpassfile": str(self.pgpass),
            "artifacts": self.artifacts,
            "s3_endpoint": self.s3_endpoint,
            "servers": [s.to_json() for s in self.servers],
        }

    def env(self) -> dict[str, str]:
        """The variables a client (imblab, mlflow, a notebook) needs for this stack."""
        return {"MLFLOW_TRACKING_URI": self.tracking_uri, "PGPASSFILE": str(self.pgpass)}


def _client_host(host: str) -> str:
    return socket.getfqdn() if host in ANY_HOST else host


def read_state(root: Path) -> Stack | None:
    path = root / STATE
    if not path.is_file():
        return None
    data = json.loads(path.read_text())
    return Stack(
        root=root,
        tracking_uri=data["tracking_uri"],
        storage=data["storage"],
        artifacts=data["artifacts"],
        servers=[Server.from_json(s) for s in data["servers"]],
        s3_endpoint=data.get("s3_endpoint"),
    )


def _write_state(stack: Stack) -> None:
    path = stack.root / STATE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(stack.to_json(), indent=2))
    tmp.replace(path)


@contextlib.contextmanager
def _locked(root: Path) -> Iterator[None]:
    """One start or stop at a time per directory."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / "team-server.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def healthy(url: str, timeout: float = 3.0) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=timeout) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return False


def running(stack: Stack) -> bool:
    """Every recorded server alive and the tracking server answering."""
    names = {s.name for s in stack.servers}
    return "mlflow" in names and all(s.alive() for s in stack.servers) and healthy(stack.tracking_uri)


def start(settings: Settings) -> tuple[Stack, bool]:
    """Start the stack under ``settings.root``; returns it and whether it was already running."""
    root = settings.root.resolve()
    with _locked(root):
        existing = read_state(root)
        if existing is not None:
            if running(existing):
                return existing, True
            _stop(existing)  # half-dead: start again from a clean slate (the data is kept)
        client_host = _client_host(settings.host)
        pg_port = settings.pg_port or _previous_pg_port(root, settings.host) or _free_port(settings.host)
        (root / PG_PORT_FILE).write_text(f"{pg_port}\n")
        cluster = postgres.Cluster(root, client_host, pg_port)
        artifacts = settings.artifacts_destination or str(root / "artifacts")
        stack = Stack(root, f"http://{client_host}:{settings.port}", cluster.url("optuna"), artifacts, [])
        if not port_free(settings.host, settings.port):
            raise ImblabError(
                f"port {settings.port} on {settings.host} is taken; pick another with --port (make server "
                "SERVER_PORT=...), or stop what listens there"
            )
        try:
            postgres.initialise(cluster)
            stack.servers.append(postgres.start(cluster, settings.pg_options))
            _write_state(stack)
            postgres.wait_ready(cluster, stack.servers[-1])
            postgres.provision(cluster, postgres.password(root))
            server_env = {**os.environ, "PGPASSFILE": str(cluster.pgpass)}
            if settings.s3_trial:
                server_env.update(_start_s3_trial(stack, settings.host))
            _start_mlflow(stack, settings, cluster, server_env)
            _write_state(stack)
        except BaseException:
            _stop(stack)
            raise
        return stack, False


def _previous_pg_port(root: Path, host: str) -> int | None:
    """The port the cluster had last time, if it is free: the study URL team members hold stays valid."""
    recorded = root / PG_PORT_FILE
    if recorded.is_file() and recorded.read_text().strip().isdigit():
        port = int(recorded.read_text().strip())
        if port_free("127.0.0.1" if host in ANY_HOST else host, port):
            return port
    return None


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1" if host in ANY_HOST else host, 0))
        return int(s.getsockname()[1])


def _wait(check: Any, server: Server, what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if not server.alive():
            tail = Path(server.log).read_text(errors="replace")[-3000:]
            raise ImblabError(f"{what} exited while starting; the end of {server.log}:\n{tail}")
        if time.monotonic() > deadline:
            raise ImblabError(f"{what} did not come up within {timeout:.0f}s; see {server.log}")
        time.sleep(0.3)


def _start_s3_trial(stack: Stack, host: str) -> dict[str, str]:
    """A local S3-compatible server (moto) with bucket ``imblab``; the tracking server's variables."""
    import boto3

    port = _free_port("127.0.0.1")
    argv = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    server = launch("s3", argv, stack.root / "logs" / "s3.log", port)
    stack.servers.append(server)
    _write_state(stack)
    endpoint = f"http://127.0.0.1:{port}"
    _wait(lambda: not port_free("127.0.0.1", port), server, "the S3 trial server (moto)", 120.0)
    # moto accepts any key; real credentials, when set, are simply passed on.
    env = {
        "MLFLOW_S3_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": os.environ.get("AWS_ACCESS_KEY_ID", "imblab-trial"),
        "AWS_SECRET_ACCESS_KEY": os.environ.get("AWS_SECRET_ACCESS_KEY", "imblab-trial"),
        "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
    }
    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name=env["AWS_DEFAULT_REGION"],
    )
    with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
        s3.create_bucket(Bucket=TRIAL_BUCKET)
    stack.s3_endpoint = endpoint
    stack.artifacts = f"s3://{TRIAL_BUCKET}/artifacts"
    return env


def _start_mlflow(stack: Stack, settings: Settings, cluster: postgres.Cluster, env: dict[str, str]) -> Server:
    argv = [
        sys.executable, "-m", "mlflow", "server",
        "--backend-store-uri", cluster.url("mlflow"),
        "--artifacts-destination", stack.artifacts,
        "--host", settings.host, "--port", str(settings.port), "--workers", str(settings.workers),
        *settings.mlflow_args,
    ]  # fmt: skip
    # MLflow's background job runner (huey) serves GenAI features imblab does not use.
    env = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", **env}
    server = launch("mlflow", argv, stack.root / "logs" / "mlflow.log", settings.port, env=env)
    stack.servers.append(server)
    _write_state(stack)
    # A new backend store is migrated first: tens of seconds on a busy machine.
    _wait(lambda: healthy(stack.tracking_uri), server, "the MLflow tracking server", 600.0)
    return server


# The first signal each server gets: PostgreSQL's "fast" shutdown is SIGINT (SIGTERM waits for clients).
FIRST_SIGNAL = {"postgres": signal.SIGINT}


def _stop(stack: Stack) -> dict[str, list[int]]:
    """Stop every recorded server, last started first; the pids left per server (normally none)."""
    left = {}
    for server in reversed(stack.servers):
        remaining = stop(server, FIRST_SIGNAL.get(server.name, signal.SIGTERM))
        if remaining:
            left[server.name] = remaining
    (stack.root / STATE).unlink(missing_ok=True)
    return left


def stop_stack(root: Path) -> tuple[Stack | None, dict[str, list[int]]]:
    """Stop the stack recorded under ``root``; (the stack or None if none was recorded, pids left)."""
    root = root.resolve()
    with _locked(root):
        stack = read_state(root)
        if stack is None:
            return None, {}
        return stack, _stop(stack)
