"""Fitting one trial's model on one cached fold: any classifier, or LightGBM's faster native path.

A trainer's ``fit_predict(k, params)`` returns P(positive) for fold ``k``'s validation rows and, with
early stopping, the number of boosting rounds chosen (else None).
"""

from __future__ import annotations

import math
import threading
from typing import Any

import numpy as np
from sklearn.base import clone

from imblab.config.specs import EarlyStoppingSpec
from imblab.pipeline import positive_proba
from imblab.tuning.folds import Fold
from imblab.tuning.space import ParamSpec

# LightGBM parameters that shape the binned Dataset: searching one means rebuilding it per trial.
LGBM_DATASET_PARAMS = frozenset(
    {
        "max_bin",
        "max_bins",
        "max_bin_by_feature",
        "min_data_in_bin",
        "bin_construct_sample_cnt",
        "subsample_for_bin",
        "data_random_seed",
        "linear_tree",
        "enable_bundle",
        "use_missing",
        "zero_as_missing",
        "feature_pre_filter",
        "categorical_feature",
        "forcedbins_filename",
        "random_state",
        "seed",
        "class_weight",
        "objective",
    }
)


class SklearnTrainer:
    """Any classifier: a clone of the run's unfitted model with the trial's parameters, on the cached fold."""

    def __init__(self, model: Any, folds: list[Fold]) -> None:
        self.base, self.folds = model, folds

    def fit_predict(self, k: int, params: dict[str, Any]) -> tuple[np.ndarray, int | None]:
        fold = self.folds[k]
        model = clone(self.base).set_params(**params).fit(fold.X_fit, fold.y_fit)
        return positive_proba(model, fold.X_val), None


def _lgbm_threads(n_jobs: int | None) -> int:
    """``LGBMClassifier``'s n_jobs convention (None: physical cores; negative: joblib style)."""
    import joblib

    if n_jobs is None:
        return int(joblib.cpu_count(only_physical_cores=True))
    return max(int(joblib.cpu_count()) + 1 + n_jobs, 1) if n_jobs < 0 else int(n_jobs)


class _HalvesStopper:
    """LightGBM callback: best iteration on each validation half; stops when both have stalled."""

    def __init__(self, patience: int) -> None:
        self.patience = patience
        self.best = [-math.inf, -math.inf]
        self.best_iter = [0, 0]
        self.stalled = [False, False]

    def __call__(self, env: Any) -> None:
        import lightgbm as lgb

        for j, (_, _, value, higher_better) in enumerate(env.evaluation_result_list[:2]):
            score = value if higher_better else -value
            if self.stalled[j]:
                continue  # a half's choice is frozen once it stalls: it must not depend on the other half
            if score > self.best[j]:
                self.best[j], self.best_iter[j] = score, env.iteration + 1
            elif env.iteration + 1 - self.best_iter[j] >= self.patience:
                self.stalled[j] = True
        if all(self.stalled):
            raise lgb.callback.EarlyStopException(env.iteration, env.evaluation_result_list)


class LightGBMTrainer:
    """LightGBM via ``lgb.train`` on a per-fold ``Dataset`` built once (per thread) and reused by every trial.

    Parameters are translated as ``LGBMClassifier.fit`` does, so without early stopping a trial's
    predictions equal the run pipeline's, with one exception: the Dataset is built with
    ``feature_pre_filter=False`` so ``min_child_samples`` may vary per trial, while ``LGBMClassifier``
    drops columns that no split could use under its ``min_child_samples``. On data with
    near-constant columns (SECOM) that changes which columns ``colsample_bytree`` draws, as much as
    another seed would.
    """

    def __init__(self, model: Any, folds: list[Fold], early_stopping: EarlyStoppingSpec | None) -> None:
        self.base, self.folds = model, folds
        self.early_stopping = bool(early_stopping and early_stopping.enabled)
        self.es_metric = str(early_stopping.metric) if early_stopping else ""
        self.patience = int(early_stopping.patience) if early_stopping else 0
        self._local = threading.local()
        self._dataset_params = {**self.train_params({})[0], "feature_pre_filter": False}

    @staticmethod
    def applies(model: Any, specs: list[ParamSpec]) -> bool:
        """A LightGBM model whose searched parameters leave the binned Dataset unchanged."""
        lightgbm = type(model).__module__.split(".")[0] == "lightgbm"
        return lightgbm and not any(s.name in LGBM_DATASET_PARAMS for s in specs)

    def train_params(self, params: dict[str, Any]) -> tuple[dict[str, Any], int]:
        """``lgb.train`` parameters and rounds, translated as ``LGBMClassifier.fit`` does."""
        p = clone(self.base).set_params(**params).get_params()
        rounds = int(p.pop("n_estimators"))
        for key in ("class_weight", "importance_type"):
            p.pop(key, None)
        p["objective"] = p.get("objective") or "binary"
        p["num_threads"] = _lgbm_threads(p.pop("n_jobs", None))
        p["metric"] = self.es_metric if self.early_stopping else "None"
        return p, rounds

    def _datasets(self, k: int) -> tuple[Any, Any, Any]:
        import lightgbm as lgb

        cache = self._local.__dict__.setdefault("sets", {})
        if k not in cache:
            fold = self.folds[k]
            weight = None
            class_weight = self.base.get_params().get("class_weight")
            if class_weight is not None:
                from sklearn.utils.class_weight import compute_sample_weight

                weight = compute_sample_weight(class_weight, fold.y_fit)
            params = self._dataset_params
            train = lgb.Dataset(fold.X_fit, fold.y_fit, weight=weight, params=params, free_raw_data=False)
            train.construct()
            halves: list[Any] = [None, None]
            if self.early_stopping and fold.halves is not None:
                for j, rows in enumerate(fold.halves):
                    halves[j] = lgb.Dataset(
                        fold.X_val[rows],
                        fold.y_val[rows],
                        reference=train,
                        params=params,
                        free_raw_data=False,
                    ).construct()
            cache[k] = (train, *halves)
        return cache[k]

    def fit_predict(self, k: int, params: dict[str, Any]) -> tuple[np.ndarray, int | None]:
        import lightgbm as lgb

        fold = self.folds[k]
        train, half_a, half_b = self._datasets(k)
        p, rounds = self.train_params(params)
        if not self.early_stopping:
            booster = lgb.train(p, train, num_boost_round=rounds)
            return booster.predict(fold.X_val), None
        assert fold.halves is not None
        stopper = _HalvesStopper(self.patience)
        booster = lgb.train(
            p,
            train,
            num_boost_round=rounds,
            valid_sets=[half_a, half_b],
            valid_names=["a", "b"],
            callbacks=[stopper],
        )
        (a, b), (best_a, best_b) = fold.halves, stopper.best_iter
        proba = np.empty(len(fold.y_val))
        proba[a] = booster.predict(fold.X_val[a], num_iteration=best_b)  # A scored where B was best
        proba[b] = booster.predict(fold.X_val[b], num_iteration=best_a)
        return proba, round((best_a + best_b) / 2)
