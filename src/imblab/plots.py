"""Run plots: confusion matrix, PR and ROC curves with the chosen threshold, metrics/cost vs threshold.

Each function takes arrays and returns a matplotlib Figure; saving and logging happen elsewhere.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # headless: runs on servers and in CI

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score, roc_curve

from imblab.metrics import Costs, confusion_counts, metrics_vs_threshold


def confusion_matrix_figure(y_true: np.ndarray, scores: np.ndarray, threshold: float, title: str) -> Figure:
    tn, fp, fn, tp = confusion_counts(y_true, (scores >= threshold).astype(int))
    cm = np.array([[tn, fp], [fn, tp]])
    fig, ax = plt.subplots(figsize=(4.2, 3.8))
    ax.imshow(cm, cmap="Blues")
    for (i, j), v in np.ndenumerate(cm):
        ax.text(j, i, f"{v}", ha="center", va="center", color="white" if v > cm.max() / 2 else "black")
    ax.set_xticks([0, 1], ["pass (0)", "fail (1)"])
    ax.set_yticks([0, 1], ["pass (0)", "fail (1)"])
    ax.set_xlabel("predicted")
    ax.set_ylabel("actual")
    ax.set_title(f"{title}\nthreshold = {threshold:.4f}", fontsize=10)
    fig.tight_layout()
    return fig


def pr_roc_figure(curves: dict[str, tuple[np.ndarray, np.ndarray]], threshold: float) -> Figure:
    """PR and ROC curves for each named (y_true, scores) pair, the chosen threshold marked."""
    fig, (ax_pr, ax_roc) = plt.subplots(1, 2, figsize=(10, 4.2))
    for label, (y, s) in curves.items():
        prec, rec, _ = precision_recall_curve(y, s)
        (line,) = ax_pr.plot(rec, prec, label=f"{label} (AP={average_precision_score(y, s):.3f})")
        fpr, tpr, _ = roc_curve(y, s)
        ax_roc.plot(fpr, tpr, color=line.get_color(), label=f"{label} (AUC={roc_auc_score(y, s):.3f})")
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
