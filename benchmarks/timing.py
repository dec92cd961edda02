"""Timing ``imblab train`` as a user runs it: a subprocess, in a fresh tracking store and fit cache."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time


def timed_train(args: list[str], env: dict[str, str]) -> tuple[float, list[tuple[dict[str, float], float]]]:
    """Wall seconds of ``imblab train <args>`` and, for each of its training runs (oldest first), its
    metrics and its own seconds (MLflow start to end: one job of a sweep).

    Exits with the command's stderr when it fails: a benchmark of a failing command means nothing.
    """
    from mlflow.tracking import MlflowClient

    with tempfile.TemporaryDirectory() as tmp:
        uri = f"sqlite:///{tmp}/mlruns/mlflow.db"
        cmd = [sys.executable, "-m", "imblab", "train", *args, f"tracking.uri={uri}"]
        cmd.append("tracking.experiment=bench")
        start = time.perf_counter()
        proc = subprocess.run(
            cmd, cwd=tmp, capture_output=True, text=True, env={**env, "IMBLAB_CACHE_DIR": f"{tmp}/cache"}
        )
        elapsed = time.perf_counter() - start
        if proc.returncode != 0:
            sys.exit(f"benchmark command failed: {' '.join(cmd)}\n{proc.stderr[-3000:]}")
        client = MlflowClient(uri)
        exp = client.get_experiment_by_name("bench")
        runs = client.search_runs([exp.experiment_id], "tags.`imblab.role` = 'run'", order_by=["start_time"])
        return elapsed, [(dict(r.data.metrics), (r.info.end_time - r.info.start_time) / 1000) for r in runs]
