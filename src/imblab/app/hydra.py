"""Running a Hydra app as an ``imblab`` subcommand, with imblab's error convention."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from imblab.errors import ImblabError
from imblab.secrets import mask


def conf_dir() -> Path:
    """The Hydra config directory: packaged in a wheel, or the repository's ``conf/``."""
    here = Path(__file__).resolve().parents[1]
    for candidate in (here / "conf", here.parents[1] / "conf"):
        if (candidate / "train.yaml").is_file():
            return candidate
    raise ImblabError(f"imblab's config directory was not found next to {here}; reinstall imblab")


def in_multirun() -> bool:
    """Whether the current Hydra job is one job of a ``-m`` sweep."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def sweep_dir() -> Path | None:
    """The output directory of the current multirun (where its parent run id is recorded); else None."""
    from hydra.core.hydra_config import HydraConfig

    if not in_multirun():
        return None
    config = HydraConfig.get()
    return Path(config.runtime.cwd) / config.sweep.dir


BASIC_LAUNCHER = "hydra._internal.core_plugins.basic_launcher.BasicLauncher"


def progress_display() -> bool | None:
    """``live`` for a run's progress (:class:`imblab.console.progress.RunProgress`): on a terminal (None),
    except in a sweep whose launcher may run jobs side by side (joblib...): their lines would collide."""
    from hydra.core.hydra_config import HydraConfig

    if not in_multirun():
        return None
    launcher = HydraConfig.get().launcher.get("_target_", BASIC_LAUNCHER)
    return None if launcher == BASIC_LAUNCHER else False


def report_run(uri: str, run_id: str, model_uri: str | None) -> None:
    """A finished run's closing summary on stdout: one line per job in a sweep, else the full summary."""
    from imblab.console.summary import describe_run

    print(describe_run(uri, run_id, model_uri, in_sweep=in_multirun()), flush=True)


def close_and_report_sweep(failed: bool, killed: str | None = None) -> None:
    """Close the open sweep's parent run, if any, and print the sweep's summary (not when killed)."""
    from imblab.console.summary import describe_sweep
    from imblab.tracking.sweeps import close_sweep

    closed = close_sweep(failed=failed, killed=killed)
    if closed is not None and killed is None:
        print(describe_sweep(*closed), flush=True)


def exit_on_error(task: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """In a single run, an ``ImblabError`` prints ``imblab: error: ...`` and exits 2 (no traceback)."""

    def wrapped(cfg: Any) -> Any:
        try:
            return task(cfg)
        except ImblabError as exc:
            if not in_multirun():
                print(f"imblab: error: {mask(str(exc))}", file=sys.stderr)
                raise SystemExit(2) from exc
            raise

    wrapped.__name__ = task.__name__
    return wrapped


def run_hydra(
    task: Callable[[Any], Any],
    argv: list[str],
    config_name: str = "train",
    config_dir: Path | None = None,
    overrides: Sequence[str] = (),
) -> None:
    """Run ``task`` as a Hydra app with ``argv`` as its command line (Hydra parses ``sys.argv``); a sweep's
    parent run is closed whatever happens, and the sweep's summary printed.

    ``config_dir`` defaults to :func:`conf_dir` (``imblab train``'s root); ``imblab panel`` passes its own.
    ``overrides`` are added to every command line, the one Hydra's shell completion queries included.
    The program name is ``imblab`` for every subcommand: Hydra's completion script registers itself for
    that name and calls it back (``imblab -sc query=bash``, routed by ``imblab.app.main``).
    """
    import hydra

    sys.argv = ["imblab", *argv, *overrides]
    if overrides and "COMP_LINE" in os.environ and {"-sc", "--shell-completion"} & set(argv):
        # A completion query reads the line being typed, not argv: the overrides go into that line.
        program, _, rest = os.environ["COMP_LINE"].lstrip().partition(" ")
        os.environ["COMP_LINE"] = " ".join([program, *overrides, rest])
    root = str(config_dir or conf_dir())
    app = hydra.main(config_path=root, config_name=config_name, version_base="1.3")(exit_on_error(task))
    failed, killed = True, None
    try:
        app()
        failed = False
    except KeyboardInterrupt as exc:  # SIGINT / SIGTERM (imblab.app.signals): the sweep ends KILLED
        killed = str(exc) or "interrupted"
        raise
    finally:
        # A sweep whose job raised never reaches Hydra's on_multirun_end: close its parent here
        # (a no-op when no sweep is open, e.g. a single run or a tune-worker). A sweep is only ever
        # opened through imblab.tracking.sweeps: when nothing imported it, nothing is open, and
        # --help, --info and completion queries (one per <TAB>) do not pay for importing MLflow.
        if "imblab.tracking.sweeps" in sys.modules:
            close_and_report_sweep(failed, killed)
