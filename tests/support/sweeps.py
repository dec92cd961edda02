"""A real ``imblab train -m`` sweep in a fresh store, for the comparison tests (and the notebook's)."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from mlflow.tracking import MlflowClient

from tests.conftest import FAST


@dataclass(frozen=True)
class SweepStore:
    root: Path
    uri: str
    experiment: str
    sweep_id: str


def run_sweep(
    root: Path,
    experiment: str,
    samplers: tuple[str, ...],
    policies: tuple[str, ...],
    extra: tuple[str, ...] = (),
) -> SweepStore:
    """A real ``imblab train -m`` sweep (FAST synthetic data, plus ``extra`` overrides) in a fresh store
    under ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    uri = f"sqlite:///{root / 'mlruns' / 'mlflow.db'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "IMBLAB_PARENT"))}
    env["IMBLAB_CACHE_DIR"] = str(root / "cache")
    overrides = [o for o in FAST if not o.startswith("sampler=")]
    cmd = [
        sys.executable, "-m", "imblab", "train", "-m", *overrides,
        f"sampler={','.join(samplers)}", f"threshold={','.join(policies)}",
        f"tracking.uri={uri}", f"tracking.experiment={experiment}", "tracking.log_model=false", *extra,
    ]  # fmt: skip
    proc = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    parents = client.search_runs([exp.experiment_id], "tags.`imblab.role` = 'sweep'")
    assert len(parents) == 1
    return SweepStore(root, uri, experiment, parents[0].info.run_id)
