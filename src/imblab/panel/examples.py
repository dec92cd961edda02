"""Supervised examples from a panel: one per (person, wave t) with an earlier wave, built without leakage.

The inputs of the example at wave t are the person's waves BEFORE t (``seq``) and what is known in advance
about t (``known``: e.g. age, and the gap since the last wave). Nothing from wave t's targets or features, or
from any later wave, reaches them; ``tests/panel/test_examples.py`` changes those and checks the inputs do
not move. Scaling (:class:`Standardizer`) is fitted on training persons only, and :func:`person_split` keeps
every person in exactly one of training, validation and test, so no person's past predicts their own test.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields, replace

import numpy as np
import pandas as pd

from imblab.errors import ImblabError
from imblab.panel.dataset import Panel

# Channel names: features keep their column names; these mark the other channels.
MISSING = "missing:"  # + feature: 1.0 where the feature was NaN (then stored as 0)
CLASS = "class:"  # + class name: one-hot of the wave's class
TARGET = "target:"  # + regression target column: the wave's regression target
GAP = "gap"  # time from this wave to the next one (in seq), or from the last wave to t (in known)


@dataclass
class Examples:
    """One example per (person, wave t) with at least one earlier wave; arrays aligned on axis 0."""

    seq: np.ndarray  # float32 (n, max_len, n_seq): waves before t, oldest first, zero-padded at the end
    lengths: np.ndarray  # int64 (n,), 1..max_len: waves in seq (the most recent max_len)
    known: np.ndarray  # float32 (n, n_known): known-in-advance values at t, then the gap from the last wave
    y_reg: np.ndarray  # float64 (n,) wave t's regression target
    y_cls: np.ndarray  # int64 (n,) wave t's class code
    last_reg: np.ndarray  # float64 (n,) regression target at the last earlier wave (persistence)
    last_cls: np.ndarray  # int64 (n,)
    person: np.ndarray  # (n,) person id of each example
    time: np.ndarray  # (n,) wave t
    seq_names: list[str]
    known_names: list[str]

    def __len__(self) -> int:
        return len(self.y_reg)

    def subset(self, mask_or_index: np.ndarray | Sequence[int]) -> Examples:
        """The examples selected by a boolean mask or an integer index (names are shared)."""
        sel = np.asarray(mask_or_index)
        arrays = {f.name: getattr(self, f.name)[sel] for f in fields(self) if not f.name.endswith("_names")}
        return replace(self, **arrays)

    def of_persons(self, persons: np.ndarray | Sequence[object]) -> Examples:
        """The examples of the given persons (e.g. one part of :func:`person_split`)."""
        return self.subset(np.isin(self.person, np.asarray(persons)))

    @property
    def class_names(self) -> list[str]:
        return [s[len(CLASS) :] for s in self.seq_names if s.startswith(CLASS)]

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    def channels(self, prefix: str) -> np.ndarray:
        """Indices of the ``seq`` channels whose name starts with ``prefix`` (e.g. ``CLASS``)."""
        return np.array([j for j, s in enumerate(self.seq_names) if s.startswith(prefix)], dtype=np.int64)


def build_examples(panel: Panel, max_len: int = 8) -> Examples:
    """All examples of a validated panel, vectorised (no per-person Python loop).

    Per wave in ``seq``: the features (NaN -> 0, plus a ``missing:<feature>`` indicator for each feature with
    NaNs anywhere in the panel), the regression target, the class one-hot and the gap to the next wave. The
    next wave of a history wave is at most t itself, whose time is known in advance.
    """
    if max_len < 1:
        raise ImblabError(f"max_len must be at least 1 (waves of history per example), got {max_len}.")
    f = panel.frame
    n = len(f)
    ids = f[panel.id].to_numpy()
    t = f[panel.time].to_numpy(dtype=np.float64)
    first = np.ones(n, dtype=bool)
    first[1:] = ids[1:] != ids[:-1]
    pos = np.arange(n) - np.maximum.accumulate(np.where(first, np.arange(n), 0))  # wave number in person
    rows = np.flatnonzero(pos > 0)
    if len(rows) == 0:
        raise ImblabError(f"panel '{panel.name}' has no person with two waves, so there is no example.")

    feats, feat_names = _with_missing(f[panel.features].to_numpy(dtype=np.float64), panel.features)
    reg = f[panel.regression_target].to_numpy(dtype=np.float64)
    cls = f[panel.class_target].to_numpy(dtype=np.int64)
    k = panel.n_classes
    gap_next = np.zeros(n)
    gap_next[:-1] = np.where(first[1:], 0.0, t[1:] - t[:-1])  # a person's last wave is never in a history
    waves = np.concatenate([feats, reg[:, None], np.eye(k)[cls], gap_next[:, None]], axis=1).astype(
        np.float32
    )
    seq_names = [*feat_names, TARGET + panel.regression_target, *(CLASS + c for c in panel.class_names), GAP]

    known_vals, known_names = _with_missing(f[panel.known].to_numpy(dtype=np.float64)[rows], panel.known)
    known_names.append(GAP)
    for names in (seq_names, known_names):
        if len(set(names)) < len(names):
            raise ImblabError(
                f"panel '{panel.name}': input channel names {names} repeat a name; rename the column that "
                f"clashes (the names '{GAP}' and those starting with '{MISSING}', '{CLASS}' or '{TARGET}' "
                "are taken)."
            )

    lengths = np.minimum(pos[rows], max_len)
    slot = np.arange(max_len)
    valid = slot[None, :] < lengths[:, None]
    history = np.where(valid, rows[:, None] - lengths[:, None] + slot[None, :], 0)
    seq = waves[history]
    seq[~valid] = 0.0

    known = np.concatenate([known_vals, (t[rows] - t[rows - 1])[:, None]], axis=1).astype(np.float32)
    return Examples(
        seq=seq,
        lengths=lengths.astype(np.int64),
        known=known,
        y_reg=reg[rows],
        y_cls=cls[rows],
        last_reg=reg[rows - 1],
        last_cls=cls[rows - 1],
        person=ids[rows],
        time=f[panel.time].to_numpy()[rows],
        seq_names=seq_names,
        known_names=known_names,
    )


def _with_missing(values: np.ndarray, names: list[str]) -> tuple[np.ndarray, list[str]]:
    """NaN -> 0 plus a 0/1 indicator column for each column that has a NaN."""
    nan = np.isnan(values)
    has = nan.any(axis=0)
    out = np.concatenate([np.where(nan, 0.0, values), nan[:, has].astype(np.float64)], axis=1)
    return out, [*names, *(MISSING + c for c, h in zip(names, has, strict=True) if h)]


class Standardizer:
    """Zero mean, unit variance for the continuous channels of ``seq`` and ``known``, fitted on training only.

    Indicators and class one-hots pass through; a value flagged missing stays 0 (the mean after scaling);
    padding stays 0. The past regression target in ``seq`` is scaled with the wage scale ``mean_`` / ``std_``
    (of the training ``y_reg``), the scale a model's wage head should predict in; ``y_reg`` and ``last_reg``
    stay in original units, so metrics and persistence never see scaled wages.
    """

    def fit(self, examples: Examples) -> Standardizer:
        self.names_ = (list(examples.seq_names), list(examples.known_names))
        valid = np.arange(examples.seq.shape[1])[None, :] < examples.lengths[:, None]
        self.seq_mean_, self.seq_std_ = _moments(examples.seq[valid], examples.seq_names)
        self.known_mean_, self.known_std_ = _moments(examples.known, examples.known_names)
        self.mean_ = float(np.mean(examples.y_reg))
        self.std_ = float(np.std(examples.y_reg)) or 1.0
        wage = examples.channels(TARGET)
        self.seq_mean_[wage], self.seq_std_[wage] = self.mean_, self.std_
        return self

    def transform(self, examples: Examples) -> Examples:
        if (examples.seq_names, examples.known_names) != self.names_:
            raise ImblabError(
                "these examples have other input channels than the ones the Standardizer was fitted on; "
                "build all examples from one panel and split them by person."
            )
        valid = np.arange(examples.seq.shape[1])[None, :] < examples.lengths[:, None]
        seq = _scale(examples.seq, examples.seq_names, self.seq_mean_, self.seq_std_) * valid[..., None]
        known = _scale(examples.known, examples.known_names, self.known_mean_, self.known_std_)
        return replace(examples, seq=seq.astype(np.float32), known=known.astype(np.float32))

    def scale_wage(self, y: np.ndarray) -> np.ndarray:
        return (np.asarray(y, dtype=np.float64) - self.mean_) / self.std_

    def unscale_wage(self, z: np.ndarray) -> np.ndarray:
        return np.asarray(z, dtype=np.float64) * self.std_ + self.mean_


def observed_mask(x: np.ndarray, names: list[str]) -> np.ndarray:
    """Mask of the values that were observed (not flagged by their ``missing:`` indicator)."""
    obs = np.ones(x.shape, dtype=bool)
    where = {s: j for j, s in enumerate(names)}
    for j, s in enumerate(names):
        if MISSING + s in where:
            obs[..., j] = x[..., where[MISSING + s]] == 0
    return obs


def _moments(x: np.ndarray, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean / std over observed values; 0 / 1 for indicators, one-hots and empty channels."""
    x = x.astype(np.float64)
    obs = observed_mask(x, names)
    count = obs.sum(axis=0)
    mean = np.where(obs, x, 0.0).sum(axis=0) / np.maximum(count, 1)
    var = np.where(obs, (x - mean) ** 2, 0.0).sum(axis=0) / np.maximum(count, 1)
    std = np.sqrt(var)
    passthrough = np.array([s.startswith((MISSING, CLASS)) for s in names], dtype=bool) | (count == 0)
    mean[passthrough], std[passthrough] = 0.0, 1.0
    std[std == 0] = 1.0
    return mean, std


def _scale(x: np.ndarray, names: list[str], mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    return np.where(observed_mask(x, names), (x - mean) / std, 0.0)


def person_split(
    data: Examples | Panel, fractions: Sequence[float] = (0.7, 0.15, 0.15), seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Persons into training, validation and test, stratified on the class of each person's LAST wave.

    Every person lands in exactly one part. From a ``Panel`` every person counts (one-wave persons too);
    from ``Examples``, the persons with an example. Within each class the persons are shuffled and cut at
    the fractions from a random offset, so small classes do not always round the same way.
    """
    if isinstance(data, Examples):
        persons, times, classes = data.person, data.time, data.y_cls
    else:
        f = data.frame
        persons, times, classes = (
            f[data.id].to_numpy(),
            f[data.time].to_numpy(),
            f[data.class_target].to_numpy(),
        )
    fr = np.asarray(fractions, dtype=np.float64)
    if fr.shape != (3,) or (fr <= 0).any() or abs(fr.sum() - 1) > 1e-6:
        raise ImblabError(
            "fractions must be three positive shares (train, validation, test) summing to 1, got "
            f"{fractions}."
        )
    last = (
        pd.DataFrame({"p": persons, "t": times, "c": classes})
        .sort_values(["p", "t"], kind="stable")
        .drop_duplicates("p", keep="last")
    )
    who, cls = last["p"].to_numpy(), last["c"].to_numpy()
    need = int(np.ceil(1 / fr.min() - 1e-9))
    if len(who) < need:
        raise ImblabError(
            f"too few persons for a person split: {len(who)} persons, but fractions {tuple(fr.tolist())} "
            f"need at least {need} so that every part gets one. Use more persons or other fractions."
        )
    rng = np.random.default_rng(seed)
    part = np.empty(len(who), dtype=np.int64)
    cuts = np.cumsum(fr)[:-1]
    for c in np.unique(cls):
        members = rng.permutation(np.flatnonzero(cls == c))
        position = (np.arange(len(members)) + rng.random()) / len(members)
        part[members] = np.searchsorted(cuts, position, side="right")
    sizes = np.bincount(part, minlength=3)
    if (sizes == 0).any():
        raise ImblabError(
            f"too few persons for a person split: {len(who)} persons gave parts of {sizes.tolist()} persons "
            f"(train, validation, test) with fractions {tuple(fr.tolist())}. Use more persons."
        )
    return who[part == 0], who[part == 1], who[part == 2]
