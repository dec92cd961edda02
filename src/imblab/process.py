"""Processes on this machine: an identity that survives PID reuse, liveness, and worker processes that
die with their parent.

A pid alone does not identify a process: once it exits the kernel may hand the number to another one.
``(scope, pid, start)`` does: ``scope`` is the boot and PID namespace in which the pid means something
(two containers may share a host name, never a namespace), ``start`` the process's start time in clock
ticks since boot (``/proc/<pid>/stat``, field 22).

Worker processes (loky workers of ``cv.n_jobs``, Hydra's joblib launcher, anything an imblab command
starts that imports imblab) inherit ``$IMBLAB_WORKER_OF`` from the command. ``guard_worker``, run on
``import imblab``, ties such a process to its parent with Linux's ``PR_SET_PDEATHSIG``: the kernel sends
it SIGKILL the moment its parent dies, however the parent died (SIGKILL included), even in the middle of
a long C call. loky itself only notices a dead parent between two tasks, when its queue read fails; a
worker busy with (or holding queued) fits runs on as an orphan. Elsewhere than Linux a daemon thread
polls the parent pid instead. The kernel ties the signal to the parent *thread* that started the worker:
imblab starts workers from main threads (``protocol.cv``'s ``Parallel``, Hydra's launcher), and loky's own
manager thread, which may respawn one, lives as long as its pool.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path

WORKER_ENV = "IMBLAB_WORKER_OF"  # "<pid>:<start>" of the imblab command a worker process belongs to
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


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


def guard_worker() -> None:
    """In a worker of an imblab command: die with the parent process (see the module docstring)."""
    marker = os.environ.get(WORKER_ENV, "")
    command, _, start = marker.partition(":")
    if not command.isdigit() or int(command) == os.getpid():
        return  # not a worker, or the command itself
    parent = os.getppid()
    if not _die_with_parent(parent):
        _watch_parent(parent)
    # The parent (or the command) may have died before the guard was armed: then it never fires.
    if os.getppid() != parent or liveness(int(command), start) != "alive":
        os._exit(1)


def _die_with_parent(parent: int) -> bool:
    """Ask the kernel for SIGKILL when the parent dies (Linux); False where that is not available."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _watch_parent(parent: int, every: float = 1.0) -> None:
    """A daemon thread that ends this process once its parent is gone (re-parented)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(every)
        os._exit(1)

    threading.Thread(target=watch, name="imblab-parent-watch", daemon=True).start()
