"""The one registry of metric names: what each metric is, and how a user-given metric name is read.

Tuning, promotion and comparison all take a metric name from the user (``tuning.metric=pr_auc``,
``--metric test_pr_auc``); they read its direction and kind here, so a metric added to
:func:`imblab.metrics.core.threshold_metrics` needs one entry below and every command agrees on it.

Logged names carry a prefix saying which scores they come from: ``cv_<m>`` out-of-fold training
scores, ``test_<m>`` the held-out test set, ``rcv_<m>`` the mean over the outer test folds of
``evaluation=repeated_cv`` (with ``rcv_<m>_ci_low``/``_ci_high`` and per-fold ``rcv_fold_<m>``).
Pure Python (no numpy), so a CLI can check a name before importing anything heavy.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from imblab.errors import ImblabError

# Prefixes of logged metric names: held-out test, out-of-fold (cross-validation) and repeated-CV outer folds.
PREFIXES: tuple[str, ...] = ("test", "cv", "rcv")

# Metrics that can be bootstrapped from (labels, scores, threshold, costs) of the test rows, in the
# order comparison tables list them (ranking metrics first). The counts (tn, fp, ...) scale with the
# resample and ROI is undefined whenever nothing is inspected, so they are left out.
BOOT_METRICS: tuple[str, ...] = (
    "pr_auc",
    "roc_auc",
    "brier",
    "accuracy",
    "precision",
    "recall",
    "specificity",
    "f1",
    "balanced_accuracy",
    "mcc",
    "g_mean",
    "expected_cost",
    "net_saving",
)


@dataclass(frozen=True)
class MetricSpec:
    """What one base metric (no prefix) is."""

    name: str
    higher_is_better: bool  # ranking / tuning direction (True, meaninglessly, for non-quality entries)
    threshold_free: bool  # computed from the scores alone, so no decision threshold (policy) is needed
    quality: bool  # False for bookkeeping values (threshold, n, positive_rate): never rank or tune on them
    bootstrappable: bool  # in BOOT_METRICS


def _spec(name: str, *, lower: bool = False, free: bool = False, quality: bool = True) -> MetricSpec:
    return MetricSpec(name, not lower, free, quality, name in BOOT_METRICS)


# In the order threshold_metrics returns them (tests check that).
METRICS: Mapping[str, MetricSpec] = MappingProxyType(
    {
        s.name: s
        for s in (
            _spec("accuracy"),
            _spec("precision"),
            _spec("recall"),
            _spec("specificity"),
            _spec("f1"),
            _spec("balanced_accuracy"),
            _spec("roc_auc", free=True),
            _spec("pr_auc", free=True),
            _spec("mcc"),
            _spec("g_mean"),
            _spec("brier", lower=True, free=True),
            _spec("tn"),
            _spec("fp", lower=True),
            _spec("fn", lower=True),
            _spec("tp"),
            _spec("expected_cost", lower=True),
            _spec("net_saving"),
            _spec("roi"),
            _spec("threshold", quality=False),
            _spec("n", free=True, quality=False),
            _spec("positive_rate", quality=False),
        )
    }
)
assert set(BOOT_METRICS) <= set(METRICS), "every bootstrapped metric must be registered"

METRIC_NAMES: tuple[str, ...] = tuple(METRICS)
QUALITY_METRICS: tuple[str, ...] = tuple(m for m, s in METRICS.items() if s.quality)
LOWER_IS_BETTER = frozenset(m for m, s in METRICS.items() if not s.higher_is_better)
NOT_QUALITY = frozenset(m for m, s in METRICS.items() if not s.quality)
# Quality metrics a threshold policy has no influence on (tuning then skips choosing thresholds).
THRESHOLD_FREE_METRICS = frozenset(m for m, s in METRICS.items() if s.threshold_free and s.quality)


@dataclass(frozen=True)
class MetricName:
    """A parsed metric name: ``test_pr_auc`` -> prefix ``test``, base ``pr_auc`` and what it is."""

    prefix: str | None  # "test", "cv", or None for a bare base name
    base: str
    higher_is_better: bool
    threshold_free: bool
    quality: bool
    bootstrappable: bool

    @classmethod
    def of(cls, prefix: str | None, spec: MetricSpec) -> MetricName:
        return cls(
            prefix, spec.name, spec.higher_is_better, spec.threshold_free, spec.quality, spec.bootstrappable
        )

    @property
    def full(self) -> str:
        """The name as logged (``test_pr_auc``), or the base name when it had no prefix."""
        return f"{self.prefix}_{self.base}" if self.prefix else self.base

    @property
    def direction(self) -> str:
        """Optuna's word for the better direction: ``"maximize"`` or ``"minimize"``."""
        return "maximize" if self.higher_is_better else "minimize"


class MetricNameError(ImblabError):
    """A metric name that is unknown, or known but given in a form the caller does not accept."""

    def __init__(self, name: object, message: str) -> None:
        super().__init__(message)
        self.name = name


def parse_metric_name(name: str, *, prefixes: Collection[str] = PREFIXES, bare: bool = False) -> MetricName:
    """Read ``<prefix>_<base>`` (``prefix`` in ``prefixes``) or, if ``bare``, a plain base name.

    Raises MetricNameError when the base is unknown or the form is not accepted (e.g. ``cv_pr_auc``
    where only test metrics make sense). Whether the metric suits the purpose (quality, bootstrap) is
    the caller's check on the returned flags.
    """
    if not set(prefixes) <= set(PREFIXES):
        raise ValueError(f"prefixes must be among {PREFIXES}, got {list(prefixes)}")
    forms = [f"{p}_<m>" for p in PREFIXES if p in prefixes] + (["<m>"] if bare else [])
    use = f"use {' or '.join(forms)} with <m> one of {list(QUALITY_METRICS)}"
    if not isinstance(name, str):
        raise MetricNameError(name, f"metric name must be a string, got {name!r}; {use}")
    for p in PREFIXES:
        base = name.removeprefix(f"{p}_")
        if base != name and base in METRICS:
            if p in prefixes:
                return MetricName.of(p, METRICS[base])
            raise MetricNameError(name, f"metric {name!r}: the {p}_ prefix is not accepted here; {use}")
    if name in METRICS:
        if bare:
            return MetricName.of(None, METRICS[name])
        raise MetricNameError(name, f"metric {name!r} needs a prefix saying which scores it is on; {use}")
    raise MetricNameError(name, f"unknown metric {name!r}; {use}")


# --------------------------------------------------------------------------------------------------
# The places a user names a metric, each with the forms it accepts and its own wording
# --------------------------------------------------------------------------------------------------


def tuning_metric(name: str) -> MetricName:
    """``tuning.metric``: a bare quality metric, scored on each validation fold."""
    tunable = list(QUALITY_METRICS)
    try:
        metric = parse_metric_name(name, prefixes=(), bare=True)
    except MetricNameError:
        raise ImblabError(f"unknown tuning.metric={name!r}; use one of {tunable}") from None
    if not metric.quality:
        raise ImblabError(
            f"tuning.metric={name} is not a quality measure and cannot be optimised; use one of {tunable}"
        )
    return metric


def bootstrap_metric(name: str) -> MetricName:
    """``imblab compare --metric``: ``test_<m>`` (or bare ``<m>``) of a metric the test bootstrap computes."""
    try:
        metric = parse_metric_name(name, prefixes=("test",), bare=True)
    except MetricNameError:
        metric = None
    if metric is None or not metric.bootstrappable:
        raise ImblabError(
            f"--metric {name!r} cannot be compared with bootstrap CIs on the test set; choose one of "
            f"{['test_' + m for m in BOOT_METRICS]}"
        )
    return metric
