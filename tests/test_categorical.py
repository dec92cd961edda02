"""Categorical feature columns end to end: encoded inside the pipeline (LightGBM native, one-hot otherwise),
SMOTE as SMOTE-NC, samplers that cannot cope refused, and a frozen model that takes the same text columns
(unknown categories included) at prediction time."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from imblearn.over_sampling import SMOTENC
from mlflow.tracking import MlflowClient

from imblab.categorical import ENCODE_STEP, FEATURES_STEP, CategoryEncoder, for_features
from imblab.config.compose import experiment_from_config
from imblab.data.synthetic import make_synthetic
from imblab.errors import ImblabError
from imblab.experiment import RunOutcome, run_experiment
from imblab.pipeline import model_of, sampler_of
from tests.conftest import FAST, compose_config

BASE = tuple(o for o in FAST if not o.startswith(("data", "model")))
SMALL = {"lgbm": ("model=lgbm", "model.estimator.n_estimators=40"), "logreg": ("model=logreg",)}


def _table(tmp_path: Path, n: int = 700) -> tuple[Path, pd.DataFrame]:
    """Numeric columns plus a tool (4 values, one of them risky) and a shift with missing values."""
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(
        {
            "a": rng.normal(size=n),
            "b": rng.normal(size=n),
            "tool": rng.choice(["T1", "T2", "T3", "T4"], n),
            "shift": rng.choice(["day", "night", None], n),
        }
    )
    risk = frame["a"] + 2.0 * (frame["tool"] == "T3") + rng.normal(size=n)
    frame["failed"] = (risk > np.quantile(risk, 0.88)).astype(int)
    path = tmp_path / "lots.parquet"
    frame.to_parquet(path)
    return path, frame


def _overrides(path: Path, *extra: str) -> tuple[str, ...]:
    return (*BASE, "data=table", f"data.path={path}", "data.target=failed", *extra)


def _run(tracking_uri: str, path: Path, *extra: str) -> RunOutcome:
    cfg = compose_config(*_overrides(path, *extra), f"tracking.uri={tracking_uri}", "tracking.experiment=cat")
    return run_experiment(experiment_from_config(cfg))


@pytest.mark.parametrize(("model", "sampler"), [("lgbm", "smote"), ("logreg", "random_over")])
def test_categorical_table_end_to_end(tracking_uri: str, tmp_path: Path, model: str, sampler: str) -> None:
    path, frame = _table(tmp_path)
    out = _run(tracking_uri, path, *SMALL[model], f"sampler={sampler}")
    run = MlflowClient(tracking_uri).get_run(out.run_id)
    assert run.info.status == "FINISHED" and run.data.tags["categorical_features"] == "tool,shift"
    base_rate = (out.test_metrics["tp"] + out.test_metrics["fn"]) / out.test_metrics["n"]
    assert out.test_metrics["pr_auc"] > 2 * base_rate  # the tool column carries signal the model uses

    model_ = mlflow.pyfunc.load_model(out.model_uri)
    frozen = model_.unwrap_python_model()
    steps = dict(frozen.pipeline.steps)
    assert FEATURES_STEP in steps and (ENCODE_STEP in steps) == (model == "logreg")
    if model == "lgbm":  # native categorical splits: LightGBM saw pandas categories, not one-hot columns
        assert len(model_of(frozen.pipeline).booster_.pandas_categorical) == 2

    # Prediction input as it comes from a CSV or a JSON request: plain text, a new tool, a missing shift.
    rows = frame.drop(columns="failed").head(6).astype({"tool": object, "shift": object})
    rows.loc[0, "tool"], rows.loc[1, "shift"] = "T9", None
    scored = model_.predict(rows)
    assert len(scored) == 6 and scored["probability"].between(0, 1).all()
    as_loaded = experiment_from_config(compose_config(*_overrides(path))).load_data().X.head(6)
    np.testing.assert_allclose(
        model_.predict(as_loaded)["probability"][2:], scored["probability"][2:], rtol=1e-12
    )
    with pytest.raises(mlflow.exceptions.MlflowException, match="non-numeric"):
        model_.predict(rows.assign(a="high"))  # numeric columns stay numeric


def test_smote_becomes_smotenc_and_numeric_data_is_left_alone(tmp_path: Path) -> None:
    path, _ = _table(tmp_path)
    exp = experiment_from_config(compose_config(*_overrides(path, "sampler=smote")))
    X = exp.load_data().X
    adapted = for_features(exp.pipeline, X, exp.sampler_name)
    assert isinstance(sampler_of(adapted), SMOTENC) and sampler_of(adapted).k_neighbors == 5
    numeric = make_synthetic(n_samples=100, n_features=6, positive_rate=0.2, seed=0).X
    assert for_features(exp.pipeline, numeric, "smote") is exp.pipeline  # e.g. SECOM: exactly as before
    smotenc = experiment_from_config(compose_config(*FAST, "sampler=smotenc"))
    with pytest.raises(ImblabError, match=r"needs categorical feature columns.*use sampler=smote"):
        for_features(smotenc.pipeline, numeric, "smotenc")


@pytest.mark.parametrize("sampler", ["smote_enn", "adasyn", "borderline_smote"])
def test_samplers_that_cannot_handle_categories_are_refused(tmp_path: Path, sampler: str) -> None:
    path, _ = _table(tmp_path)
    exp = experiment_from_config(compose_config(*_overrides(path, f"sampler={sampler}")))
    with pytest.raises(
        ImblabError, match=rf"sampler '{sampler}'.*\['tool', 'shift'\].*sampler=smote.*smotenc"
    ):
        for_features(exp.pipeline, exp.load_data().X, exp.sampler_name)


def test_tuning_with_categorical_columns_is_refused_before_any_trial(
    tracking_uri: str, tmp_path: Path
) -> None:
    path, _ = _table(tmp_path)
    with pytest.raises(ImblabError, match="tuning=optuna does not handle categorical"):
        _run(tracking_uri, path, "tuning=optuna", "tuning.n_trials=1")


def test_category_encoder_knows_only_its_training_rows() -> None:
    train = pd.DataFrame({"tool": ["A", "B", "A"], "code": [7, 8.0, None]})
    enc = CategoryEncoder().fit(train)
    out = enc.transform(pd.DataFrame({"tool": ["B", "C"], "code": ["7", 9]}))
    assert list(out["tool"].cat.categories) == ["A", "B"] and out["tool"].isna().tolist() == [False, True]
    assert out["code"].tolist()[0] == "7" and pd.isna(out["code"].tolist()[1])
    assert list(enc.get_feature_names_out()) == ["tool", "code"]
