"""imblab.metrics.names: the one metric registry agrees with the metrics computed, and parses names."""

from __future__ import annotations

import numpy as np
import pytest

from imblab.errors import ImblabError
from imblab.metrics.bootstrap import weighted_metrics
from imblab.metrics.core import SWEEP_COLUMNS
from imblab.metrics.costs import Costs
from imblab.metrics.names import (
    BOOT_METRICS,
    LOWER_IS_BETTER,
    METRIC_NAMES,
    METRICS,
    NOT_QUALITY,
    QUALITY_METRICS,
    THRESHOLD_FREE_METRICS,
    MetricName,
    MetricNameError,
    bootstrap_metric,
    parse_metric_name,
    tuning_metric,
)
from imblab.metrics.ranking import ranking_rule


def test_registry_sets() -> None:
    assert {"brier", "expected_cost", "fp", "fn"} == LOWER_IS_BETTER
    assert {"threshold", "n", "positive_rate"} == NOT_QUALITY
    assert {"pr_auc", "roc_auc", "brier"} == THRESHOLD_FREE_METRICS
    assert tuple(m for m in METRIC_NAMES if m not in NOT_QUALITY) == QUALITY_METRICS
    assert set(SWEEP_COLUMNS) <= set(METRIC_NAMES)
    assert {m for m, s in METRICS.items() if s.bootstrappable} == set(BOOT_METRICS)


def test_boot_metrics_are_what_the_bootstrap_computes() -> None:
    y, s = np.array([0, 1, 0, 1, 0]), np.array([0.1, 0.8, 0.4, 0.3, 0.2])
    assert tuple(weighted_metrics(y, s, 0.5, Costs(), np.ones((1, 5)))) == BOOT_METRICS


def test_parse_metric_name_forms() -> None:
    assert parse_metric_name("test_pr_auc") == MetricName("test", "pr_auc", True, True, True, True)
    cv = parse_metric_name("cv_expected_cost")
    assert (cv.prefix, cv.base, cv.full, cv.direction) == (
        "cv",
        "expected_cost",
        "cv_expected_cost",
        "minimize",
    )
    bare = parse_metric_name("net_saving", bare=True)
    assert bare.prefix is None and bare.full == "net_saving" and bare.direction == "maximize"
    assert not parse_metric_name("test_positive_rate").quality
    for name, kwargs, match in [
        ("pr_auc", {}, "needs a prefix"),
        ("cv_pr_auc", {"prefixes": ("test",)}, "cv_ prefix is not accepted"),
        ("test_nope", {}, "unknown metric 'test_nope'"),
        (
            "holdout_pr_auc",
            {"bare": True},
            r"use test_<m> or cv_<m> or rcv_<m> or <m> with <m> one of \['accuracy'",
        ),
    ]:
        with pytest.raises(MetricNameError, match=match):
            parse_metric_name(name, **kwargs)
    with pytest.raises(ValueError, match="prefixes"):
        parse_metric_name("train_pr_auc", prefixes=("train",))


def test_uses_keep_their_wording() -> None:
    assert tuning_metric("brier").direction == "minimize"
    with pytest.raises(ImblabError, match=r"unknown tuning.metric='test_pr_auc'; use one of \["):
        tuning_metric("test_pr_auc")
    with pytest.raises(ImblabError, match=r"tuning\.metric=n is not a quality measure"):
        tuning_metric("n")
    assert ranking_rule("cv_fn", None).base == "fn" and not ranking_rule("cv_fn", None).higher_is_better
    with pytest.raises(ImblabError, match="brier, fp, fn and expected_cost count as lower-is-better"):
        ranking_rule("cv_threshold", None)
    assert bootstrap_metric("pr_auc").base == bootstrap_metric("test_pr_auc").base == "pr_auc"
    for bad in ("cv_pr_auc", "test_roi", "test_tp"):
        with pytest.raises(ImblabError, match=f"--metric '{bad}' cannot be compared"):
            bootstrap_metric(bad)
