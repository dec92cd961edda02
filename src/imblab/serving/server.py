"""``imblab serve``: a frozen model over REST, on imblab's own small ASGI app under uvicorn.

The app (``imblab.serving.app``) speaks MLflow's scoring protocol: ``POST /invocations`` with
``{"dataframe_split": {"columns": [...], "data": [[...]]}, "params": {"threshold": 0.3}}`` (or
``dataframe_records``, ``inputs``, ``instances``, a CSV or a Parquet body) returns
``{"predictions": [...]}``, one object per row, exactly as ``mlflow models serve`` does for these models.

Why not MLflow's own scoring server: it echoes a malformed body back whole, answers an empty table
with a vague 400 carrying a Python stack trace with install paths, reads a body of any size, and
spends most of a request in generic parsing (``benchmarks/serving.py`` measured it against the bare
model; the figures are in the README). Here errors are one short JSON object, a body over
``--max-body-mb`` is a 413, and a request costs little more than the model itself.

The model URI is resolved against imblab's store first (``models:/secom-defects@champion`` works
against the embedded SQLite registry); the model is downloaded and loaded once, before the port is
bound, so a bad URI is an error at start, not at the first request.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import sys
import tempfile

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from imblab.errors import ImblabError
from imblab.registry.versions import parse_registered_uri
from imblab.serving.app import ENV_LABEL, ENV_MAX_BODY, ENV_MODEL_DIR, build_app
from imblab.serving.scoring import ServedModel
from imblab.tracking.artifacts import quiet_downloads
from imblab.tracking.store import client_for

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def port_free(host: str, port: int) -> bool:
    """Whether uvicorn could bind ``host:port`` (same SO_REUSEADDR, so TIME_WAIT does not count)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def describe(client: MlflowClient, model_uri: str) -> str:
    """``models:/name@alias (version 3)`` when the URI names a registry version, else the URI."""
    try:
        return f"{model_uri} (version {parse_registered_uri(client, model_uri).version})"
    except ImblabError:
        return model_uri


def _exit_on_signal(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def serve(
    model_uri: str,
    port: int = 5001,
    host: str = "127.0.0.1",
    workers: int = 1,
    tracking_uri: str | None = None,
    access_log: bool = True,
    max_body_mb: float = 64.0,
) -> None:
    """Serve ``model_uri`` until interrupted (SIGINT / SIGTERM); bodies over ``max_body_mb`` get 413."""
    import uvicorn

    if workers < 1:
        raise ImblabError(f"--workers must be >= 1, got {workers}")
    if not max_body_mb > 0:
        raise ImblabError(f"--max-body-mb must be > 0, got {max_body_mb}")
    if not port_free(host, port):
        raise ImblabError(f"port {port} on {host} is in use; pick another one with --port")
    label = describe(client_for(tracking_uri), model_uri)
    max_body = int(max_body_mb * 2**20)
    local = tempfile.mkdtemp(prefix="imblab-serve-")
    try:
        try:
            with quiet_downloads():
                path = mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=local)
        except (MlflowException, OSError) as exc:
            raise ImblabError(f"cannot fetch model {model_uri}: {exc}") from None
        model = ServedModel.load(path, label)  # once, before binding: a broken model fails here
        if host not in LOOPBACK:
            print(f"warning: serving on {host}: the model is reachable from other machines", file=sys.stderr)
        print(f"serving {label} at http://{host}:{port}/invocations (GET /ping for health)", flush=True)
        # uvicorn re-raises SIGTERM / SIGINT once it has shut down; with the default handlers that kills
        # the process (or prints a KeyboardInterrupt traceback) before `finally` removes the downloaded
        # model, so turn both into a normal exit.
        signal.signal(signal.SIGTERM, _exit_on_signal)
        signal.signal(signal.SIGINT, _exit_on_signal)
        options = {"host": host, "port": port, "access_log": access_log, "timeout_graceful_shutdown": 5}
        if workers == 1:
            uvicorn.run(build_app(model, max_body), **options)
            return
        # Worker processes import the app by name and load the model themselves, once each.
        os.environ.update({ENV_MODEL_DIR: path, ENV_LABEL: label, ENV_MAX_BODY: str(max_body)})
        uvicorn.run("imblab.serving.app:from_environment", factory=True, workers=workers, **options)
    finally:
        shutil.rmtree(local, ignore_errors=True)
