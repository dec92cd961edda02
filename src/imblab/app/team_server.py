"""``imblab team-server start|stop|status --dir DIR``: PostgreSQL + artifact store + MLflow server.

``start`` prints, on stdout, the ``export`` lines a client needs (``eval "$(imblab team-server start
--dir DIR)"``) and, on stderr, what runs where. ``stop`` stops every process the stack started and
exits 1 if any is left. ``status --json`` prints the recorded state (no secret is in it).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from imblab.stack.team import Settings, Stack, read_state, running, start, stop_stack


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="imblab team-server",
        description="A shared tracking setup on one machine: a private PostgreSQL cluster (MLflow's store "
        "and Optuna's studies), an artifact store and an MLflow tracking server.",
    )
    sub = p.add_subparsers(dest="action", required=True)
    begin = sub.add_parser("start", help="start the stack (idempotent) and print the client's variables")
    begin.add_argument("--host", default="127.0.0.1", help="interface of every server (default 127.0.0.1)")
    begin.add_argument("--port", type=int, default=5000, help="the tracking server's port (default 5000)")
    begin.add_argument("--pg-port", type=int, default=0, help="PostgreSQL's port (default: a free one)")
    begin.add_argument(
        "--artifacts-destination",
        default=None,
        help="where the server keeps artifacts: default DIR/artifacts; e.g. s3://bucket/path (with "
        "$MLFLOW_S3_ENDPOINT_URL and AWS credentials in the environment)",
    )
    begin.add_argument(
        "--s3-trial", action="store_true", help="also start a local S3-compatible server (moto) and keep "
        "artifacts in its bucket 'imblab': a trial of the S3 setup on one machine",
    )  # fmt: skip
    begin.add_argument("--workers", type=int, default=2, help="tracking server worker processes (default 2)")
    begin.add_argument(
        "--pg-option", action="append", default=[], metavar="NAME=VALUE", help="a PostgreSQL setting"
    )
    begin.add_argument("mlflow_args", nargs="*", help="after --: more `mlflow server` options")
    for name, help_ in (("stop", "stop every process of the stack"), ("status", "is the stack running?")):
        cmd = sub.add_parser(name, help=help_)
        if name == "status":
            cmd.add_argument("--json", action="store_true", help="the recorded state as JSON")
    for cmd in sub.choices.values():
        cmd.add_argument("--dir", required=True, type=Path, help="the stack's directory (data, logs, state)")
    return p


def _exports(stack: Stack) -> str:
    return "".join(f"export {k}={shlex.quote(v)}\n" for k, v in stack.env().items())


def _describe(stack: Stack) -> str:
    servers = ", ".join(f"{s.name} (pid {s.pid}, port {s.port})" for s in stack.servers)
    return (
        f"tracking server {stack.tracking_uri}, artifacts in {stack.artifacts}\n"
        f"Optuna studies: tuning.storage={stack.storage} (password from $PGPASSFILE={stack.pgpass})\n"
        f"servers: {servers}; logs in {stack.root / 'logs'}\n"
    )


def main(argv: Sequence[str]) -> int:
    args = _parser().parse_args(list(argv))
    root: Path = args.dir
    if args.action == "start":
        settings = Settings(
            root=root,
            host=args.host,
            port=args.port,
            pg_port=args.pg_port,
            artifacts_destination=args.artifacts_destination,
            s3_trial=args.s3_trial,
            workers=args.workers,
            pg_options=args.pg_option,
            mlflow_args=args.mlflow_args,
        )
        stack, already = start(settings)
        print(f"imblab team-server: {'already running' if already else 'started'}: " + _describe(stack),
              file=sys.stderr, end="")  # fmt: skip
        sys.stdout.write(_exports(stack))
        return 0
    if args.action == "stop":
        stack, left = stop_stack(root)
        if stack is None:
            print(f"imblab team-server: nothing recorded under {root}: nothing to stop", file=sys.stderr)
            return 0
        if left:
            print(f"imblab team-server: processes still running after stop: {left}", file=sys.stderr)
            return 1
        print(f"imblab team-server: stopped ({len(stack.servers)} servers, no process left)", file=sys.stderr)
        return 0
    stack = read_state(root.resolve())
    if stack is None:
        print(f"imblab team-server: not running (nothing recorded under {root})", file=sys.stderr)
        return 3
    if args.json:
        print(json.dumps(stack.to_json(), indent=2))
    up = running(stack)
    print(f"imblab team-server: {'running' if up else 'NOT running'}: " + _describe(stack), file=sys.stderr,
          end="")  # fmt: skip
    return 0 if up else 3
