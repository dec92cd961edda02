"""Which run ``imblab promote`` promotes: the best FINISHED training run of an experiment, or one by id.

A run is binary (``imblab train``) or panel (``imblab panel``, tag ``imblab.workload=panel``); the ranking
metric says which (``cv_pr_auc`` is binary, ``val_class_balanced_accuracy`` panel: their names never
overlap). The order is the one ranking rule ``imblab compare`` uses too (``imblab.metrics.ranking``):
without ``--metric``, the CV metric of the runs' protocol (``cv_pr_auc`` under a holdout, ``rcv_pr_auc``
under repeated CV, ``val_class_balanced_accuracy`` for panel runs).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import mlflow
from mlflow.entities import LoggedModelStatus, Run
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from imblab.errors import ImblabError
from imblab.metrics.ranking import PANEL, REPEATED_CV, RankingRule, default_metric, protocol_of, ranking_rule
from imblab.panel.metrics import RANKING_USAGE as PANEL_USAGE
from imblab.registry.versions import workload_of
from imblab.tracking.layout import ROLE_RUN, TAG_ROLE, TAG_SWEEP, WORKLOAD_BINARY, WORKLOAD_PANEL
from imblab.tracking.store import find_experiment

log = logging.getLogger(__name__)
# What trains a run of each workload, for messages.
COMMANDS = {WORKLOAD_BINARY: "imblab train", WORKLOAD_PANEL: "imblab panel"}


@dataclass(frozen=True)
class Ranking:
    """The ranking rule and the workload it ranks (binary or panel)."""

    rule: RankingRule
    workload: str

    @property
    def metric(self) -> str:
        return self.rule.metric

    @property
    def base(self) -> str:
        return self.rule.base

    @property
    def higher_is_better(self) -> bool:
        return self.rule.higher_is_better

    @property
    def protocol(self) -> str:
        return self.rule.protocol


def ranking(metric: str | None, workload: str | None = None, protocol: str | None = None) -> Ranking:
    """Read ``--metric`` (binary or panel) for runs of ``workload`` / ``protocol`` (None: not known yet);
    without a metric, the rule's default for them."""
    if metric is None:
        if workload is None:
            raise ValueError("ranking() needs a metric or a workload")
        if workload == WORKLOAD_PANEL:
            return Ranking(ranking_rule(None, PANEL), WORKLOAD_PANEL)
        return Ranking(ranking_rule(None, protocol or "holdout"), WORKLOAD_BINARY)
    try:
        found = Ranking(ranking_rule(metric, None if protocol == PANEL else protocol), WORKLOAD_BINARY)
    except ImblabError as binary_error:
        try:
            found = Ranking(ranking_rule(metric, PANEL), WORKLOAD_PANEL)
        except ImblabError:
            raise ImblabError(f"{binary_error}. For panel runs, {PANEL_USAGE}") from None
    if workload is not None and found.workload != workload:
        default = default_metric(PANEL if workload == WORKLOAD_PANEL else protocol or "holdout")
        raise ImblabError(
            f"--metric {metric} ranks {found.workload} models, but the run is a {workload} model; "
            f"use a {workload} metric such as {default}"
        )
    return found


@dataclass
class Candidate:
    """A FINISHED training run with a logged frozen model."""

    run: Run
    model_id: str
    value: float  # the ranking metric as logged by the run
    ranking: Ranking

    @property
    def run_id(self) -> str:
        return self.run.info.run_id

    @property
    def start_time(self) -> int:
        return int(self.run.info.start_time or 0)

    @property
    def model_uri(self) -> str:
        return f"models:/{self.model_id}"

    @property
    def workload(self) -> str:
        return self.ranking.workload


def ready_models(experiment_id: str) -> dict[str, str]:
    """Run id -> id of the READY logged model of each run of the experiment."""
    return {
        m.source_run_id: m.model_id
        for m in mlflow.search_logged_models(experiment_ids=[experiment_id], output_format="list")
        if m.status == LoggedModelStatus.READY
    }


def best_run(
    client: MlflowClient, experiment: str, metric: str | None = None, sweep: str | None = None
) -> Candidate:
    """The best FINISHED training run (sweep parents and set-threshold runs excluded) with a model."""
    given = ranking(metric) if metric else None
    exp = find_experiment(client, experiment)
    filters = [f"tags.`{TAG_ROLE}` = '{ROLE_RUN}'", "attributes.status = 'FINISHED'"]
    if sweep:
        filters.append(f"tags.`{TAG_SWEEP}` = '{sweep}'")
    runs = client.search_runs([exp.experiment_id], " and ".join(filters), max_results=10000)
    scope = f"experiment {experiment!r}" + (f", sweep {sweep}" if sweep else "")
    if not runs:
        raise ImblabError(f"no FINISHED training runs in {scope}; run `imblab train` or `imblab panel` first")
    workloads = sorted({workload_of(r) for r in runs})
    if given is None and len(workloads) > 1:
        raise ImblabError(
            f"{scope} holds both binary and panel runs; pass --metric to say which to rank "
            f"(e.g. {default_metric('holdout')} or {default_metric(PANEL)})"
        )
    workload = given.workload if given else workloads[0]
    runs = [r for r in runs if workload_of(r) == workload]
    if not runs:
        raise ImblabError(
            f"--metric {metric} ranks {workload} runs and {scope} has none; "
            f"run `{COMMANDS[workload]}` first or pick another experiment"
        )
    if workload == WORKLOAD_BINARY:
        protocols = sorted({protocol_of(r.data.tags) for r in runs})
        if given is None and len(protocols) > 1:
            raise ImblabError(
                f"{scope} holds both holdout and repeated-CV runs, which are ranked on different estimates "
                f"(a test set vs outer folds); pass --sweep ID, or --metric {default_metric(REPEATED_CV)} "
                f"to rank the repeated-CV runs ({default_metric('holdout')}: the holdout runs)"
            )
        protocol = given.protocol if given and len(protocols) > 1 else protocols[0]
        runs = [r for r in runs if protocol_of(r.data.tags) == protocol]
        chosen = ranking(metric, workload, protocol)
    else:
        chosen = given or ranking(None, workload)
    models = ready_models(exp.experiment_id)
    candidates = [
        Candidate(r, models[r.info.run_id], float(r.data.metrics.get(chosen.metric, math.nan)), chosen)
        for r in runs
        if r.info.run_id in models
    ]
    ranked = chosen.rule.rank(
        candidates, lambda c: c.run.data.metrics, lambda c: c.start_time, lambda c: c.run_id
    )
    if not ranked:
        raise ImblabError(
            f"no run in {scope} has both metric {chosen.metric!r} and a logged model; train with "
            "tracking.log_model=true, or pick a logged metric (`imblab runs` lists them)"
        )
    warning = chosen.rule.warning(len(ranked))
    if warning:
        log.warning("%s", warning)
    return ranked[0]


def chosen_run(client: MlflowClient, run_id: str, metric: str | None = None) -> Candidate:
    """The run ``--run`` names, if it is a FINISHED training run with a logged model."""
    try:
        run = client.get_run(run_id)
    except MlflowException as exc:
        raise ImblabError(f"no run {run_id!r} in {client.tracking_uri}: {exc.message}") from None
    role = run.data.tags.get(TAG_ROLE)
    if role != ROLE_RUN:
        raise ImblabError(
            f"run {run_id} is not a training run (role {role!r}); promote a run of `imblab train` or "
            "`imblab panel`"
        )
    if run.info.status != "FINISHED":
        raise ImblabError(f"run {run_id} is {run.info.status}, not FINISHED; only finished runs are promoted")
    model = ready_models(run.info.experiment_id).get(run_id)
    if model is None:
        raise ImblabError(f"run {run_id} logged no model; train with tracking.log_model=true")
    workload = workload_of(run)
    chosen = ranking(metric, workload, protocol_of(run.data.tags) if workload == WORKLOAD_BINARY else PANEL)
    return Candidate(run, model, float(run.data.metrics.get(chosen.metric, math.nan)), chosen)
