"""What a sweep shows in the MLflow UI: its parent run reads as a summary, its jobs as short, described rows.

When a sweep ends (not when it is killed) its parent gets, beside its status: the comparison report that
``imblab compare`` writes (the same files, under ``report/``), a Markdown description
(``mlflow.note.content``: what was swept, how the jobs ended, the best job and the commands to go on), the
best job's key metrics as its own metrics (so the parent's row in the run table reads like its best
child), and the params every job shares. Each job gets a one-paragraph description when it ends (a job
that failed: when its sweep ends). The names themselves are given when the runs open
(``imblab.tracking.sweeps.sweep_run_name`` / ``job_run_name``).

The report at a sweep's end bootstraps :data:`SWEEP_N_BOOT` resamples, not ``imblab compare``'s 1,000:
it must not hold the command for minutes; its CIs are therefore coarser, and the description says so.
The best job is chosen by the selection metric (``cv_pr_auc``; panel: ``val_class_balanced_accuracy``)
from the logged metrics, as the console's sweep summary does, never by a test metric.
"""

from __future__ import annotations

import json
import logging
import math
import shlex
import tempfile
from collections.abc import Sequence

from mlflow.entities import Metric, Param, Run
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_RUN_NOTE

from imblab.console.summary import BINARY, PANEL, best_job, next_commands, rank_metric, variant, workload_of
from imblab.secrets import mask
from imblab.tracking.layout import TAG_BEST_RUN, TAG_ERROR, TAG_SWEEP, TAG_SWEPT_KEYS
from imblab.tracking.runs import PARAM_LIMIT, TAG_LIMIT
from imblab.tracking.store import default_tracking_uri
from imblab.tracking.sweeps import SweepProgress, sweep_progress

log = logging.getLogger(__name__)
SWEEP_N_BOOT = 200  # resamples of the report made at a sweep's end (imblab compare: 1000)
PARTS = ("cv", "val", "rcv", "test")  # metric prefixes, in the order a reader weighs them


def _number(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "-"
    return f"{value:.4f}" if abs(value) < 1000 else f"{value:.1f}"


def key_metrics(run: Run) -> dict[str, float]:
    """The run's key metrics (its workload's, on every part it logged): ``cv_pr_auc``, ``test_recall``..."""
    work, logged = workload_of(run), run.data.metrics
    keys = [f"{part}_{m}" for part in PARTS for m in work.metrics]
    return {k: logged[k] for k in keys if k in logged}


def metrics_text(run: Run) -> str:
    """``cv_pr_auc 0.2100 · test_pr_auc 0.1900 · ...``: the ranking metric first."""
    metrics = key_metrics(run)
    rank = rank_metric(run)
    ordered = sorted(metrics, key=lambda k: k != rank)
    return " · ".join(f"{k} {_number(metrics[k])}" for k in ordered)


def swept(parent: Run) -> list[str]:
    """The keys sweep ``parent`` varied, in sweep order."""
    return list(json.loads(parent.data.tags.get(TAG_SWEPT_KEYS) or "[]"))


def job_note(job: Run, parent: Run) -> str:
    """One paragraph on a job of sweep ``parent``: what sets it apart, what it is, how it ended."""
    tags = job.data.tags
    keys = " × ".join(swept(parent)) or "nothing"
    head = (
        f"**{variant(job)}**: a job of sweep *{parent.info.run_name}* (run `{parent.info.run_id}`), "
        f"which varies {keys}; this job: `{job.info.run_name}`."
    )
    if job.info.status != "FINISHED":
        error = tags.get(TAG_ERROR, "").strip().splitlines()
        reason = f": {error[0][:300]}" if error else ""
        return f"{head} It ended {job.info.status}{reason}."
    if workload_of(job) is PANEL:
        what = (
            f"Model {tags.get('model', '?')}, class balance {tags.get('class_balance', '?')}, decision "
            f"{tags.get('decision', '?')} (chosen on the validation persons), on {tags.get('data', '?')}."
        )
    else:
        rows = tags.get("data_rows")
        rate = tags.get("data_positive_rate")
        size = f" ({rows} rows, {float(rate):.1%} positive)" if rows and rate else ""
        data = f"{tags.get('data', '?')}{size}"
        what = (
            f"Sampler {tags.get('sampler', '?')}, model {tags.get('model', '?')}, threshold "
            f"{tags.get('threshold', '?')} (policy {tags.get('threshold_policy', '?')}, chosen on "
            f"out-of-fold training scores), on {data}."
        )
    return f"{head} {what} {metrics_text(job)}."


def note_job(uri: str, run_id: str) -> None:
    """Describe a finished job of a sweep (``mlflow.note.content``), unless it already has a description."""
    client = MlflowClient(uri)
    job = client.get_run(run_id)
    parent_id = job.data.tags.get(TAG_SWEEP)
    if parent_id and MLFLOW_RUN_NOTE not in job.data.tags:
        client.set_tag(run_id, MLFLOW_RUN_NOTE, mask(job_note(job, client.get_run(parent_id)))[:TAG_LIMIT])


def shared_params(jobs: Sequence[Run]) -> dict[str, str]:
    """The params every job logged with the same value (those that differ are what the sweep varied)."""
    logged = [j.data.params for j in jobs if j.data.params]
    if not logged:
        return {}
    first = logged[0]
    return {k: v for k, v in first.items() if all(p.get(k) == v for p in logged[1:])}


def promote_command(uri: str, experiment: str, sweep_id: str, metric: str) -> str:
    """``imblab promote`` of the sweep's best job by ``metric`` (a dry run: it shows the gate's decision)."""
    where = [] if uri == default_tracking_uri() else ["--tracking-uri", uri]
    command = ["imblab", "promote", "--experiment", experiment, "--sweep", sweep_id, "--metric", metric]
    return shlex.join([*command, *where, "--dry-run"])


def sweep_note(
    parent: Run, progress: SweepProgress, best: Run | None, uri: str, experiment: str, report: str
) -> str:
    """The parent's description (Markdown): what was swept, how its jobs ended, the best, what to run."""
    lines = [f"**{parent.info.run_name}**: {progress.describe()}.", ""]
    work = workload_of(best) if best is not None else BINARY
    if best is not None:
        lines += [
            f"**Best by {rank_metric(best)}**: `{best.info.run_name}` ({variant(best)}, run "
            f"`{best.info.run_id}`), whose key metrics are this run's metrics: {metrics_text(best)}.",
            "",
        ]
    for job in progress.unfinished:
        error = (job.data.tags.get(TAG_ERROR, "").strip().splitlines() or [""])[0][:200]
        lines.append(f"- {job.info.status}: `{job.info.run_name}` (run `{job.info.run_id}`) {error}".rstrip())
    if progress.unfinished:
        lines.append("")
    compare, ui = next_commands(uri, experiment, progress.sweep_id)
    metric = rank_metric(best) if best is not None else work.rank_metric
    promote = promote_command(uri, experiment, progress.sweep_id, metric)
    lines += [report, "", "Compare (1,000 resamples) and promote the best:", ""]
    lines += [f"    {c}" for c in (compare, promote)]
    lines += ["", f"Every run of this store in the UI: `{ui}`"]
    return "\n".join(lines)


def comparison_report(uri: str, sweep_id: str, panel: bool, out_dir: str) -> str:
    """Write and log ``imblab compare``'s report on the (closed) sweep; a sentence saying what it holds."""
    from imblab.report.files import log_report

    if panel:
        from imblab.report.panel_comparison import panel_comparison
        from imblab.report.panel_files import write_panel_report
        from imblab.report.panel_runs import load_panel_runs

        comparison = panel_comparison(load_panel_runs(None, sweep_id, uri), n_boot=SWEEP_N_BOOT)
        write_panel_report(comparison, out_dir)
        what = "test persons"
    else:
        from imblab.report.comparison import compare, load_sweep
        from imblab.report.files import write_report

        comparison = compare(load_sweep(None, sweep_id, uri), n_boot=SWEEP_N_BOOT)
        write_report(comparison, out_dir)
        what = "test rows" if comparison.score_prefix == "test" else "outer folds"
    log_report(comparison, out_dir)
    ranked = comparison.metric if panel else comparison.rule.metric  # a panel comparison's is as logged
    intervals = (
        f"its 95% intervals come from the corrected paired t over the shared {what}"
        if what == "outer folds"
        else f"its 95% CIs come from {SWEEP_N_BOOT} bootstrap resamples of the {what}"
    )
    return (
        f"Report: artifacts `report/report.html` (and `comparison.md`, `comparison.csv`, `plots/`), as "
        f"`imblab compare` writes it, ranked by {ranked}; {intervals}."
    )


def annotate_sweep(uri: str, sweep_id: str) -> None:
    """Give the ended sweep ``sweep_id`` its report, description, best metrics and shared params, and its
    jobs without a description theirs. The report is a convenience: if it cannot be made, the description
    says why and the rest is still written."""
    client = MlflowClient(uri)
    parent = client.get_run(sweep_id)
    experiment = client.get_experiment(parent.info.experiment_id).name
    progress = sweep_progress(client, parent)
    for job in progress.children:
        if MLFLOW_RUN_NOTE not in job.data.tags:
            client.set_tag(job.info.run_id, MLFLOW_RUN_NOTE, mask(job_note(job, parent))[:TAG_LIMIT])
    best = best_job(progress.children)
    finished = [c for c in progress.children if c.info.status == "FINISHED"]
    if finished:
        panel = workload_of(finished[0]) is PANEL
        try:
            with tempfile.TemporaryDirectory(prefix="imblab-sweep-report-") as out:
                report = comparison_report(uri, sweep_id, panel, out)
        except Exception as exc:  # e.g. runs without a test set: the sweep still gets the rest
            log.warning("the sweep's comparison report was not made: %s", exc)
            report = f"No comparison report: {mask(str(exc))[:500]}"
    else:
        report = "No comparison report: no job finished."
    params = [Param(k, v[:PARAM_LIMIT]) for k, v in shared_params(progress.children).items()]
    metrics = key_metrics(best) if best is not None else {}
    now = int(parent.info.end_time or parent.info.start_time or 0)
    client.log_batch(sweep_id, metrics=[Metric(k, v, now, 0) for k, v in metrics.items()], params=params)
    note = sweep_note(parent, progress, best, uri, experiment, report)
    tags = {MLFLOW_RUN_NOTE: mask(note)[:TAG_LIMIT]}
    if best is not None:
        tags[TAG_BEST_RUN] = best.info.run_id
    for key, value in tags.items():
        client.set_tag(sweep_id, key, value)
