"""The team stack's parts that need no server: process families, the CLI's refusals, the sweep record.

The stack itself, on real servers, is tested in ``tests/test_team_server.py`` (slow).
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from imblab.stack.processes import Server, family, launch, stop
from imblab.tracking.sweeps import PARENT_ENV, PARENT_URI_ENV, open_sweep, parent_run_id
from tests.support.cli import imblab

# A server whose child leaves the process group (as PostgreSQL's backends do, with setsid) and a
# grandchild that stays in it.
TREE = "setsid sleep 300 & (sleep 300 & wait) & wait"


def test_stop_ends_the_whole_family_even_children_in_their_own_session(tmp_path: Path) -> None:
    server = launch("tree", ["sh", "-c", TREE], tmp_path / "tree.log", 0)
    try:
        members = {}
        for _ in range(100):  # the shell forks its children right after it starts
            members = family(server.pid, server.pgid)
            if len(members) >= 4:
                break
            os.sched_yield()
        assert server.alive() and len(members) >= 4  # sh, setsid'd sleep, subshell, its sleep
        assert stop(server, grace=5.0) == []
        assert not server.alive()
        assert not [pid for pid in members if os.path.exists(f"/proc/{pid}") and _not_zombie(pid)]
    finally:
        stop(server, grace=0.0)


def _not_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def test_a_reused_pid_is_not_the_server(tmp_path: Path) -> None:
    server = launch("sleep", ["sleep", "300"], tmp_path / "sleep.log", 0)
    try:
        other = Server.from_json({**server.to_json(), "ticks": server.ticks - 1})  # same pid, other start
        assert server.alive() and not other.alive()
        assert stop(other, grace=0.5) == []  # nothing of "its" is running: the real process is untouched
        assert server.alive()
    finally:
        assert stop(server) == []


def test_status_and_stop_of_a_directory_without_a_stack(tmp_path: Path) -> None:
    status = imblab("team-server", "status", "--dir", str(tmp_path / "none"), cwd=tmp_path)
    assert status.returncode == 3 and "not running (nothing recorded under" in status.stderr
    stopped = imblab("team-server", "stop", "--dir", str(tmp_path / "none"), cwd=tmp_path)
    assert stopped.returncode == 0 and "nothing to stop" in stopped.stderr


def test_start_refuses_a_taken_port_before_starting_anything(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = imblab("team-server", "start", "--dir", str(tmp_path / "s"), "--port", str(port), cwd=tmp_path)
    assert done.returncode == 2
    assert f"imblab: error: port {port} on 127.0.0.1 is taken; pick another with --port" in done.stderr
    assert not (tmp_path / "s" / "team-server.json").exists() and not (tmp_path / "s" / "postgres").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="only root runs PostgreSQL as user postgres")
def test_start_as_root_refuses_a_directory_user_postgres_cannot_enter(tmp_path: Path) -> None:
    tmp_path.chmod(0o700)  # as pytest makes it
    done = imblab("team-server", "start", "--dir", str(tmp_path / "s"), "--port", "0", cwd=tmp_path)
    assert done.returncode == 2
    assert f"imblab: error: user postgres cannot enter {tmp_path}" in done.stderr
    assert not list((tmp_path / "s").glob("*pass*"))  # no secret written


def test_a_sweep_job_without_the_environment_finds_its_parent_in_the_sweep_directory(
    tmp_path: Path, tracking_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    sweep_dir = tmp_path / "multirun" / "x"
    run_id = open_sweep(tracking_uri, "sweeps", "sweep a,b", 2, sweep_dir)
    assert parent_run_id(True) == run_id  # a job on this machine: from the environment
    monkeypatch.delenv(PARENT_ENV)
    monkeypatch.delenv(PARENT_URI_ENV)
    assert parent_run_id(True, sweep_dir) == run_id  # a job elsewhere: from the shared sweep directory
    assert parent_run_id(False, sweep_dir) is None  # not a sweep job
    assert parent_run_id(True, tmp_path / "other") is None
