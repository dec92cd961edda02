"""One loaded pyfunc, scoring ``/invocations`` bodies: parse, check, ``predict``, encode.

Any imblab pyfunc is served: the binary frozen model (rows of features in; ``decision`` and
``probability`` per row out; ``params={"threshold": ...}``) and the panel model (history rows in; one
row per person out; ``params={"decision": "argmax"}``). Both check their own input and raise an
``MlflowException`` with a clear message, so the only checks here are the ones a model cannot make:
an empty table, and params that its signature does not declare (MLflow would only warn and drop
them, and a mistyped ``treshold`` would silently score at the frozen threshold).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import mlflow
import numpy as np
import orjson
import pandas as pd
from mlflow.exceptions import MlflowException

from imblab.errors import ImblabError
from imblab.frozen import FrozenModel
from imblab.serving.protocol import BAD_REQUEST, RequestError, invalid, parse, shorten

log = logging.getLogger("uvicorn.error")  # the server's own log: the traceback goes there, not to clients


@dataclass
class ServedModel:
    """A pyfunc and what scoring needs of it, read once at load time."""

    pyfunc: Any
    label: str
    params: tuple[str, ...]
    numeric: list[str] | None  # all-numeric feature columns: the fast path for JSON tables

    @classmethod
    def load(cls, path: str, label: str) -> ServedModel:
        """The pyfunc at a local ``path``; an ``ImblabError`` when it cannot be loaded."""
        try:
            pyfunc = mlflow.pyfunc.load_model(path)
        except Exception as exc:  # unpickling a model can fail in any way (a missing library, a version)
            raise ImblabError(f"cannot load model {label}: {type(exc).__name__}: {exc}") from None
        schema = pyfunc.metadata.get_params_schema()
        params = tuple(p.name for p in schema.params) if schema else ()
        try:
            python_model = pyfunc.unwrap_python_model()
        except MlflowException:
            python_model = None  # a pyfunc of another flavour: served through pandas' general path
        numeric = list(python_model.feature_names) if isinstance(python_model, FrozenModel) else None
        return cls(pyfunc, label, params, numeric)

    def score(self, body: bytes, content_type: str | None) -> bytes:
        """The JSON answer ``{"predictions": [...]}`` to one request, or a ``RequestError``."""
        frame, params = parse(body, content_type, self.numeric)
        if len(frame) == 0:
            raise invalid("the request has no rows to score; send at least one row")
        if params:
            unknown = [shorten(k, 40) for k in params if k not in self.params]
            if unknown:
                takes = f"the params {list(self.params)}" if self.params else "no params"
                raise invalid(f"unknown param(s) {unknown[:10]}: this model takes {takes}")
        try:
            predictions = self.pyfunc.predict(frame, params=params or None)
        except MlflowException as exc:  # the model's own checks, and MLflow's checks of params
            status = exc.get_http_status_code()
            if status >= 500:
                raise
            raise RequestError(status, exc.error_code, exc.message) from None
        except Exception as exc:
            # Unexpected in the model; as in MLflow's server, most likely an input it cannot take.
            log.exception("scoring failed")
            raise RequestError(
                400,
                BAD_REQUEST,
                f"the model could not score this input ({type(exc).__name__}: {shorten(exc, 200)}); "
                "compare it with the model's input example",
            ) from None
        return encode(predictions)


def jsonable(predictions: Any) -> Any:
    """Predictions as MLflow's server returns them: a table as a list of row objects."""
    if isinstance(predictions, pd.DataFrame):
        return predictions.to_dict(orient="records")
    if isinstance(predictions, pd.Series):
        return predictions.to_frame().to_dict(orient="records")
    if isinstance(predictions, np.ndarray):
        return predictions.tolist()
    return predictions


def _default(value: Any) -> Any:
    """What orjson does not write itself: numpy scalars, timestamps."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def encode(predictions: Any) -> bytes:
    """``{"predictions": ...}`` as JSON bytes (NaN as null; floats exactly, in their shortest form)."""
    return orjson.dumps(
        {"predictions": jsonable(predictions)}, default=_default, option=orjson.OPT_SERIALIZE_NUMPY
    )
