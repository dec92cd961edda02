"""``imblab compare`` on repeated-CV runs: paired corrected t over the shared outer folds, verdicts, the
checks that the folds really match, and a real small repeated-CV sweep through the CLI."""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from imblab.app.main import main as imblab_main
from imblab.config.compose import experiment_from_config
from imblab.errors import ImblabError
from imblab.experiment import run_experiment
from imblab.metrics.costs import Costs
from imblab.metrics.resampled import paired_corrected_t
from imblab.report.comparison import RunScores, Sweep, check_same_folds, folds_table, load_sweep
from imblab.report.render import FILES, markdown_table, text_table, verdict
from tests.conftest import QUICK, compose_config
from tests.support.sweeps import SweepStore, run_sweep

FOLD_PARAMS = {"evaluation.kind": "stratified", "evaluation.seed": "42", "evaluation.repeats": "5",
               "evaluation.folds": "5", "evaluation.level": "0.95"}  # fmt: skip


def _run(name: str, pr_auc: np.ndarray, alarms: float, start: int) -> RunScores:
    """A repeated-CV run with the given per-fold PR-AUC over 25 outer folds of 400 rows (synthetic)."""
    folds = pd.DataFrame(
        {"step": range(25), "n_train": 320, "n_test": 80, "positives_test": 8, "pr_auc": pr_auc,
         "recall": 0.5, "precision": 0.5, "expected_cost": 1.0, "tp": alarms / 2, "fp": alarms / 2}
    )  # fmt: skip
    metrics = {f"rcv_{m}": float(folds[m].mean()) for m in ("pr_auc", "recall", "precision", "tp", "fp")}
    metrics |= {f"rcv_{m}_ci_{s}": metrics[f"rcv_{m}"] for m in ("pr_auc",) for s in ("low", "high")}
    tags = {"evaluation": "repeated_cv", "data_fingerprint": "f" * 16, "sampler": name, "model": "lgbm",
            "threshold_policy": "best_f1"}  # fmt: skip
    return RunScores(name * 4, name, name, tags, FOLD_PARAMS, metrics, 0.5, Costs(), start, folds=folds)


@pytest.fixture
def synthetic() -> Sweep:
    rng = np.random.default_rng(0)
    base = 0.3 + rng.normal(0, 0.05, 25)  # fold-to-fold spread shared by every variant (same folds)
    noise = rng.normal(0, 0.03, 25)
    runs = [
        _run("weak", base - 0.08 + rng.normal(0, 0.01, 25), 20, 1),  # clearly worse
        _run("strong", base + 0.02, 12, 2),
        _run("twin", base + 0.02, 14, 3),  # identical folds to strong, more alarms: ranked after it
        _run("close", base + 0.019 + noise - noise.mean(), 12, 4),  # 0.001 below strong, plus noise
    ]
    return Sweep("e", "1", "s" * 32, "sqlite://", runs)


def test_paired_folds_give_better_worse_within_noise_and_tied(synthetic: Sweep) -> None:
    cmp = folds_table(synthetic, metrics=("pr_auc", "recall"))
    t = cmp.table.set_index("variant")
    assert cmp.rule.metric == "rcv_pr_auc" and not cmp.notes and cmp.score_prefix == "rcv"
    # Ties in rcv_pr_auc go to fewer mean alarms per fold: strong (12) before twin (14).
    assert list(t.index) == ["strong", "twin", "close", "weak"]
    verdicts = {v: verdict(cmp, row) for v, row in t.iterrows()}
    assert verdicts == {"strong": "best", "twin": "tied", "close": "within noise", "weak": "worse"}
    best = "strong"
    # The numbers are the corrected paired t on the per-fold values against the best run.
    folds = {r.label: r.folds for r in synthetic.runs}
    direct = paired_corrected_t(folds["weak"]["pr_auc"], folds[best]["pr_auc"], 320, 80)
    assert t.at["weak", "diff_vs_best"] == pytest.approx(direct.mean)
    assert (t.at["weak", "diff_vs_best_lo"], t.at["weak", "diff_vs_best_hi"]) == pytest.approx(
        (direct.low, direct.high)
    )
    assert t.at["weak", "p_value"] == pytest.approx(direct.p_value) and direct.p_value < 0.001
    assert np.isnan(t.at[best, "p_value"]) and t.at[best, "diff_vs_best"] == 0.0

    text = text_table(cmp)
    assert "repeated CV on the same 25 outer folds" in text and "corrected" in text
    assert "CV folds PR-AUC [95% CI]" in text and "test" not in text.split("\n\n")[-2].split("\n")[0]
    assert "| weak" in markdown_table(cmp)


def test_ranking_by_a_test_metric_or_other_folds_is_refused(synthetic: Sweep) -> None:
    with pytest.raises(ImblabError, match="repeated CV have no test set; rank them by rcv_pr_auc"):
        folds_table(synthetic, "test_pr_auc")
    check_same_folds(synthetic)  # the fixture's runs share their folds
    other_seed = replace(synthetic.runs[1], params={**FOLD_PARAMS, "evaluation.seed": "1"})
    with pytest.raises(ImblabError, match=r"different outer folds \(evaluation.seed: 42 vs 1\)"):
        check_same_folds(replace(synthetic, runs=[synthetic.runs[0], other_seed]))
    sizes = synthetic.runs[1].folds.assign(n_test=81)
    with pytest.raises(ImblabError, match="outer folds' sizes differ"):
        check_same_folds(
            replace(synthetic, runs=[synthetic.runs[0], replace(synthetic.runs[1], folds=sizes)])
        )


@pytest.fixture(scope="module")
def rcv_store(tmp_path_factory: pytest.TempPathFactory) -> SweepStore:
    rcv = ("evaluation=repeated_cv", "evaluation.repeats=2", "evaluation.folds=3")
    return run_sweep(tmp_path_factory.mktemp("rcv"), "rcv", ("none", "smote"), ("best_f1", "fixed"), rcv)


@pytest.mark.slow
def test_compare_cli_on_a_real_repeated_cv_sweep(
    rcv_store: SweepStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The sweep's end already logged compare's fold report on the parent, and named the best by rcv_pr_auc.
    note = MlflowClient(rcv_store.uri).get_run(rcv_store.sweep_id).data.tags["mlflow.note.content"]
    assert "**Best by rcv_pr_auc**" in note and "--metric rcv_pr_auc" in note
    assert (
        "ranked by rcv_pr_auc; its 95% intervals come from the corrected paired t over the shared outer"
        in note
    )
    argv = ["compare", "--experiment", "rcv", "--tracking-uri", rcv_store.uri]
    assert imblab_main([*argv, "--format", "csv"]) == 0
    table = pd.read_csv(io.StringIO(capsys.readouterr().out))
    sweep = load_sweep("rcv", tracking_uri=rcv_store.uri)
    assert sweep.protocol == "repeated_cv" and all(len(r.folds) == 6 for r in sweep.runs)
    assert len(table) == 4 and table["rcv_pr_auc"].is_monotonic_decreasing
    for row in table.itertuples():
        run = sweep.run(row.run_id)
        assert row.rcv_pr_auc == pytest.approx(run.metrics["rcv_pr_auc"])
        best = sweep.run(table["run_id"].iat[0])
        direct = paired_corrected_t(run.folds["pr_auc"], best.folds["pr_auc"], run.folds["n_train"],
                                    run.folds["n_test"])  # fmt: skip
        assert row.diff_vs_best == pytest.approx(direct.mean)
    # The two policies of one fitted model share every fold's PR-AUC: tied, not merely within noise.
    out = Path("reports") / f"rcv-{rcv_store.sweep_id}"
    md = (out / FILES["markdown"]).read_text()
    assert "tied" in md and "corrected" in md and "repeated CV" in md
    assert sorted(p.name for p in (out / "plots").iterdir()) == ["ci.png", "fold_differences.png"]
    assert (out / FILES["html"]).read_text().count("data:image/png;base64,") == 2

    # A holdout run beside them: a mixture of protocols is refused before anything is downloaded.
    cfg = compose_config(*QUICK, f"tracking.uri={rcv_store.uri}", "tracking.experiment=rcv",
                         "tracking.log_model=false")  # fmt: skip
    run_experiment(experiment_from_config(cfg))
    assert imblab_main([*argv, "--sweep", "all"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("imblab: error: runs ") and "were evaluated by different protocols" in err
    assert "retrain the holdout variants with evaluation=repeated_cv" in err
    # Repeated-CV runs on other folds (another evaluation.seed) are refused too.
    cfg = compose_config(*QUICK, "evaluation=repeated_cv", "evaluation.repeats=2", "evaluation.folds=3",
                         "evaluation.seed=1", f"tracking.uri={rcv_store.uri}", "tracking.experiment=rcv2",
                         "tracking.log_model=false")  # fmt: skip
    run_experiment(experiment_from_config(cfg))
    cfg = compose_config(*QUICK, "evaluation=repeated_cv", "evaluation.repeats=2", "evaluation.folds=3",
                         f"tracking.uri={rcv_store.uri}", "tracking.experiment=rcv2",
                         "tracking.log_model=false")  # fmt: skip
    run_experiment(experiment_from_config(cfg))
    assert (
        imblab_main(["compare", "--experiment", "rcv2", "--tracking-uri", rcv_store.uri, "--sweep", "all"])
        == 2
    )
    err = capsys.readouterr().err
    assert "evaluated on different outer folds (evaluation.seed: 1 vs 42)" in err or (
        "evaluated on different outer folds (evaluation.seed: 42 vs 1)" in err
    ), err


def test_a_clearly_better_variant_is_better_than_all(synthetic: Sweep) -> None:
    """One variant clearly ahead of the others on the same folds: its verdict says so; with an identical
    twin beside it, it is only 'best' (the twin is 'tied', nothing separates them)."""
    alone = replace(synthetic, runs=[r for r in synthetic.runs if r.label in ("strong", "weak")])
    cmp = folds_table(alone, metrics=("pr_auc",))
    verdicts = {r["variant"]: verdict(cmp, r) for _, r in cmp.table.iterrows()}
    assert verdicts == {"strong": "best: better than all", "weak": "worse"}
    with_twin = folds_table(replace(synthetic, runs=synthetic.runs[:3]), metrics=("pr_auc",))
    verdicts = {r["variant"]: verdict(with_twin, r) for _, r in with_twin.table.iterrows()}
    assert verdicts == {"strong": "best", "twin": "tied", "weak": "worse"}
