"""Logging the frozen model: one pyfunc per run, with imblab's code, signature and input example."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow
import pandas as pd

import imblab
from imblab.frozen import FrozenModel, model_signature, pip_requirements
from imblab.tracking.layout import MODEL_NAME


def log_frozen_model(frozen: FrozenModel, example: pd.DataFrame) -> Any:
    """Log ``frozen`` as the run's ``model``; returns MLflow's ModelInfo."""
    return mlflow.pyfunc.log_model(
        name=MODEL_NAME,
        python_model=frozen,
        signature=model_signature(frozen, example),
        input_example=example,
        pip_requirements=pip_requirements(),
        metadata={
            "feature_names": frozen.feature_names,
            "threshold": frozen.threshold,
            "threshold_policy": frozen.policy,
        },
        code_paths=[str(Path(imblab.__file__).parent)],
    )
