"""``promote``: register a run's model as ``challenger``; move ``champion`` if it passes the gate.

One code path for both workloads: ``imblab.registry.binary`` / ``imblab.registry.panel`` rebuild the
challenger run's test rows (or test persons) and score a model on them; a repeated-CV run has none, and
``imblab.registry.folds`` pairs it with the champion over their shared outer folds instead. The rule is
``imblab.registry.gate``; the run is chosen by the ranking rule ``imblab compare`` uses too. Safe under
concurrency, and idempotent:

1. without a lock (reads only): choose the run, rebuild its test rows, score the challenger;
2. under the promotion lock of (registry store, model name) (``imblab.registry.lock``), read the
   registry again: a run that already has a version reuses it (a run is registered once); if that
   version is the champion, nothing changes and the decision says so; otherwise the champion *as it is
   now* is scored on the same rows, the gate decides, and the writes (register, tags, description,
   aliases) happen before the lock is released.

A champion of another workload (a binary champion, a panel challenger) is never compared: that is an error.
"""

from __future__ import annotations

import logging
import math

import mlflow
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from imblab.errors import ImblabError
from imblab.metrics.ranking import REPEATED_CV
from imblab.registry.binary import binary_rows
from imblab.registry.candidates import Candidate, best_run, chosen_run, ranking
from imblab.registry.folds import fold_rows
from imblab.registry.gate import (
    CHALLENGER,
    CHAMPION,
    DEFAULT_MODEL_NAME,
    Decision,
    GateRows,
    already_champion,
    apply_gate,
    comparable,
)
from imblab.registry.lock import DEFAULT_TIMEOUT, promotion_lock
from imblab.registry.panel import panel_rows
from imblab.registry.versions import current_champion, existing_version, training_run, workload_of
from imblab.report.variants import base_label
from imblab.tracking.layout import PROMOTIONS_DIR, WORKLOAD_PANEL
from imblab.tracking.store import client_for

log = logging.getLogger(__name__)

DEFAULT_PANEL_MODEL_NAME = "panel-wage"


def default_model_name(workload: str) -> str:
    return DEFAULT_PANEL_MODEL_NAME if workload == WORKLOAD_PANEL else DEFAULT_MODEL_NAME


def gate_rows(client: MlflowClient, candidate: Candidate) -> GateRows:
    """The candidate's test rows (binary) or test persons (panel), rebuilt from its logged config; the
    outer folds of a repeated-CV run."""
    if candidate.workload == WORKLOAD_PANEL:
        return panel_rows(candidate.run)
    if candidate.ranking.protocol == REPEATED_CV:
        return fold_rows(client, candidate.run, candidate.model_uri)
    return binary_rows(candidate.run)


def promote(
    experiment: str = "imblab",
    metric: str | None = None,
    model_name: str | None = None,
    *,
    run_id: str | None = None,
    sweep: str | None = None,
    min_improvement: float = 0.0,
    dry_run: bool = False,
    force: bool = False,
    tracking_uri: str | None = None,
    lock_timeout: float = DEFAULT_TIMEOUT,
) -> Decision:
    """Register a run's model as ``challenger`` and move ``champion`` to it if it passes the gate.

    The run is ``run_id``, or the best FINISHED training run of ``experiment`` (``sweep``) by the shared
    ranking rule of ``metric`` (default: the CV metric, ``cv_pr_auc`` / ``rcv_pr_auc`` for binary runs,
    ``val_class_balanced_accuracy`` for panel runs). The gate compares ``test_<base metric>`` of challenger
    and champion, both recomputed on the challenger run's test rows, or for a repeated-CV challenger
    ``rcv_<base metric>`` paired over the outer folds both runs share; it passes when the improvement (in
    the metric's better direction) is at least ``min_improvement`` and not a tie (repeated CV: and its
    corrected interval lies above 0). With no champion, the challenger becomes champion.
    """
    if not math.isfinite(min_improvement):
        raise ImblabError(f"--min-improvement must be a finite number, got {min_improvement}")
    if metric is not None:
        ranking(metric)  # a bad name fails before any store is opened
    client = client_for(tracking_uri)
    best = chosen_run(client, run_id, metric) if run_id else best_run(client, experiment, metric, sweep)
    name = model_name or default_model_name(best.workload)
    rows = gate_rows(client, best)
    decision = Decision(
        model_name=name,
        metric=best.ranking.metric,
        gate_metric=f"{rows.gate_prefix}_{best.ranking.base}",
        higher_is_better=best.ranking.higher_is_better,
        run_id=best.run_id,
        model_uri=best.model_uri,
        selection_value=best.value,
        challenger=rows.score(best.model_uri),
        champion=None,
        champion_version=None,
        min_improvement=min_improvement,
        promoted=False,
        outcome="",
        reason="",
        test_rows=rows.n,
        dry_run=dry_run,
        shown=rows.shown,
        rows_label=rows.label,
        variant=base_label(best.run.data.tags),
    )
    with promotion_lock(mlflow.get_registry_uri(), name, lock_timeout):
        # Read after taking the lock: another promotion may have registered or moved an alias meanwhile.
        existing = existing_version(client, name, best.run_id)
        champion = current_champion(client, name)
        decision.version = str(existing.version) if existing else None
        if champion is not None and champion.run_id == best.run_id:
            decision.version = str(champion.version)
            return already_champion(decision, str(champion.version))
        if champion is not None:
            decision.comparable = _check_champion(client, champion, best, rows, force)
            champion_uri = f"models:/{name}/{champion.version}"
            decision.champion = rows.score(champion_uri)
            decision.champion_version = str(champion.version)
            if rows.pair is not None and decision.comparable:
                decision.paired = rows.pair(best.model_uri, champion_uri, decision.base, rows.data)
        apply_gate(decision)
        if not dry_run:
            _record(client, decision, existing, champion, rows.header)
    return decision


def _check_champion(
    client: MlflowClient, champion: ModelVersion, best: Candidate, rows: GateRows, force: bool
) -> bool:
    """Refuse a champion of another workload; True when its test rows are the challenger's (else forced)."""
    try:
        champion_run = training_run(client, champion.run_id)
    except MlflowException as exc:
        problem: str | None = f"its training run cannot be checked ({exc.message})"
        return comparable(problem, str(champion.version), force)
    theirs = workload_of(champion_run)
    if theirs != best.workload:
        other = default_model_name(best.workload)
        hint = f"--name {other}" if other != champion.name else "another --name"
        raise ImblabError(
            f"{champion.name}@{CHAMPION} (version {champion.version}) is a {theirs} model and run "
            f"{best.run_id} a {best.workload} model: they take different inputs and predict different "
            f"things, so they are never compared. Promote it under another registered name ({hint})."
        )
    try:
        problem = rows.problem(champion_run)
    except (MlflowException, ImblabError) as exc:
        problem = f"its training run cannot be checked ({exc})"
    return comparable(problem, str(champion.version), force, rows.refusal)


def _record(
    client: MlflowClient,
    decision: Decision,
    existing: ModelVersion | None,
    champion: ModelVersion | None,
    header: str,
) -> None:
    """The registry writes of a decision (under the promotion lock): version, tags, description, aliases."""
    name = decision.model_name
    version = existing or mlflow.register_model(decision.model_uri, name)
    decision.version = str(version.version)
    for key, value in decision.tags().items():
        client.set_model_version_tag(name, version.version, key, value)
    # The full record beside the source run, one file per version (a re-gate of it rewrites its own).
    record = f"{PROMOTIONS_DIR}/{name}-v{version.version}.json"
    client.log_dict(decision.run_id, decision.record(), record)
    client.update_model_version(name, version.version, description=decision.description(header, record))
    client.set_registered_model_alias(name, CHALLENGER, version.version)
    if decision.promoted:
        client.set_registered_model_alias(name, CHAMPION, version.version)
        if champion is not None:
            client.set_model_version_tag(name, champion.version, "imblab.superseded_by", decision.version)
