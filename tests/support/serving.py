"""Client side of ``imblab serve``: a trained model to serve, the server as a subprocess, requests to it.

Used by tests, ``benchmarks/serving.py`` and notebooks; not part of the imblab package.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest

from imblab.config.compose import experiment_from_config
from imblab.experiment import run_experiment
from imblab.frozen import FrozenModel
from imblab.registry.promote import promote
from imblab.registry.versions import load_frozen
from tests.conftest import compose_config
from tests.support.processes import spawn, stop_group

MODEL_NAME = "defects"
CHAMPION_URI = f"models:/{MODEL_NAME}@champion"


@dataclass
class Served:
    """A promoted binary model in its own store, and the data it was trained on."""

    tracking_uri: str
    model: FrozenModel
    X: pd.DataFrame


def trained(tmp: Path, *overrides: str) -> Served:
    """Train with ``imblab train`` overrides, promote to ``CHAMPION_URI``, load back; store in ``tmp``."""
    db = tmp / "mlruns" / "mlflow.db"
    db.parent.mkdir(parents=True)
    uri = f"sqlite:///{db}"
    with pytest.MonkeyPatch.context() as mp:  # module-scoped callers: keep MLflow's env changes to this call
        for var in ("MLFLOW_TRACKING_URI", "IMBLAB_PARENT_RUN_ID", "IMBLAB_PARENT_TRACKING_URI"):
            mp.delenv(var, raising=False)
        experiment = experiment_from_config(
            compose_config(
                *overrides, f"tracking.uri={uri}", "tracking.experiment=t", f"cache.dir={tmp / 'cache'}"
            )
        )
        run_experiment(experiment)
        promote("t", model_name=MODEL_NAME, tracking_uri=uri)
        _, frozen = load_frozen(CHAMPION_URI)
        X = experiment.load_data().X
    return Served(uri, frozen, X)


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now (for tests and benchmarks)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def payload(frame: pd.DataFrame, threshold: float | None = None) -> bytes:
    """The JSON body of an ``/invocations`` request for ``frame`` (NaN travels as null).

    An all-numeric frame is written by orjson straight from its float array (every float exactly, and
    ~10x faster than pandas on a 10,000 x 590 batch); others by pandas with 15 significant digits.
    """
    params = {} if threshold is None else {"params": {"threshold": threshold}}
    if all(pd.api.types.is_numeric_dtype(d) for d in frame.dtypes):
        data = np.ascontiguousarray(frame.to_numpy(dtype=np.float64))
        split = {"columns": [str(c) for c in frame.columns], "data": data}
        return orjson.dumps({"dataframe_split": split, **params}, option=orjson.OPT_SERIALIZE_NUMPY)
    # Spliced as text: pandas' JSON writer is fast, a json.loads/dumps round trip of it is not.
    data = frame.to_json(orient="split", index=False, double_precision=15)
    extra = f', "params": {json.dumps(params["params"])}' if params else ""
    return f'{{"dataframe_split": {data}{extra}}}'.encode()


def invoke(
    url: str, body: bytes, timeout: float = 60.0, content_type: str = "application/json"
) -> tuple[int, dict[str, Any]]:
    """POST a body to ``url``; ``(status, parsed JSON answer)`` for success and errors alike."""
    request = urllib.request.Request(url, body, {"Content-Type": content_type}, method="POST")
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
    args: Sequence[str] = (),
) -> Iterator[str]:
    """Run ``imblab serve`` (with extra ``args``) as a subprocess; yield its base URL once ``/ping``
    answers; always stop it."""
    port = port or free_port()
    argv = [sys.executable, "-m", "imblab", "serve", model_uri, "--port", str(port), "--no-access-log", *args]
    if tracking_uri:
        argv += ["--tracking-uri", tracking_uri]
    log = open(log_path, "wb") if log_path else tempfile.TemporaryFile()  # noqa: SIM115
    proc = spawn(argv, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                log.seek(0)
                raise RuntimeError(
                    f"imblab serve exited with {proc.returncode}:\n{log.read().decode()[-3000:]}"
                )
            try:
                with urllib.request.urlopen(f"{base}/ping", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"imblab serve did not answer /ping within {timeout:.0f}s")
            time.sleep(0.2)
        yield base
    finally:
        stop_group(proc)
        log.close()
