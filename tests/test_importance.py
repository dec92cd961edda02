"""Feature importances of a fitted pipeline (issue 12): the right numbers, named after preprocessing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from imblab.categorical import for_features
from imblab.config.compose import experiment_from_config
from imblab.config.specs import CalibrationSpec
from imblab.pipeline import calibrated, model_of
from imblab.report.importance import feature_importances, importance_figure
from tests.conftest import compose_config


def _data(n: int = 300) -> tuple[pd.DataFrame, pd.Series]:
    """Eight features, two informative (f1 strongly, f4 weakly), a constant one and one mostly missing:
    preprocessing drops those two, so importances are over six named columns."""
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(n, 8)) * [1, 10, 1, 1, 0.1, 1, 1, 1],
                     columns=[f"f{i}" for i in range(8)])  # fmt: skip
    y = pd.Series((X["f1"] / 10 + 0.5 * X["f4"] / 0.1 + rng.normal(0, 0.5, n) > 1.2).astype(int))
    X["f6"] = 3.0
    X.loc[X.index[: int(0.8 * n)], "f7"] = np.nan
    return X, y


def _fitted(*overrides: str):
    X, y = _data()
    pipeline = experiment_from_config(compose_config("data=synthetic", "sampler=none", *overrides)).pipeline
    return pipeline.fit(X, y), X


KEPT = ["f0", "f1", "f2", "f3", "f4", "f5"]  # f6 constant, f7 80% missing


def test_lightgbm_gain_named_after_preprocessing() -> None:
    pipe, X = _fitted("model=lgbm", "model.estimator.n_estimators=30")
    table = feature_importances(pipe, X)
    assert sorted(table["feature"]) == KEPT and table["kind"].eq("gain").all()
    gain = model_of(pipe).booster_.feature_importance(importance_type="gain")
    by_name = dict(zip(table["feature"], table["importance"], strict=True))
    np.testing.assert_allclose([by_name[f] for f in KEPT], gain)
    assert table["feature"].iloc[0] == "f1" and list(table["rank"]) == list(range(1, 7))
    assert table["share"].sum() == pytest.approx(1.0)


def test_logreg_abs_coef_on_the_scaled_features() -> None:
    pipe, X = _fitted("model=logreg")
    table = feature_importances(pipe, X)
    assert table["kind"].iloc[0].startswith("|coef|")
    coef = dict(zip(KEPT, np.abs(model_of(pipe).coef_[0]), strict=True))
    # The standard scaler gives every input SD 1, so the importance is |coef| itself.
    np.testing.assert_allclose(table["importance"], [coef[f] for f in table["feature"]], rtol=1e-9)
    # Unscaled, the importance is |coef| x SD of the raw column (f1 has SD 10): per-SD effects, so f1 is
    # still first, where the bare |coef| would put it among the weakest.
    raw, X = _fitted("model=logreg", "preprocess/scaler=none")
    raw_table = feature_importances(raw, X).set_index("feature").loc[KEPT]
    raw_coef = np.abs(model_of(raw).coef_[0])
    np.testing.assert_allclose(raw_table["importance"], raw_coef * X[KEPT].std(ddof=0), rtol=1e-9)
    assert raw_table["importance"].idxmax() == "f1" and raw_coef[KEPT.index("f1")] < np.median(raw_coef)


def test_forest_impurity_and_easy_ensemble_none() -> None:
    pipe, X = _fitted("model=random_forest", "model.estimator.n_estimators=10")
    table = feature_importances(pipe, X)
    assert table["kind"].iloc[0] == "mean impurity decrease"
    assert table["importance"].sum() == pytest.approx(1.0)
    assert sorted(table["feature"]) == KEPT
    easy, X = _fitted("model=easy_ensemble", "model.estimator.n_estimators=2")
    assert feature_importances(easy, X) is None


def test_calibrated_fit_uses_its_refitted_pipeline() -> None:
    X, y = _data()
    experiment = experiment_from_config(compose_config("data=synthetic", "sampler=none", "model=logreg"))
    wrapped = calibrated(experiment.pipeline, CalibrationSpec(method="sigmoid", folds=3))
    table = feature_importances(wrapped.fit(X, y), X)
    assert sorted(table["feature"]) == KEPT


def test_figure_draws_the_top_20_largest_on_top() -> None:
    table = pd.DataFrame({"rank": range(1, 31), "feature": [f"f{i}" for i in range(30)],
                          "importance": np.linspace(30, 1, 30), "share": 1 / 30, "kind": "gain"})  # fmt: skip
    ax = importance_figure(table).axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert len(labels) == 20 and labels[-1] == "f0" and labels[0] == "f19"
    assert "top 20 of 30" in ax.get_title() and ax.get_xlabel() == "gain"


@pytest.mark.parametrize(
    ("model", "names"), [("lgbm", {"a", "b", "tool", "shift"}), ("logreg", {"a", "tool_T3"})]
)
def test_categorical_columns_are_named_as_the_model_sees_them(
    tmp_path: Path, model: str, names: set[str]
) -> None:
    """LightGBM splits on the category column itself; logreg sees one-hot columns named value by value."""
    rng = np.random.default_rng(3)
    n = 500
    frame = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n),
                          "tool": rng.choice(["T1", "T2", "T3", "T4"], n),
                          "shift": rng.choice(["day", "night", None], n)})  # fmt: skip
    risk = frame["a"] + 2.0 * (frame["tool"] == "T3") + rng.normal(size=n)
    frame["failed"] = (risk > np.quantile(risk, 0.88)).astype(int)
    frame.to_parquet(tmp_path / "lots.parquet")
    sampler = "smote" if model == "lgbm" else "random_over"
    small = ("model.estimator.n_estimators=40",) if model == "lgbm" else ()
    table_data = ("data=table", f"data.path={tmp_path / 'lots.parquet'}", "data.target=failed")
    exp = experiment_from_config(compose_config(*table_data, f"model={model}", *small, f"sampler={sampler}"))
    data = exp.load_data()
    pipe = for_features(exp.pipeline, data.X, exp.sampler_name).fit(data.X, data.y)
    table = feature_importances(pipe, data.X)
    assert names <= set(table["feature"])
    assert set(table["feature"].head(2)) & {"a", "tool", "tool_T3"}  # a real risk ranks near the top
