"""The ``imblab`` command as a user runs it: real subprocesses, real Hydra, a real SQLite store."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from hydra import compose, initialize_config_dir

from imblab.app.hydra import conf_dir
from tests.conftest import FAST
from tests.support.cli import imblab, runs_of


@pytest.mark.slow
def test_joblib_multirun_gives_four_children_under_one_parent(tmp_path: Path, tracking_uri: str) -> None:
    proc = imblab(
        "train",
        "-m",
        *FAST,
        "sampler=none,smote",
        "threshold=fixed,best_f1",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        f"tracking.uri={tracking_uri}",
        "tracking.experiment=sweep",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = runs_of(tracking_uri, "sweep")
    parents = [r for r in runs if r.data.tags.get("imblab.role") == "sweep"]
    children = [r for r in runs if r.data.tags.get("imblab.role") == "run"]
    assert len(parents) == 1 and len(children) == 4
    parent = parents[0]
    assert parent.info.status == "FINISHED" and parent.data.tags["imblab.n_children"] == "4"
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parent.info.run_id}
    assert {c.data.tags["imblab.sweep_id"] for c in children} == {parent.info.run_id}
    assert {c.info.status for c in children} == {"FINISHED"}
    combos = {(c.data.tags["sampler"], c.data.tags["threshold_policy"]) for c in children}
    assert combos == {("none", "fixed"), ("none", "best_f1"), ("smote", "fixed"), ("smote", "best_f1")}
    # Every job records the command as typed (the parallel workers too), subcommand and -m included.
    assert {c.data.tags["imblab.command"] for c in children} == {parent.data.tags["imblab.command"]}
    assert parent.data.tags["imblab.command"].startswith("imblab train -m data=synthetic ")
    # One result line per job names its variant; the sweep's summary names the best and what to run next.
    for c in children:
        variant = f"{c.data.tags['sampler']} · lgbm · {c.data.tags['threshold_policy']}"
        assert f"run {c.info.run_id}  {variant}  cv_pr_auc " in proc.stdout
    assert f"sweep {parent.info.run_id}: parent run FINISHED; 4 of 4 jobs finished" in proc.stdout
    assert "  best by cv_pr_auc: run " in proc.stdout
    assert f"imblab compare --experiment sweep --sweep {parent.info.run_id}" in proc.stdout
    assert "\r" not in proc.stderr and "CloudPickle" not in proc.stderr  # parallel jobs draw no progress
    # Two policies per sampler share one fit, even across parallel worker processes.
    for sampler in ("none", "smote"):
        hits = sorted(c.data.tags["imblab.cache_hit"] for c in children if c.data.tags["sampler"] == sampler)
        assert hits == ["false", "true"]

    table = imblab(
        "runs", "--experiment", "sweep", "--tracking-uri", tracking_uri, "--format", "csv", cwd=tmp_path
    )
    assert table.returncode == 0, table.stderr
    lines = table.stdout.strip().splitlines()
    assert lines[0].startswith("run_name,sampler,model,threshold_policy") and len(lines) == 5


@pytest.mark.slow
def test_failing_sweep_job_leaves_nothing_running(tmp_path: Path, tracking_uri: str) -> None:
    # k_neighbors=50 cannot work with ~40 minority rows per fold: that job fails, the other succeeds.
    proc = imblab(
        "train",
        "-m",
        *FAST,
        "sampler.estimator.k_neighbors=3,50",
        f"tracking.uri={tracking_uri}",
        "tracking.experiment=bad",
        cwd=tmp_path,
    )
    assert proc.returncode != 0
    assert "k_neighbors" in proc.stderr
    runs = runs_of(tracking_uri, "bad")
    statuses = sorted((r.data.tags.get("imblab.role"), r.info.status) for r in runs)
    assert statuses == [("run", "FAILED"), ("run", "FINISHED"), ("sweep", "FAILED")]


def test_frozen_model_reproduces_logged_scores_in_a_fresh_process(tmp_path: Path, tracking_uri: str) -> None:
    proc = imblab("train", *FAST, f"tracking.uri={tracking_uri}", "tracking.experiment=frozen", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = runs_of(tracking_uri, "frozen")
    assert run.info.status == "FINISHED"
    script = textwrap.dedent(f"""
        import json, sys
        import mlflow, numpy as np, pandas as pd
        from imblab.data.synthetic import make_synthetic
        mlflow.set_tracking_uri({tracking_uri!r})
        run_id = {run.info.run_id!r}
        (lm,) = mlflow.search_logged_models(
            experiment_ids=[{run.info.experiment_id!r}],
            filter_string=f"source_run_id = '{{run_id}}'", output_format="list")
        model = mlflow.pyfunc.load_model(lm.model_uri)
        logged = pd.read_parquet(mlflow.artifacts.download_artifacts(
            run_id=run_id, artifact_path="scores/test_scores.parquet"))
        ds = make_synthetic(n_samples=600, n_features=12, positive_rate=0.1, seed=42)
        X = ds.X.loc[logged["row"]]
        out = model.predict(X)
        assert list(out.columns) == ["decision", "probability"]
        np.testing.assert_array_equal(out["probability"].to_numpy(), logged["score"].to_numpy())
        np.testing.assert_array_equal(out["decision"].to_numpy(), logged["decision"].to_numpy())
        low = model.predict(X, params={{"threshold": 0.0}})
        assert (low["decision"] == 1).all()
        high = model.predict(X, params={{"threshold": 1.0}})
        assert (high["decision"] == (high["probability"] >= 1.0)).all()
        print(json.dumps({{"rows": len(out)}}))
    """)
    check = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, timeout=300
    )
    assert check.returncode == 0, check.stderr[-3000:]
    assert '"rows": 120' in check.stdout


def test_prediction_input_with_missing_or_extra_columns_gets_a_schema_error(
    tmp_path: Path, tracking_uri: str
) -> None:
    from imblab.config.compose import experiment_from_config
    from imblab.data.synthetic import make_synthetic
    from imblab.experiment import run_experiment
    from tests.conftest import compose_config

    out = run_experiment(experiment_from_config(compose_config(*FAST, f"tracking.uri={tracking_uri}")))
    model = mlflow.pyfunc.load_model(out.model_uri)
    X = make_synthetic(n_samples=600, n_features=12, positive_rate=0.1, seed=42).X.head(3)
    assert len(model.predict(X)) == 3
    assert len(model.predict(X[X.columns[::-1]])) == 3  # column order does not matter
    with pytest.raises(mlflow.exceptions.MlflowException, match=r"missing column\(s\) \['x00'\]"):
        model.predict(X.drop(columns=["x00"]))
    with pytest.raises(mlflow.exceptions.MlflowException, match=r"unexpected column\(s\) \['lot_id'\]"):
        model.predict(X.assign(lot_id=[1, 2, 3]))
    with pytest.raises(mlflow.exceptions.MlflowException, match="non-numeric"):
        model.predict(X.assign(x01=["a", "b", "c"]))


def test_unknown_group_option_lists_the_choices(tmp_path: Path) -> None:
    proc = imblab("train", "sampler=smoteish", cwd=tmp_path)
    assert proc.returncode == 2
    assert "imblab: error:" in proc.stderr and "Could not find 'sampler/smoteish'" in proc.stderr
    for choice in ("smote", "smote_enn", "adasyn", "class_weight"):
        assert choice in proc.stderr


def test_missing_data_is_a_clear_error_and_a_failed_run(tmp_path: Path, tracking_uri: str) -> None:
    proc = imblab("train", f"data.dir={tmp_path / 'nowhere'}", f"tracking.uri={tracking_uri}", cwd=tmp_path)
    assert proc.returncode == 2
    assert "imblab: error:" in proc.stderr
    assert "secom.data" in proc.stderr and "IMBLAB_SECOM_DIR" in proc.stderr
    assert "Traceback" not in proc.stderr
    (run,) = runs_of(tracking_uri, "imblab")
    assert run.info.status == "FAILED" and "secom.data" in run.data.tags["imblab.error"]


@pytest.mark.parametrize(
    ("table", "overrides", "message"),
    [
        (pd.DataFrame({"a": [1.0, 2.0] * 20, "y": [0, 1] * 20}), ["data.target=label"], "label"),
        (pd.DataFrame({"a": [1.0, 2.0] * 20, "y": [0] * 40}), ["data.target=y"], "one class"),
        (pd.DataFrame({"a": [1.0, 2.0, 3.0] * 20, "y": [0, 1, 2] * 20}), ["data.target=y"], "2"),
        (pd.DataFrame({"a": [float("inf"), 2.0] * 20, "y": [0, 1] * 20}), ["data.target=y"], "infinite"),
        (pd.DataFrame({"a": [float("nan")] * 40, "y": [0, 1] * 20}), ["data.target=y"], "NaN"),
        (
            pd.DataFrame({"a": [1.0, 2.0] * 20, "dead": [float("nan")] * 40, "y": [0, 1] * 20}),
            ["data.target=y"],
            "'dead'. Check the file, or drop them with data.drop_columns=[dead]",
        ),
        (pd.DataFrame({"a": [], "y": []}), ["data.target=y"], "has column names (a, y) but no rows"),
    ],
    ids=[
        "absent-target",
        "one-class",
        "not-binary",
        "infinite",
        "all-nan",
        "one-all-nan-column",
        "header-only",
    ],
)
def test_bad_tables_fail_clearly(
    tmp_path: Path, tracking_uri: str, table: pd.DataFrame, overrides: list[str], message: str
) -> None:
    path = tmp_path / "lots.csv"
    table.to_csv(path, index=False)
    proc = imblab(
        "train", "data=table", f"data.path={path}", *overrides, f"tracking.uri={tracking_uri}", cwd=tmp_path
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "imblab: error:" in proc.stderr and message in proc.stderr, proc.stderr
    assert {r.info.status for r in runs_of(tracking_uri, "imblab")} == {"FAILED"}


def test_help_lists_commands(tmp_path: Path) -> None:
    proc = imblab("--help", cwd=tmp_path)
    assert proc.returncode == 0
    for command in ("train", "runs", "compare", "promote", "serve", "predict"):
        assert command in proc.stdout


def test_named_experiments_compose() -> None:
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        h = compose("train", overrides=["experiment=seed_stage_h"], return_hydra_config=True)
        k = compose("train", overrides=["experiment=seed_stage_k"], return_hydra_config=True)
    assert h.hydra.sweeper.params == {"sampler": "none,smote,smote_enn,adasyn,borderline_smote"}
    assert h.model.estimator.n_estimators == 600 and h.threshold.value == 0.5 and h.seed == 42
    assert h.split.test_size == 0.2 and h.split.kind == "stratified"
    assert k.sampler.name == "smote_enn" and k.hydra.sweeper.params == {"threshold": "fixed,best_f1,min_cost"}
    assert (k.costs.fn, k.costs.fp) == (5.0, 1.0)


@pytest.mark.slow
def test_end_to_end_on_secom(tmp_path: Path, tracking_uri: str, secom_dir: Path) -> None:
    """The default experiment on the real data (fewer trees to fit CI), reloaded in a fresh process."""
    proc = imblab(
        "train",
        "model.estimator.n_estimators=100",
        f"tracking.uri={tracking_uri}",
        "tracking.experiment=secom",
        cwd=tmp_path,
        env={"IMBLAB_SECOM_DIR": str(secom_dir)},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = runs_of(tracking_uri, "secom")
    m, t = run.data.metrics, run.data.tags
    assert run.info.status == "FINISHED"
    assert (t["sampler"], t["model"], t["threshold_policy"], t["data"]) == (
        "none",  # the default since the SECOM study
        "lgbm",
        "best_f1",
        "secom",
    )
    assert m["test_n"] == 314 and m["test_tp"] + m["test_fn"] == 21  # 20% stratified holdout of 104 fails
    assert m["cv_n"] == 1253
    assert 0.5 < m["test_roc_auc"] < 1.0 and 0.066 < m["test_pr_auc"] < 1.0  # better than chance, not perfect
    script = textwrap.dedent(f"""
        import mlflow, numpy as np, pandas as pd
        from imblab.data.secom import load_secom
        mlflow.set_tracking_uri({tracking_uri!r})
        (lm,) = mlflow.search_logged_models(experiment_ids=[{run.info.experiment_id!r}], output_format="list")
        model = mlflow.pyfunc.load_model(lm.model_uri)
        logged = pd.read_parquet(mlflow.artifacts.download_artifacts(
            run_id={run.info.run_id!r}, artifact_path="scores/test_scores.parquet"))
        out = model.predict(load_secom().X.loc[logged["row"]])
        np.testing.assert_array_equal(out["probability"].to_numpy(), logged["score"].to_numpy())
        np.testing.assert_array_equal(out["decision"].to_numpy(), logged["decision"].to_numpy())
        print("reproduced", len(out))
    """)
    check = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
        env={**os.environ, "IMBLAB_SECOM_DIR": str(secom_dir)},
    )
    assert check.returncode == 0, check.stderr[-3000:]
    assert "reproduced 314" in check.stdout


@pytest.mark.slow
def test_time_split_on_secom_tests_on_the_last_lots(
    tmp_path: Path, tracking_uri: str, secom_dir: Path
) -> None:
    proc = imblab(
        "train",
        "split=time",
        "sampler=none",
        "threshold=min_cost",
        "model.estimator.n_estimators=60",
        f"tracking.uri={tracking_uri}",
        "tracking.experiment=secom-time",
        cwd=tmp_path,
        env={"IMBLAB_SECOM_DIR": str(secom_dir)},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = runs_of(tracking_uri, "secom-time")
    scores = pd.read_parquet(
        mlflow.artifacts.download_artifacts(
            run_id=run.info.run_id, artifact_path="scores/test_scores.parquet", tracking_uri=tracking_uri
        )
    )
    from imblab.data.secom import load_secom

    ts = load_secom(str(secom_dir)).timestamps
    assert len(scores) == 314
    assert ts.loc[scores["row"]].min() >= ts.drop(index=scores["row"]).max()
