"""The fast path is the run's pipeline; early stopping never uses a row's own label."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone

from imblab.pipeline import model_of, positive_proba, with_model_params
from imblab.protocol.cv import cv_folds
from imblab.tuning.folds import Fold, prepare_folds
from imblab.tuning.space import parse_search_space
from imblab.tuning.trainers import LightGBMTrainer, SklearnTrainer
from tests.tuning.common import LOGREG, setup


@pytest.mark.parametrize("sampler", ["smote", "class_weight", "smote_enn"])
def test_cached_folds_and_lightgbm_datasets_reproduce_the_pipeline(sampler: str) -> None:
    exp, dataset, split = setup(
        f"sampler={sampler}", "data.missing_rate=0.05", "tuning.early_stopping.enabled=false"
    )
    model = model_of(exp.pipeline)
    specs = parse_search_space(exp.search_space, model, exp.model_name)
    assert LightGBMTrainer.applies(model, specs)
    trainer = LightGBMTrainer(model, prepare_folds(dataset, split, exp, False), None)
    X, y = dataset.X.iloc[split.train], dataset.y.to_numpy()[split.train]
    for params in (
        {"num_leaves": 20, "min_child_samples": 15, "n_estimators": 30},
        {"min_child_samples": 40},
    ):
        pipeline = with_model_params(exp.pipeline, params)
        for k, (tr, va) in enumerate(cv_folds(y, exp.cv)):
            expected = clone(pipeline).fit(X.iloc[tr], y[tr]).predict_proba(X.iloc[va])[:, 1]
            proba, rounds = trainer.fit_predict(k, params)
            np.testing.assert_allclose(proba, expected, rtol=0, atol=1e-12)
            assert rounds is None


def test_any_other_model_is_a_clone_of_the_pipelines_with_the_trials_parameters() -> None:
    exp, dataset, split = setup("model.estimator.max_iter=777", base=LOGREG)
    model = model_of(exp.pipeline)
    assert not LightGBMTrainer.applies(model, parse_search_space(exp.search_space, model, exp.model_name))
    trainer = SklearnTrainer(model, prepare_folds(dataset, split, exp, False))
    X, y = dataset.X.iloc[split.train], dataset.y.to_numpy()[split.train]
    for k, (tr, va) in enumerate(cv_folds(y, exp.cv, folds=exp.tuning.folds)):
        fitted = with_model_params(exp.pipeline, {"C": 0.05}).fit(X.iloc[tr], y[tr])
        proba, rounds = trainer.fit_predict(k, {"C": 0.05})
        np.testing.assert_allclose(proba, positive_proba(fitted, X.iloc[va]), rtol=0, atol=1e-12)
        assert rounds is None
    # The pipeline's own model is never fitted or changed; configured values carry over to trials.
    assert model.get_params()["C"] == 1.0 and not hasattr(model, "coef_")
    assert model.get_params()["max_iter"] == 777


def test_early_stopping_scores_each_half_at_the_iteration_chosen_on_the_other() -> None:
    exp, dataset, split = setup("data.n_samples=1200", "model.estimator.n_estimators=300")
    folds = prepare_folds(dataset, split, exp, True)
    params = {"n_estimators": 300, "learning_rate": 0.3}
    model, es = model_of(exp.pipeline), exp.tuning.early_stopping
    proba, rounds = LightGBMTrainer(model, folds, es).fit_predict(0, params)
    assert rounds is not None and rounds < 300  # stopped early
    # Scramble the labels of half A: the scores of A's rows must not move (their iteration was
    # chosen on B); B's rows may, since A's labels chose theirs.
    a, _ = folds[0].halves  # type: ignore[misc]
    rng = np.random.default_rng(0)
    scrambled = folds[0].y_val.copy()
    scrambled[a] = rng.permutation(scrambled[a])
    scrambled[a[:3]] = 1 - scrambled[a[:3]]
    changed = [
        Fold(f.X_fit, f.y_fit, f.X_val, scrambled if i == 0 else f.y_val, f.halves)
        for i, f in enumerate(folds)
    ]
    again, _ = LightGBMTrainer(model, changed, es).fit_predict(0, params)
    np.testing.assert_array_equal(again[a], proba[a])
