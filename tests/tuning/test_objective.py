"""A trial: what is reported to the pruner, the metric at the policy's threshold, threads, other models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

from imblab.metrics.core import threshold_metrics
from imblab.pipeline import positive_proba, with_model_params
from imblab.tuning.attrs import ATTR_FOLD_SCORES
from imblab.tuning.folds import fold_positions
from imblab.tuning.objective import reports_fold_values
from imblab.tuning.run import run_trials, tune
from imblab.tuning.study import open_session
from tests.tuning.common import LOGREG, load_study, refit_params, setup

PRUNERS = {
    "wilcoxon": optuna.pruners.WilcoxonPruner,
    "median": optuna.pruners.MedianPruner,
    "percentile": optuna.pruners.PercentilePruner,
    "none": optuna.pruners.NopPruner,
}


@pytest.mark.parametrize("pruner", sorted(PRUNERS))
def test_each_fold_is_reported_to_the_pruner(pruner: str) -> None:
    exp, dataset, split = setup(f"tuning/pruner={pruner}", "tuning.n_trials=4")
    session = open_session(exp, dataset)
    run_trials(session, dataset, split, exp)
    assert isinstance(session.study.pruner, PRUNERS[pruner])
    for trial in session.study.trials:
        scores = trial.user_attrs[ATTR_FOLD_SCORES]
        reported = [trial.intermediate_values[k] for k in range(len(scores))]
        if pruner in ("median", "percentile"):  # running mean: what they compare across trials
            assert reported == pytest.approx(np.cumsum(scores) / np.arange(1, len(scores) + 1))
        else:  # the fold's own score at step = fold index: what WilcoxonPruner pairs
            assert reported == pytest.approx(scores)
        if trial.state == TrialState.COMPLETE:
            assert trial.value == pytest.approx(np.mean(scores)) and len(scores) == 3


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
def test_what_is_reported_follows_from_the_pruners_class() -> None:
    assert reports_fold_values(optuna.pruners.WilcoxonPruner())
    assert reports_fold_values(optuna.pruners.NopPruner()) and reports_fold_values(None)
    for other in (optuna.pruners.PercentilePruner(25.0), optuna.pruners.HyperbandPruner()):
        assert not reports_fold_values(other)


def test_a_pruners_parameters_are_overrides() -> None:
    exp, dataset, _ = setup("tuning.pruner.percentile=10", "tuning.pruner.n_startup_trials=3")
    pruner = open_session(exp, dataset).study.pruner
    assert isinstance(pruner, optuna.pruners.PercentilePruner)
    assert pruner._percentile == 10.0 and pruner._n_startup_trials == 3


def test_a_seeded_single_threaded_study_is_reproducible() -> None:
    exp, dataset, split = setup("tuning.n_trials=4")
    assert tune(exp, dataset, split) == tune(exp, dataset, split)


def test_parallel_threads_and_a_non_lightgbm_model_tune(tmp_path: Path) -> None:
    storage = f"journal:{tmp_path / 'optuna.log'}"
    exp, dataset, split = setup(
        "tuning.n_jobs=2", "tuning.n_trials=4", f"tuning.storage={storage}", "tuning.study_name=threads"
    )
    params = tune(exp, dataset, split)
    study = load_study(storage, "threads")
    assert len([t for t in study.trials if t.state != TrialState.FAIL]) == 4
    assert params == refit_params(study) and set(params) == set(exp.search_space)

    exp, dataset, split = setup(
        f"tuning.storage={storage}", "tuning.study_name=logreg", "tuning.n_trials=3", base=LOGREG
    )
    params = tune(exp, dataset, split)
    assert set(params) == {"C"} and params == refit_params(load_study(storage, "logreg"))


def test_a_threshold_metric_is_minimised_at_the_policys_threshold() -> None:
    exp, dataset, split = setup(
        "tuning.metric=expected_cost",
        "threshold=min_cost",
        "tuning.n_trials=3",
        "tuning.early_stopping.enabled=false",  # so the run's pipeline reproduces each fold's scores
    )
    session = open_session(exp, dataset)
    assert session.direction == "minimize"
    run_trials(session, dataset, split, exp)
    study = session.study
    assert study.direction == optuna.study.StudyDirection.MINIMIZE
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    assert study.best_value == min(t.value for t in complete)  # type: ignore[type-var]
    # Each fold's score is the expected cost at the threshold min_cost picks on that fold's scores.
    X, y = dataset.X.iloc[split.train], dataset.y.to_numpy()[split.train]
    trial = complete[0]
    expected = []
    for tr, va in fold_positions(y, exp):
        fitted = with_model_params(exp.pipeline, trial.params).fit(X.iloc[tr], y[tr])
        proba = positive_proba(fitted, X.iloc[va])
        threshold = exp.policy.choose(y[va], proba).threshold
        expected.append(threshold_metrics(y[va], proba, threshold, exp.costs)["expected_cost"])
    assert trial.user_attrs[ATTR_FOLD_SCORES] == pytest.approx(expected, abs=1e-9)
