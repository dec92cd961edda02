"""Which MLflow store and experiment.

The embedded default is ``sqlite:///<cwd>/mlruns/mlflow.db`` for runs and ``<cwd>/mlruns/artifacts``
for artifacts. ``MLFLOW_TRACKING_URI`` wins over that default when no URI is given, as in every MLflow
tool.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlparse

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from imblab.errors import ImblabError
from imblab.secrets import mask


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


def client_for(uri: str | None) -> MlflowClient:
    """Point MLflow at imblab's store and return a client for it.

    The registry is not set separately: as MLflow does by default, it lives in the tracking store
    (``$MLFLOW_REGISTRY_URI`` still overrides that). Setting it here would pin MLflow's process-wide
    registry URI to one store, which a later call with another store would then silently keep using.
    """
    return MlflowClient(tracking_uri=use_tracking(uri))


def store_error(uri: str, exc: MlflowException) -> ImblabError:
    """The store at ``uri`` cannot be used (refused login, unreachable server): what to check, masked."""
    status = exc.get_http_status_code()
    if status in (401, 403):
        reason = f"the server refused the credentials (HTTP {status})"
    else:
        reason = mask(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    return ImblabError(
        f"cannot use the MLflow tracking store {mask(uri)}: {reason}. Check tracking.uri and, for a server "
        "that needs a login, MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD (or MLFLOW_TRACKING_TOKEN)"
    )


def ensure_experiment(name: str, uri: str) -> str:
    """The id of experiment ``name``, created (with artifacts beside a SQLite store) if absent."""
    client = MlflowClient(uri)
    try:
        exp = client.get_experiment_by_name(name)
    except MlflowException as exc:  # the first call to the store: a bad login or address fails here
        raise store_error(uri, exc) from None
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
