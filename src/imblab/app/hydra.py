"""Running a Hydra app as an ``imblab`` subcommand, with imblab's error convention."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from imblab.app.main import print_error
from imblab.app.sweep import end_sweep, record_failure
from imblab.errors import ImblabError

log = logging.getLogger(__name__)

FULL_ERROR = "HYDRA_FULL_ERROR"


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


def hydra_message(exc: Exception) -> str:
    """A Hydra config error as Hydra prints it: its message, then OmegaConf's cause (which key, why)."""
    from omegaconf.errors import OmegaConfBaseException

    cause = exc.__cause__
    # Hydra's config search path (a missing option) is for Hydra's developers, not for a user who mistyped.
    lines = [str(exc).split("\nConfig search path:")[0].strip()]
    if isinstance(cause, OmegaConfBaseException):
        lines.append(str(cause).strip())
    return "\n".join(lines)


def raised_inside(exc: BaseException, function: Callable[..., Any]) -> bool:
    """Whether ``exc`` was raised while ``function`` ran (rather than in Hydra around it)."""
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code is function.__code__:
            return True
        tb = tb.tb_next
    return False


def refuse_null_groups(argv: list[str], roots: list[Path]) -> None:
    """``sampler=null`` would be a traceback from inside Hydra: a config group needs one of its options."""
    for arg in argv:
        key, _, value = arg.partition("=")
        if value != "null" or key.startswith(("+", "~", "hydra")):
            continue
        options = sorted({p.stem for root in roots for p in (root / key).glob("*.yaml")})
        if options:
            raise ImblabError(
                f"{arg}: a config group cannot be null; choose {key}=<option>, one of {', '.join(options)}, "
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
    from hydra.errors import CompactHydraException

    root = config_dir or conf_dir()
    refuse_null_groups(argv, [root, conf_dir()])
    sys.argv = [prog, *argv]
    wrapped = exit_on_error(task)
    app = hydra.main(config_path=str(root), config_name=config_name, version_base="1.3")(wrapped)
    failed = True
    # Hydra prints its own errors (an unknown option, foo=bar) and exits 1; with HYDRA_FULL_ERROR it raises
    # them instead, and they become imblab's: `imblab: error: ...`, exit 2.
    full_error = os.environ.get(FULL_ERROR)
    os.environ[FULL_ERROR] = "1"
    error = None
    try:
        app()
        failed = False
    except CompactHydraException as exc:
        error = hydra_message(exc)
    except OSError as exc:
        if raised_inside(exc, wrapped):
            raise  # not Hydra's own files: a bug, with its traceback
        error = (
            f"cannot write {exc.filename} ({exc.strerror}): Hydra keeps each run's config and log under "
            "outputs/ (multirun/ for -m) in the working directory. Run imblab from a writable directory, "
            "or set hydra.run.dir=<a writable folder> (hydra.sweep.dir=... for -m)"
        )
    finally:
        if full_error is None:
            os.environ.pop(FULL_ERROR, None)
        else:
            os.environ[FULL_ERROR] = full_error
        # Also when a job raised something other than an ImblabError, or the sweep never started.
        failures = end_sweep(failed=failed, error=error)
    if error is not None:
        raise ImblabError(error)
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
