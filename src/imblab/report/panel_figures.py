"""The plots of ``imblab panel`` runs: training history, wage actual vs predicted, class confusion; one run's
(logged with it) and a comparison's (``imblab compare``).

Object-oriented matplotlib (no pyplot state), as in :mod:`imblab.report.figures`; logging happens elsewhere.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from sklearn.metrics import ConfusionMatrixDisplay, confusion_matrix


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
    _draw_wage(fig.subplots(), y, pred, name, title)
    return fig


def _draw_wage(ax: Axes, y: np.ndarray, pred: np.ndarray, name: str, title: str) -> None:
    ax.scatter(y, pred, s=6, alpha=0.35)
    lo, hi = float(min(y.min(), pred.min())), float(max(y.max(), pred.max()))
    ax.plot([lo, hi], [lo, hi], color="black", linewidth=1)
    ax.set(xlabel=f"actual {name}", ylabel=f"predicted {name}", title=title)


def class_confusion_figure(
    y: np.ndarray, pred: np.ndarray, class_names: Sequence[str], normalize: bool, title: str
) -> Figure:
    """K x K confusion matrix with the class names: counts, or rows normalised to recall."""
    fig = Figure(figsize=(5.2, 4.6), layout="tight")
    _draw_confusion(fig.subplots(), y, pred, class_names, normalize, title)
    return fig


def _draw_confusion(
    ax: Axes, y: np.ndarray, pred: np.ndarray, class_names: Sequence[str], normalize: bool, title: str
) -> ConfusionMatrixDisplay:
    display = ConfusionMatrixDisplay.from_predictions(
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
    return display


# --------------------------------------------------------------------------------------------------
# A comparison of panel runs (imblab compare): one panel per run, or one per metric
# --------------------------------------------------------------------------------------------------


def _axes(fig: Figure, n: int, max_cols: int, **kw: object) -> list[Axes]:
    cols = min(max_cols, n)
    axes = list(np.ravel(fig.subplots(math.ceil(n / cols), cols, squeeze=False, **kw)))
    for ax in axes[n:]:
        ax.set_axis_off()
    return axes[:n]


def _size(n: int, max_cols: int, width: float, height: float) -> tuple[float, float]:
    return width * min(max_cols, n), height * math.ceil(n / max_cols)


def _small(ax: Axes) -> None:
    """Small type for one panel of a grid."""
    for text in (ax.title, ax.xaxis.label, ax.yaxis.label):
        text.set_fontsize(8)
    ax.tick_params(labelsize=7)


def confusion_grid_figure(
    runs: Sequence[tuple[str, np.ndarray, np.ndarray]], class_names: Sequence[str], max_cols: int = 4
) -> Figure:
    """Row-normalised confusion matrices side by side (share of each true class; the count below it)."""
    fig = Figure(figsize=_size(len(runs), max_cols, 3.3, 3.4), layout="constrained")
    for ax, (label, y, pred) in zip(_axes(fig, len(runs), max_cols), runs, strict=True):
        display = _draw_confusion(ax, y, pred, class_names, True, label)
        display.im_.set_clim(0, 1)  # one colour scale for every run
        counts = confusion_matrix(y, pred, labels=list(range(len(class_names))))
        for (i, j), text in np.ndenumerate(display.text_):
            text.set_text(f"{display.confusion_matrix[i, j]:.2f}\n({counts[i, j]})")
            text.set_fontsize(8)
        _small(ax)
    return fig


def wage_grid_figure(
    runs: Sequence[tuple[str, np.ndarray, np.ndarray]], name: str, max_cols: int = 4
) -> Figure:
    """Actual vs predicted wage of each run on the test examples, on shared axes."""
    fig = Figure(figsize=_size(len(runs), max_cols, 3.1, 3.0), layout="constrained")
    for ax, (label, y, pred) in zip(
        _axes(fig, len(runs), max_cols, sharex=True, sharey=True), runs, strict=True
    ):
        _draw_wage(ax, y, pred, name, label)
        _small(ax)
    return fig


def metric_ci_figure(
    labels: Sequence[str],
    metrics: Sequence[tuple[str, np.ndarray, np.ndarray, np.ndarray, dict[str, float]]],
) -> Figure:
    """One panel per metric ``(title, values, lo, hi, references)``: each run's value with its 95% CI
    (first label on top); each reference (e.g. the persistence floor) as a dotted vertical line."""
    n = len(labels)
    fig = Figure(figsize=(12, 0.32 * n + 1.6), layout="constrained")
    axes = _axes(fig, len(metrics), len(metrics), sharey=True)
    ypos = np.arange(n)[::-1]
    for ax, (title, values, lo, hi, references) in zip(axes, metrics, strict=True):
        err = np.vstack([values - lo, hi - values])
        ax.errorbar(values, ypos, xerr=np.where(np.isfinite(err), err, 0), fmt="o", ms=4, capsize=3)
        for k, (name, value) in enumerate(references.items()):
            ax.axvline(value, ls=":", color=f"C{k + 1}", label=name)
        if references:
            ax.legend(fontsize=7, loc="lower right")
        ax.set_title(title, fontsize=9)
        ax.tick_params(labelsize=7)
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(ypos, list(labels), fontsize=7)
    return fig


def history_comparison_figure(runs: Sequence[tuple[str, dict[str, list[float]], int | None]]) -> Figure:
    """Training (dashed) and validation (solid) loss per epoch of each recurrent run; kept epoch marked."""
    fig = Figure(figsize=(9, 4), layout="constrained")
    ax = fig.subplots()
    for k, (label, history, best_epoch) in enumerate(runs):
        color = f"C{k % 10}"
        ax.plot(history.get("val_loss", []), color=color, label=f"{label} (validation)")
        ax.plot(history.get("train_loss", []), color=color, ls="--", alpha=0.6)
        if best_epoch is not None and 0 <= best_epoch < len(history.get("val_loss", [])):
            ax.plot(best_epoch, history["val_loss"][best_epoch], "o", color=color, mec="black")
    ax.set(xlabel="epoch", ylabel="loss", title="Loss per epoch (dashed: training; ● kept epoch)")
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    return fig
