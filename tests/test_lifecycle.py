"""Run lifecycle, fast parts: process identity, the reaper, heartbeats, runs ended by an interrupt, and
workers that die with their parent. Real SQLite stores, real processes (no imblab command runs here:
``tests/test_lifecycle_cli.py`` kills real ones)."""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

from imblab.app.main import main as imblab_main
from imblab.errors import ImblabError, Interrupted
from imblab.process import WORKER_ENV, liveness, marked, stat, this_process, wait_for_end
from imblab.tracking.layout import (
    ROLE_SWEEP,
    TAG_HEARTBEAT,
    TAG_HEARTBEAT_SECONDS,
    TAG_HOST,
    TAG_KILLED,
    TAG_N_CHILDREN,
    TAG_PID,
    TAG_PID_SCOPE,
    TAG_PROCESS_START,
    TAG_ROLE,
)
from imblab.tracking.lifecycle import HEARTBEAT_ENV, client_run, heartbeat_seconds, live, location_tags
from imblab.tracking.reaper import reap
from imblab.tracking.store import tidy
from tests.conftest import FAST
from tests.support.cli import imblab
from tests.support.lifecycle import all_runs
from tests.support.processes import spawn, stop_group

SLEEPER = [sys.executable, "-c", "import time; time.sleep(300)"]


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen]:
    """A live process of this machine that is not this test."""
    proc = spawn(SLEEPER)
    yield proc
    stop_group(proc, grace=1)


@pytest.fixture
def dead() -> tuple[int, str]:
    """The pid and start time of a process that has exited (and been waited for)."""
    proc = subprocess.Popen(SLEEPER)
    info = stat(proc.pid)
    assert info is not None
    proc.kill()
    proc.wait()
    return proc.pid, info.start


def where(pid: int, start: str, host: str | None = None, beat: float | None = None) -> dict[str, str]:
    """Location tags of process ``pid`` on this machine (or on ``host``), last heartbeat at ``beat``."""
    me = this_process()
    return {
        TAG_HOST: host or me.host,
        TAG_PID_SCOPE: me.scope if host is None else "another-boot/pid:[1]",
        TAG_PID: str(pid),
        TAG_PROCESS_START: start,
        TAG_HEARTBEAT: f"{time.time() if beat is None else beat:.3f}",
        TAG_HEARTBEAT_SECONDS: "30",
    }


def test_process_identity_reads_proc(dead: tuple[int, str], sleeper: subprocess.Popen) -> None:
    own = stat(os.getpid())
    assert own is not None and (own.ppid, own.pgrp, own.state) == (os.getppid(), os.getpgrp(), "R")
    me = this_process()
    assert liveness(me.pid, me.start) == "alive"
    assert liveness(me.pid, str(int(me.start) + 1)) == "reused"
    assert liveness(dead[0], dead[1]) == "gone"
    info = stat(sleeper.pid)
    assert info is not None and liveness(sleeper.pid, info.start) == "alive"
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 30
    while (z := stat(zombie.pid)) is not None and z.state != "Z" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert liveness(zombie.pid) == "gone"  # exited, not yet waited for: os.kill(pid, 0) would say alive
    zombie.wait()


def test_reaper_ends_dead_runs_and_only_those(
    tracking_uri: str, dead: tuple[int, str], sleeper: subprocess.Popen
) -> None:
    client = MlflowClient(tracking_uri)
    exp = client.create_experiment("reap")
    old = float(int(time.time()) - 600)
    sleeper_start = stat(sleeper.pid).start  # type: ignore[union-attr]
    me = this_process()

    def run(name: str, tags: dict[str, str]) -> str:
        return client.create_run(exp, run_name=name, tags=tags, start_time=int(old * 1000)).info.run_id

    gone = run("gone", where(dead[0], dead[1], beat=old + 60))
    reused = run("reused", where(me.pid, str(int(me.start) + 1)))
    stale = run("stale", where(4242, "7", host="elsewhere", beat=old))
    orphan = run("orphan", {MLFLOW_PARENT_RUN_ID: gone})  # no location: follows its parent
    kept = {
        run("other live process", where(sleeper.pid, sleeper_start)),
        run("this process", location_tags()),
        run("fresh heartbeat elsewhere", where(4242, "7", host="elsewhere")),
        run("no location, no parent", {}),
    }

    reaped = {r.run_id: r.reason for r in reap(client, now=old + 600)}

    assert set(reaped) == {gone, reused, stale, orphan}
    assert reaped[gone] == f"process {dead[0]} on host {me.host} is gone"
    assert "now belongs to another process" in reaped[reused]
    assert reaped[stale].startswith("no heartbeat from process 4242 on host elsewhere since ")
    assert reaped[stale].endswith(" (600 s; it promised one every 30 s)")
    assert reaped[orphan] == f"its parent run {gone} is dead: {reaped[gone]}"
    for run_id, reason in reaped.items():
        info = client.get_run(run_id)
        assert (info.info.status, info.data.tags[TAG_KILLED]) == ("KILLED", reason)
    assert client.get_run(gone).info.end_time == int((old + 60) * 1000)  # its last heartbeat
    assert {client.get_run(r).info.status for r in kept} == {"RUNNING"}
    assert reap(client) == []  # nothing left to do: a second command changes nothing


def test_dead_sweep_parent_waits_for_its_live_children(
    tracking_uri: str, dead: tuple[int, str], sleeper: subprocess.Popen
) -> None:
    client = MlflowClient(tracking_uri)
    exp = client.create_experiment("sweep")
    parent = client.create_run(exp, run_name="sweep", tags={TAG_ROLE: ROLE_SWEEP, **where(*dead)})
    parent_id = parent.info.run_id
    live_job = client.create_run(
        exp,
        tags={MLFLOW_PARENT_RUN_ID: parent_id, **where(sleeper.pid, stat(sleeper.pid).start)},  # type: ignore[union-attr]
    )
    done_job = client.create_run(exp, tags={MLFLOW_PARENT_RUN_ID: parent_id})
    client.set_terminated(done_job.info.run_id, "FINISHED")

    assert reap(client) == []  # a job is still running: the sweep is not over
    client.set_terminated(live_job.info.run_id, "FINISHED")
    reaped = reap(client)

    assert [r.run_id for r in reaped] == [parent_id]
    closed = client.get_run(parent_id)
    assert closed.info.status == "KILLED" and closed.data.tags[TAG_N_CHILDREN] == "2"
    assert closed.data.tags[TAG_KILLED] == f"process {dead[0]} on host {this_process().host} is gone"


def test_opening_a_store_reaps_once_and_says_so_on_stderr(
    tmp_path: Path, tracking_uri: str, dead: tuple[int, str]
) -> None:
    client = MlflowClient(tracking_uri)
    exp = client.create_experiment("e")
    run_id = client.create_run(exp, run_name="lost", tags={TAG_ROLE: "run", **where(*dead)}).info.run_id

    proc = imblab("runs", "--experiment", "e", "--tracking-uri", tracking_uri, "--all", cwd=tmp_path)

    assert proc.returncode == 0, proc.stderr
    notice = f"imblab: marked run {run_id} (lost) KILLED: process {dead[0]} on host "
    assert proc.stderr.count(notice) == 1, proc.stderr
    assert client.get_run(run_id).info.status == "KILLED"
    assert "lost" in proc.stdout and "KILLED" in proc.stdout


def test_a_store_that_cannot_be_searched_is_a_warning_not_a_failure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    garbage = tmp_path / "not-a-db.db"
    garbage.write_bytes(b"this is not a SQLite database" * 100)
    tidy(f"sqlite:///{garbage}")  # must not raise
    assert "imblab: warning: could not look for dead runs in sqlite:///" in capsys.readouterr().err


def test_an_open_run_beats_until_it_closes(tracking_uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(HEARTBEAT_ENV, "0.2")
    client = MlflowClient(tracking_uri)
    run = client.create_run(client.create_experiment("beat"), tags=location_tags())
    run_id = run.info.run_id
    first = float(run.data.tags[TAG_HEARTBEAT])
    assert run.data.tags[TAG_HEARTBEAT_SECONDS] == "0.2"

    def beat() -> float:
        return float(client.get_run(run_id).data.tags[TAG_HEARTBEAT])

    with live(run_id, tracking_uri):
        deadline = time.monotonic() + 20
        while beat() == first and time.monotonic() < deadline:
            time.sleep(0.1)
        assert beat() > first
    time.sleep(0.5)  # let a beat that was under way land
    last = beat()
    time.sleep(1.0)
    assert beat() == last  # a closed run no longer beats


@pytest.mark.parametrize("value", ["abc", "0", "-5", "inf"])
def test_a_bad_heartbeat_interval_is_refused(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(HEARTBEAT_ENV, value)
    with pytest.raises(ImblabError, match=f"IMBLAB_HEARTBEAT_SECONDS='{value}' is not a positive number"):
        heartbeat_seconds()


def test_a_client_run_ends_killed_on_an_interrupt_and_failed_on_an_error(tracking_uri: str) -> None:
    client = MlflowClient(tracking_uri)
    exp = client.create_experiment("client-runs")
    killed, failed = (client.create_run(exp).info.run_id for _ in range(2))
    with pytest.raises(Interrupted), client_run(client, killed):
        raise Interrupted(signal.SIGTERM)
    with pytest.raises(RuntimeError), client_run(client, failed):
        raise RuntimeError("boom")
    run = client.get_run(killed)
    assert (run.info.status, run.data.tags[TAG_KILLED]) == ("KILLED", "interrupted by SIGTERM")
    assert client.get_run(failed).info.status == "FAILED"


def test_interrupted_survives_pickling_and_gives_the_shell_status() -> None:
    # joblib sends a worker's exception back to the parent pickled.
    exc = pickle.loads(pickle.dumps(Interrupted(signal.SIGTERM)))
    assert isinstance(exc, KeyboardInterrupt) and str(exc) == "interrupted by SIGTERM"
    assert (exc.exit_status, Interrupted(signal.SIGINT).exit_status) == (143, 130)


# A command (marks its children, starts its watchdog) with a worker in a session of its own, which has
# a worker of its own: the mark, not the process group or the parent, is what finds them.
COMMAND = textwrap.dedent(
    """
    import subprocess, sys, time
    from imblab.process import mark_workers, start_watchdog
    mark_workers()
    start_watchdog()
    worker = subprocess.Popen(
        [sys.executable, "-c", WORKER], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    print(worker.pid, worker.stdout.readline().strip(), flush=True)
    time.sleep(300)
    """
).replace(
    "WORKER",
    repr(
        "import subprocess, sys, time; "
        "inner = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)']); "
        "print(inner.pid, flush=True); time.sleep(300)"
    ),
)


def test_the_watchdog_kills_a_commands_workers_within_seconds_of_its_death() -> None:
    command = spawn([sys.executable, "-c", COMMAND], stdout=subprocess.PIPE, text=True)
    try:
        workers = [int(pid) for pid in command.stdout.readline().split()]  # type: ignore[union-attr]
        assert len(workers) == 2 and all(liveness(pid) == "alive" for pid in workers)
        command.send_signal(signal.SIGKILL)
        command.wait()
        deadline = time.monotonic() + 5
        while any(liveness(pid) == "alive" for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [liveness(pid) for pid in workers] == ["gone", "gone"]
    finally:
        stop_group(command, grace=1)


def test_a_mark_names_one_command(sleeper: subprocess.Popen) -> None:
    info = stat(sleeper.pid)
    assert info is not None
    worker = spawn(SLEEPER, env={**os.environ, WORKER_ENV: f"{sleeper.pid}:{info.start}"})
    try:
        assert marked(f"{sleeper.pid}:{info.start}") == [worker.pid]
        assert marked(f"{sleeper.pid}:{int(info.start) + 1}") == []  # the same pid, another process
        started = time.monotonic()
        wait_for_end(sleeper.pid, str(int(info.start) + 1))  # that other process is not running
        assert time.monotonic() - started < 1
    finally:
        stop_group(worker, grace=1)


def test_a_command_that_ends_cleanly_stops_its_watchdog(tmp_path: Path, tracking_uri: str) -> None:
    def watchdogs() -> list[int]:
        mine = []
        for entry in Path("/proc").iterdir():
            info = stat(int(entry.name)) if entry.name.isdigit() else None
            if info and info.ppid == os.getpid() and info.state != "Z":
                cmdline = (entry / "cmdline").read_bytes()
                mine += [int(entry.name)] if b"imblab.app.watchdog" in cmdline else []
        return mine

    assert imblab_main(["runs", "--experiment", "none", "--tracking-uri", tracking_uri]) == 2
    assert watchdogs() == []
    assert WORKER_ENV not in os.environ


def test_bad_lifecycle_settings_are_refused_before_anything_runs(tmp_path: Path, tracking_uri: str) -> None:
    for var, value, message in (
        ("IMBLAB_HEARTBEAT_SECONDS", "abc", "is not a positive number of seconds"),
        ("IMBLAB_KILL_GRACE_SECONDS", "-1", "is not a number of seconds >= 0"),
    ):
        proc = imblab("train", *FAST, f"tracking.uri={tracking_uri}", cwd=tmp_path, env={var: value})
        assert proc.returncode == 2, proc.stderr[-3000:]
        assert f"imblab: error: ${var}={value!r} {message}; unset it" in proc.stderr
    assert all_runs(tracking_uri) == []
