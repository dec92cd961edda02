"""All MLflow I/O of a training run lives here, so the science stays testable without it.

Store layout of the embedded default: ``sqlite:///<cwd>/mlruns/mlflow.db`` for runs and
``<cwd>/mlruns/artifacts`` for artifacts. ``MLFLOW_TRACKING_URI`` wins over that default when
``tracking.uri`` is not set, as in every MLflow tool.

A Hydra multirun gets one parent run per sweep (``SweepCallback``); every job's run is its child.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import mlflow
from hydra.experimental.callback import Callback
from mlflow.entities import RunStatus
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig, OmegaConf

from imblab.errors import ImblabError

PARENT_ENV = "IMBLAB_PARENT_RUN_ID"
PARENT_URI_ENV = "IMBLAB_PARENT_TRACKING_URI"
TAG_SWEEP = "imblab.sweep_id"
TAG_ERROR = "imblab.error"
TAG_ERROR_TYPE = "imblab.error_type"
TAG_ROLE = "imblab.role"  # "sweep" for a sweep's parent run, "run" for a training run


def default_tracking_uri(cwd: str | os.PathLike[str] | None = None) -> str:
    db = Path(cwd or os.getcwd()).resolve() / "mlruns" / "mlflow.db"
    return f"sqlite:///{db}"


def resolve_tracking_uri(uri: str | None = None) -> str:
    """Explicit ``uri`` > ``$MLFLOW_TRACKING_URI`` > the embedded SQLite store under ./mlruns."""
    return uri or os.environ.get("MLFLOW_TRACKING_URI") or default_tracking_uri()


def artifact_location(uri: str) -> str | None:
    """For a SQLite store, keep artifacts beside the database (``<db dir>/artifacts``)."""
    if uri.startswith("sqlite:///"):
        db = Path(urlparse(uri).path)
        return (db.parent / "artifacts").resolve().as_uri()
    return None  # a tracking server decides its own artifact root


def use_tracking(uri: str | None) -> str:
    """Point MLflow at the resolved store (creating the SQLite directory) and return its URI."""
    resolved = resolve_tracking_uri(uri)
    if resolved.startswith("sqlite:///"):
        Path(urlparse(resolved).path).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(resolved)
    return resolved


def ensure_experiment(name: str, uri: str) -> str:
    """The id of experiment ``name``, created (with artifacts beside a SQLite store) if absent."""
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        if exp.lifecycle_stage == "deleted":
            raise ImblabError(
                f"MLflow experiment {name!r} is deleted; restore it (mlflow experiments restore) "
                "or choose another tracking.experiment"
            )
        return exp.experiment_id
    try:
        return client.create_experiment(name, artifact_location=artifact_location(uri))
    except Exception:  # another sweep job created it first
        exp = client.get_experiment_by_name(name)
        if exp is None:
            raise
        return exp.experiment_id


def flatten_config(cfg: DictConfig) -> dict[str, str]:
    """The resolved config as ``{"model.estimator.n_estimators": "600", ...}`` (hydra section left out)."""
    container = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(container, dict)
    container.pop("hydra", None)
    flat: dict[str, str] = {}

    def walk(prefix: str, node: Any) -> None:
        if isinstance(node, dict) and node:
            for key, value in node.items():
                walk(f"{prefix}.{key}" if prefix else str(key), value)
        else:
            text = json.dumps(node) if isinstance(node, list | dict) else str(node)
            flat[prefix] = text[:6000]  # MLflow's param value limit

    walk("", container)
    return flat


def git_commit(cwd: str | None = None) -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, cwd=cwd)
        return out.stdout.strip() if out.returncode == 0 else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def command_line() -> str:
    return " ".join(["imblab", *sys.argv[1:]]) if sys.argv else "imblab"


@contextlib.contextmanager
def tracked_run(
    experiment_id: str, run_name: str, tags: dict[str, str], parent_run_id: str | None = None
) -> Iterator[mlflow.ActiveRun]:
    """An MLflow run that ends FINISHED, or FAILED/KILLED with the error recorded as tags.

    Nothing is left RUNNING: whatever escapes the body terminates the run before re-raising.
    """
    run = mlflow.start_run(
        experiment_id=experiment_id, run_name=run_name, tags=tags, parent_run_id=parent_run_id
    )
    try:
        yield run
    except BaseException as exc:
        status = "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED"
        with contextlib.suppress(Exception):
            mlflow.set_tags(
                {TAG_ERROR: str(exc)[:5000] or type(exc).__name__, TAG_ERROR_TYPE: type(exc).__name__}
            )
        mlflow.end_run(status)
        raise
    mlflow.end_run("FINISHED")


class SweepCallback(Callback):
    """Opens one MLflow parent run per Hydra multirun and closes it with the sweep's outcome.

    The parent's id reaches the jobs through ``$IMBLAB_PARENT_RUN_ID``, set before the launcher
    starts, so it is inherited by joblib worker processes as well as by in-process jobs.
    """

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        uri = use_tracking(config.tracking.uri)
        exp_id = ensure_experiment(config.tracking.experiment, uri)
        overrides = list(config.hydra.overrides.task) if "hydra" in config else []
        run = MlflowClient(uri).create_run(
            exp_id,
            run_name=f"sweep {' '.join(overrides)}"[:250] or "sweep",
            tags={
                TAG_ROLE: "sweep",
                "imblab.command": command_line()[:5000],
                "imblab.git_commit": git_commit(),
            },
        )
        os.environ[PARENT_ENV] = run.info.run_id
        os.environ[PARENT_URI_ENV] = uri

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        close_sweep(failed=False)


def close_sweep(failed: bool) -> None:
    """Terminate the open sweep parent (if any): FAILED if a child or the sweep itself failed."""
    run_id = os.environ.pop(PARENT_ENV, None)
    uri = os.environ.pop(PARENT_URI_ENV, None)
    if not run_id:
        return
    client = MlflowClient(uri)
    run = client.get_run(run_id)
    if run.info.status != "RUNNING":
        return
    children = client.search_runs(
        [run.info.experiment_id], f"tags.mlflow.parentRunId = '{run_id}'", max_results=5000
    )
    # Children may live in other experiments when a sweep varies tracking.experiment.
    statuses = [c.info.status for c in children]
    bad = failed or any(s in ("FAILED", "KILLED", "RUNNING") for s in statuses)
    client.set_tag(run_id, "imblab.n_children", str(len(statuses)))
    client.set_terminated(run_id, RunStatus.to_string(RunStatus.FAILED if bad else RunStatus.FINISHED))


def parent_run_id() -> str | None:
    """The sweep parent this job belongs to, in a Hydra multirun; None in a single run."""
    run_id = os.environ.get(PARENT_ENV)
    if not run_id:
        return None
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        if HydraConfig.initialized() and HydraConfig.get().mode != RunMode.MULTIRUN:
            return None
    except Exception:
        return None
    return run_id
