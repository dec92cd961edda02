"""The one ranking rule for runs, shared by ``imblab compare`` and ``imblab promote``.

Select on cross-validation, confirm on test. By default runs are ranked by a cross-validation metric:
``rcv_<m>`` (the mean over the outer folds) when they were evaluated by repeated CV, ``cv_<m>`` (out of
fold on the training rows) under a holdout, ``val_<m>`` (the validation persons) for panel runs. Ties
go, in this order, to the better CV metric (the same base metric: it matters when ranking by ``test_<m>``),
to fewer alarms (flagged rows: ``test_tp + test_fp`` under a holdout, the mean per-fold ``rcv_tp +
rcv_fp`` under repeated CV; panel runs have none), then to the newest run (so re-running an identical
config never selects the old one), then to the run id, so the order is total and both commands name
the same best run on the same runs.

Ranking by ``test_<m>`` is allowed, but among more than two runs the winner's test score is optimistic
(it won a contest on the very rows that score it: the winner's curse): :meth:`RankingRule.warning` says so.

Pure Python: no MLflow, no numpy.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from imblab.errors import ImblabError
from imblab.metrics.names import LOWER_IS_BETTER, QUALITY_METRICS, parse_metric_name
from imblab.panel.metrics import ranking_metric as panel_ranking_metric

HOLDOUT = "holdout"
REPEATED_CV = "repeated_cv"
PANEL = "panel"
# The cross-validation prefix of each protocol, and the base metric ranked by default.
CV_PREFIX = {HOLDOUT: "cv", REPEATED_CV: "rcv", PANEL: "val"}
DEFAULT_BASE = {HOLDOUT: "pr_auc", REPEATED_CV: "pr_auc", PANEL: "class_balanced_accuracy"}
# Metrics whose sum counts a run's alarms (flagged rows), per protocol.
ALARMS = {HOLDOUT: ("test_tp", "test_fp"), REPEATED_CV: ("rcv_tp", "rcv_fp"), PANEL: ()}
EVALUATION_TAG = "evaluation"  # the tag a training run records its protocol in (holdout | repeated_cv)

T = TypeVar("T")


def protocol_of(tags: Mapping[str, str]) -> str:
    """``repeated_cv`` for a run evaluated by repeated CV (or time CV), otherwise ``holdout``."""
    return REPEATED_CV if tags.get(EVALUATION_TAG) == REPEATED_CV else HOLDOUT


def default_metric(protocol: str) -> str:
    """The CV metric runs of ``protocol`` are ranked by unless told otherwise."""
    return f"{CV_PREFIX[protocol]}_{DEFAULT_BASE[protocol]}"


@dataclass(frozen=True)
class RankingRule:
    """How runs of one protocol are ordered: the ranking metric, then the tie-breaks."""

    metric: str  # as logged, e.g. cv_pr_auc, test_expected_cost, rcv_pr_auc, val_class_macro_f1
    base: str  # without its prefix
    higher_is_better: bool
    protocol: str  # holdout | repeated_cv | panel

    @property
    def prefix(self) -> str:
        return self.metric.removesuffix(f"_{self.base}")

    @property
    def cv_metric(self) -> str:
        """The CV counterpart of the ranking metric: the first tie-break."""
        return f"{CV_PREFIX[self.protocol]}_{self.base}"

    @property
    def on_test(self) -> bool:
        return self.prefix == "test"

    def key(self, metrics: Mapping[str, float], start_time: int, run_id: str) -> tuple:
        """Sort key of one run, best first: ranking metric (missing last), CV metric, fewer alarms,
        newest, run id."""
        sign = 1.0 if self.higher_is_better else -1.0

        def better_first(name: str) -> float:
            value = float(metrics.get(name, math.nan))
            return math.inf if math.isnan(value) else -sign * value

        alarms = [float(metrics.get(m, math.nan)) for m in ALARMS[self.protocol]]
        n_alarms = sum(alarms) if alarms and not any(math.isnan(a) for a in alarms) else math.inf
        value = float(metrics.get(self.metric, math.nan))
        return (
            math.isnan(value),
            better_first(self.metric),
            better_first(self.cv_metric),
            n_alarms,
            -int(start_time or 0),
            run_id,
        )

    def rank(
        self,
        runs: Iterable[T],
        metrics: Callable[[T], Mapping[str, float]],
        start_time: Callable[[T], int],
        run_id: Callable[[T], str],
    ) -> list[T]:
        """``runs`` best first; those without the ranking metric (NaN or not logged) are left out."""
        scored = [r for r in runs if not math.isnan(float(metrics(r).get(self.metric, math.nan)))]
        return sorted(scored, key=lambda r: self.key(metrics(r), start_time(r), run_id(r)))

    def warning(self, n_runs: int) -> str | None:
        """The winner's-curse warning when a test metric picks the best of more than two runs."""
        if not self.on_test or n_runs <= 2:
            return None
        return (
            f"ranked by a TEST metric ({self.metric}) among {n_runs} runs: the winner's test score is "
            f"optimistic (it was picked on the rows that score it: the winner's curse); rank by "
            f"{self.cv_metric} (the default) and read the test score as confirmation"
        )


def ranking_rule(metric: str | None, protocol: str | None) -> RankingRule:
    """The rule for ``--metric`` (None: the protocol's CV default) on runs of ``protocol``.

    ``protocol`` None (runs not known yet, or of both protocols): the metric's own prefix says which
    (``rcv_`` repeated CV, otherwise holdout); panel metrics are never inferred.

    Binary runs take ``cv_<m>`` or ``test_<m>`` under a holdout and ``rcv_<m>`` or ``cv_<m>`` (out of fold
    on all rows, for the frozen model's threshold) under repeated CV, which has no test set; panel runs
    ``val_<m>`` or ``test_<m>``.
    """
    if protocol is None and metric is None:
        raise ValueError("ranking_rule() needs a metric or a protocol")
    metric = metric or default_metric(str(protocol))
    if protocol == PANEL:
        base, higher = panel_ranking_metric(metric)
        return RankingRule(metric, base, higher, PANEL)
    try:
        parsed = parse_metric_name(metric, prefixes=("test", "cv", "rcv"))
    except ImblabError:
        parsed = None
    if parsed is None or not parsed.quality:
        *most, last = (m for m in QUALITY_METRICS if m in LOWER_IS_BETTER)
        raise ImblabError(
            f"--metric {metric!r} cannot rank models; use cv_<m>, test_<m> or (repeated-CV runs) rcv_<m> "
            f"with <m> one of {list(QUALITY_METRICS)} (e.g. {default_metric(HOLDOUT)}; "
            f"{', '.join(most)} and {last} count as lower-is-better)"
        )
    protocol = protocol or (REPEATED_CV if parsed.prefix == "rcv" else HOLDOUT)
    if protocol == REPEATED_CV and parsed.prefix == "test":
        raise ImblabError(
            f"--metric {metric}: runs evaluated by repeated CV have no test set; rank them by "
            f"rcv_{parsed.base} (the mean over the outer test folds)"
        )
    if protocol == HOLDOUT and parsed.prefix == "rcv":
        raise ImblabError(
            f"--metric {metric}: these runs were evaluated on a holdout split and log no rcv_ metrics; "
            f"rank them by cv_{parsed.base} (or test_{parsed.base}), or train with evaluation=repeated_cv"
        )
    return RankingRule(parsed.full, parsed.base, parsed.higher_is_better, protocol)
