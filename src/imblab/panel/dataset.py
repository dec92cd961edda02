"""The person-year :class:`Panel` every panel loader returns, its validation, and :class:`PanelPrediction`.

Kept apart from the loaders and the models so that both sides share these types without importing each
other (the PyTorch models and the baselines only need this module and :mod:`imblab.panel.examples`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
from pandas.api.types import is_bool_dtype, is_numeric_dtype

from imblab.errors import ImblabError

# Persons with at least two waves (the ones that give an example) a panel needs: fewer cannot be split
# into training, validation and test persons with anything left to learn from.
MIN_PERSONS = 10


@dataclass
class Panel:
    """A person-year panel: one row per (person, wave), two targets, features seen at each wave.

    ``frame`` is sorted by ``id`` then ``time`` with index 0..n-1 and holds only the columns named here;
    ``class_target`` holds int codes 0..K-1 into ``class_names``. ``dropped`` counts the rows removed while
    loading, by reason (e.g. ``{"missing hours": 67}``), so a report can say what the numbers rest on.
    """

    name: str
    frame: pd.DataFrame
    id: str
    time: str
    features: list[str]
    known: list[str]
    regression_target: str
    class_target: str
    class_names: list[str]
    dropped: dict[str, int] = field(default_factory=dict)

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def n_persons(self) -> int:
        return int(self.frame[self.id].nunique())

    @property
    def n_single_wave_persons(self) -> int:
        """Persons with one wave: they stay in the panel but give no example (no earlier wave)."""
        sizes = self.frame.groupby(self.id, sort=False).size()
        return int((sizes == 1).sum())


@dataclass
class PanelPrediction:
    """What every panel model predicts for a set of examples."""

    wage: np.ndarray  # (n,) predicted regression target, original units (e.g. ln_wage)
    logits: np.ndarray  # (n, K) class scores; softmax(logits) = probabilities (log-probabilities are fine)

    def __post_init__(self) -> None:
        self.wage = np.asarray(self.wage, dtype=np.float64)
        self.logits = np.asarray(self.logits, dtype=np.float64)
        if self.wage.ndim != 1 or self.logits.ndim != 2 or len(self.logits) != len(self.wage):
            raise ImblabError(
                f"a panel prediction needs wage of shape (n,) and logits of shape (n, K); got "
                f"{self.wage.shape} and {self.logits.shape}."
            )

    def probabilities(self) -> np.ndarray:
        """Softmax of the logits (rows sum to 1), computed stably."""
        z = self.logits - self.logits.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)


def validate(panel: Panel) -> Panel:
    """Check ``panel`` and return a clean copy: rows with a missing target dropped, sorted, typed.

    Rows whose regression or class target is NaN are DROPPED (not an error: real panels have gaps) and
    counted in ``dropped`` as ``"missing <column>"``; a row missing both counts under the regression target.
    Persons left with one wave stay (see ``Panel.n_single_wave_persons``). Everything else a user must fix
    raises :class:`ImblabError`: a named column that is absent, a duplicate (id, time), a class code outside
    0..K-1, a non-numeric or infinite feature, too few persons with two or more waves.
    """
    f, name = panel.frame, panel.name
    _check_roles(panel)
    if f[panel.id].isna().any():
        raise ImblabError(
            f"panel '{name}': {int(f[panel.id].isna().sum())} rows have no person id ('{panel.id}'); "
            "drop them or fill them in."
        )
    _check_numeric(f, [panel.time], name, "time column")
    t = f[panel.time].to_numpy(dtype=np.float64, na_value=np.nan)
    if not np.isfinite(t).all():
        raise ImblabError(
            f"panel '{name}': {int((~np.isfinite(t)).sum())} rows have a missing or infinite time "
            f"('{panel.time}'); every wave needs its time to order a person's history."
        )
    dupes = f.loc[f.duplicated([panel.id, panel.time], keep="first"), [panel.id, panel.time]]
    if len(dupes):
        shown = ", ".join(f"({i!r}, {v!r})" for i, v in dupes.head(5).itertuples(index=False, name=None))
        raise ImblabError(
            f"panel '{name}' has {len(dupes)} duplicate ({panel.id}, {panel.time}) rows, e.g. {shown}; a "
            "person has one row per wave: drop or aggregate the duplicates."
        )
    _check_numeric(f, [panel.regression_target], name, "regression target")
    _check_numeric(f, panel.features, name, "feature columns")
    _check_numeric(f, panel.known, name, "known-in-advance columns")
    _check_class_codes(f[panel.class_target], panel)

    keep = [*dict.fromkeys([panel.id, panel.time, *panel.features, *panel.known])]
    keep += [panel.regression_target, panel.class_target]
    dropped = dict(panel.dropped)
    frame = f[keep]
    for col in (panel.regression_target, panel.class_target):
        missing = frame[col].isna()
        if missing.any():
            dropped[f"missing {col}"] = dropped.get(f"missing {col}", 0) + int(missing.sum())
            frame = frame[~missing]
    floats = [*dict.fromkeys([*panel.features, *panel.known, panel.regression_target])]
    frame = frame.astype({c: np.float64 for c in floats} | {panel.class_target: np.int64})
    frame = frame.sort_values([panel.id, panel.time], kind="stable").reset_index(drop=True)

    out = replace(
        panel,
        frame=frame,
        features=list(panel.features),
        known=list(panel.known),
        class_names=list(panel.class_names),
        dropped=dropped,
    )
    n_persons, n_single = out.n_persons, out.n_single_wave_persons
    if n_persons - n_single < MIN_PERSONS:
        raise ImblabError(
            f"panel '{name}' has {n_persons - n_single} persons with two or more waves ({n_persons} persons "
            f"in all, {n_single} with a single wave, which give no example; {sum(dropped.values())} rows "
            f"dropped: {dropped}); at least {MIN_PERSONS} are needed to split persons into training, "
            "validation and test. Use a larger panel or check the id/time columns and row filtering."
        )
    return out


def _check_roles(panel: Panel) -> None:
    """Every named column exists, has one role, and there are at least two distinct class names."""
    f, name = panel.frame, panel.name
    k = len(panel.class_names)
    if k < 2 or len(set(panel.class_names)) != k:
        raise ImblabError(
            f"panel '{name}': class_names must be at least two distinct names in class order, got "
            f"{panel.class_names}."
        )
    roles = {
        "id column": [panel.id],
        "time column": [panel.time],
        "regression target": [panel.regression_target],
        "class target": [panel.class_target],
        "feature columns": panel.features,
        "known-in-advance columns": panel.known,
    }
    for role, cols in roles.items():
        absent = [c for c in cols if c not in f.columns]
        if absent:
            raise ImblabError(
                f"panel '{name}': {role} {absent} not in the frame; available columns (first 30 of "
                f"{f.shape[1]}): {list(f.columns[:30])}."
            )
        repeated = sorted({c for c in cols if cols.count(c) > 1})
        if repeated:
            raise ImblabError(f"panel '{name}': {role} list {repeated} more than once; list each once.")
    special = [panel.id, panel.time, panel.regression_target, panel.class_target]
    if len(set(special)) < 4:
        raise ImblabError(
            f"panel '{name}': id, time, regression target and class target must be four different columns, "
            f"got {special}."
        )
    for role in ("feature columns", "known-in-advance columns"):
        clash = [c for c in roles[role] if c in special]
        if clash:
            raise ImblabError(
                f"panel '{name}': {role} {clash} are also the id, time or a target; a target at the wave "
                "being predicted is what is predicted, so it cannot be an input. Remove them from the list."
            )


def _check_numeric(f: pd.DataFrame, cols: list[str], name: str, role: str) -> None:
    bad = [c for c in cols if not is_numeric_dtype(f[c])]  # bools count as numbers (0/1)
    if bad:
        kinds = ", ".join(f"{c!r} ({f[c].dtype})" for c in bad[:10])
        raise ImblabError(
            f"panel '{name}': {role} must be numeric, found {kinds}; encode them as numbers before loading "
            "or leave them out."
        )
    if not cols:
        return
    values = f[cols].to_numpy(dtype=np.float64, na_value=np.nan)
    inf = [c for c, j in zip(cols, np.isinf(values).any(axis=0), strict=True) if j]
    if inf:
        raise ImblabError(
            f"panel '{name}': {role} {inf[:10]} hold infinite values; replace them with NaN (missing) or "
            "drop those columns."
        )


def _check_class_codes(s: pd.Series, panel: Panel) -> None:
    k = panel.n_classes
    codes = s.dropna()
    if not is_numeric_dtype(codes) or is_bool_dtype(codes):
        values = sorted({str(v) for v in codes.unique()[:10]})
        raise ImblabError(
            f"panel '{panel.name}': class target '{panel.class_target}' must hold int codes 0..{k - 1} into "
            f"class_names {panel.class_names}, found values like {values}; map raw labels with "
            "load_panel_table(..., class_order=[...])."
        )
    v = codes.to_numpy(dtype=np.float64)
    bad = np.unique(v[(v != np.round(v)) | (v < 0) | (v >= k)])
    if len(bad):
        raise ImblabError(
            f"panel '{panel.name}': class target '{panel.class_target}' has values {bad[:10].tolist()} "
            f"outside the class order 0..{k - 1} ({panel.class_names}); each must be one of the classes."
        )
