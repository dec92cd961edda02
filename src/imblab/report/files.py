"""The report on disk (terminal table, Markdown, CSV, one self-contained HTML page, PNG plots), and
the same directory logged on the sweep's parent run."""

from __future__ import annotations

import base64
import html
import io
import re
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure
from mlflow.tracking import MlflowClient

from imblab.report.comparison import Comparison, Sweep
from imblab.report.figures import figures
from imblab.report.render import (
    FILES,
    TITLE_MARK,
    csv_table,
    markdown_table,
    report_tables,
    summary_lines,
    text_table,
)
from imblab.tracking.layout import REPORT_DIR

_CAPTIONS = {
    "ci": "Ranking metric with its 95% interval per variant (test: bootstrap; repeated CV: corrected t)",
    "fold_differences": "Per-fold differences from the best run, with their mean and corrected 95% interval",
    "pr_curves": "Precision-recall and ROC curves on the test set (colour: fitted model; marker: policy)",
    "confusion_matrices": "Confusion matrices on the test set at each run's frozen threshold",
    "cost_vs_threshold": "Expected cost and net saving per lot versus threshold "
    "(test solid, out-of-fold dashed; log axis when the threshold is small)",
}

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; font-size: 0.85em; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: right; white-space: nowrap; }
th { background: #f0f3f7; }
td:nth-child(2), th:nth-child(2) { text-align: left; white-space: normal; min-width: 14em; max-width: 24em; }
img { max-width: 100%; border: 1px solid #eee; margin: 0.5em 0 1.5em; }
.note { color: #555; font-size: 0.9em; }
"""


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    return buf.getvalue()


def html_report(comparison: Comparison, pngs: dict[str, bytes]) -> str:
    """One HTML page with inline CSS and the plots as base64 PNG: no external resources."""
    title = f"imblab comparison: {comparison.sweep.name}{TITLE_MARK.get(comparison.sweep.state, '')}"
    tables = [
        f"<h2>{html.escape(heading)}</h2>" + table.to_html(index=False, border=0, escape=True)
        for heading, table in report_tables(comparison)
    ]
    notes = "".join(f"<li>{html.escape(line)}</li>" for line in summary_lines(comparison))
    plots = [figure_html(_CAPTIONS.get(name, name), data) for name, data in pngs.items()]
    return html_page(title, _CSS, [f'<ul class="note">{notes}</ul>', *tables, *plots])


def html_page(title: str, css: str, parts: Sequence[str]) -> str:
    """A self-contained page: inline CSS, the title as heading, then ``parts`` (HTML) in order."""
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{css}</style></head>'
        f"<body><h1>{html.escape(title)}</h1>{''.join(parts)}</body></html>\n"
    )


def figure_html(caption: str, png: bytes) -> str:
    """A figure as a heading and an inline (base64) PNG."""
    text = html.escape(caption)
    return f'<h2>{text}</h2><img alt="{text}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def write_report(comparison: Comparison, out_dir: str | Path) -> dict[str, Path]:
    """Write every format (and the plots as PNG) to ``out_dir``; returns the path of each format."""
    return save_report(
        out_dir,
        figures(comparison),
        csv_table(comparison),
        lambda pngs: {
            "table": text_table(comparison),
            "markdown": markdown_table(comparison),
            "html": html_report(comparison, pngs),
        },
    )


def save_report(
    out_dir: str | Path,
    figs: dict[str, Figure],
    table: pd.DataFrame,
    render: Callable[[dict[str, bytes]], dict[str, str]],
) -> dict[str, Path]:
    """The plots as ``plots/<name>.png``, ``table`` as the CSV, and the text ``render(pngs)`` returns for
    every other format of ``FILES``; returns the path of each format. Shared by binary and panel reports."""
    out = Path(out_dir)
    (out / "plots").mkdir(parents=True, exist_ok=True)
    pngs = {name: _png(fig) for name, fig in figs.items()}
    for name, data in pngs.items():
        (out / "plots" / f"{name}.png").write_bytes(data)
    paths = {fmt: out / name for fmt, name in FILES.items()}
    for fmt, text in render(pngs).items():
        paths[fmt].write_text(text)
    table.to_csv(paths["csv"], index=False)
    return paths


def log_report(comparison: Comparison, out_dir: str | Path) -> str | None:
    """Log the report directory under ``report/`` of the sweep's parent run; its id, or None."""
    sweep = comparison.sweep
    if not sweep.sweep_id:
        return None
    MlflowClient(sweep.tracking_uri).log_artifacts(sweep.sweep_id, str(out_dir), artifact_path=REPORT_DIR)
    return sweep.sweep_id


def default_output(sweep: Sweep) -> Path:
    """``reports/<experiment>-<sweep>`` under the working directory."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", sweep.name)
    return Path("reports") / safe
