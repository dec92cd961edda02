"""Fault drill: three processes use a new MLflow store for the first time, at once.

Starts three ``imblab train`` processes together (tiny synthetic runs, no model logged) on a SQLite
store that does not exist yet, and counts the processes that exit 0 with their run FINISHED. Without
imblab's store lock, MLflow's schema creation races: one process succeeded and two crashed
(``duplicate column name: step``, ``table ... already exists``).

    .venv/bin/python benchmarks/faults_store.py [--rounds 3] [--workdir DIR]

``drill(workdir)`` returns ``[(name, figure, target)]`` for the script that gathers every drill.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mlflow.tracking import MlflowClient

# The quickest training run is the tests' (tests/conftest.py).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.conftest import QUICK

REPO = Path(__file__).resolve().parents[1]
PROCESSES = 3
NAME = f"processes that succeed on {PROCESSES} concurrent first uses of a new store"


def first_use(store_dir: Path) -> tuple[int, list[str]]:
    """Start the processes together on ``store_dir/mlflow.db`` (absent); the number that exit 0 with
    a FINISHED run, and the error tail of those that did not."""
    uri = f"sqlite:///{store_dir / 'mlflow.db'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "IMBLAB_PARENT"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "src"), env.get("PYTHONPATH")]))
    env["IMBLAB_CACHE_DIR"] = str(store_dir / "cache")
    tracking = ["tracking.log_model=false", "tracking.experiment=drill", f"tracking.uri={uri}"]
    cmd = [sys.executable, "-m", "imblab", "train", *QUICK, *tracking]
    procs = [
        subprocess.Popen(
            cmd, cwd=store_dir.parent, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        for _ in range(PROCESSES)
    ]
    errors = [p.communicate(timeout=900)[1] for p in procs]
    ok = sum(p.returncode == 0 for p in procs)
    failed = [_cause(err) for p, err in zip(procs, errors, strict=True) if p.returncode]
    try:
        client = MlflowClient(uri)
        exp = client.get_experiment_by_name("drill")
        finished = (
            sum(r.info.status == "FINISHED" for r in client.search_runs([exp.experiment_id])) if exp else 0
        )
    except Exception as exc:  # a race can leave the schema half-migrated
        failed.append(f"the store is unreadable afterwards: {_cause(str(exc))}")
        finished = 0
    return min(ok, finished), failed


def _cause(stderr: str) -> str:
    """The exception line of a failed process's stderr (Hydra ends it with a hint, not the error)."""
    lines = [ln for ln in stderr.splitlines() if "Error" in ln and "HYDRA_FULL_ERROR" not in ln]
    return lines[-1].strip()[:300] if lines else (stderr.strip().splitlines() or ["?"])[-1]


def drill(workdir: Path, rounds: int = 1) -> list[tuple[str, float, str]]:
    """The worst round's count of processes that succeed (target: all of them)."""
    worst = PROCESSES
    for i in range(rounds):
        store_dir = Path(workdir) / f"store-{i}-{time.time_ns()}"
        store_dir.mkdir(parents=True)
        ok, failed = first_use(store_dir)
        print(f"round {i + 1}: {ok} of {PROCESSES} succeeded" + "".join(f"\n  {f}" for f in failed))
        worst = min(worst, ok)
    return [(NAME, float(worst), str(PROCESSES))]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3, help="repeat on a new store each time (default: 3)")
    p.add_argument("--workdir", type=Path, default=None, help="default: a temporary directory")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = drill(args.workdir or Path(tmp), args.rounds)
    for name, figure, target in rows:
        print(f"{name}: {figure:g} (target {target})")


if __name__ == "__main__":
    main()
