"""One trial: its parameters fitted fold by fold on the cached folds, scored, reported to the pruner."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
import optuna
from optuna.trial import TrialState
from sklearn.metrics import average_precision_score, roc_auc_score

from imblab.errors import ImblabError
from imblab.metrics.core import threshold_metrics
from imblab.metrics.costs import Costs
from imblab.metrics.names import THRESHOLD_FREE_METRICS
from imblab.thresholds import ThresholdPolicy
from imblab.tuning.attrs import (
    ATTR_ERROR,
    ATTR_FOLD_SCORES,
    ATTR_N_ESTIMATORS,
    ATTR_SURPLUS,
    ATTR_WORKER,
    error_attr,
)
from imblab.tuning.folds import Fold
from imblab.tuning.space import ParamSpec
from imblab.tuning.workers import worker_id


class Trainer(Protocol):
    def fit_predict(self, k: int, params: dict[str, Any]) -> tuple[np.ndarray, int | None]: ...


class FoldScorer:
    """The tuning metric of one validation fold (see ``imblab.tuning`` for threshold metrics)."""

    def __init__(
        self, metric: str, policy: ThresholdPolicy | None = None, costs: Costs | None = None
    ) -> None:
        self.metric, self.policy, self.costs = metric, policy, costs
        if metric not in THRESHOLD_FREE_METRICS and (policy is None or costs is None):
            raise ValueError(
                f"tuning.metric={metric} is measured at a threshold: it needs the policy and costs"
            )

    def __call__(self, y: np.ndarray, proba: np.ndarray) -> float:
        if self.metric == "pr_auc":
            return float(average_precision_score(y, proba))
        if self.metric == "roc_auc":
            return float(roc_auc_score(y, proba))
        if self.metric == "brier":
            return float(np.mean((proba - y) ** 2))
        assert self.policy is not None and self.costs is not None
        threshold = self.policy.choose(y, proba).threshold
        return float(threshold_metrics(y, proba, threshold, self.costs)[self.metric])


def reports_fold_values(pruner: optuna.pruners.BasePruner | None) -> bool:
    """Whether a trial reports each fold's own score (step = fold) rather than the running mean.

    ``WilcoxonPruner`` pairs the trial's per-fold scores with the best trial's, so it needs the
    fold's own value; every other pruner compares running means across trials at the same fold.
    Without pruning nothing compares them, and the fold's own score is the more telling record.
    """
    return pruner is None or isinstance(pruner, optuna.pruners.WilcoxonPruner | optuna.pruners.NopPruner)


class _Surplus(Exception):
    """The study already had n_trials trials when this one started."""


class Objective:
    """Cross-validate one trial's parameters on the cached folds, reporting each fold to the pruner."""

    def __init__(
        self,
        specs: list[ParamSpec],
        trainer: Trainer,
        folds: list[Fold],
        scorer: FoldScorer,
        n_trials: int,
        report_fold_values: bool,
        on_start: Callable[[optuna.Trial], None] | None = None,
    ) -> None:
        """``on_start``: called as each trial that runs begins (it opens the trial's MLflow run)."""
        self.specs, self.trainer, self.folds, self.scorer = specs, trainer, folds, scorer
        self.on_start = on_start
        self.report_fold_values = report_fold_values
        self.n_trials = n_trials
        self.worker = worker_id()

    def _is_surplus(self, trial: optuna.Trial) -> bool:
        live = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.WAITING)
        earlier = [t for t in trial.study.get_trials(deepcopy=False, states=live) if t.number < trial.number]
        return len(earlier) >= self.n_trials

    def __call__(self, trial: optuna.Trial) -> float:
        trial.set_user_attr(ATTR_WORKER, self.worker)
        if self._is_surplus(trial):
            trial.set_user_attr(ATTR_SURPLUS, True)
            trial.study.stop()
            raise _Surplus(f"the study already holds {self.n_trials} trials")
        if ATTR_FOLD_SCORES in trial.user_attrs:  # a retried trial starts with its first run's attrs
            trial.set_user_attr(ATTR_FOLD_SCORES, [])
        if self.on_start is not None:
            self.on_start(trial)
        params = {spec.name: spec.suggest(trial) for spec in self.specs}
        scores: list[float] = []
        rounds: list[int] = []
        try:
            for k, fold in enumerate(self.folds):
                proba, n_rounds = self.trainer.fit_predict(k, params)
                score = self.scorer(fold.y_val, proba)
                if not math.isfinite(score):
                    raise ImblabError(f"tuning.metric={self.scorer.metric} is undefined (NaN) on fold {k}")
                scores.append(score)
                if n_rounds is not None:
                    rounds.append(n_rounds)
                trial.set_user_attr(ATTR_FOLD_SCORES, scores)
                trial.report(score if self.report_fold_values else float(np.mean(scores)), k)
                if k + 1 < len(self.folds) and trial.should_prune():
                    raise optuna.TrialPruned(f"pruned after fold {k + 1}/{len(self.folds)}")
        except optuna.TrialPruned:
            raise
        except Exception as exc:
            trial.set_user_attr(ATTR_ERROR, error_attr(exc))
            raise
        if rounds:
            trial.set_user_attr(ATTR_N_ESTIMATORS, round(float(np.mean(rounds))))
        return float(np.mean(scores))
