"""The study: its setup (what a trial's value depends on), opening or resuming it, and reading it.

``open_session`` is where every bad input fails: settings, search space, storage, and a stored study
whose direction or setup differs from this experiment's, all before any trial runs.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from imblab.config.specs import Experiment, TuningSpec
from imblab.data.dataset import Dataset
from imblab.errors import ImblabError
from imblab.metrics.names import THRESHOLD_FREE_METRICS
from imblab.pipeline import model_of
from imblab.tuning.attrs import ATTR_METRIC, ATTR_SETUP, ATTR_SIGNATURE
from imblab.tuning.settings import check
from imblab.tuning.space import ParamSpec, parse_search_space
from imblab.tuning.storage import open_storage, storage_label
from imblab.tuning.workers import StaleTrials, reap_dead_trials

log = logging.getLogger(__name__)


@contextlib.contextmanager
def quiet_optuna() -> Iterator[None]:
    """Optuna logs every trial (failures with tracebacks); the progress bar and imblab's lines replace it."""
    previous = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            yield
    finally:
        optuna.logging.set_verbosity(previous)


# --------------------------------------------------------------------------------------------------
# Reading a study
# --------------------------------------------------------------------------------------------------


def trial_counts(study: optuna.Study) -> dict[TrialState, int]:
    """Trials of the study by state (every state present, zeros included)."""
    counts = dict.fromkeys(TrialState, 0)
    for t in study.get_trials(deepcopy=False):
        counts[t.state] += 1
    return counts


FINISHED_STATES = (TrialState.COMPLETE, TrialState.PRUNED)  # what counts towards ``n_trials``


def finished(counts: dict[TrialState, int]) -> int:
    """Trials that count towards ``n_trials``: COMPLETE and PRUNED (FAIL trials do not count)."""
    return sum(counts[state] for state in FINISHED_STATES)


def best_trial(study: optuna.Study) -> FrozenTrial | None:
    """The best COMPLETE trial, or None while there is none."""
    try:
        return study.best_trial
    except ValueError:
        return None


# --------------------------------------------------------------------------------------------------
# Setup and name
# --------------------------------------------------------------------------------------------------


def study_setup(experiment: Experiment, dataset: Dataset, metric: str, direction: str) -> dict[str, Any]:
    """Everything a trial's value depends on: a study may only be continued with the same setup.

    Plain data from the resolved config (``experiment.config``), so the signature of an unchanged
    command stays the same across imblab versions and existing studies resume.
    """
    config = experiment.config
    model = config.get("model") or {}
    cv = experiment.cv
    setup: dict[str, Any] = {
        "data": dataset.fingerprint(),
        "split": config.get("split"),
        "folds": {"k": int(experiment.tuning.folds), "shuffle": bool(cv.shuffle), "seed": int(cv.seed)},
        "preprocess": config.get("preprocess"),
        "sampler": config.get("sampler"),
        "model": {"name": experiment.model_name, "estimator": model.get("estimator")},
        "search_space": model.get("search_space"),
        "metric": metric,
        "direction": direction,
        "early_stopping": (config.get("tuning") or {}).get("early_stopping"),
    }
    if metric not in THRESHOLD_FREE_METRICS:
        setup["threshold"] = config.get("threshold")
        setup["costs"] = config.get("costs")
    return setup


def signature(setup: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(setup, sort_keys=True, default=str).encode()).hexdigest()[:16]


def default_study_name(experiment: Experiment, dataset: Dataset, metric: str, sig: str) -> str:
    return f"imblab-{dataset.name}-{experiment.sampler_name}-{experiment.model_name}-{metric}-{sig[:8]}"


# --------------------------------------------------------------------------------------------------
# Opening
# --------------------------------------------------------------------------------------------------


def open_study(
    storage: optuna.storages.BaseStorage | None,
    name: str,
    direction: str,
    setup: dict[str, Any],
    spec: TuningSpec,
    worker: bool,
) -> optuna.Study:
    """Load or create the study; refuse one with another direction or setup before any trial runs."""
    sig = signature(setup)
    where = storage_label(spec.storage)
    existing: optuna.Study | None = None
    if storage is not None:
        with contextlib.suppress(KeyError):
            existing = optuna.load_study(study_name=name, storage=storage)
    if existing is not None:
        if len(existing.directions) != 1 or existing.direction.name.lower() != direction:
            have = "/".join(d.name.lower() for d in existing.directions)
            metric = existing.user_attrs.get(ATTR_METRIC, "?")
            raise ImblabError(
                f"study {name!r} in {where} was created to {have} ({metric}), but "
                f"tuning.metric={setup['metric']} needs to {direction}; use the study's metric or a new "
                "tuning.study_name"
            )
        recorded = existing.user_attrs.get(ATTR_SIGNATURE)
        if recorded is not None and recorded != sig:
            theirs = existing.user_attrs.get(ATTR_SETUP) or {}
            differ = sorted(k for k in set(theirs) | set(setup) if theirs.get(k) != setup.get(k)) or ["?"]
            raise ImblabError(
                f"study {name!r} in {where} was created for a different setup (differs in: "
                f"{', '.join(differ)}); its trials cannot be continued with this one. Use the same overrides "
                "as the study's first run, or a new tuning.study_name"
            )
    n_existing = len(existing.trials) if existing is not None else 0
    # The sampler's seed moves on with the study's history (and, for workers, with the process), so a
    # resumed study or a second worker does not replay the random start-up trials of the first.
    seed = int(spec.seed) + n_existing + ((os.getpid() % 100_003) + 1 if worker else 0)
    sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=int(spec.tpe_startup_trials))
    # No pruner configured means no pruning (Optuna's own default would be MedianPruner).
    pruner = spec.pruner if spec.pruner is not None else optuna.pruners.NopPruner()
    with quiet_optuna():
        study = optuna.create_study(
            storage=storage,
            study_name=name,
            direction=direction,
            sampler=sampler,
            pruner=pruner,
            load_if_exists=True,
        )
    log.info(
        "tuning: %s study %s (%d trials so far) in %s",
        "resuming" if n_existing else "new",
        name,
        n_existing,
        where,
    )
    if study.direction.name.lower() != direction:  # created concurrently by another process
        raise ImblabError(
            f"study {name!r} was just created by another process to {study.direction.name.lower()}"
        )
    if ATTR_SIGNATURE not in study.user_attrs:
        study.set_user_attr(ATTR_SIGNATURE, sig)
        study.set_user_attr(ATTR_SETUP, json.loads(json.dumps(setup, default=str)))
        study.set_user_attr(ATTR_METRIC, setup["metric"])
    if study.metric_names != [setup["metric"]]:  # also names studies created before imblab named them
        with quiet_optuna():  # set_metric_names is marked experimental
            # Optuna's plots and optuna-dashboard label the value axis with it ('Objective 0' without).
            study.set_metric_names([setup["metric"]])
    return study


@dataclass
class Session:
    """A study opened and checked for this experiment and data, ready to run trials."""

    study: optuna.Study
    storage_url: str | None
    metric: str
    direction: str
    specs: list[ParamSpec]
    setup: dict[str, Any] = field(default_factory=dict)
    on_stale: StaleTrials | None = None  # what happens to a dead worker's trial (shared storages)

    @property
    def storage_label(self) -> str:
        return storage_label(self.storage_url)


def check_worker_storage(spec: TuningSpec) -> None:
    if not spec.storage:
        raise ImblabError(
            "tune-worker joins a shared study: set tuning.storage to the URL the other processes use "
            "(e.g. tuning.storage=sqlite:///mlruns/optuna.db) and tuning.study_name"
        )


def open_session(
    experiment: Experiment, dataset: Dataset, worker: bool = False, tracking_uri: str | None = None
) -> Session:
    """Check the tuning settings, open the storage and the study: every bad input fails here.

    ``tracking_uri``: the MLflow store of this process's trial runs (to end a dead worker's)."""
    spec = experiment.tuning
    direction = check(spec)
    metric = spec.metric
    specs = parse_search_space(experiment.search_space, model_of(experiment.pipeline), experiment.model_name)
    if worker:
        check_worker_storage(spec)
    storage, on_stale = open_spec_storage(spec, tracking_uri)
    setup = study_setup(experiment, dataset, metric, direction)
    name = spec.study_name or default_study_name(experiment, dataset, metric, signature(setup))
    study = open_study(storage, str(name), direction, setup, spec, worker)
    if storage is not None:
        reap_dead_trials(study, on_stale)
    return Session(study, spec.storage or None, metric, direction, specs, setup, on_stale)


def open_spec_storage(
    spec: TuningSpec, tracking_uri: str | None = None
) -> tuple[optuna.storages.BaseStorage | None, StaleTrials | None]:
    """The storage of ``tuning.storage`` (None: in memory) with heartbeats, and the handler of its
    dead workers' trials (``tracking_uri``: where their MLflow runs are; may be set later)."""
    url = spec.storage or None
    if url is None:
        return None, None
    on_stale = StaleTrials(int(spec.retries))
    on_stale.tracking_uri = tracking_uri
    return open_storage(url, spec.heartbeat_interval, spec.grace_period, on_stale), on_stale
