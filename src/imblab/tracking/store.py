"""Which MLflow store and experiment, and the safe first use of a SQLite store.

The embedded default is ``sqlite:///<cwd>/mlruns/mlflow.db`` for runs and ``<cwd>/mlruns/artifacts``
for artifacts. ``MLFLOW_TRACKING_URI`` wins over that default when no URI is given, as in every MLflow
tool.

Independent processes (parallel ``imblab train``, a sweep's joblib jobs, tune-workers, ``imblab runs``)
may open a SQLite store that does not exist yet at the same moment. MLflow creates the schema and
runs its migrations when a store object is first built, with no lock between processes, so the
losers crash (``duplicate column name``, ``table ... already exists``). Every imblab process therefore
builds the store, and creates its experiment, under :func:`first_use_lock`.

Opening a store (``use_tracking``, the one choke point of every command) then ends the runs its dead
processes left RUNNING (``imblab.tracking.reaper``), once per store and process.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from sqlalchemy.engine import make_url

from imblab.errors import ImblabError
from imblab.secrets import mask
from imblab.tracking.reaper import reap

LOCK_TIMEOUT_ENV = "IMBLAB_STORE_LOCK_TIMEOUT"
DEFAULT_LOCK_TIMEOUT = 120.0  # seconds; creating and migrating a new store takes a few
_READY: set[Path] = set()  # SQLite stores whose schema this process has created or checked
_TIDIED: set[str] = set()  # stores this process has already reaped


def default_tracking_uri(cwd: str | os.PathLike[str] | None = None) -> str:
    db = Path(cwd or os.getcwd()).resolve() / "mlruns" / "mlflow.db"
    return f"sqlite:///{db}"


def resolve_tracking_uri(uri: str | None = None) -> str:
    """Explicit ``uri`` > ``$MLFLOW_TRACKING_URI`` > the embedded SQLite store under ./mlruns."""
    return uri or os.environ.get("MLFLOW_TRACKING_URI") or default_tracking_uri()


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:`` URI (relative paths as SQLAlchemy reads them); else None."""
    if not uri.startswith("sqlite:"):
        return None
    database = make_url(uri).database
    return None if database in (None, "", ":memory:") else Path(database).resolve()


def artifact_location(uri: str) -> str | None:
    """For a SQLite store, keep artifacts beside the database (``<db dir>/artifacts``)."""
    db = sqlite_path(uri)
    return (db.parent / "artifacts").as_uri() if db else None  # a server decides its own root


def _lock_timeout() -> float:
    raw = os.environ.get(LOCK_TIMEOUT_ENV, "")
    try:
        return float(raw) if raw else DEFAULT_LOCK_TIMEOUT
    except ValueError:
        raise ImblabError(f"${LOCK_TIMEOUT_ENV} must be a number of seconds, got {raw!r}") from None


@contextlib.contextmanager
def first_use_lock(uri: str) -> Iterator[None]:
    """Hold an exclusive lock on a SQLite store (``<db>.lock`` beside it); a no-op for other stores.

    It serialises what must happen once: creating the directory, the schema (MLflow's migrations)
    and an experiment. The lock is ``flock``: the kernel drops it when its holder dies, so a crashed
    process never leaves the store locked. A live holder is waited for at most
    ``$IMBLAB_STORE_LOCK_TIMEOUT`` seconds (default 120), then a clear error. An existing store in a
    place where no lock file can be created (read-only directory) is used unlocked: nobody can
    migrate or write it there anyway.
    """
    db = sqlite_path(uri)
    if db is None:
        yield
        return
    lock = db.with_name(db.name + ".lock")
    try:
        db.parent.mkdir(parents=True, exist_ok=True)
        # Read-only is enough for flock, and lets users without write access share the lock file.
        fd = os.open(lock, os.O_RDONLY | os.O_CREAT, 0o666)
    except OSError as exc:
        if not db.is_file():
            raise ImblabError(
                f"cannot create the MLflow store {db}: {exc.strerror} ({exc.filename}). Point "
                "tracking.uri (or --tracking-uri, $MLFLOW_TRACKING_URI) at a writable directory"
            ) from None
        fd = None
    try:
        if fd is not None:
            _acquire(fd, lock)
        yield
    finally:
        if fd is not None:
            os.close(fd)  # releases the lock


def _acquire(fd: int, lock: Path) -> None:
    timeout = _lock_timeout()
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise ImblabError(
                    f"timed out after {timeout:g} s waiting for {lock}: another process has held it "
                    "that long while creating the store or an experiment in it. Stop that process if "
                    f"it hangs (its lock goes with it), or raise ${LOCK_TIMEOUT_ENV} (seconds)"
                ) from None
            time.sleep(0.05)


def prepare_store(uri: str) -> None:
    """Create or upgrade a SQLite store's schema under :func:`first_use_lock`, once per process.

    MLflow caches a store per URI, so the store built here is the one every later client reuses.
    The model registry store checks the schema on its own when first built: it is built here too.
    """
    db = sqlite_path(uri)
    if db is None or (db in _READY and db.is_file()):
        return
    with first_use_lock(uri):
        MlflowClient(uri).search_experiments(max_results=1)
        MlflowClient(uri, registry_uri=uri).search_registered_models(max_results=1)
    _READY.add(db)


def use_tracking(uri: str | None) -> str:
    """Point MLflow at the resolved store (created safely if it is a new SQLite store); its URI."""
    resolved = resolve_tracking_uri(uri)
    prepare_store(resolved)
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
        where, why = mask(uri), mask(str(exc))
        print(f"imblab: warning: could not look for dead runs in {where}: {why}", file=sys.stderr)
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
    """The id of experiment ``name``, created (with artifacts beside a SQLite store) if absent.

    On a SQLite store the creation happens under :func:`first_use_lock`, so concurrent first runs
    create it once and the others find it.
    """
    prepare_store(uri)
    client = MlflowClient(uri)
    try:
        exp = client.get_experiment_by_name(name)
    except MlflowException as exc:  # the first call to a server: a bad login or address fails here
        raise store_error(uri, exc) from None
    if exp is None:
        with first_use_lock(uri):
            exp = client.get_experiment_by_name(name)
            if exp is None:
                return _create_experiment(client, name, uri)
    if exp.lifecycle_stage == "deleted":
        raise ImblabError(
            f"MLflow experiment {name!r} is deleted; restore it (mlflow experiments restore) "
            "or choose another tracking.experiment"
        )
    return exp.experiment_id


def _create_experiment(client: MlflowClient, name: str, uri: str) -> str:
    try:
        return client.create_experiment(name, artifact_location=artifact_location(uri))
    except Exception:  # on a tracking server (no lock), another process may have created it first
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
