"""Logging a frozen model: one pyfunc per run, with imblab's code, signature and input example."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.models import ModelSignature

import imblab
from imblab.frozen import FrozenModel, model_signature, pip_requirements
from imblab.tracking.layout import MODEL_NAME


def log_pyfunc(
    python_model: mlflow.pyfunc.PythonModel,
    example: pd.DataFrame,
    signature: ModelSignature,
    metadata: dict[str, Any],
    requirements: list[str],
) -> Any:
    """Log ``python_model`` as the active run's ``model``, with imblab itself as ``code_paths`` (no package
    index needed to load it); returns MLflow's ModelInfo. Every frozen model of imblab is logged here."""
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
