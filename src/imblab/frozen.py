"""The frozen model: preprocessing + fitted model + decision threshold, as one MLflow pyfunc.

It replaces the seed study's three loose files (model, scaler, threshold JSON). The sampler is
not part of it: resampling is a training-time device only. ``predict`` returns, for every row,
the decision and the probability; the threshold can be overridden per call through MLflow
inference ``params`` (``{"threshold": 0.3}``), e.g. in a REST request.
"""

from __future__ import annotations

from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.models import ModelSignature, infer_signature

from imblab.errors import ImblabError

DECISION = "decision"
PROBABILITY = "probability"


class FrozenModel(mlflow.pyfunc.PythonModel):
    """A fitted predict-time pipeline (no sampler) with its frozen threshold."""

    def __init__(self, pipeline: Any, threshold: float, feature_names: list[str], policy: str = "") -> None:
        self.pipeline = pipeline
        self.threshold = float(threshold)
        self.feature_names = list(feature_names)
        self.policy = policy

    def check_columns(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The input's feature columns in training order; a clear error for missing or extra ones."""
        if not isinstance(frame, pd.DataFrame):
            raise ImblabError("prediction input must be a table (pandas DataFrame) with named feature columns")
        expected = set(self.feature_names)
        missing = [c for c in self.feature_names if c not in frame.columns]
        extra = [c for c in frame.columns if c not in expected]
        if missing or extra:
            parts = []
            if missing:
                parts.append(f"{len(missing)} missing column(s) {missing[:10]}")
            if extra:
                parts.append(f"{len(extra)} unexpected column(s) {[str(c) for c in extra[:10]]}")
            raise ImblabError(
                "input does not match the model's schema: " + "; ".join(parts)
                + f". The model expects exactly these {len(self.feature_names)} feature columns "
                "(see the model signature); move id columns out of the feature table."
            )
        return frame[self.feature_names].astype(float)

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """P(positive) for every row."""
        X = self.check_columns(frame)
        if np.isinf(X.to_numpy()).any():
            raise ImblabError("prediction input holds infinite values; replace them with NaN (missing)")
        proba = self.pipeline.predict_proba(X)
        return np.asarray(proba[:, list(self.pipeline.classes_).index(1)], dtype=float)

    def decide(self, proba: np.ndarray, threshold: float | None = None) -> pd.DataFrame:
        t = self.threshold if threshold is None else float(threshold)
        if not 0.0 <= t <= 1.0:
            raise ImblabError(f"threshold must be in [0, 1], got {t}")
        return pd.DataFrame({DECISION: (proba >= t).astype("int64"), PROBABILITY: proba})

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        threshold = (params or {}).get("threshold")
        return self.decide(self.predict_proba(model_input), threshold)


def model_signature(frozen: FrozenModel, example: pd.DataFrame) -> ModelSignature:
    """Input columns, output (decision, probability) and the ``threshold`` inference param."""
    output = frozen.predict(None, example)
    return infer_signature(example, output, params={"threshold": frozen.threshold})


def pip_requirements() -> list[str]:
    """Pinned requirements of the frozen model, given explicitly (inference is slow and guesses)."""
    from importlib.metadata import version

    libs = ["mlflow", "scikit-learn", "imbalanced-learn", "lightgbm", "pandas", "numpy", "imblab"]
    return [f"{lib}=={version(lib)}" for lib in libs]
