"""``imblab compare`` on panel runs: a real panel sweep, loose runs and a tuned run in a real SQLite store.

Checks the person bootstrap against a direct loop over resampled persons with the panel's own metric
functions, the point estimates against the logged ``test_*`` metrics, the selection rules (latest sweep,
``--sweep all``, one tuned run, trials never), the references and the report files.
"""

from __future__ import annotations

import base64
import io
import logging
import os
import re
import subprocess
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from imblab.app.main import main as imblab_main
from imblab.config.panel import panel_experiment_from_config
from imblab.errors import ImblabError
from imblab.metrics.panel_bootstrap import person_codes, person_weights
from imblab.panel.experiment import run_panel
from imblab.panel.metrics import class_metrics, wage_metrics
from imblab.report.panel_comparison import MAJORITY, panel_comparison
from imblab.report.panel_runs import PanelSelection, load_panel_runs
from imblab.report.render import FILES
from tests.panel.conftest import NLSWORK_DIR, needs_nlswork
from tests.panel.test_app import FAST, compose_panel
from tests.panel.test_tuning import TINY, TUNED
from tests.support.cli import imblab

EXPERIMENT = "pcmp"


@dataclass(frozen=True)
class Store:
    root: Path
    uri: str
    sweep_id: str
    loose: str  # lgbm_lags with class weights and offsets, outside the sweep
    again: str  # persistence a second time: the same predictions as the sweep's persistence run
    tuned: str  # a tiny tuned lstm (3 trials nested under it)


def _run(uri: str, experiment: str, *overrides: str) -> str:
    cfg = compose_panel(*FAST, f"tracking.uri={uri}", f"tracking.experiment={experiment}", *overrides)
    return run_panel(panel_experiment_from_config(cfg)).run_id


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    """A real ``imblab panel -m model=persistence,lgbm_lags`` sweep, then three runs of their own."""
    root = tmp_path_factory.mktemp("panel-compare")
    uri = f"sqlite:///{root / 'mlruns' / 'mlflow.db'}"
    proc = imblab(
        "panel", "-m", *FAST, "model=persistence,lgbm_lags", f"tracking.uri={uri}",
        f"tracking.experiment={EXPERIMENT}", "tracking.log_model=false", cwd=root,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(EXPERIMENT)
    (parent,) = client.search_runs([exp.experiment_id], "tags.`imblab.role` = 'sweep'")
    quiet = "tracking.log_model=false"
    loose = _run(
        uri, EXPERIMENT, "model=lgbm_lags", "class_balance=class_weight", "decision=offsets_macro_f1", quiet
    )
    again = _run(uri, EXPERIMENT, "model=persistence", quiet)
    tiny = [o for o in TINY if not o.startswith(("data", "max_len"))]
    tuned = _run(uri, EXPERIMENT, *tiny, "model.max_epochs=3", *TUNED, "tuning.n_trials=3", quiet)
    return Store(root, uri, parent.info.run_id, loose, again, tuned)


@pytest.fixture(scope="module")
def everything(store: Store) -> PanelSelection:
    """Every finished panel run, the persistence rerun included (--sweep all --all-runs)."""
    return load_panel_runs(EXPERIMENT, "all", store.uri, keep_reruns=True)


def test_the_default_is_the_latest_sweep_and_trials_are_never_variants(
    store: Store, everything: PanelSelection
) -> None:
    sweep = load_panel_runs(EXPERIMENT, tracking_uri=store.uri)
    assert sweep.sweep_id == store.sweep_id and sweep.name == f"{EXPERIMENT}-{store.sweep_id}"
    assert sorted(r.model for r in sweep.runs) == ["lgbm_lags", "persistence"]

    client = MlflowClient(store.uri)
    trials = client.search_runs([everything.experiment_id], "tags.`imblab.role` = 'trial'", max_results=100)
    assert len(trials) == 3 and {t.data.tags["mlflow.parentRunId"] for t in trials} == {store.tuned}
    assert everything.sweep_id is None and len(everything.runs) == 5  # 2 sweep jobs + 3 loose runs
    labels = [r.label for r in everything.runs]
    assert len(set(labels)) == 5
    assert {
        "persistence · none · argmax #1",
        "persistence · none · argmax #2",
        "lgbm_lags · class_weight · offsets_macro_f1",
        "lstm · none · argmax · tuned",
    } <= set(labels)
    tuned = next(r for r in everything.runs if r.run_id == store.tuned)
    assert set(tuned.best_params) >= {"units1", "units2", "learning_rate"}
    assert tuned.model_params["units1"] == tuned.best_params["units1"]  # the tuned value, not the config's
    assert len(tuned.history["val_loss"]) == tuned.metrics["epochs_run"]

    # Without --all-runs, a configuration run again counts once: its newest run.
    newest = load_panel_runs(EXPERIMENT, "all", store.uri)
    assert newest.reruns_left_out == 1 and [r.run_id for r in newest.runs if r.model == "persistence"] == [
        store.again
    ]

    # A trial is not a variant: comparing one points at the tuned run it belongs to.
    with pytest.raises(ImblabError, match=rf"Optuna trial \d of run {store.tuned}.*--sweep {store.tuned}"):
        load_panel_runs(sweep=trials[0].info.run_id, tracking_uri=store.uri)


def test_point_estimates_equal_the_logged_metrics_and_cis_bracket_them(everything: PanelSelection) -> None:
    comparison = panel_comparison(everything, n_boot=300, seed=1)
    assert not comparison.notes  # no recomputed metric differs from its logged value
    table = comparison.table.set_index("label")
    metrics = [c.removesuffix("_lo") for c in table.columns if c.startswith("test_") and c.endswith("_lo")]
    assert {"test_wage_rmse", "test_wage_rmse_level", "test_class_macro_f1", "test_recall_high"} <= set(
        metrics
    )
    for run in everything.runs:
        row = table.loc[run.label]
        for m in metrics:
            assert row[m] == pytest.approx(run.metrics[m], rel=1e-9, abs=1e-12), (run.label, m)
            if np.isnan(row[f"{m}_lo"]):  # undefined in every resample, e.g. a class the run never predicts
                assert m.startswith(("test_recall_", "test_precision_")) and row[m] == 0, (run.label, m)
                continue
            assert row[f"{m}_lo"] - 1e-12 <= row[m] <= row[f"{m}_hi"] + 1e-12, (run.label, m)
        assert row["test_wage_rmse_lo"] < row["test_wage_rmse_hi"]  # a real interval, not a point


def test_the_bootstrap_resamples_persons_not_examples(everything: PanelSelection) -> None:
    """Each resample equals the panel metrics of the drawn persons' examples, computed directly."""
    n_boot, seed = 25, 3
    comparison = panel_comparison(everything, n_boot=n_boot, seed=seed)
    run = everything.runs[1]
    frame = run.predictions
    persons = np.unique(frame["person"])
    idx = np.random.default_rng(seed).integers(0, len(persons), size=(n_boot, len(persons)))
    rows_of = {p: np.flatnonzero(frame["person"].to_numpy() == p) for p in persons}
    y_cls, pred = run.codes("y_class"), run.codes("class")
    for b in range(n_boot):
        rows = np.concatenate([rows_of[p] for p in persons[idx[b]]])
        expected = {
            **wage_metrics(frame["y_wage"].to_numpy()[rows], frame["wage"].to_numpy()[rows]),
            **class_metrics(y_cls[rows], pred[rows], run.class_names),
        }
        for m in ("wage_rmse", "wage_mae", "wage_r2", "wage_rmse_level", "class_accuracy",
                  "class_balanced_accuracy", "class_macro_f1"):  # fmt: skip
            assert comparison.samples[run.run_id][m][b] == pytest.approx(expected[m], rel=1e-9), (b, m)

    # The weights behind it: a person's examples are drawn together, and each resample draws n persons.
    codes, n_persons = person_codes(frame["person"].to_numpy())
    weights = person_weights(n_persons, n_boot, seed)
    per_example = weights[:, codes]
    for p in range(n_persons):
        assert (per_example[:, codes == p] == per_example[:, [np.argmax(codes == p)]]).all()
    assert (weights.sum(axis=1) == n_persons).all() and len(frame) > n_persons


def test_a_run_against_itself_is_tied(everything: PanelSelection) -> None:
    twins = [r for r in everything.runs if r.model == "persistence"]
    assert len(twins) == 2
    pd.testing.assert_frame_equal(twins[0].predictions, twins[1].predictions)
    comparison = panel_comparison(replace(everything, runs=twins), n_boot=200)
    second = comparison.table.iloc[1]
    for m in comparison.headline:
        assert second[f"best_{m}_diff"] == 0 and second[f"best_{m}_lo"] == second[f"best_{m}_hi"] == 0
        assert second[f"best_{m}_p_beats"] == 0 and second[f"best_{m}_verdict"] == "tied"
    assert comparison.table.iloc[0][f"best_{comparison.headline[0]}_verdict"] == "best"


def test_select_on_validation_report_on_test(
    everything: PanelSelection, caplog: pytest.LogCaptureFixture
) -> None:
    comparison = panel_comparison(everything, n_boot=100)
    val = [r.metrics["val_class_balanced_accuracy"] for r in comparison.ranked]
    assert val == sorted(val, reverse=True) and comparison.best_run_id == comparison.ranked[0].run_id
    assert not comparison.notes
    rmse = panel_comparison(everything, "val_wage_rmse", n_boot=100).ranked
    assert [r.metrics["val_wage_rmse"] for r in rmse] == sorted(r.metrics["val_wage_rmse"] for r in rmse)

    with caplog.at_level(logging.WARNING, "imblab.report.panel_comparison"):
        on_test = panel_comparison(everything, "test_class_macro_f1", n_boot=100)
    assert "winner's test score is optimistic" in caplog.text
    assert any("optimistic" in n for n in on_test.notes)
    two = replace(everything, runs=everything.runs[:2])
    assert not panel_comparison(two, "test_class_macro_f1", n_boot=100).notes  # two runs: no contest

    # The majority-class reference: always the most frequent test class.
    majority = comparison.table.iloc[-1]
    assert majority["label"] == f"{MAJORITY}: always {comparison.majority!r}"
    shares = comparison.y_test["y_class"].value_counts(normalize=True)
    assert comparison.majority == shares.idxmax()
    assert majority["test_class_accuracy"] == pytest.approx(shares.max())
    assert majority["test_class_balanced_accuracy"] == pytest.approx(1 / 3)


def test_compare_writes_every_format_and_logs_the_report_on_the_sweep(
    store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["compare", "--experiment", EXPERIMENT, "--tracking-uri", store.uri, "--n-boot", "200"]
    assert imblab_main([*argv, "--format", "markdown"]) == 0
    out = Path("reports") / f"{EXPERIMENT}-{store.sweep_id}"
    files = {fmt: out / name for fmt, name in FILES.items()}
    assert all(p.is_file() for p in files.values())
    md = capsys.readouterr().out
    assert md == files["markdown"].read_text()
    assert "Selected on validation, reported on test" in md and "test PERSONS" in md
    assert "persistence · none · argmax" in md and "lgbm_lags · none · argmax" in md
    assert "Persistence floor" in md and "majority class: always" in md and "](plots/" in md
    csv = pd.read_csv(files["csv"])
    assert list(csv["role"]) == ["floor", "candidate", "reference"] or list(csv["role"]) == [
        "candidate", "floor", "reference"
    ]  # fmt: skip
    html = files["html"].read_text()
    assert html.startswith("<!DOCTYPE html>") and html.count("<table") == 4
    assert not re.search(r"<script|<link|<iframe|src=\"(?!data:)|url\(|https?://", html), "external resource"
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    assert len(images) == 3 and all(base64.b64decode(i)[:8] == b"\x89PNG\r\n\x1a\n" for i in images)
    assert sorted(p.name for p in (out / "plots").iterdir()) == [
        "confusion_matrices.png", "metrics_ci.png", "wage_actual_vs_predicted.png"
    ]  # fmt: skip
    logged = {Path(f.path).name for f in MlflowClient(store.uri).list_artifacts(store.sweep_id, "report")}
    assert {*FILES.values(), "plots"} <= logged


def test_one_tuned_run_with_the_floor_from_the_experiment(
    store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["compare", "--sweep", store.tuned, "--tracking-uri", store.uri, "--n-boot", "100", "-o", "tuned"]
    assert imblab_main([*argv, "--format", "table"]) == 0
    text = capsys.readouterr().out
    assert "lstm · none · argmax · tuned" in text and "persistence · none · argmax (floor)" in text
    md = Path("tuned", FILES["markdown"]).read_text()
    assert re.search(r"\d complete, \d pruned, 0 fail", md) and re.search(r"units1=\d+\*", md)
    assert (Path("tuned") / "plots" / "training_history.png").is_file()
    csv = pd.read_csv(Path("tuned", FILES["csv"]))
    assert list(csv["role"]) == ["candidate", "floor (borrowed)", "reference"]
    assert csv.loc[0, "floor_wage_rmse_verdict"] in ("better", "worse", "within noise")
    logged = {Path(f.path).name for f in MlflowClient(store.uri).list_artifacts(store.tuned, "report")}
    assert FILES["html"] in logged


@pytest.mark.slow
def test_sweep_all_on_the_command_line_prints_the_same_numbers(store: Store) -> None:
    """The sweep and the separately launched runs, compared with --sweep all by the real CLI."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    proc = subprocess.run(
        [sys.executable, "-m", "imblab", "compare", "--experiment", EXPERIMENT, "--sweep", "all",
         "--tracking-uri", store.uri, "--n-boot", "150", "--seed", "4", "--format", "csv", "--no-log",
         "-o", str(store.root / "all")],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    printed = pd.read_csv(io.StringIO(proc.stdout))
    assert len(printed) == 5 and printed["label"].iloc[-1].startswith(MAJORITY)  # the rerun left out
    again = panel_comparison(load_panel_runs(EXPERIMENT, "all", store.uri), n_boot=150, seed=4).table
    for col in ("test_wage_rmse", "test_wage_rmse_lo", "test_class_macro_f1_hi", "best_wage_rmse_p_beats"):
        np.testing.assert_allclose(printed[col], again[col], atol=1e-12, err_msg=col)
    assert list(printed["label"]) == list(again["label"])


def test_runs_on_other_test_persons_are_refused(store: Store, capsys: pytest.CaptureFixture[str]) -> None:
    first = _run(store.uri, "mixed", "model=persistence", "tracking.log_model=false")
    other = _run(store.uri, "mixed", "model=persistence", "tracking.log_model=false", "split.seed=1")
    assert (
        imblab_main(["compare", "--experiment", "mixed", "--sweep", "all", "--tracking-uri", store.uri]) == 2
    )
    err = capsys.readouterr().err
    assert err.startswith("imblab: error: runs ") and "not scored on the same test examples" in err
    assert first[:8] in err and other[:8] in err and "split.seed: 42 vs 1" in err


def test_a_running_panel_sweep_needs_partial(store: Store, capsys: pytest.CaptureFixture[str]) -> None:
    client = MlflowClient(store.uri)
    exp = client.create_experiment("running")
    parent = client.create_run(exp, tags={"imblab.role": "sweep", "imblab.n_jobs": "2"}).info.run_id
    job = {"imblab.role": "run", "imblab.workload": "panel", "imblab.sweep_id": parent, "model": "lstm"}
    client.create_run(exp, tags=job)  # still RUNNING
    base = ["compare", "--experiment", "running", "--tracking-uri", store.uri, "--no-log"]
    assert imblab_main(base) == 2
    assert f"sweep {parent} is still running (0 of 2 children finished)" in capsys.readouterr().err
    assert imblab_main([*base, "--partial"]) == 2  # the finished runs so far: none yet
    assert "has no FINISHED panel runs to compare" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--metric", "val_pr_auc"), "--metric 'val_pr_auc' cannot rank panel models"),
        (("--metric", "cv_wage_rmse"), "cannot rank panel models; use test_<m> or val_<m>"),
        (("--metric", "val_recall_nobody"), "val_recall_nobody is not logged on run(s)"),
        (("--n-boot", "0"), "--n-boot must be a positive integer"),
    ],
)
def test_bad_input_gives_clear_errors(
    store: Store, capsys: pytest.CaptureFixture[str], args: tuple[str, ...], message: str
) -> None:
    argv = ["compare", "--experiment", EXPERIMENT, "--tracking-uri", store.uri, "--no-log", *args]
    assert imblab_main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("imblab: error: ") and message in err, err


def test_imblab_runs_lists_panel_runs_by_their_validation_metric(
    store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["runs", "--experiment", EXPERIMENT, "--tracking-uri", store.uri, "--format", "csv"]
    assert imblab_main(argv) == 0
    table = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert list(table.columns[:5]) == [
        "run_name", "model", "class_balance", "decision", "val_class_balanced_accuracy"
    ]  # fmt: skip
    assert table["val_class_balanced_accuracy"].is_monotonic_decreasing and len(table) >= 4


@pytest.mark.slow
@needs_nlswork
def test_nlswork_sweep_compared_over_test_persons(tmp_path: Path, tracking_uri: str) -> None:
    env = {"IMBLAB_NLSWORK_DIR": str(NLSWORK_DIR)}
    run = [sys.executable, "-m", "imblab"]
    base = [f"tracking.uri={tracking_uri}", "tracking.experiment=panel", "tracking.log_model=false"]
    for cmd in (
        [*run, "panel", "-m", "model=persistence,lgbm_lags", *base],
        [*run, "compare", "--experiment", "panel", "--tracking-uri", tracking_uri, "--format", "csv"],
    ):
        proc = subprocess.run(
            cmd, cwd=tmp_path, capture_output=True, text=True, timeout=1200, env={**os.environ, **env}
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
    table = pd.read_csv(io.StringIO(proc.stdout))
    assert list(table["model"].iloc[:2].sort_values()) == ["lgbm_lags", "persistence"]
    lgbm = table[table["model"] == "lgbm_lags"].iloc[0]
    # Thousands of test examples: the CIs are narrow, and lgbm_lags beats the floor on wage RMSE.
    assert lgbm["test_wage_rmse_hi"] - lgbm["test_wage_rmse_lo"] < 0.05
    assert lgbm["floor_wage_rmse_verdict"] == "better"
