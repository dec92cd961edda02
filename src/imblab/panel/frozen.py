"""The frozen panel model: fitted model + training standardiser + decision offsets, as one MLflow pyfunc.

Input: a panel frame of history rows, one row per (person, wave), with exactly the training panel's
columns: id, time, features, known-in-advance columns, regression target and class target (class NAMES,
e.g. ``"35-40"``). **Each person's last row (by time) is the wave to predict**: its time and known-in-advance
values (e.g. age) are filled in, its features may be empty, and both targets MUST be empty (NaN / null).
Earlier rows are the person's history; a history row with a missing target is dropped, as in training.

Output: one row per person: id, time (of the predicted wave), ``wage`` (the regression target, in its
units), ``class`` (name) and ``prob_<class>`` per class (softmax of the logits). The decision is the frozen
one (offsets chosen on the validation persons); ``params={"decision": "argmax"}`` overrides it per call.
"""

from __future__ import annotations

import warnings
from dataclasses import replace
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature, infer_signature
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

from imblab.errors import ImblabError
from imblab.panel.dataset import Panel
from imblab.panel.decision import decide
from imblab.panel.examples import MISSING, Examples, Standardizer, build_examples
from imblab.panel.metrics import slug
from imblab.panel.table import class_codes

WAGE, CLASS, PROB = "wage", "class", "prob_"
ARGMAX = "argmax"


class PanelFrozenModel(mlflow.pyfunc.PythonModel):
    """A fitted panel model with its training schema, standardiser and frozen decision offsets."""

    def __init__(
        self,
        model: Any,
        standardizer: Standardizer,
        panel: Panel,
        max_len: int,
        offsets: np.ndarray,
        decision: str,
    ) -> None:
        self.model = model
        self.standardizer = standardizer
        self.schema = {
            "id": panel.id,
            "time": panel.time,
            "features": list(panel.features),
            "known": list(panel.known),
            "regression_target": panel.regression_target,
            "class_target": panel.class_target,
        }
        self.class_names = list(panel.class_names)
        self.max_len = int(max_len)
        self.offsets = np.asarray(offsets, dtype=np.float64)
        self.decision = decision

    @property
    def columns(self) -> list[str]:
        s = self.schema
        cols = [s["id"], s["time"], *s["features"], *s["known"], s["regression_target"], s["class_target"]]
        return list(dict.fromkeys(cols))

    def check_columns(self, frame: Any) -> pd.DataFrame:
        """The input in the training column order; a clear error for missing or extra columns."""
        if not isinstance(frame, pd.DataFrame):
            raise ImblabError("panel model input must be a table (pandas DataFrame) of history rows")
        missing = [c for c in self.columns if c not in frame.columns]
        extra = [str(c) for c in frame.columns if c not in set(self.columns)]
        if missing or extra:
            raise ImblabError(
                f"input does not match the panel model's schema: missing columns {missing}, unexpected "
                f"columns {extra[:10]}. The model expects exactly {self.columns} (metadata `columns`); each "
                "person's last row is the wave to predict, with both targets empty."
            )
        return frame[self.columns]

    def examples(self, frame: pd.DataFrame) -> Examples:
        """One example per person: the wave in its last row, from the history rows before it."""
        s, name = self.schema, "prediction input"
        f = self.check_columns(frame).copy()
        reg, cls, pid, t = s["regression_target"], s["class_target"], s["id"], s["time"]
        numeric = [t, *s["features"], *s["known"], reg]
        try:
            f[numeric] = f[numeric].apply(pd.to_numeric)  # JSON payloads may carry numbers as text or null
        except (ValueError, TypeError) as exc:
            raise ImblabError(f"non-numeric values in the numeric columns {numeric}: {exc}") from None
        if f[[pid, t]].isna().any().any():
            raise ImblabError(f"every input row needs its person ('{pid}') and time ('{t}')")
        if np.isinf(f[numeric].to_numpy(dtype=np.float64)).any():
            raise ImblabError("the input holds infinite values; replace them with NaN (missing)")
        dupes = f.duplicated([pid, t])
        if dupes.any():
            raise ImblabError(f"{int(dupes.sum())} duplicate ({pid}, {t}) rows: one row per person and wave")
        f[cls] = class_codes(f[cls], self.class_names, name)
        f = f.sort_values([pid, t], kind="stable").reset_index(drop=True)
        last = ~f[pid].duplicated(keep="last").to_numpy()
        filled = f.loc[last, [reg, cls]].notna().any(axis=1)
        if filled.any():
            who = f.loc[last, pid][filled].head(5).tolist()
            raise ImblabError(
                f"each person's last row is the wave to predict and must leave '{reg}' and '{cls}' empty; "
                f"persons {who} have a target there (append the wave to predict, with empty targets)"
            )
        history_gap = ~last & f[[reg, cls]].isna().any(axis=1).to_numpy()
        f = f[~history_gap].reset_index(drop=True)
        alone = ~f[pid].duplicated(keep=False)
        if alone.any():
            raise ImblabError(
                f"persons {f.loc[alone, pid].head(5).tolist()} have no history row with both targets "
                "observed before the wave to predict; a prediction needs at least one earlier wave"
            )
        f[[reg, cls]] = f[[reg, cls]].fillna(0.0)  # placeholders: a wave's own targets never reach its inputs
        panel = Panel(name, f, pid, t, s["features"], s["known"], reg, cls, self.class_names)
        panel.frame = f.astype({c: np.float64 for c in numeric} | {cls: np.int64})
        ex = build_examples(panel, self.max_len)
        last_example = np.append(ex.person[1:] != ex.person[:-1], True)
        return self._aligned(ex.subset(last_example))

    def _aligned(self, ex: Examples) -> Examples:
        """``ex`` with the training channels: ``missing:`` indicators the input lacks are added as zeros."""
        seq_names, known_names = self.standardizer.names_
        seq = _align(ex.seq, ex.seq_names, seq_names)
        known = _align(ex.known, ex.known_names, known_names)
        return replace(ex, seq=seq, known=known, seq_names=list(seq_names), known_names=list(known_names))

    def predict_frame(self, frame: pd.DataFrame, decision: str | None = None) -> pd.DataFrame:
        decision = decision or self.decision
        if decision not in (ARGMAX, self.decision):
            raise ImblabError(
                f"decision must be {ARGMAX!r} or the frozen {self.decision!r}, got {decision!r}"
            )
        ex = self.examples(frame)
        pred = self.model.predict(self.standardizer.transform(ex))
        codes = decide(pred.logits, None if decision == ARGMAX else self.offsets)
        out = pd.DataFrame({self.schema["id"]: ex.person, self.schema["time"]: ex.time, WAGE: pred.wage})
        out[CLASS] = np.asarray(self.class_names, dtype=object)[codes]
        for c, p in zip(self.class_names, pred.probabilities().T, strict=True):
            out[PROB + slug(c)] = p
        return out

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> Any:
        try:
            return self.predict_frame(model_input, (params or {}).get("decision"))
        except ImblabError as exc:  # an HTTP 400 in MLflow's scoring server
            raise MlflowException(str(exc), error_code=INVALID_PARAMETER_VALUE) from exc


def _align(x: np.ndarray, names: list[str], wanted: list[str]) -> np.ndarray:
    where = {n: j for j, n in enumerate(names)}
    unknown = [n for n in names if n not in set(wanted)]
    if unknown:
        cols = [n[len(MISSING) :] if n.startswith(MISSING) else n for n in unknown]
        raise ImblabError(
            f"input columns {cols} hold missing values, but were never missing in training; fill them in"
        )
    out = np.zeros((*x.shape[:-1], len(wanted)), dtype=x.dtype)
    for j, n in enumerate(wanted):
        if n in where:
            out[..., j] = x[..., where[n]]
    return out


def panel_input_example(panel: Panel, persons: np.ndarray) -> pd.DataFrame:
    """The history rows of ``persons`` in the model's input format (class names; last row's targets empty)."""
    f = panel.frame[panel.frame[panel.id].isin(persons)].copy()
    names = np.asarray(panel.class_names, dtype=object)
    f[panel.class_target] = names[f[panel.class_target].to_numpy()]
    last = ~f[panel.id].duplicated(keep="last")
    f[panel.regression_target] = f[panel.regression_target].where(~last)
    f[panel.class_target] = f[panel.class_target].where(~last)
    return f.reset_index(drop=True)


def panel_signature(frozen: PanelFrozenModel, example: pd.DataFrame) -> ModelSignature:
    """Outputs and the ``decision`` param; no input schema (``check_columns`` refuses extra columns)."""
    output = frozen.predict(None, example)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        full = infer_signature(example, output, params={"decision": frozen.decision})
    return ModelSignature(inputs=None, outputs=full.outputs, params=full.params)


def example_histories(panel: Panel, ex: Examples) -> pd.DataFrame:
    """Every example of ``ex`` as its own pseudo-person, in the model's input format.

    A frozen model predicts each person's LAST wave only. Example ``i`` (person p, wave t) becomes id ``i``
    holding p's rows up to t, wave t's targets empty, so one call scores every example (every wave with a
    history) and row ``i`` of the output is example ``i``. The history is not cut to any ``max_len``: each
    model cuts it to its own.
    """
    f, pid, t = panel.frame, panel.id, panel.time
    keys = pd.DataFrame({"_example": np.arange(len(ex)), "_person": ex.person, "_t": ex.time})
    rows = keys.merge(f, left_on="_person", right_on=pid, how="inner", sort=False)
    rows = rows[rows[t] <= rows["_t"]].sort_values(["_example", t], kind="stable")
    predicted = (rows[t] == rows["_t"]).to_numpy()
    out = rows[list(f.columns)].reset_index(drop=True)
    out[pid] = rows["_example"].to_numpy()
    names = np.asarray(panel.class_names, dtype=object)
    out[panel.class_target] = names[out[panel.class_target].to_numpy()]
    out.loc[predicted, panel.regression_target] = np.nan
    out.loc[predicted, panel.class_target] = None
    return out
