"""Figures of a run's calibration (reliability diagram) and of its repeated-CV outer folds.

Object-oriented matplotlib only (no pyplot state), like ``imblab.report.figures``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.calibration import CalibrationDisplay
from sklearn.metrics import brier_score_loss

if TYPE_CHECKING:
    from imblab.report.comparison import Comparison

# Outer-fold metrics shown side by side (all in [0, 1], so they share one axis).
FOLD_METRICS = ("pr_auc", "roc_auc", "precision", "recall", "f1", "balanced_accuracy", "brier")


def reliability_figure(curves: dict[str, tuple[np.ndarray, np.ndarray]], n_bins: int = 10) -> Figure:
    """Reliability diagram (observed positive rate against mean predicted probability) per named
    (y_true, probability) pair, with its Brier score (scikit-learn's ``brier_score_loss``), and below it
    the histogram of the probabilities.

    Quantile bins, since most scores of an imbalanced problem sit near 0 and uniform bins would leave
    the upper ones nearly empty. For the same reason the axes zoom to the bins' range (else every point
    of a 6%-positive problem sits in the bottom-left corner), and the x axis turns logarithmic when the
    bins' mean probabilities span over three decades (an unweighted LightGBM on SECOM predicts ~1e-4).
    """
    fig = Figure(figsize=(5.6, 6.4), layout="constrained")
    ax, ax_hist = fig.subplots(2, 1, height_ratios=(3, 1), sharex=True)
    predicted, top = [], 0.0
    for label, (y, p) in curves.items():
        brier = brier_score_loss(y, p)
        display = CalibrationDisplay.from_predictions(
            y,
            p,
            n_bins=n_bins,
            strategy="quantile",
            name=f"{label} (Brier {brier:.4f})",
            ax=ax,
            ref_line=False,
        )
        predicted.append(display.prob_pred)
        top = max(top, float(np.max(display.prob_pred)), float(np.max(display.prob_true)))
    limit = min(1.0, 1.1 * top) if top > 0 else 1.0
    means = np.concatenate(predicted)
    low = float(means[means > 0].min()) / 2 if np.any(means > 0) else 0.0
    log_x = 0 < low < limit / 2000  # the means span over three decades
    grid = np.geomspace(low, limit, 200) if log_x else np.linspace(0, limit, 200)
    ax.plot(grid, grid, "k:", label="perfectly calibrated")
    for (_, (_, p)), line in zip(curves.items(), ax.get_lines(), strict=False):
        ax_hist.hist(np.clip(p, grid[0], None), bins=grid, histtype="step", color=line.get_color())
    if log_x:
        ax.set_xscale("log")
    ax.set(xlim=(grid[0], limit), ylim=(0, limit), xlabel="", ylabel="observed fraction of positives")
    zoom = f"zoomed to {limit:.2g}" if limit < 1 else ""
    scale = "log x" if log_x else ""
    notes = ", ".join(filter(None, (zoom, scale)))
    ax.set_title("Reliability" + (f" ({notes})" if notes else ""), fontsize=10)
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


def fold_differences_figure(comparison: Comparison) -> Figure:
    """Repeated-CV comparison: every run's per-fold difference from the best run (dots) with the mean and
    its corrected 95% interval, so a gap carried by one or two folds is visible."""
    t, m = comparison.table, comparison.metric
    best = comparison.samples[comparison.best_run_id][m]
    fig = Figure(figsize=(8, 0.45 * len(t) + 1.6), layout="constrained")
    ax = fig.subplots()
    ypos = np.arange(len(t))[::-1]
    jitter = np.random.default_rng(0).uniform(-0.15, 0.15, len(best))  # fixed: reproducible figure
    for yy, (_, r) in zip(ypos, t.iterrows(), strict=True):
        diff = comparison.samples[r["run_id"]][m] - best
        ax.plot(diff, yy + jitter, "o", color="C0", alpha=0.35, ms=3)
        mean, lo, hi = r["diff_vs_best"], r["diff_vs_best_lo"], r["diff_vs_best_hi"]
        if np.isfinite([mean, lo, hi]).all():
            ax.errorbar(mean, yy, xerr=[[mean - lo], [hi - mean]], fmt="D", color="black", capsize=4)
    ax.axvline(0.0, ls=":", color="grey")
    ax.set_yticks(ypos, list(t["variant"]), fontsize=8)
    ax.set_xlabel(f"{m.replace('_', ' ')}: run minus best, per outer fold (mean, corrected 95% interval)")
    ax.set_title(f"Paired differences from the best run over {len(best)} outer folds", fontsize=10)
    return fig
