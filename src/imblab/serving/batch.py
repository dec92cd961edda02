"""Batch scoring: ``imblab predict`` scores a CSV or Parquet file in batches, with a binary or a panel model.

Binary model: the output holds, in input order, the id columns followed by ``decision`` and
``probability``. Id columns are the ones named with ``--id-columns``; without it, every input column that
is not one of the model's features (its ``feature_names`` metadata) is carried through as an id column.
A CSV's id columns are read as text, so ids such as ``007`` come out exactly as they went in.

Panel model (detected from the model itself): the input is history rows, each person's last row the wave
to predict with empty targets; the output has one row per person (id, time, wage, class, prob_<class>),
ordered by id. Batches hold whole persons. A CSV's id and class columns are read as text.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException

from imblab.errors import ImblabError
from imblab.frozen import DECISION, PROBABILITY
from imblab.panel.frozen import PanelFrozenModel
from imblab.registry.versions import load_model
from imblab.tracking.store import client_for

OUTPUT_COLUMNS = (DECISION, PROBABILITY)
PARQUET_SUFFIXES = (".parquet", ".pq")
CSV_SUFFIXES = (".csv", ".csv.gz")


def _kind(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(PARQUET_SUFFIXES):
        return "parquet"
    if name.endswith(CSV_SUFFIXES):
        return "csv"
    raise ImblabError(f"{path}: use a .csv, .csv.gz, .parquet or .pq file")


def read_table(
    path: str | Path, id_columns: Sequence[str] | None = None, features: Sequence[str] = ()
) -> pd.DataFrame:
    """A CSV or Parquet file. A CSV's id columns (given, or else all non-feature columns) are read as
    text, so ids such as ``007`` come out exactly as they went in."""
    path = Path(path)
    kind = _kind(path)
    if not path.is_file():
        raise ImblabError(f"input file {path} does not exist")
    if kind == "parquet":
        return pd.read_parquet(path)
    try:
        header = [str(c) for c in pd.read_csv(path, nrows=0).columns]
    except pd.errors.EmptyDataError:
        raise ImblabError(f"input file {path} is empty: it has no header and no rows") from None
    known = set(features)
    text = [c for c in header if c not in known] if id_columns is None else list(id_columns)
    return pd.read_csv(path, dtype={c: str for c in text if c in header})


def write_table(frame: pd.DataFrame, path: str | Path) -> None:
    path = Path(path)
    kind = _kind(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)


def model_features(pyfunc: Any) -> list[str]:
    """The model's feature columns, from its ``feature_names`` metadata (logged by imblab)."""
    names = (pyfunc.metadata.metadata or {}).get("feature_names")
    if names:
        return [str(c) for c in names]
    return list(pyfunc.unwrap_python_model().feature_names)


def split_ids(
    columns: Sequence[Any], features: Sequence[str], id_columns: Sequence[Any] | None
) -> tuple[list[Any], list[Any]]:
    """``(id columns, feature-side columns)`` of an input table; see the module docstring for the rule."""
    cols = list(columns)
    if id_columns is not None:
        missing = [c for c in id_columns if c not in cols]
        if missing:
            raise ImblabError(f"--id-columns {missing} are not in the input; its columns start {cols[:10]}")
        ids = list(id_columns)
    else:
        known = set(features)
        ids = [c for c in cols if str(c) not in known]
    clash = [c for c in ids if c in OUTPUT_COLUMNS]
    if clash:
        raise ImblabError(
            f"input column(s) {clash} would collide with the output columns {list(OUTPUT_COLUMNS)}"
        )
    return ids, [c for c in cols if c not in set(ids)]


def predict_frame(
    pyfunc: Any,
    frame: pd.DataFrame,
    id_columns: Sequence[str] | None = None,
    threshold: float | None = None,
    batch_size: int = 50_000,
) -> pd.DataFrame:
    """Score ``frame`` in batches: id columns + decision + probability, one row per input row, in order."""
    if batch_size < 1:
        raise ImblabError(f"--batch-size must be >= 1, got {batch_size}")
    if len(frame) == 0:
        raise ImblabError("the input has no rows to score")
    ids, feature_side = split_ids(list(frame.columns), model_features(pyfunc), id_columns)
    params = None if threshold is None else {"threshold": float(threshold)}
    parts = []
    for start in range(0, len(frame), batch_size):
        batch = frame.iloc[start : start + batch_size]
        try:
            parts.append(pyfunc.predict(batch[feature_side], params=params))
        except MlflowException as exc:
            raise ImblabError(f"rows {start}..{start + len(batch) - 1}: {exc.message}") from None
    scored = pd.concat(parts, ignore_index=True)
    out = frame[ids].reset_index(drop=True)
    out[DECISION] = scored[DECISION].to_numpy()
    out[PROBABILITY] = scored[PROBABILITY].to_numpy()
    return out


def predict_panel_frame(
    pyfunc: Any, model: PanelFrozenModel, frame: pd.DataFrame, decision: str | None, batch_size: int
) -> pd.DataFrame:
    """Predict each person's last wave: one row per person (id, time, wage, class, prob_*), by id.

    Batches of about ``batch_size`` rows hold whole persons (a person's history is never split).
    """
    if batch_size < 1:
        raise ImblabError(f"--batch-size must be >= 1, got {batch_size}")
    if len(frame) == 0:
        raise ImblabError(
            "the input has no rows to score: give each person's history rows and the wave to predict"
        )
    params = None if decision is None else {"decision": decision}
    pid = model.schema["id"]
    if pid in frame.columns and frame[pid].notna().all():
        codes = pd.factorize(frame[pid])[0]
        last_row_of_person = np.cumsum(np.bincount(codes)) - 1
        batch = (last_row_of_person // batch_size)[codes]
    else:  # the model itself names what is wrong with the ids
        batch = np.zeros(len(frame), dtype=np.int64)
    parts = []
    for b in np.unique(batch):
        try:
            parts.append(pyfunc.predict(frame[batch == b], params=params))
        except MlflowException as exc:
            raise ImblabError(exc.message) from None
    out = pd.concat(parts, ignore_index=True)
    return out if len(parts) == 1 else out.sort_values(pid, kind="stable", ignore_index=True)


def predict_file(
    model_uri: str,
    input_path: str | Path,
    output_path: str | Path,
    *,
    id_columns: Sequence[str] | None = None,
    threshold: float | None = None,
    decision: str | None = None,
    batch_size: int = 50_000,
    tracking_uri: str | None = None,
) -> pd.DataFrame:
    """``imblab predict`` as a function: score a file, write the output file, return the output."""
    _kind(Path(output_path))  # fail on a bad output name before the (slow) scoring
    client_for(tracking_uri)
    pyfunc, model = load_model(model_uri)
    if isinstance(model, PanelFrozenModel):
        if threshold is not None:
            raise ImblabError(
                f"{model_uri} is a panel model: it has a decision policy ({model.decision}), not a "
                "threshold; use --decision argmax to override it"
            )
        if id_columns is not None:
            raise ImblabError(
                f"--id-columns does not apply to a panel model: its output carries the id and time "
                f"columns ({model.schema['id']}, {model.schema['time']}), one row per person"
            )
        frame = read_table(input_path, [model.schema["id"], model.schema["class_target"]])
        out = predict_panel_frame(pyfunc, model, frame, decision, batch_size)
    else:
        if decision is not None:
            raise ImblabError(
                f"--decision applies to panel models; {model_uri} is a binary model with a threshold "
                "(override it with --threshold)"
            )
        frame = read_table(input_path, id_columns, model_features(pyfunc))
        out = predict_frame(pyfunc, frame, id_columns, threshold, batch_size)
    write_table(out, output_path)
    return out
