"""The plots of one ``imblab panel`` run: training history, wage actual vs predicted, class confusion.

Object-oriented matplotlib (no pyplot state), as in :mod:`imblab.report.figures`; logging happens elsewhere.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure
from sklearn.metrics import ConfusionMatrixDisplay


def history_figure(history: Sequence[dict[str, float]], best_epoch: int | None) -> Figure:
    """Losses (left) and validation scores (right) per epoch; the kept (best validation) epoch marked."""
    fig = Figure(figsize=(9, 3.6), layout="tight")
    losses, scores = fig.subplots(1, 2)
    epochs = np.arange(len(history))
    for key in ("train_loss", "val_loss"):
        losses.plot(epochs, [h[key] for h in history], marker="o", label=key)
    for key in ("val_class_accuracy", "val_class_balanced_accuracy", "val_class_macro_f1"):
        if history and key in history[0]:
            scores.plot(epochs, [h[key] for h in history], marker="o", label=key.removeprefix("val_"))
    for ax, title in ((losses, "loss"), (scores, "validation class scores")):
        if best_epoch is not None:
            ax.axvline(best_epoch, color="grey", linestyle="--", label="kept epoch")
        ax.set(xlabel="epoch", title=title)
        ax.legend(fontsize=8)
    return fig


def wage_figure(y: np.ndarray, pred: np.ndarray, name: str, title: str) -> Figure:
    """Actual vs predicted regression target, with the diagonal."""
    fig = Figure(figsize=(4.6, 4.4), layout="tight")
    ax = fig.subplots()
    ax.scatter(y, pred, s=6, alpha=0.35)
    lo, hi = float(min(y.min(), pred.min())), float(max(y.max(), pred.max()))
    ax.plot([lo, hi], [lo, hi], color="black", linewidth=1)
    ax.set(xlabel=f"actual {name}", ylabel=f"predicted {name}", title=title)
    return fig


def class_confusion_figure(
    y: np.ndarray, pred: np.ndarray, class_names: Sequence[str], normalize: bool, title: str
) -> Figure:
    """K x K confusion matrix with the class names: counts, or rows normalised to recall."""
    fig = Figure(figsize=(5.2, 4.6), layout="tight")
    ax = fig.subplots()
    ConfusionMatrixDisplay.from_predictions(
        y,
        pred,
        labels=list(range(len(class_names))),
        display_labels=list(class_names),
        normalize="true" if normalize else None,
        values_format=".2f" if normalize else "d",
        ax=ax,
        colorbar=False,
    )
    ax.set_title(title)
    return fig
