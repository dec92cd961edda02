"""The frozen model: preprocessing + fitted model + decision threshold, as one MLflow pyfunc.

It replaces the seed study's three loose files (model, scaler, threshold JSON). The sampler is
not part of it: resampling is a training-time device only. ``predict`` returns, for every row,
the decision and the probability; the threshold can be overridden per call through MLflow
inference ``params`` (``{"threshold": 0.3}``), e.g. in a REST request.
"""

from __future__ import annotations

import warnings
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature, infer_signature
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

from imblab.categorical import categorical_inputs
from imblab.errors import ImblabError
from imblab.pipeline import positive_proba

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
            raise ImblabError(
                "prediction input must be a table (pandas DataFrame) with named feature columns"
            )
        # One conversion of the labels: iterating a pyarrow-backed Index label by label is slow (pandas 3).
        columns = frame.columns.tolist()
        X = frame
        if columns != self.feature_names:  # the usual case, columns in training order, skips all this
            expected, present = set(self.feature_names), set(columns)
            missing = [c for c in self.feature_names if c not in present]
            extra = [c for c in columns if c not in expected]
            if missing or extra:
                parts = []
                if missing:
                    parts.append(f"{len(missing)} missing column(s) {missing[:10]}")
                if extra:
                    parts.append(f"{len(extra)} unexpected column(s) {[str(c) for c in extra[:10]]}")
                raise ImblabError(
                    "input does not match the model's schema: "
                    + "; ".join(parts)
                    + f". The model expects exactly these {len(self.feature_names)} feature columns "
                    "(listed in the model metadata `feature_names`); keep id columns out of the feature "
                    "table."
                )
            X = frame[self.feature_names]
        # Check each distinct dtype once and convert only the offending columns: one served SECOM row has
        # 590 columns (usually of one dtype), and per-column work cost milliseconds of serving latency.
        dtypes = X.dtypes
        odd = {d for d in set(dtypes) if not pd.api.types.is_numeric_dtype(d)}
        # Categorical columns stay as they come (text, numbers or categories): the pipeline encodes them.
        categorical = set(categorical_inputs(self.pipeline)) if odd else set()
        bad = [c for c, d in dtypes.items() if d in odd and c not in categorical] if odd else []
        if bad:
            X = X.copy()
            try:
                X[bad] = X[bad].apply(pd.to_numeric)  # JSON payloads may carry numbers as text or null
            except (ValueError, TypeError) as exc:
                names = [str(c) for c in bad[:10]]
                raise ImblabError(f"non-numeric values in feature column(s) {names}: {exc}") from None
        if categorical:
            return X.astype({c: float for c in X.columns if c not in categorical})
        return X.astype(float)

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """P(positive) for every row."""
        X = self.check_columns(frame)
        categorical = categorical_inputs(self.pipeline)
        numeric = X.drop(columns=categorical) if categorical else X
        if np.isinf(numeric.to_numpy()).any():
            raise ImblabError("prediction input holds infinite values; replace them with NaN (missing)")
        return positive_proba(self.pipeline, X)

    def decide(self, proba: np.ndarray, threshold: float | None = None) -> pd.DataFrame:
        t = self.threshold if threshold is None else float(threshold)
        if not 0.0 <= t <= 1.0:
            raise ImblabError(f"threshold must be in [0, 1], got {t}")
        return pd.DataFrame({DECISION: (proba >= t).astype("int64"), PROBABILITY: proba})

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        threshold = (params or {}).get("threshold")
        try:
            return self.decide(self.predict_proba(model_input), threshold)
        except ImblabError as exc:
            # An MlflowException with this code becomes an HTTP 400 in imblab serve (and MLflow's server).
            raise MlflowException(str(exc), error_code=INVALID_PARAMETER_VALUE) from exc


def model_signature(frozen: FrozenModel, example: pd.DataFrame) -> ModelSignature:
    """Output (decision, probability) and the ``threshold`` inference param; no input schema.

    The input columns are checked by ``FrozenModel.check_columns`` instead: MLflow's input-schema
    enforcement silently drops unexpected columns, and a frozen model should refuse them (an id
    column mixed into the features is a bug upstream). The expected columns are recorded in the
    model metadata and shown by the input example.
    """
    output = frozen.predict(None, example)
    with warnings.catch_warnings():  # MLflow hints about int columns and NaN; `decision` is never NaN
        warnings.simplefilter("ignore", UserWarning)
        full = infer_signature(example, output, params={"threshold": frozen.threshold})
    return ModelSignature(inputs=None, outputs=full.outputs, params=full.params)


def pip_requirements() -> list[str]:
    """Pinned requirements of the frozen model, given explicitly (inference is slow and guesses).

    imblab itself travels with the model as ``code_paths``, so it needs no package index.
    """
    from importlib.metadata import version

    libs = ["mlflow", "scikit-learn", "imbalanced-learn", "lightgbm", "pandas", "numpy", "pyarrow"]
    return [f"{lib}=={version(lib)}" for lib in libs]
