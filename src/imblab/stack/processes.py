"""Long-lived server processes of the team stack: each in its own process group, found again by pid.

``imblab team-server stop`` runs in another process than ``start``, so a server is known by what the
state file recorded: its pid, its process group and its start time (a reused pid is not the server).
Stopping signals the whole group, so children a server forks (PostgreSQL's backends, uvicorn workers,
MLflow's ``huey_consumer`` job runners) go with it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from imblab.process import stat

PROC = Path("/proc")


def start_ticks(pid: int) -> int | None:
    """When ``pid`` started, in clock ticks since boot (tells a reused pid apart); None if gone (or a
    zombie)."""
    found = stat(pid)
    return int(found.start) if found and found.state != "Z" else None


def _table() -> dict[int, tuple[int, int, int]]:
    """Every live (non-zombie) process: pid -> (parent pid, process group, start ticks)."""
    table = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            found = stat(int(entry.name))
            if found and found.state != "Z":
                table[int(entry.name)] = (found.ppid, found.pgrp, int(found.start))
    return table


def group_members(pgid: int) -> list[int]:
    """Every live (non-zombie) process whose process group is ``pgid``."""
    return sorted(pid for pid, (_, group, _) in _table().items() if group == pgid)


def family(pid: int, pgid: int) -> dict[int, int]:
    """The processes of group ``pgid`` and every descendant of ``pid``: pid -> start ticks.

    Descendants count too because some servers move their children to sessions of their own
    (PostgreSQL's backends call ``setsid``), out of the group.
    """
    table = _table()
    found = {p: t for p, (_, group, t) in table.items() if group == pgid}
    frontier = [pid] if pid in table else []
    while frontier:
        parent = frontier.pop()
        for child, (ppid, _, ticks) in table.items():
            if ppid == parent and child not in found:
                found[child] = ticks
                frontier.append(child)
    if pid in table:
        found[pid] = table[pid][2]
    return found


def _still_there(tracked: dict[int, int], pgid: int | None) -> list[int]:
    left = {p for p, t in tracked.items() if start_ticks(p) == t}
    return sorted(left | set(group_members(pgid) if pgid is not None else ()))


@dataclass(frozen=True)
class Server:
    """A started server process: enough to find it, and its group, from another process."""

    name: str
    pid: int
    pgid: int
    ticks: int
    port: int
    log: str

    def alive(self) -> bool:
        return start_ticks(self.pid) == self.ticks

    def group(self) -> int | None:
        """The server's process group while it can still be ours: the kernel never hands out a pid
        that is some group's id, so a live process with the server's pid but another start time
        means the server and its whole group are gone (their id was free to reuse)."""
        reused = not self.alive() and start_ticks(self.pid) is not None
        return None if reused else self.pgid

    def members(self) -> list[int]:
        """The live processes of the server: its group and its descendants."""
        group = self.group()
        return sorted(family(self.pid, group)) if group is not None else []

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Server:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__})


def launch(name: str, argv: list[str], log: Path, port: int, **kwargs: Any) -> Server:
    """Start ``argv`` in a new session (its own process group), output appended to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
            **kwargs,
        )
    ticks = start_ticks(proc.pid)
    # Popen objects are not kept: the server outlives this process. Python would warn about a child
    # still running when the object is collected, so mark it as handled.
    proc.returncode = 0
    return Server(name, proc.pid, proc.pid, ticks or 0, port, str(log))


def stop(server: Server, first: int = signal.SIGTERM, grace: float = 20.0) -> list[int]:
    """Signal the server with ``first``, wait up to ``grace`` s for it and its family (group and
    descendants) to end, then SIGKILL whatever is left; returns the pids still there (normally none)."""
    group = server.group()
    tracked = family(server.pid, server.pgid) if server.alive() else {}
    if server.alive():
        with contextlib.suppress(ProcessLookupError):
            os.kill(server.pid, first)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and _still_there(tracked, group):
        _reap(server.pid)
        time.sleep(0.1)
    for pid in _still_there(tracked, group):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline and _still_there(tracked, group):
        _reap(server.pid)
        time.sleep(0.05)
    _reap(server.pid)
    return _still_there(tracked, group)


def _reap(pid: int) -> None:
    """Collect ``pid`` if it is our own child (a server started by this very process)."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)
