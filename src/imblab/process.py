"""Processes on this machine: an identity that survives PID reuse, liveness, and a command's workers,
which must not outlive it.

A pid alone does not identify a process: once it exits the kernel may hand the number to another one.
``(scope, pid, start)`` does: ``scope`` is the boot and PID namespace in which the pid means something
(two containers may share a host name, never a namespace), ``start`` the process's start time in clock
ticks since boot (``/proc/<pid>/stat``, field 22).

Every process an imblab command starts (loky workers of ``cv.n_jobs``, Hydra's joblib launcher
workers and their own pools, loky's resource trackers, subprocesses) inherits ``$IMBLAB_WORKER_OF``
(``<pid>:<start>`` of the command). A watchdog process (``imblab.app.watchdog``), started by the
command without that mark, waits for the command to end (a Linux pidfd: woken the instant it exits,
however it died) and then SIGKILLs every process still carrying the mark. Why not in the workers
themselves: loky only notices a dead parent between two tasks, and a worker that has not run a task yet
has run no imblab code (killed seconds after start, both of loky's workers sat idle on a queue whose
ends they hold themselves, for loky's 300 s idle timeout); ``PR_SET_PDEATHSIG`` would have to be armed
by code in each worker and follows the parent *thread* that started it (loky starts workers from
whichever thread submits). The mark is exact: it names the command's start time, so a reused pid
matches nothing.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path

WORKER_ENV = "IMBLAB_WORKER_OF"  # "<pid>:<start>" of the imblab command a worker process belongs to


@dataclass(frozen=True)
class Stat:
    """What ``/proc/<pid>/stat`` says about a process."""

    state: str  # R, S, D, Z (zombie: exited, not yet waited for), ...
    ppid: int
    pgrp: int
    start: str  # start time, clock ticks since boot


def stat(pid: int) -> Stat | None:
    """``/proc/<pid>/stat`` parsed, or None when there is no such process (or no ``/proc``)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (OSError, ValueError):
        return None
    # The command name (field 2) is in parentheses and may itself contain spaces or parentheses.
    fields = text[text.rindex(")") + 2 :].split()
    return Stat(state=fields[0], ppid=int(fields[1]), pgrp=int(fields[2]), start=fields[19])


@cache
def scope() -> str:
    """Where a pid names one process: this boot and this PID namespace (empty when unknown)."""
    parts = []
    with contextlib.suppress(OSError):
        parts.append(Path("/proc/sys/kernel/random/boot_id").read_text().strip())
    with contextlib.suppress(OSError):
        parts.append(os.readlink("/proc/self/ns/pid"))
    return "/".join(parts)


@dataclass(frozen=True)
class ProcessId:
    """A process, named so that a reused pid does not match it."""

    host: str
    scope: str
    pid: int
    start: str  # empty when the platform has no /proc


def this_process() -> ProcessId:
    pid = os.getpid()
    own = stat(pid)
    return ProcessId(socket.gethostname(), scope(), pid, own.start if own else "")


def liveness(pid: int, start: str = "") -> str:
    """``"alive"``, ``"gone"`` (no such process, or a zombie) or ``"reused"`` (another process, same pid),
    for a process of this machine and namespace."""
    found = stat(pid)
    if found is None:
        if Path("/proc/self/stat").exists():
            return "gone"
        try:  # no /proc (macOS): the pid is all there is
            os.kill(pid, 0)
        except ProcessLookupError:
            return "gone"
        except PermissionError:
            return "alive"
        return "alive"
    if found.state in ("Z", "X"):
        return "gone"
    if start and found.start != start:
        return "reused"
    return "alive"


def mark_workers() -> dict[str, str | None]:
    """Mark this process as the imblab command whose children are its workers (``$IMBLAB_WORKER_OF``).

    Returns the previous environment, for ``unmark_workers``.
    """
    me = this_process()
    previous = {WORKER_ENV: os.environ.get(WORKER_ENV)}
    os.environ[WORKER_ENV] = f"{me.pid}:{me.start}"
    return previous


def unmark_workers(previous: dict[str, str | None]) -> None:
    for key, value in previous.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def marked(mark: str) -> list[int]:
    """Processes (other than this one) started with ``$IMBLAB_WORKER_OF=<mark>`` and still running."""
    needle = f"{WORKER_ENV}={mark}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()  # the environment it was started with
        except OSError:  # gone meanwhile, or another user's
            continue
        info = stat(int(entry.name))
        if needle in environ.split(b"\0") and info is not None and info.state not in ("Z", "X"):
            found.append(int(entry.name))
    return found


def wait_for_end(pid: int, start: str, poll: float = 0.2) -> None:
    """Return once process ``pid`` (started at ``start``) has ended."""
    fd = None
    with contextlib.suppress(AttributeError, OSError):  # pidfd: Linux >= 5.3
        fd = os.pidfd_open(pid)
    try:
        # The pidfd may name a process that reused the pid: check the start time after opening it.
        while liveness(pid, start) == "alive":
            if fd is not None:
                select.select([fd], [], [])  # readable when the process exits
            else:
                time.sleep(poll)
    finally:
        if fd is not None:
            os.close(fd)


def sweep(mark: str, rounds: int = 5, pause: float = 0.2) -> int:
    """SIGKILL the processes carrying ``mark``, round after round until one finds none (a process may have
    been starting); returns how many were killed."""
    killed: set[int] = set()
    for _ in range(rounds):
        found = marked(mark)  # live ones only: a killed process is at most a zombie
        if not found:
            break
        for pid in found:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        killed.update(found)
        time.sleep(pause)
    return len(killed)


def start_watchdog() -> subprocess.Popen | None:
    """Mark this process's future children and start the watchdog that kills them once it ends.

    None where processes cannot be enumerated (no ``/proc``).
    """
    mark = os.environ.get(WORKER_ENV, "")
    if not Path("/proc/self/environ").exists() or not mark:
        return None
    env = {k: v for k, v in os.environ.items() if k != WORKER_ENV}  # it is no worker to kill
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "imblab.app.watchdog", mark],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
        )
    except OSError:  # no watchdog is no reason to refuse the command
        return None


def stop_watchdog(watchdog: subprocess.Popen | None) -> None:
    """The command ended cleanly: its pools have shut down, the watchdog has nothing to do."""
    if watchdog is not None:
        with contextlib.suppress(ProcessLookupError):
            watchdog.kill()
        watchdog.wait()
