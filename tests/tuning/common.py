"""Shared setup of the tuning tests: a tiny LightGBM search on synthetic data (~0.1 s per trial)."""

from __future__ import annotations

import os
import sys
from typing import Any

import optuna
from mlflow.tracking import MlflowClient

from imblab.config.compose import experiment_from_config
from imblab.config.specs import Experiment
from imblab.data.dataset import Dataset
from imblab.protocol.split import Split, holdout_split
from imblab.tuning.attrs import ATTR_N_ESTIMATORS
from imblab.tuning.storage import open_storage
from tests.conftest import FAST, REPO, compose_config

# FAST with a small LightGBM search space around its 40 trees, so a trial takes ~0.1 s.
TUNE = (
    *FAST,
    "tuning=optuna",
    "tuning.progress_bar=false",
    "model.search_space.n_estimators.low=10",
    "model.search_space.n_estimators.high=60",
)
# The same data and folds with a scikit-learn model (logistic regression, C searched), cv.folds=5.
LOGREG = (*FAST[:-3], "model=logreg", "tuning=optuna", "tuning.progress_bar=false")
IMBLAB = [sys.executable, "-m", "imblab"]


def experiment(*overrides: str, base: tuple[str, ...] = TUNE) -> Experiment:
    """The typed experiment of ``imblab train <base> <overrides>``."""
    return experiment_from_config(compose_config(*base, *overrides))


def setup(*overrides: str, base: tuple[str, ...] = TUNE) -> tuple[Experiment, Dataset, Split]:
    exp = experiment(*overrides, base=base)
    dataset = exp.load_data()
    return exp, dataset, holdout_split(dataset, exp.split)


def load_study(storage: str, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=open_storage(storage))


def refit_params(study: optuna.Study) -> dict[str, Any]:
    """What the refit should get, worked out from the trials: the best COMPLETE trial's parameters."""
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    sign = 1 if study.direction == optuna.study.StudyDirection.MAXIMIZE else -1
    best = max(complete, key=lambda t: sign * t.value)  # type: ignore[operator]
    params = dict(best.params)
    if ATTR_N_ESTIMATORS in best.user_attrs:
        params["n_estimators"] = best.user_attrs[ATTR_N_ESTIMATORS]
    return params


def trial_runs(uri: str, parent: str) -> list:  # type: ignore[type-arg]
    client = MlflowClient(uri)
    run = client.get_run(parent)
    return client.search_runs(
        [run.info.experiment_id], f"tags.mlflow.parentRunId = '{parent}'", max_results=1000
    )


def env() -> dict[str, str]:
    """The environment of an ``imblab`` subprocess: this checkout's sources, no inherited MLflow store."""
    out = dict(os.environ)
    out.pop("MLFLOW_TRACKING_URI", None)
    out["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO / "src"), out.get("PYTHONPATH")) if p)
    return out
