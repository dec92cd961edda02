"""Logging a frozen model: one pyfunc per run, with imblab's code, signature and input example."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.models import ModelSignature

import imblab
from imblab.frozen import FrozenModel, model_signature, pip_requirements
from imblab.tracking.layout import MODEL_NAME

# What MLflow's pyfunc logger says on every log_model that is no news to an imblab user, on stderr:
# - a WARNING that a Python object passed as `python_model` is serialised with CloudPickle and suggesting
#   models-from-code. Models-from-code would not remove the pickle: the fitted scikit-learn/LightGBM
#   pipeline is a pickle either way (it would become an artifact the script unpickles), and the frozen
#   model would stop being the FrozenModel instance that the registry, set-threshold and serving unwrap.
#   The caution (load models only from stores you trust) belongs in the README once, not on every run.
# - an INFO line "Validating input example against model signature": the validation still runs, and a
#   mismatch still raises.
MLFLOW_NOISE = (
    "Passing a Python object as `python_model`",
    "Validating input example against model signature",
)


class _Drop(logging.Filter):
    def __init__(self, prefixes: tuple[str, ...]) -> None:
        super().__init__()
        self.prefixes = prefixes

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(self.prefixes)


@contextlib.contextmanager
def quiet_model_logging() -> Iterator[None]:
    """Drop :data:`MLFLOW_NOISE` from ``mlflow.pyfunc``'s own logger while the block runs; nothing else."""
    logger, noise = logging.getLogger("mlflow.pyfunc"), _Drop(MLFLOW_NOISE)
    logger.addFilter(noise)
    try:
        yield
    finally:
        logger.removeFilter(noise)


def log_pyfunc(
    python_model: mlflow.pyfunc.PythonModel,
    example: pd.DataFrame,
    signature: ModelSignature,
    metadata: dict[str, Any],
    requirements: list[str],
) -> Any:
    """Log ``python_model`` as the active run's ``model``, with imblab itself as ``code_paths`` (no package
    index needed to load it); returns MLflow's ModelInfo. Every frozen model of imblab is logged here."""
    with quiet_model_logging():
        return mlflow.pyfunc.log_model(
            name=MODEL_NAME,
            python_model=python_model,
            signature=signature,
            input_example=example,
            pip_requirements=requirements,
            metadata=metadata,
            code_paths=[str(Path(imblab.__file__).parent)],
        )


def log_frozen_model(frozen: FrozenModel, example: pd.DataFrame) -> Any:
    """Log the binary workload's ``frozen`` as the run's ``model``; returns MLflow's ModelInfo."""
    return log_pyfunc(
        frozen,
        example,
        model_signature(frozen, example),
        {
            "feature_names": frozen.feature_names,
            "threshold": frozen.threshold,
            "threshold_policy": frozen.policy,
        },
        pip_requirements(),
    )
