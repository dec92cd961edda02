"""Batch scoring: ``imblab predict`` scores a CSV or Parquet file in batches.

The output holds, in input order, the id columns followed by ``decision`` and ``probability``. Id
columns are the ones named with ``--id-columns``; without it, every input column that is not one of
the model's features (its ``feature_names`` metadata) is carried through as an id column. A CSV's id
columns are read as text, so ids such as ``007`` come out exactly as they went in.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from mlflow.exceptions import MlflowException

from imblab.errors import ImblabError
from imblab.frozen import DECISION, PROBABILITY
from imblab.registry.versions import load_frozen
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
    header = [str(c) for c in pd.read_csv(path, nrows=0).columns]
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


def predict_file(
    model_uri: str,
    input_path: str | Path,
    output_path: str | Path,
    *,
    id_columns: Sequence[str] | None = None,
    threshold: float | None = None,
    batch_size: int = 50_000,
    tracking_uri: str | None = None,
) -> pd.DataFrame:
    """``imblab predict`` as a function: score a file, write the output file, return the output."""
    _kind(Path(output_path))  # fail on a bad output name before the (slow) scoring
    client_for(tracking_uri)
    pyfunc, _ = load_frozen(model_uri)
    frame = read_table(input_path, id_columns, model_features(pyfunc))
    out = predict_frame(pyfunc, frame, id_columns, threshold, batch_size)
    write_table(out, output_path)
    return out
