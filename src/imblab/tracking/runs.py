"""One tracked MLflow run: how it starts and ends, and what identifies it (command, commit, config)."""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
from mlflow.utils.git_utils import get_git_commit
from mlflow.utils.mlflow_tags import MLFLOW_GIT_COMMIT

import imblab
from imblab.secrets import mask, mask_config, mask_tags
from imblab.tracking.layout import (
    COMMAND_ENV,
    ROLE_RUN,
    TAG_COMMAND,
    TAG_ERROR,
    TAG_ERROR_TYPE,
    TAG_KILLED,
    TAG_ROLE,
    TAG_SWEEP,
    TAG_VERSION,
)
from imblab.tracking.lifecycle import live, location_tags

PARAM_LIMIT = 6000  # MLflow's param value limit
TAG_LIMIT = 5000


def flatten(config: dict[str, Any]) -> dict[str, str]:
    """Nested plain config as ``{"model.estimator.n_estimators": "600", ...}`` (MLflow params), masked."""
    flat: dict[str, str] = {}

    def walk(prefix: str, node: Any) -> None:
        if isinstance(node, dict) and node:
            for key, value in node.items():
                walk(f"{prefix}.{key}" if prefix else str(key), value)
        else:
            text = json.dumps(node) if isinstance(node, list | dict) else str(node)
            flat[prefix] = text[:PARAM_LIMIT]

    walk("", mask_config(config))
    return flat


def command_line() -> str:
    """The command that made the run, shell-quoted so it can be pasted back (``imblab train 'x=a b' -m``),
    passwords masked (tag ``imblab.command``).

    ``imblab.app.main`` records it as typed, subcommand included, in ``$IMBLAB_COMMAND`` (so a sweep's
    worker processes see it too); Hydra rewrites ``sys.argv``, which would drop the subcommand. Outside
    the command (the Python API) it is this process's arguments.
    """
    typed = os.environ.get(COMMAND_ENV) or shlex.join(["imblab", *sys.argv[1:]])
    return mask(typed)


def git_tags() -> dict[str, str]:
    """MLflow's own ``mlflow.source.git.commit``, resolved from imblab's source tree.

    MLflow resolves it from the entry script, which is outside the checkout for an installed console
    script; imblab's package directory is inside it whenever imblab runs from a checkout.
    """
    commit = get_git_commit(str(Path(imblab.__file__).resolve().parent))
    return {MLFLOW_GIT_COMMIT: commit} if commit else {}


@contextlib.contextmanager
def tracked_run(
    experiment_id: str, run_name: str, tags: dict[str, str], parent_run_id: str | None = None
) -> Iterator[mlflow.ActiveRun]:
    """An MLflow run that ends FINISHED, or FAILED/KILLED with the error recorded as tags.

    Nothing is left RUNNING: whatever escapes the body terminates the run before re-raising (an interrupt,
    i.e. SIGINT/SIGTERM, ends it KILLED with ``imblab.killed_reason``). While open, the run says where it
    lives and beats (``imblab.tracking.lifecycle``), so a later command can reap it if its process dies.
    """
    run = mlflow.start_run(
        experiment_id=experiment_id,
        run_name=mask(run_name),
        tags=mask_tags({**git_tags(), **location_tags(), **tags}),
        parent_run_id=parent_run_id,
    )
    with live(run.info.run_id, mlflow.get_tracking_uri()):
        try:
            yield run
        except BaseException as exc:
            interrupted = isinstance(exc, KeyboardInterrupt)
            message = mask(str(exc))[:TAG_LIMIT] or type(exc).__name__
            with contextlib.suppress(Exception):
                mlflow.set_tags(
                    {TAG_ERROR: message, TAG_ERROR_TYPE: type(exc).__name__}
                    | ({TAG_KILLED: message} if interrupted else {})
                )
            mlflow.end_run("KILLED" if interrupted else "FAILED")
            raise
        mlflow.end_run("FINISHED")


def training_run(
    experiment_id: str, run_name: str, tags: dict[str, str], parent_run_id: str | None = None
) -> contextlib.AbstractContextManager[mlflow.ActiveRun]:
    """A ``tracked_run`` of one training run (either workload): its own ``tags`` plus the role, imblab's
    version, the command as typed and, in a sweep, the sweep's id."""
    common = {TAG_ROLE: ROLE_RUN, TAG_VERSION: imblab.__version__, TAG_COMMAND: command_line()[:TAG_LIMIT]}
    sweep = {TAG_SWEEP: parent_run_id} if parent_run_id else {}
    return tracked_run(experiment_id, run_name, {**tags, **common, **sweep}, parent_run_id=parent_run_id)
