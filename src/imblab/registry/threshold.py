"""``set_threshold``: a new version with a threshold re-chosen on the training run's out-of-fold scores.

The same fitted pipeline is registered with the new threshold (no retraining), logged from a small
run of its own (role ``set_threshold``) linked to the training run whose scores chose it.
"""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import dataclass, fields

import mlflow
import pandas as pd

from imblab.errors import ImblabError
from imblab.frozen import FrozenModel
from imblab.metrics.core import threshold_metrics
from imblab.metrics.costs import Costs, effective_costs
from imblab.registry.gate import CHALLENGER, CHAMPION
from imblab.registry.versions import load_frozen, parse_registered_uri, training_run, workload_of
from imblab.thresholds import POLICIES, ThresholdPolicy
from imblab.tracking.artifacts import log_threshold, read_config, read_scores, threshold_record
from imblab.tracking.layout import (
    ROLE_SET_THRESHOLD,
    TAG_DATA_FINGERPRINT,
    TAG_ROLE,
    TAG_SOURCE_RUN,
    TAG_SOURCE_VERSION,
    WORKLOAD_PANEL,
)
from imblab.tracking.models import log_frozen_model
from imblab.tracking.runs import tracked_run
from imblab.tracking.store import client_for

log = logging.getLogger(__name__)

# Tags of the training run carried over to the set-threshold run.
CARRIED_TAGS = ("sampler", "model", "data", TAG_DATA_FINGERPRINT)


@dataclass
class ThresholdChange:
    """The version ``set_threshold`` created."""

    model_name: str
    version: str
    source_version: str
    run_id: str
    policy: str
    params: dict[str, float]
    old_threshold: float
    new_threshold: float
    detail: str
    cv_metrics: dict[str, float]
    test_metrics: dict[str, float]

    @property
    def model_uri(self) -> str:
        return f"models:/{self.model_name}/{self.version}"


def build_policy(name: str, params: dict[str, float]) -> ThresholdPolicy:
    """A threshold policy from its name and the flags given for it."""
    if name not in POLICIES:
        raise ImblabError(f"unknown threshold policy {name!r}; choose one of {sorted(POLICIES)}")
    cls = POLICIES[name]
    allowed = {f.name for f in fields(cls)}
    wrong = sorted(set(params) - allowed)
    if wrong:
        flags = ", ".join("--" + k.replace("_", "-") for k in wrong)
        takes = ", ".join("--" + k.replace("_", "-") for k in sorted(allowed)) or "no parameters"
        raise ImblabError(f"{flags} does not apply to policy {name!r}, which takes {takes}")
    return cls(**params)


def policy_parameters() -> dict[str, str]:
    """Every policy parameter -> the policies taking it (comma-separated)."""
    users: dict[str, list[str]] = {}
    for name, cls in POLICIES.items():
        for f in fields(cls):
            users.setdefault(f.name, []).append(name)
    return {k: ", ".join(v) for k, v in users.items()}


def set_threshold(
    model_uri: str,
    policy: str,
    params: dict[str, float] | None = None,
    *,
    alias: str | None = None,
    tracking_uri: str | None = None,
) -> ThresholdChange:
    """Register the version's fitted pipeline with a threshold re-chosen on its out-of-fold scores."""
    chooser = build_policy(policy, dict(params or {}))
    if alias in (CHAMPION, CHALLENGER):
        log.warning("pointing %r at the new version directly, without the promotion gate", alias)
    client = client_for(tracking_uri)
    source = parse_registered_uri(client, model_uri)
    if not source.run_id:
        raise ImblabError(
            f"version {source.version} of {source.name} has no source run; it was not made by imblab"
        )
    train = training_run(client, source.run_id)
    if workload_of(train) == WORKLOAD_PANEL:
        raise ImblabError(
            f"{model_uri} is a panel model: it has a decision policy (decision="
            f"{train.data.tags.get('decision', '?')}, offsets chosen on the validation persons), not a "
            "threshold, so set-threshold does not apply. Use the frozen decision, or argmax per call: "
            "`imblab predict ... --decision argmax` (params={'decision': 'argmax'}); to choose another "
            "policy, train with `imblab panel decision=...` and promote that run"
        )
    oof, test = read_scores(train)
    choice = chooser.choose(oof["y_true"].to_numpy(), oof["score"].to_numpy())
    # The run's configured costs with the new policy's own cost parameters on top (as at training).
    costs = effective_costs(Costs(**read_config(train).get("costs", {})), chooser.costs_override())
    cv = threshold_metrics(oof["y_true"], oof["score"], choice.threshold, costs)
    held = threshold_metrics(test["y_true"], test["score"], choice.threshold, costs)

    with tempfile.TemporaryDirectory(prefix="imblab-model-") as tmp:  # loaded into memory, then removed
        pyfunc, old = load_frozen(f"models:/{source.name}/{source.version}", dst=tmp)
    if pyfunc.input_example is None:
        raise ImblabError(f"version {source.version} of {source.name} has no input example; retrain it")
    # Same fitted pipeline object: only the threshold (and the policy recorded with it) changes.
    frozen = FrozenModel(old.pipeline, choice.threshold, old.feature_names, chooser.name)
    tags = {
        TAG_ROLE: ROLE_SET_THRESHOLD,
        TAG_SOURCE_RUN: train.info.run_id,
        TAG_SOURCE_VERSION: f"{source.name}/{source.version}",
        "threshold_policy": chooser.name,
        "threshold": f"{choice.threshold:.6g}",
        **{k: train.data.tags[k] for k in CARRIED_TAGS if k in train.data.tags},
    }
    record = threshold_record(
        chooser.name,
        chooser.params(),
        choice.threshold,
        choice.objective,
        choice.feasible,
        choice.detail,
        costs.__dict__,
        f"out-of-fold training scores of run {train.info.run_id}",
        previous_threshold=old.threshold,
        source_version=f"{source.name}/{source.version}",
    )
    name = f"set-threshold {source.name} v{source.version} {chooser.name}"
    with tracked_run(train.info.experiment_id, name, tags) as run:
        mlflow.log_params({f"threshold.{k}": v for k, v in chooser.params().items()})
        info = log_frozen_model(frozen, pd.DataFrame(pyfunc.input_example))
        metrics = {**{f"cv_{k}": v for k, v in cv.items()}, **{f"test_{k}": v for k, v in held.items()}}
        mlflow.log_metrics(metrics, model_id=info.model_id)
        log_threshold(record)
        run_id = run.info.run_id

    version_tags = {
        "imblab.derived_from": "set-threshold",
        TAG_SOURCE_VERSION: str(source.version),
        TAG_SOURCE_RUN: train.info.run_id,
        "imblab.threshold_policy": chooser.name,
        "imblab.threshold_params": json.dumps(chooser.params()),
        "imblab.old_threshold": f"{old.threshold:.6g}",
        "imblab.new_threshold": f"{choice.threshold:.6g}",
        "imblab.threshold_detail": choice.detail[:5000],
    }
    version = mlflow.register_model(info.model_uri, source.name, tags=version_tags)
    if alias:
        client.set_registered_model_alias(source.name, alias, version.version)
    return ThresholdChange(
        model_name=source.name,
        version=str(version.version),
        source_version=str(source.version),
        run_id=run_id,
        policy=chooser.name,
        params=chooser.params(),
        old_threshold=old.threshold,
        new_threshold=choice.threshold,
        detail=choice.detail,
        cv_metrics=cv,
        test_metrics=held,
    )
