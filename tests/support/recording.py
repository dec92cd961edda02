"""A sampler that records which rows it was fitted on, to prove resampling never sees held-out rows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator


class RecordingSampler(BaseEstimator):
    """Passes rows through unchanged and appends the ids of the rows it saw to ``log_path`` (JSON lines).

    The row id travels as feature column ``id_column`` (a plain number the preprocessing leaves intact
    with ``preprocess=none``), so the record survives the conversion to arrays inside the pipeline.
    """

    def __init__(self, log_path: str = "fits.jsonl", id_column: int = 0) -> None:
        self.log_path = log_path
        self.id_column = id_column

    def fit_resample(self, X: Any, y: Any) -> tuple[Any, Any]:
        ids = np.asarray(X)[:, self.id_column].astype(int).tolist()
        with Path(self.log_path).open("a") as fh:
            fh.write(json.dumps(ids) + "\n")
        return X, y


def recorded_fits(log_path: str | Path) -> list[set[int]]:
    return [set(json.loads(line)) for line in Path(log_path).read_text().splitlines()]


def recording_overrides(table: str | Path, log_path: str | Path) -> list[str]:
    """Overrides that train on ``table`` (a ``target`` column, the row id as feature 0) with a
    RecordingSampler in the sampler's place logging to ``log_path``; no fit cache, so every fit runs."""
    return [
        "data=table",
        f"data.path={table}",
        "data.target=target",
        "preprocess=none",  # keeps the row_id column intact as feature 0
        "sampler=smote",
        "sampler.estimator._target_=tests.support.recording.RecordingSampler",
        f"+sampler.estimator.log_path={log_path}",
        "+sampler.estimator.id_column=0",
        "~sampler.estimator.k_neighbors",
        "~sampler.estimator.random_state",
        "cache.enabled=false",
    ]
