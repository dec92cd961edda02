"""The report on disk (terminal table, Markdown, CSV, one self-contained HTML page, PNG plots), and
the same directory logged on the sweep's parent run."""

from __future__ import annotations

import base64
import html
import io
import re
from pathlib import Path

from matplotlib.figure import Figure
from mlflow.tracking import MlflowClient

from imblab.report.comparison import Comparison, Sweep
from imblab.report.figures import figures
from imblab.report.render import (
    FILES,
    TITLE_MARK,
    csv_table,
    display_table,
    markdown_table,
    summary_lines,
    text_table,
)
from imblab.tracking.layout import REPORT_DIR

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
    title = f"imblab comparison: {comparison.sweep.name}{TITLE_MARK.get(comparison.sweep.state, '')}"
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
    csv_table(comparison).to_csv(paths["csv"], index=False)
    paths["html"].write_text(html_report(comparison, pngs))
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
