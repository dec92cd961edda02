"""Out-of-fold scores on the training rows, then one final fit and one test scoring.

Cross-validation clones the *whole* pipeline (preprocess + sampler + model) into every fold and fits
it on the fold's training part only, so out-of-fold scores are honest. Threshold policies are applied
afterwards to these scores: the fit does not depend on the policy, which is why it can be cached and
shared by a sweep over policies.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from sklearn.base import clone
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.model_selection import StratifiedKFold

from imblab.config.specs import CVSpec
from imblab.data.dataset import Dataset
from imblab.errors import ImblabError
from imblab.pipeline import check_sampler_feasible, positive_proba
from imblab.protocol.split import Split


@dataclass
class FitResult:
    """Everything a run needs that does not depend on the threshold policy."""

    pipeline: Any  # imblearn Pipeline fitted on all training rows
    oof_scores: np.ndarray  # out-of-fold P(positive) for every training row
    fold_ids: np.ndarray  # CV fold of every training row
    test_scores: np.ndarray  # P(positive) for every test row, from ``pipeline``
    fit_seconds: float
    model_params: dict[str, Any] = field(default_factory=dict)


def cv_folds(
    y_train: np.ndarray, spec: CVSpec, folds: int | None = None
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified K-fold positions within the training set (``folds`` overrides ``spec.folds``)."""
    k = spec.folds if folds is None else folds
    n_pos = int(np.sum(y_train == 1))
    n_neg = len(y_train) - n_pos
    if min(n_pos, n_neg) < k:
        raise ImblabError(
            f"cv.folds={k} needs at least {k} rows of each class in the training set, but the minority "
            f"class has {min(n_pos, n_neg)}; lower cv.folds"
        )
    skf = StratifiedKFold(n_splits=k, shuffle=spec.shuffle, random_state=spec.seed if spec.shuffle else None)
    return list(skf.split(np.zeros(len(y_train)), y_train))


def minority_counts(y_train: np.ndarray, folds: list[tuple[np.ndarray, np.ndarray]]) -> list[int]:
    """Minority-class size of every training set a sampler will see: each fold's and the whole one."""
    counts = [int(min(np.bincount(y_train[tr], minlength=2))) for tr, _ in folds]
    return [*counts, int(min(np.bincount(y_train, minlength=2)))]


def _fit_one(index: int, pipeline: Any, X: Any, y: np.ndarray) -> tuple[int, Any]:
    return index, pipeline.fit(X, y)


def fit_and_score(
    dataset: Dataset,
    split: Split,
    pipeline: Any,
    cv: CVSpec,
    sampler_name: str = "sampler",
    model_params: dict[str, Any] | None = None,
    on_fit: Callable[[], None] | None = None,
) -> FitResult:
    """Out-of-fold scores of ``pipeline`` (unfitted) on the training rows, the final fit, the test scores.

    ``model_params`` are only recorded: they are already set on ``pipeline``'s model. ``on_fit`` is
    called as each of the ``cv.folds + 1`` fits finishes (progress).
    """
    start = time.perf_counter()
    X_train = dataset.X.iloc[split.train]
    y_train = dataset.y.to_numpy()[split.train]
    folds = cv_folds(y_train, cv)
    check_sampler_feasible(pipeline, sampler_name, minority_counts(y_train, folds))

    # The K fold fits and the final fit are independent: run them side by side (cv.n_jobs).
    # Each works on its own clone, so the result is identical to a sequential loop.
    # Results arrive as fits finish (progress), each with its index (the order of the result).
    jobs = [*folds, (np.arange(len(y_train)), None)]
    fitted: list[Any] = [None] * len(jobs)
    results = Parallel(n_jobs=cv.n_jobs, return_as="generator_unordered")(
        delayed(_fit_one)(i, clone(pipeline), X_train.iloc[tr], y_train[tr]) for i, (tr, _) in enumerate(jobs)
    )
    for i, fit in results:
        fitted[i] = fit
        if on_fit is not None:
            on_fit()
    oof = np.full(len(y_train), np.nan)
    fold_ids = np.full(len(y_train), -1, dtype=int)
    for i, ((_, va), fold_pipe) in enumerate(zip(folds, fitted[:-1], strict=True)):
        oof[va] = positive_proba(fold_pipe, X_train.iloc[va])
        fold_ids[va] = i
    final = fitted[-1]
    test_scores = positive_proba(final, dataset.X.iloc[split.test])
    for name, scores in (("out-of-fold", oof), ("test", test_scores)):
        if not np.all(np.isfinite(scores)):
            raise ImblabError(f"the model produced non-finite {name} probabilities; check the input data")
    return FitResult(final, oof, fold_ids, test_scores, time.perf_counter() - start, dict(model_params or {}))


def fold_metrics(y: np.ndarray, scores: np.ndarray, folds: np.ndarray) -> pd.DataFrame:
    """PR-AUC and ROC-AUC of each CV fold (for spread and standard errors)."""
    rows = []
    for k in np.unique(folds):
        m = folds == k
        rows.append(
            {
                "fold": int(k),
                "pr_auc": average_precision_score(y[m], scores[m]),
                "roc_auc": roc_auc_score(y[m], scores[m]),
                "n": int(m.sum()),
                "positives": int(y[m].sum()),
            }
        )
    return pd.DataFrame(rows)
