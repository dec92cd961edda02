"""SIGINT and SIGTERM in an imblab command: its runs end KILLED and it exits 130 / 143.

The handler raises ``imblab.errors.Interrupted`` (a ``KeyboardInterrupt``) in the main thread, where
Python runs signal handlers between bytecodes: between two LightGBM boosting rounds, or in joblib's
result-polling loop. Everything then unwinds as for Ctrl-C: joblib's ``Parallel`` aborts and terminates
its workers, Optuna fails the trial, ``tracked_run`` ends the run KILLED, ``run_hydra`` the sweep
parent. Unwinding can block (Optuna's thread pool waits for its running trials; a C call that does not
return), so the first signal also starts a watchdog: after ``$IMBLAB_KILL_GRACE_SECONDS`` (10 s), or at
a second signal, it ends the runs this process still has open KILLED itself and exits at once.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType

from imblab.errors import Interrupted
from imblab.tracking.lifecycle import env_seconds, kill_open_runs

GRACE_ENV = "IMBLAB_KILL_GRACE_SECONDS"
DEFAULT_GRACE_SECONDS = 10.0
SIGNALS = (signal.SIGINT, signal.SIGTERM)


def grace_seconds() -> float:
    """How long the main thread may unwind after a signal: ``$IMBLAB_KILL_GRACE_SECONDS``, default 10."""
    return env_seconds(GRACE_ENV, DEFAULT_GRACE_SECONDS, zero=True)


def _last_resort(signum: int, grace: float, hurry: threading.Event) -> None:
    """Give the main thread its grace period to unwind; then end the open runs and exit."""
    hurry.wait(grace)
    reason = str(Interrupted(signum))
    ended = kill_open_runs(f"{reason} (unwinding did not finish in time)")
    print(f"imblab: {reason}; ended {len(ended)} open run(s) KILLED and exited", file=sys.stderr, flush=True)
    os._exit(128 + signum)


def install() -> Callable[[], None]:
    """Install the handlers (main thread only); returns a function that restores the previous ones.

    Reads ``$IMBLAB_KILL_GRACE_SECONDS`` now: a bad value is an ``ImblabError`` before anything runs.
    """
    grace = grace_seconds()
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = {signum: signal.getsignal(signum) for signum in SIGNALS}
    hurry = threading.Event()
    first: list[int] = []

    def handler(signum: int, frame: FrameType | None) -> None:
        if first:  # a second signal: stop waiting for the unwinding
            hurry.set()
            return
        first.append(signum)
        watchdog = threading.Thread(target=_last_resort, args=(signum, grace, hurry), daemon=True)
        watchdog.start()
        raise Interrupted(signum)

    for signum in SIGNALS:
        signal.signal(signum, handler)

    def restore() -> None:
        for signum, old in previous.items():
            signal.signal(signum, old)

    return restore
