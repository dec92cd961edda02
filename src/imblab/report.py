"""The comparison report: terminal table, Markdown, CSV and one self-contained HTML file with plots.

Figures are built with matplotlib's object-oriented ``Figure`` (no pyplot state), so the same
functions serve the report, the notebook and long-running processes without leaking figures.
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from mlflow.tracking import MlflowClient
from sklearn.metrics import average_precision_score, precision_recall_curve
from tabulate import tabulate

from imblab.compare import Comparison, RunScores
from imblab.metrics.core import confusion_counts, metrics_vs_threshold

NICE = {
    "pr_auc": "PR-AUC",
    "roc_auc": "ROC-AUC",
    "brier": "Brier",
    "mcc": "MCC",
    "f1": "F1",
    "g_mean": "G-mean",
    "expected_cost": "expected cost",
    "net_saving": "net saving",
    "balanced_accuracy": "balanced accuracy",
}
TERMINAL_METRICS = ("recall", "precision", "expected_cost")
FILES = {
    "table": "comparison.txt",
    "markdown": "comparison.md",
    "csv": "comparison.csv",
    "html": "report.html",
}


def nice(metric: str) -> str:
    return NICE.get(metric, metric)


# --------------------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------------------


def _num(v: float, digits: int = 3) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"


def _ci(v: float, lo: float, hi: float) -> str:
    return f"{_num(v)} [{_num(lo)}, {_num(hi)}]"


def verdict(comparison: Comparison, row: pd.Series) -> str:
    """'best'; 'tied' (equal on every resample); 'within noise' (the 95% CI of the paired difference
    contains 0); 'worse' or 'better' (it does not)."""
    if row["is_best"]:
        return "best"
    if row["p_ties_best"] == 1.0:
        return "tied"
    lo, hi = row["diff_vs_best_lo"], row["diff_vs_best_hi"]
    if math.isnan(lo) or math.isnan(hi):
        return "n/a"
    sign = 1.0 if comparison.higher_is_better else -1.0
    gain_lo, gain_hi = sorted((sign * lo, sign * hi))
    if gain_hi < 0:
        return "worse"
    return "better" if gain_lo > 0 else "within noise"


def display_table(comparison: Comparison, extra: Sequence[str] | None = None) -> pd.DataFrame:
    """The human table (strings): point estimates with 95% CIs, paired difference and verdict.

    ``extra``: further test metrics to show (default: all of ``comparison.metrics``).
    """
    m = comparison.metric
    extra = [x for x in (comparison.metrics[1:] if extra is None else extra) if x != m]
    rows = []
    for _, r in comparison.table.iterrows():
        best = bool(r["is_best"])
        diff = _ci(r["diff_vs_best"], r["diff_vs_best_lo"], r["diff_vs_best_hi"])
        row = {
            "#": int(r["rank"]),
            "variant": r["variant"],
            "run": str(r["run_id"])[:8],
            "threshold": _num(r["threshold"], 4),
            "CV PR-AUC ± se": f"{_num(r['cv_pr_auc'])} ± {_num(r['cv_pr_auc_fold_se'])}",
            f"test {nice(m)} [95% CI]": _ci(r[f"test_{m}"], r[f"test_{m}_lo"], r[f"test_{m}_hi"]),
            "Δ vs best [95% CI]": "—" if best else diff,
            "P(beats best)": "—" if best else _num(r["p_beats_best"], 2),
            "verdict": verdict(comparison, r),
        }
        for other in extra:
            row[f"test {nice(other)}"] = _ci(r[f"test_{other}"], r[f"test_{other}_lo"], r[f"test_{other}_hi"])
        rows.append(row)
    return pd.DataFrame(rows)


def summary_lines(comparison: Comparison) -> list[str]:
    """What was compared and how to read the table, shared by every format."""
    sweep = comparison.sweep
    y = sweep.y_test
    best = comparison.table.iloc[0]
    source = f"sweep {sweep.sweep_id}" if sweep.sweep_id else "all finished runs"
    direction = "higher" if comparison.higher_is_better else "lower"
    return [
        f"Experiment {sweep.experiment!r}, {source}: {len(sweep.runs)} runs on the same test set "
        f"({len(y)} rows, {int(y.sum())} positives).",
        f"Ranked by test {nice(comparison.metric)} ({direction} is better); best: {best['variant']} "
        f"(run {best['run_id']}).",
        f"95% percentile CIs from {comparison.n_boot} bootstrap resamples of the test rows (seed "
        f"{comparison.seed}), the same resamples for every run, so differences are paired.",
        f"Δ vs best: run minus best in test {nice(comparison.metric)} on each resample; P(beats best): "
        "fraction of resamples in which the run is strictly better; verdict 'within noise': the CI of Δ "
        "contains 0; 'tied': equal on every resample (e.g. two policies on one fitted model).",
        "Threshold-dependent metrics use each run's frozen threshold, chosen on out-of-fold training "
        "scores; expected cost and net saving are per lot under each run's costs.",
    ]


def text_table(comparison: Comparison) -> str:
    """For a terminal: the ranking metric and a few others; the files hold every metric."""
    extra = [x for x in TERMINAL_METRICS if x in comparison.metrics]
    table = tabulate(display_table(comparison, extra), headers="keys", tablefmt="simple", showindex=False)
    more = f"All metrics: {FILES['markdown']}, {FILES['csv']} and {FILES['html']} in the report directory."
    return "\n".join([*summary_lines(comparison), "", table, "", more]) + "\n"


def markdown_table(comparison: Comparison) -> str:
    table = display_table(comparison).to_markdown(index=False)
    title = f"# Comparison: {comparison.sweep.name}"
    return "\n\n".join([title, "\n".join(f"- {line}" for line in summary_lines(comparison)), table]) + "\n"


# --------------------------------------------------------------------------------------------------
# Figures
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
    m = comparison.metric
    colors = _colors(comparison)
    fig = Figure(figsize=(8, 0.45 * len(t) + 1.4), layout="constrained")
    ax = fig.subplots()
    ypos = np.arange(len(t))[::-1]
    for yy, (_, r) in zip(ypos, t.iterrows(), strict=True):
        v, lo, hi = r[f"test_{m}"], r[f"test_{m}_lo"], r[f"test_{m}_hi"]
        ax.errorbar(v, yy, xerr=[[v - lo], [hi - v]], fmt="o", color=colors[r["run_id"]], capsize=3)
    ax.axvline(t.iloc[0][f"test_{m}"], ls=":", color="grey")
    ax.set_yticks(ypos, [f"{r['variant']}  ({verdict(comparison, r)})" for _, r in t.iterrows()], fontsize=8)
    ax.set_xlabel(f"test {nice(m)} (95% bootstrap CI)")
    ax.set_title(f"test {nice(m)} by variant", fontsize=10)
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
            ax.plot(
                t["threshold"],
                t["expected_cost"],
                style,
                color="C3",
                drawstyle="steps-post",
                label=f"expected cost ({part})",
            )
            ax.plot(
                t["threshold"],
                t["net_saving"],
                style,
                color="C2",
                drawstyle="steps-post",
                label=f"net saving ({part})",
            )
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
    """Every report figure by file stem, in report order."""
    return {
        "ci": ci_figure(comparison),
        "pr_curves": pr_curves_figure(comparison),
        "confusion_matrices": confusion_grid_figure(comparison),
        "cost_vs_threshold": cost_curves_figure(comparison),
    }


# --------------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------------

_CAPTIONS = {
    "ci": "Test metric with 95% bootstrap CI per variant",
    "pr_curves": "Precision-recall curves on the test set",
    "confusion_matrices": "Confusion matrices on the test set at each run's frozen threshold",
    "cost_vs_threshold": "Expected cost and net saving per lot versus threshold "
    "(test solid, out-of-fold dashed)",
}

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; font-size: 0.85em; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: right; white-space: nowrap; }
th { background: #f0f3f7; }
td:nth-child(2) { text-align: left; }
img { max-width: 100%; border: 1px solid #eee; margin: 0.5em 0 1.5em; }
.note { color: #555; font-size: 0.9em; }
"""


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    return buf.getvalue()


def html_report(comparison: Comparison, pngs: dict[str, bytes]) -> str:
    """One HTML page with inline CSS and the plots as base64 PNG: no external resources."""
    title = f"imblab comparison: {comparison.sweep.name}"
    table = display_table(comparison).to_html(index=False, border=0, escape=True)
    notes = "".join(f"<li>{html.escape(line)}</li>" for line in summary_lines(comparison))
    plots = "".join(
        f"<h2>{html.escape(_CAPTIONS.get(name, name))}</h2>"
        f'<img alt="{html.escape(name)}" src="data:image/png;base64,{base64.b64encode(data).decode()}">'
        for name, data in pngs.items()
    )
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>"
        f'<ul class="note">{notes}</ul>{table}{plots}</body></html>\n'
    )


def write_report(comparison: Comparison, out_dir: str | Path) -> dict[str, Path]:
    """Write every format (and the plots as PNG) to ``out_dir``; returns the path of each format."""
    out = Path(out_dir)
    (out / "plots").mkdir(parents=True, exist_ok=True)
    pngs = {name: _png(fig) for name, fig in figures(comparison).items()}
    for name, data in pngs.items():
        (out / "plots" / f"{name}.png").write_bytes(data)
    paths = {fmt: out / name for fmt, name in FILES.items()}
    paths["table"].write_text(text_table(comparison))
    paths["markdown"].write_text(markdown_table(comparison))
    comparison.table.to_csv(paths["csv"], index=False)
    paths["html"].write_text(html_report(comparison, pngs))
    return paths


def log_report(comparison: Comparison, out_dir: str | Path) -> str | None:
    """Log the report directory under ``report/`` of the sweep's parent run; its id, or None."""
    sweep = comparison.sweep
    if not sweep.sweep_id:
        return None
    MlflowClient(sweep.tracking_uri).log_artifacts(sweep.sweep_id, str(out_dir), artifact_path="report")
    return sweep.sweep_id
