"""``imblab serve``: MLflow's own pyfunc scoring server under uvicorn, in this process.

It is the FastAPI app that ``mlflow models serve --env-manager local`` starts. The model URI is
resolved against imblab's store first (``models:/secom-defects@champion`` works against the embedded
SQLite registry), so the server needs no tracking access. A request is MLflow's JSON
(``{"dataframe_split": {"columns": [...], "data": [[...]]}, "params": {"threshold": 0.3}}``); the
answer holds ``decision`` and ``probability`` per row, and rows that do not match the model's feature
columns get HTTP 400 with the reason. For large batches over REST, a Parquet body (``Content-Type:
application/vnd.apache.parquet``) scores ~10x more rows/s than JSON in ``benchmarks/serving.py`` (it
cannot carry ``params``: the frozen threshold applies).
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
from imblab.registry.versions import load_frozen, parse_registered_uri
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
) -> None:
    """Serve ``model_uri`` with MLflow's scoring server until interrupted (SIGINT / SIGTERM)."""
    import uvicorn
    from mlflow.pyfunc import scoring_server

    if workers < 1:
        raise ImblabError(f"--workers must be >= 1, got {workers}")
    if not port_free(host, port):
        raise ImblabError(f"port {port} on {host} is in use; pick another one with --port")
    label = describe(client_for(tracking_uri), model_uri)
    local = tempfile.mkdtemp(prefix="imblab-serve-")
    try:
        try:
            path = mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=local)
        except (MlflowException, OSError) as exc:
            raise ImblabError(f"cannot fetch model {model_uri}: {exc}") from None
        load_frozen(path)  # fail here, with a clear message, rather than in the server's import
        # The same environment `mlflow models serve` gives its uvicorn (model path, request timeout).
        _, env = scoring_server.get_cmd(path, port, host, None, workers)
        os.environ.update(env)
        if host not in LOOPBACK:
            print(f"warning: serving on {host}: the model is reachable from other machines", file=sys.stderr)
        print(f"serving {label} at http://{host}:{port}/invocations (GET /ping for health)", flush=True)
        # uvicorn re-raises SIGTERM once it has shut down; with the default handler that kills the
        # process before `finally` removes the downloaded model, so turn it into a normal exit.
        signal.signal(signal.SIGTERM, _exit_on_signal)
        uvicorn.run(
            "mlflow.pyfunc.scoring_server.app:app",
            host=host,
            port=port,
            workers=workers,
            access_log=access_log,
            timeout_graceful_shutdown=5,
        )
    finally:
        shutil.rmtree(local, ignore_errors=True)
