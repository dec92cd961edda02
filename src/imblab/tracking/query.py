"""Reading runs back as a table (``imblab runs``), through MLflow's own pandas search."""

from __future__ import annotations

import mlflow
import pandas as pd

from imblab.tracking.layout import ROLE_RUN, TAG_ROLE, TAG_SWEEP, TAG_WORKLOAD
from imblab.tracking.store import client_for, find_experiment

TAG_COLUMNS = {
    "sampler": "sampler",
    "model": "model",
    "threshold_policy": "threshold_policy",
    "tuning": "tuning",
    "class_balance": "class_balance",  # panel runs
    "decision": "decision",
    "workload": TAG_WORKLOAD,
}


def load_runs(
    experiment: str, tracking_uri: str | None = None, sweep: str | None = None, include_failed: bool = False
) -> pd.DataFrame:
    """One row per training run (sweep parents and trials excluded): ids, tags and every metric."""
    client = client_for(tracking_uri)
    exp = find_experiment(client, experiment)
    filters = [f"tags.`{TAG_ROLE}` = '{ROLE_RUN}'"]
    if sweep:
        filters.append(f"tags.`{TAG_SWEEP}` = '{sweep}'")
    if not include_failed:
        filters.append("attributes.status = 'FINISHED'")
    frame = mlflow.search_runs(
        [exp.experiment_id],
        " and ".join(filters),
        max_results=10000,
        order_by=["attributes.start_time DESC"],
        output_format="pandas",
    )
    if frame.empty:
        return pd.DataFrame()
    out = pd.DataFrame(
        {
            "run_id": frame["run_id"],
            "run_name": frame.get("tags.mlflow.runName"),
            "status": frame["status"],
            "start_time": frame["start_time"],
            **{col: frame.get(f"tags.{tag}") for col, tag in TAG_COLUMNS.items()},
            "sweep_id": frame.get(f"tags.{TAG_SWEEP}"),
        }
    )
    metrics = frame[[c for c in frame.columns if c.startswith("metrics.")]]
    return pd.concat([out, metrics.rename(columns=lambda c: c.removeprefix("metrics."))], axis=1)
