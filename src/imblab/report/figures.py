"""Figures shared by runs and comparisons: one run's plots (logged by ``imblab train``) and a sweep's.

Every function returns a matplotlib ``Figure`` built with the object-oriented API (no pyplot state),
so runs, reports, notebooks and long-running processes never leak figures; saving and logging
happen elsewhere.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.metrics import (
    ConfusionMatrixDisplay,
    PrecisionRecallDisplay,
    RocCurveDisplay,
    average_precision_score,
    precision_recall_curve,
    roc_auc_score,
    roc_curve,
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
    ax_pr.set(xlabel="recall", ylabel="precision", title=f"Precision-recall (● threshold {threshold:.3g})")
    ax_roc.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC")
    for ax in (ax_pr, ax_roc):
        ax.set_aspect("auto")  # the displays make their axes square; two side by side fill the width
        ax.legend(fontsize=8)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
    return fig


# A chosen threshold below this sits on the y axis of a linear 0-1 plot (SECOM's are 0.002-0.05), so
# the x axis turns logarithmic.
LOG_AXIS_BELOW = 0.1


def threshold_scale(scores: np.ndarray, threshold: float) -> str:
    """'log' when the chosen threshold is small (below ``LOG_AXIS_BELOW``) and positive, else 'linear'."""
    return "log" if 0.0 < threshold < LOG_AXIS_BELOW and np.any(np.asarray(scores) > 0) else "linear"


def _threshold_limits(scores: np.ndarray, threshold: float) -> tuple[float, float]:
    """x limits of a log threshold axis: from the 1st percentile of the positive scores (at least a
    decade below the chosen threshold, so it never sits on the axis) to 1. Lower scores are lots that
    every threshold in view flags; a tree model's 1e-9 would otherwise stretch the axis by decades."""
    positive = np.asarray(scores, dtype=float)
    positive = positive[positive > 0]
    low = float(np.quantile(positive, 0.01))
    return min(low, threshold / 10), 1.0


def threshold_axis(ax: Any, scores: np.ndarray, threshold: float, flagged: float | None = None) -> str:
    """Scale the x axis of a metric-vs-threshold plot so ``threshold`` is readable, draw it as a dashed
    line labelled with its value (and the share of rows it flags); returns the scale."""
    scale = threshold_scale(scores, threshold)
    if scale == "log":
        ax.set_xscale("log")
        ax.set_xlim(*_threshold_limits(scores, threshold))
    else:
        ax.set_xlim(0, 1)
    ax.axvline(threshold, ls="--", color="black", lw=1)
    text = f"chosen {threshold:.3g}" + ("" if flagged is None else f"\nflags {flagged:.1%}")
    # Right of the line, unless the line is near the right edge (the label would leave the axes).
    at = ax.transLimits.transform(ax.transScale.transform((threshold, 0.0)))[0]
    right = at < 0.7
    ax.annotate(
        text,
        xy=(threshold, 1.0),
        xycoords=("data", "axes fraction"),
        xytext=(3 if right else -3, -3),
        textcoords="offset points",
        ha="left" if right else "right",
        va="top",
        fontsize=7,
        bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "none", "alpha": 0.8},
    )
    ax.set_xlabel("threshold" + (" (log scale)" if scale == "log" else ""))
    return scale


def _threshold_sweep(y_true: np.ndarray, scores: np.ndarray, costs: Costs) -> pd.DataFrame:
    """``metrics_vs_threshold`` over the thresholds that can be drawn: in (0, 1] (a log axis has no 0)."""
    table = metrics_vs_threshold(y_true, scores, costs)
    return table[(table["threshold"] <= 1.0) & (table["threshold"] > 0.0)]


def threshold_curves_figure(
    y_true: np.ndarray, scores: np.ndarray, costs: Costs, threshold: float, title: str = "out-of-fold"
) -> Figure:
    """Precision, recall, F1 and expected cost / net saving against the threshold, on an x axis that
    shows the chosen threshold (``threshold_axis``); its values marked on the cost curves."""
    table = _threshold_sweep(y_true, scores, costs)
    flagged = float(np.mean(np.asarray(scores) >= threshold))
    fig = Figure(figsize=(10, 4.2), layout="tight")
    ax_m, ax_c = fig.subplots(1, 2)
    for col in ("precision", "recall", "f1", "specificity"):
        ax_m.plot(table["threshold"], table[col], label=col, drawstyle="steps-post")
    at = metrics_vs_threshold(y_true, scores, costs, [threshold]).iloc[0]
    for col, label in (("expected_cost", "expected cost / lot"), ("net_saving", "net saving / lot")):
        (line,) = ax_c.plot(table["threshold"], table[col], label=label, drawstyle="steps-post")
        ax_c.plot(threshold, at[col], "o", color=line.get_color(), ms=6, mec="black", zorder=3)
        ax_c.annotate(f"{at[col]:.3g}", (threshold, at[col]), xytext=(5, 4), textcoords="offset points",
                      fontsize=7, color=line.get_color())  # fmt: skip
    for ax in (ax_m, ax_c):
        threshold_axis(ax, scores, threshold, flagged)
        ax.legend(fontsize=8, loc="lower left" if ax is ax_m else "best")
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
    styles = run_styles(comparison)
    fig = Figure(figsize=(8, 0.45 * len(t) + 1.4), layout="constrained")
    ax = fig.subplots()
    ypos = np.arange(len(t))[::-1]
    for yy, (_, r) in zip(ypos, t.iterrows(), strict=True):
        v, lo, hi = r[f"{p}_{m}"], r[f"{p}_{m}_lo"], r[f"{p}_{m}_hi"]
        color, _, marker = styles[r["run_id"]]
        ax.errorbar(v, yy, xerr=[[v - lo], [hi - v]], fmt=marker, color=color, mec="black", capsize=3)
    ax.axvline(t.iloc[0][f"{p}_{m}"], ls=":", color="grey")
    ax.set_yticks(ypos, [f"{r['variant']}  ({verdict(comparison, r)})" for _, r in t.iterrows()], fontsize=8)
    ax.set_xlabel(f"{what} {nice(m)} ({interval})")
    ax.set_title(f"{what} {nice(m)} by variant", fontsize=10)
    return fig


# A policy's marker, the same in every comparison; unknown policies take the spare ones in order.
POLICY_MARKERS = {
    "fixed": "s",
    "best_f1": "o",
    "min_cost": "D",
    "max_roi": "^",
    "precision_at_recall": "v",
    "recall_at_precision": "P",
}
_SPARE_MARKERS = ("X", "*", "<", ">", "h", "p")
_LINE_STYLES = ("-", "--", "-.", ":")


def policy_markers(policies: list[str]) -> dict[str, str]:
    """A distinct marker per policy: the known ones fixed (``POLICY_MARKERS``), others from the spares."""
    spare = iter(m for m in _SPARE_MARKERS if m not in POLICY_MARKERS.values())
    out: dict[str, str] = {}
    for policy in dict.fromkeys(policies):
        out[policy] = POLICY_MARKERS.get(policy) or next(spare, "o")
    return out


def curve_groups(comparison: Comparison) -> list[tuple[str, list[RunScores]]]:
    """The ranked runs grouped by their test scores: policies on one fitted model share one curve (and
    so one colour); each group named by its runs' label without the policy."""
    groups: list[tuple[np.ndarray | str, str, list[RunScores]]] = []
    for run in _ranked_runs(comparison):
        head = run.label.partition(f" × {run.policy}")[0] or run.label
        # Repeated-CV runs keep no test scores: policies of one sampler × model share its fits.
        key = run.test["score"].to_numpy() if run.test is not None else head
        group = next((g for g in groups if _same(g[0], key)), None)
        if group is None:
            groups.append((key, head, [run]))
        else:
            group[2].append(run)
    return [(name, runs) for _, name, runs in groups]


def _same(a: np.ndarray | str, b: np.ndarray | str) -> bool:
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    return np.array_equal(a, b)


def run_styles(comparison: Comparison) -> dict[str, tuple[str, str, str]]:
    """(colour, line style, marker) of every run, the same in every figure: the colour (and past ten
    fitted models the line style) says which fitted model, the marker which policy."""
    groups = curve_groups(comparison)
    markers = policy_markers([r.policy for _, runs in groups for r in runs])
    return {
        run.run_id: (f"C{i % 10}", _LINE_STYLES[(i // 10) % len(_LINE_STYLES)], markers[run.policy])
        for i, (_, runs) in enumerate(groups)
        for run in runs
    }


def pr_curves_figure(comparison: Comparison) -> Figure:
    """Test PR and ROC curves: one colour (and, past ten, line style) per fitted model, one marker per
    policy at each run's frozen threshold; one legend naming every curve and every run's threshold."""
    y = comparison.sweep.y_test
    groups = curve_groups(comparison)
    styles = run_styles(comparison)
    fig = Figure(figsize=(12, 5.0), layout="constrained")
    ax_pr, ax_roc = fig.subplots(1, 2)
    handles: list[Any] = []
    for name, runs in groups:
        color, style, _ = styles[runs[0].run_id]
        s = runs[0].test["score"].to_numpy()
        prec, rec, _ = precision_recall_curve(y, s)
        fpr, tpr, _ = roc_curve(y, s)
        (line,) = ax_pr.plot(rec, prec, style, color=color, drawstyle="steps-post")
        ax_roc.plot(fpr, tpr, style, color=color)
        line.set_label(f"{name}  (AP {average_precision_score(y, s):.3f}, AUC {roc_auc_score(y, s):.3f})")
        handles.append(line)
        for run in runs:
            tn, fp, fn, tp = confusion_counts(y, (s >= run.threshold).astype(np.int64))
            recall, precision, fpr_at = tp / max(tp + fn, 1), tp / max(tp + fp, 1), fp / max(fp + tn, 1)
            style_kw = {
                "color": color,
                "marker": styles[run.run_id][2],
                "mec": "black",
                "ms": 8,
                "ls": "none",
            }
            # Unclipped: a threshold that flags every lot sits on the axes' edge (recall 1).
            (point,) = ax_pr.plot(recall, precision, zorder=3, clip_on=False, **style_kw)
            ax_roc.plot(fpr_at, recall, zorder=3, clip_on=False, **style_kw)
            point.set_label(f"    {run.policy} @ {run.threshold:.3g}")
            handles.append(point)
    base = float(np.mean(y))
    handles.append(ax_pr.axhline(base, ls=":", color="grey", label=f"base rate {base:.3f}"))
    ax_roc.plot([0, 1], [0, 1], ls=":", color="grey")
    ax_pr.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02), title="Precision-recall")
    ax_roc.set(xlabel="false positive rate", ylabel="true positive rate (recall)", xlim=(0, 1),
               ylim=(0, 1.02), title="ROC")  # fmt: skip
    fig.suptitle(
        "Test set: a colour per fitted model, a marker per policy at its frozen threshold", fontsize=10
    )
    fig.legend(handles=handles, loc="outside right upper", fontsize=7, frameon=False)
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
        ax.set_title(f"{_short(run.label)}\nthreshold {run.threshold:.3g}", fontsize=8)
    for ax in axes[len(runs) :]:
        ax.set_axis_off()
    return fig


def cost_curves_figure(comparison: Comparison) -> Figure:
    """Expected cost and net saving per lot versus threshold, one panel per run (its own costs), each
    with a threshold axis that shows its frozen threshold (``threshold_axis``: log when it is small)."""
    runs = _ranked_runs(comparison)
    rows, cols = _grid(len(runs))
    fig = Figure(figsize=(3.8 * cols, 3.0 * rows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    for ax, run in zip(axes, runs, strict=False):
        for part, frame, style in (("test", run.test, "-"), ("out-of-fold", run.oof, "--")):
            t = _threshold_sweep(frame["y_true"], frame["score"], run.costs)
            for column, color in (("expected_cost", "C3"), ("net_saving", "C2")):
                label = f"{column.replace('_', ' ')} ({part})"
                ax.plot(t["threshold"], t[column], style, color=color, drawstyle="steps-post", label=label)
        ax.axhline(0, color="grey", lw=0.5)
        scores = np.concatenate([run.test["score"].to_numpy(), run.oof["score"].to_numpy()])
        threshold_axis(ax, scores, run.threshold, float(np.mean(run.test["score"] >= run.threshold)))
        ax.set_title(_short(run.label), fontsize=8)
        ax.tick_params(labelsize=7)
        ax.xaxis.label.set_fontsize(7)
    for ax in axes[len(runs) :]:
        ax.set_axis_off()
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncols=4, fontsize=7)
    fig.supylabel("per lot (dashed line: frozen threshold; flags: share of test lots)", fontsize=8)
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
