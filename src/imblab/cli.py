"""The ``imblab`` command: ``train`` is a Hydra app; the other subcommands are plain argparse tools.

Each subcommand is a ``main(argv) -> int`` function imported lazily, so ``imblab runs`` does not
pay for importing LightGBM and ``imblab train`` does not pay for the scoring server.
"""

from __future__ import annotations

import importlib
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from imblab.errors import ImblabError

# subcommand -> ("module:function", one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("imblab.cli:train_main", "run an experiment (Hydra overrides; -m for a sweep)"),
    "runs": ("imblab.runs:main", "table of an experiment's runs from MLflow"),
    "tune-worker": ("imblab.tuning:worker_main", "add a worker process to a shared Optuna study"),
    "compare": ("imblab.compare:main", "compare a sweep's variants with bootstrap confidence intervals"),
    "promote": ("imblab.registry:promote_main", "register the best run's model and gate the champion alias"),
    "set-threshold": ("imblab.registry:set_threshold_main", "new model version with a re-chosen threshold"),
    "serve": ("imblab.serving:serve_main", "serve a frozen model over REST on 127.0.0.1"),
    "predict": ("imblab.serving:predict_main", "batch-score a CSV or Parquet file"),
}


def conf_dir() -> Path:
    """The Hydra config directory: packaged in a wheel, or the repository's ``conf/``."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "conf", here.parents[1] / "conf"):
        if (candidate / "train.yaml").is_file():
            return candidate
    raise ImblabError(f"imblab's config directory was not found next to {here}; reinstall imblab")


def _train_task(cfg) -> float:  # type: ignore[no-untyped-def]
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from imblab.runner import run_experiment

    try:
        outcome = run_experiment(cfg)
    except ImblabError as exc:
        if HydraConfig.get().mode == RunMode.RUN:
            print(f"imblab: error: {exc}", file=sys.stderr)
            raise SystemExit(2) from exc
        raise
    return float(outcome.test_metrics["pr_auc"])


def hydra_app(task: Callable, config_name: str = "train") -> Callable[[], object]:  # type: ignore[type-arg]
    import hydra

    return hydra.main(config_path=str(conf_dir()), config_name=config_name, version_base="1.3")(task)


def train_main(argv: Sequence[str]) -> int:
    """``imblab train [overrides]``: Hydra parses argv exactly as for any Hydra app."""
    from imblab.tracking import close_sweep

    sys.argv = ["imblab", *argv]
    failed = True
    try:
        hydra_app(_train_task)()
        failed = False
    finally:
        # A sweep whose job raised never reaches Hydra's on_multirun_end: close its parent here.
        close_sweep(failed=failed)
    return 0


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
    module, func = COMMANDS[name][0].split(":")
    try:
        entry = getattr(importlib.import_module(module), func)
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
