"""Client side of ``imblab serve``: a served model as a subprocess, and requests to it.

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
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from tests.support.processes import spawn, stop_group


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now (for tests and benchmarks)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


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
