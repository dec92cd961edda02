"""``imblab promote``: register the best run's model as challenger; gate the champion alias."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from imblab.registry.gate import CHALLENGER, CHAMPION, DEFAULT_MODEL_NAME
from imblab.registry.promote import promote


def main(argv: Sequence[str]) -> int:
    p = argparse.ArgumentParser(
        prog="imblab promote",
        description="Register the best run's frozen model as 'challenger'; "
        "move 'champion' to it if it passes the gate.",
    )
    p.add_argument("--experiment", default="imblab", help="MLflow experiment to pick the best run from")
    p.add_argument(
        "--metric",
        default="test_pr_auc",
        help="ranking metric (test_* or cv_*); the gate compares test_<same metric> on shared test rows. "
        "expected_cost, brier, fp, fn: lower is better; others: higher",
    )
    p.add_argument("--model-name", default=DEFAULT_MODEL_NAME, help="registered model name")
    p.add_argument("--sweep", default=None, help="only the runs of this sweep (its parent run id)")
    p.add_argument(
        "--min-improvement",
        type=float,
        default=0.0,
        help="required gain of the gate metric over the champion (in its better direction); default 0",
    )
    p.add_argument("--dry-run", action="store_true", help="show the decision; register nothing")
    p.add_argument(
        "--force", action="store_true", help="compare even if the champion was trained on other data/split"
    )
    p.add_argument("--tracking-uri", default=None, help="default: $MLFLOW_TRACKING_URI or ./mlruns/mlflow.db")
    args = p.parse_args(list(argv))
    decision = promote(
        args.experiment,
        args.metric,
        args.model_name,
        sweep=args.sweep,
        min_improvement=args.min_improvement,
        dry_run=args.dry_run,
        force=args.force,
        tracking_uri=args.tracking_uri,
    )
    print(decision.summary())
    if decision.version and not decision.dry_run and decision.outcome != "already_champion":
        aliases = f"@{CHALLENGER}" + (f" and @{CHAMPION}" if decision.promoted else "")
        print(f"  models:/{decision.model_name}/{decision.version} is now {aliases}")
    return 0
