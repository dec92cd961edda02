"""Checks of the ``tuning`` settings before any data is read or any trial runs; clear errors only."""

from __future__ import annotations

from optuna.pruners import BasePruner

from imblab.config.specs import TuningSpec, number, whole
from imblab.errors import ImblabError
from imblab.metrics.names import tuning_metric
from imblab.tuning.storage import journal_path

EARLY_STOPPING_METRICS = ("binary_logloss", "auc", "average_precision", "binary_error")
MAX_CONSECUTIVE_FAILURES = 3  # failed trials in a row that stop a study


def metric_direction(metric: str, override: str | None = None) -> str:
    """``"maximize"`` or ``"minimize"`` for a tuning metric; ImblabError for names imblab cannot tune."""
    direction = tuning_metric(metric).direction  # the metric registry checks the name
    if override is None:
        return direction
    if override not in ("maximize", "minimize"):
        raise ImblabError(f"tuning.direction must be maximize, minimize or null, got {override!r}")
    return override


def check(spec: TuningSpec) -> str:
    """Every ``tuning.*`` value a study needs, checked at once; returns the optimisation direction."""
    direction = metric_direction(spec.metric, spec.direction)
    whole(spec.folds, "tuning.folds", minimum=2)
    check_budget(spec)
    es = spec.early_stopping
    if es.enabled:
        whole(es.patience, "tuning.early_stopping.patience")
        if es.metric not in EARLY_STOPPING_METRICS:
            raise ImblabError(
                f"tuning.early_stopping.metric must be one of {EARLY_STOPPING_METRICS}, got {es.metric!r}"
            )
    return direction


def check_budget(spec: TuningSpec) -> None:
    """The settings every study needs whatever it scores (also ``imblab panel``): trials, time, pruner."""
    whole(spec.n_trials, "tuning.n_trials")
    if spec.timeout is not None and number(spec.timeout, "tuning.timeout") <= 0:
        raise ImblabError(f"tuning.timeout must be > 0 seconds or null, got {spec.timeout!r}")
    if spec.n_jobs != -1:
        whole(spec.n_jobs, "tuning.n_jobs (threads; -1 = one per CPU)")
    check_heartbeat(spec)
    if spec.pruner is not None and not isinstance(spec.pruner, BasePruner):
        raise ImblabError(
            f"tuning.pruner must build an Optuna pruner (optuna.pruners.*), got "
            f"{type(spec.pruner).__name__}; use tuning/pruner=percentile, median, wilcoxon or none"
        )


def check_heartbeat(spec: TuningSpec) -> None:
    """``tuning.heartbeat_interval``, ``grace_period`` and ``retries``: how dead workers' trials are found.

    Heartbeats are Optuna's RDB feature: a grace period set for a journal storage would never act, so
    it is refused rather than ignored (journal workers share one machine; their dead trials are found
    by process id).
    """
    interval = spec.heartbeat_interval
    if interval is not None:
        whole(interval, "tuning.heartbeat_interval (seconds; null = no heartbeat)")
    if spec.grace_period is not None:
        grace = whole(spec.grace_period, "tuning.grace_period (seconds; null = 2 heartbeat intervals)")
        if interval is None:
            raise ImblabError(
                "tuning.grace_period needs tuning.heartbeat_interval: without heartbeats nothing is stale; "
                "set both, or set grace_period=null"
            )
        if grace <= interval:
            raise ImblabError(
                f"tuning.grace_period={grace} must be longer than tuning.heartbeat_interval={interval}: a "
                "live worker beats once per interval, so a shorter grace period fails trials that are "
                "still running; use at least twice the interval"
            )
        if spec.storage and journal_path(str(spec.storage)) is not None:
            raise ImblabError(
                f"tuning.grace_period applies to SQL storages (sqlite:///..., postgresql://...), not to "
                f"{spec.storage!r}: journal workers share one machine and their dead trials are found by "
                "process id; drop tuning.grace_period"
            )
    whole(spec.retries, "tuning.retries (0 = never retry a dead worker's trial)", minimum=0)
