"""``imblab promote``: register a run's model as challenger; gate the champion alias (binary or panel)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from imblab.registry.gate import ALREADY_CHAMPION, CHALLENGER, CHAMPION, DEFAULT_MODEL_NAME
from imblab.registry.promote import DEFAULT_PANEL_MODEL_NAME, promote


def main(argv: Sequence[str]) -> int:
    p = argparse.ArgumentParser(
        prog="imblab promote",
        description="Register the best run's (or --run's) frozen model as 'challenger' (ranked by a CV "
        "metric, the rule imblab compare uses); move 'champion' to it if it beats the current champion on "
        "the same test rows (panel: the same test persons; repeated-CV runs: paired over the same outer "
        "folds, with an interval above 0). Promotions of one model name run one at a time; a run is "
        "registered once.",
    )
    p.add_argument("--experiment", default="imblab", help="MLflow experiment to pick the best run from")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--run", dest="run_id", default=None, help="promote this run instead of the best one")
    which.add_argument("--sweep", default=None, help="only the runs of this sweep (its parent run id)")
    p.add_argument(
        "--metric",
        default=None,
        help="ranking metric; the gate compares test_<same metric> on shared test rows (repeated-CV runs: "
        "rcv_<m> paired over shared outer folds). Binary runs: cv_<m> or test_<m> (default cv_pr_auc), "
        "repeated-CV runs rcv_<m> (default rcv_pr_auc); expected_cost, brier, fp, fn: lower is better. "
        "Panel runs: val_<m> or test_<m> (default val_class_balanced_accuracy; wage_rmse, wage_mae, "
        "wage_rmse_level: lower is better). A test_<m> among more than two runs warns: the winner's test "
        "score is optimistic",
    )
    p.add_argument(
        "--name",
        "--model-name",
        dest="model_name",
        default=None,
        help=f"registered model name (default {DEFAULT_MODEL_NAME}; panel runs {DEFAULT_PANEL_MODEL_NAME})",
    )
    p.add_argument(
        "--min-improvement",
        type=float,
        default=0.0,
        help="required gain of the gate metric over the champion (in its better direction); default 0: "
        "strictly better (a tie never moves the champion); negative: allow a worse model",
    )
    p.add_argument("--dry-run", action="store_true", help="show the decision; register nothing")
    p.add_argument(
        "--force",
        action="store_true",
        help="compare even if the champion was trained on other data/split, or cannot be paired with a "
        "repeated-CV challenger (then their logged estimates are compared unpaired); recorded",
    )
    p.add_argument("--tracking-uri", default=None, help="default: $MLFLOW_TRACKING_URI or ./mlruns/mlflow.db")
    args = p.parse_args(list(argv))
    decision = promote(
        args.experiment,
        args.metric,
        args.model_name,
        run_id=args.run_id,
        sweep=args.sweep,
        min_improvement=args.min_improvement,
        dry_run=args.dry_run,
        force=args.force,
        tracking_uri=args.tracking_uri,
    )
    print(decision.summary())
    uri = f"models:/{decision.model_name}/{decision.version}"
    if decision.outcome == ALREADY_CHAMPION:
        print(f"  no-op: {uri} already is @{CHAMPION}; nothing registered, no alias moved")
    elif decision.dry_run:
        pass
    elif decision.promoted:
        print(f"  {uri} is now @{CHAMPION} (and @{CHALLENGER})")
    else:
        print(f"  {uri} is now @{CHALLENGER}; @{CHAMPION} stays at version {decision.champion_version}")
    return 0
