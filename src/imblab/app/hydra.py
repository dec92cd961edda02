"""Running a Hydra app as an ``imblab`` subcommand, with imblab's error convention."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from imblab.app.main import print_error
from imblab.app.sweep import end_sweep, record_failure
from imblab.errors import ImblabError

log = logging.getLogger(__name__)


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


def exit_on_error(task: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """An ``ImblabError`` never becomes a Hydra traceback.

    In a single run it prints ``imblab: error: ...`` and exits 2. In a sweep job it is recorded for the
    sweep (``imblab.app.sweep``) and the job returns, so the launcher goes on with the other jobs;
    ``run_hydra`` reports every failed job once they are done.
    """

    def wrapped(cfg: Any) -> Any:
        try:
            return task(cfg)
        except ImblabError as exc:
            if not in_multirun():
                print_error(exc)
                raise SystemExit(2) from exc
            from hydra.core.hydra_config import HydraConfig

            job = HydraConfig.get().job
            if not record_failure(int(job.num), list(HydraConfig.get().overrides.task), str(exc)):
                raise  # a sweep without imblab's callback: Hydra reports it
            log.error("job %s failed: %s", job.num, exc)
            return None

    wrapped.__name__ = task.__name__
    return wrapped


def refuse_null_groups(argv: list[str], roots: list[Path]) -> None:
    """``sampler=null`` would be a traceback from inside Hydra: a config group needs one of its options."""
    for arg in argv:
        key, _, value = arg.partition("=")
        if value != "null" or key.startswith(("+", "~", "hydra")):
            continue
        options = sorted({p.stem for root in roots for p in (root / key).glob("*.yaml")})
        if options:
            raise ImblabError(
                f"{arg}: a config group cannot be null; pick one of its options ({key}={', '.join(options)}) "
                f"or leave {key} at its default"
            )


def run_hydra(
    task: Callable[[Any], Any],
    prog: str,
    argv: list[str],
    config_name: str = "train",
    config_dir: Path | None = None,
) -> int:
    """Run ``task`` as a Hydra app with ``argv`` as its command line (Hydra parses ``sys.argv``); returns the
    exit status: 2 when a sweep job failed (each failure printed as ``imblab: error: job N (...): ...``).

    A sweep's parent run is closed whatever happens. ``config_dir`` defaults to :func:`conf_dir`
    (``imblab train``'s root); ``imblab panel`` passes its own.
    """
    import hydra

    root = config_dir or conf_dir()
    refuse_null_groups(argv, [root, conf_dir()])
    sys.argv = [prog, *argv]
    app = hydra.main(config_path=str(root), config_name=config_name, version_base="1.3")(exit_on_error(task))
    failed = True
    try:
        app()
        failed = False
    finally:
        # Also when a job raised something other than an ImblabError, or the sweep never started.
        failures = end_sweep(failed=failed)
    for failure in failures:
        print_error(failure)
    if failures:
        print(
            f"imblab: {len(failures)} sweep job(s) failed; the others ran to the end. The sweep's parent run "
            "is FAILED and lists the failures in its imblab.error tag.",
            file=sys.stderr,
        )
        return 2
    return 0
