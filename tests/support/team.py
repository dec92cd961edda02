"""The team stack for the slow team tests: PostgreSQL, an S3-compatible server (moto) and an MLflow
tracking server on loopback, started once per session with the real ``imblab team-server start`` and
stopped with ``imblab team-server stop``, even when a test fails.

At teardown every process the stack ran (each server's process group and descendants, listed just
before the stop) must be gone; a leftover fails the session, after being killed.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

from imblab.stack.postgres import binaries
from imblab.stack.processes import Server, family, start_ticks
from imblab.stack.team import TRIAL_BUCKET
from tests.support.cli import imblab
from tests.support.serving import free_port


@dataclass(frozen=True)
class Team:
    """A running stack: what a client passes, and what the tests look into."""

    root: Path
    tracking_uri: str  # http://127.0.0.1:PORT, no credentials
    storage: str  # the Optuna storage URL of the stack's PostgreSQL (no password)
    pgpassfile: str
    s3_endpoint: str
    servers: tuple[Server, ...]

    def env(self) -> dict[str, str]:
        """The variables of an imblab subprocess that uses the stack (the password through PGPASSFILE)."""
        return {"MLFLOW_TRACKING_URI": self.tracking_uri, "PGPASSFILE": self.pgpassfile}

    def s3(self) -> Any:
        """A client of the S3 trial server (moto takes any key)."""
        return boto3.client(
            "s3",
            endpoint_url=self.s3_endpoint,
            aws_access_key_id="imblab-trial",
            aws_secret_access_key="imblab-trial",
            region_name="us-east-1",
        )

    def bucket_keys(self, prefix: str = "") -> list[str]:
        """The object keys in the S3 trial bucket under ``prefix``."""
        keys: list[str] = []
        for page in self.s3().get_paginator("list_objects_v2").paginate(Bucket=TRIAL_BUCKET, Prefix=prefix):
            keys += [o["Key"] for o in page.get("Contents", [])]
        return keys

    def delete_keys(self, keys: list[str]) -> None:
        s3 = self.s3()
        for key in keys:
            s3.delete_object(Bucket=TRIAL_BUCKET, Key=key)


def postgres_available() -> bool:
    with contextlib.suppress(Exception):
        return binaries().is_dir()
    return False


@contextlib.contextmanager
def team_stack() -> Iterator[Team]:
    """Start the stack in a fresh directory; stop it and check that no process is left."""
    # Outside pytest's tmp dirs (mode 0700): as root, PostgreSQL runs as user postgres, who must enter it.
    base = Path(tempfile.mkdtemp(prefix="imblab-team-"))
    base.chmod(0o755)
    root = base / "stack"
    args = ["--dir", str(root)]
    start = imblab(
        "team-server", "start", *args, "--port", str(free_port()), "--s3-trial",
        "--pg-option", "fsync=off", "--pg-option", "synchronous_commit=off",
        cwd=base, timeout=900,
    )  # fmt: skip
    processes: dict[int, int] = {}
    try:
        assert start.returncode == 0, start.stderr[-4000:]
        assert "export MLFLOW_TRACKING_URI=http://127.0.0.1:" in start.stdout
        status = imblab("team-server", "status", *args, "--json", cwd=base)
        assert status.returncode == 0, status.stderr
        state = json.loads(status.stdout)
        servers = tuple(Server.from_json(s) for s in state["servers"])
        assert [s.name for s in servers] == ["postgres", "s3", "mlflow"]
        yield Team(
            root=root,
            tracking_uri=state["tracking_uri"],
            storage=state["storage"],
            pgpassfile=state["pgpassfile"],
            s3_endpoint=state["s3_endpoint"],
            servers=servers,
        )
        for server in servers:
            processes.update(family(server.pid, server.pgid))
    finally:
        recorded = root / "team-server.json"
        if recorded.is_file():
            for data in json.loads(recorded.read_text())["servers"]:
                server = Server.from_json(data)
                processes.update(family(server.pid, server.pgid))
        stop = imblab("team-server", "stop", *args, cwd=base, timeout=300)
        left = [pid for pid, ticks in processes.items() if start_ticks(pid) == ticks]
        for pid in left:  # never leave them running, whatever the verdict
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(base, ignore_errors=True)
    assert stop.returncode == 0, stop.stderr
    assert not left, f"processes of the team stack left after stop: {left}"
