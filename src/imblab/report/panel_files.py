"""A panel comparison on disk: terminal text, Markdown, CSV, one self-contained HTML page and the PNG plots.

The same file names as the binary report (``report.render.FILES``), so ``imblab compare`` prints and logs
either the same way (``report.files.log_report`` logs the directory under ``report/``).
"""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from imblab.report.files import figure_html, html_page, save_report
from imblab.report.panel_comparison import MAJORITY, PanelComparison
from imblab.report.panel_figures import (
    confusion_grid_figure,
    history_comparison_figure,
    metric_ci_figure,
    wage_grid_figure,
)
from imblab.report.panel_render import markdown_report, nice, sections, summary_lines, text_report, title

CAPTIONS = {
    "metrics_ci": "Test metrics with 95% person-bootstrap CIs (dotted: references)",
    "confusion_matrices": "Hours class on the test persons: share of each true class (count), per run",
    "wage_actual_vs_predicted": "Wage (log) on the test persons: actual vs predicted",
    "training_history": "Training history of the recurrent runs",
}
MAX_WAGE_PANELS = 8  # more runs: the best run and the floor only
CI_METRICS = ("wage_rmse", "class_balanced_accuracy", "class_macro_f1")

# Readable in a 1,280 px window: cells wrap between a value and its interval (never inside one), so the
# tables fit; a table that still does not fit scrolls inside its box rather than widening the page.
_CSS = """
body { font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 1240px; padding: 0 12px;
       color: #222; line-height: 1.4; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 1.6em; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; font-size: 0.8em; margin: 0.5em 0; }
th, td { border: 1px solid #ccc; padding: 3px 6px; text-align: right; vertical-align: top; }
th { background: #f0f3f7; }
td:nth-child(2), th:nth-child(2) { text-align: left; min-width: 10em; }
td.wrap, th.wrap { text-align: left; }
img { max-width: 100%; border: 1px solid #eee; margin: 0.5em 0 1.5em; }
.note { color: #444; font-size: 0.9em; }
"""


def panel_figures(c: PanelComparison) -> dict[str, Figure]:
    """Every report figure by file stem, in report order (training history only with recurrent runs)."""
    runs = [*c.ranked, *(r for r in c.sweep.runs if r.borrowed)]
    t = c.table
    labels = list(t["label"])
    metrics = []
    for m in CI_METRICS:
        refs = {}
        if c.floor is not None and m.startswith("wage"):
            refs["persistence floor"] = float(t.loc[t["run_id"] == c.floor.run_id, f"test_{m}"].iloc[0])
        if m.startswith("class"):
            refs[f"{MAJORITY} ({c.majority})"] = float(t.iloc[-1][f"test_{m}"])
        values = [t[f"test_{m}{s}"].to_numpy(dtype=np.float64) for s in ("", "_lo", "_hi")]
        metrics.append((f"test {nice(m)}", *values, refs))
    y = c.y_test
    y_cls = c.ranked[0].codes("y_class")
    wage_runs = runs
    if len(runs) > MAX_WAGE_PANELS:
        wage_runs = [c.ranked[0], *([c.floor] if c.floor is not None and c.floor is not c.ranked[0] else [])]
    y_wage = y["y_wage"].to_numpy(dtype=np.float64)
    figures = {
        "metrics_ci": metric_ci_figure(labels, metrics),
        "confusion_matrices": confusion_grid_figure(
            [(r.label, y_cls, r.codes("class")) for r in runs], c.class_names
        ),
        "wage_actual_vs_predicted": wage_grid_figure(
            [(r.label, y_wage, r.predictions["wage"].to_numpy(np.float64)) for r in wage_runs], "wage (log)"
        ),
    }
    recurrent = [(r.label, r.history, _int(r.metrics.get("best_epoch"))) for r in runs if r.history]
    if recurrent:
        figures["training_history"] = history_comparison_figure(recurrent)
    return figures


def _int(v: float | None) -> int | None:
    return None if v is None or not np.isfinite(v) else int(v)


def html_report(c: PanelComparison, pngs: dict[str, bytes]) -> str:
    """One page with inline CSS and the plots as base64 PNG: no external resources."""
    notes = "".join(f"<li>{html.escape(line)}</li>" for line in summary_lines(c))
    parts = [f'<ul class="note">{notes}</ul>']
    for heading, table in sections(c):
        rendered = table.to_html(index=False, border=0, escape=True)
        if "parameters (* = tuned)" in table.columns:  # long parameter lists wrap instead of scrolling
            rendered = rendered.replace("<td>", '<td class="wrap">').replace("<th>", '<th class="wrap">')
        parts.append(f'<h2>{html.escape(heading)}</h2><div class="scroll">{rendered}</div>')
    parts += [figure_html(CAPTIONS.get(name, name), data) for name, data in pngs.items()]
    return html_page(f"imblab panel comparison: {title(c)}", _CSS, parts)


def write_panel_report(c: PanelComparison, out_dir: str | Path) -> dict[str, Path]:
    """Write every format (and the plots as PNG) to ``out_dir``; returns the path of each format."""
    return save_report(
        out_dir,
        panel_figures(c),
        c.table,
        lambda pngs: {
            "table": text_report(c),
            "markdown": markdown_report(c, {n: CAPTIONS.get(n, n) for n in pngs}),
            "html": html_report(c, pngs),
        },
    )
