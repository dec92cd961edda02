"""The study: resume, the n_trials budget across processes, dead workers, refusing another setup."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from imblab.errors import ImblabError
from imblab.tuning.attrs import ATTR_SURPLUS, ATTR_WORKER
from imblab.tuning.run import run_trials, tune
from imblab.tuning.study import open_session
from imblab.tuning.workers import retried_from
from tests.tuning.common import load_study, refit_params, setup


def test_a_resumed_study_continues_its_trial_count(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    common = (f"tuning.storage={storage}", "tuning.study_name=resume")
    exp, dataset, split = setup(*common, "tuning.n_trials=3")
    first = tune(exp, dataset, split)
    assert len(load_study(storage, "resume").trials) == 3
    assert first == refit_params(load_study(storage, "resume"))
    assert load_study(storage, "resume").metric_names == ["pr_auc"]  # optuna-dashboard's axis label

    exp, dataset, split = setup(*common, "tuning.n_trials=5")
    second = tune(exp, dataset, split)
    study = load_study(storage, "resume")
    assert [t.number for t in study.trials] == [0, 1, 2, 3, 4]
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in study.trials)
    # The resumed sampler did not replay the first run's random start-up trials.
    assert study.trials[3].params != study.trials[0].params
    assert second == refit_params(study)  # the best over both runs' trials

    again = tune(exp, dataset, split)  # the study is full: no new trial, same best
    assert len(load_study(storage, "resume").trials) == 5 and again == second


@pytest.mark.parametrize("retries", [0, 2])
def test_trials_of_dead_workers_are_failed_and_running_ones_fill_the_budget(
    tmp_path: Path, retries: int
) -> None:
    storage = f"journal:{tmp_path / 'optuna.log'}"
    exp, dataset, split = setup(
        f"tuning.storage={storage}",
        "tuning.study_name=shared",
        "tuning.n_trials=2",
        f"tuning.retries={retries}",
    )
    session = open_session(exp, dataset)
    host = socket.gethostname()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    for worker in (f"{host}:{dead.pid}", f"{host}:1", f"{host}:1"):  # pid 1 is alive: a live worker
        trial = session.study.ask()
        trial.set_user_attr(ATTR_WORKER, worker)
    # Opening the study again reaps the dead worker's trial (and queues it again when retries > 0).
    session = open_session(exp, dataset)
    states = [TrialState.FAIL, TrialState.RUNNING, TrialState.RUNNING]
    assert [t.state for t in session.study.trials] == states + [TrialState.WAITING] * (retries > 0)
    if retries:
        assert retried_from(session.study.trials[-1]) == 0
        assert session.study.trials[-1].user_attrs[ATTR_WORKER] == f"{host}:{dead.pid}"  # inherited
    # The two live RUNNING trials fill n_trials=2: the retried trial, if any, runs nothing.
    assert run_trials(session, dataset, split, exp) == 0
    last = session.study.trials[-1]
    assert last.state == TrialState.FAIL and last.user_attrs[ATTR_SURPLUS] is True
    assert len(session.study.trials) == 3 + (retries > 0) + (retries == 0)


def test_a_worker_stops_when_running_trials_of_others_fill_the_budget(tmp_path: Path) -> None:
    """The budget counts COMPLETE + PRUNED; trials others are running keep this process from overshooting."""
    storage = f"journal:{tmp_path / 'optuna.log'}"
    exp, dataset, split = setup(f"tuning.storage={storage}", "tuning.study_name=slots", "tuning.n_trials=3")
    session = open_session(exp, dataset)
    other = session.study.ask()  # another live worker's trial (pid 1), RUNNING throughout
    other.set_user_attr(ATTR_WORKER, f"{socket.gethostname()}:1")
    # Two slots are free: this process runs exactly two trials, then stops without a surplus trial.
    assert run_trials(session, dataset, split, exp) == 2
    states = [t.state for t in session.study.trials]
    assert states[0] == TrialState.RUNNING and len(states) == 3
    assert all(s in (TrialState.COMPLETE, TrialState.PRUNED) for s in states[1:])


def test_an_existing_study_with_another_direction_or_setup_is_refused(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    common = (f"tuning.storage={storage}", "tuning.study_name=s", "tuning.n_trials=2")
    exp, dataset, split = setup(*common)
    tune(exp, dataset, split)
    cases = [
        (
            ["tuning.metric=brier"],
            r"created to maximize \(pr_auc\), but tuning.metric=brier needs to minimize",
        ),
        (["sampler=random_over"], r"different setup \(differs in: sampler\)"),
        (["model.search_space.num_leaves.high=64"], r"different setup \(differs in: search_space\)"),
        (["data.n_samples=700"], r"different setup \(differs in: data\)"),
    ]
    for overrides, message in cases:
        exp, dataset, split = setup(*common, *overrides)
        with pytest.raises(ImblabError, match=message):
            tune(exp, dataset, split)
    # Another pruner is not another setup: its trials' values do not depend on it.
    exp, dataset, split = setup(*common, "tuning/pruner=median")
    assert isinstance(open_session(exp, dataset).study.pruner, optuna.pruners.MedianPruner)
    assert len(load_study(storage, "s").trials) == 2  # nothing ran


def test_unopenable_storage_paths_fail_clearly(tmp_path: Path) -> None:
    for url in (f"sqlite:///{tmp_path}", f"journal:{tmp_path}"):  # directories, not files
        exp, dataset, split = setup(f"tuning.storage={url}")
        with pytest.raises(ImblabError, match=r"cannot open the Optuna storage .* is a directory"):
            tune(exp, dataset, split)
