"""A run while it lives: where it runs, its heartbeat, and this process's open runs.

Every run imblab opens records at its start where it lives (host, pid namespace, pid, process start
time) and a heartbeat tag that a daemon thread rewrites every ``$IMBLAB_HEARTBEAT_SECONDS`` (30 s) while
the run is open: one tag write per beat. ``imblab.tracking.reaper`` reads them to tell a dead run from a
live one. The registry of open runs is also what a signal handler ends when unwinding takes too long.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Iterator

from mlflow.entities import RunStatus
from mlflow.tracking import MlflowClient

from imblab.errors import ImblabError
from imblab.process import this_process
from imblab.tracking.layout import (
    TAG_HEARTBEAT,
    TAG_HEARTBEAT_SECONDS,
    TAG_HOST,
    TAG_KILLED,
    TAG_PID,
    TAG_PID_SCOPE,
    TAG_PROCESS_START,
)

log = logging.getLogger(__name__)

HEARTBEAT_ENV = "IMBLAB_HEARTBEAT_SECONDS"
DEFAULT_HEARTBEAT_SECONDS = 30.0
KILLED = RunStatus.to_string(RunStatus.KILLED)


def env_seconds(var: str, default: float, zero: bool = False) -> float:
    """A number of seconds from environment variable ``var`` (``default`` when unset); more than zero, or
    at least zero with ``zero``. Anything else is an ``ImblabError`` saying what to set."""
    text = os.environ.get(var, "").strip()
    try:
        seconds = float(text) if text else default
    except ValueError:
        seconds = float("nan")
    if not (seconds >= 0 if zero else seconds > 0) or seconds == float("inf"):
        what = "a number of seconds >= 0" if zero else "a positive number of seconds"
        raise ImblabError(
            f"${var}={text!r} is not {what}; unset it (default {default:g}) or set e.g. {var}={default:g}"
        )
    return seconds


def heartbeat_seconds() -> float:
    """The beat interval: ``$IMBLAB_HEARTBEAT_SECONDS``, default 30."""
    return env_seconds(HEARTBEAT_ENV, DEFAULT_HEARTBEAT_SECONDS)


def location_tags() -> dict[str, str]:
    """Where this process's new run lives, and its first heartbeat: tags for ``create_run``."""
    me = this_process()
    tags = {
        TAG_HOST: me.host,
        TAG_PID_SCOPE: me.scope,
        TAG_PID: str(me.pid),
        TAG_PROCESS_START: me.start,
        TAG_HEARTBEAT: f"{time.time():.3f}",
        TAG_HEARTBEAT_SECONDS: f"{heartbeat_seconds():g}",
    }
    return {k: v for k, v in tags.items() if v}


def mark_killed(client: MlflowClient, run_id: str, reason: str, end_time: int | None = None) -> None:
    """End ``run_id`` KILLED with ``reason`` in tag ``imblab.killed_reason``."""
    client.set_tag(run_id, TAG_KILLED, reason[:5000])
    client.set_terminated(run_id, KILLED, end_time=end_time)


class _OpenRuns:
    """This process's open runs (run id -> tracking URI) and the thread that beats for them."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.runs: dict[str, str] = {}
        self.thread: threading.Thread | None = None
        self.clients: dict[str, MlflowClient] = {}
        self.wake = threading.Event()  # a run opened: re-read the interval

    def add(self, run_id: str, uri: str) -> None:
        with self.lock:
            self.runs[run_id] = uri
            self.wake.set()
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self.beat_forever, name="imblab-heartbeat", daemon=True)
                self.thread.start()

    def remove(self, run_id: str) -> None:
        with self.lock:
            self.runs.pop(run_id, None)

    def snapshot(self) -> dict[str, str]:
        with self.lock:
            return dict(self.runs)

    def client(self, uri: str) -> MlflowClient:
        with self.lock:
            if uri not in self.clients:
                self.clients[uri] = MlflowClient(uri)
            return self.clients[uri]

    def beat(self) -> None:
        now = f"{time.time():.3f}"
        for run_id, uri in self.snapshot().items():
            try:
                self.client(uri).set_tag(run_id, TAG_HEARTBEAT, now)
            except Exception as exc:  # a busy store: the next beat tries again
                log.debug("heartbeat of run %s failed: %s", run_id, exc)

    def beat_forever(self) -> None:
        last = time.monotonic()
        while True:
            try:  # read again whenever a run opens: the environment may have changed it
                every = heartbeat_seconds()
            except ImblabError:
                every = DEFAULT_HEARTBEAT_SECONDS
            if self.wake.wait(max(last + every - time.monotonic(), 0.0)):
                self.wake.clear()
                continue
            self.beat()
            last = time.monotonic()


OPEN_RUNS = _OpenRuns()


@contextlib.contextmanager
def live(run_id: str, uri: str) -> Iterator[None]:
    """Keep ``run_id`` beating, and known as open in this process, while the body runs."""
    OPEN_RUNS.add(run_id, uri)
    try:
        yield
    finally:
        OPEN_RUNS.remove(run_id)


@contextlib.contextmanager
def client_run(client: MlflowClient, run_id: str) -> Iterator[None]:
    """A run created with ``client.create_run``: live while the body runs; if the body raises, the run ends
    KILLED (an interrupt) or FAILED, never left RUNNING."""
    with live(run_id, client.tracking_uri):
        try:
            yield
        except BaseException as exc:
            with contextlib.suppress(Exception):
                if isinstance(exc, KeyboardInterrupt):
                    mark_killed(client, run_id, str(exc) or "interrupted")
                else:
                    client.set_terminated(run_id, RunStatus.to_string(RunStatus.FAILED))
            raise


def kill_open_runs(reason: str) -> list[str]:
    """End every run this process still has open KILLED (a signal's last resort); returns their ids."""
    ended = []
    for run_id, uri in OPEN_RUNS.snapshot().items():
        try:
            mark_killed(OPEN_RUNS.client(uri), run_id, reason)
            ended.append(run_id)
        except Exception as exc:
            log.warning("could not mark run %s KILLED: %s", run_id, exc)
        OPEN_RUNS.remove(run_id)
    return ended
