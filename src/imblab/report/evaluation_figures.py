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
    (y_true, probability) pair, with its Brier score; quantile bins, since most scores of an imbalanced
    problem sit near 0 and uniform bins would leave the upper ones nearly empty."""
    fig = Figure(figsize=(5.6, 5.0), layout="tight")
    ax = fig.subplots()
    for label, (y, p) in curves.items():
        brier = brier_score_loss(y, p)
        CalibrationDisplay.from_predictions(
            y, p, n_bins=n_bins, strategy="quantile", name=f"{label} (Brier {brier:.4f})", ax=ax
        )
    ax.set(
        xlabel="mean predicted probability (quantile bins)",
        ylabel="observed fraction of positives",
        title="Reliability",
    )
    ax.legend(fontsize=8)
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
