"""``imblab compare``: a sweep's runs on the test set, with bootstrap CIs and a paired comparison."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

from imblab.metrics.names import bootstrap_metric
from imblab.report.comparison import bootstrap_table, check_n_boot, load_sweep

log = logging.getLogger(__name__)


def main(argv: Sequence[str]) -> int:
    """Print the comparison table and write the report in every format."""
    p = argparse.ArgumentParser(
        prog="imblab compare",
        description="Compare a sweep's runs on the test set: 95% bootstrap CIs and a paired comparison "
        "with the best run. All formats are written to --output; --format picks what is printed.",
    )
    p.add_argument("--experiment", default=None, help="MLflow experiment (default: imblab, or the sweep's)")
    p.add_argument(
        "--sweep",
        default=None,
        help="sweep parent run id, or 'all' for every finished run, the newest of each variant "
        "(default: latest sweep)",
    )
    p.add_argument(
        "--metric", default="test_pr_auc", help="test metric that ranks the runs (default: test_pr_auc)"
    )
    p.add_argument(
        "--format",
        choices=("table", "markdown", "csv", "html"),
        default="table",
        help="what to print (html prints the report's path)",
    )
    p.add_argument(
        "-o",
        "--output",
        type=Path,
        default=None,
        help="report directory (default: reports/<experiment>-<sweep>)",
    )
    p.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples (default: 1000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the resamples (default: 0)")
    p.add_argument("--tracking-uri", default=None, help="default: $MLFLOW_TRACKING_URI or ./mlruns/mlflow.db")
    p.add_argument("--no-log", action="store_true", help="do not log the report on the sweep's parent run")
    p.add_argument(
        "--partial", action="store_true", help="compare a sweep that is still running: its finished runs"
    )
    p.add_argument("--all-runs", action="store_true", help="keep older runs of a variant that was run again")
    args = p.parse_args(list(argv))
    bootstrap_metric(args.metric)  # fail before any download
    check_n_boot(args.n_boot)

    sweep = load_sweep(args.experiment, args.sweep, args.tracking_uri, args.partial, args.all_runs)
    comparison = bootstrap_table(sweep, args.metric, n_boot=args.n_boot, seed=args.seed)
    from imblab.report.files import default_output, log_report, write_report  # matplotlib: only now

    out = args.output or default_output(sweep)
    files = write_report(comparison, out)
    logged = None if args.no_log else log_report(comparison, out)
    if args.format == "html":
        print(files["html"])
    else:
        print(files[args.format].read_text(), end="")
    where = f"; logged on sweep run {logged} under report/" if logged else ""
    log.info("report written to %s%s", out, where)
    return 0
