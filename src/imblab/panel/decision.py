"""Multi-class decision policies: from class logits to one class per example.

Argmax of the logits is what accuracy rewards, and with a dominant middle class it predicts that class for
nearly everyone. A :class:`LogitOffsetPolicy` adds one offset per class to the logits before the argmax, the
offsets chosen on the VALIDATION persons to maximise balanced accuracy or macro-F1; they are frozen with the
model and can be overridden per call. Pure and deterministic: plain functions of arrays.
"""

from __future__ import annotations

import numpy as np

from imblab.errors import ImblabError

OBJECTIVES = ("balanced_accuracy", "macro_f1")
DEFAULT_GRID = np.round(np.arange(-40, 41) / 10, 1)  # -4.0 .. 4.0 in steps of 0.1 (log-odds units)


def decide(logits: np.ndarray, offsets: np.ndarray | None = None) -> np.ndarray:
    """Class per row: argmax of ``logits + offsets`` (ties go to the lower class index)."""
    logits = np.asarray(logits, dtype=np.float64)
    if offsets is None:
        return logits.argmax(axis=1)
    offsets = np.asarray(offsets, dtype=np.float64)
    if logits.ndim != 2 or offsets.shape != (logits.shape[1],):
        raise ImblabError(
            f"decision offsets need one value per class: logits {logits.shape}, offsets {offsets.shape}."
        )
    return (logits + offsets).argmax(axis=1)


def objective_score(y: np.ndarray, pred: np.ndarray, k: int, objective: str) -> float:
    """Balanced accuracy (mean recall over the classes present in ``y``) or macro-F1 over all ``k`` classes
    (0 for a class with no support and no prediction), from one confusion matrix; equals scikit-learn's
    ``balanced_accuracy_score`` / ``f1_score(average="macro", labels=range(k), zero_division=0)``."""
    cm = np.bincount(y * k + pred, minlength=k * k).reshape(k, k)
    tp, support, predicted = np.diag(cm), cm.sum(axis=1), cm.sum(axis=0)
    if objective == "balanced_accuracy":
        present = support > 0
        return float(np.mean(tp[present] / support[present]))
    denom = support + predicted
    return float(np.mean(np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 0.0)))


class ArgmaxPolicy:
    """The class with the highest logit; ``choose`` returns zero offsets (nothing to learn)."""

    def choose(self, y_val: np.ndarray, logits_val: np.ndarray) -> np.ndarray:
        return np.zeros(np.asarray(logits_val).shape[1])

    def decide(self, logits: np.ndarray, offsets: np.ndarray | None = None) -> np.ndarray:
        return decide(logits, offsets)


class LogitOffsetPolicy:
    """Per-class logit offsets by coordinate ascent over ``grid`` on validation labels and logits.

    The reference class (``reference``, default the middle class, or the first of two) keeps offset 0:
    only differences between offsets change a decision. Starting from all zeros, each round sets every
    other class's offset to the grid value that maximises ``objective`` with the rest held fixed; ties go
    to the smaller ``|offset|`` (then the smaller value), so no offset moves without a gain. Rounds repeat
    until nothing changes (at most ``max_rounds``). Zero is on the grid, so the validation score is never
    below argmax's.
    """

    def __init__(
        self,
        objective: str = "balanced_accuracy",
        grid: np.ndarray | None = None,
        reference: int | None = None,
        max_rounds: int = 10,
    ) -> None:
        if objective not in OBJECTIVES:
            raise ImblabError(f"decision objective must be one of {list(OBJECTIVES)}, got {objective!r}.")
        values = DEFAULT_GRID if grid is None else np.asarray(grid, dtype=np.float64)
        if values.ndim != 1 or not np.isfinite(values).all() or 0.0 not in values:
            raise ImblabError("the offset grid must be a 1-D array of finite values that includes 0.")
        self.objective = objective
        # Visiting the grid by increasing |value| (then value) makes "first best wins" the tie rule.
        self.grid = np.array(sorted(set(values.tolist()), key=lambda g: (abs(g), g)))
        self.reference = reference
        self.max_rounds = max_rounds

    def choose(self, y_val: np.ndarray, logits_val: np.ndarray) -> np.ndarray:
        y = np.asarray(y_val, dtype=np.int64)
        logits = np.asarray(logits_val, dtype=np.float64)
        if logits.ndim != 2 or len(logits) != len(y) or len(y) == 0:
            raise ImblabError(
                f"choosing offsets needs n > 0 labels and (n, K) logits, got {y.shape} and {logits.shape}."
            )
        k = logits.shape[1]
        if not np.isfinite(logits).all() or y.min() < 0 or y.max() >= k:
            raise ImblabError(
                f"choosing offsets needs finite logits and labels in 0..{k - 1}; check the model's output."
            )
        ref = (k - 1) // 2 if self.reference is None else self.reference
        if not 0 <= ref < k:
            raise ImblabError(f"reference class {ref} is not one of the {k} classes.")
        offsets = np.zeros(k)
        for _ in range(self.max_rounds):
            changed = False
            for c in (c for c in range(k) if c != ref):
                trial = offsets.copy()
                choice, choice_score = offsets[c], -np.inf
                for g in self.grid:
                    trial[c] = g
                    score = objective_score(y, decide(logits, trial), k, self.objective)
                    if score > choice_score + 1e-12:
                        choice, choice_score = g, score
                # The current offset is on the grid, so the choice scores at least as well as it.
                if choice != offsets[c]:
                    offsets[c], changed = choice, True
            if not changed:
                break
        return offsets

    def decide(self, logits: np.ndarray, offsets: np.ndarray | None = None) -> np.ndarray:
        return decide(logits, offsets)
