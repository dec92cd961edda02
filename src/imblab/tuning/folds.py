"""The tuning folds, preprocessed and resampled once per study and reused by every trial.

Preprocessing and resampling do not depend on the model's hyperparameters, so each fold's training
part goes through clones of the run pipeline's own preprocess steps and sampler once; a trial then fits
only the model on the cached arrays.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.base import clone
from sklearn.model_selection import train_test_split

from imblab.config.specs import Experiment
from imblab.data.dataset import Dataset
from imblab.errors import ImblabError
from imblab.pipeline import check_sampler_feasible, preprocess_of, sampler_of
from imblab.protocol.cv import cv_folds, minority_counts
from imblab.protocol.split import Split


@dataclass
class Fold:
    """One CV fold's model-ready arrays; nothing here depends on the model's hyperparameters."""

    X_fit: np.ndarray  # preprocessed (and resampled) training part
    y_fit: np.ndarray
    X_val: np.ndarray  # preprocessed validation rows (never resampled)
    y_val: np.ndarray
    halves: tuple[np.ndarray, np.ndarray] | None = None  # validation positions A, B (early stopping)


def fold_positions(y_train: np.ndarray, experiment: Experiment) -> list[tuple[np.ndarray, np.ndarray]]:
    """The tuning folds: ``tuning.folds`` stratified folds of the training rows, shuffled as ``cv`` says."""
    return cv_folds(y_train, experiment.cv, folds=experiment.tuning.folds)


def prepare_folds(dataset: Dataset, split: Split, experiment: Experiment, early_stopping: bool) -> list[Fold]:
    """Preprocess and resample every fold's training part once, exactly as the run's pipeline would.

    With ``early_stopping`` each validation fold is also split, stratified, into halves A and B
    (see ``imblab.tuning.trainers.LightGBMTrainer``).
    """
    X_train = dataset.X.iloc[split.train]
    y_train = dataset.y.to_numpy()[split.train]
    positions = fold_positions(y_train, experiment)
    check_sampler_feasible(experiment.pipeline, experiment.sampler_name, minority_counts(y_train, positions))
    sampler = sampler_of(experiment.pipeline)
    folds = []
    for k, (tr, va) in enumerate(positions):
        pre = preprocess_of(experiment.pipeline)
        X_fit = pre.fit_transform(X_train.iloc[tr], y_train[tr])
        y_fit = y_train[tr]
        if sampler is not None:
            X_fit, y_fit = clone(sampler).fit_resample(X_fit, y_fit)
        X_val, y_val = np.asarray(pre.transform(X_train.iloc[va])), y_train[va]
        halves = None
        if early_stopping:
            if int(y_val.sum()) < 2:
                raise ImblabError(
                    f"early stopping splits each validation fold in two, but fold {k} has {int(y_val.sum())} "
                    "positive row(s); use fewer tuning.folds or tuning.early_stopping.enabled=false"
                )
            a, b = train_test_split(
                np.arange(len(y_val)), test_size=0.5, stratify=y_val, random_state=int(experiment.cv.seed) + k
            )
            halves = (np.sort(a), np.sort(b))
        folds.append(Fold(np.ascontiguousarray(X_fit), np.asarray(y_fit), X_val, y_val, halves))
    return folds
