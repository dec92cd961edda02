"""Running a Hydra app as an ``imblab`` subcommand, with imblab's error convention."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from imblab.errors import ImblabError


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


def exit_on_error(task: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """In a single run, an ``ImblabError`` prints ``imblab: error: ...`` and exits 2 (no traceback)."""

    def wrapped(cfg: Any) -> Any:
        try:
            return task(cfg)
        except ImblabError as exc:
            if not in_multirun():
                print(f"imblab: error: {exc}", file=sys.stderr)
                raise SystemExit(2) from exc
            raise

    wrapped.__name__ = task.__name__
    return wrapped


def run_hydra(
    task: Callable[[Any], Any],
    prog: str,
    argv: list[str],
    config_name: str = "train",
    config_dir: Path | None = None,
) -> None:
    """Run ``task`` as a Hydra app with ``argv`` as its command line (Hydra parses ``sys.argv``); a sweep's
    parent run is closed whatever happens.

    ``config_dir`` defaults to :func:`conf_dir` (``imblab train``'s root); ``imblab panel`` passes its own.
    """
    import hydra

    from imblab.tracking.sweeps import close_sweep

    sys.argv = [prog, *argv]
    root = str(config_dir or conf_dir())
    app = hydra.main(config_path=root, config_name=config_name, version_base="1.3")(exit_on_error(task))
    failed = True
    try:
        app()
        failed = False
    finally:
        # A sweep whose job raised never reaches Hydra's on_multirun_end: close its parent here
        # (a no-op when no sweep is open, e.g. a single run or a tune-worker).
        close_sweep(failed=failed)
