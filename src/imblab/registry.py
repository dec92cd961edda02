"""Model registry: promote the best run behind a gate, and re-threshold a version without retraining.

``imblab promote`` registers the best FINISHED training run's frozen model as a new version of a
registered model, points the ``challenger`` alias at it and moves ``champion`` only when the
challenger beats the current champion by a minimum improvement. Both models are scored on the
*same* rows: the challenger run's test rows, rebuilt from its logged ``config.yaml`` with the same
holdout split. That comparison is only honest if those rows were test rows for the champion too,
so the champion's training run must share the data fingerprint and split config (``--force``
overrides, and the decision records it). The decision, both models' metrics and the reason are
written as version tags, so the registry itself tells why an alias moved or did not.

``imblab set-threshold`` re-chooses the threshold of a registered version on its training run's
stored out-of-fold scores and registers the same fitted pipeline with the new threshold as a new
version (logged from a small run of its own, role ``set_threshold``, linked to the training run).

Versions are never modified except for tags and aliases (re-gating an already registered run
updates its decision tags); nothing is deleted.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.entities import LoggedModelStatus, Run
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.models import Model
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig, OmegaConf

from imblab.data.dataset import Dataset
from imblab.errors import ImblabError
from imblab.frozen import PROBABILITY, FrozenModel
from imblab.metrics.core import threshold_metrics
from imblab.metrics.costs import Costs
from imblab.metrics.names import ranking_metric
from imblab.pipeline import build
from imblab.protocol import holdout_split
from imblab.thresholds import POLICIES, ThresholdPolicy
from imblab.tracking import TAG_ROLE, TAG_SWEEP, tracked_run, use_tracking

log = logging.getLogger(__name__)

CHAMPION = "champion"
CHALLENGER = "challenger"
DEFAULT_MODEL_NAME = "secom-defects"

# Tags on a set-threshold run linking it to the training run whose pipeline and scores it reuses.
TAG_SOURCE_RUN = "imblab.source_run_id"
TAG_SOURCE_VERSION = "imblab.source_version"
ROLE_SET_THRESHOLD = "set_threshold"

# Metrics of both models recorded as version tags and printed next to the gate metric.
SUMMARY_METRICS = ("pr_auc", "roc_auc", "recall", "precision", "f1", "expected_cost", "net_saving")


# --------------------------------------------------------------------------------------------------
# Stores and lookups
# --------------------------------------------------------------------------------------------------


def use_stores(tracking_uri: str | None) -> MlflowClient:
    """Point MLflow at imblab's store and return a client for it.

    The registry is not set separately: as MLflow does by default, it lives in the tracking store
    (``$MLFLOW_REGISTRY_URI`` still overrides that, as in every MLflow tool). Setting it here would
    pin MLflow's process-wide registry URI to one store, which a later call with another store
    would then silently keep using.
    """
    return MlflowClient(tracking_uri=use_tracking(tracking_uri))


def training_run(client: MlflowClient, run_id: str) -> Run:
    """The training run behind ``run_id``, following set-threshold links back to the fit."""
    seen: set[str] = set()
    run = client.get_run(run_id)
    while TAG_SOURCE_RUN in run.data.tags and run.info.run_id not in seen:
        seen.add(run.info.run_id)
        run = client.get_run(run.data.tags[TAG_SOURCE_RUN])
    return run


def run_config(client: MlflowClient, run: Run) -> DictConfig:
    """The resolved training config a run logged as ``config.yaml``."""
    from imblab.runner import CONFIG_YAML  # lazily: runner pulls in plotting, serving does not need it

    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = client.download_artifacts(run.info.run_id, CONFIG_YAML, tmp)
        except (MlflowException, OSError) as exc:
            raise ImblabError(
                f"run {run.info.run_id} has no {CONFIG_YAML} artifact ({exc}); it was not logged by "
                "`imblab train`, so its data and split cannot be rebuilt"
            ) from None
        cfg = OmegaConf.load(path)
    assert isinstance(cfg, DictConfig)
    return cfg


def run_artifact_frame(client: MlflowClient, run_id: str, artifact: str) -> pd.DataFrame:
    """A Parquet artifact of a run (e.g. the out-of-fold scores) as a DataFrame."""
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = client.download_artifacts(run_id, artifact, tmp)
        except (MlflowException, OSError) as exc:
            raise ImblabError(
                f"run {run_id} has no artifact {artifact!r} ({exc}); retrain it with imblab"
            ) from None
        return pd.read_parquet(path)


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
    def model_uri(self) -> str:
        return f"models:/{self.model_id}"


def best_run(client: MlflowClient, experiment: str, metric: str, sweep: str | None = None) -> Candidate:
    """The best FINISHED training run (sweep parents and set-threshold runs excluded) with a model."""
    higher = ranking_metric(metric).higher_is_better
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        names = [e.name for e in client.search_experiments()]
        raise ImblabError(f"no MLflow experiment {experiment!r}; experiments in this store: {names}")
    filters = [f"tags.`{TAG_ROLE}` = 'run'", "attributes.status = 'FINISHED'"]
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
    scored = [
        Candidate(r, models[r.info.run_id], float(r.data.metrics[metric]))
        for r in runs
        if r.info.run_id in models and not math.isnan(r.data.metrics.get(metric, math.nan))
    ]
    if not scored:
        raise ImblabError(
            f"no run in {scope} has both metric {metric!r} and a logged model; train with "
            "tracking.log_model=true, or pick a logged metric (`imblab runs` lists them)"
        )
    # Ties go to the most recent run, so re-running an identical config does not promote the old one.
    scored.sort(key=lambda c: (c.value if higher else -c.value, c.run.info.start_time), reverse=True)
    return scored[0]


def parse_registered_uri(client: MlflowClient, model_uri: str) -> ModelVersion:
    """The registry version named by ``models:/<name>@<alias>`` or ``models:/<name>/<version>``."""
    if not model_uri.startswith("models:/"):
        raise ImblabError(
            f"{model_uri!r} is not a registered model URI; "
            "use models:/<name>@<alias> or models:/<name>/<version>"
        )
    ref = model_uri[len("models:/") :].strip("/")
    try:
        if "@" in ref:
            name, alias = ref.split("@", 1)
            return client.get_model_version_by_alias(name, alias)
        name, sep, version = ref.rpartition("/")
        if sep and version.isdigit():
            return client.get_model_version(name, version)
    except MlflowException as exc:
        raise ImblabError(f"{model_uri} is not in the model registry: {exc.message}") from None
    raise ImblabError(
        f"{model_uri!r} names no registered version; use models:/<name>@<alias> or models:/<name>/<version>"
    )


def load_frozen(model_uri: str, dst: str | None = None) -> tuple[Any, FrozenModel]:
    """The pyfunc model and the ``FrozenModel`` inside it."""
    try:
        pyfunc = mlflow.pyfunc.load_model(model_uri, dst_path=dst)
    except MlflowException as exc:
        raise ImblabError(f"cannot load model {model_uri}: {exc.message}") from None
    frozen = pyfunc.unwrap_python_model()
    if not isinstance(frozen, FrozenModel):
        raise ImblabError(f"{model_uri} is not an imblab frozen model (it holds {type(frozen).__name__})")
    return pyfunc, frozen


# --------------------------------------------------------------------------------------------------
# The gate's test data
# --------------------------------------------------------------------------------------------------


@dataclass
class GateData:
    """The challenger run's test rows, rebuilt from its config, and the costs it reports with."""

    X: pd.DataFrame
    y: np.ndarray
    costs: Costs
    fingerprint: str
    split: dict[str, Any]


def load_test_data(client: MlflowClient, run: Run) -> GateData:
    """Reload the run's data from its ``config.yaml`` and reproduce its holdout split."""
    from imblab.runner import TEST_SCORES, effective_costs

    cfg = run_config(client, run)
    dataset: Dataset = build(cfg.data, "data")
    dataset.validate()
    logged = run.data.tags.get("data_fingerprint")
    fingerprint = dataset.fingerprint()
    if logged and logged != fingerprint:
        raise ImblabError(
            f"the data of run {run.info.run_id} changed since it was trained (fingerprint {fingerprint}, "
            f"logged {logged}); restore the original data ({dataset.name}) to compare on its test rows"
        )
    split = holdout_split(dataset, cfg.split)
    rows = dataset.X.index[split.test]
    stored = run_artifact_frame(client, run.info.run_id, TEST_SCORES)["row"].to_numpy()
    if len(stored) != len(rows) or not np.array_equal(stored, np.asarray(rows)):
        raise ImblabError(
            f"the rebuilt test rows of run {run.info.run_id} differ from the ones it logged; "
            "was it trained with another imblab version? Retrain it."
        )
    split_cfg = OmegaConf.to_container(cfg.split, resolve=True)
    assert isinstance(split_cfg, dict)
    return GateData(
        X=dataset.X.iloc[split.test],
        y=dataset.y.to_numpy()[split.test],
        costs=effective_costs(cfg, build(cfg.threshold, "threshold policy")),
        fingerprint=fingerprint,
        split=split_cfg,
    )


def evaluate(model_uri: str, data: GateData) -> dict[str, float]:
    """All metrics of a frozen model on ``data`` at the model's own threshold."""
    pyfunc, frozen = load_frozen(model_uri)
    try:
        proba = pyfunc.predict(data.X)[PROBABILITY].to_numpy()
    except MlflowException as exc:
        raise ImblabError(f"model {model_uri} cannot score the comparison rows: {exc.message}") from None
    return threshold_metrics(data.y, proba, frozen.threshold, data.costs)


# --------------------------------------------------------------------------------------------------
# Promotion
# --------------------------------------------------------------------------------------------------


@dataclass
class Decision:
    """What ``promote`` decided, and why; ``tags()`` is what goes onto the challenger version."""

    model_name: str
    metric: str  # the ranking metric, e.g. test_pr_auc
    gate_metric: str  # the metric compared on the shared test rows: test_<base>
    higher_is_better: bool
    run_id: str
    model_uri: str
    selection_value: float
    challenger: dict[str, float]
    champion: dict[str, float] | None
    champion_version: str | None
    min_improvement: float
    promoted: bool
    outcome: str  # first_champion | promoted | rejected | already_champion
    reason: str
    comparable: bool = True  # False when --force compared across different data or splits
    test_rows: int = 0
    version: str | None = None  # the challenger's version (None in a dry run)
    dry_run: bool = False

    @property
    def improvement(self) -> float:
        if self.champion is None:
            return math.nan
        base = self.gate_metric.removeprefix("test_")
        diff = self.challenger[base] - self.champion[base]
        return diff if self.higher_is_better else -diff

    def tags(self) -> dict[str, str]:
        base = self.gate_metric.removeprefix("test_")

        def pick(m: dict[str, float] | None) -> str:
            return json.dumps({k: m[k] for k in (base, *SUMMARY_METRICS, "threshold")} if m else None)

        tags = {
            "imblab.decision": self.outcome,
            "imblab.reason": self.reason[:5000],
            "imblab.source_run_id": self.run_id,
            "imblab.selection_metric": self.metric,
            "imblab.selection_value": f"{self.selection_value:.6g}",
            "imblab.gate.metric": self.gate_metric,
            "imblab.gate.direction": "higher_is_better" if self.higher_is_better else "lower_is_better",
            "imblab.gate.min_improvement": f"{self.min_improvement:g}",
            "imblab.gate.challenger_value": f"{self.challenger[base]:.6g}",
            "imblab.gate.champion_value": "" if self.champion is None else f"{self.champion[base]:.6g}",
            "imblab.gate.champion_version": self.champion_version or "",
            "imblab.gate.improvement": "" if self.champion is None else f"{self.improvement:.6g}",
            "imblab.gate.comparable": str(self.comparable).lower(),
            "imblab.gate.test_rows": str(self.test_rows),
            "imblab.gate.challenger_metrics": pick(self.challenger),
            "imblab.gate.champion_metrics": pick(self.champion),
        }
        return tags

    def summary(self) -> str:
        base = self.gate_metric.removeprefix("test_")
        head = "DRY RUN (nothing registered): " if self.dry_run else ""
        where = f"version {self.version}" if self.version else f"run {self.run_id}"
        lines = [
            f"{head}{self.outcome.upper()}: {self.model_name} {where}",
            f"  reason: {self.reason}",
            f"  selected by {self.metric} = {self.selection_value:.4f} "
            f"({'higher' if self.higher_is_better else 'lower'} is better)",
        ]
        shown = (base, *[m for m in SUMMARY_METRICS if m != base], "threshold")
        champ = self.champion or {}
        label = f"champion v{self.champion_version}" if self.champion_version else "champion"
        lines.append(f"  {'test metric':<16}{'challenger':>12}{label:>16}")
        for m in shown:
            c = f"{champ[m]:.4f}" if m in champ else "-"
            lines.append(f"  {m:<16}{self.challenger[m]:>12.4f}{c:>16}")
        lines.append(f"  (on {self.test_rows} test rows of run {self.run_id})")
        return "\n".join(lines)


def _check_comparable(client: MlflowClient, champion: ModelVersion, data: GateData, force: bool) -> bool:
    """True when the challenger's test rows were test rows for the champion's fit as well."""
    try:
        champ_run = training_run(client, champion.run_id)
        champ_split = OmegaConf.to_container(run_config(client, champ_run).split, resolve=True)
        champ_fp = champ_run.data.tags.get("data_fingerprint")
        problem = None
        if champ_fp != data.fingerprint:
            problem = f"its data fingerprint is {champ_fp}, the challenger's {data.fingerprint}"
        elif champ_split != data.split:
            problem = f"its split config is {champ_split}, the challenger's {data.split}"
    except (MlflowException, ImblabError) as exc:
        problem = f"its training run cannot be checked ({exc})"
    if problem is None:
        return True
    if force:
        log.warning("comparing with champion v%s anyway (--force): %s", champion.version, problem)
        return False
    raise ImblabError(
        f"champion version {champion.version} was trained on other data or another split ({problem}), so the "
        "challenger's test rows may be training rows for it and the comparison would flatter it. Retrain a "
        "challenger with the champion's data and split, or pass --force to compare anyway (recorded)."
    )


def _existing_version(client: MlflowClient, name: str, run_id: str) -> ModelVersion | None:
    """A version of ``name`` already registered from ``run_id`` (re-promoting must not duplicate it)."""
    try:
        found = client.search_model_versions(f"name = '{name}' and run_id = '{run_id}'")
    except MlflowException:
        return None
    return min(found, key=lambda v: int(v.version)) if found else None


def current_champion(client: MlflowClient, name: str) -> ModelVersion | None:
    try:
        return client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        return None  # no registered model, or no champion alias yet


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
    client = use_stores(tracking_uri)
    ranked = ranking_metric(metric)
    base, higher = ranked.base, ranked.higher_is_better
    best = best_run(client, experiment, metric, sweep)
    existing = _existing_version(client, model_name, best.run_id)
    champion = current_champion(client, model_name)
    data = load_test_data(client, best.run)
    challenger = evaluate(best.model_uri, data)

    decision = Decision(
        model_name=model_name,
        metric=metric,
        gate_metric=f"test_{base}",
        higher_is_better=higher,
        run_id=best.run_id,
        model_uri=best.model_uri,
        selection_value=best.value,
        challenger=challenger,
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
        decision.champion, decision.champion_version = challenger, str(champion.version)
        decision.outcome = "already_champion"
        decision.reason = f"the best run {best.run_id} already is champion (version {champion.version})"
        return decision
    if champion is None:
        decision.promoted, decision.outcome = True, "first_champion"
        decision.reason = f"no {CHAMPION} of {model_name!r} yet: the first promoted version becomes champion"
    else:
        decision.comparable = _check_comparable(client, champion, data, force)
        decision.champion = evaluate(f"models:/{model_name}/{champion.version}", data)
        decision.champion_version = str(champion.version)
        _gate(decision, base)

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


def _gate(decision: Decision, base: str) -> None:
    """Fill in outcome and reason from the two metric values."""
    assert decision.champion is not None
    new, old = decision.challenger[base], decision.champion[base]
    cmp = f"test {base} {new:.4f} vs champion v{decision.champion_version} {old:.4f}"
    note = "" if decision.comparable else " [--force: champion trained on other data/split]"
    if math.isnan(new) or math.isnan(old):
        decision.outcome = "rejected"
        decision.reason = f"{cmp}: a NaN metric cannot pass the gate{note}"
        return
    gain = decision.improvement
    # A tiny tolerance so that "min improvement 0" accepts an exact tie despite float noise.
    passed = gain >= decision.min_improvement - 1e-12
    verb = "passes" if passed else "fails"
    decision.promoted = passed
    decision.outcome = "promoted" if passed else "rejected"
    decision.reason = (
        f"{cmp}: improvement {gain:+.4f} {verb} the gate (minimum {decision.min_improvement:g}, "
        f"{'higher' if decision.higher_is_better else 'lower'} is better){note}"
    )


def promote_main(argv: Sequence[str]) -> int:
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


# --------------------------------------------------------------------------------------------------
# Re-thresholding
# --------------------------------------------------------------------------------------------------


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


def set_threshold(
    model_uri: str,
    policy: str,
    params: dict[str, float] | None = None,
    *,
    alias: str | None = None,
    tracking_uri: str | None = None,
) -> ThresholdChange:
    """Register the version's fitted pipeline with a threshold re-chosen on its out-of-fold scores."""
    from imblab.runner import OOF_SCORES, TEST_SCORES, THRESHOLD_JSON, effective_costs, log_frozen_model

    chooser = build_policy(policy, dict(params or {}))
    if alias in (CHAMPION, CHALLENGER):
        log.warning("pointing %r at the new version directly, without the promotion gate", alias)
    client = use_stores(tracking_uri)
    source = parse_registered_uri(client, model_uri)
    if not source.run_id:
        raise ImblabError(
            f"version {source.version} of {source.name} has no source run; it was not made by imblab"
        )
    train = training_run(client, source.run_id)
    oof = run_artifact_frame(client, train.info.run_id, OOF_SCORES)
    test = run_artifact_frame(client, train.info.run_id, TEST_SCORES)
    choice = chooser.choose(oof["y_true"].to_numpy(), oof["score"].to_numpy())
    costs = effective_costs(run_config(client, train), chooser)

    with tempfile.TemporaryDirectory() as tmp:
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=f"models:/{source.name}/{source.version}", dst_path=tmp
        )
        _, old = load_frozen(local)
        example = Model.load(local).load_input_example(local)
        if example is None:
            raise ImblabError(f"version {source.version} of {source.name} has no input example; retrain it")
        # Same fitted pipeline object: only the threshold (and the policy recorded with it) changes.
        frozen = FrozenModel(old.pipeline, choice.threshold, old.feature_names, chooser.name)
        cv = threshold_metrics(oof["y_true"], oof["score"], choice.threshold, costs)
        held = threshold_metrics(test["y_true"], test["score"], choice.threshold, costs)
        tags = {
            TAG_ROLE: ROLE_SET_THRESHOLD,
            TAG_SOURCE_RUN: train.info.run_id,
            TAG_SOURCE_VERSION: f"{source.name}/{source.version}",
            "threshold_policy": chooser.name,
            "threshold": f"{choice.threshold:.6g}",
            **{
                k: train.data.tags[k]
                for k in ("sampler", "model", "data", "data_fingerprint")
                if k in train.data.tags
            },
        }
        name = f"set-threshold {source.name} v{source.version} {chooser.name}"
        with tracked_run(train.info.experiment_id, name, tags) as run:
            mlflow.log_params({f"threshold.{k}": v for k, v in chooser.params().items()})
            info = log_frozen_model(frozen, pd.DataFrame(example))
            metrics = {**{f"cv_{k}": v for k, v in cv.items()}, **{f"test_{k}": v for k, v in held.items()}}
            mlflow.log_metrics(metrics, model_id=info.model_id)
            mlflow.log_dict(
                {
                    "policy": chooser.name,
                    "params": chooser.params(),
                    "threshold": choice.threshold,
                    "previous_threshold": old.threshold,
                    "objective": choice.objective,
                    "feasible": choice.feasible,
                    "detail": choice.detail,
                    "costs": costs.__dict__,
                    "chosen_on": f"out-of-fold training scores of run {train.info.run_id}",
                    "source_version": f"{source.name}/{source.version}",
                },
                THRESHOLD_JSON,
            )
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


def _policy_flags() -> dict[str, str]:
    """Every policy parameter as a flag name -> the policies taking it (for --help)."""
    flags: dict[str, list[str]] = {}
    for name, cls in POLICIES.items():
        for f in fields(cls):
            flags.setdefault(f.name, []).append(name)
    return {k: ", ".join(v) for k, v in flags.items()}


def set_threshold_main(argv: Sequence[str]) -> int:
    p = argparse.ArgumentParser(
        prog="imblab set-threshold",
        description="New model version: the same fitted pipeline with a threshold re-chosen by a policy "
        "on the training run's out-of-fold scores (no retraining).",
    )
    p.add_argument("model_uri", help="models:/<name>@<alias> or models:/<name>/<version>")
    p.add_argument("--policy", required=True, choices=sorted(POLICIES), help="threshold policy")
    for key, users in _policy_flags().items():
        p.add_argument("--" + key.replace("_", "-"), dest=key, type=float, default=None, help=f"for {users}")
    p.add_argument("--alias", default=None, help="point this alias at the new version (e.g. staging)")
    p.add_argument("--tracking-uri", default=None, help="default: $MLFLOW_TRACKING_URI or ./mlruns/mlflow.db")
    args = p.parse_args(list(argv))
    params = {k: getattr(args, k) for k in _policy_flags() if getattr(args, k) is not None}
    change = set_threshold(
        args.model_uri, args.policy, params, alias=args.alias, tracking_uri=args.tracking_uri
    )
    print(
        f"{change.model_uri}: threshold {change.old_threshold:.6g} -> {change.new_threshold:.6g} "
        f"({change.policy} {change.params}; from version {change.source_version}, no retraining)"
    )
    print(f"  {change.detail}")
    cv, test = change.cv_metrics, change.test_metrics
    for label, m in (("out-of-fold", cv), ("test", test)):
        print(
            f"  {label}: recall {m['recall']:.3f}, precision {m['precision']:.3f}, "
            f"expected cost/lot {m['expected_cost']:.4f}"
        )
    if change.new_threshold == change.old_threshold:
        print("  note: the threshold did not change")
    if args.alias:
        print(f"  alias {args.alias!r} -> version {change.version}")
    return 0
