"""Which MLflow store and experiment.

The embedded default is ``sqlite:///<cwd>/mlruns/mlflow.db`` for runs and ``<cwd>/mlruns/artifacts``
for artifacts. ``MLFLOW_TRACKING_URI`` wins over that default when no URI is given, as in every MLflow
tool. Opening a store (``use_tracking``, the one choke point of every command) first ends the runs its
dead processes left RUNNING (``imblab.tracking.reaper``), once per store and process.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from urllib.parse import urlparse

import mlflow
from mlflow.tracking import MlflowClient

from imblab.errors import ImblabError
from imblab.tracking.reaper import reap

_TIDIED: set[str] = set()  # stores this process has already reaped


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
    tidy(resolved)
    return resolved


def tidy(uri: str) -> None:
    """End the runs that dead processes left RUNNING in ``uri`` (once per process) and say so on stderr.

    Never fails the command: a store that cannot be searched is a warning.
    """
    if uri in _TIDIED:
        return
    _TIDIED.add(uri)
    try:
        reaped = reap(MlflowClient(uri))
    except Exception as exc:
        print(f"imblab: warning: could not look for dead runs in {uri}: {exc}", file=sys.stderr)
        return
    for run in reaped:
        print(f"imblab: marked run {run.run_id} ({run.name}) KILLED: {run.reason}", file=sys.stderr)


def client_for(uri: str | None) -> MlflowClient:
    """Point MLflow at imblab's store and return a client for it.

    The registry is not set separately: as MLflow does by default, it lives in the tracking store
    (``$MLFLOW_REGISTRY_URI`` still overrides that). Setting it here would pin MLflow's process-wide
    registry URI to one store, which a later call with another store would then silently keep using.
    """
    return MlflowClient(tracking_uri=use_tracking(uri))


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


def find_experiment(client: MlflowClient, name: str) -> mlflow.entities.Experiment:
    """Experiment ``name``, or a clear error listing the experiments the store has."""
    exp = client.get_experiment_by_name(name)
    if exp is None:
        names = [e.name for e in client.search_experiments()]
        raise ImblabError(
            f"no MLflow experiment {name!r} in {client.tracking_uri}; experiments there: {names}. "
            "Pass --experiment NAME (and --tracking-uri if the store is elsewhere)"
        )
    return exp
