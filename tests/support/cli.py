"""Running the ``imblab`` command as a user does (a real subprocess) and reading its runs back."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from mlflow.tracking import MlflowClient


def imblab(
    *args: str,
    cwd: Path,
    env: dict[str, str] | None = None,
    timeout: int = 600,
    prefix: Sequence[str] = (),
) -> subprocess.CompletedProcess:
    """``imblab *args`` in a subprocess; ``prefix`` runs it under another command (``unprivileged()``)."""
    return subprocess.run(
        [*prefix, sys.executable, "-m", "imblab", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def runs_of(uri: str, experiment: str) -> list:
    """Every run of ``experiment`` in the store at ``uri`` (none when the experiment does not exist)."""
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    return client.search_runs([exp.experiment_id], max_results=1000) if exp else []
