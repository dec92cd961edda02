"""One ranking rule for compare and promote, and ``imblab promote`` of repeated-CV runs (a paired gate over
shared outer folds; refusals when the champion cannot be paired) against a real SQLite registry."""

from __future__ import annotations

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from imblab.app.main import main as imblab_main
from imblab.config.compose import experiment_from_config
from imblab.errors import ImblabError
from imblab.experiment import RunOutcome, run_experiment
from imblab.registry.promote import promote
from imblab.report.comparison import compare, load_sweep
from tests.conftest import FAST, QUICK, compose_config

RCV = ("evaluation=repeated_cv", "evaluation.repeats=2", "evaluation.folds=3")
WEAK = ("model.estimator.n_estimators=1", "+model.estimator.num_leaves=2")  # one two-leaf tree


def train(uri: str, experiment: str, *overrides: str, base: tuple[str, ...] = FAST) -> RunOutcome:
    cfg = compose_config(*base, f"tracking.uri={uri}", f"tracking.experiment={experiment}", *overrides)
    return run_experiment(experiment_from_config(cfg))


def test_compare_and_promote_name_the_same_best_run(tracking_uri: str) -> None:
    """Two policies of one fitted model tie on CV PR-AUC (same scores); both commands break the tie the
    same way (fewer test alarms), whichever policy ran first."""
    runs = [train(tracking_uri, "tie", f"threshold={p}") for p in ("fixed", "best_f1", "min_cost")]
    client = MlflowClient(tracking_uri)
    metrics = {o.run_id: client.get_run(o.run_id).data.metrics for o in runs}
    assert len({m["cv_pr_auc"] for m in metrics.values()}) == 1  # one fitted model: a tie on the metric
    alarms = {rid: m["test_tp"] + m["test_fp"] for rid, m in metrics.items()}
    fewest = min(alarms, key=alarms.__getitem__)
    assert list(alarms.values()).count(alarms[fewest]) == 1, alarms  # the tie-break decides

    comparison = compare(load_sweep("tie", "all", tracking_uri), n_boot=20)
    decision = promote("tie", model_name="tie", dry_run=True, tracking_uri=tracking_uri)
    assert comparison.best_run_id == decision.run_id == fewest
    assert decision.metric == comparison.rule.metric == "cv_pr_auc"


@pytest.mark.slow
def test_promote_repeated_cv_runs_gates_on_paired_folds(
    tracking_uri: str, capsys: pytest.CaptureFixture[str]
) -> None:
    weak = train(tracking_uri, "rcv", *RCV, *WEAK)
    strong = train(tracking_uri, "rcv", *RCV)
    client = MlflowClient(tracking_uri)
    first = promote("rcv", model_name="m", run_id=weak.run_id, tracking_uri=tracking_uri)
    assert first.outcome == "first_champion" and first.gate_metric == "rcv_pr_auc"

    # The default ranking of repeated-CV runs is rcv_pr_auc; the gate pairs the two runs fold by fold.
    argv = ["promote", "--experiment", "rcv", "--name", "m", "--tracking-uri", tracking_uri]
    assert imblab_main(argv) == 0
    out = capsys.readouterr().out
    assert "PROMOTED: m version 2" in out and "mean over the outer folds" in out and "paired folds" in out
    mv = client.get_model_version("m", "2")
    assert mv.run_id == strong.run_id and mv.tags["imblab.gate.metric"] == "rcv_pr_auc"
    assert (
        mv.tags["imblab.selection_metric"] == "rcv_pr_auc" and mv.tags["imblab.gate.champion_version"] == "1"
    )
    assert "Paired over 6 shared outer folds: improvement +" in mv.description
    record = mlflow.artifacts.load_dict(f"runs:/{strong.run_id}/promotions/m-v2.json")
    paired = record["paired"]
    assert paired["n_folds"] == 6 and paired["low"] > 0 and record["decision"] == "promoted"
    m_strong, m_weak = (client.get_run(o.run_id).data.metrics for o in (strong, weak))
    assert paired["mean"] == pytest.approx(m_strong["rcv_pr_auc"] - m_weak["rcv_pr_auc"])

    # A holdout challenger against the repeated-CV champion: that model was refitted on every row.
    holdout = train(tracking_uri, "holdout", base=QUICK)
    with pytest.raises(ImblabError, match=r"evaluated by repeated CV and refitted on all rows.*--force"):
        promote("holdout", model_name="m", tracking_uri=tracking_uri)

    # A repeated-CV challenger against a holdout champion (another name): no pairing possible.
    promote("holdout", model_name="h", tracking_uri=tracking_uri)
    with pytest.raises(ImblabError, match=r"evaluated on a holdout split .* Retrain one of them under"):
        promote("rcv", model_name="h", run_id=strong.run_id, tracking_uri=tracking_uri)
    forced = promote("rcv", model_name="h", run_id=strong.run_id, force=True, min_improvement=-1.0,
                     tracking_uri=tracking_uri)  # fmt: skip
    assert not forced.comparable and forced.paired is None and "not paired" in forced.reason
    assert forced.champion["pr_auc"] == pytest.approx(holdout.test_metrics["pr_auc"])
    # A repeated-CV challenger on other folds than the champion's.
    other = train(tracking_uri, "rcv2", *RCV, "evaluation.seed=1")
    with pytest.raises(ImblabError, match=r"its outer folds differ \(evaluation.seed: 1 vs 42\)"):
        promote("rcv2", model_name="m", run_id=other.run_id, tracking_uri=tracking_uri)
    with pytest.raises(ImblabError, match="repeated CV have no test set; rank them by rcv_pr_auc"):
        promote("rcv", model_name="m", metric="test_pr_auc", tracking_uri=tracking_uri)
    assert sorted(str(v.version) for v in client.search_model_versions("name = 'm'")) == ["1", "2"]
