"""Running a Hydra app as an ``imblab`` subcommand, with imblab's error convention."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from imblab.app.failures import close_failures, job_failures, record_failure
from imblab.app.main import print_error
from imblab.errors import ImblabError
from imblab.secrets import mask

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
    """A finished run's closing summary on stdout: one line per job in a sweep (whose run also gets its
    description for the MLflow UI), else the full summary."""
    from imblab.console.summary import describe_run

    if in_multirun():
        from imblab.report.sweep_run import note_job

        note_job(uri, run_id)
    print(describe_run(uri, run_id, model_uri, in_sweep=in_multirun()), flush=True)


def job_run_name() -> str | None:
    """In a sweep, this job's run name: the values of the keys the sweep varies (``smote·best_f1``)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from imblab.tracking.sweeps import job_run_name as name_of
    from imblab.tracking.sweeps import swept_keys

    if not in_multirun():
        return None
    overrides = OverridesParser.create().parse_overrides(list(HydraConfig.get().overrides.task))
    values = {o.get_key_element(): o.get_value_element_as_str() for o in overrides}
    return name_of(swept_keys(sweep_dir()), values)


def named_for_sweep(tracking: Any) -> Any:
    """``tracking`` (a TrackingSpec) with the job's run name in a sweep, unless tracking.run_name is set."""
    import dataclasses

    name = None if tracking.run_name else job_run_name()
    return dataclasses.replace(tracking, run_name=name) if name else tracking


def close_and_report_sweep(failed: bool, killed: str | None = None, error: str | None = None) -> None:
    """Close the open sweep's parent run, if any, with its jobs' failures and the sweep's own ``error``
    (e.g. an override Hydra refused), and print the sweep's summary (not when killed)."""
    from imblab.console.summary import describe_sweep
    from imblab.tracking.sweeps import close_sweep

    recorded = [str(f) for f in job_failures()] + ([error] if error else [])
    closed = close_sweep(failed=failed or bool(recorded), killed=killed, failures=recorded)
    if closed is not None and killed is None:
        from imblab.report.sweep_run import annotate_sweep

        annotate_sweep(*closed)
        print(describe_sweep(*closed), flush=True)


def exit_on_error(task: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """An ``ImblabError`` never becomes a Hydra traceback.

    In a single run it prints ``imblab: error: ...`` and exits 2. In a sweep job it is recorded
    (``imblab.app.failures``) and the job returns, so the launcher goes on with the other jobs;
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
            log.error("job %s failed: %s", job.num, mask(str(exc)))
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


def refuse_null_groups(argv: Sequence[str], roots: list[Path]) -> None:
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


def hydra_error(exc: Exception, wrapped: Callable[..., Any]) -> str | None:
    """What to tell the user about an exception Hydra raised around the task; None for one to re-raise.

    With ``HYDRA_FULL_ERROR`` Hydra raises its config errors (an unknown option, ``foo=bar``) instead of
    printing them and exiting 1: they become imblab's, ``imblab: error: ...`` and exit 2. An ``OSError``
    outside the task is Hydra writing its own folders (``outputs/``, ``multirun/``).
    """
    from hydra.errors import CompactHydraException

    if isinstance(exc, CompactHydraException):
        return hydra_message(exc)
    if isinstance(exc, OSError) and not raised_inside(exc, wrapped):
        return (
            f"cannot write {exc.filename} ({exc.strerror}): Hydra keeps each run's config and log under "
            "outputs/ (multirun/ for -m) in the working directory. Run imblab from a writable directory, "
            "or set hydra.run.dir=<a writable folder> (hydra.sweep.dir=... for -m)"
        )
    return None


def run_hydra(
    task: Callable[[Any], Any],
    argv: list[str],
    config_name: str = "train",
    config_dir: Path | None = None,
    overrides: Sequence[str] = (),
) -> int:
    """Run ``task`` as a Hydra app with ``argv`` as its command line (Hydra parses ``sys.argv``); returns the
    exit status: 2 when sweep jobs failed, each printed as ``imblab: error: job N (...): ...``. A sweep's
    parent run is closed whatever happens, and the sweep's summary printed.

    ``config_dir`` defaults to :func:`conf_dir` (``imblab train``'s root); ``imblab panel`` passes its own.
    ``overrides`` are added to every command line, the one Hydra's shell completion queries included.
    The program name is ``imblab`` for every subcommand: Hydra's completion script registers itself for
    that name and calls it back (``imblab -sc query=bash``, routed by ``imblab.app.main``).
    """
    import hydra

    root = config_dir or conf_dir()
    refuse_null_groups(argv, [root, conf_dir()])
    sys.argv = ["imblab", *argv, *overrides]
    if overrides and "COMP_LINE" in os.environ and {"-sc", "--shell-completion"} & set(argv):
        # A completion query reads the line being typed, not argv: the overrides go into that line.
        program, _, rest = os.environ["COMP_LINE"].lstrip().partition(" ")
        os.environ["COMP_LINE"] = " ".join([program, *overrides, rest])
    wrapped = exit_on_error(task)
    app = hydra.main(config_path=str(root), config_name=config_name, version_base="1.3")(wrapped)
    failed, killed, error = True, None, None
    full_error = os.environ.get(FULL_ERROR)
    os.environ[FULL_ERROR] = "1"  # Hydra raises its errors instead of printing them: see hydra_error
    try:
        app()
        failed = False
    except KeyboardInterrupt as exc:  # SIGINT / SIGTERM (imblab.app.signals): the sweep ends KILLED
        killed = str(exc) or "interrupted"
        raise
    except Exception as exc:
        error = hydra_error(exc, wrapped)
        if error is None:
            raise  # a bug: with its traceback
    finally:
        if full_error is None:
            os.environ.pop(FULL_ERROR, None)
        else:
            os.environ[FULL_ERROR] = full_error
        failures = job_failures()
        # A sweep whose job raised never reaches Hydra's on_multirun_end: close its parent here
        # (a no-op when no sweep is open, e.g. a single run or a tune-worker). A sweep is only ever
        # opened through imblab.tracking.sweeps: when nothing imported it, nothing is open, and
        # --help, --info and completion queries (one per <TAB>) do not pay for importing MLflow.
        if "imblab.tracking.sweeps" in sys.modules:
            close_and_report_sweep(failed, killed, error)
        close_failures()
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
