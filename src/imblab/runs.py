"""``imblab runs``: the experiment's runs side by side, read back from MLflow."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import pandas as pd
from mlflow.tracking import MlflowClient

from imblab.errors import ImblabError
from imblab.tracking import TAG_ROLE, TAG_SWEEP, resolve_tracking_uri

DEFAULT_COLUMNS = (
    "cv_pr_auc",
    "test_pr_auc",
    "test_roc_auc",
    "test_recall",
    "test_precision",
    "test_f1",
    "test_specificity",
    "test_expected_cost",
    "test_net_saving",
    "test_threshold",
    "test_tp",
    "test_fp",
    "test_fn",
)


def load_runs(
    experiment: str, tracking_uri: str | None = None, sweep: str | None = None, include_failed: bool = False
) -> pd.DataFrame:
    """One row per training run (sweep parents excluded) with tags and all metrics as columns."""
    uri = resolve_tracking_uri(tracking_uri)
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        names = [e.name for e in client.search_experiments()]
        raise ImblabError(f"no MLflow experiment {experiment!r} in {uri}; experiments there: {names}")
    filters = [f"tags.`{TAG_ROLE}` = 'run'"]
    if sweep:
        filters.append(f"tags.`{TAG_SWEEP}` = '{sweep}'")
    if not include_failed:
        filters.append("attributes.status = 'FINISHED'")
    runs = client.search_runs(
        [exp.experiment_id], " and ".join(filters), max_results=10000, order_by=["attributes.start_time DESC"]
    )
    rows = []
    for r in runs:
        row: dict[str, object] = {
            "run_id": r.info.run_id,
            "run_name": r.info.run_name,
            "status": r.info.status,
            "start_time": pd.Timestamp(r.info.start_time, unit="ms"),
            "sampler": r.data.tags.get("sampler"),
            "model": r.data.tags.get("model"),
            "threshold_policy": r.data.tags.get("threshold_policy"),
            "tuning": r.data.tags.get("tuning"),
            "sweep_id": r.data.tags.get(TAG_SWEEP),
        }
        row.update(r.data.metrics)
        rows.append(row)
    return pd.DataFrame(rows)


def main(argv: Sequence[str]) -> int:
    p = argparse.ArgumentParser(prog="imblab runs", description=__doc__)
    p.add_argument("--experiment", default="imblab", help="MLflow experiment name (default: imblab)")
    p.add_argument("--tracking-uri", default=None, help="default: $MLFLOW_TRACKING_URI or ./mlruns/mlflow.db")
    p.add_argument("--sweep", default=None, help="only the runs of this sweep (its parent run id)")
    p.add_argument("--sort", default="test_pr_auc", help="metric to sort by, best first")
    p.add_argument("--ascending", action="store_true", help="sort ascending (e.g. for expected cost)")
    p.add_argument("--columns", default=",".join(DEFAULT_COLUMNS), help="comma-separated metric columns")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--format", choices=("table", "markdown", "csv"), default="table")
    p.add_argument("--all", action="store_true", help="include FAILED and RUNNING runs")
    args = p.parse_args(list(argv))
    df = load_runs(args.experiment, args.tracking_uri, args.sweep, include_failed=args.all)
    if df.empty:
        print(f"no runs in experiment {args.experiment!r}")
        return 0
    if args.sort not in df.columns:
        metrics = sorted(c for c in df.columns if c.startswith(("cv_", "test_")))
        raise ImblabError(f"--sort {args.sort!r} is not a logged metric; choose one of {metrics}")
    cols = [c for c in args.columns.split(",") if c in df.columns]
    keys = ["run_name", "sampler", "model", "threshold_policy"] + (["status"] if args.all else [])
    table = df.sort_values(args.sort, ascending=args.ascending).head(args.limit)[[*keys, *cols]]
    if args.format == "csv":
        print(table.to_csv(index=False), end="")
    elif args.format == "markdown":
        print(table.to_markdown(index=False, floatfmt=".4f"))
    else:
        with pd.option_context(
            "display.max_columns", None, "display.width", 250, "display.float_format", "{:.4f}".format
        ):
            print(table.to_string(index=False))
    return 0
