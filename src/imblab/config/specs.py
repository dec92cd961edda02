"""Typed specs: what the layers below the entry layer receive instead of the raw Hydra config.

Each spec checks its own values when it is made, so a wrong override (``cv.folds=abc``) fails with an
``imblab: error:`` naming the key before any data is read or any run is opened.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from imblab.errors import ImblabError

if TYPE_CHECKING:
    from imblearn.pipeline import Pipeline

    from imblab.data.dataset import Dataset
    from imblab.metrics.costs import Costs
    from imblab.thresholds import ThresholdPolicy


def whole(value: Any, key: str, minimum: int = 1) -> int:
    """``value`` as an int >= ``minimum``; a clear error naming ``key`` otherwise (``true`` is no 1)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ImblabError(f"{key} must be a whole number >= {minimum}, got {value!r}")
    return int(value)


def number(value: Any, key: str) -> float:
    """``value`` as a finite float; a clear error naming ``key`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ImblabError(f"{key} must be a finite number, got {value!r}")
    return float(value)


def flag(value: Any, key: str) -> bool:
    if not isinstance(value, bool):
        raise ImblabError(f"{key} must be true or false, got {value!r}")
    return value


def n_jobs(value: Any, key: str) -> int:
    """A joblib-style worker count: a whole number >= 1, or -1 for one per CPU."""
    if value == -1 and not isinstance(value, bool):
        return -1
    return whole(value, f"{key} (-1 = one per CPU)")


@dataclass(frozen=True)
class SplitSpec:
    """The holdout split: ``stratified`` on the target, or ``time`` (the last rows by timestamp)."""

    kind: str = "stratified"
    test_size: float = 0.2
    seed: int = 42

    def __post_init__(self) -> None:
        if self.kind not in ("stratified", "time"):
            raise ImblabError(f"split.kind must be 'stratified' or 'time', got {self.kind!r}")
        size = number(self.test_size, "split.test_size")
        if not 0.0 < size < 1.0:
            raise ImblabError(f"split.test_size must be in (0, 1), got {self.test_size}")
        object.__setattr__(self, "test_size", size)
        object.__setattr__(self, "seed", whole(self.seed, "split.seed", minimum=0))


@dataclass(frozen=True)
class CVSpec:
    """Stratified K-fold on the training rows (out-of-fold scores for the threshold policy)."""

    folds: int = 5
    shuffle: bool = True
    seed: int = 42
    n_jobs: int = 1  # fold fits in parallel processes; results do not depend on it

    def __post_init__(self) -> None:
        object.__setattr__(self, "folds", whole(self.folds, "cv.folds", minimum=2))
        object.__setattr__(self, "shuffle", flag(self.shuffle, "cv.shuffle"))
        object.__setattr__(self, "seed", whole(self.seed, "cv.seed", minimum=0))
        object.__setattr__(self, "n_jobs", n_jobs(self.n_jobs, "cv.n_jobs"))


EVALUATIONS = ("holdout", "repeated_cv")
OUTER_KINDS = ("stratified", "time")
CALIBRATIONS = ("none", "sigmoid", "isotonic")


@dataclass(frozen=True)
class EvaluationSpec:
    """How a run estimates performance: one ``holdout`` split (the ``split`` group), or ``repeated_cv``.

    ``repeated_cv``: ``repeats`` x ``folds`` outer folds over all rows (``kind=stratified``: repeated
    stratified K-fold seeded by ``seed``; ``kind=time``: ``folds`` forward-chaining folds by timestamp,
    deterministic, so ``repeats`` must be 1). The whole holdout protocol runs inside every outer-training
    part; ``level`` is the confidence level of the logged intervals.
    """

    name: str = "holdout"
    kind: str = "stratified"
    repeats: int = 5
    folds: int = 5
    seed: int = 42
    level: float = 0.95

    def __post_init__(self) -> None:
        if self.name not in EVALUATIONS:
            raise ImblabError(f"evaluation.name must be one of {list(EVALUATIONS)}, got {self.name!r}")
        if self.kind not in OUTER_KINDS:
            raise ImblabError(f"evaluation.kind must be one of {list(OUTER_KINDS)}, got {self.kind!r}")
        object.__setattr__(self, "repeats", whole(self.repeats, "evaluation.repeats"))
        object.__setattr__(self, "folds", whole(self.folds, "evaluation.folds", minimum=2))
        object.__setattr__(self, "seed", whole(self.seed, "evaluation.seed", minimum=0))
        level = number(self.level, "evaluation.level")
        if not 0.0 < level < 1.0:
            raise ImblabError(f"evaluation.level must be in (0, 1), got {self.level}")
        object.__setattr__(self, "level", level)
        if self.repeated and self.kind == "time" and self.repeats != 1:
            raise ImblabError(
                f"evaluation.kind=time folds are fixed by the timestamps, so repeating them gives the same "
                f"folds; set evaluation.repeats=1 (got {self.repeats})"
            )

    @property
    def repeated(self) -> bool:
        """True for ``repeated_cv`` (outer folds), False for the holdout split."""
        return self.name == "repeated_cv"


@dataclass(frozen=True)
class CalibrationSpec:
    """Probability calibration fitted inside every fit on rows its sampler never saw (``imblab.pipeline``).

    ``method``: ``none``, ``sigmoid`` (Platt) or ``isotonic``; ``folds``: the calibration folds of
    every fit; ``seed`` shuffles them.
    """

    method: str = "none"
    folds: int = 3
    seed: int = 42

    def __post_init__(self) -> None:
        if self.method not in CALIBRATIONS:
            raise ImblabError(f"calibration.method must be one of {list(CALIBRATIONS)}, got {self.method!r}")
        object.__setattr__(self, "folds", whole(self.folds, "calibration.folds", minimum=2))
        object.__setattr__(self, "seed", whole(self.seed, "calibration.seed", minimum=0))

    @property
    def enabled(self) -> bool:
        return self.method != "none"


@dataclass(frozen=True)
class CacheSpec:
    """Where fitted pipelines are cached (``None`` or ``enabled=False``: always fit)."""

    enabled: bool = True
    dir: str | None = None


@dataclass(frozen=True)
class TrackingSpec:
    """The MLflow store and experiment a run is logged to."""

    uri: str | None = None  # None: $MLFLOW_TRACKING_URI, else the embedded store under ./mlruns
    experiment: str = "imblab"
    run_name: str | None = None
    log_model: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.experiment, str) or not self.experiment.strip():
            raise ImblabError(f"tracking.experiment must be a non-empty name, got {self.experiment!r}")
        object.__setattr__(self, "log_model", flag(self.log_model, "tracking.log_model"))


@dataclass(frozen=True)
class EarlyStoppingSpec:
    """LightGBM early stopping on cross-fitted validation halves (see ``imblab.tuning.trainers``)."""

    enabled: bool = False
    metric: str = "binary_logloss"
    patience: int = 20


@dataclass(frozen=True)
class TuningSpec:
    """Optuna tuning inside a run; checked by ``imblab.tuning.settings.check`` before any trial."""

    enabled: bool = False
    n_trials: int = 50
    timeout: float | None = None
    metric: str = "pr_auc"
    direction: str | None = None
    folds: int = 5
    seed: int = 42
    tpe_startup_trials: int = 10
    pruner: Any = None  # an optuna pruner built from the tuning/pruner group (None: no pruning)
    early_stopping: EarlyStoppingSpec = field(default_factory=EarlyStoppingSpec)
    storage: str | None = None
    study_name: str | None = None
    n_jobs: int = 1
    heartbeat_interval: int | None = 60  # SQL storages: seconds between a running trial's heartbeats
    grace_period: int | None = None  # SQL storages: a trial without a beat this long is stale (None: 2x)
    retries: int = 2  # times a stale trial (dead worker) is run again
    wait_for_workers: float = 600.0
    progress_bar: bool = True


@dataclass
class Experiment:
    """One configured experiment, typed: everything a run needs, built once from the composed config.

    ``pipeline`` is unfitted (preprocess steps -> optional sampler -> model); protocols clone it.
    ``config`` is the resolved config as plain data, kept only for logging and for cache/study keys.
    """

    load_data: Callable[[], Dataset]
    pipeline: Pipeline
    sampler_name: str
    model_name: str
    policy: ThresholdPolicy
    costs: Costs  # the configured costs with the policy's own cost parameters on top
    split: SplitSpec
    cv: CVSpec
    cache: CacheSpec
    tracking: TrackingSpec
    tuning: TuningSpec
    search_space: dict[str, Any]
    seed: int
    config: dict[str, Any]
    evaluation: EvaluationSpec = field(default_factory=EvaluationSpec)
    calibration: CalibrationSpec = field(default_factory=CalibrationSpec)

    @property
    def run_name(self) -> str:
        if self.tracking.run_name:
            return self.tracking.run_name
        tuned = "-tuned" if self.tuning.enabled else ""
        return f"{self.sampler_name}-{self.model_name}{tuned}-{self.policy.name}"

    def section(self, *keys: str) -> dict[str, Any]:
        """Plain-data sections of the resolved config (for cache and study keys)."""
        return {k: self.config.get(k) for k in keys}
