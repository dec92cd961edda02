"""evaluation=repeated_cv: outer folds, the nested protocol's independence from outer-test labels, what a
run logs (rcv_ metrics, intervals, per-fold values and rows), the fit cache under a policy sweep, and a
small run on SECOM through the CLI."""

from __future__ import annotations

import re
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from sklearn.metrics import average_precision_score

from imblab.config.compose import experiment_from_config
from imblab.config.specs import EvaluationSpec
from imblab.data.dataset import Dataset
from imblab.data.synthetic import make_synthetic
from imblab.errors import ImblabError
from imblab.experiment import RunOutcome, run_experiment
from imblab.metrics.names import METRIC_NAMES
from imblab.metrics.resampled import corrected_t_interval, paired_corrected_t
from imblab.pipeline import calibrated
from imblab.protocol.cv import fit_and_score
from imblab.protocol.outer import outer_folds, run_outer_folds
from imblab.protocol.split import Split
from tests.conftest import FAST, compose_config
from tests.support.cli import imblab, runs_of

RCV = ("evaluation=repeated_cv", "evaluation.repeats=2", "evaluation.folds=3")


def _run(tracking_uri: str, *overrides: str) -> RunOutcome:
    cfg = compose_config(*FAST, *RCV, f"tracking.uri={tracking_uri}", "tracking.experiment=t", *overrides)
    return run_experiment(experiment_from_config(cfg))


def _artifact(uri: str, run_id: str, path: str) -> Path:
    return Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=path, tracking_uri=uri))


def test_stratified_outer_folds_partition_every_repeat_and_do_not_depend_on_the_variant() -> None:
    ds = make_synthetic(n_samples=300, n_features=6, positive_rate=0.1, seed=0)
    spec = EvaluationSpec(name="repeated_cv", repeats=3, folds=4, seed=7)
    folds = outer_folds(ds, spec)
    assert [f.step for f in folds] == list(range(12))
    n_pos = int(ds.y.sum())
    for r in range(3):
        tests = [f.split.test for f in folds if f.repeat == r]
        assert np.array_equal(np.sort(np.concatenate(tests)), np.arange(300))  # every row tested once
        for f in folds[r * 4 : r * 4 + 4]:
            assert np.intersect1d(f.split.train, f.split.test).size == 0
            assert abs(int(ds.y.iloc[f.split.test].sum()) - n_pos / 4) <= 1  # stratified
    assert not np.array_equal(folds[0].split.test, folds[4].split.test)  # repeats reshuffle
    again = outer_folds(ds, spec)  # a function of labels + evaluation only: same seed, same folds
    assert all(np.array_equal(a.split.test, b.split.test) for a, b in zip(folds, again, strict=True))


def test_time_folds_chain_forward() -> None:
    ds = make_synthetic(n_samples=300, n_features=6, positive_rate=0.2, seed=1)
    spec = EvaluationSpec(name="repeated_cv", kind="time", repeats=1, folds=3)
    folds = outer_folds(ds, spec)
    ts = ds.timestamps.to_numpy()
    assert [len(f.split.test) for f in folds] == [75, 75, 75]
    for f in folds:
        assert ts[f.split.train].max() <= ts[f.split.test].min()  # trained on the past only
    assert [len(f.split.train) for f in folds] == [75, 150, 225]
    with pytest.raises(ImblabError, match="needs timestamps"):
        outer_folds(Dataset("x", ds.X, ds.y), spec)
    with pytest.raises(ImblabError, match=r"lower evaluation\.folds"):
        outer_folds(ds, EvaluationSpec(name="repeated_cv", folds=61))


@pytest.mark.parametrize("calibration", ["none", "sigmoid"])
def test_outer_test_labels_never_reach_the_fit_or_the_threshold(calibration: str) -> None:
    """Flip every label of one outer fold's test rows: that fold's threshold and outer-test scores stay
    exactly the same (the inner protocol, calibration included, saw only outer-training rows), while its
    outer-test metrics move. The folds are held fixed: stratification itself looks at labels, by design."""
    ds = make_synthetic(n_samples=500, n_features=8, positive_rate=0.12, seed=5)
    exp = experiment_from_config(compose_config(*FAST, f"calibration={calibration}"))
    outer = outer_folds(ds, EvaluationSpec(name="repeated_cv", repeats=1, folds=3, seed=1))[1]
    y = ds.y.copy()
    y.iloc[outer.split.test] = 1 - y.iloc[outer.split.test]
    flipped = Dataset(ds.name, ds.X, y, ds.timestamps)
    estimator = calibrated(exp.pipeline, exp.calibration)

    def result(data: Dataset):
        def fit(split: Split):
            return fit_and_score(data, split, estimator, exp.cv, exp.sampler_name), False

        (res,) = run_outer_folds(data, [outer], fit, exp.policy, exp.costs)
        return res

    a, b = result(ds), result(flipped)
    assert a.threshold == b.threshold
    np.testing.assert_array_equal(a.test_scores, b.test_scores)
    assert a.metrics["tp"] != b.metrics["tp"] and a.metrics["pr_auc"] != b.metrics["pr_auc"]


def test_repeated_cv_run_logs_means_intervals_folds_and_rows(tracking_uri: str) -> None:
    out = _run(tracking_uri)
    client = MlflowClient(tracking_uri)
    run = client.get_run(out.run_id)
    m = run.data.metrics
    assert run.info.status == "FINISHED" and run.data.tags["evaluation"] == "repeated_cv"
    for name in METRIC_NAMES:
        assert {f"rcv_{name}", f"rcv_{name}_ci_low", f"rcv_{name}_ci_high", f"cv_{name}"} <= set(m), name
        assert f"test_{name}" not in m  # no holdout test set under repeated CV
    assert m["rcv_pr_auc_ci_low"] < m["rcv_pr_auc"] < m["rcv_pr_auc_ci_high"]
    assert out.rcv_metrics["rcv_pr_auc"] == pytest.approx(m["rcv_pr_auc"])

    table = pd.read_csv(_artifact(tracking_uri, out.run_id, "scores/rcv_folds.csv"))
    assert list(table["step"]) == list(range(6)) and set(table["repeat"]) == {0, 1}
    history = client.get_metric_history(out.run_id, "rcv_fold_pr_auc")
    history = sorted((h.step, h.value) for h in history)
    assert [h[0] for h in history] == list(range(6))
    assert [h[1] for h in history] == pytest.approx(list(table["pr_auc"]))
    ci = corrected_t_interval(table["pr_auc"], table["n_train"], table["n_test"])
    assert (m["rcv_pr_auc"], m["rcv_pr_auc_ci_low"], m["rcv_pr_auc_ci_high"]) == pytest.approx(
        (ci.mean, ci.low, ci.high)
    )

    rows = pd.read_parquet(_artifact(tracking_uri, out.run_id, "scores/rcv_scores.parquet"))
    for r in (0, 1):  # every row is an outer-test row exactly once per repeat
        assert sorted(rows.loc[rows["repeat"] == r, "row"]) == list(range(600))
    for step, part in rows.groupby("step"):
        fold = table.set_index("step").loc[step]
        assert average_precision_score(part["y_true"], part["score"]) == pytest.approx(fold["pr_auc"])
        assert (part["decision"] == (part["score"] >= fold["threshold"])).all()
        assert len(part) == fold["n_test"]

    # The frozen model: refitted on all rows, thresholded on their out-of-fold scores.
    oof = pd.read_parquet(_artifact(tracking_uri, out.run_id, "scores/oof_scores.parquet"))
    assert len(oof) == 600
    exp = experiment_from_config(compose_config(*FAST))
    assert out.choice.threshold == exp.policy.choose(oof["y_true"], oof["score"]).threshold
    frozen = mlflow.pyfunc.load_model(out.model_uri).unwrap_python_model()
    assert frozen.threshold == out.choice.threshold
    scores = {Path(f.path).name for f in client.list_artifacts(out.run_id, "scores")}
    assert "test_scores.parquet" not in scores and {"rcv_folds.csv", "rcv_scores.parquet"} <= scores
    plots = {Path(f.path).name for f in client.list_artifacts(out.run_id, "plots")}
    assert {"rcv_folds.png", "reliability.png", "pr_roc_curves.png"} <= plots


def test_policy_sweep_fits_each_outer_fold_once_and_variants_share_folds(tracking_uri: str) -> None:
    first = _run(tracking_uri, "threshold=best_f1")
    second = _run(tracking_uri, "threshold=min_cost")
    client = MlflowClient(tracking_uri)
    m1, m2 = (client.get_run(o.run_id).data.metrics for o in (first, second))
    assert (m1["outer_fold_cache_hits"], m2["outer_fold_cache_hits"]) == (0, 6)
    assert second.cache_hit and m1["rcv_pr_auc"] == m2["rcv_pr_auc"]  # the same fitted models

    other = _run(tracking_uri, "sampler=random_under")  # another variant: new fits, the same outer folds
    assert client.get_run(other.run_id).data.metrics["outer_fold_cache_hits"] == 0
    rows = [
        pd.read_parquet(_artifact(tracking_uri, o.run_id, "scores/rcv_scores.parquet"))
        for o in (first, other)
    ]
    assert rows[0][["step", "row"]].equals(rows[1][["step", "row"]])
    tables = [pd.read_csv(_artifact(tracking_uri, o.run_id, "scores/rcv_folds.csv")) for o in (first, other)]
    paired = paired_corrected_t(
        tables[0]["pr_auc"], tables[1]["pr_auc"], tables[0]["n_train"], tables[0]["n_test"]
    )
    assert paired.n_folds == 6 and 0.0 <= paired.p_value <= 1.0


@pytest.mark.slow
def test_time_folds_end_to_end_ignore_the_labels_of_the_last_block(tracking_uri: str, tmp_path: Path) -> None:
    """Forward-chaining folds do not look at labels, so flipping the last block (a test part only, never
    trained on) must leave every fold's threshold and every outer-test score unchanged."""
    ds = make_synthetic(n_samples=600, n_features=8, positive_rate=0.15, seed=11)
    frame = ds.X.assign(target=ds.y, ts=ds.timestamps)
    last = np.argsort(ds.timestamps.to_numpy(), kind="stable")[-120:]  # block 5 of 5 (4 folds + 1)
    flipped = frame.copy()
    flipped.loc[last, "target"] = 1 - flipped.loc[last, "target"]
    outs = []
    for name, table in (("orig", frame), ("flipped", flipped)):
        path = tmp_path / f"{name}.parquet"
        table.to_parquet(path)
        cfg = compose_config(
            *(o for o in FAST if not o.startswith("data")),
            "data=table",
            f"data.path={path}",
            "data.target=target",
            "data.timestamp_column=ts",
            "evaluation=time_cv",
            "evaluation.folds=4",
            f"tracking.uri={tracking_uri}",
            "tracking.experiment=t",
        )
        outs.append(run_experiment(experiment_from_config(cfg)))
    rows = [pd.read_parquet(_artifact(tracking_uri, o.run_id, "scores/rcv_scores.parquet")) for o in outs]
    np.testing.assert_array_equal(rows[0]["score"], rows[1]["score"])
    np.testing.assert_array_equal(rows[0]["threshold"], rows[1]["threshold"])
    assert not rows[0]["y_true"].equals(rows[1]["y_true"])


@pytest.mark.slow
def test_repeated_cv_on_secom_through_the_cli(tmp_path: Path, tracking_uri: str, secom_dir: Path) -> None:
    proc = imblab(
        "train",
        *RCV,
        "model=logreg",
        "sampler=random_under",
        "calibration=sigmoid",
        f"tracking.uri={tracking_uri}",
        "tracking.experiment=secom-rcv",
        cwd=tmp_path,
        env={"IMBLAB_SECOM_DIR": str(secom_dir)},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = runs_of(tracking_uri, "secom-rcv")
    m = run.data.metrics
    assert run.info.status == "FINISHED"
    assert m["cv_n"] == 1567 and "test_n" not in m  # the frozen model's threshold: out-of-fold on all rows
    for name in ("pr_auc", "roc_auc", "recall", "precision", "brier", "expected_cost"):
        assert m[f"rcv_{name}_ci_low"] <= m[f"rcv_{name}"] <= m[f"rcv_{name}_ci_high"], name
    assert 0.066 < m["rcv_pr_auc"] < 1.0 and 0.5 < m["rcv_roc_auc"] < 1.0  # better than chance
    history = MlflowClient(tracking_uri).get_metric_history(run.info.run_id, "rcv_fold_recall")
    assert sorted(h.step for h in history) == list(range(6))
    # The console summary shows the outer-fold means where a holdout run shows its test row.
    assert re.search(rf"^  rcv +{m['rcv_pr_auc']:.4f} ", proc.stdout, re.M), proc.stdout


def test_repeated_cv_refuses_tuning() -> None:
    with pytest.raises(ImblabError, match="tune with evaluation=holdout"):
        experiment_from_config(compose_config(*FAST, *RCV, "tuning=optuna"))
