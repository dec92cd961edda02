"""A training run (``imblab.experiment``) against a real SQLite MLflow store: what it logs and freezes, how it
fails, and that resampling only ever sees training rows."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from sklearn.metrics import average_precision_score

from imblab.config.compose import experiment_from_config
from imblab.data.synthetic import make_synthetic
from imblab.errors import ImblabError
from imblab.experiment import RunOutcome, run_experiment
from imblab.metrics.names import METRIC_NAMES
from imblab.pipeline import SAMPLER_STEP, model_of, predict_pipeline, sampler_of
from imblab.protocol.split import holdout_split
from tests.conftest import FAST, compose_config
from tests.support.recording import recorded_fits, recording_overrides


def _experiment(*overrides: str):
    return experiment_from_config(compose_config(*overrides))


def _run(tracking_uri: str, *overrides: str, base: tuple[str, ...] = FAST) -> RunOutcome:
    cfg = compose_config(*base, f"tracking.uri={tracking_uri}", "tracking.experiment=t", *overrides)
    return run_experiment(experiment_from_config(cfg))


def test_run_logs_params_metrics_tags_artifacts_and_one_model(tracking_uri: str) -> None:
    out = _run(tracking_uri, "threshold=min_cost", "threshold.cost_fn=20", "threshold.cost_fp=1")
    client = MlflowClient(tracking_uri)
    run = client.get_run(out.run_id)
    assert run.info.status == "FINISHED"

    params = run.data.params
    assert params["sampler.name"] == "smote"
    assert params["model.estimator._target_"] == "lightgbm.LGBMClassifier"
    assert params["model.estimator.n_estimators"] == "40"
    assert params["threshold._target_"] == "imblab.thresholds.MinCost"
    assert params["threshold.cost_fn"] == "20"
    assert params["cv.folds"] == "3" and params["split.test_size"] == "0.2"

    tags = run.data.tags
    assert tags["sampler"] == "smote" and tags["model"] == "lgbm" and tags["threshold_policy"] == "min_cost"
    assert len(tags["data_fingerprint"]) == 16
    assert tags["imblab.command"].startswith("imblab")

    metrics = run.data.metrics
    for prefix in ("cv_", "test_"):
        for name in METRIC_NAMES:
            assert f"{prefix}{name}" in metrics, f"{prefix}{name} not logged"
    assert metrics["cv_threshold"] == metrics["test_threshold"] == pytest.approx(out.choice.threshold)
    # Reported cost uses the policy's own costs (fn=20, fp=1): expected cost = (20 FN + FP) / n.
    expected = (20 * metrics["test_fn"] + metrics["test_fp"]) / metrics["test_n"]
    assert metrics["test_expected_cost"] == pytest.approx(expected)

    artifacts = {f.path for f in client.list_artifacts(out.run_id)}
    assert {"config.yaml", "metrics.json", "threshold.json", "plots", "scores"} <= artifacts
    plots = {Path(f.path).name for f in client.list_artifacts(out.run_id, "plots")}
    assert plots == {
        "confusion_matrix_test.png",
        "confusion_matrix_cv.png",
        "pr_roc_curves.png",
        "threshold_curves.png",
        "reliability.png",
        "feature_importances.png",
    }
    assert "feature_importances.csv" in artifacts
    scores = {Path(f.path).name for f in client.list_artifacts(out.run_id, "scores")}
    assert {"oof_scores.parquet", "test_scores.parquet", "cv_folds.csv"} <= scores

    models = mlflow.search_logged_models(
        experiment_ids=[out.experiment_id],
        filter_string=f"source_run_id = '{out.run_id}'",
        output_format="list",
    )
    assert len(models) == 1 and models[0].name == "model"
    info = mlflow.models.get_model_info(models[0].model_uri)
    assert info.signature.params.to_dict()[0]["name"] == "threshold"
    assert info.saved_input_example_info is not None


def test_logged_scores_are_consistent_with_metrics(tracking_uri: str) -> None:
    out = _run(tracking_uri)
    folder = Path(
        mlflow.artifacts.download_artifacts(
            run_id=out.run_id, artifact_path="scores", tracking_uri=tracking_uri
        )
    )
    oof = pd.read_parquet(folder / "oof_scores.parquet")
    test = pd.read_parquet(folder / "test_scores.parquet")
    assert set(oof["fold"]) == {0, 1, 2}
    assert set(oof["row"]).isdisjoint(test["row"])
    assert out.cv_metrics["pr_auc"] == pytest.approx(average_precision_score(oof["y_true"], oof["score"]))
    assert out.test_metrics["pr_auc"] == pytest.approx(average_precision_score(test["y_true"], test["score"]))
    assert (test["decision"] == (test["score"] >= out.choice.threshold)).all()
    logged = json.loads(
        Path(
            mlflow.artifacts.download_artifacts(
                run_id=out.run_id, artifact_path="threshold.json", tracking_uri=tracking_uri
            )
        ).read_text()
    )
    assert logged["chosen_on"] == "out-of-fold training scores"


def test_threshold_is_chosen_without_test_labels(tracking_uri: str, tmp_path: Path) -> None:
    """Flip the test labels: the threshold and every CV number stay, only test metrics move."""
    ds = make_synthetic(n_samples=600, n_features=12, positive_rate=0.1, seed=3)
    frame = ds.X.assign(target=ds.y, ts=ds.timestamps)
    spec = _experiment("data=table", "data.path=x.csv", "data.target=y", "split=time").split
    test_rows = holdout_split(ds, spec).test  # the time split does not look at labels
    flipped = frame.copy()
    flipped.loc[test_rows, "target"] = 1 - flipped.loc[test_rows, "target"]
    outcomes = []
    for name, table in (("orig", frame), ("flipped", flipped)):
        path = tmp_path / f"{name}.parquet"
        table.to_parquet(path)
        outcomes.append(
            _run(
                tracking_uri,
                "data=table",
                f"data.path={path}",
                "data.target=target",
                "data.timestamp_column=ts",
                "split=time",
                "threshold=best_f1",
                base=tuple(o for o in FAST if not o.startswith("data")),
            )
        )
    a, b = outcomes
    assert a.choice.threshold == b.choice.threshold
    assert a.cv_metrics == b.cv_metrics
    assert a.test_metrics["tp"] != b.test_metrics["tp"]


def test_sampler_is_skipped_at_predict_time() -> None:
    pipeline = _experiment(*FAST, "sampler=random_under").pipeline
    ds = make_synthetic(n_samples=400, n_features=8, positive_rate=0.1, seed=1)
    fitted = pipeline.fit(ds.X, ds.y)
    # Under-sampling shrinks the training set, never the rows being predicted.
    assert len(fitted.predict_proba(ds.X)) == len(ds.X)
    frozen = predict_pipeline(fitted)
    assert SAMPLER_STEP in dict(fitted.steps) and SAMPLER_STEP not in dict(frozen.steps)
    np.testing.assert_array_equal(frozen.predict_proba(ds.X), fitted.predict_proba(ds.X))


def test_policy_sweep_reuses_one_fit(tracking_uri: str) -> None:
    outs = [_run(tracking_uri, f"threshold={p}") for p in ("fixed", "best_f1", "min_cost", "max_roi")]
    assert [o.cache_hit for o in outs] == [False, True, True, True]
    client = MlflowClient(tracking_uri)
    keys = {client.get_run(o.run_id).data.tags["imblab.fit_key"] for o in outs}
    assert len(keys) == 1
    assert len({o.test_metrics["pr_auc"] for o in outs}) == 1  # same fitted model
    # A change of anything that determines the fit is a different key: no stale reuse.
    other = _run(tracking_uri, "model.estimator.n_estimators=41")
    assert not other.cache_hit


def test_class_weight_sampler_passes_balanced_weights(tracking_uri: str) -> None:
    out = _run(tracking_uri, "sampler=class_weight")
    assert out.test_metrics["n"] > 0
    assert model_of(_experiment(*FAST, "sampler=class_weight").pipeline).class_weight == "balanced"
    with pytest.raises(ImblabError, match="class_weight"):
        _experiment("sampler=class_weight", "model=easy_ensemble")


@pytest.mark.parametrize("model", ["logreg", "random_forest", "balanced_random_forest", "easy_ensemble"])
def test_every_model_runs(tracking_uri: str, model: str) -> None:
    small = {"logreg": [], "easy_ensemble": ["model.estimator.n_estimators=3"]}.get(
        model, ["model.estimator.n_estimators=20"]
    )
    base = tuple(o for o in FAST if not o.startswith("model"))
    out = _run(tracking_uri, f"model={model}", *small, base=base)
    run = MlflowClient(tracking_uri).get_run(out.run_id)
    assert run.data.tags["model"] == model
    # A broken fit (constant or random scores) gets the base rate; every model must clearly beat it.
    base_rate = out.test_metrics["tp"] + out.test_metrics["fn"]
    assert out.test_metrics["pr_auc"] > 2 * base_rate / out.test_metrics["n"]
    frozen = mlflow.pyfunc.load_model(out.model_uri).unwrap_python_model()
    assert (
        type(model_of(frozen.pipeline)).__name__
        == type(model_of(_experiment(f"model={model}").pipeline)).__name__
    )
    # Feature importances for every model that has them (easy_ensemble has none: no file, no error).
    logged = {f.path for f in MlflowClient(tracking_uri).list_artifacts(out.run_id)}
    plots = {Path(f.path).name for f in MlflowClient(tracking_uri).list_artifacts(out.run_id, "plots")}
    has = model != "easy_ensemble"
    assert ("feature_importances.csv" in logged, "feature_importances.png" in plots) == (has, has)


@pytest.mark.parametrize(
    "sampler",
    ["none", "random_over", "random_under", "smote_enn", "smote_tomek", "adasyn", "borderline_smote"],
)
def test_every_sampler_runs_and_changes_the_class_balance(tracking_uri: str, sampler: str) -> None:
    out = _run(tracking_uri, f"sampler={sampler}")
    assert MlflowClient(tracking_uri).get_run(out.run_id).data.tags["sampler"] == sampler
    # What the sampler does to a training set: oversamplers add minority rows, undersamplers and
    # cleaners drop majority rows; none leaves it alone.
    ds = make_synthetic(n_samples=600, n_features=12, positive_rate=0.1, seed=42)
    step = sampler_of(_experiment(*FAST, f"sampler={sampler}").pipeline)
    if step is None:
        assert sampler == "none"
        return
    _, y_res = step.fit_resample(ds.X.to_numpy(), ds.y.to_numpy())
    before, after = np.bincount(ds.y), np.bincount(y_res)
    if sampler in ("random_under",):
        assert after[1] == before[1] and after[0] < before[0]
    elif sampler in ("smote_enn", "smote_tomek"):
        assert after[1] > before[1]
    else:
        assert after[1] > before[1] and after[0] == before[0]


@pytest.mark.parametrize("policy", ["precision_at_recall", "recall_at_precision"])
def test_constrained_policies_run(tracking_uri: str, policy: str) -> None:
    out = _run(tracking_uri, f"threshold={policy}")
    run = MlflowClient(tracking_uri).get_run(out.run_id)
    assert run.data.tags["threshold_feasible"] in ("true", "false")


def test_failure_inside_a_run_marks_it_failed(tracking_uri: str) -> None:
    cfg = compose_config(
        *FAST,
        f"tracking.uri={tracking_uri}",
        "tracking.experiment=t",
        "data.n_samples=60",
        "data.positive_rate=0.1",
    )
    with pytest.raises(ImblabError, match="sampler 'smote' needs k_neighbors"):
        run_experiment(experiment_from_config(cfg))
    runs = MlflowClient(tracking_uri).search_runs(
        [MlflowClient(tracking_uri).get_experiment_by_name("t").experiment_id]
    )
    assert [r.info.status for r in runs] == ["FAILED"]
    assert "k_neighbors" in runs[0].data.tags["imblab.error"]
    assert runs[0].data.tags["imblab.error_type"] == "ImblabError"


def test_mlflow_tracking_uri_env_wins_over_default_but_not_over_override(
    tracking_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env_uri = f"sqlite:///{tmp_path / 'env-store' / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", env_uri)
    out = run_experiment(_experiment(*FAST, "tracking.experiment=t"))
    assert MlflowClient(env_uri).get_run(out.run_id).info.status == "FINISHED"
    assert not (tmp_path / "mlruns").exists()
    out2 = _run(tracking_uri)  # explicit tracking.uri
    assert MlflowClient(tracking_uri).get_run(out2.run_id).info.status == "FINISHED"


def test_resampling_sees_training_fold_rows_only(tracking_uri: str, tmp_path: Path) -> None:
    """A sampler that records its rows: each fold fit sees exactly its fold's training rows, the final
    fit all training rows, and no fit ever sees a validation row of its fold or a test row."""
    ds = make_synthetic(n_samples=400, n_features=6, positive_rate=0.1, seed=7)
    table = ds.X.assign(row_id=np.arange(len(ds.X), dtype=float), target=ds.y)
    path = tmp_path / "rows.parquet"
    table[["row_id", *ds.X.columns, "target"]].to_parquet(path)
    log_path = tmp_path / "fits.jsonl"
    out = _run(
        tracking_uri,
        *recording_overrides(path, log_path),
        base=tuple(o for o in FAST if not o.startswith(("data", "sampler"))),
    )
    oof, test = (
        pd.read_parquet(
            mlflow.artifacts.download_artifacts(
                run_id=out.run_id, artifact_path=f"scores/{name}_scores.parquet", tracking_uri=tracking_uri
            )
        )
        for name in ("oof", "test")
    )
    train_rows, test_rows = set(oof["row"]), set(test["row"])
    folds = {k: set(part["row"]) for k, part in oof.groupby("fold")}
    fits = recorded_fits(log_path)
    assert len(fits) == len(folds) + 1  # one fit per fold and the final fit, nothing else
    assert all(f.isdisjoint(test_rows) and f <= train_rows for f in fits)
    assert fits[-1] == train_rows
    assert sorted(map(sorted, fits[:-1])) == sorted(sorted(train_rows - va) for va in folds.values())


def test_run_records_mlflow_git_commit_of_the_checkout(tracking_uri: str) -> None:
    """MLflow's own git tag, resolved from imblab's source even though the cwd is a temp dir."""
    import subprocess

    repo = Path(__file__).resolve().parents[1]
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True)
    if head.returncode != 0:
        pytest.skip("not a git checkout")
    out = _run(tracking_uri)
    tags = MlflowClient(tracking_uri).get_run(out.run_id).data.tags
    assert tags["mlflow.source.git.commit"] == head.stdout.strip()
