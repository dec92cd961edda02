"""``imblab runs``: the experiment's runs side by side, read back from MLflow."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import pandas as pd

from imblab.errors import ImblabError
from imblab.tracking.layout import WORKLOAD_PANEL
from imblab.tracking.query import load_runs

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
# imblab panel runs: selected on validation, so the validation metric leads.
PANEL_COLUMNS = (
    "val_class_balanced_accuracy",
    "test_class_balanced_accuracy",
    "test_class_macro_f1",
    "test_class_accuracy",
    "test_wage_rmse",
    "test_wage_mae",
    "test_wage_r2",
    "test_wage_rmse_level",
    "epochs_run",
)
PANEL_KEYS = ["run_name", "model", "class_balance", "decision"]
BINARY_KEYS = ["run_name", "sampler", "model", "threshold_policy"]


def main(argv: Sequence[str]) -> int:
    p = argparse.ArgumentParser(prog="imblab runs", description=__doc__)
    p.add_argument("--experiment", default="imblab", help="MLflow experiment name (default: imblab)")
    p.add_argument("--tracking-uri", default=None, help="default: $MLFLOW_TRACKING_URI or ./mlruns/mlflow.db")
    p.add_argument("--sweep", default=None, help="only the runs of this sweep (its parent run id)")
    p.add_argument(
        "--sort",
        default=None,
        help="metric to sort by, best first (default: test_pr_auc; for panel runs "
        "val_class_balanced_accuracy)",
    )
    p.add_argument("--ascending", action="store_true", help="sort ascending (e.g. for expected cost)")
    p.add_argument("--columns", default=None, help="comma-separated metric columns (default: per workload)")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--format", choices=("table", "markdown", "csv"), default="table")
    p.add_argument("--all", action="store_true", help="include FAILED and RUNNING runs")
    args = p.parse_args(list(argv))
    df = load_runs(args.experiment, args.tracking_uri, args.sweep, include_failed=args.all)
    if df.empty:
        print(f"no runs in experiment {args.experiment!r}")
        return 0
    panel = "workload" in df.columns and bool((df["workload"] == WORKLOAD_PANEL).all())
    args.sort = args.sort or ("val_class_balanced_accuracy" if panel else "test_pr_auc")
    columns = args.columns or ",".join(PANEL_COLUMNS if panel else DEFAULT_COLUMNS)
    metrics = sorted(c for c in df.columns if c.startswith(("cv_", "val_", "test_")))
    if args.sort not in df.columns and metrics:
        raise ImblabError(f"--sort {args.sort!r} is not a logged metric; choose one of {metrics}")
    cols = [c for c in columns.split(",") if c in df.columns]
    keys = [k for k in (PANEL_KEYS if panel else BINARY_KEYS) if k in df.columns]
    keys += ["status"] if args.all else []
    # Runs that logged no metric at all (--all: killed or failed early) stay newest first.
    ordered = df.sort_values(args.sort, ascending=args.ascending) if args.sort in df.columns else df
    table = ordered.head(args.limit)[[*keys, *cols]]
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
