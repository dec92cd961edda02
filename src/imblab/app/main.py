"""The ``imblab`` command: ``train``, ``panel`` and ``tune-worker`` are Hydra apps; the others use argparse.

Each subcommand is a ``main(argv) -> int`` in its own module under ``imblab.app``, imported lazily,
so ``imblab runs`` does not pay for importing LightGBM and ``imblab train`` not for the server.
"""

from __future__ import annotations

import importlib
import logging
import sys
from collections.abc import Sequence

from imblab.errors import ImblabError

# subcommand -> (module under imblab.app, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("train", "run an experiment (Hydra overrides; -m for a sweep)"),
    "panel": ("panel", "run a panel experiment: wage + imbalanced class per wave (-m for a sweep)"),
    "runs": ("runs", "table of an experiment's runs from MLflow"),
    "tune-worker": ("tune_worker", "add a worker process to a shared Optuna study"),
    "compare": ("compare", "compare a sweep's variants with bootstrap confidence intervals"),
    "promote": ("promote", "register the best run's model and gate the champion alias"),
    "set-threshold": ("set_threshold", "new model version with a re-chosen threshold"),
    "serve": ("serve", "serve a frozen model over REST on 127.0.0.1"),
    "predict": ("predict", "batch-score a CSV or Parquet file"),
    "team-server": ("team_server", "start/stop a shared PostgreSQL + MLflow tracking server (make server)"),
}


def _usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [f"  {name.ljust(width)}  {help_}" for name, (_, help_) in COMMANDS.items()]
    return (
        "usage: imblab <command> [args]\n\ncommands:\n"
        + "\n".join(lines)
        + "\n\n`imblab <command> --help` for details; `imblab train --help` shows the Hydra config groups."
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    if args[0] == "--version":
        from imblab import __version__

        print(f"imblab {__version__}")
        return 0
    name, rest = args[0], args[1:]
    if name not in COMMANDS:
        print(f"imblab: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        entry = importlib.import_module(f"imblab.app.{COMMANDS[name][0]}").main
    except (ImportError, AttributeError) as exc:
        print(f"imblab: command {name!r} is not available in this build ({exc})", file=sys.stderr)
        return 2
    try:
        return int(entry(rest) or 0)
    except ImblabError as exc:
        print(f"imblab: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
