"""The ``imblab`` command: ``train``, ``panel`` and ``tune-worker`` are Hydra apps; the others use argparse.

Each subcommand is a ``main(argv) -> int`` in its own module under ``imblab.app``, imported lazily,
so ``imblab runs`` does not pay for importing LightGBM and ``imblab train`` not for the server.
SIGINT / SIGTERM end the command's runs KILLED and exit 130 / 143 (``imblab.app.signals``); a
watchdog process kills the workers it started once it ends, however it ends (``imblab.process``).

Shell completion is Hydra's: ``imblab -sc install=bash`` (or ``imblab train -sc install=bash``) prints a
script that, at every <TAB>, runs ``imblab -sc query=bash`` with the line in ``$COMP_LINE``. That query
arrives here without a subcommand, so :func:`route_completion` completes the command name itself and
hands the rest of the line to the Hydra app of the command being typed.
"""

from __future__ import annotations

import importlib
import logging
import os
import re
import shlex
import signal
import sys
from collections.abc import Callable, Sequence

from imblab.errors import ImblabError, Interrupted
from imblab.process import mark_workers, start_watchdog, stop_watchdog, unmark_workers
from imblab.secrets import install, mask
from imblab.tracking.layout import COMMAND_ENV

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
# Hydra apps: Hydra configures logging and parses -sc / --info / --cfg / --help itself.
HYDRA_COMMANDS = ("train", "panel", "tune-worker")
COMPLETION_FLAGS = ("-sc", "--shell-completion")
# Arguments of a Hydra command that only print (help, config, completion): such a command starts no run.
INFO_FLAGS = frozenset({*COMPLETION_FLAGS, "-h", "--help", "--hydra-help", "-i", "--info", "-c", "--cfg"})


def _usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [f"  {name.ljust(width)}  {help_}" for name, (_, help_) in COMMANDS.items()]
    return (
        "usage: imblab <command> [args]\n\ncommands:\n"
        + "\n".join(lines)
        + "\n\n`imblab <command> --help` for details; `imblab train --help` shows the Hydra config groups."
    )


def print_error(message: object) -> None:
    """imblab's error line on stderr: what went wrong and what to do, no traceback."""
    print(f"imblab: error: {mask(str(message))}", file=sys.stderr)


def route_completion(args: list[str]) -> tuple[str, list[str]] | None:
    """The Hydra command that answers ``imblab -sc ...``, and its arguments; None when answered here.

    ``install=`` / ``uninstall=``: the script is the same for every Hydra command (it always calls back
    ``imblab -sc query=...``), so ``train`` prints it. ``query=``: while the command name is being typed,
    the names are printed here; for a Hydra command, ``$COMP_LINE`` loses the command word so its Hydra
    app sees ``imblab <overrides>``, the line it expects; other commands get nothing (the shell then
    completes file names).
    """
    if not any(a.startswith("query=") for a in args[1:]):
        return "train", args
    line = os.environ.get("COMP_LINE", "")
    words = line.split()
    if len(words) < 2 or (len(words) == 2 and not line[-1:].isspace()):
        typed = words[1] if len(words) == 2 else ""
        print(" ".join(name for name in COMMANDS if name.startswith(typed)))
        return None
    if words[1] not in HYDRA_COMMANDS:
        return None
    head = re.match(r"\s*\S+\s+\S+", line)
    assert head is not None  # two words were found above
    os.environ["COMP_LINE"] = words[0] + line[head.end() :]
    return words[1], args


def main(argv: Sequence[str] | None = None) -> int:
    # Before anything logs or prints: passwords in URLs, secret keys and secret environment values are
    # masked in every log record and everything written to stdout/stderr (imblab.secrets).
    install()
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    if args[0] == "--version":
        from imblab import __version__

        print(f"imblab {__version__}")
        return 0
    if args[0] in COMPLETION_FLAGS:
        routed = route_completion(args)
        if routed is None:
            return 0
        name, rest = routed
    else:
        name, rest = args[0], args[1:]
    if name not in COMMANDS:
        print(f"imblab: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    if name not in HYDRA_COMMANDS:
        # Not for Hydra apps: Hydra adds its own handler (--info logs through it), and a second one on
        # the root logger printed everything twice, once on stdout and once on stderr.
        logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        entry = importlib.import_module(f"imblab.app.{COMMANDS[name][0]}").main
    except (ImportError, AttributeError) as exc:
        print(f"imblab: command {name!r} is not available in this build ({exc})", file=sys.stderr)
        return 2
    if INFO_FLAGS & set(rest):  # help, config, completion: no run, so no lifecycle (and no MLflow import)
        try:
            return int(entry(rest) or 0)
        except ImblabError as exc:
            print_error(exc)
            return 2
    from imblab.app import signals  # imports MLflow: not for --help
    from imblab.tracking.lifecycle import heartbeat_seconds

    marked = mark_workers()
    watchdog = start_watchdog()  # kills the workers this command leaves, however it ends
    restore: Callable[[], None] = lambda: None  # noqa: E731
    clean = False
    # The command as typed, for the runs' imblab.command tag (and the sweep's worker processes).
    previous = os.environ.get(COMMAND_ENV)
    os.environ[COMMAND_ENV] = shlex.join(["imblab", *args])
    try:
        # The lifecycle's settings are checked before anything runs: a bad one is an error, not a surprise.
        restore = signals.install()
        heartbeat_seconds()
        status = int(entry(rest) or 0)
        clean = True
        return status
    except ImblabError as exc:
        clean = True
        print_error(exc)
        return 2
    except KeyboardInterrupt as exc:  # Interrupted, or a KeyboardInterrupt raised before the handler ran
        stopped = exc if isinstance(exc, Interrupted) else Interrupted(signal.SIGINT)
        word = "terminated" if stopped.signum == signal.SIGTERM else "interrupted"
        print(f"imblab: {word}", file=sys.stderr)
        return stopped.exit_status
    finally:
        restore()
        unmark_workers(marked)
        if clean:  # its pools shut down normally; otherwise the watchdog stays until this process ends
            stop_watchdog(watchdog)
        if previous is None:
            os.environ.pop(COMMAND_ENV, None)
        else:
            os.environ[COMMAND_ENV] = previous


if __name__ == "__main__":
    sys.exit(main())
