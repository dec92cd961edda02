"""Killing imblab commands on purpose: start one, wait until its runs are RUNNING, signal it, then look for
what it left behind (RUNNING runs, live worker processes).

Used by ``tests/test_lifecycle_cli.py`` and ``benchmarks/faults_lifecycle.py``; not part of the package.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mlflow.entities import Run, ViewType
from mlflow.tracking import MlflowClient

from imblab.tracking.store import prepare_store
from tests.support.cli import imblab
from tests.support.processes import kill_all, orphans_of, spawn, stop_group

SYNTHETIC = (
    "data=synthetic",
    "data.n_samples=8000",
    "data.n_features=30",
    "data.positive_rate=0.1",
    "sampler=none",
    "model=lgbm",
    "cv.folds=3",
    "cache.enabled=false",
)
# Runs that cannot finish before they are killed: LightGBM with far more trees than the drill waits for.
LONG_RUN = (*SYNTHETIC, "model.estimator.n_estimators=20000", "model.estimator.learning_rate=0.01")
# A tuning run whose trials take a few seconds each, far more of them than the drill waits for.
LONG_TUNING = (*SYNTHETIC, "tuning=optuna", "tuning.n_trials=500")


@dataclass
class Command:
    """A running ``imblab`` subprocess (own process group), its store and its output files."""

    proc: subprocess.Popen
    uri: str
    out: Path
    err: Path

    def output(self) -> str:
        return self.out.read_text(errors="replace") + self.err.read_text(errors="replace")


def start(args: list[str], workdir: Path, uri: str, env: dict[str, str] | None = None) -> Command:
    """``imblab <args>`` in its own process group, output to files in ``workdir``.

    The store is created first, under imblab's own lock: polling a store that the command is still
    creating would run MLflow's migrations twice at once (the command holds the lock, this poller would
    not), and the command's first write would fail.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    prepare_store(uri)
    out, err = workdir / "stdout.txt", workdir / "stderr.txt"
    with out.open("wb") as fo, err.open("wb") as fe:
        proc = spawn(
            [sys.executable, "-m", "imblab", *args],
            cwd=workdir,
            stdout=fo,
            stderr=fe,
            env={**os.environ, **(env or {})},
        )
    return Command(proc, uri, out, err)


def all_runs(uri: str) -> list[Run]:
    client = MlflowClient(uri)
    experiments = [e.experiment_id for e in client.search_experiments(view_type=ViewType.ALL)]
    if not experiments:
        return []
    return client.search_runs(experiments, run_view_type=ViewType.ALL, max_results=10000)


def running(uri: str) -> list[Run]:
    return [r for r in all_runs(uri) if r.info.status == "RUNNING"]


def with_role(runs: list[Run], role: str) -> list[Run]:
    return [r for r in runs if r.data.tags.get("imblab.role") == role]


def wait_until(cmd: Command, ready: Callable[[list[Run]], bool], timeout: float = 240.0) -> None:
    """Poll the store until ``ready(all runs)``; fail with the command's output if it ends first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cmd.proc.poll() is not None:
            raise AssertionError(f"imblab exited early ({cmd.proc.returncode}):\n{cmd.output()[-3000:]}")
        try:
            if ready(all_runs(cmd.uri)):
                return
        except Exception:  # the command may still be creating the store
            pass
        time.sleep(0.5)
    stop_group(cmd.proc)
    raise AssertionError(f"the store never got ready within {timeout:.0f}s:\n{cmd.output()[-3000:]}")


@dataclass
class Aftermath:
    """What a killed command left: its exit status, how long its last worker outlived it, its live workers
    ``settle`` seconds after it ended, RUNNING runs before and after one ``imblab runs``, and that
    command's stderr."""

    returncode: int
    orphan_seconds: float
    orphans: int
    running_before: int
    running_after: int
    runs_stderr: str


def kill(cmd: Command, signum: int, settle: float = 10.0, experiment: str = "imblab") -> Aftermath:
    """Send ``signum`` to the command's main process; wait for it to exit (60 s at most, then SIGKILL its
    group); count its live workers ``settle`` seconds later; run one ``imblab runs``."""
    cmd.proc.send_signal(signum)
    try:
        returncode = cmd.proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        stop_group(cmd.proc)
        returncode = cmd.proc.returncode
    ended = time.monotonic()
    while orphans_of(cmd.proc.pid) and time.monotonic() - ended < settle:
        time.sleep(0.1)
    orphan_seconds = time.monotonic() - ended
    time.sleep(max(ended + settle - time.monotonic(), 0.0))
    left = orphans_of(cmd.proc.pid)
    kill_all(left)
    before = len(running(cmd.uri))
    table = imblab("runs", "--experiment", experiment, "--tracking-uri", cmd.uri, "--all", cwd=cmd.out.parent)
    return Aftermath(returncode, orphan_seconds, len(left), before, len(running(cmd.uri)), table.stderr)
