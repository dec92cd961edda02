"""Run plots: confusion matrix, PR and ROC curves with the chosen threshold, metrics/cost vs threshold.

Each function takes arrays and returns a matplotlib Figure; saving and logging happen elsewhere.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # headless: runs on servers and in CI

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from sklearn.metrics import ConfusionMatrixDisplay, PrecisionRecallDisplay, RocCurveDisplay

from imblab.metrics.core import metrics_vs_threshold, validate_labels
from imblab.metrics.costs import Costs

CLASS_LABELS = ["pass (0)", "fail (1)"]


def confusion_matrix_figure(y_true: np.ndarray, scores: np.ndarray, threshold: float, title: str) -> Figure:
    """Counts at ``score >= threshold``, always 2x2 (``labels=[0, 1]``) even when a class is absent."""
    y = validate_labels(y_true, "y_true")  # imblab's message for bad labels, not scikit-learn's
    fig, ax = plt.subplots(figsize=(4.2, 3.8))
    ConfusionMatrixDisplay.from_predictions(
        y,
        (np.asarray(scores) >= threshold).astype(int),
        labels=[0, 1],
        display_labels=CLASS_LABELS,
        cmap="Blues",
        colorbar=False,
        ax=ax,
    )
    ax.set_xlabel("predicted")
    ax.set_ylabel("actual")
    ax.set_title(f"{title}\nthreshold = {threshold:.4f}", fontsize=10)
    fig.tight_layout()
    return fig


def pr_roc_figure(curves: dict[str, tuple[np.ndarray, np.ndarray]], threshold: float) -> Figure:
    """PR and ROC curves for each named (y_true, scores) pair, the chosen threshold marked."""
    fig, (ax_pr, ax_roc) = plt.subplots(1, 2, figsize=(10, 4.2))
    for label, (y, s) in curves.items():
        # Styled through the returned lines, not curve_kwargs, which scikit-learn < 1.8 lacks.
        pr = PrecisionRecallDisplay.from_predictions(y, s, name=label, ax=ax_pr)
        line = ax_pr.lines[-1]
        line.set_label(f"{label} (AP={pr.average_precision:.3f})")
        roc = RocCurveDisplay.from_predictions(y, s, name=label, ax=ax_roc)
        ax_roc.lines[-1].set_color(line.get_color())
        ax_roc.lines[-1].set_label(f"{label} (AUC={roc.roc_auc:.3f})")
        pred = s >= threshold
        tp = np.sum(pred & (y == 1))
        p_at = tp / max(pred.sum(), 1)
        r_at = tp / max((y == 1).sum(), 1)
        f_at = np.sum(pred & (y == 0)) / max((y == 0).sum(), 1)
        ax_pr.plot(r_at, p_at, "o", color=line.get_color(), markersize=8)
        ax_roc.plot(f_at, r_at, "o", color=line.get_color(), markersize=8)
    base = float(np.mean(next(iter(curves.values()))[0]))
    ax_pr.axhline(base, ls=":", color="grey", label=f"base rate {base:.3f}")
    ax_roc.plot([0, 1], [0, 1], ls=":", color="grey")
    ax_pr.set(xlabel="recall", ylabel="precision", title=f"Precision-recall (● threshold {threshold:.3f})")
    ax_roc.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC")
    for ax in (ax_pr, ax_roc):
        ax.set_aspect("auto")  # the displays make their axes square; two side by side fill the width
        ax.legend(fontsize=8)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
    fig.tight_layout()
    return fig


def threshold_curves_figure(
    y_true: np.ndarray, scores: np.ndarray, costs: Costs, threshold: float, title: str = "out-of-fold"
) -> Figure:
    """Precision, recall, F1 and expected cost / net saving against the threshold."""
    table = metrics_vs_threshold(y_true, scores, costs)
    table = table[table["threshold"] <= 1.0]
    fig, (ax_m, ax_c) = plt.subplots(1, 2, figsize=(10, 4.2))
    for col in ("precision", "recall", "f1", "specificity"):
        ax_m.plot(table["threshold"], table[col], label=col, drawstyle="steps-post")
    ax_c.plot(table["threshold"], table["expected_cost"], label="expected cost / lot", drawstyle="steps-post")
    ax_c.plot(table["threshold"], table["net_saving"], label="net saving / lot", drawstyle="steps-post")
    for ax in (ax_m, ax_c):
        ax.axvline(threshold, ls="--", color="black", label=f"chosen {threshold:.3f}")
        ax.set_xlabel("threshold")
        ax.legend(fontsize=8)
    ax_m.set(title=f"Metrics vs threshold ({title})", ylim=(0, 1.02))
    ax_c.set(
        title=f"Cost vs threshold (fn={costs.fn:g}, fp={costs.fp:g}, value={costs.defect_value:g}, "
        f"inspection={costs.inspection:g})"
    )
    ax_c.title.set_fontsize(9)
    fig.tight_layout()
    return fig
