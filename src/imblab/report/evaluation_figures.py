"""Figures of a run's calibration (reliability diagram) and of its repeated-CV outer folds.

Object-oriented matplotlib only (no pyplot state), like ``imblab.report.figures``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.calibration import CalibrationDisplay
from sklearn.metrics import brier_score_loss

# Outer-fold metrics shown side by side (all in [0, 1], so they share one axis).
FOLD_METRICS = ("pr_auc", "roc_auc", "precision", "recall", "f1", "balanced_accuracy", "brier")


def reliability_figure(curves: dict[str, tuple[np.ndarray, np.ndarray]], n_bins: int = 10) -> Figure:
    """Reliability diagram (observed positive rate against mean predicted probability) per named
    (y_true, probability) pair, with its Brier score (scikit-learn's ``brier_score_loss``), and below it
    the histogram of the probabilities.

    Quantile bins, since most scores of an imbalanced problem sit near 0 and uniform bins would leave
    the upper ones nearly empty; for the same reason both axes zoom to the bins' range (the diagonal
    stays the reference), else every point of a 6%-positive problem sits in the bottom-left corner.
    """
    fig = Figure(figsize=(5.6, 6.4), layout="constrained")
    ax, ax_hist = fig.subplots(2, 1, height_ratios=(3, 1), sharex=True)
    top = 0.0
    for label, (y, p) in curves.items():
        brier = brier_score_loss(y, p)
        display = CalibrationDisplay.from_predictions(
            y, p, n_bins=n_bins, strategy="quantile", name=f"{label} (Brier {brier:.4f})", ax=ax
        )
        top = max(top, float(np.max(display.prob_pred)), float(np.max(display.prob_true)))
        ax_hist.hist(p, bins=np.linspace(0, 1, 201), histtype="step", color=display.line_.get_color())
    limit = min(1.0, 1.1 * top) if top > 0 else 1.0
    ax.set(xlim=(0, limit), ylim=(0, limit), xlabel="", ylabel="observed fraction of positives")
    ax.set_title("Reliability" + (f" (zoomed to 0-{limit:.2g})" if limit < 1 else ""), fontsize=10)
    ax.legend(fontsize=8, loc="upper left")
    ax_hist.set(xlabel="mean predicted probability (quantile bins)", ylabel="rows", yscale="log")
    ax_hist.tick_params(labelsize=8)
    return fig


def outer_folds_figure(table: pd.DataFrame, summary: dict[str, float], prefix: str = "rcv") -> Figure:
    """Every outer fold's value of the main metrics, with their mean and corrected 95% interval."""
    metrics = [m for m in FOLD_METRICS if m in table.columns]
    fig = Figure(figsize=(1.2 * len(metrics) + 2.0, 4.2), layout="tight")
    ax = fig.subplots()
    jitter = np.random.default_rng(0).uniform(-0.15, 0.15, len(table))  # fixed: the figure is reproducible
    for i, m in enumerate(metrics):
        ax.plot(i + jitter, table[m], "o", color="C0", alpha=0.45, ms=4)
        mean, lo, hi = (summary[f"{prefix}_{m}{s}"] for s in ("", "_ci_low", "_ci_high"))
        if np.isfinite([mean, lo, hi]).all():
            ax.errorbar(i + 0.3, mean, yerr=[[mean - lo], [hi - mean]], fmt="D", color="black", capsize=4)
    ax.set_xticks(range(len(metrics)), [m.replace("_", " ") for m in metrics], fontsize=8, rotation=20)
    ax.set_ylim(0, 1.02)
    ax.set_title(
        f"{len(table)} outer folds: values (dots), mean and corrected 95% interval (black)", fontsize=9
    )
    return fig
