"""Estimator and sampler parameters are checked when the pipeline is built, named by their config key."""

from __future__ import annotations

import lightgbm
import numpy as np
import pytest
from lightgbm.basic import LightGBMError

from imblab.config.compose import experiment_from_config
from imblab.config.params import LIGHTGBM_CONSTRAINTS, check_params
from imblab.errors import ImblabError
from tests.conftest import compose_config


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ["model.estimator.n_estimators=0"],
            r"^model\.estimator\.n_estimators must be an int in the range \[1, inf\), got 0$",
        ),
        (
            ["model.estimator.learning_rate=0"],
            r"^model\.estimator\.learning_rate must be a float in the range",
        ),
        (
            ["model.estimator.subsample=1.5"],
            r"^model\.estimator\.subsample must be .* \(0\.0, 1\.0\], got 1\.5",
        ),
        (
            ["+model.estimator.num_leaves=1"],
            r"^model\.estimator\.num_leaves must be an int in the range \[2,",
        ),
        (["model.estimator.n_estimators=abc"], r"n_estimators must be an int .*, got 'abc'"),
        (
            ["model=logreg", "model.estimator.C=-1"],
            r"^model\.estimator\.C must be a float in the range \(0\.0, inf\]",
        ),
        (
            ["model=random_forest", "model.estimator.max_features=2.5"],
            r"^model\.estimator\.max_features must be",
        ),
        (
            ["sampler=smote", "sampler.estimator.k_neighbors=0"],
            r"^sampler\.estimator\.k_neighbors must be an int",
        ),
        (
            ["sampler=smote_enn", "sampler.estimator.smote.k_neighbors=-1"],
            r"^sampler\.estimator\.smote\.k_neighbors",
        ),
        (["sampler=random_under", "+sampler.estimator.sampling_strategy=2"], r"sampling_strategy must be"),
        (
            ["preprocess/scaler=robust", "+preprocess.scaler.with_centering=maybe"],
            r"^preprocess\.scaler\.with_",
        ),
    ],
)
def test_invalid_parameters_fail_when_the_pipeline_is_built(overrides: list[str], message: str) -> None:
    with pytest.raises(ImblabError, match=message):
        experiment_from_config(compose_config("data=synthetic", *overrides))


def test_valid_defaults_and_unconstrained_estimators_pass() -> None:
    for model in ("lgbm", "logreg", "random_forest", "balanced_random_forest", "easy_ensemble"):
        experiment_from_config(compose_config("data=synthetic", f"model={model}"))
    check_params(None, "sampler.estimator")  # sampler=none
    check_params(object(), "model.estimator")  # not an estimator: nothing to check


def _lightgbm_fits(**params: object) -> bool:
    """Whether LightGBM itself accepts ``params`` (a 2-tree fit on 40 rows)."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 3)), np.arange(40) % 2
    model = lightgbm.LGBMClassifier(**{"n_estimators": 2, "verbose": -1, **params})
    try:
        model.fit(X, y)
    except (LightGBMError, ValueError):
        return False
    return True


@pytest.mark.parametrize(
    ("param", "refused", "accepted"),
    [
        ("n_estimators", 0, 1),
        ("learning_rate", 0.0, 1e-6),
        ("num_leaves", 1, 2),
        ("min_child_samples", -1, 0),
        ("min_child_weight", -1e-3, 0.0),
        ("min_split_gain", -1e-3, 0.0),
        ("subsample", 0.0, 1.0),
        ("colsample_bytree", 0.0, 1.0),
        ("reg_alpha", -1e-3, 0.0),
        ("reg_lambda", -1e-3, 0.0),
        ("subsample_for_bin", 0, 1),
    ],
)
def test_lightgbm_table_agrees_with_lightgbm(param: str, refused: object, accepted: object) -> None:
    """The written-down constraints refuse exactly what LightGBM refuses at the boundary."""
    assert param in LIGHTGBM_CONSTRAINTS
    assert not _lightgbm_fits(**{param: refused})
    with pytest.raises(ImblabError, match=f"model.estimator.{param} must be"):
        check_params(lightgbm.LGBMClassifier(**{param: refused}), "model.estimator")
    assert _lightgbm_fits(**{param: accepted})
    check_params(lightgbm.LGBMClassifier(**{param: accepted}), "model.estimator")
