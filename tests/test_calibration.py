"""calibration=sigmoid|isotonic: fitted on rows the sampler never touched, frozen with the model, changing
the Brier score and (sigmoid) not the ranking of the scores."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from scipy.stats import rankdata
from sklearn.calibration import CalibratedClassifierCV

from imblab.config.compose import experiment_from_config
from imblab.data.synthetic import make_synthetic
from imblab.errors import ImblabError
from imblab.experiment import RunOutcome, run_experiment
from imblab.pipeline import SAMPLER_STEP
from tests.conftest import FAST, compose_config
from tests.support.recording import recorded_fits, recording_overrides


def _run(tracking_uri: str, *overrides: str, base: tuple[str, ...] = FAST) -> RunOutcome:
    cfg = compose_config(*base, f"tracking.uri={tracking_uri}", "tracking.experiment=t", *overrides)
    return run_experiment(experiment_from_config(cfg))


def _test_scores(uri: str, run_id: str) -> pd.DataFrame:
    path = mlflow.artifacts.download_artifacts(
        run_id=run_id, artifact_path="scores/test_scores.parquet", tracking_uri=uri
    )
    return pd.read_parquet(path)


def test_sigmoid_changes_brier_and_not_the_ranking(tracking_uri: str) -> None:
    plain = _run(tracking_uri)
    sigmoid = _run(tracking_uri, "calibration=sigmoid")
    a, b = _test_scores(tracking_uri, plain.run_id), _test_scores(tracking_uri, sigmoid.run_id)
    assert a["row"].equals(b["row"])
    # The frozen model is the same refit on all training rows, mapped through a monotone sigmoid.
    np.testing.assert_array_equal(rankdata(a["score"]), rankdata(b["score"]))
    assert not np.allclose(a["score"], b["score"])
    for m in ("pr_auc", "roc_auc"):
        assert sigmoid.test_metrics[m] == pytest.approx(plain.test_metrics[m], abs=1e-12)
    # SMOTE trains on a balanced sample, so raw probabilities overstate the 10% positive rate; the
    # calibrator, fitted on unresampled rows, pulls them back to it.
    assert sigmoid.test_metrics["brier"] < plain.test_metrics["brier"]
    assert abs(b["score"].mean() - b["y_true"].mean()) < abs(a["score"].mean() - a["y_true"].mean())
    plots = {Path(f.path).name for f in MlflowClient(tracking_uri).list_artifacts(sigmoid.run_id, "plots")}
    assert "reliability.png" in plots


def test_isotonic_is_part_of_the_frozen_model(tracking_uri: str) -> None:
    out = _run(tracking_uri, "calibration=isotonic")
    model = mlflow.pyfunc.load_model(out.model_uri)
    frozen = model.unwrap_python_model()
    assert isinstance(frozen.pipeline, CalibratedClassifierCV)
    (member,) = frozen.pipeline.calibrated_classifiers_  # ensemble=False: one pipeline, one calibrator
    assert SAMPLER_STEP not in dict(member.estimator.steps)  # the sampler is a training-time device only
    X = make_synthetic(n_samples=600, n_features=12, positive_rate=0.1, seed=42).X
    logged = _test_scores(tracking_uri, out.run_id)
    predicted = model.predict(X.loc[logged["row"]])["probability"]
    np.testing.assert_allclose(predicted, logged["score"], rtol=1e-12)


def test_the_calibrator_sees_only_rows_its_sampler_never_saw(tracking_uri: str, tmp_path: Path) -> None:
    """A recording sampler inside the calibrated pipeline: each fit (every CV fold and the final one) is
    k calibration-fold fits plus one refit on the fit's rows T. The rows the calibration folds' samplers
    did not see partition T: every row the calibrator learns from was held out of its sampler."""
    ds = make_synthetic(n_samples=400, n_features=6, positive_rate=0.15, seed=7)
    table = ds.X.assign(row_id=np.arange(len(ds.X), dtype=float), target=ds.y)
    path = tmp_path / "rows.parquet"
    table[["row_id", *ds.X.columns, "target"]].to_parquet(path)
    log_path = tmp_path / "fits.jsonl"
    _run(
        tracking_uri,
        *recording_overrides(path, log_path),
        "calibration=sigmoid",
        "calibration.folds=3",
        base=tuple(o for o in FAST if not o.startswith(("data", "sampler"))),
    )
    fits = recorded_fits(log_path)
    assert len(fits) == (3 + 1) * (3 + 1)  # (cv folds + final fit) x (calibration folds + refit)
    for start in range(0, len(fits), 4):
        *calibration_folds, refit = fits[start : start + 4]
        held_out = [refit - seen for seen in calibration_folds]
        assert all(seen < refit for seen in calibration_folds)
        assert sum(len(h) for h in held_out) == len(refit) and set().union(*held_out) == refit


def test_too_few_rows_for_the_calibration_folds_is_a_clear_error(tracking_uri: str) -> None:
    with pytest.raises(ImblabError, match=r"calibration\.folds=5 needs at least 5 rows of each class"):
        _run(tracking_uri, "calibration=sigmoid", "calibration.folds=5", "sampler=none", "data.n_samples=80")
