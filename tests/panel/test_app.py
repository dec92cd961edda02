"""``imblab panel`` as a user runs it: real Hydra composition, real subprocesses, a real SQLite store."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from hydra import compose, initialize_config_dir
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig

from imblab.app.panel import panel_conf_dir, search_path_override
from imblab.config.panel import PanelExperiment, panel_experiment_from_config
from imblab.errors import ImblabError
from imblab.panel.frozen import panel_input_example
from imblab.panel.synthetic import make_panel_synthetic
from tests.panel.conftest import NLSWORK_DIR, needs_nlswork
from tests.support.cli import imblab, runs_of

CONF = panel_conf_dir()
FAST = ("data=panel_synthetic", "data.n_persons=150", "max_len=4")


def compose_panel(*overrides: str) -> DictConfig:
    """The config exactly as ``imblab panel <overrides>`` composes it."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("panel", overrides=[*overrides, search_path_override()])


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


# ------------------------------------------------------------------------------------------------------
# Composition
# ------------------------------------------------------------------------------------------------------

TABLE = ("data.path=x.csv", "data.id=i", "data.time=t", "data.regression_target=w", "data.class_target=c")


@pytest.mark.parametrize(
    ("group", "option"),
    [(g, o) for g in ("data", "model", "class_balance", "decision") for o in options(g)],
)
def test_every_panel_option_composes(group: str, option: str) -> None:
    extra = {("data", "panel_table"): [*TABLE, "data.class_order=[a,b]"]}.get((group, option), [])
    if group == "class_balance":
        extra.append("model=lstm")
    exp = panel_experiment_from_config(compose_panel(f"{group}={option}", *extra))
    assert isinstance(exp, PanelExperiment)
    assert exp.tracking.experiment == "panel" and exp.split.fractions == (0.7, 0.15, 0.15)


def test_groups_and_shared_groups() -> None:
    assert options("data") == ["nlswork", "panel_synthetic", "panel_table"]
    assert options("model") == ["gru", "lgbm_lags", "lstm", "persistence"]
    cfg = compose_panel()
    assert cfg.tracking.uri is None and cfg.tuning.enabled is False  # from conf/, shared with imblab train
    exp = panel_experiment_from_config(cfg)
    assert (exp.model_name, exp.class_balance, exp.decision_name, exp.data_name) == (
        "lstm",
        "none",
        "argmax",
        "nlswork",
    )
    gru = panel_experiment_from_config(compose_panel("model=gru", "class_balance=class_weight"))
    assert gru.model.cell == "gru" and gru.model.class_balance == "class_weight"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("model=lgbm", "`imblab train` (binary) model"),
        ("data=secom", "not a panel data source"),
    ],
)
def test_binary_options_are_refused(override: str, message: str) -> None:
    with pytest.raises(ImblabError, match=re.escape(message)):
        panel_experiment_from_config(compose_panel(override))


def test_class_balance_must_fit_the_model() -> None:
    with pytest.raises(ImblabError, match="fits nothing"):
        panel_experiment_from_config(compose_panel("model=persistence", "class_balance=class_weight"))
    with pytest.raises(ImblabError, match="class_balance"):
        panel_experiment_from_config(compose_panel("model=lgbm_lags", "class_balance=logit_adjust"))


# ------------------------------------------------------------------------------------------------------
# End to end
# ------------------------------------------------------------------------------------------------------

REPRODUCE = textwrap.dedent(
    """
    import sys
    import mlflow
    import pandas as pd

    model = mlflow.pyfunc.load_model(sys.argv[1])
    frame = pd.read_parquet(sys.argv[2])
    model.predict(frame).to_parquet(sys.argv[3])
    model.predict(frame, params={"decision": "argmax"}).to_parquet(sys.argv[4])
    try:
        model.predict(frame.assign(extra=1.0))
    except Exception as exc:
        print("REFUSED:", exc)
    """
)


def test_lstm_run_logs_everything_and_the_frozen_model_reproduces_it(
    tmp_path: Path, tracking_uri: str
) -> None:
    proc = imblab(
        "panel",
        *FAST,
        "model=lstm",
        "model.max_epochs=3",
        "model.units1=16",
        "model.units2=8",
        "decision=offsets_balanced_accuracy",
        f"tracking.uri={tracking_uri}",
        "tracking.experiment=panel",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = runs_of(tracking_uri, "panel")
    assert run.info.status == "FINISHED"
    tags, metrics = run.data.tags, run.data.metrics
    assert tags["imblab.role"] == "run" and tags["imblab.workload"] == "panel"
    assert (tags["model"], tags["class_balance"], tags["decision"]) == (
        "lstm",
        "none",
        "offsets_balanced_accuracy",
    )
    assert tags["data"] == "panel_synthetic" and run.data.params["model.max_epochs"] == "3"
    for name in ("wage_rmse", "wage_mae", "wage_r2", "wage_rmse_level", "class_accuracy"):
        assert np.isfinite(metrics[f"test_{name}"]) and np.isfinite(metrics[f"val_{name}"])
    for name in ("class_balanced_accuracy", "class_macro_f1", "recall_low", "precision_high"):
        assert 0 <= metrics[f"test_{name}"] <= 1
    assert metrics["n_examples_test"] > 0 and metrics["data_persons"] == 150
    client = MlflowClient(tracking_uri)
    history = client.get_metric_history(run.info.run_id, "train_loss")
    assert sorted(m.step for m in history) == list(range(int(metrics["epochs_run"])))
    assert len(client.get_metric_history(run.info.run_id, "val_class_macro_f1")) == metrics["epochs_run"] + 1
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
    assert artifacts == {
        f"plots/{n}.png"
        for n in (
            "training_history",
            "wage_test",
            "confusion_matrix_test",
            "confusion_matrix_test_normalized",
        )
    }

    mlflow.set_tracking_uri(tracking_uri)
    logged = pd.read_parquet(
        mlflow.artifacts.download_artifacts(
            run_id=run.info.run_id, artifact_path="scores/test_predictions.parquet", dst_path=str(tmp_path)
        )
    )
    assert set(logged["class"]) <= {"low", "middle", "high"}
    # The frozen model, in a fresh process, predicts each test person's last wave from its history.
    panel = make_panel_synthetic(n_persons=150, seed=42)
    frame = panel_input_example(panel, logged["person"].unique())
    frame.to_parquet(tmp_path / "input.parquet")
    script = tmp_path / "reproduce.py"
    script.write_text(REPRODUCE)
    out, argmax = tmp_path / "out.parquet", tmp_path / "argmax.parquet"
    child = subprocess.run(
        [
            sys.executable,
            str(script),
            f"runs:/{run.info.run_id}/model",
            str(tmp_path / "input.parquet"),
            str(out),
            str(argmax),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "MLFLOW_TRACKING_URI": tracking_uri},
    )
    assert child.returncode == 0, child.stderr[-3000:]
    assert "REFUSED:" in child.stdout and "unexpected columns ['extra']" in child.stdout
    fresh = pd.read_parquet(out)
    last = (
        logged.sort_values(["person", "time"]).drop_duplicates("person", keep="last").reset_index(drop=True)
    )
    assert list(fresh["person"]) == list(last["person"]) and list(fresh["year"]) == list(last["time"])
    np.testing.assert_allclose(fresh["wage"], last["wage"], rtol=1e-5)
    assert list(fresh["class"]) == list(last["class"])
    for c in ("low", "middle", "high"):
        np.testing.assert_allclose(fresh[f"prob_{c}"], last[f"prob_{c}"], rtol=1e-4, atol=1e-6)
    probs = pd.read_parquet(argmax)[["prob_low", "prob_middle", "prob_high"]].to_numpy()
    assert list(pd.read_parquet(argmax)["class"]) == list(
        np.array(["low", "middle", "high"])[probs.argmax(1)]
    )


def test_sweep_gives_one_parent_and_a_child_per_model(tmp_path: Path, tracking_uri: str) -> None:
    proc = imblab(
        "panel",
        "-m",
        *FAST,
        "model=persistence,lgbm_lags",
        f"tracking.uri={tracking_uri}",
        "tracking.experiment=sweep",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = runs_of(tracking_uri, "sweep")
    parents = [r for r in runs if r.data.tags.get("imblab.role") == "sweep"]
    children = [r for r in runs if r.data.tags.get("imblab.role") == "run"]
    assert len(parents) == 1 and len(children) == 2
    assert parents[0].info.status == "FINISHED" and parents[0].data.tags["imblab.n_children"] == "2"
    assert {c.info.status for c in children} == {"FINISHED"}
    assert {c.data.tags["model"] for c in children} == {"persistence", "lgbm_lags"}
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parents[0].info.run_id}


# The columns of the panel file ``_table`` writes, as ``imblab panel data=panel_table`` overrides.
TABLE_COLUMNS = (
    "data.id=pid",
    "data.time=year",
    "data.regression_target=wage",
    "data.class_target=sat",
    "data.class_order=[lo,mid,hi]",
)


def _table(tmp_path: Path, n_persons: int = 30, **change: object) -> Path:
    rng = np.random.default_rng(0)
    rows = [
        {
            "pid": p,
            "year": 2000 + t,
            "x": rng.normal(),
            "wage": 2 + rng.normal(0, 0.3),
            "sat": ["lo", "mid", "hi"][(p + t) % 3],
        }
        for p in range(n_persons)
        for t in range(3)
    ]
    frame = pd.DataFrame(rows)
    for key, value in change.items():
        frame.loc[0, key] = value
    if change.get("duplicate"):
        frame = pd.concat([frame, frame.iloc[:1]]).drop(columns="duplicate")
    path = tmp_path / "panel.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize(
    ("case", "message"),
    [("duplicate", "duplicate (pid, year)"), ("class", "outside class_order"), ("persons", "at least 10")],
)
def test_bad_panel_table_exits_2_and_fails_the_run(
    tmp_path: Path, tracking_uri: str, case: str, message: str
) -> None:
    path = {
        "duplicate": lambda: _table(tmp_path, duplicate=True),
        "class": lambda: _table(tmp_path, sat="bored"),
        "persons": lambda: _table(tmp_path, n_persons=5),
    }[case]()
    proc = imblab(
        "panel",
        "data=panel_table",
        f"data.path={path}",
        *TABLE_COLUMNS,
        "model=persistence",
        f"tracking.uri={tracking_uri}",
        "tracking.experiment=bad",
        cwd=tmp_path,
    )
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "imblab: error:" in proc.stderr and message in proc.stderr and "Traceback" not in proc.stderr
    (run,) = runs_of(tracking_uri, "bad")
    assert run.info.status == "FAILED" and message in run.data.tags["imblab.error"]


def test_panel_table_run(tmp_path: Path, tracking_uri: str) -> None:
    proc = imblab(
        "panel",
        "data=panel_table",
        f"data.path={_table(tmp_path)}",
        *TABLE_COLUMNS,
        "model=persistence",
        f"tracking.uri={tracking_uri}",
        "tracking.experiment=table",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = runs_of(tracking_uri, "table")
    assert run.info.status == "FINISHED" and "test_recall_mid" in run.data.metrics


@pytest.mark.slow
@needs_nlswork
def test_nlswork_lstm_two_epochs(tmp_path: Path, tracking_uri: str) -> None:
    proc = imblab(
        "panel",
        "model.max_epochs=2",
        f"tracking.uri={tracking_uri}",
        "tracking.experiment=nlswork",
        cwd=tmp_path,
        env={"IMBLAB_NLSWORK_DIR": str(NLSWORK_DIR)},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = runs_of(tracking_uri, "nlswork")
    assert run.info.status == "FINISHED" and run.data.tags["data"] == "nlswork"
    assert run.data.metrics["epochs_run"] == 2 and run.data.metrics["test_wage_rmse"] < 0.6
