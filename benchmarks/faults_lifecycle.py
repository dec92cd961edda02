"""Fault drills for the run lifecycle: kill imblab commands and count what they leave behind.

Each drill starts a real ``imblab train`` (synthetic data, long enough that it cannot finish) in a fresh
SQLite store, waits until its runs are RUNNING, sends a signal to the main process, then measures:

* runs still RUNNING after one ``imblab runs`` (target 0): the command itself (SIGTERM, SIGINT) or the
  reaper in the next command (SIGKILL) must have ended them;
* worker processes alive 10 s after the command ended (target 0), and how long the last one outlived it;
* the exit status (SIGTERM 143, SIGINT 130) and traceback lines on the terminal (SIGINT: 0).

Drills: a run with ``cv.n_jobs=2`` (loky workers), a tuning run (parent + trial runs), a sweep on
Hydra's joblib launcher (2 jobs in parallel, each with loky workers of its own).

    .venv/bin/python benchmarks/faults_lifecycle.py [--keep]   # = benchmarks/faults.py --only lifecycle

``drill(workdir)`` returns ``[(name, figure, target), ...]`` for ``benchmarks/faults.py``, which gathers
every drill; ``drill(workdir, ["run"])`` runs the drills of some kinds only.
"""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

from mlflow.entities import Run

# The drills' process and store helpers are shared with the tests (tests/support).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.support.lifecycle import LONG_RUN, LONG_TUNING, all_runs, kill, start, wait_until, with_role
from tests.support.processes import orphans_of

Figure = tuple[str, float, str]
EXPERIMENT = "drill"
SETTLE = 10.0  # seconds after the command ended at which workers are counted


def _running_jobs(n: int) -> Callable[[list[Run]], bool]:
    return lambda runs: len([r for r in with_role(runs, "run") if r.info.status == "RUNNING"]) >= n


def _trials(n: int) -> Callable[[list[Run]], bool]:
    return lambda runs: len(with_role(runs, "trial")) >= n


SWEEP = ("threshold=fixed,best_f1", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2")
# kind -> (train arguments, when the command is ready to be killed; None: its run RUNNING + 2 workers)
KINDS: dict[str, tuple[tuple[str, ...], Callable[[list[Run]], bool] | None]] = {
    "run": ((*LONG_RUN, "cv.n_jobs=2"), None),
    "tuning run": (LONG_TUNING, _trials(2)),
    "joblib sweep": (("-m", *LONG_RUN, "cv.n_jobs=2", *SWEEP), _running_jobs(2)),
}
SIGNALS = {"SIGKILL": signal.SIGKILL, "SIGTERM": signal.SIGTERM, "SIGINT": signal.SIGINT}
EXIT = {"SIGTERM": 143, "SIGINT": 130}


def one(workdir: Path, kind: str, sig: str) -> list[Figure]:
    """Kill one ``kind`` of command with ``sig``; its figures."""
    args, ready = KINDS[kind]
    uri = f"sqlite:///{workdir / 'mlruns' / 'mlflow.db'}"
    cmd = start(["train", *args, f"tracking.uri={uri}", f"tracking.experiment={EXPERIMENT}"], workdir, uri)
    if ready is None:
        wait_until(cmd, lambda runs: bool(with_role(runs, "run")) and len(orphans_of(cmd.proc.pid)) >= 2)
    else:
        wait_until(cmd, ready)
    after = kill(cmd, SIGNALS[sig], settle=SETTLE, experiment=EXPERIMENT)
    what = f"{sig} of a {kind}"
    figures: list[Figure] = [
        (f"runs left RUNNING after {what} + one imblab runs", after.running_after, "0"),
        (f"orphan processes {SETTLE:g} s after {what}", after.orphans, "0"),
        (f"seconds the last worker outlived the command ({what})", round(after.orphan_seconds, 2), "<= 3"),
    ]
    if sig in EXIT:
        figures.append((f"exit status after {what}", after.returncode, str(EXIT[sig])))
        figures.append((f"runs RUNNING right after {what} exited", after.running_before, "0"))
    if sig == "SIGINT":
        figures.append((f"traceback lines after {what}", cmd.output().count("Traceback"), "0"))
    if kind == "joblib sweep":
        parents = with_role(all_runs(uri), "sweep")
        closed = len(parents) == 1 and parents[0].info.status == "KILLED"
        counted = closed and parents[0].data.tags.get("imblab.n_children") == "2"
        figures.append((f"sweep parent KILLED with its 2 jobs counted after {what}", int(counted), "1"))
    return figures


def drill(workdir: Path, kinds: list[str] | None = None) -> list[Figure]:
    """Every drill (or those of ``kinds``), each in its own directory under ``workdir``."""
    figures: list[Figure] = []
    plan = [(k, s) for k in (kinds or list(KINDS)) for s in ("SIGKILL", "SIGTERM")]
    if "run" in (kinds or KINDS):
        plan.insert(2, ("run", "SIGINT"))
    for i, (kind, sig) in enumerate(plan):
        started = time.perf_counter()
        found = one(workdir / f"{i:02d}-{kind.replace(' ', '-')}-{sig}", kind, sig)
        print(f"  {sig} of a {kind}: {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
        figures += found
    return figures


def main() -> int:
    """Run alone: the gatherer's table for this part, i.e. ``benchmarks/faults.py --only lifecycle``."""
    from faults import main as gather  # benchmarks/faults.py, beside this script

    sys.argv = [sys.argv[0], "--only", "lifecycle", *sys.argv[1:]]
    return gather()


if __name__ == "__main__":
    sys.exit(main())
