"""Every YAML in ``conf/`` composes and instantiates (no fitting), the way lightning-hydra-template
tests its configs: a new variant file that does not build fails here, not in a user's run."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from imblab.app.hydra import conf_dir
from imblab.config.compose import experiment_from_config
from imblab.config.specs import Experiment
from imblab.errors import ImblabError
from tests.conftest import compose_config

CONF = conf_dir()


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


def test_every_group_has_options() -> None:
    for group in ("data", "split", "preprocess", "preprocess/scaler", "sampler", "model", "threshold"):
        assert options(group), group
    assert set(options("evaluation")) == {"holdout", "repeated_cv", "time_cv"}
    assert set(options("calibration")) == {"none", "sigmoid", "isotonic"}
    assert set(options("tuning/pruner")) == {"percentile", "median", "wilcoxon", "none"}


@pytest.mark.parametrize(
    ("group", "option"),
    [
        (g, o)
        for g in (
            "split",
            "evaluation",
            "preprocess",
            "preprocess/scaler",
            "sampler",
            "model",
            "calibration",
            "threshold",
            "tracking",
        )
        for o in options(g)
    ],
)
def test_option_composes_into_an_experiment(group: str, option: str) -> None:
    overrides = [f"{group}={option}"]
    if (group, option) in {("sampler", "class_weight")}:
        overrides.append("model=logreg")
    exp = experiment_from_config(compose_config("data=synthetic", *overrides))
    assert isinstance(exp, Experiment)
    assert exp.pipeline.steps[-1][0] == "model"


@pytest.mark.parametrize("pruner", options("tuning/pruner"))
def test_every_pruner_builds(pruner: str) -> None:
    import optuna

    exp = experiment_from_config(compose_config("data=synthetic", "tuning=optuna", f"tuning/pruner={pruner}"))
    assert exp.tuning.enabled and isinstance(exp.tuning.pruner, optuna.pruners.BasePruner)


def test_tuning_none_is_off() -> None:
    assert not experiment_from_config(compose_config("data=synthetic", "tuning=none")).tuning.enabled


@pytest.mark.parametrize("recipe", options("experiment"))
def test_experiment_recipes_compose(recipe: str) -> None:
    exp = experiment_from_config(compose_config(f"experiment={recipe}"))
    assert exp.tracking.experiment == recipe


def test_data_options_load(secom_dir: Path, tmp_path: Path) -> None:
    """Each data loader builds a validated Dataset (SECOM from the shared copy, a table from a file)."""
    table = tmp_path / "t.csv"
    pd.DataFrame({"a": [1.0, 2, 3, 4, 5, 6], "y": [0, 1, 0, 1, 0, 0]}).to_csv(table, index=False)
    extra = {"table": [f"data.path={table}", "data.target=y"]}
    for option in options("data"):
        exp = experiment_from_config(compose_config(f"data={option}", *extra.get(option, [])))
        ds = exp.load_data()
        assert len(ds.y) > 0 and set(ds.y.unique()) == {0, 1}, option


def test_scaler_group_reaches_the_pipeline() -> None:
    def scaler(option: str) -> str | None:
        steps = dict(experiment_from_config(compose_config(f"preprocess/scaler={option}")).pipeline.steps)
        return type(steps["scale"]).__name__ if "scale" in steps else None

    assert scaler("standard") == "StandardScaler"
    assert scaler("robust") == "RobustScaler"
    assert scaler("none") is None


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("cv.folds=abc", "cv.folds must be a whole number"),
        ("cv.folds=1", "cv.folds must be a whole number >= 2"),
        ("split.test_size=1.5", "split.test_size must be in"),
        ("+cv.foldz=3", "unknown cv key"),
        ("tracking.log_model=maybe", "tracking.log_model must be true or false"),
        ("tuning=optuna tuning.pruner=median", "use tuning/pruner=median"),
        (
            "data=table",
            r"missing required config values: \['data.path', 'data.target'\]; .*: data.path=\.\.\. ",
        ),
        ("evaluation=repeated_cv evaluation.folds=1", "evaluation.folds must be a whole number >= 2"),
        ("evaluation=repeated_cv evaluation.kind=time", "set evaluation.repeats=1"),
        ("evaluation=repeated_cv evaluation.kind=random", "evaluation.kind must be one of"),
        ("evaluation=repeated_cv tuning=optuna", "tune with evaluation=holdout"),
        ("calibration=sigmoid calibration.method=platt", "calibration.method must be one of"),
        ("calibration=isotonic calibration.folds=1", "calibration.folds must be a whole number >= 2"),
    ],
)
def test_bad_values_are_clear_errors(override: str, message: str) -> None:
    with pytest.raises(ImblabError, match=message):
        experiment_from_config(compose_config("data=synthetic", *override.split()))
