"""Logging a repeated-CV evaluation (``evaluation=repeated_cv``) on the active run.

Metrics: ``rcv_<m>`` (mean over the outer folds) with ``rcv_<m>_ci_low``/``_ci_high``, and every
fold's value as ``rcv_fold_<m>`` at ``step`` = the fold's ``step`` (repeat * folds + fold). Artifacts:
the per-fold table and the per-row outer-test scores (``imblab.tracking.layout``), which is what a
paired comparison of two runs on the same folds needs.
"""

from __future__ import annotations

import math

import mlflow
import pandas as pd

from imblab.tracking.artifacts import log_parquet
from imblab.tracking.layout import RCV_FOLDS_CSV, RCV_SCORES, TAG_DATA_FINGERPRINT

# What fixes a repeated-CV run's outer folds (with the data fingerprint): runs that agree share them.
FOLD_PARAMS = ("evaluation.kind", "evaluation.seed", "evaluation.repeats", "evaluation.folds")
FOLD_COLUMNS = ["step", "n_train", "n_test", "positives_test"]  # of the fold table, checked too


def fold_differences(
    a: tuple[dict[str, str], dict[str, str], pd.DataFrame],
    b: tuple[dict[str, str], dict[str, str], pd.DataFrame],
) -> list[str]:
    """How two repeated-CV runs' outer folds differ, given each run's (tags, params, fold table): the data
    fingerprint, the evaluation params, else the folds' sizes; empty when they share their folds."""
    keys = (TAG_DATA_FINGERPRINT, *FOLD_PARAMS)
    (tags_a, params_a, folds_a), (tags_b, params_b, folds_b) = a, b
    values_a = (tags_a.get(TAG_DATA_FINGERPRINT, "?"), *(params_a.get(p, "?") for p in FOLD_PARAMS))
    values_b = (tags_b.get(TAG_DATA_FINGERPRINT, "?"), *(params_b.get(p, "?") for p in FOLD_PARAMS))
    diffs = [f"{k}: {x} vs {y}" for k, x, y in zip(keys, values_a, values_b, strict=True) if x != y]
    if not diffs and not folds_a[FOLD_COLUMNS].reset_index(drop=True).equals(
        folds_b[FOLD_COLUMNS].reset_index(drop=True)
    ):
        diffs = [
            "the outer folds' sizes differ (scores/rcv_folds.csv: step, n_train, n_test, positives_test)"
        ]
    return diffs


def log_repeated_cv(
    table: pd.DataFrame,
    scores: pd.DataFrame,
    summary: dict[str, float],
    metric_names: list[str],
    prefix: str,
    model_id: str | None = None,
) -> None:
    """The summary metrics (linked to the frozen model), the per-fold metrics and the two artifacts.

    ``outer_fold_cache_hits`` counts the outer folds whose fit came from the cache (a policy sweep: all).
    """
    mlflow.log_metrics(summary, model_id=model_id)
    mlflow.log_metric("outer_fold_cache_hits", float(table["cache_hit"].sum()))
    for row in table.itertuples(index=False):
        values = {f"{prefix}_fold_{m}": float(getattr(row, m)) for m in metric_names}
        # MLflow stores NaN (an undefined metric in one fold) as NaN; keep them, the fold existed.
        mlflow.log_metrics({k: v for k, v in values.items() if not math.isinf(v)}, step=int(row.step))
    mlflow.log_text(table.to_csv(index=False), RCV_FOLDS_CSV)
    log_parquet(scores, RCV_SCORES)
