"""Panel models through the registry (issue 9): promote, predict, set-threshold, on a real SQLite store."""

from __future__ import annotations

import shutil
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from imblab.app.main import main as imblab_main
from imblab.config.compose import experiment_from_config
from imblab.config.panel import panel_experiment_from_config
from imblab.errors import ImblabError
from imblab.experiment import run_experiment
from imblab.panel.examples import build_examples
from imblab.panel.experiment import PanelOutcome, run_panel
from imblab.panel.frozen import example_histories, panel_input_example
from imblab.panel.nlswork import load_nlswork
from imblab.panel.synthetic import make_panel_synthetic
from imblab.registry.gate import CHALLENGER, CHAMPION
from imblab.registry.promote import promote
from tests.conftest import FAST as BINARY_FAST
from tests.conftest import compose_config
from tests.panel.conftest import NLSWORK_DIR, needs_nlswork
from tests.panel.test_app import FAST, TABLE_COLUMNS, _table, compose_panel
from tests.support.cli import imblab, runs_of

NAME = "panel-wage"
CLASSES = ("low", "middle", "high")


def train_panel(tracking_uri: str, *overrides: str) -> PanelOutcome:
    cfg = compose_panel(*FAST, f"tracking.uri={tracking_uri}", "tracking.experiment=panel", *overrides)
    return run_panel(panel_experiment_from_config(cfg))


def registered(client: MlflowClient, name: str = NAME) -> list[str]:
    return sorted(str(v.version) for v in client.search_model_versions(f"name = '{name}'"))


def test_example_histories_give_one_pseudo_person_per_wave() -> None:
    panel = make_panel_synthetic(n_persons=40, seed=1)
    examples = build_examples(panel, max_len=4)
    ex = examples.subset(np.arange(5))
    frame = example_histories(panel, ex)
    assert list(frame.columns) == list(panel.frame.columns)
    assert sorted(frame[panel.id].unique()) == list(range(5))
    for i in range(5):
        rows = frame[frame[panel.id] == i]
        person = panel.frame[panel.frame[panel.id] == ex.person[i]]
        assert list(rows[panel.time]) == [
            t for t in person[panel.time] if t <= ex.time[i]
        ]  # the full history
        last = rows.iloc[-1]
        assert last[panel.time] == ex.time[i] and pd.isna(last[panel.regression_target])
        assert pd.isna(last[panel.class_target])
        assert rows[panel.class_target].iloc[:-1].isin(panel.class_names).all()  # names, not codes


def test_panel_promote_scores_both_models_on_the_same_test_persons(tracking_uri: str) -> None:
    client = MlflowClient(tracking_uri)
    first = train_panel(tracking_uri, "model=persistence")
    d1 = promote("panel", tracking_uri=tracking_uri)  # the panel default metric and model name
    # Selected on validation like panel compare (the shared ranking rule), gated on the test persons.
    assert (d1.model_name, d1.metric) == (NAME, "val_class_balanced_accuracy")
    assert d1.gate_metric == "test_class_balanced_accuracy"
    assert d1.outcome == "first_champion" and d1.version == "1"
    # Recomputed on every wave of the rebuilt test persons: exactly what the run logged.
    for key, value in first.test_metrics.items():
        assert d1.challenger[key] == pytest.approx(value, abs=1e-9), key
    run = client.get_run(first.run_id)
    assert d1.test_rows == run.data.metrics["n_examples_test"]
    assert f"test waves of {int(run.data.metrics['n_persons_test'])} persons" in d1.summary()
    mv = client.get_model_version(NAME, "1")
    assert mv.run_id == first.run_id and mv.tags["imblab.gate.metric"] == "test_class_balanced_accuracy"
    assert mv.description.startswith(f"imblab panel model from run {first.run_id}")
    assert "model=persistence" in mv.description and "decision=argmax" in mv.description
    assert "class_balanced_accuracy" in mv.description and "first_champion" in mv.description

    second = train_panel(tracking_uri, "model=lgbm_lags", "decision=offsets_balanced_accuracy")
    d2 = promote("panel", "test_wage_rmse", run_id=second.run_id, tracking_uri=tracking_uri)
    assert d2.champion is not None and d2.champion_version == "1" and d2.comparable
    # The champion, scored on the challenger's test persons, reproduces its own logged test metrics:
    # the two were compared on the same waves.
    for key, value in first.test_metrics.items():
        assert d2.champion[key] == pytest.approx(value, abs=1e-9), key
        assert d2.challenger[key] == pytest.approx(second.test_metrics[key], abs=1e-9), key
    better = second.test_metrics["wage_rmse"] < first.test_metrics["wage_rmse"]  # lower is better
    assert d2.promoted == better and d2.outcome == ("promoted" if better else "rejected")
    assert {CHALLENGER: "2", CHAMPION: "2" if better else "1"} == {
        k: str(v) for k, v in client.get_registered_model(NAME).aliases.items()
    }
    assert registered(client) == ["1", "2"]


def test_panel_and_binary_models_are_never_compared(
    tmp_path: Path, tracking_uri: str, capsys: pytest.CaptureFixture[str]
) -> None:
    client = MlflowClient(tracking_uri)
    panel_run = train_panel(tracking_uri, "model=persistence")
    cfg = compose_config(*BINARY_FAST, f"tracking.uri={tracking_uri}", "tracking.experiment=t")
    binary_run = run_experiment(experiment_from_config(cfg))
    assert promote("t", model_name="defects", tracking_uri=tracking_uri).outcome == "first_champion"
    assert promote("panel", tracking_uri=tracking_uri).outcome == "first_champion"

    with pytest.raises(ImblabError, match=r"defects@champion \(version 1\) is a binary model .* panel model"):
        promote("panel", model_name="defects", run_id=panel_run.run_id, tracking_uri=tracking_uri)
    with pytest.raises(
        ImblabError, match=r"is a panel model and run .* a binary model.*--name secom-defects"
    ):
        promote("t", model_name=NAME, run_id=binary_run.run_id, tracking_uri=tracking_uri)
    assert registered(client, "defects") == ["1"] and registered(client) == ["1"]  # nothing registered
    # A metric of the other workload is refused for a given run, and an experiment without such runs.
    with pytest.raises(ImblabError, match="ranks binary models, but the run is a panel model"):
        promote("panel", "test_pr_auc", run_id=panel_run.run_id, tracking_uri=tracking_uri)
    with pytest.raises(ImblabError, match="ranks panel runs and experiment 't' has none"):
        promote("t", "test_class_macro_f1", tracking_uri=tracking_uri)
    # predict: --decision is a panel model's option, --threshold a binary model's.
    argv = ["predict", "models:/defects@champion", "lots.parquet", "-o", str(tmp_path / "o.parquet")]
    assert imblab_main([*argv, "--decision", "argmax", "--tracking-uri", tracking_uri]) == 2
    assert (
        "--decision applies to panel models; models:/defects@champion is a binary model"
        in capsys.readouterr().err
    )


def test_champion_tested_on_other_persons_needs_force(tracking_uri: str) -> None:
    client = MlflowClient(tracking_uri)
    train_panel(tracking_uri, "model=persistence", "data.n_persons=160")  # other persons
    promote("panel", tracking_uri=tracking_uri)
    challenger = train_panel(tracking_uri, "model=persistence")
    with pytest.raises(ImblabError, match=r"tested on \d+ test waves against the challenger's \d+.*--force"):
        promote("panel", run_id=challenger.run_id, tracking_uri=tracking_uri)
    assert registered(client) == ["1"]
    forced = promote(
        "panel", run_id=challenger.run_id, force=True, min_improvement=-1.0, tracking_uri=tracking_uri
    )
    assert not forced.comparable and forced.promoted and "--force" in forced.reason


def test_changed_panel_data_is_refused(tmp_path: Path, tracking_uri: str) -> None:
    path = _table(tmp_path)
    overrides = ("data=panel_table", f"data.path={path}", *TABLE_COLUMNS, "model=persistence")
    cfg = compose_panel(*overrides, f"tracking.uri={tracking_uri}", "tracking.experiment=panel")
    run_panel(panel_experiment_from_config(cfg))
    frame = pd.read_csv(path)
    frame.assign(wage=frame["wage"] + 1.0).to_csv(path, index=False)  # every target changes
    with pytest.raises(ImblabError, match=r"rebuilt test persons of panel run .* differ .* other targets"):
        promote("panel", tracking_uri=tracking_uri)


@pytest.fixture(scope="module")
def champion(tmp_path_factory: pytest.TempPathFactory, migrated_store: Path) -> tuple[str, pd.DataFrame]:
    """A promoted persistence model (a store of its own, shared by the prediction tests, which only read
    it) and the history rows of 30 persons with two or more waves."""
    db = tmp_path_factory.mktemp("panel-champion") / "mlflow.db"
    shutil.copyfile(migrated_store, db)
    tracking_uri = f"sqlite:///{db}"
    train_panel(tracking_uri, "model=persistence")
    promote("panel", tracking_uri=tracking_uri)
    panel = make_panel_synthetic(n_persons=150, seed=42)
    sizes = panel.frame.groupby(panel.id).size()
    return tracking_uri, panel_input_example(panel, sizes[sizes > 1].index[:30])


def test_predict_a_panel_model_one_row_per_person(tmp_path: Path, champion: tuple[str, pd.DataFrame]) -> None:
    uri, history = champion
    history.to_csv(tmp_path / "history.csv", index=False)
    proc = imblab(
        "predict", f"models:/{NAME}@champion", "history.csv", "-o", "next.parquet", "--tracking-uri", uri,
        cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "predicted the next wave of 30 persons" in proc.stdout
    out = pd.read_parquet(tmp_path / "next.parquet")
    assert list(out.columns) == ["person", "year", "wage", "class", *(f"prob_{c}" for c in CLASSES)]
    last = history.groupby("person").tail(1).set_index("person")
    ids = out["person"].astype(int)  # a CSV's ids are read as text and come back as written
    assert out["person"].map(type).eq(str).all() and sorted(ids) == sorted(last.index)
    assert list(out["year"]) == list(last.loc[ids, "year"])  # each person's wave to predict
    # Persistence: this wave's wage is the last observed one.
    observed = history.dropna(subset=["wage"]).groupby("person")["wage"].last()
    np.testing.assert_allclose(out["wage"], observed.loc[ids].to_numpy())

    # Parquet keeps the ids' type; batches of whole persons and --decision argmax give what the Python API
    # gives on the whole frame.
    history.to_parquet(tmp_path / "history.parquet")
    mlflow.set_tracking_uri(uri)
    model = mlflow.pyfunc.load_model(f"models:/{NAME}@champion")
    direct = model.predict(history, params={"decision": "argmax"})
    argv = ["predict", f"models:/{NAME}@champion", str(tmp_path / "history.parquet"), "-o"]
    extra = ["--decision", "argmax", "--batch-size", "7", "--tracking-uri", uri]
    assert imblab_main([*argv, str(tmp_path / "b.parquet"), *extra]) == 0
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "b.parquet"), direct)


@pytest.mark.parametrize(
    ("change", "extra", "message"),
    [
        ("missing", [], "missing columns ['year']"),
        ("filled", [], "must leave 'wage' and 'band' empty"),
        ("unknown_class", [], "values outside class_order ['low', 'middle', 'high']: 'bored'"),
        ("empty_csv", [], "is empty: it has no header and no rows"),
        ("no_rows", [], "the input has no rows to score"),
        (
            None,
            ["--threshold", "0.3"],
            "is a panel model: it has a decision policy (argmax), not a threshold",
        ),
        (None, ["--decision", "softmax"], "decision must be 'argmax' or the frozen 'argmax', got 'softmax'"),
        (None, ["--id-columns", "person"], "--id-columns does not apply to a panel model"),
    ],
)
def test_bad_panel_prediction_input_is_a_clear_error(
    tmp_path: Path,
    champion: tuple[str, pd.DataFrame],
    capsys: pytest.CaptureFixture[str],
    change: str | None,
    extra: list[str],
    message: str,
) -> None:
    uri, history = champion
    last = history.groupby("person").tail(1).index
    path = tmp_path / "in.parquet"
    if change == "missing":
        history = history.drop(columns=["year"])
    elif change == "filled":
        history.loc[last[:2], "wage"] = 2.0
    elif change == "unknown_class":
        history.loc[history.index.difference(last)[0], "band"] = "bored"
    elif change == "no_rows":
        history = history.iloc[:0]
    if change == "empty_csv":
        path = tmp_path / "in.csv"
        path.write_text("")
    else:
        history.to_parquet(path)
    argv = ["predict", f"models:/{NAME}@champion", str(path), "-o", str(tmp_path / "o.parquet"), *extra]
    assert imblab_main([*argv, "--tracking-uri", uri]) == 2
    err = capsys.readouterr().err
    assert err.startswith("imblab: error:") and message in err
    assert not (tmp_path / "o.parquet").exists()


def test_set_threshold_refuses_a_panel_model(
    champion: tuple[str, pd.DataFrame], capsys: pytest.CaptureFixture[str]
) -> None:
    uri, _ = champion
    argv = ["set-threshold", f"models:/{NAME}@champion", "--policy", "best_f1", "--tracking-uri", uri]
    assert imblab_main(argv) == 2
    err = capsys.readouterr().err
    assert "is a panel model: it has a decision policy (decision=argmax" in err
    assert "set-threshold does not apply" in err and "--decision argmax" in err
    assert registered(MlflowClient(uri)) == ["1"]


@pytest.mark.slow
@needs_nlswork
def test_nlswork_gru_promoted_and_predicted_in_a_fresh_process(tmp_path: Path, tracking_uri: str) -> None:
    """issue 9 end to end, as a user runs it: train on nlswork, promote, then `imblab predict` reproduces
    the run's logged test predictions for each test person's next wave."""
    env = {"IMBLAB_NLSWORK_DIR": str(NLSWORK_DIR)}
    train = ("model=gru", "class_balance=class_weight", "model.max_epochs=2", f"tracking.uri={tracking_uri}")
    proc = imblab("panel", *train, cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = runs_of(tracking_uri, "panel")
    assert run.info.status == "FINISHED" and run.data.tags["data"] == "nlswork"

    proc = imblab(
        "promote",
        "--experiment",
        "panel",
        "--name",
        NAME,
        "--tracking-uri",
        tracking_uri,
        cwd=tmp_path,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "FIRST_CHAMPION" in proc.stdout and f"models:/{NAME}/1 is now @champion" in proc.stdout
    mv = MlflowClient(tracking_uri).get_model_version(NAME, "1")
    assert "model=gru, class_balance=class_weight" in mv.description
    mlflow.set_tracking_uri(tracking_uri)
    record = mlflow.artifacts.load_dict(f"runs:/{run.info.run_id}/promotions/{NAME}-v1.json")
    gated = record["challenger_metrics"]  # recomputed on every test wave
    for key in ("class_balanced_accuracy", "class_macro_f1", "wage_rmse"):
        assert gated[key] == pytest.approx(run.data.metrics[f"test_{key}"], rel=1e-5), key

    mlflow.set_tracking_uri(tracking_uri)
    logged = pd.read_parquet(
        mlflow.artifacts.download_artifacts(
            run_id=run.info.run_id, artifact_path="scores/test_predictions.parquet", dst_path=str(tmp_path)
        )
    )
    panel = load_nlswork(dir=str(NLSWORK_DIR))
    panel_input_example(panel, logged["person"].unique()).to_parquet(tmp_path / "history.parquet")
    argv = ["predict", f"models:/{NAME}@champion", "history.parquet", "-o", "next_year.parquet"]
    proc = imblab(*argv, "--tracking-uri", tracking_uri, cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    fresh = pd.read_parquet(tmp_path / "next_year.parquet")
    last = (
        logged.sort_values(["person", "time"]).drop_duplicates("person", keep="last").reset_index(drop=True)
    )
    assert list(fresh[panel.id]) == list(last["person"]) and list(fresh[panel.time]) == list(last["time"])
    np.testing.assert_allclose(fresh["wage"], last["wage"], rtol=1e-5)
    assert list(fresh["class"]) == list(last["class"])
    probs = [c for c in last.columns if c.startswith("prob_")]
    assert probs == [c for c in fresh.columns if c.startswith("prob_")] and len(probs) == 3
    np.testing.assert_allclose(fresh[probs], last[probs], rtol=1e-4, atol=1e-6)
