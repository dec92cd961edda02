"""Holdout split: the test rows are scored once, at the end of a run, and never seen before."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import train_test_split

from imblab.config.specs import SplitSpec
from imblab.data.dataset import Dataset
from imblab.errors import ImblabError


@dataclass
class Split:
    """Row positions of the holdout split."""

    train: np.ndarray
    test: np.ndarray


def time_order(dataset: Dataset, option: str, alternative: str) -> np.ndarray:
    """Row positions from the earliest to the latest timestamp (ties keep row order).

    ``option`` needs the timestamps, ``alternative`` does not: both are named in the error without them.
    """
    if dataset.timestamps is None:
        raise ImblabError(
            f"{option} needs timestamps, and data {dataset.name!r} has none; "
            f"use {alternative} or set data.timestamp_column"
        )
    return np.argsort(dataset.timestamps.to_numpy(), kind="stable")


def holdout_split(dataset: Dataset, spec: SplitSpec) -> Split:
    """Stratified or time-ordered holdout, as ``spec.kind`` says."""
    n = len(dataset.y)
    positions = np.arange(n)
    if spec.kind == "stratified":
        train, test = train_test_split(
            positions, test_size=spec.test_size, random_state=spec.seed, stratify=dataset.y.to_numpy()
        )
        split = Split(np.sort(train), np.sort(test))
    else:
        order = time_order(dataset, "split=time", "split=stratified")
        n_test = int(np.ceil(n * spec.test_size))
        split = Split(np.sort(order[: n - n_test]), np.sort(order[n - n_test :]))
    for part, rows in (("training", split.train), ("test", split.test)):
        classes = np.unique(dataset.y.to_numpy()[rows])
        if len(classes) < 2:
            raise ImblabError(
                f"the {part} set of split={spec.kind} holds only class {classes.tolist()}; "
                "use more data, a different split.test_size, or split=stratified"
            )
    return split
