"""Figures shared by runs and comparisons: one run's plots (logged by ``imblab train``) and a sweep's.

Every function returns a matplotlib ``Figure`` built with the object-oriented API (no pyplot state),
so runs, reports, notebooks and long-running processes never leak figures; saving and logging
happen elsewhere.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.figure import Figure
from sklearn.metrics import (
    ConfusionMatrixDisplay,
    PrecisionRecallDisplay,
    RocCurveDisplay,
    average_precision_score,
    precision_recall_curve,
)

from imblab.metrics.core import confusion_counts, metrics_vs_threshold, validate_labels
from imblab.metrics.costs import Costs
from imblab.report.render import nice, verdict

if TYPE_CHECKING:  # annotations only: a training run's plots need no MLflow reader
    from imblab.report.comparison import Comparison, RunScores

# --------------------------------------------------------------------------------------------------
# One run
# --------------------------------------------------------------------------------------------------


def confusion_matrix_figure(y_true: np.ndarray, scores: np.ndarray, threshold: float, title: str) -> Figure:
    """Counts at ``score >= threshold``, always 2x2 (``labels=[0, 1]``) even when a class is absent."""
    y = validate_labels(y_true, "y_true")  # imblab's message for bad labels, not scikit-learn's
    fig = Figure(figsize=(4.2, 3.8), layout="tight")
    ax = fig.subplots()
    ConfusionMatrixDisplay.from_predictions(
        y,
        (np.asarray(scores) >= threshold).astype(int),
        labels=[0, 1],
        display_labels=["pass (0)", "fail (1)"],
        cmap="Blues",
        colorbar=False,
        ax=ax,
    )
    ax.set_xlabel("predicted")
    ax.set_ylabel("actual")
    ax.set_title(f"{title}\nthreshold = {threshold:.4f}", fontsize=10)
    return fig


def pr_roc_figure(curves: dict[str, tuple[np.ndarray, np.ndarray]], threshold: float) -> Figure:
    """PR and ROC curves (scikit-learn's displays) for each named (y_true, scores) pair, threshold marked."""
    fig = Figure(figsize=(10, 4.2), layout="tight")
    ax_pr, ax_roc = fig.subplots(1, 2)
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
    return fig


def threshold_curves_figure(
    y_true: np.ndarray, scores: np.ndarray, costs: Costs, threshold: float, title: str = "out-of-fold"
) -> Figure:
    """Precision, recall, F1 and expected cost / net saving against the threshold."""
    table = metrics_vs_threshold(y_true, scores, costs)
    table = table[table["threshold"] <= 1.0]
    fig = Figure(figsize=(10, 4.2), layout="tight")
    ax_m, ax_c = fig.subplots(1, 2)
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
    return fig


# --------------------------------------------------------------------------------------------------
# A comparison of runs
# --------------------------------------------------------------------------------------------------


def _colors(comparison: Comparison) -> dict[str, str]:
    """One colour per run, stable across all figures (ranked order)."""
    palette = [f"C{i}" for i in range(10)]
    return {rid: palette[i % len(palette)] for i, rid in enumerate(comparison.table["run_id"])}


def _ranked_runs(comparison: Comparison) -> list[RunScores]:
    return [comparison.sweep.run(rid) for rid in comparison.table["run_id"]]


def _grid(n: int, max_cols: int = 4) -> tuple[int, int]:
    cols = min(max_cols, n)
    return math.ceil(n / cols), cols


def _short(label: str) -> str:
    """'sampler × model\npolicy' for small panel titles."""
    head, _, policy = label.rpartition(" × ")
    return f"{head}\n{policy}" if head else label


def ci_figure(comparison: Comparison) -> Figure:
    """The ranking metric of every run with its 95% CI; the best run's value as a reference line."""
    t = comparison.table
    m, p = comparison.metric, comparison.score_prefix
    what = "test" if p == "test" else "mean over the CV folds"
    interval = "95% bootstrap CI" if p == "test" else "95% corrected t interval"
    colors = _colors(comparison)
    fig = Figure(figsize=(8, 0.45 * len(t) + 1.4), layout="constrained")
    ax = fig.subplots()
    ypos = np.arange(len(t))[::-1]
    for yy, (_, r) in zip(ypos, t.iterrows(), strict=True):
        v, lo, hi = r[f"{p}_{m}"], r[f"{p}_{m}_lo"], r[f"{p}_{m}_hi"]
        ax.errorbar(v, yy, xerr=[[v - lo], [hi - v]], fmt="o", color=colors[r["run_id"]], capsize=3)
    ax.axvline(t.iloc[0][f"{p}_{m}"], ls=":", color="grey")
    ax.set_yticks(ypos, [f"{r['variant']}  ({verdict(comparison, r)})" for _, r in t.iterrows()], fontsize=8)
    ax.set_xlabel(f"{what} {nice(m)} ({interval})")
    ax.set_title(f"{what} {nice(m)} by variant", fontsize=10)
    return fig


def pr_curves_figure(comparison: Comparison) -> Figure:
    """Test PR curves overlaid; runs sharing a fitted model share a curve, each marks its threshold."""
    colors = _colors(comparison)
    y = comparison.sweep.y_test
    fig = Figure(figsize=(8, 5.5), layout="constrained")
    ax = fig.subplots()
    drawn: list[tuple[np.ndarray, str]] = []
    for run in _ranked_runs(comparison):
        s = run.test["score"].to_numpy()
        same = next((c for scores, c in drawn if np.array_equal(scores, s)), None)
        color = same or colors[run.run_id]
        if same is None:
            prec, rec, _ = precision_recall_curve(y, s)
            ap = average_precision_score(y, s)
            ax.plot(
                rec,
                prec,
                color=color,
                drawstyle="steps-post",
                label=f"{run.sampler} × {run.model} (AP {ap:.3f})",
            )
            drawn.append((s, color))
        _, fp, fn, tp = confusion_counts(y, (s >= run.threshold).astype(np.int64))
        ax.plot(
            tp / max(tp + fn, 1),
            tp / max(tp + fp, 1),
            "o",
            color=color,
            mec="black",
            ms=7,
            zorder=3,  # above the curves drawn later
            label=f"    {run.policy} @ {run.threshold:.3f}",
        )
    ax.axhline(float(np.mean(y)), ls=":", color="grey", label=f"base rate {np.mean(y):.3f}")
    ax.set(
        xlabel="recall",
        ylabel="precision",
        xlim=(0, 1),
        ylim=(0, 1.02),
        title="Precision-recall on the test set (● each run's frozen threshold)",
    )
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    return fig


def confusion_grid_figure(comparison: Comparison) -> Figure:
    """Test confusion matrix of every run at its frozen threshold."""
    runs = _ranked_runs(comparison)
    y = comparison.sweep.y_test
    rows, cols = _grid(len(runs))
    fig = Figure(figsize=(3.2 * cols, 3.6 * rows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    for ax, run in zip(axes, runs, strict=False):
        tn, fp, fn, tp = confusion_counts(y, (run.test["score"].to_numpy() >= run.threshold).astype(np.int64))
        cm = np.array([[tn, fp], [fn, tp]])
        ax.imshow(cm, cmap="Blues")
        for (i, j), v in np.ndenumerate(cm):
            ax.text(j, i, str(v), ha="center", va="center", color="white" if v > cm.max() / 2 else "black")
        ax.set_xticks([0, 1], ["pass", "fail"], fontsize=8)
        ax.set_yticks([0, 1], ["pass", "fail"], fontsize=8)
        ax.set_xlabel("predicted", fontsize=8)
        ax.set_ylabel("actual", fontsize=8)
        ax.set_title(f"{_short(run.label)}\nthreshold {run.threshold:.3f}", fontsize=8)
    for ax in axes[len(runs) :]:
        ax.set_axis_off()
    return fig


def cost_curves_figure(comparison: Comparison) -> Figure:
    """Expected cost and net saving per lot versus threshold, one panel per run (its own costs)."""
    runs = _ranked_runs(comparison)
    rows, cols = _grid(len(runs))
    fig = Figure(figsize=(3.8 * cols, 3.0 * rows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False, sharex=True)).ravel()
    for ax, run in zip(axes, runs, strict=False):
        for part, frame, style in (("test", run.test, "-"), ("out-of-fold", run.oof, "--")):
            t = metrics_vs_threshold(frame["y_true"], frame["score"], run.costs)
            t = t[t["threshold"] <= 1.0]
            for column, color in (("expected_cost", "C3"), ("net_saving", "C2")):
                label = f"{column.replace('_', ' ')} ({part})"
                ax.plot(t["threshold"], t[column], style, color=color, drawstyle="steps-post", label=label)
        ax.axvline(run.threshold, color="black", lw=1)
        ax.axhline(0, color="grey", lw=0.5)
        ax.set_title(f"{_short(run.label)}\nthreshold {run.threshold:.3f}", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.set_xlabel("threshold (line: frozen)", fontsize=7)
    for ax in axes[len(runs) :]:
        ax.set_axis_off()
    axes[0].set_xlim(0, 1)
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncols=4, fontsize=7)
    fig.supylabel("per lot", fontsize=8)
    return fig


def figures(comparison: Comparison) -> dict[str, Figure]:
    """Every report figure by file stem, in report order (repeated CV: the folds, no test rows)."""
    if comparison.score_prefix == "rcv":
        from imblab.report.evaluation_figures import fold_differences_figure

        return {"ci": ci_figure(comparison), "fold_differences": fold_differences_figure(comparison)}
    return {
        "ci": ci_figure(comparison),
        "pr_curves": pr_curves_figure(comparison),
        "confusion_matrices": confusion_grid_figure(comparison),
        "cost_vs_threshold": cost_curves_figure(comparison),
    }
