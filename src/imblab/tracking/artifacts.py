"""What a training run stores besides metrics, and how readers get it back.

The layout (names in ``imblab.tracking.layout``) is written here and read here: compare, registry
and serving never spell a path themselves.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import mlflow
import pandas as pd
import yaml
from matplotlib.figure import Figure
from mlflow.entities import Run
from mlflow.environment_variables import MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR
from mlflow.exceptions import MlflowException

from imblab.errors import ImblabError
from imblab.secrets import mask_config
from imblab.tracking.artifact_cache import local_artifact
from imblab.tracking.layout import (
    CONFIG_YAML,
    CV_FOLDS_CSV,
    DECISION_JSON,
    FEATURE_IMPORTANCES_CSV,
    METRICS_JSON,
    OOF_SCORES,
    PANEL_TEST_PREDICTIONS,
    PLOTS_DIR,
    RCV_FOLDS_CSV,
    TEST_SCORES,
    THRESHOLD_JSON,
)


def threshold_record(
    policy: str,
    params: dict[str, float],
    threshold: float,
    objective: float,
    feasible: bool,
    detail: str,
    costs: dict[str, float],
    chosen_on: str,
    **extra: Any,
) -> dict[str, Any]:
    """The content of ``threshold.json``: the one description of a frozen threshold and why."""
    return {
        "policy": policy,
        "params": params,
        "threshold": threshold,
        "objective": objective,
        "feasible": feasible,
        "detail": detail,
        "costs": costs,
        "chosen_on": chosen_on,
        **extra,
    }


def log_parquet(frame: pd.DataFrame, artifact_path: str) -> None:
    """One Parquet artifact on the active run (MLflow has no in-memory writer for Parquet)."""
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / Path(artifact_path).name
        frame.to_parquet(local, index=False)
        mlflow.log_artifact(str(local), artifact_path=str(Path(artifact_path).parent) or None)


def log_run_artifacts(
    config: dict[str, Any],
    oof: pd.DataFrame,
    test: pd.DataFrame | None,
    folds: pd.DataFrame,
    metrics: dict[str, dict[str, float]],
    threshold: dict[str, Any],
    figures: dict[str, Figure],
    importances: pd.DataFrame | None = None,
) -> None:
    """Everything a training run stores besides the model: scores, config, metrics, threshold, plots
    and, for a model that has them, its feature importances.

    ``test`` is None for a run without a holdout test set (``evaluation=repeated_cv``).
    """
    log_parquet(oof, OOF_SCORES)
    if test is not None:
        log_parquet(test, TEST_SCORES)
    mlflow.log_text(folds.to_csv(index=False), CV_FOLDS_CSV)
    log_config(config)
    mlflow.log_dict(metrics, METRICS_JSON)
    log_threshold(threshold)
    log_figures(figures, PLOTS_DIR)
    if importances is not None:
        mlflow.log_text(importances.to_csv(index=False), FEATURE_IMPORTANCES_CSV)


def log_config(config: dict[str, Any]) -> None:
    """``config.yaml`` on the active run: the resolved config with its secrets masked (the one writer)."""
    mlflow.log_dict(mask_config(config), CONFIG_YAML)


def log_threshold(record: dict[str, Any]) -> None:
    """``threshold.json`` on the active run: the one writer (training runs and set-threshold runs)."""
    mlflow.log_dict(record, THRESHOLD_JSON)


def log_figures(figures: dict[str, Figure], folder: str) -> None:
    """Each figure as ``<folder>/<name>.png`` on the active run; figures are closed afterwards."""
    for name, fig in figures.items():
        mlflow.log_figure(fig, f"{folder}/{name}.png", save_kwargs={"dpi": 110})
        plt.close(fig)


@contextlib.contextmanager
def quiet_downloads() -> Iterator[None]:
    """No per-file progress bars while fetching small artifacts (unless the user set the variable)."""
    name = MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR.name
    if name in os.environ:
        yield
        return
    os.environ[name] = "false"
    try:
        yield
    finally:
        os.environ.pop(name, None)


def _missing(run: Run, what: str, exc: Exception) -> ImblabError:
    return ImblabError(
        f"run {run.info.run_id} ({run.info.run_name}) has no {what} artifact ({exc}); it was not logged "
        "by `imblab train` or `imblab panel` (another tool or an older imblab): retrain it with imblab or "
        "leave it out"
    )


def read_config(run: Run) -> dict[str, Any]:
    """The resolved config a training run logged (``config.yaml``) as plain data."""
    with quiet_downloads():
        try:
            with local_artifact(run, CONFIG_YAML) as local:
                text = local.read_text()
        except (MlflowException, OSError) as exc:
            raise _missing(run, CONFIG_YAML, exc) from None
    config = yaml.safe_load(text)
    if not isinstance(config, dict):
        raise ImblabError(f"{CONFIG_YAML} of run {run.info.run_id} is not a mapping")
    return config


def read_threshold(run: Run) -> dict[str, Any]:
    """The run's ``threshold.json`` (policy, threshold, costs, ...)."""
    return _read_json(run, THRESHOLD_JSON)


def _read_json(run: Run, path: str) -> dict[str, Any]:
    with quiet_downloads():
        try:
            with local_artifact(run, path) as local:
                record = json.loads(local.read_text())
        except (MlflowException, OSError, ValueError) as exc:
            raise _missing(run, path, exc) from None
    if not isinstance(record, dict):
        raise ImblabError(f"{path} of run {run.info.run_id} is not a mapping")
    return record


def read_scores(run: Run) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(out-of-fold, test)`` score frames of a training run, downloaded in one call (and kept in
    the artifact cache when they come from a server: ``imblab.tracking.artifact_cache``)."""
    oof, test = _read_parquets(run, OOF_SCORES, TEST_SCORES)
    return oof, test


def read_rcv_folds(run: Run) -> pd.DataFrame:
    """A repeated-CV run's outer-fold table (``RCV_FOLDS_CSV``: step, sizes, threshold, every metric)."""
    with quiet_downloads():
        try:
            with local_artifact(run, RCV_FOLDS_CSV) as local:
                return pd.read_csv(local).sort_values("step", ignore_index=True)
        except (MlflowException, OSError, ValueError) as exc:
            raise _missing(run, RCV_FOLDS_CSV, exc) from None


def read_panel_predictions(run: Run) -> pd.DataFrame:
    """A panel run's test predictions (``PANEL_TEST_PREDICTIONS``: person, time, targets, predictions)."""
    (frame,) = _read_parquets(run, PANEL_TEST_PREDICTIONS)
    return frame


def _read_parquets(run: Run, *paths: str) -> list[pd.DataFrame]:
    """Parquet artifacts of one folder of ``run``, in one download (cached: ``local_artifact``)."""
    folder = Path(paths[0]).parent.as_posix()
    with quiet_downloads():
        try:
            with local_artifact(run, folder) as local:
                return [pd.read_parquet(local / Path(p).name) for p in paths]
        except (MlflowException, OSError, ValueError) as exc:
            raise _missing(run, " / ".join(paths), exc) from None


def read_panel_decision(run: Run) -> dict[str, Any]:
    """A panel run's ``decision.json``: the policy and its per-class offsets, in class order."""
    return _read_json(run, DECISION_JSON)
