"""The leakage-free protocol: holdout split, out-of-fold scores, one final fit, one test scoring.

1. Split once into train/test (stratified or by time). Test rows are touched once, at the end.
2. Cross-validate the whole pipeline (preprocess + sampler + model) on the training rows only;
   the clones fitted per fold never see their validation fold, so out-of-fold scores are honest.
3. Refit the pipeline on all training rows and score the test rows.

Threshold policies are applied afterwards to the out-of-fold scores (see ``runner``): the fit
does not depend on the policy, which is why its results can be cached and shared by a sweep.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from joblib import Parallel, delayed
from omegaconf import DictConfig
from sklearn.base import clone
from sklearn.model_selection import StratifiedKFold, train_test_split

from imblab.data.dataset import Dataset
from imblab.errors import ImblabError
from imblab.pipeline import build_pipeline, check_sampler_feasible


@dataclass
class Split:
    """Row positions of the holdout split."""

    train: np.ndarray
    test: np.ndarray


@dataclass
class FitResult:
    """Everything a run needs that does not depend on the threshold policy."""

    pipeline: Any  # imblearn Pipeline fitted on all training rows
    oof_scores: np.ndarray  # out-of-fold P(positive) for every training row
    fold_ids: np.ndarray  # CV fold of every training row
    test_scores: np.ndarray  # P(positive) for every test row, from ``pipeline``
    fit_seconds: float
    model_params: dict[str, Any] = field(default_factory=dict)


def holdout_split(dataset: Dataset, cfg: DictConfig) -> Split:
    """Stratified or time-ordered holdout, as ``split.kind`` says."""
    n = len(dataset.y)
    test_size = float(cfg.test_size)
    if not 0.0 < test_size < 1.0:
        raise ImblabError(f"split.test_size must be in (0, 1), got {test_size}")
    positions = np.arange(n)
    if cfg.kind == "stratified":
        train, test = train_test_split(
            positions, test_size=test_size, random_state=int(cfg.seed), stratify=dataset.y.to_numpy()
        )
        split = Split(np.sort(train), np.sort(test))
    elif cfg.kind == "time":
        if dataset.timestamps is None:
            raise ImblabError(
                f"split=time needs timestamps, and data {dataset.name!r} has none; "
                "use split=stratified or set data.timestamp_column"
            )
        order = np.argsort(dataset.timestamps.to_numpy(), kind="stable")
        n_test = int(np.ceil(n * test_size))
        split = Split(np.sort(order[: n - n_test]), np.sort(order[n - n_test :]))
    else:
        raise ImblabError(f"split.kind must be 'stratified' or 'time', got {cfg.kind!r}")
    for part, rows in (("training", split.train), ("test", split.test)):
        classes = np.unique(dataset.y.to_numpy()[rows])
        if len(classes) < 2:
            raise ImblabError(
                f"the {part} set of split={cfg.kind} holds only class {classes.tolist()}; "
                "use more data, a different split.test_size, or split=stratified"
            )
    return split


def cv_folds(y_train: np.ndarray, cv: DictConfig) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified K-fold positions within the training set."""
    k = int(cv.folds)
    n_pos = int(np.sum(y_train == 1))
    n_neg = len(y_train) - n_pos
    if k < 2:
        raise ImblabError(f"cv.folds must be at least 2, got {k}")
    if min(n_pos, n_neg) < k:
        raise ImblabError(
            f"cv.folds={k} needs at least {k} rows of each class in the training set, but the minority "
            f"class has {min(n_pos, n_neg)}; lower cv.folds"
        )
    shuffle = bool(cv.get("shuffle", True))
    skf = StratifiedKFold(n_splits=k, shuffle=shuffle, random_state=int(cv.seed) if shuffle else None)
    return list(skf.split(np.zeros(len(y_train)), y_train))


def _minority_counts(y_train: np.ndarray, folds: list[tuple[np.ndarray, np.ndarray]]) -> list[int]:
    counts = [int(min(np.bincount(y_train[tr], minlength=2))) for tr, _ in folds]
    return [*counts, int(min(np.bincount(y_train, minlength=2)))]


def _positive_proba(pipeline: Any, X: Any) -> np.ndarray:
    proba = pipeline.predict_proba(X)
    classes = list(pipeline.classes_)
    return np.asarray(proba[:, classes.index(1)], dtype=float)


def _fit_one(pipeline: Any, X: Any, y: np.ndarray) -> Any:
    return pipeline.fit(X, y)


def fit_and_score(
    dataset: Dataset, split: Split, cfg: DictConfig, model_params: dict[str, Any] | None = None
) -> FitResult:
    """Out-of-fold scores on the training rows, then one final fit and one test scoring."""
    start = time.perf_counter()
    X_train = dataset.X.iloc[split.train]
    y_train = dataset.y.to_numpy()[split.train]
    folds = cv_folds(y_train, cfg.cv)
    check_sampler_feasible(cfg, _minority_counts(y_train, folds))
    template = build_pipeline(cfg, model_params)

    # The K fold fits and the final fit are independent: run them side by side (cv.n_jobs).
    # Each works on its own clone, so the result is identical to a sequential loop.
    all_rows = np.arange(len(y_train))
    jobs = [*folds, (all_rows, None)]
    fitted = Parallel(n_jobs=int(cfg.cv.get("n_jobs", 1)))(
        delayed(_fit_one)(clone(template), X_train.iloc[tr], y_train[tr]) for tr, _ in jobs
    )
    oof = np.full(len(y_train), np.nan)
    fold_ids = np.full(len(y_train), -1, dtype=int)
    for i, ((_, va), fold_pipe) in enumerate(zip(folds, fitted[:-1], strict=True)):
        oof[va] = _positive_proba(fold_pipe, X_train.iloc[va])
        fold_ids[va] = i
    final = fitted[-1]
    test_scores = _positive_proba(final, dataset.X.iloc[split.test])
    for name, scores in (("out-of-fold", oof), ("test", test_scores)):
        if not np.all(np.isfinite(scores)):
            raise ImblabError(f"the model produced non-finite {name} probabilities; check the input data")
    return FitResult(
        pipeline=final,
        oof_scores=oof,
        fold_ids=fold_ids,
        test_scores=test_scores,
        fit_seconds=time.perf_counter() - start,
        model_params=dict(model_params or {}),
    )
