"""Serve and batch-score a frozen model: ``imblab serve`` and ``imblab predict``.

``imblab serve`` runs MLflow's own pyfunc scoring server (the FastAPI app that
``mlflow models serve --env-manager local`` starts) under uvicorn, in this process. The model URI
is resolved against imblab's store first (``models:/secom-defects@champion`` works against the
embedded SQLite registry), so the server needs no tracking access. A request is MLflow's JSON
(``{"dataframe_split": {"columns": [...], "data": [[...]]}, "params": {"threshold": 0.3}}``);
the answer holds ``decision`` and ``probability`` per row, and rows that do not match the model's
feature columns get HTTP 400 with the reason (``FrozenModel.check_columns``). For large batches over
REST, a Parquet body (``Content-Type: application/vnd.apache.parquet``) scores ~10x more rows/s than
JSON in ``benchmarks/serving.py`` (it cannot carry ``params``: the frozen threshold applies).

``imblab predict`` scores a CSV or Parquet file in batches and writes, in input order, the id
columns followed by ``decision`` and ``probability``. Id columns are the ones named with
``--id-columns``; without it, every input column that is not one of the model's features
(its ``feature_names`` metadata) is carried through as an id column.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException

from imblab.errors import ImblabError
from imblab.frozen import DECISION, PROBABILITY
from imblab.registry import load_frozen, use_stores

OUTPUT_COLUMNS = (DECISION, PROBABILITY)
PARQUET_SUFFIXES = (".parquet", ".pq")
CSV_SUFFIXES = (".csv", ".csv.gz")
LOOPBACK = ("127.0.0.1", "localhost", "::1")


# --------------------------------------------------------------------------------------------------
# Batch scoring
# --------------------------------------------------------------------------------------------------


def _kind(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(PARQUET_SUFFIXES):
        return "parquet"
    if name.endswith(CSV_SUFFIXES):
        return "csv"
    raise ImblabError(f"{path}: use a .csv, .csv.gz, .parquet or .pq file")


def read_table(
    path: str | Path, id_columns: Sequence[str] | None = None, features: Sequence[str] = ()
) -> pd.DataFrame:
    """A CSV or Parquet file. A CSV's id columns (given, or else all non-feature columns) are read as
    text, so ids such as ``007`` come out exactly as they went in."""
    path = Path(path)
    kind = _kind(path)
    if not path.is_file():
        raise ImblabError(f"input file {path} does not exist")
    if kind == "parquet":
        return pd.read_parquet(path)
    header = [str(c) for c in pd.read_csv(path, nrows=0).columns]
    known = set(features)
    text = [c for c in header if c not in known] if id_columns is None else list(id_columns)
    return pd.read_csv(path, dtype={c: str for c in text if c in header})


def write_table(frame: pd.DataFrame, path: str | Path) -> None:
    path = Path(path)
    kind = _kind(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)


def model_features(pyfunc: Any) -> list[str]:
    """The model's feature columns, from its ``feature_names`` metadata (logged by imblab)."""
    names = (pyfunc.metadata.metadata or {}).get("feature_names")
    if names:
        return [str(c) for c in names]
    return list(pyfunc.unwrap_python_model().feature_names)


def split_ids(
    columns: Sequence[Any], features: Sequence[str], id_columns: Sequence[Any] | None
) -> tuple[list[Any], list[Any]]:
    """``(id columns, feature-side columns)`` of an input table; see the module docstring for the rule."""
    cols = list(columns)
    if id_columns is not None:
        missing = [c for c in id_columns if c not in cols]
        if missing:
            raise ImblabError(f"--id-columns {missing} are not in the input; its columns start {cols[:10]}")
        ids = list(id_columns)
    else:
        known = set(features)
        ids = [c for c in cols if str(c) not in known]
    clash = [c for c in ids if c in OUTPUT_COLUMNS]
    if clash:
        raise ImblabError(
            f"input column(s) {clash} would collide with the output columns {list(OUTPUT_COLUMNS)}"
        )
    return ids, [c for c in cols if c not in set(ids)]


def predict_frame(
    pyfunc: Any,
    frame: pd.DataFrame,
    id_columns: Sequence[str] | None = None,
    threshold: float | None = None,
    batch_size: int = 50_000,
) -> pd.DataFrame:
    """Score ``frame`` in batches: id columns + decision + probability, one row per input row, in order."""
    if batch_size < 1:
        raise ImblabError(f"--batch-size must be >= 1, got {batch_size}")
    if len(frame) == 0:
        raise ImblabError("the input has no rows to score")
    ids, feature_side = split_ids(list(frame.columns), model_features(pyfunc), id_columns)
    params = None if threshold is None else {"threshold": float(threshold)}
    parts = []
    for start in range(0, len(frame), batch_size):
        batch = frame.iloc[start : start + batch_size]
        try:
            parts.append(pyfunc.predict(batch[feature_side], params=params))
        except MlflowException as exc:
            raise ImblabError(f"rows {start}..{start + len(batch) - 1}: {exc.message}") from None
    scored = pd.concat(parts, ignore_index=True)
    out = frame[ids].reset_index(drop=True)
    out[DECISION] = scored[DECISION].to_numpy()
    out[PROBABILITY] = scored[PROBABILITY].to_numpy()
    return out


def predict_file(
    model_uri: str,
    input_path: str | Path,
    output_path: str | Path,
    *,
    id_columns: Sequence[str] | None = None,
    threshold: float | None = None,
    batch_size: int = 50_000,
    tracking_uri: str | None = None,
) -> pd.DataFrame:
    """``imblab predict`` as a function: score a file, write the output file, return the output."""
    _kind(Path(output_path))  # fail on a bad output name before the (slow) scoring
    use_stores(tracking_uri)
    pyfunc, _ = load_frozen(model_uri)
    frame = read_table(input_path, id_columns, model_features(pyfunc))
    out = predict_frame(pyfunc, frame, id_columns, threshold, batch_size)
    write_table(out, output_path)
    return out


def predict_main(argv: Sequence[str]) -> int:
    p = argparse.ArgumentParser(
        prog="imblab predict",
        description="Batch-score a CSV/Parquet file with a frozen model; output = id columns + decision + "
        "probability, in input order.",
    )
    p.add_argument(
        "model_uri", help="e.g. models:/secom-defects@champion, models:/<name>/<version>, runs:/..."
    )
    p.add_argument("input", help="input .csv / .csv.gz / .parquet")
    p.add_argument("-o", "--output", required=True, help="output .csv / .csv.gz / .parquet")
    p.add_argument(
        "--id-columns",
        default=None,
        help="comma-separated columns to carry through (default: every input column that is not a model "
        "feature); all other columns must be exactly the model's features",
    )
    p.add_argument("--threshold", type=float, default=None, help="override the model's frozen threshold")
    p.add_argument("--batch-size", type=int, default=50_000, help="rows per model call (default 50000)")
    p.add_argument("--tracking-uri", default=None, help="default: $MLFLOW_TRACKING_URI or ./mlruns/mlflow.db")
    args = p.parse_args(list(argv))
    ids = None if args.id_columns is None else [c.strip() for c in args.id_columns.split(",") if c.strip()]
    start = time.perf_counter()
    out = predict_file(
        args.model_uri,
        args.input,
        args.output,
        id_columns=ids,
        threshold=args.threshold,
        batch_size=args.batch_size,
        tracking_uri=args.tracking_uri,
    )
    seconds = time.perf_counter() - start
    ids_out = [c for c in out.columns if c not in OUTPUT_COLUMNS]
    print(
        f"scored {len(out)} rows in {seconds:.1f}s -> {args.output} "
        f"({int(out[DECISION].sum())} flagged; id columns {ids_out})"
    )
    return 0


# --------------------------------------------------------------------------------------------------
# REST serving
# --------------------------------------------------------------------------------------------------


def port_free(host: str, port: int) -> bool:
    """Whether uvicorn could bind ``host:port`` (same SO_REUSEADDR, so TIME_WAIT does not count)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now (for tests and benchmarks)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def describe(model_uri: str) -> str:
    """``models:/name@alias (version 3)`` when the URI names a registry version, else the URI."""
    from imblab.registry import parse_registered_uri

    try:
        return f"{model_uri} (version {parse_registered_uri(mlflow.MlflowClient(), model_uri).version})"
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
    use_stores(tracking_uri)
    label = describe(model_uri)
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


def serve_main(argv: Sequence[str]) -> int:
    p = argparse.ArgumentParser(
        prog="imblab serve",
        description="Serve a frozen model over REST with MLflow's scoring server (POST /invocations).",
    )
    p.add_argument("model_uri", help="e.g. models:/secom-defects@champion")
    p.add_argument("--port", type=int, default=5001)
    p.add_argument("--host", default="127.0.0.1", help="default 127.0.0.1 (loopback only)")
    p.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    p.add_argument("--no-access-log", action="store_true", help="do not log every request")
    p.add_argument("--tracking-uri", default=None, help="default: $MLFLOW_TRACKING_URI or ./mlruns/mlflow.db")
    args = p.parse_args(list(argv))
    serve(args.model_uri, args.port, args.host, args.workers, args.tracking_uri, not args.no_access_log)
    return 0


# --------------------------------------------------------------------------------------------------
# Client side: a served model as a subprocess (tests, benchmarks, notebooks)
# --------------------------------------------------------------------------------------------------


def payload(frame: pd.DataFrame, threshold: float | None = None) -> bytes:
    """The JSON body of an ``/invocations`` request for ``frame`` (NaN travels as null).

    Floats are written with 15 significant digits (pandas' maximum; its default is 10).
    """
    # Spliced as text: pandas' JSON writer is fast, a json.loads/dumps round trip of it is not.
    data = frame.to_json(orient="split", index=False, double_precision=15)
    params = "" if threshold is None else f', "params": {json.dumps({"threshold": threshold})}'
    return f'{{"dataframe_split": {data}{params}}}'.encode()


def invoke(url: str, body: bytes, timeout: float = 60.0) -> tuple[int, dict[str, Any]]:
    """POST a JSON body to ``url``; ``(status, parsed JSON answer)`` for success and errors alike."""
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        text = exc.read().decode(errors="replace")
        try:
            return exc.code, json.loads(text)
        except json.JSONDecodeError:
            return exc.code, {"message": text}


@contextlib.contextmanager
def serving(
    model_uri: str,
    tracking_uri: str | None = None,
    port: int | None = None,
    timeout: float = 120.0,
    log_path: str | Path | None = None,
    env: dict[str, str] | None = None,
) -> Iterator[str]:
    """Run ``imblab serve`` as a subprocess; yield its base URL once ``/ping`` answers; always stop it."""
    port = port or free_port()
    argv = [sys.executable, "-m", "imblab", "serve", model_uri, "--port", str(port), "--no-access-log"]
    if tracking_uri:
        argv += ["--tracking-uri", tracking_uri]
    log = open(log_path, "wb") if log_path else tempfile.TemporaryFile()  # noqa: SIM115
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                log.seek(0)
                raise ImblabError(
                    f"imblab serve exited with {proc.returncode}:\n{log.read().decode()[-3000:]}"
                )
            try:
                with urllib.request.urlopen(f"{base}/ping", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                raise ImblabError(f"imblab serve did not answer /ping within {timeout:.0f}s")
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
