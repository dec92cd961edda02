"""Concurrent ``imblab promote`` processes lined up on the promotion lock (tests and the fault drill).

Used by ``tests/test_promote_concurrency.py`` and ``benchmarks/faults_promote.py``; not part of imblab.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from imblab.registry.lock import WAITING, promotion_lock
from tests.support.processes import spawn, stop_group


@dataclass
class Finished:
    """One finished ``imblab promote`` process."""

    returncode: int
    stdout: str
    stderr: str


def lined_up_promotes(
    n: int,
    args: list[str],
    tracking_uri: str,
    model_name: str,
    workdir: Path,
    env: dict[str, str] | None = None,
    timeout: float = 600.0,
) -> list[Finished]:
    """Run ``n`` ``imblab promote <args>`` at once, all released into the critical section together.

    The caller's process holds the promotion lock while the ``n`` processes start, choose the run and
    score it (the part done without the lock); once every one of them reports that it waits for the
    lock, the lock is released, so all ``n`` contend for it at the same moment: the worst case.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    outs = [(workdir / f"promote-{i}.out", workdir / f"promote-{i}.err") for i in range(n)]
    procs = []
    deadline = time.monotonic() + timeout
    try:
        with promotion_lock(tracking_uri, model_name):
            for out, err in outs:
                with out.open("wb") as so, err.open("wb") as se:
                    argv = [sys.executable, "-m", "imblab", "promote", *args, "--tracking-uri", tracking_uri]
                    procs.append(
                        spawn(argv, cwd=workdir, stdout=so, stderr=se, env={**os.environ, **(env or {})})
                    )
            while not all(WAITING in err.read_text() for _, err in outs):
                if any(p.poll() is not None for p in procs):
                    break  # one ended before waiting (an error, or no lock taken): report what happened
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"the {n} promotes did not all reach the promotion lock in {timeout:.0f}s"
                    )
                time.sleep(0.1)
        for p in procs:
            p.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        for p in procs:
            if p.poll() is None:
                stop_group(p)
    return [
        Finished(p.returncode, o.read_text(), e.read_text()) for p, (o, e) in zip(procs, outs, strict=True)
    ]
