"""Bad input: a clear error before any trial runs (most before any data is read)."""

from __future__ import annotations

import pytest
from hydra.errors import MissingConfigException

from imblab.errors import ImblabError
from imblab.protocol.split import holdout_split
from imblab.tuning.run import tune
from imblab.tuning.settings import check
from imblab.tuning.space import parse_search_space
from tests.conftest import compose_config
from tests.tuning.common import TUNE, experiment


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["tuning.metric=pr_aux"], r"unknown tuning.metric='pr_aux'; use one of \[.*'pr_auc'"),
        (["tuning.metric=threshold"], "not a quality measure"),
        (["tuning.direction=up"], "tuning.direction must be maximize, minimize or null"),
        (["tuning.pruner.percentile=120"], r"tuning pruner \(optuna.pruners.PercentilePruner\): Percentile"),
        (["+tuning.pruner.patience=3"], "unexpected keyword argument 'patience'"),
        (["tuning.pruner._target_=builtins.dict"], "tuning.pruner must build an Optuna pruner"),
        (["tuning.n_trials=0"], "tuning.n_trials must be a whole number >= 1"),
        (["tuning.timeout=-5"], "tuning.timeout must be > 0 seconds or null"),
        (["tuning.n_jobs=0"], r"tuning.n_jobs \(threads; -1 = one per CPU\) must be a whole number"),
        (["tuning.early_stopping.metric=pr_auc"], "tuning.early_stopping.metric must be one of"),
        (["model.search_space.num_leaves.low=32", "model.search_space.num_leaves.high=32"], "empty range"),
        (["model.search_space.num_leaves.low=64", "model.search_space.num_leaves.high=16"], "inverted range"),
        (["model.search_space.reg_alpha.low=0"], "log range needs low > 0"),
        (["model.search_space.max_depth.type=integer"], "type must be int, float or categorical"),
        (["+model.search_space.num_leavs={type: int, low: 2, high: 8}"], "has no parameter 'num_leavs'"),
        (["~model.search_space"], "of model 'lgbm' is empty: there is nothing to tune"),
        (["tuning.storage=optuna.db"], "is not a storage URL"),
        (["tuning.storage=nosuchdb://host/x"], "cannot open the Optuna storage nosuchdb://host/x"),
        (["tuning.storage=postgresql://imblab:s3cret@127.0.0.1:9/optuna"], "cannot open the Optuna storage"),
        (
            ["tuning.heartbeat_interval=0"],
            r"tuning.heartbeat_interval \(seconds; null = no heartbeat\) must be",
        ),
        (
            ["tuning.grace_period=60"],
            r"tuning.grace_period=60 must be longer than tuning.heartbeat_interval=60",
        ),
        (
            ["tuning.heartbeat_interval=null", "tuning.grace_period=30"],
            "tuning.grace_period needs tuning.heart",
        ),
        (["tuning.storage=journal:x.log", "tuning.grace_period=300"], "grace_period applies to SQL storages"),
        (["tuning.retries=-1"], r"tuning.retries \(0 = never retry a dead worker's trial\) must be a whole"),
    ],
)
def test_bad_tuning_input_fails_before_any_trial(overrides: list[str], message: str) -> None:
    with pytest.raises(ImblabError, match=message) as info:
        exp = experiment(*overrides)  # a pruner that cannot be built fails here
        dataset = exp.load_data()
        tune(exp, dataset, holdout_split(dataset, exp.split))
    assert "s3cret" not in str(info.value)


@pytest.mark.parametrize(
    "overrides",
    [
        ["tuning.metric=nope"],
        ["tuning.folds=1"],
        ["tuning.early_stopping.patience=0"],
        ["~model.search_space"],
    ],
)
def test_settings_and_search_space_are_checked_without_data(overrides: list[str]) -> None:
    exp = experiment(*overrides)
    with pytest.raises(ImblabError):
        check(exp.tuning)
        parse_search_space(exp.search_space, exp.pipeline.named_steps["model"], exp.model_name)


def test_an_unknown_pruner_lists_the_known_ones() -> None:
    with pytest.raises(MissingConfigException, match=r"tuning/pruner/hyperband") as info:
        compose_config(*TUNE, "tuning/pruner=hyperband")
    assert all(name in str(info.value) for name in ("median", "none", "percentile", "wilcoxon"))
