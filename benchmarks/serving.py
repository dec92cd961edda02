"""Serving benchmark: REST latency and batch throughput against the bare in-process model.

Trains a small SECOM model into a temporary MLflow store, promotes it to
``models:/secom-defects@champion`` and measures, on the same rows:

* single-row latency (p50 / p99 over ``--requests`` requests): the fitted pipeline's bare
  ``predict_proba`` in process vs. ``imblab serve`` (a real subprocess) over loopback HTTP with a
  keep-alive connection, the JSON body encoded before the clock starts;
* batch throughput (rows/s on ``--rows`` rows resampled from SECOM): bare ``predict_proba``,
  ``imblab.serving.batch.predict_frame`` (what ``imblab predict`` runs, incl. MLflow pyfunc and column
  checks), ``predict_file`` (Parquet in and out), and REST in chunks of ``--chunk`` rows: the server's
  rate (request sent to answer decoded) and, beside it, the rate with the client's encoding of each
  chunk included (orjson for JSON, pyarrow for Parquet, as ``tests/support/serving.payload`` does).

Each REST figure is printed against its target (issue 10): single-row p50 <= 8 ms and p99 <= 20 ms,
10,000-row JSON batches >= 20,000 rows/s.

    .venv/bin/python benchmarks/serving.py [--rows 100000] [--requests 1000] [--chunk 10000]
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import ParseResult, urlparse

import numpy as np
import pandas as pd
from hydra import compose, initialize_config_dir

from imblab.app.hydra import conf_dir
from imblab.config.compose import experiment_from_config
from imblab.experiment import run_experiment
from imblab.registry.promote import promote
from imblab.registry.versions import load_frozen
from imblab.serving.batch import predict_file, predict_frame

# The served model as a subprocess is a test helper, shared with the tests (tests/support).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.support.serving import payload, serving

REPO = Path(__file__).resolve().parents[1]
MODEL_URI = "models:/secom-defects@champion"


def percentiles(seconds: list[float]) -> tuple[float, float]:
    ms = np.asarray(seconds) * 1e3
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99))


def post(conn: http.client.HTTPConnection, body: bytes, content_type: str = "application/json") -> dict:
    conn.request("POST", "/invocations", body, {"Content-Type": content_type})
    resp = conn.getresponse()
    data = resp.read()
    if resp.status != 200:
        raise RuntimeError(f"HTTP {resp.status}: {data[:500]!r}")
    return json.loads(data)


def best_rate(n_rows: int, fn: Callable[[], object], repeats: int = 3) -> float:
    """Rows/s of the fastest of ``repeats`` runs (in-process timings are noisy on a shared machine)."""
    best = math.inf
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return n_rows / best


def rest_rate(url: ParseResult, frames: list[pd.DataFrame], encode: Callable, content_type: str) -> tuple:
    """``(server rows/s, rows/s with client encoding, probabilities)`` through REST, chunk by chunk.

    The server's clock runs from sending a chunk to its decoded answer; the encoding of each chunk is
    timed apart, so both rates come from one pass.
    """
    probs: list[float] = []
    encoding = serving = 0.0
    for frame in frames:
        t = time.perf_counter()
        body = encode(frame)
        encoding += time.perf_counter() - t
        # A fresh connection per chunk: encoding a chunk can outlast the server's keep-alive.
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=600)
        t = time.perf_counter()
        probs.extend(r["probability"] for r in post(conn, body, content_type)["predictions"])
        serving += time.perf_counter() - t
        conn.close()
    n = sum(map(len, frames))
    return n / serving, n / (serving + encoding), np.asarray(probs)


def verdict(value: float, target: float, higher_is_better: bool) -> str:
    met = value >= target if higher_is_better else value <= target
    return f"target {'>=' if higher_is_better else '<='} {target:,.0f}: {'met' if met else 'NOT met'}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=100_000, help="rows for the throughput runs")
    p.add_argument("--requests", type=int, default=1000, help="single-row requests for latency")
    p.add_argument("--chunk", type=int, default=10_000, help="rows per REST request in the batch run")
    p.add_argument("--n-estimators", type=int, default=100, help="LightGBM trees of the benchmark model")
    p.add_argument(
        "--secom-dir", default=os.environ.get("IMBLAB_SECOM_DIR") or str(REPO.parent / "shared/data/secom")
    )
    args = p.parse_args()

    with tempfile.TemporaryDirectory(prefix="imblab-bench-") as tmp:
        run(args, Path(tmp))


def run(args: argparse.Namespace, tmp: Path) -> None:
    uri = f"sqlite:///{tmp / 'mlruns' / 'mlflow.db'}"
    overrides = [
        "data=secom",
        f"data.dir={args.secom_dir}",
        "sampler=random_under",
        f"model.estimator.n_estimators={args.n_estimators}",
        "cv.folds=3",
        f"tracking.uri={uri}",
        "tracking.experiment=bench",
        f"cache.dir={tmp / 'cache'}",
    ]
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    start = time.perf_counter()
    run_experiment(experiment_from_config(cfg))
    promote("bench", model_name="secom-defects", tracking_uri=uri)
    pyfunc, frozen = load_frozen(MODEL_URI)
    bare = frozen.pipeline  # fitted preprocess + model, as the frozen model holds it
    print(f"model: SECOM, {' '.join(overrides[2:5])}, trained+promoted in {time.perf_counter() - start:.0f}s")
    machine = platform.processor() or platform.machine()
    print(f"machine: {machine}, {os.cpu_count()} cores, python {platform.python_version()}")

    from imblab.data.secom import load_secom

    X = load_secom(dir=args.secom_dir).X
    rng = np.random.default_rng(0)
    big = X.iloc[rng.integers(0, len(X), args.rows)].reset_index(drop=True)
    singles = [X.iloc[[i % len(X)]] for i in range(args.requests)]

    # ---------------------------------------------------------------- single-row latency
    for row in singles[:20]:
        bare.predict_proba(row)
    times = []
    for row in singles:
        t = time.perf_counter()
        bare.predict_proba(row)
        times.append(time.perf_counter() - t)
    bare_p50, bare_p99 = percentiles(times)

    bodies = [payload(row) for row in singles]  # encoded up front: the latency is the round trip
    with serving(MODEL_URI, uri) as base:
        url = urlparse(base)
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=120)
        for body in bodies[:20]:
            post(conn, body)
        times = []
        for body in bodies:
            t = time.perf_counter()
            answer = post(conn, body)
            times.append(time.perf_counter() - t)
        assert len(answer["predictions"]) == 1
        conn.close()
        rest_p50, rest_p99 = percentiles(times)

        # ------------------------------------------------------------ batch throughput via REST
        chunks = [big.iloc[s : s + args.chunk] for s in range(0, len(big), args.chunk)]
        json_rows_s, json_e2e, json_probs = rest_rate(url, chunks, payload, "application/json")
        parquet_rows_s, parquet_e2e, parquet_probs = rest_rate(
            url, chunks, lambda f: f.to_parquet(index=False), "application/vnd.apache.parquet"
        )

    # ---------------------------------------------------------------- in-process batch throughput
    positive = list(bare.classes_).index(1)
    expected = bare.predict_proba(big)[:, positive]
    np.testing.assert_allclose(json_probs, expected, rtol=1e-9)  # REST answered the same numbers
    np.testing.assert_allclose(parquet_probs, expected, rtol=1e-12)
    bare_rows_s = best_rate(len(big), lambda: bare.predict_proba(big))
    with_ids = pd.concat([big, pd.Series(np.arange(len(big)), name="lot")], axis=1)
    frame_rows_s = best_rate(len(big), lambda: predict_frame(pyfunc, with_ids))
    np.testing.assert_allclose(predict_frame(pyfunc, with_ids)["probability"], expected, rtol=1e-12)
    with_ids.to_parquet(tmp / "in.parquet", index=False)
    file_rows_s = best_rate(
        len(big), lambda: predict_file(MODEL_URI, tmp / "in.parquet", tmp / "out.parquet", tracking_uri=uri)
    )

    # ---------------------------------------------------------------- report
    print(f"\nsingle-row latency, {args.requests} requests (ms)      p50      p99   p50 vs bare")
    for name, p50, p99 in (
        ("bare predict_proba (in process)", bare_p50, bare_p99),
        ("imblab serve, REST on loopback", rest_p50, rest_p99),
    ):
        print(f"  {name:<41}{p50:8.2f} {p99:8.2f} {p50 / bare_p50:10.1f}x")
    print(f"  p50 {verdict(rest_p50, 8, False)}; p99 {verdict(rest_p99, 20, False)}")
    print(f"\nbatch throughput, {len(big):,} rows x {X.shape[1]} features       rows/s   bare / this")
    print("  (in-process rows: best of 3 runs; predict_frame scores in 50,000-row batches;")
    print("   REST: the server's rate, then in brackets with the client's encoding of each chunk)")
    rows = [
        ("bare predict_proba (in process)", bare_rows_s, None),
        ("predict_frame (imblab predict, in process)", frame_rows_s, None),
        ("predict_file (Parquet in -> Parquet out)", file_rows_s, None),
        (f"REST, {args.chunk:,}-row chunks, JSON body", json_rows_s, json_e2e),
        (f"REST, {args.chunk:,}-row chunks, Parquet body", parquet_rows_s, parquet_e2e),
    ]
    for name, rate, e2e in rows:
        extra = "" if e2e is None else f"   ({e2e:,.0f} rows/s, {bare_rows_s / e2e:.1f}x)"
        print(f"  {name:<44}{rate:12,.0f} {bare_rows_s / rate:10.1f}x{extra}")
    with_client = verdict(json_e2e, 20_000, True)
    print(f"  JSON {verdict(json_rows_s, 20_000, True)} (with client encoding: {with_client})")


if __name__ == "__main__":
    main()
