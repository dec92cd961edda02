"""``imblab serve``: a frozen model over REST with MLflow's scoring protocol (POST /invocations)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from imblab.serving.server import serve


def main(argv: Sequence[str]) -> int:
    p = argparse.ArgumentParser(
        prog="imblab serve",
        description="Serve a frozen model over REST with MLflow's scoring protocol (POST /invocations).",
    )
    p.add_argument("model_uri", help="e.g. models:/secom-defects@champion")
    p.add_argument("--port", type=int, default=5001)
    p.add_argument("--host", default="127.0.0.1", help="default 127.0.0.1 (loopback only)")
    p.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    p.add_argument(
        "--max-body-mb", type=float, default=64.0, help="larger request bodies get HTTP 413 (default 64)"
    )
    p.add_argument("--no-access-log", action="store_true", help="do not log every request")
    p.add_argument("--tracking-uri", default=None, help="default: $MLFLOW_TRACKING_URI or ./mlruns/mlflow.db")
    args = p.parse_args(list(argv))
    serve(
        args.model_uri,
        args.port,
        args.host,
        args.workers,
        args.tracking_uri,
        access_log=not args.no_access_log,
        max_body_mb=args.max_body_mb,
    )
    return 0
