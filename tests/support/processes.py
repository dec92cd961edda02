"""Processes that tests start run in their own process group and are stopped as a whole group, so a
server's or worker's children never outlive a test, even when the test fails."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def spawn(argv: list[str], **kwargs: Any) -> subprocess.Popen:
    """``subprocess.Popen`` in a new session (its own process group)."""
    return subprocess.Popen(argv, start_new_session=True, **kwargs)


def stop_group(proc: subprocess.Popen, grace: float = 15.0) -> None:
    """SIGTERM the process's whole group, SIGKILL it after ``grace`` seconds; reap the process."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=grace)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # children that ignored SIGTERM, or a stuck parent
    proc.wait()


@contextlib.contextmanager
def stopped_at_exit(*procs: subprocess.Popen) -> Iterator[None]:
    """Stop every process group on the way out, whatever happened inside."""
    try:
        yield
    finally:
        for proc in procs:
            stop_group(proc)


def orphans_of(pid: int) -> list[int]:
    """Processes still running (zombies aside) that belong to the dead process ``pid``: its process group
    (``spawn`` made ``pid`` a group leader) or its imblab workers (``$IMBLAB_WORKER_OF=<pid>:...``)."""
    from imblab.process import WORKER_ENV, stat

    marker = f"{WORKER_ENV}={pid}:".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == pid:
            continue
        info = stat(int(entry.name))
        if info is None or info.state in ("Z", "X"):
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            environ = b""
        if info.pgrp == pid or any(var.startswith(marker) for var in environ.split(b"\0")):
            found.append(int(entry.name))
    return found


def orphans_within(pid: int, seconds: float) -> list[int]:
    """``orphans_of(pid)`` once none is left or ``seconds`` have passed, whichever comes first."""
    deadline = time.monotonic() + seconds
    while (left := orphans_of(pid)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def kill_all(pids: list[int]) -> None:
    """SIGKILL ``pids`` (orphans a test found: they must not outlive it either)."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def wait_for_health(proc: subprocess.Popen, url: str, log_path: Path, what: str, timeout: float) -> None:
    """Return once ``url`` answers 200; raise with the end of ``log_path`` if ``proc`` exits first, or
    after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited: {log_path.read_text()[-3000:]}")
        with (
            contextlib.suppress(urllib.error.URLError, ConnectionError, TimeoutError),
            urllib.request.urlopen(url, timeout=2) as resp,
        ):
            if resp.status == 200:
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not answer {url} within {timeout:.0f}s")
        time.sleep(0.3)
