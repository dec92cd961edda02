"""``imblab compare``: a sweep's runs ranked by the shared rule (a CV metric by default), each paired
with the best.

Binary (``imblab train``) runs get the binary report (``imblab.report.comparison``): bootstrap CIs over
the test rows for holdout runs, corrected paired t over the shared outer folds for repeated-CV runs;
panel runs (tag ``imblab.workload=panel``) the panel report (``imblab.report.panel_comparison``): CIs
over test persons.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from imblab.metrics.ranking import HOLDOUT, REPEATED_CV, default_metric
from imblab.report.comparison import check_n_boot, compare, comparison_rule, load_sweep
from imblab.report.panel_comparison import DEFAULT_METRIC as PANEL_DEFAULT_METRIC
from imblab.report.panel_runs import is_panel_selection

log = logging.getLogger(__name__)


def main(argv: Sequence[str]) -> int:
    """Print the comparison table and write the report in every format."""
    p = argparse.ArgumentParser(
        prog="imblab compare",
        description="Compare a sweep's runs: ranked by a CV metric (select on CV), each paired with the best "
        "(holdout runs: 95% bootstrap CIs on the test rows, which confirm the choice; repeated-CV runs: the "
        "corrected paired t over the shared outer folds). All formats are written to --output; --format "
        "picks what is printed.",
    )
    p.add_argument(
        "--experiment",
        default=None,
        help="MLflow experiment (default: imblab, or the sweep's); panel runs: panel",
    )
    p.add_argument(
        "--sweep",
        default=None,
        help="sweep parent run id, 'all' for every finished run (the newest of each variant), or the id of "
        "one panel run, e.g. a tuned one (default: latest sweep)",
    )
    p.add_argument(
        "--metric",
        default=None,
        help=f"metric that ranks the runs (default: {default_metric(HOLDOUT)} for holdout runs, "
        f"{default_metric(REPEATED_CV)} for repeated-CV runs, {PANEL_DEFAULT_METRIC} for panel runs; also "
        "test_<m> (a warning: the winner's test score is optimistic), or any val_<m>/test_<m> panel metric)",
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
    check_n_boot(args.n_boot)
    if is_panel_selection(args.experiment, args.sweep, args.tracking_uri):
        return _panel(args)
    sweep = load_sweep(
        args.experiment,
        args.sweep,
        args.tracking_uri,
        args.partial,
        args.all_runs,
        check_metric=lambda protocol: comparison_rule(args.metric, protocol),  # before any download
    )
    comparison = compare(sweep, args.metric, n_boot=args.n_boot, seed=args.seed)
    from imblab.report.files import default_output, write_report  # matplotlib: only now

    out = args.output or default_output(sweep)
    return _emit(args, comparison, out, write_report(comparison, out))


def _panel(args: argparse.Namespace) -> int:
    from imblab.panel.metrics import ranking_metric
    from imblab.report.panel_comparison import panel_comparison
    from imblab.report.panel_runs import load_panel_runs

    metric = args.metric or PANEL_DEFAULT_METRIC
    ranking_metric(metric)  # fail before any download
    selection = load_panel_runs(args.experiment, args.sweep, args.tracking_uri, args.partial, args.all_runs)
    comparison = panel_comparison(selection, metric, n_boot=args.n_boot, seed=args.seed)
    from imblab.report.files import default_output
    from imblab.report.panel_files import write_panel_report  # matplotlib: only now

    out = args.output or default_output(selection)  # any object with a .name, as a Sweep has
    return _emit(args, comparison, out, write_panel_report(comparison, out))


def _emit(args: argparse.Namespace, comparison: Any, out: Path, files: dict[str, Path]) -> int:
    """Log the report on the sweep's parent (or the one run compared), print the chosen format."""
    from imblab.report.files import log_report

    logged = None if args.no_log else log_report(comparison, out)
    if args.format == "html":
        print(files["html"])
    else:
        print(files[args.format].read_text(), end="")
    where = f"; logged on run {logged} under report/" if logged else ""
    log.info("report written to %s%s", out, where)
    return 0
