"""``promote``: register the best run's model as ``challenger``; move ``champion`` if it passes the gate.

Both models are scored on the challenger run's test rows, rebuilt from its logged config with the
same holdout split, each at its own frozen threshold; the rule itself is ``imblab.registry.gate``.
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass

import mlflow
import numpy as np
import pandas as pd
from mlflow.entities import LoggedModelStatus, Run
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from imblab.config.compose import experiment_from_config
from imblab.config.specs import SplitSpec
from imblab.errors import ImblabError
from imblab.frozen import PROBABILITY
from imblab.metrics.core import threshold_metrics
from imblab.metrics.costs import Costs
from imblab.protocol.split import holdout_split
from imblab.registry.gate import (
    CHALLENGER,
    CHAMPION,
    DEFAULT_MODEL_NAME,
    Decision,
    already_champion,
    apply_gate,
    comparability_problem,
    comparable,
    metric_direction,
    rank,
)
from imblab.registry.versions import current_champion, existing_version, load_frozen, training_run
from imblab.tracking.artifacts import read_config, read_scores
from imblab.tracking.layout import ROLE_RUN, TAG_DATA_FINGERPRINT, TAG_ROLE, TAG_SWEEP
from imblab.tracking.store import client_for, find_experiment


@dataclass
class Candidate:
    """A FINISHED training run with a logged frozen model."""

    run: Run
    model_id: str
    value: float  # the ranking metric as logged by the run

    @property
    def run_id(self) -> str:
        return self.run.info.run_id

    @property
    def start_time(self) -> int:
        return int(self.run.info.start_time or 0)

    @property
    def model_uri(self) -> str:
        return f"models:/{self.model_id}"


def best_run(client: MlflowClient, experiment: str, metric: str, sweep: str | None = None) -> Candidate:
    """The best FINISHED training run (sweep parents and set-threshold runs excluded) with a model."""
    _, higher = metric_direction(metric)
    exp = find_experiment(client, experiment)
    filters = [f"tags.`{TAG_ROLE}` = '{ROLE_RUN}'", "attributes.status = 'FINISHED'"]
    if sweep:
        filters.append(f"tags.`{TAG_SWEEP}` = '{sweep}'")
    runs = client.search_runs([exp.experiment_id], " and ".join(filters), max_results=10000)
    scope = f"experiment {experiment!r}" + (f", sweep {sweep}" if sweep else "")
    if not runs:
        raise ImblabError(f"no FINISHED training runs in {scope}; run `imblab train` first")
    models = {
        m.source_run_id: m.model_id
        for m in mlflow.search_logged_models(experiment_ids=[exp.experiment_id], output_format="list")
        if m.status == LoggedModelStatus.READY
    }
    ranked = rank(
        (
            Candidate(r, models[r.info.run_id], float(r.data.metrics.get(metric, math.nan)))
            for r in runs
            if r.info.run_id in models
        ),
        higher,
    )
    if not ranked:
        raise ImblabError(
            f"no run in {scope} has both metric {metric!r} and a logged model; train with "
            "tracking.log_model=true, or pick a logged metric (`imblab runs` lists them)"
        )
    return ranked[0]


@dataclass
class GateData:
    """The challenger run's test rows, rebuilt from its config, and the costs it reports with."""

    X: pd.DataFrame
    y: np.ndarray
    costs: Costs
    fingerprint: str
    split: SplitSpec


def load_test_data(run: Run) -> GateData:
    """Reload the run's data from its logged config and reproduce its holdout split."""
    experiment = experiment_from_config(read_config(run))
    dataset = experiment.load_data()
    logged = run.data.tags.get(TAG_DATA_FINGERPRINT)
    fingerprint = dataset.fingerprint()
    if logged and logged != fingerprint:
        raise ImblabError(
            f"the data of run {run.info.run_id} changed since it was trained (fingerprint {fingerprint}, "
            f"logged {logged}); restore the original data ({dataset.name}) to compare on its test rows"
        )
    split = holdout_split(dataset, experiment.split)
    rows = dataset.X.index[split.test]
    stored = read_scores(run)[1]["row"].to_numpy()
    if len(stored) != len(rows) or not np.array_equal(stored, np.asarray(rows)):
        raise ImblabError(
            f"the rebuilt test rows of run {run.info.run_id} differ from the ones it logged; "
            "was it trained with another imblab version? Retrain it."
        )
    return GateData(
        X=dataset.X.iloc[split.test],
        y=dataset.y.to_numpy()[split.test],
        costs=experiment.costs,
        fingerprint=fingerprint,
        split=experiment.split,
    )


def evaluate(model_uri: str, data: GateData) -> dict[str, float]:
    """All metrics of a frozen model on ``data`` at the model's own threshold."""
    with tempfile.TemporaryDirectory(prefix="imblab-model-") as tmp:  # loaded into memory, then removed
        pyfunc, frozen = load_frozen(model_uri, dst=tmp)
    try:
        proba = pyfunc.predict(data.X)[PROBABILITY].to_numpy()
    except MlflowException as exc:
        raise ImblabError(f"model {model_uri} cannot score the comparison rows: {exc.message}") from None
    return threshold_metrics(data.y, proba, frozen.threshold, data.costs)


def check_comparable(client: MlflowClient, champion: ModelVersion, data: GateData, force: bool) -> bool:
    """True when the challenger's test rows were test rows for the champion's fit as well."""
    try:
        champ_run = training_run(client, champion.run_id)
        champ_split = experiment_from_config(read_config(champ_run)).split
        problem = comparability_problem(
            champ_run.data.tags.get(TAG_DATA_FINGERPRINT), champ_split, data.fingerprint, data.split
        )
    except (MlflowException, ImblabError) as exc:
        problem = f"its training run cannot be checked ({exc})"
    return comparable(problem, str(champion.version), force)


def promote(
    experiment: str,
    metric: str = "test_pr_auc",
    model_name: str = DEFAULT_MODEL_NAME,
    *,
    sweep: str | None = None,
    min_improvement: float = 0.0,
    dry_run: bool = False,
    force: bool = False,
    tracking_uri: str | None = None,
) -> Decision:
    """Register the best run's model as ``challenger`` and move ``champion`` to it if it passes the gate.

    The gate compares ``test_<base metric>`` of challenger and champion, both recomputed on the
    challenger run's test rows at each model's own threshold; it passes when the improvement (in
    the metric's better direction) is at least ``min_improvement``. With no champion, the
    challenger becomes champion.
    """
    if not math.isfinite(min_improvement):
        raise ImblabError(f"--min-improvement must be a finite number, got {min_improvement}")
    client = client_for(tracking_uri)
    base, higher = metric_direction(metric)
    best = best_run(client, experiment, metric, sweep)
    existing = existing_version(client, model_name, best.run_id)
    champion = current_champion(client, model_name)
    data = load_test_data(best.run)
    decision = Decision(
        model_name=model_name,
        metric=metric,
        gate_metric=f"test_{base}",
        higher_is_better=higher,
        run_id=best.run_id,
        model_uri=best.model_uri,
        selection_value=best.value,
        challenger=evaluate(best.model_uri, data),
        champion=None,
        champion_version=None,
        min_improvement=min_improvement,
        promoted=False,
        outcome="",
        reason="",
        test_rows=len(data.y),
        version=str(existing.version) if existing else None,
        dry_run=dry_run,
    )
    if champion is not None and existing is not None and str(champion.version) == str(existing.version):
        return already_champion(decision, str(champion.version))
    if champion is not None:
        decision.comparable = check_comparable(client, champion, data, force)
        decision.champion = evaluate(f"models:/{model_name}/{champion.version}", data)
        decision.champion_version = str(champion.version)
    apply_gate(decision)

    if dry_run:
        return decision
    version = existing or mlflow.register_model(best.model_uri, model_name)
    decision.version = str(version.version)
    for key, value in decision.tags().items():
        client.set_model_version_tag(model_name, version.version, key, value)
    client.set_registered_model_alias(model_name, CHALLENGER, version.version)
    if decision.promoted:
        client.set_registered_model_alias(model_name, CHAMPION, version.version)
        if champion is not None:
            client.set_model_version_tag(
                model_name, champion.version, "imblab.superseded_by", decision.version
            )
    return decision
