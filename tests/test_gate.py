"""The champion/challenger gate as pure rules: plain numbers, no training run, no MLflow store."""

from __future__ import annotations

import math
import re
import subprocess
import sys

import numpy as np
import pytest

from imblab.errors import ImblabError
from imblab.metrics.resampled import paired_corrected_t
from imblab.registry.gate import (
    ALREADY_CHAMPION,
    FIRST_CHAMPION,
    PROMOTED,
    REJECTED,
    SUMMARY_METRICS,
    Decision,
    already_champion,
    apply_gate,
    comparability_problem,
    comparable,
    metric_direction,
)


def metrics(**values: float) -> dict[str, float]:
    """Every metric a decision shows, 0.5 unless given."""
    return {m: 0.5 for m in (*SUMMARY_METRICS, "threshold")} | values


def decision(
    challenger: dict[str, float],
    champion: dict[str, float] | None = None,
    metric: str = "test_pr_auc",
    min_improvement: float = 0.0,
    comparable: bool = True,
) -> Decision:
    base, higher = metric_direction(metric)
    return Decision(
        model_name="defects",
        metric=metric,
        gate_metric=f"test_{base}",
        higher_is_better=higher,
        run_id="r" * 32,
        model_uri="models:/m-1",
        selection_value=challenger[base],
        challenger=challenger,
        champion=champion,
        champion_version=None if champion is None else "3",
        min_improvement=min_improvement,
        promoted=False,
        outcome="",
        reason="",
        comparable=comparable,
        test_rows=120,
    )


def test_first_champion_without_a_champion() -> None:
    d = apply_gate(decision(metrics(pr_auc=0.1)))
    assert d.promoted and d.outcome == FIRST_CHAMPION
    assert "no champion of 'defects' yet" in d.reason
    assert math.isnan(d.improvement)
    tags = d.tags()
    assert tags["imblab.decision"] == FIRST_CHAMPION
    assert tags["imblab.gate.champion_value"] == tags["imblab.gate.champion_version"] == ""
    assert d.record()["champion_metrics"] is None and d.record()["improvement"] is None


def test_promoted_when_the_improvement_reaches_the_minimum() -> None:
    d = apply_gate(decision(metrics(pr_auc=0.62), metrics(pr_auc=0.50), min_improvement=0.1))
    assert d.promoted and d.outcome == PROMOTED
    assert d.improvement == pytest.approx(0.12)
    assert "improvement +0.1200 passes the gate (minimum 0.1, higher is better)" in d.reason
    assert "test pr_auc 0.6200 vs champion v3 0.5000" in d.reason
    tags = d.tags()
    assert tags["imblab.gate.champion_version"] == "3"
    assert d.record()["improvement"] == pytest.approx(0.12)  # the improvement moved to the record
    assert tags["imblab.gate.comparable"] == "true"
    # Fewer, readable tags (was 16 with raw JSON): what scripts need; the rest is in the description.
    assert sorted(tags) == [
        "imblab.decision", "imblab.gate.challenger_value", "imblab.gate.champion_value",
        "imblab.gate.champion_version", "imblab.gate.comparable", "imblab.gate.metric",
        "imblab.selection_metric", "imblab.source_run_id",
    ]  # fmt: skip
    assert not any(v.startswith(("{", "[")) for v in tags.values())


def test_rejected_below_the_minimum() -> None:
    d = apply_gate(decision(metrics(pr_auc=0.55), metrics(pr_auc=0.50), min_improvement=0.1))
    assert not d.promoted and d.outcome == REJECTED
    assert "improvement +0.0500 fails the gate (minimum 0.1" in d.reason
    # A worse challenger fails even a minimum of 0.
    worse = apply_gate(decision(metrics(pr_auc=0.49), metrics(pr_auc=0.50)))
    assert worse.outcome == REJECTED and worse.improvement == pytest.approx(-0.01)


def test_a_tie_never_moves_the_champion() -> None:
    d = apply_gate(decision(metrics(pr_auc=0.5), metrics(pr_auc=0.5)))
    assert not d.promoted and d.outcome == REJECTED and d.improvement == 0.0
    assert "improvement +0.0000 fails the gate" in d.reason and "a tie never moves the champion" in d.reason
    # Float noise in a tie (0.1 + 0.2 != 0.3) is a tie too, in both directions.
    assert not apply_gate(decision(metrics(pr_auc=0.1 + 0.2), metrics(pr_auc=0.3))).promoted
    assert not apply_gate(decision(metrics(pr_auc=0.3), metrics(pr_auc=0.1 + 0.2))).promoted
    # ...but a real gain, however small, passes a minimum of 0, and shows as more than +0.0000.
    tiny = apply_gate(decision(metrics(pr_auc=0.5 + 1e-6), metrics(pr_auc=0.5)))
    assert tiny.promoted and "improvement +1.00e-06 passes" in tiny.reason
    # A negative minimum is an explicit allowance for a worse model, so a tie passes it.
    assert apply_gate(decision(metrics(pr_auc=0.5), metrics(pr_auc=0.5), min_improvement=-0.01)).promoted


def test_lower_is_better_metric_direction() -> None:
    assert metric_direction("test_expected_cost") == ("expected_cost", False)
    cheaper = apply_gate(
        decision(metrics(expected_cost=0.8), metrics(expected_cost=1.0), "cv_expected_cost", 0.1)
    )
    assert cheaper.gate_metric == "test_expected_cost"
    assert cheaper.promoted and cheaper.improvement == pytest.approx(0.2)
    assert "lower is better" in cheaper.reason
    assert cheaper.record()["direction"] == "lower_is_better"
    dearer = apply_gate(
        decision(metrics(expected_cost=1.2), metrics(expected_cost=1.0), "test_expected_cost")
    )
    assert not dearer.promoted and dearer.improvement == pytest.approx(-0.2)


@pytest.mark.parametrize(("new", "old"), [(math.nan, 0.5), (0.5, math.nan), (math.nan, math.nan)])
def test_a_nan_metric_is_rejected(new: float, old: float) -> None:
    d = apply_gate(decision(metrics(pr_auc=new), metrics(pr_auc=old), min_improvement=-1.0))
    assert not d.promoted and d.outcome == REJECTED
    assert "a NaN metric cannot pass the gate" in d.reason


def test_not_comparable_is_refused_unless_forced_and_then_noted() -> None:
    assert comparability_problem("abc", {"seed": 42}, "abc", {"seed": 42}) is None
    data = comparability_problem("abc", {"seed": 42}, "def", {"seed": 42})
    assert data == "its data fingerprint is abc, the challenger's def"
    split = comparability_problem("abc", {"seed": 1}, "abc", {"seed": 42})
    assert split == "its split config is {'seed': 1}, the challenger's {'seed': 42}"

    assert comparable(None, "3", force=False)
    with pytest.raises(ImblabError, match=r"champion version 3 was trained on other data .*--force"):
        comparable(data, "3", force=False)
    assert not comparable(data, "3", force=True)

    d = apply_gate(decision(metrics(pr_auc=0.6), metrics(pr_auc=0.5), comparable=False))
    assert d.promoted and d.reason.endswith("[--force: champion trained on other data/split]")
    assert d.tags()["imblab.gate.comparable"] == "false"


def test_already_champion_decides_nothing() -> None:
    d = already_champion(decision(metrics(pr_auc=0.7)), "3")
    assert not d.promoted and d.outcome == ALREADY_CHAMPION
    assert d.champion == d.challenger and d.champion_version == "3" and d.improvement == 0.0
    assert "already is champion (version 3); nothing changed" in d.reason


def test_summary_shows_both_models() -> None:
    d = apply_gate(decision(metrics(pr_auc=0.62), metrics(pr_auc=0.5)))
    d.dry_run = True
    text = d.summary()
    assert text.startswith("DRY RUN (nothing registered): PROMOTED: defects run rrrr")
    assert "  pr_auc                0.6200          0.5000" in text
    assert "champion v3" in text and "(on 120 test rows of run" in text


def test_a_repeated_cv_gate_needs_an_interval_above_zero() -> None:
    """Paired over shared outer folds: a mean gain within the folds' noise does not move the champion;
    a negative minimum (an explicit allowance) still skips that requirement."""
    rng = np.random.default_rng(0)
    champion_folds = 0.3 + rng.normal(0, 0.05, 25)

    def gated(gain: float, spread: float, minimum: float = 0.0) -> Decision:
        challenger_folds = champion_folds + gain + rng.normal(0, spread, 25)
        d = decision(metrics(pr_auc=challenger_folds.mean()), metrics(pr_auc=champion_folds.mean()),
                     min_improvement=minimum)  # fmt: skip
        d.gate_metric, d.rows_label, d.test_rows = "rcv_pr_auc", "outer folds", 25
        d.paired = paired_corrected_t(challenger_folds, champion_folds, 320, 80)
        return apply_gate(d)

    clear = gated(0.05, 0.005)
    assert clear.promoted and "passes the gate" in clear.reason and "over 25 paired folds" in clear.reason
    assert clear.reason.startswith("rcv pr_auc ")
    noisy = gated(0.005, 0.05)
    assert noisy.improvement > 0 and not noisy.promoted and "within the folds' noise" in noisy.reason
    assert gated(0.005, 0.05, minimum=-0.01).promoted
    described = clear.description("imblab binary model from run r.", "promotions/defects-v4.json")
    assert "Paired over 25 shared outer folds: improvement +0.05" in described and "p = " in described
    assert described.endswith("Full record: artifact promotions/defects-v4.json of run " + "r" * 32 + ".")
    assert clear.record()["paired"]["n_folds"] == 25


def test_the_gate_imports_no_mlflow() -> None:
    code = "import sys, imblab.registry.gate; print(sorted(m for m in sys.modules if m.startswith('mlflow')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_a_panel_decision_shows_its_own_metrics_and_describes_the_version() -> None:
    new = {"class_balanced_accuracy": 0.61, "class_macro_f1": 0.55, "wage_rmse": 0.33}
    old = {"class_balanced_accuracy": 0.60, "class_macro_f1": 0.57, "wage_rmse": 0.31}
    d = Decision(
        model_name="panel-wage",
        metric="val_class_balanced_accuracy",
        gate_metric="test_class_balanced_accuracy",
        higher_is_better=True,
        run_id="p" * 32,
        model_uri="models:/m-2",
        selection_value=0.6,
        challenger=new,
        champion=old,
        champion_version="1",
        min_improvement=0.0,
        promoted=False,
        outcome="",
        reason="",
        test_rows=3553,
        shown=("class_macro_f1", "wage_rmse"),
        rows_label="test waves of 700 persons",
    )
    apply_gate(d)
    assert d.promoted and "improvement +0.0100 passes" in d.reason
    text = d.summary()
    assert re.search(
        r"\n  class_balanced_accuracy +0\.6100 +0\.6000\n  class_macro_f1 +0\.5500 +0\.5700\n", text
    )
    assert "(on 3553 test waves of 700 persons of run pppp" in text and "threshold" not in text
    assert set(d.record()["challenger_metrics"]) == set(new)  # no binary metrics
    described = d.description("imblab panel model from run p.")
    assert described.startswith("imblab panel model from run p.\n\nSelected by val_class_balanced_accuracy")
    assert "Gate: test_class_balanced_accuracy on 3553 test waves of 700 persons." in described
    assert (
        "class_balanced_accuracy 0.61 [0.6], class_macro_f1 0.55 [0.57], wage_rmse 0.33 [0.31]." in described
    )
    assert "Decision: promoted. test class_balanced_accuracy 0.6100 vs champion v1" in described
