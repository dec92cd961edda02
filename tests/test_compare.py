"""``imblab compare`` on a real small sweep: tables and CIs against a direct computation, all formats."""

from __future__ import annotations

import base64
import io
import logging
import os
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from sklearn.metrics import average_precision_score

from imblab.app.main import main as imblab_main
from imblab.config.compose import experiment_from_config
from imblab.errors import ImblabError
from imblab.experiment import run_experiment
from imblab.metrics.bootstrap import weighted_metrics
from imblab.metrics.core import threshold_metrics
from imblab.metrics.costs import Costs
from imblab.metrics.names import BOOT_METRICS
from imblab.report import comparison
from imblab.report.comparison import Sweep, bootstrap_table, check_same_test_set, load_sweep
from imblab.report.files import log_report
from imblab.report.render import FILES
from tests.conftest import QUICK, compose_config
from tests.support.sweeps import SweepStore, run_sweep

EXPERIMENT = "cmp"
SAMPLERS = ("none", "smote")
POLICIES = ("best_f1", "fixed")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> SweepStore:
    return run_sweep(tmp_path_factory.mktemp("sweep"), EXPERIMENT, SAMPLERS, POLICIES)


@pytest.fixture(scope="module")
def sweep(store: SweepStore) -> Sweep:
    return load_sweep(store.experiment, tracking_uri=store.uri)


def test_load_sweep_defaults_to_the_latest_sweep(store: SweepStore, sweep: Sweep) -> None:
    assert sweep.sweep_id == store.sweep_id and sweep.experiment == EXPERIMENT
    assert {r.label for r in sweep.runs} == {f"{s} × lgbm × {p}" for s in SAMPLERS for p in POLICIES}
    assert sweep.name == f"{EXPERIMENT}-{store.sweep_id}"
    n_test = 120  # 20% of 600 rows
    for run in sweep.runs:
        assert len(run.test) == n_test and len(run.oof) == 600 - n_test
        assert run.tags["imblab.sweep_id"] == store.sweep_id
        # The frozen threshold is the one the run's stored test decisions were made with.
        assert np.array_equal(run.test["decision"], (run.test["score"] >= run.threshold).astype(int))
    assert sweep.run(sweep.runs[0].run_id) is sweep.runs[0]
    # The parent recorded its 4 jobs when it started; all 4 finished, so the sweep is complete.
    assert sweep.progress.n_jobs == 4 and sweep.state == "complete" and not sweep.progress.unfinished
    # By parent id without an experiment, and every finished run: the same four runs.
    by_id = load_sweep(sweep=store.sweep_id, tracking_uri=store.uri)
    assert by_id.experiment == EXPERIMENT and [r.run_id for r in by_id.runs] == [r.run_id for r in sweep.runs]
    everything = load_sweep(EXPERIMENT, "all", store.uri)
    assert (
        everything.sweep_id is None and len(everything.runs) == 4 and everything.name == f"{EXPERIMENT}-all"
    )
    assert log_report(bootstrap_table(everything, n_boot=10), "unused") is None  # no parent to log on


def test_point_estimates_equal_logged_metrics_and_sklearn(sweep: Sweep) -> None:
    cmp = bootstrap_table(sweep, n_boot=20)
    y = sweep.y_test
    for row in cmp.table.itertuples():
        run = sweep.run(row.run_id)
        s = run.test["score"].to_numpy()
        assert row.test_pr_auc == pytest.approx(average_precision_score(y, s), abs=1e-12)
        direct = threshold_metrics(y, s, run.threshold, run.costs)
        for m in cmp.metrics:
            assert getattr(row, f"test_{m}") == pytest.approx(direct[m], abs=1e-12), m
            assert getattr(row, f"test_{m}") == pytest.approx(run.metrics[f"test_{m}"], abs=1e-9), m
            assert getattr(row, f"cv_{m}") == run.metrics[f"cv_{m}"]
        assert row.cv_pr_auc_fold_se == run.metrics["cv_pr_auc_fold_se"]
    # Best first by the shared rule: CV PR-AUC (select on CV, confirm on test), then fewer test alarms.
    assert list(cmp.table["rank"]) == [1, 2, 3, 4] and cmp.rule.metric == "cv_pr_auc" and not cmp.notes
    assert cmp.table["cv_pr_auc"].is_monotonic_decreasing
    alarms = cmp.table["run_id"].map(
        lambda rid: sweep.run(rid).metrics["test_tp"] + sweep.run(rid).metrics["test_fp"]
    )
    for pair in (cmp.table.index[:2], cmp.table.index[2:]):  # two policies of one fitted model: equal CV
        assert cmp.table.loc[pair, "cv_pr_auc"].nunique() == 1 and alarms[pair].is_monotonic_increasing
    assert cmp.best_run_id == cmp.table["run_id"].iat[0] and cmp.table["is_best"].sum() == 1
    # Ranking by a test metric among more than two runs: allowed, with the winner's-curse warning.
    on_test = bootstrap_table(sweep, "test_pr_auc", n_boot=20)
    assert on_test.table["test_pr_auc"].is_monotonic_decreasing
    assert len(on_test.notes) == 1 and "winner's curse" in on_test.notes[0]


def test_cis_and_paired_comparison_match_a_direct_bootstrap(sweep: Sweep) -> None:
    n_boot, seed = 100, 7
    cmp = bootstrap_table(sweep, "test_pr_auc", n_boot=n_boot, seed=seed)
    y = sweep.y_test
    idx = np.random.default_rng(seed).integers(0, len(y), size=(n_boot, len(y)))
    checked = ("pr_auc", "roc_auc", "recall", "precision", "expected_cost", "net_saving")
    direct: dict[str, dict[str, np.ndarray]] = {}
    for run in sweep.runs:
        s = run.test["score"].to_numpy()
        per = [threshold_metrics(y[i], s[i], run.threshold, run.costs) for i in idx]
        direct[run.run_id] = {m: np.array([p[m] for p in per]) for m in checked}

    table = cmp.table.set_index("run_id")
    best = table.index[0]
    for rid, values in direct.items():
        for m in checked:
            np.testing.assert_allclose(cmp.samples[rid][m], values[m], atol=1e-12, err_msg=m)
            finite = values[m][np.isfinite(values[m])]
            lo, hi = np.percentile(finite, [2.5, 97.5])
            assert table.at[rid, f"test_{m}_lo"] == pytest.approx(lo, abs=1e-12)
            assert table.at[rid, f"test_{m}_hi"] == pytest.approx(hi, abs=1e-12)
        diff = values["pr_auc"] - direct[best]["pr_auc"]
        diff = diff[~np.isnan(diff)]
        assert table.at[rid, "diff_vs_best_lo"] == pytest.approx(np.percentile(diff, 2.5), abs=1e-12)
        assert table.at[rid, "diff_vs_best_hi"] == pytest.approx(np.percentile(diff, 97.5), abs=1e-12)
        if rid == best:
            assert np.isnan(table.at[rid, "p_beats_best"])
        else:
            assert table.at[rid, "p_beats_best"] == pytest.approx(np.mean(diff > 0))
            assert table.at[rid, "p_ties_best"] == pytest.approx(np.mean(diff == 0))
    # Policies on one fitted model share the PR curve: identical PR-AUC on every resample.
    for sampler in SAMPLERS:
        a, b = (table.index[table["variant"] == f"{sampler} × lgbm × {p}"][0] for p in POLICIES)
        np.testing.assert_array_equal(cmp.samples[a]["pr_auc"], cmp.samples[b]["pr_auc"])


def test_lower_is_better_metric_ranks_ascending(sweep: Sweep) -> None:
    cmp = bootstrap_table(sweep, "expected_cost", n_boot=100)
    assert cmp.metric == "expected_cost" and not cmp.higher_is_better
    assert cmp.table["test_expected_cost"].is_monotonic_increasing
    others = cmp.table[~cmp.table["is_best"]]
    best = cmp.samples[cmp.best_run_id]["expected_cost"]
    for row in others.itertuples():
        assert row.p_beats_best == pytest.approx(np.mean(cmp.samples[row.run_id]["expected_cost"] < best))


def test_chunked_resampling_gives_the_same_table(sweep: Sweep, monkeypatch: pytest.MonkeyPatch) -> None:
    whole = bootstrap_table(sweep, n_boot=90, seed=3)
    monkeypatch.setattr(comparison, "_MAX_CELLS", 7 * len(sweep.y_test))  # blocks of 7 resamples
    chunked = bootstrap_table(sweep, n_boot=90, seed=3)
    pd.testing.assert_frame_equal(whole.table, chunked.table)


def test_weighted_metrics_equal_threshold_metrics_on_repeated_rows() -> None:
    rng = np.random.default_rng(0)
    n = 60
    y = (rng.random(n) < 0.2).astype(np.int64)
    y[:2] = [0, 1]
    s = np.round(rng.random(n), 1)  # many tied scores
    costs = Costs(fn=7.0, fp=2.0, defect_value=4.0, inspection=0.5)
    w = rng.integers(0, 3, size=(25, n)).astype(float)
    w[0] = 1.0
    w[1] = np.where(y == 0, 1.0, 0.0)  # a resample without positives
    got = weighted_metrics(y, s, 0.5, costs, w)
    for b in range(len(w)):
        rows = np.repeat(np.arange(n), w[b].astype(int))
        want = threshold_metrics(y[rows], s[rows], 0.5, costs)
        for m in BOOT_METRICS:
            np.testing.assert_allclose(got[m][b], want[m], atol=1e-12, err_msg=f"{m} in resample {b}")
    assert np.isnan(got["pr_auc"][1]) and np.isnan(got["roc_auc"][1])
    with pytest.raises(ImblabError, match="cannot bootstrap"):
        weighted_metrics(y, s, 0.5, costs, w, ["roi"])


def test_compare_writes_every_format_and_logs_the_report_on_the_sweep(
    store: SweepStore, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["compare", "--experiment", EXPERIMENT, "--tracking-uri", store.uri, "--n-boot", "200"]
    assert imblab_main([*argv, "--format", "csv"]) == 0
    out = Path("reports") / f"{EXPERIMENT}-{store.sweep_id}"  # the default, under the cwd
    files = {fmt: out / name for fmt, name in FILES.items()}
    assert all(p.is_file() for p in files.values())
    printed = pd.read_csv(io.StringIO(capsys.readouterr().out))
    pd.testing.assert_frame_equal(printed, pd.read_csv(files["csv"]))
    assert len(printed) == 4 and printed["is_best"].sum() == 1

    text = files["table"].read_text()
    assert text.startswith(f"Experiment '{EXPERIMENT}', sweep {store.sweep_id} (complete): 4 runs")
    assert "Δ vs best [95% CI]" in text and "P(beats best)" in text and "best" in text
    md = files["markdown"].read_text()
    rows = [line for line in md.splitlines() if line.startswith("|") and "× lgbm ×" in line]
    assert len(rows) == 3 * 4 and "| variant" in md  # ranking, test metrics and cost tables
    ranking = md.split("## Ranking by CV PR-AUC", 1)[1].split("\n## ", 1)[0]
    assert sum("× lgbm ×" in line for line in ranking.splitlines()) == 4
    assert "tied" in md  # best_f1 and fixed on one model share PR-AUC on every resample

    html = files["html"].read_text()
    assert html.startswith("<!DOCTYPE html>") and "<table" in html
    assert not re.search(r"<script|<link|<iframe|src=\"(?!data:)|url\(|https?://", html), "external resource"
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    assert len(images) == 4
    assert all(base64.b64decode(img)[:8] == b"\x89PNG\r\n\x1a\n" for img in images)
    assert sorted(p.name for p in (out / "plots").iterdir()) == [
        "ci.png", "confusion_matrices.png", "cost_vs_threshold.png", "pr_curves.png"
    ]  # fmt: skip

    logged = {Path(f.path).name for f in MlflowClient(store.uri).list_artifacts(store.sweep_id, "report")}
    assert {*FILES.values(), "plots"} <= logged

    # --format html prints the report's path; --no-log / --output are honoured.
    assert imblab_main([*argv, "--format", "html", "--no-log", "-o", "elsewhere"]) == 0
    assert capsys.readouterr().out.strip() == str(Path("elsewhere") / "report.html")


@pytest.mark.slow
def test_cli_subprocess_prints_the_same_numbers(store: SweepStore) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    proc = subprocess.run(
        [sys.executable, "-m", "imblab", "compare", "--experiment", EXPERIMENT, "--tracking-uri", store.uri,
         "--n-boot", "200", "--seed", "5", "--format", "csv", "--no-log"],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "report written to reports" in proc.stderr
    printed = pd.read_csv(io.StringIO(proc.stdout))
    again = bootstrap_table(load_sweep(EXPERIMENT, tracking_uri=store.uri), n_boot=200, seed=5).table
    for col in ("test_pr_auc", "test_pr_auc_lo", "test_recall_hi", "diff_vs_best_lo", "p_beats_best"):
        np.testing.assert_allclose(printed[col], again[col], atol=1e-12, err_msg=col)


def test_runs_on_different_test_sets_are_rejected(store: SweepStore, sweep: Sweep) -> None:
    # Two loose runs (no sweep) in the module's store, on the same data but another split seed.
    # The quickest fits (no sampler, logistic regression): only the data and the split matter here.
    for extra in ([], ["split.seed=1"]):
        cfg = compose_config(
            *QUICK,
            f"tracking.uri={store.uri}",
            "tracking.experiment=loose",
            "tracking.log_model=false",
            *extra,
        )
        run_experiment(experiment_from_config(cfg))
    with pytest.raises(ImblabError, match=r"different test sets \(split.seed: 42 vs 1\)"):
        load_sweep("loose", tracking_uri=store.uri)

    # Other data (fingerprint), or test rows that differ although the recorded identity matches.
    other_data = replace(sweep.runs[1], tags={**sweep.runs[1].tags, "data_fingerprint": "0123456789abcdef"})
    with pytest.raises(
        ImblabError, match=r"different test sets \(data_fingerprint: \w+ vs 0123456789abcdef\)"
    ):
        check_same_test_set(replace(sweep, runs=[sweep.runs[0], other_data]))
    shifted = replace(sweep.runs[1], test=sweep.runs[1].test.assign(row=sweep.runs[1].test["row"] + 1))
    with pytest.raises(ImblabError, match="the stored test rows differ"):
        check_same_test_set(replace(sweep, runs=[sweep.runs[0], shifted]))


def test_bad_input_gives_clear_errors(
    store: SweepStore, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    child = load_sweep(EXPERIMENT, tracking_uri=store.uri).runs[0].run_id
    base = ["compare", "--tracking-uri", store.uri]
    cases = {
        ("--experiment", "nope"): "no MLflow experiment 'nope'",
        ("--experiment", EXPERIMENT, "--metric", "test_roi"): "--metric 'test_roi' cannot be compared",
        ("--experiment", EXPERIMENT, "--n-boot", "0"): "--n-boot must be a positive integer",
        ("--sweep", child): f"run {child} is not a sweep parent",
        ("--sweep", "0" * 32): "no run '00000000000000000000000000000000'",
    }
    for args, message in cases.items():
        assert imblab_main([*base, *args]) == 2, args
        err = capsys.readouterr().err
        assert err.startswith("imblab: error: ") and message in err, err

    client = MlflowClient(store.uri)
    exp = client.create_experiment("hand-made")

    def sweep_with_one_job(start_time: int, status: str) -> str:
        parent = client.create_run(exp, start_time=start_time, tags={"imblab.role": "sweep"}).info.run_id
        job = client.create_run(
            exp, start_time=start_time, tags={"imblab.role": "run", "imblab.sweep_id": parent}
        )
        client.set_terminated(job.info.run_id, status)
        client.set_terminated(parent, status)
        return parent

    # An older sweep whose job finished without imblab's stored scores (e.g. logged by hand), and the
    # latest sweep, whose only job failed: the default is the latest, which has nothing to compare.
    older = sweep_with_one_job(1_000_000, "FINISHED")
    sweep_with_one_job(2_000_000, "FAILED")
    latest_failed = r"latest sweep of experiment 'hand-made'.*no FINISHED training runs"
    with (
        caplog.at_level(logging.WARNING, "imblab.report.sweeps"),
        pytest.raises(ImblabError, match=latest_failed),
    ):
        load_sweep("hand-made", tracking_uri=store.uri)
    assert "leaving out 1 run(s) that did not finish" in caplog.text
    with pytest.raises(ImblabError, match=r"has no scores/oof_scores.parquet / scores/test_scores.parquet"):
        load_sweep(sweep=older, tracking_uri=store.uri)
