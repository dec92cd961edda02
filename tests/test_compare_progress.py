"""``imblab compare`` on sweeps that did not complete, and on an experiment whose sweep was rerun.

The sweeps are real parent runs (``open_sweep``) with real job runs (``run_experiment`` under the
parent, as a Hydra job runs it); the parent is then left RUNNING, ended KILLED through the MLflow
client, or closed by ``close_sweep`` with a job missing, which is what a crash, a kill or a lost job
leaves behind.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf

from imblab.app.main import main as imblab_main
from imblab.app.sweep import BASIC_SWEEPER, n_jobs
from imblab.config.compose import experiment_from_config
from imblab.errors import ImblabError
from imblab.experiment import run_experiment
from imblab.report.comparison import bootstrap_table, load_sweep
from imblab.report.files import write_report
from imblab.tracking.sweeps import PARENT_ENV, PARENT_URI_ENV, close_sweep, open_sweep
from tests.conftest import QUICK, compose_config

FAILS = ("sampler=smote", "sampler.estimator.k_neighbors=50")  # too few minority rows per fold


@dataclass(frozen=True)
class Store:
    uri: str
    running: str  # 2 of 4 jobs finished, 1 FAILED, 1 never started; parent still RUNNING
    killed: str  # 2 of 3 finished, 1 FAILED; parent KILLED
    lost: str  # 2 of 3 finished, 1 without a run; closed by close_sweep
    first: dict[str, str]  # loose runs in experiment "reruns": variant -> first run id
    second: dict[str, str]  # ... and the rerun


def _train(uri: str, experiment: str, *overrides: str, parent: str | None = None) -> str | None:
    cfg = compose_config(*QUICK, f"tracking.uri={uri}", f"tracking.experiment={experiment}",
                         "tracking.log_model=false", *overrides)  # fmt: skip
    try:
        return run_experiment(experiment_from_config(cfg), parent_run_id=parent).run_id
    except ImblabError:
        return None  # the job failed; its run is FAILED


def _sweep(uri: str, jobs: list[tuple[str, ...]], n: int) -> str:
    parent = open_sweep(uri, "progress", "sweep by hand", n_jobs=n)
    for job in jobs:
        _train(uri, "progress", *job, parent=parent)
    return parent


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    root = tmp_path_factory.mktemp("progress")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    os.environ["IMBLAB_CACHE_DIR"] = str(root / "cache")  # the fit is shared by every run here
    finished = [("threshold=best_f1",), ("threshold=fixed",)]
    try:
        lost = _sweep(uri, finished, 3)
        close_sweep(failed=False)
        killed = _sweep(uri, [*finished, FAILS], 3)
        os.environ.pop(PARENT_ENV), os.environ.pop(PARENT_URI_ENV)
        MlflowClient(uri).set_terminated(killed, "KILLED")
        running = _sweep(uri, [*finished, FAILS], 4)  # the latest sweep
        os.environ.pop(PARENT_ENV), os.environ.pop(PARENT_URI_ENV)
        variants = {"best_f1": ("threshold=best_f1",), "fixed": ("threshold=fixed",)}
        variants |= {f"min_cost {c}": ("threshold=min_cost", f"threshold.cost_fn={c}") for c in (5, 20)}
        first = {name: _train(uri, "reruns", *o) for name, o in variants.items()}
        second = {name: _train(uri, "reruns", *o) for name, o in variants.items() if "min_cost" not in name}
    finally:
        os.environ.pop("IMBLAB_CACHE_DIR", None)
    return Store(uri, running, killed, lost, first, second)


def test_a_running_sweep_is_refused_unless_partial(
    store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    refused = (
        rf"sweep {store.running} is still running \(2 of 4 children finished\); "
        "rerun when it ends or pass --partial"
    )
    with pytest.raises(ImblabError, match=refused):
        load_sweep(sweep=store.running, tracking_uri=store.uri)
    argv = ["compare", "--experiment", "progress", "--tracking-uri", store.uri, "--n-boot", "20", "--no-log"]
    assert imblab_main(argv) == 2  # the latest sweep by default
    assert f"imblab: error: sweep {store.running} is still running" in capsys.readouterr().err

    assert imblab_main([*argv, "--partial", "--format", "markdown", "-o", str(tmp_path)]) == 0
    md = capsys.readouterr().out
    assert md.startswith(f"# Comparison: progress-{store.running} (PARTIAL)")
    status = "parent run RUNNING; 2 of 4 jobs finished, 1 FAILED, 1 without a run"
    assert f"PARTIAL: sweep {store.running} is still running ({status})" in md
    ranking = md.split("\n## ", 2)[1]  # the ranking table lists the unfinished jobs, the others do not
    rows = [line for line in ranking.splitlines() if line.startswith("|") and "× logreg ×" in line]
    assert md.count("FAILED: not compared") == 1
    assert len(rows) == 3 and "FAILED: not compared" in rows[-1] and "smote × logreg × best_f1" in rows[-1]
    csv = pd.read_csv(tmp_path / "comparison.csv")
    assert list(csv["status"]) == ["FINISHED", "FINISHED", "FAILED"]
    assert csv["test_pr_auc"].notna().tolist() == [True, True, False] and csv["is_best"].sum() == 1
    assert "(PARTIAL)" in (tmp_path / "report.html").read_text()


@pytest.mark.parametrize("which", ["killed", "lost"])
def test_a_sweep_that_ended_early_is_compared_as_incomplete(store: Store, tmp_path: Path, which: str) -> None:
    sweep_id = getattr(store, which)
    sweep = load_sweep(sweep=sweep_id, tracking_uri=store.uri)
    assert sweep.state == "incomplete" and len(sweep.runs) == 2 and not sweep.progress.complete
    files = write_report(bootstrap_table(sweep, n_boot=20), tmp_path)
    text = files["table"].read_text()
    status = {
        "killed": "parent run KILLED; 2 of 3 jobs finished, 1 FAILED",
        "lost": "parent run FAILED; 2 of 3 jobs finished, 1 without a run",
    }[which]
    assert text.startswith(f"INCOMPLETE: sweep {sweep_id} ended before all its jobs finished ({status});")
    assert f"sweep {sweep_id} (incomplete)" in text and "(complete)" not in text
    assert files["markdown"].read_text().startswith(f"# Comparison: progress-{sweep_id} (INCOMPLETE)")
    csv = pd.read_csv(files["csv"])
    assert list(csv["status"]) == ["FINISHED", "FINISHED", *(["FAILED"] if which == "killed" else [])]
    # close_sweep ended the parent FAILED: a job of the three it recorded has no run.
    parent = MlflowClient(store.uri).get_run(sweep_id)
    assert parent.data.tags["imblab.n_jobs"] == "3"
    if which == "lost":
        assert parent.info.status == "FAILED" and parent.data.tags["imblab.n_children"] == "2"


def test_rerun_variants_appear_once_unless_all_runs(store: Store, capsys: pytest.CaptureFixture[str]) -> None:
    sweep = load_sweep("reruns", "all", store.uri)
    assert sweep.state == "all runs" and sweep.reruns_left_out == 2
    newest = {**store.first, **store.second}  # the rerun replaces the first run of a variant
    assert sorted(r.run_id for r in sweep.runs) == sorted(newest.values())
    by_id = {r.run_id: r.label for r in sweep.runs}
    assert by_id[newest["best_f1"]] == "none × logreg × best_f1"
    assert by_id[newest["fixed"]] == "none × logreg × fixed"
    # Two variants share sampler × model × policy: the param in which they differ tells them apart.
    assert by_id[newest["min_cost 5"]] == "none × logreg × min_cost (threshold.cost_fn=5)"
    assert by_id[newest["min_cost 20"]] == "none × logreg × min_cost (threshold.cost_fn=20)"

    kept = load_sweep("reruns", "all", store.uri, keep_reruns=True)
    assert len(kept.runs) == 6 and kept.reruns_left_out == 0 and len({r.label for r in kept.runs}) == 6
    assert sum(r.label.startswith("none × logreg × best_f1 [") for r in kept.runs) == 2

    argv = [
        "compare",
        "--experiment",
        "reruns",
        "--sweep",
        "all",
        "--tracking-uri",
        store.uri,
        "--n-boot",
        "20",
    ]
    assert imblab_main([*argv, "--no-log"]) == 0
    assert "Left out 2 older run(s) of variants that were run again" in capsys.readouterr().out
    assert imblab_main([*argv, "--no-log", "--all-runs", "--format", "csv"]) == 0
    printed = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert len(printed) == 6 and set(printed["status"]) == {"FINISHED"}


def test_the_number_of_jobs_is_the_basic_sweepers() -> None:
    def config(task: list[str], params: dict[str, str] | None = None, target: str = BASIC_SWEEPER):
        sweeper = {"_target_": target, "max_batch_size": 2, "params": params}
        return OmegaConf.create({"hydra": {"sweeper": sweeper, "overrides": {"task": task}}})

    assert n_jobs(config(["sampler=none,smote", "threshold=fixed,best_f1,min_cost", "seed=1"])) == 6
    assert n_jobs(config(["seed=range(0,4)"], {"threshold": "fixed,best_f1"})) == 8
    # The command line overrides a key the config sweeps, as in Hydra.
    assert n_jobs(config(["threshold=fixed"], {"threshold": "fixed,best_f1"})) == 1
    assert n_jobs(config(["sampler=glob(*)"])) is None  # needs Hydra's config loader
    assert n_jobs(config(["seed=1,2"], target="hydra_plugins.hydra_optuna_sweeper.OptunaSweeper")) is None
    # A named experiment that sweeps through hydra.sweeper.params, composed by Hydra.
    from hydra import compose, initialize_config_dir

    from imblab.app.hydra import conf_dir

    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        cfg = compose("train", overrides=["experiment=seed_stage_k"], return_hydra_config=True)
    assert n_jobs(cfg) == 3
