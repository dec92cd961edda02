"""The closing lines of a run and of a sweep: which run, which variant, its key metrics, what to run next.

Read back from the tracking store (the finished runs), so a run of ``imblab train`` and one of
``imblab panel``, a single run and a sweep's job, are all described from the same tags and metrics.
Printed on stdout by the commands (``imblab.app``); plain text, one line per job inside a sweep.
"""

from __future__ import annotations

import math
import shlex
from dataclasses import dataclass

from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from imblab.metrics.ranking import PANEL as PANEL_PROTOCOL
from imblab.metrics.ranking import default_metric, protocol_of, ranking_rule
from imblab.report.panel_comparison import DEFAULT_METRIC as PANEL_SELECTION_METRIC
from imblab.tracking.layout import TAG_CACHE_HIT, TAG_FIT_KEY, TAG_WORKLOAD, WORKLOAD_PANEL
from imblab.tracking.store import default_tracking_uri
from imblab.tracking.sweeps import SweepProgress, sweep_progress


@dataclass(frozen=True)
class Workload:
    """What a summary says about a run of one workload."""

    command: str  # the imblab subcommand
    variant_tags: tuple[str, ...]  # the tags that name a variant, in the order users say them
    parts: tuple[str, ...]  # metric prefixes: what the model was chosen on, then test
    metrics: tuple[str, ...]  # key metrics, without prefix
    rank_metric: str  # the metric a sweep's best job is picked by (never a test metric)
    higher_is_better: bool = True


BINARY = Workload(
    "train",
    ("sampler", "model", "threshold_policy"),
    ("cv", "test"),
    ("pr_auc", "recall", "precision", "expected_cost"),
    "cv_pr_auc",
)
PANEL = Workload(
    "panel",
    ("model", "class_balance", "decision"),
    ("val", "test"),
    ("wage_rmse", "class_macro_f1", "class_balanced_accuracy", "class_accuracy"),
    PANEL_SELECTION_METRIC,  # what imblab compare and imblab runs select panel runs on
)


def workload_of(run: Run) -> Workload:
    return PANEL if run.data.tags.get(TAG_WORKLOAD) == WORKLOAD_PANEL else BINARY


def variant(run: Run) -> str:
    """``smote · lgbm · best_f1`` (a panel run: ``lstm · class_weight · argmax``)."""
    tags = run.data.tags
    return " · ".join(tags.get(tag, "?") for tag in workload_of(run).variant_tags)


def _number(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "-"
    return f"{value:.4f}" if abs(value) < 1000 else f"{value:.1f}"


def _fit_note(run: Run) -> str:
    tags = run.data.tags
    if TAG_FIT_KEY not in tags:
        return ""
    key = tags[TAG_FIT_KEY][:12]
    if tags.get(TAG_CACHE_HIT) == "true":
        return f"reused cached fit {key}"
    cached = run.data.params.get("cache.enabled", "True").lower() == "true"
    return f"fitted, cached as {key}" if cached else "fitted (cache.enabled=false)"


def _parts(run: Run) -> tuple[str, ...]:
    """The metric prefixes to show: a repeated-CV run has outer-fold means (rcv_) instead of a test set."""
    parts = workload_of(run).parts
    return tuple("rcv" if p == "test" and "rcv_pr_auc" in run.data.metrics else p for p in parts)


def result_line(run: Run) -> str:
    """One line per run of a sweep: id, variant, the ranking and test metric, threshold, cache."""
    work, metrics = workload_of(run), run.data.metrics
    shown = [work.rank_metric, f"{_parts(run)[-1]}_{work.rank_metric.split('_', 1)[1]}"]
    parts = [f"run {run.info.run_id}", variant(run), *(f"{m} {_number(metrics.get(m))}" for m in shown)]
    if "threshold" in run.data.tags:
        parts.append(f"threshold {run.data.tags['threshold']}")
    note = _fit_note(run)
    return "  ".join(parts) + (f"  ({note})" if note else "")


def metrics_table(run: Run) -> list[str]:
    """The key metrics of ``run``: one row per part (cv/val, test), one column per metric."""
    work, metrics = workload_of(run), run.data.metrics
    widths = [max(len(m), 6) + 2 for m in work.metrics]
    rows = ["  " + " " * 6 + "".join(m.ljust(w) for m, w in zip(work.metrics, widths, strict=True)).rstrip()]
    for part in _parts(run):
        cells = [
            _number(metrics.get(f"{part}_{m}")).ljust(w) for m, w in zip(work.metrics, widths, strict=True)
        ]
        rows.append(f"  {part:<6}" + "".join(cells).rstrip())
    return rows


def ui_command(uri: str) -> str:
    """How to look at the store in MLflow's UI."""
    if uri.startswith(("http://", "https://")):
        return f"open {uri}  (the tracking server's UI)"
    return shlex.join(["mlflow", "ui", "--backend-store-uri", uri])


def next_commands(uri: str, experiment: str, sweep: str | None = None) -> list[str]:
    """What to run next: compare a sweep's variants (a single run: list the runs), and the UI.

    ``--tracking-uri`` is left out only for the embedded store of the working directory (``./mlruns``):
    the one the commands find without it (unless ``$MLFLOW_TRACKING_URI`` says otherwise, which MLflow
    itself sets in this process, so it cannot tell what the user's shell has).
    """
    where = [] if uri == default_tracking_uri() else ["--tracking-uri", uri]
    if sweep is not None:
        first = ["imblab", "compare", "--experiment", experiment, "--sweep", sweep, *where]
    else:
        first = ["imblab", "runs", "--experiment", experiment, *where]
    return [shlex.join(first), ui_command(uri)]


def run_summary(run: Run, uri: str, experiment: str, model_uri: str | None) -> str:
    """The closing summary of a single run."""
    tags = run.data.tags
    lines = [f"run {run.info.run_id} {run.info.status}: {variant(run)} (experiment {experiment})"]
    if "threshold" in tags:
        policy = tags.get("threshold_policy", "?")
        lines.append(f"  threshold {tags['threshold']} ({policy}, chosen on out-of-fold training scores)")
    lines += metrics_table(run)
    note = _fit_note(run)
    if note:
        lines.append(f"  fit     {note}")
    if model_uri:
        lines.append(f"  model   {model_uri}")
    lines += ["next:", *(f"  {c}" for c in next_commands(uri, experiment))]
    return "\n".join(lines)


def best_job(children: tuple[Run, ...] | list[Run]) -> Run | None:
    """The finished job ranked first by the shared rule's CV metric (``imblab compare``'s default: never a
    test metric); None if none has it."""
    finished = [c for c in children if c.info.status == "FINISHED"]
    if not finished:
        return None
    protocol = PANEL_PROTOCOL if workload_of(finished[0]) is PANEL else protocol_of(finished[0].data.tags)
    rule = ranking_rule(None, protocol)
    ranked = rule.rank(
        finished, lambda c: c.data.metrics, lambda c: c.info.start_time or 0, lambda c: c.info.run_id
    )
    return ranked[0] if ranked else None


def rank_metric(run: Run) -> str:
    """The metric a sweep's best job is picked by: the CV metric of the run's workload and protocol."""
    return PANEL.rank_metric if workload_of(run) is PANEL else default_metric(protocol_of(run.data.tags))


def sweep_summary(progress: SweepProgress, uri: str, experiment: str) -> str:
    """The closing summary of a sweep: how its jobs ended, the best by the CV metric, what to run next."""
    lines = [f"sweep {progress.sweep_id}: {progress.describe()}"]
    best = best_job(progress.children)
    if best is not None:
        lines.append(f"  best by {rank_metric(best)}: {result_line(best)}")
    for job in progress.unfinished:
        lines.append(f"  {job.info.status}: run {job.info.run_id}  {variant(job)}")
    lines += ["next:", *(f"  {c}" for c in next_commands(uri, experiment, progress.sweep_id))]
    return "\n".join(lines)


def describe_run(uri: str, run_id: str, model_uri: str | None, in_sweep: bool) -> str:
    """The summary of finished run ``run_id``: one line in a sweep, else the full summary."""
    client = MlflowClient(uri)
    run = client.get_run(run_id)
    if in_sweep:
        return result_line(run)
    experiment = client.get_experiment(run.info.experiment_id).name
    return run_summary(run, uri, experiment, model_uri)


def describe_sweep(uri: str, run_id: str) -> str:
    """The summary of the sweep whose parent run is ``run_id``."""
    client = MlflowClient(uri)
    parent = client.get_run(run_id)
    experiment = client.get_experiment(parent.info.experiment_id).name
    return sweep_summary(sweep_progress(client, parent), uri, experiment)
