"""``imblab promote`` / ``imblab set-threshold`` against a real SQLite MLflow registry."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from imblab.app.main import main as imblab_main
from imblab.config.compose import experiment_from_config
from imblab.errors import ImblabError
from imblab.experiment import RunOutcome, run_experiment
from imblab.metrics.core import threshold_metrics
from imblab.metrics.costs import Costs
from imblab.metrics.ranking import ranking_rule
from imblab.registry.gate import CHALLENGER, CHAMPION
from imblab.registry.promote import best_run, promote
from imblab.registry.threshold import build_policy, set_threshold
from imblab.registry.versions import load_frozen
from imblab.thresholds import MinCost
from imblab.tracking.artifacts import read_scores
from imblab.tracking.store import client_for
from tests.conftest import FAST, compose_config

NAME = "defects"
# A deliberately poor model (one two-leaf tree: two distinct scores) that the FAST model beats.
WEAK = ("model.estimator.n_estimators=1", "+model.estimator.num_leaves=2")


def train(tracking_uri: str, *overrides: str) -> RunOutcome:
    cfg = compose_config(*FAST, f"tracking.uri={tracking_uri}", "tracking.experiment=t", *overrides)
    return run_experiment(experiment_from_config(cfg))


def aliases(client: MlflowClient) -> dict[str, str]:
    return {k: str(v) for k, v in client.get_registered_model(NAME).aliases.items()}


def versions(client: MlflowClient) -> list[str]:
    return sorted(str(v.version) for v in client.search_model_versions(f"name = '{NAME}'"))


def test_metric_direction_and_policy_flags() -> None:
    for name, base, higher in [
        ("test_pr_auc", "pr_auc", True),
        ("cv_expected_cost", "expected_cost", False),
        ("test_brier", "brier", False),
    ]:
        parsed = ranking_rule(name, None)
        assert (parsed.base, parsed.higher_is_better) == (base, higher)
    for bad in ("pr_auc", "test_threshold", "test_nope", "holdout_pr_auc"):
        with pytest.raises(ImblabError, match="cannot rank models"):
            ranking_rule(bad, None)
    assert build_policy("min_cost", {"cost_fn": 20.0, "cost_fp": 1.0}) == MinCost(20.0, 1.0)
    with pytest.raises(ImblabError, match="--min-recall does not apply to policy 'min_cost'"):
        build_policy("min_cost", {"min_recall": 0.9})
    with pytest.raises(ImblabError, match="unknown threshold policy"):
        build_policy("median", {})


def test_first_promotion_dry_run_and_repeat(tracking_uri: str) -> None:
    out = train(tracking_uri)
    client = client_for(tracking_uri)

    # The real console entry point, as a user runs it: a dry run shows the decision, registers nothing.
    argv = ["promote", "--experiment", "t", "--model-name", NAME, "--dry-run", "--tracking-uri", tracking_uri]
    proc = subprocess.run(
        [sys.executable, "-m", "imblab", *argv], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert "DRY RUN (nothing registered): FIRST_CHAMPION" in proc.stdout
    assert re.search(rf"pr_auc +{out.test_metrics['pr_auc']:.4f} +-\n", proc.stdout)
    assert client.search_registered_models() == []

    decision = promote("t", model_name=NAME, tracking_uri=tracking_uri)
    assert decision.outcome == "first_champion" and decision.version == "1"
    assert aliases(client) == {CHAMPION: "1", CHALLENGER: "1"}
    # The gate's recomputation on the rebuilt test rows equals what the run logged.
    assert decision.challenger["pr_auc"] == pytest.approx(out.test_metrics["pr_auc"], abs=1e-12)
    assert decision.challenger["expected_cost"] == pytest.approx(out.test_metrics["expected_cost"], abs=1e-12)
    mv = client.get_model_version(NAME, "1")
    assert mv.run_id == out.run_id
    assert (
        mv.tags["imblab.decision"] == "first_champion" and mv.tags["imblab.selection_metric"] == "cv_pr_auc"
    )
    # For people: the run and its variant, the gate's metrics, the decision and why; the full record beside.
    assert f"from run {out.run_id}" in mv.description and "Variant: smote × lgbm × best_f1." in mv.description
    assert "Decision: first_champion. no champion" in mv.description
    assert "Gate: test_pr_auc on 120 test rows." in mv.description
    record_path = f"promotions/{NAME}-v1.json"
    assert f"Full record: artifact {record_path} of run {out.run_id}." in mv.description
    record = mlflow.artifacts.load_dict(f"runs:/{out.run_id}/{record_path}")
    assert record["decision"] == "first_champion" and record["version"] == "1"
    assert record["challenger_metrics"]["pr_auc"] == pytest.approx(out.test_metrics["pr_auc"])

    again = promote("t", model_name=NAME, tracking_uri=tracking_uri)
    assert again.outcome == "already_champion" and versions(client) == ["1"]

    # Neither command draws MLflow's per-file download bars (they load the models they compare).
    assert "Downloading artifacts" not in proc.stderr
    argv = ["set-threshold", f"models:/{NAME}@{CHAMPION}", "--policy", "fixed", "--value", "0.4"]
    rethreshold = subprocess.run(
        [sys.executable, "-m", "imblab", *argv, "--tracking-uri", tracking_uri],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert rethreshold.returncode == 0, rethreshold.stderr
    assert "Downloading artifacts" not in rethreshold.stderr


def test_gate_fails_keeps_champion_then_passes(tracking_uri: str) -> None:
    weak = train(tracking_uri, *WEAK)
    client = client_for(tracking_uri)
    assert promote("t", model_name=NAME, tracking_uri=tracking_uri).version == "1"
    strong = train(tracking_uri)
    assert strong.test_metrics["pr_auc"] > weak.test_metrics["pr_auc"]
    assert best_run(client, "t", "test_pr_auc").run_id == strong.run_id
    cheaper = min((weak, strong), key=lambda o: o.test_metrics["expected_cost"])
    assert best_run(client, "t", "test_expected_cost").run_id == cheaper.run_id  # lower is better

    rejected = promote("t", model_name=NAME, min_improvement=0.99, tracking_uri=tracking_uri)
    assert rejected.outcome == "rejected" and not rejected.promoted
    assert aliases(client) == {CHAMPION: "1", CHALLENGER: "2"}  # champion stays
    # Both models were scored on the same rows: each equals its own run's logged test metric.
    assert rejected.champion is not None
    assert rejected.champion["pr_auc"] == pytest.approx(weak.test_metrics["pr_auc"], abs=1e-12)
    assert rejected.challenger["pr_auc"] == pytest.approx(strong.test_metrics["pr_auc"], abs=1e-12)
    tags = client.get_model_version(NAME, "2").tags
    assert tags["imblab.decision"] == "rejected"
    described = client.get_model_version(NAME, "2").description
    assert "fails the gate" in described and "minimum 0.99" in described
    assert tags["imblab.gate.champion_version"] == "1"
    assert float(tags["imblab.gate.champion_value"]) == pytest.approx(weak.test_metrics["pr_auc"], rel=1e-5)
    assert float(tags["imblab.gate.challenger_value"]) == pytest.approx(
        strong.test_metrics["pr_auc"], rel=1e-5
    )

    # Re-gating the same run reuses its version (no duplicate) and now passes.
    passed = promote("t", model_name=NAME, tracking_uri=tracking_uri)
    assert passed.outcome == "promoted" and passed.version == "2"
    assert versions(client) == ["1", "2"]
    assert aliases(client) == {CHAMPION: "2", CHALLENGER: "2"}
    assert client.get_model_version(NAME, "1").tags["imblab.superseded_by"] == "2"
    assert "passes the gate" in client.get_model_version(NAME, "2").description


def test_champion_on_other_data_needs_force(tracking_uri: str) -> None:
    train(tracking_uri, "data.seed=7")  # champion fitted on other rows than the challenger's data
    client = client_for(tracking_uri)
    promote("t", model_name=NAME, tracking_uri=tracking_uri)
    train(tracking_uri, "tracking.experiment=t2")
    with pytest.raises(ImblabError, match=r"other data or another split .*--force"):
        promote("t2", model_name=NAME, tracking_uri=tracking_uri)
    assert versions(client) == ["1"]  # the refused promotion registered nothing

    forced = promote("t2", model_name=NAME, force=True, min_improvement=-1.0, tracking_uri=tracking_uri)
    assert not forced.comparable and forced.promoted and "--force" in forced.reason
    assert client.get_model_version(NAME, "2").tags["imblab.gate.comparable"] == "false"


def test_set_threshold_changes_only_the_threshold(tracking_uri: str) -> None:
    out = train(tracking_uri)
    client = client_for(tracking_uri)
    promote("t", model_name=NAME, tracking_uri=tracking_uri)

    change = set_threshold(
        f"models:/{NAME}@{CHAMPION}",
        "min_cost",
        {"cost_fn": 20, "cost_fp": 1},
        alias="staging",
        tracking_uri=tracking_uri,
    )
    assert change.version == "2" and change.source_version == "1"
    assert aliases(client) == {CHAMPION: "1", CHALLENGER: "1", "staging": "2"}
    # The threshold is MinCost(20, 1) on the training run's stored out-of-fold scores.
    oof, _ = read_scores(client.get_run(out.run_id))
    expected = MinCost(20, 1).choose(oof["y_true"], oof["score"]).threshold
    assert change.new_threshold == expected != change.old_threshold
    assert change.old_threshold == out.choice.threshold
    assert change.cv_metrics == threshold_metrics(oof["y_true"], oof["score"], expected, Costs(fn=20, fp=1))

    _, old = load_frozen(f"models:/{NAME}/1")
    _, new = load_frozen(f"models:/{NAME}@staging")
    X = compose_and_load_x(tracking_uri)
    before, after = old.predict(None, X), new.predict(None, X)
    np.testing.assert_array_equal(after["probability"], before["probability"])  # same fitted pipeline
    np.testing.assert_array_equal(after["decision"], (before["probability"] >= expected).astype("int64"))
    assert (after["decision"] != before["decision"]).any()

    mv = client.get_model_version(NAME, "2")
    assert mv.tags["imblab.derived_from"] == "set-threshold"
    assert mv.tags["imblab.source_version"] == "1"
    assert json.loads(mv.tags["imblab.threshold_params"]) == {"cost_fn": 20.0, "cost_fp": 1.0}
    assert float(mv.tags["imblab.new_threshold"]) == pytest.approx(expected, rel=1e-5)
    run = client.get_run(mv.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.tags["imblab.role"] == "set_threshold"
    assert run.data.tags["imblab.source_run_id"] == out.run_id

    # A set-threshold version of a set-threshold version still finds the training run's scores.
    chained = set_threshold(f"models:/{NAME}/2", "fixed", {"value": 0.5}, tracking_uri=tracking_uri)
    assert chained.version == "3" and chained.new_threshold == 0.5
    # ...and promoting against a set-threshold champion follows the same link to its data and split.
    client.set_registered_model_alias(NAME, CHAMPION, "2")
    decision = promote("t", model_name=NAME, dry_run=True, tracking_uri=tracking_uri)
    assert decision.champion_version == "2" and decision.comparable
    assert decision.champion is not None
    assert decision.champion["threshold"] == pytest.approx(expected)
    assert decision.champion["pr_auc"] == pytest.approx(decision.challenger["pr_auc"])  # same pipeline


def compose_and_load_x(tracking_uri: str) -> pd.DataFrame:
    return experiment_from_config(compose_config(*FAST, f"tracking.uri={tracking_uri}")).load_data().X


def test_cli_errors(tracking_uri: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert imblab_main(["promote", "--experiment", "nope", "--tracking-uri", tracking_uri]) == 2
    assert "no MLflow experiment 'nope'" in capsys.readouterr().err
    assert imblab_main(["promote", "--metric", "test_n", "--tracking-uri", tracking_uri]) == 2
    assert "cannot rank models" in capsys.readouterr().err
    assert imblab_main(["promote", "--min-improvement", "nan", "--tracking-uri", tracking_uri]) == 2
    assert "--min-improvement must be a finite number" in capsys.readouterr().err
    args = [
        "set-threshold",
        f"models:/{NAME}@champion",
        "--policy",
        "best_f1",
        "--tracking-uri",
        tracking_uri,
    ]
    assert imblab_main(args) == 2
    assert "not in the model registry" in capsys.readouterr().err
    assert imblab_main([*args, "--min-recall", "0.9"]) == 2
    assert "--min-recall does not apply to policy 'best_f1'" in capsys.readouterr().err
    assert imblab_main(["set-threshold", "runs:/abc/model", "--policy", "best_f1"]) == 2
    assert "not a registered model URI" in capsys.readouterr().err
