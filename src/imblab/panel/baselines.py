"""The two non-neural panel models: ``persistence`` (the floor) and ``lgbm_lags`` (LightGBM on lag features).

Both follow the panel model contract: ``fit(train, val) -> self`` on :class:`Examples` of disjoint persons,
``predict(examples) -> PanelPrediction`` with the wage in original units and (n, K) class logits.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from imblab.errors import ImblabError
from imblab.panel.dataset import PanelPrediction
from imblab.panel.examples import Examples
from imblab.panel.tabular import lag_features

CLASS_BALANCES = ("none", "class_weight")

# LightGBM parameters (native names or their aliases); n_estimators is the cap that early stopping cuts.
# One thread: these data are small, and LightGBM's spinning threads slow down badly on a busy machine.
DEFAULT_LGBM_PARAMS: dict[str, Any] = {
    "n_estimators": 2000,
    "learning_rate": 0.05,
    "num_leaves": 31,
    "min_child_samples": 20,
    "subsample": 0.8,
    "subsample_freq": 1,
    "colsample_bytree": 0.8,
    "num_threads": 1,
    "verbose": -1,
}


class Persistence:
    """This wave's wage and class are the last earlier wave's: the honest floor every model must beat.

    The logits are the log of the last class's one-hot smoothed by ``epsilon`` (``(1 - eps) * onehot +
    eps / K``), so log-loss stays finite and an offset policy can still move decisions.
    """

    def __init__(self, epsilon: float = 1e-3) -> None:
        if not 0 < epsilon < 1:
            raise ImblabError(f"persistence epsilon must be in (0, 1), got {epsilon}.")
        self.epsilon = epsilon

    def fit(self, train: Examples, val: Examples | None = None) -> Persistence:
        """Nothing to learn; kept so every panel model is fitted and called the same way."""
        return self

    def predict(self, examples: Examples) -> PanelPrediction:
        k = examples.n_classes
        probs = np.full((len(examples), k), self.epsilon / k)
        probs[np.arange(len(examples)), examples.last_cls] += 1 - self.epsilon
        return PanelPrediction(wage=examples.last_reg.copy(), logits=np.log(probs))


class LGBMLags:
    """A LightGBM regressor (wage, L2) and classifier (class, multi-logloss) on :func:`lag_features`.

    ``regressor_params`` / ``classifier_params`` override :data:`DEFAULT_LGBM_PARAMS` (LightGBM names).
    ``class_balance="class_weight"`` weights each class by ``n / (K * n_class)`` of the training examples,
    in training and in the validation loss. Both models stop early on the validation persons
    (``early_stopping_rounds`` without improvement), so this model's validation scores are slightly
    optimistic; the test persons are never seen. Without ``val`` all ``n_estimators`` rounds are trained.
    """

    def __init__(
        self,
        regressor_params: dict[str, Any] | None = None,
        classifier_params: dict[str, Any] | None = None,
        class_balance: str = "none",
        early_stopping_rounds: int = 50,
        seed: int = 0,
    ) -> None:
        if class_balance not in CLASS_BALANCES:
            raise ImblabError(
                f"lgbm_lags class_balance must be one of {list(CLASS_BALANCES)}, got {class_balance!r}."
            )
        self.regressor_params = dict(regressor_params or {})
        self.classifier_params = dict(classifier_params or {})
        self.class_balance = class_balance
        self.early_stopping_rounds = early_stopping_rounds
        self.seed = seed

    def fit(self, train: Examples, val: Examples | None = None) -> LGBMLags:
        k = train.n_classes
        counts = np.bincount(train.y_cls, minlength=k)
        if (counts == 0).any():
            absent = [train.class_names[c] for c in np.flatnonzero(counts == 0)]
            raise ImblabError(
                f"lgbm_lags: classes {absent} have no training example; use more training persons (or a "
                "panel where every class occurs)."
            )
        class_weight = len(train) / (k * counts) if self.class_balance == "class_weight" else np.ones(k)
        X, self.feature_names_ = lag_features(train)
        stop = val is not None and len(val) > 0
        X_val = lag_features(val)[0] if stop else None
        objective = {"objective": "multiclass", "num_class": k} if k > 2 else {"objective": "binary"}
        self.regressor_ = self._boost(
            {"objective": "regression", **self.regressor_params},
            (X, train.y_reg, None),
            (X_val, val.y_reg, None) if stop else None,
        )
        self.classifier_ = self._boost(
            {**objective, **self.classifier_params},
            (X, train.y_cls, class_weight[train.y_cls]),
            (X_val, val.y_cls, class_weight[val.y_cls]) if stop else None,
        )
        return self

    def _boost(self, params: dict[str, Any], train: tuple, val: tuple | None) -> Any:
        """One LightGBM booster from (X, y, weight) triples, early-stopped on ``val`` when given."""
        import lightgbm as lgb  # deferred: importing LightGBM is slow and only this model needs it

        params = {**DEFAULT_LGBM_PARAMS, "seed": self.seed, **params}
        rounds = int(params.pop("n_estimators"))
        train_set = lgb.Dataset(train[0], train[1], weight=train[2])
        if val is None:
            return lgb.train(params, train_set, num_boost_round=rounds)
        val_set = lgb.Dataset(val[0], val[1], weight=val[2], reference=train_set)
        callbacks = [lgb.early_stopping(self.early_stopping_rounds, verbose=False)]
        return lgb.train(params, train_set, rounds, valid_sets=[val_set], callbacks=callbacks)

    def predict(self, examples: Examples) -> PanelPrediction:
        X, _ = lag_features(examples)
        wage = self.regressor_.predict(X, num_iteration=self.regressor_.best_iteration or None)
        raw = self.classifier_.predict(
            X, num_iteration=self.classifier_.best_iteration or None, raw_score=True
        )
        # Binary LightGBM gives one margin r: logits (0, r) have the same softmax (sigmoid of r).
        logits = raw if raw.ndim == 2 else np.column_stack([np.zeros_like(raw), raw])
        return PanelPrediction(wage=wage, logits=logits)
