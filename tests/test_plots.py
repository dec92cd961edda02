"""Readable plots and report (issue 12): threshold axes, colours and markers, the report's width,
reliability with Brier, tuning importances with their trial count.

Fast: synthetic scores, no MLflow store (``RunScores`` built in memory); the comparison itself is the
real ``bootstrap_table``. A slow test renders the report in headless Chromium when it is installed.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
from matplotlib.lines import Line2D
from sklearn.metrics import brier_score_loss

from imblab.metrics.costs import Costs
from imblab.report.comparison import Comparison, RunScores, Sweep, bootstrap_table
from imblab.report.evaluation_figures import reliability_figure
from imblab.report.figures import (
    POLICY_MARKERS,
    cost_curves_figure,
    pr_curves_figure,
    run_styles,
    threshold_curves_figure,
    threshold_scale,
)
from imblab.report.files import write_report
from imblab.report.render import ABBREVIATIONS, markdown_table, report_tables
from imblab.tracking.trials import MIN_TRIALS_FOR_IMPORTANCE, study_figures

MODELS = ("none × lgbm", "smote × lgbm", "smote_enn × balanced_random_forest")
POLICIES = (("best_f1", 0.02), ("min_cost", 0.008), ("fixed", 0.5))


def _scores(rng: np.random.Generator, y: np.ndarray, strength: float) -> np.ndarray:
    """Probabilities of an imbalanced problem: most near 0.02, positives somewhat higher."""
    return 1 / (1 + np.exp(-rng.normal(-4 + strength * y, 1.2)))


def synthetic_comparison(
    models: tuple[str, ...] = MODELS, policies: tuple[tuple[str, float], ...] = POLICIES, n: int = 400
) -> Comparison:
    """Every (fitted model, policy) pair as a run; the policies of one model share its scores."""
    rng = np.random.default_rng(0)
    y, y_oof = ((rng.random(n) < 0.07).astype(int) for _ in range(2))
    runs = []
    for i, model in enumerate(models):
        test = pd.DataFrame({"row": np.arange(n), "y_true": y, "score": _scores(rng, y, 1.5 + 0.5 * i)})
        oof = pd.DataFrame({"row": np.arange(n), "fold": np.arange(n) % 3, "y_true": y_oof,
                            "score": _scores(rng, y_oof, 1.5 + 0.5 * i)})  # fmt: skip
        sampler, estimator = model.split(" × ")
        for policy, threshold in policies:
            tags = {"sampler": sampler, "model": estimator, "threshold_policy": policy}
            metrics = {"cv_pr_auc": 0.2, "cv_pr_auc_fold_se": 0.03}
            run_id = f"{i}{policy}".ljust(32, "0")
            runs.append(RunScores(run_id, run_id[:8], f"{model} × {policy}", tags, {}, metrics, threshold,
                                  Costs(), oof=oof, test=test))  # fmt: skip
    return bootstrap_table(Sweep("exp", "0", "f" * 32, "sqlite:///unused.db", runs), n_boot=50)


def _annotations(ax) -> list[str]:
    return [t.get_text() for t in ax.texts]


# --------------------------------------------------------------------------------------------------
# 1. Threshold axes
# --------------------------------------------------------------------------------------------------


def test_small_threshold_gets_a_log_axis_that_shows_it_with_its_value() -> None:
    rng = np.random.default_rng(1)
    y = (rng.random(500) < 0.07).astype(int)
    s = _scores(rng, y, 2.0)
    small = threshold_curves_figure(y, s, Costs(), 0.0123)
    for ax in small.axes:
        assert ax.get_xscale() == "log"
        low, high = ax.get_xlim()
        assert low <= 0.0123 / 10 and high == 1.0  # a decade of room left of the chosen line
        flags = f"{np.mean(s >= 0.0123):.1%}"
        assert any(t.startswith("chosen 0.0123") and flags in t for t in _annotations(ax))
    # The cost curves carry a dot at the chosen threshold with the cost there.
    cost_ax = small.axes[1]
    dots = [line for line in cost_ax.lines if line.get_marker() == "o"]
    assert [float(line.get_xdata()[0]) for line in dots] == [0.0123, 0.0123]

    usual = threshold_curves_figure(y, s, Costs(), 0.5)
    assert [ax.get_xscale() for ax in usual.axes] == ["linear", "linear"]
    assert usual.axes[0].get_xlim() == (0.0, 1.0)
    assert any(t.startswith("chosen 0.5") for t in _annotations(usual.axes[0]))
    # Near the right edge the label goes left of the line, inside the axes.
    (label,) = [
        t for t in threshold_curves_figure(y, s, Costs(), 0.9).axes[0].texts if "chosen" in t.get_text()
    ]
    assert label.get_ha() == "right"
    assert all(t.get_ha() == "left" for t in small.axes[0].texts if "chosen" in t.get_text())


def test_threshold_scale_rule() -> None:
    s = np.array([0.0, 0.001, 0.3])
    assert threshold_scale(s, 0.05) == "log"
    assert threshold_scale(s, 0.1) == "linear"
    assert threshold_scale(s, 0.0) == "linear"  # a log axis cannot show 0
    assert threshold_scale(np.zeros(3), 0.05) == "linear"  # nothing positive to put on it


def test_comparison_cost_panels_each_scale_to_their_own_threshold() -> None:
    comparison = synthetic_comparison()
    fig = cost_curves_figure(comparison)
    by_title = {ax.get_title(): ax for ax in fig.axes if ax.get_title()}
    for run in comparison.sweep.runs:
        head, _, policy = run.label.rpartition(" × ")
        ax = by_title[f"{head}\n{policy}"]
        assert ax.get_xscale() == ("log" if run.threshold < 0.1 else "linear"), run.label
        assert any(t.startswith(f"chosen {run.threshold:.3g}") for t in _annotations(ax))


# --------------------------------------------------------------------------------------------------
# 2. Colours per fitted model, markers per policy
# --------------------------------------------------------------------------------------------------


def test_pr_roc_one_colour_per_model_one_marker_per_policy() -> None:
    comparison = synthetic_comparison()
    fig = pr_curves_figure(comparison)
    ax_pr, ax_roc = fig.axes
    assert (ax_pr.get_title(), ax_roc.get_title()) == ("Precision-recall", "ROC")
    styles = run_styles(comparison)
    colours = {run.run_id: styles[run.run_id][0] for run in comparison.sweep.runs}
    by_model: dict[str, set[str]] = {}
    for run in comparison.sweep.runs:
        by_model.setdefault(f"{run.sampler} × {run.model}", set()).add(colours[run.run_id])
    assert all(len(c) == 1 for c in by_model.values())  # the policies of a model share its colour
    assert len({next(iter(c)) for c in by_model.values()}) == len(MODELS)  # models do not

    legend = fig.legends[0]
    labels = [t.get_text() for t in legend.get_texts()]
    markers = {}
    for handle, label in zip(legend.legend_handles, labels, strict=True):
        if isinstance(handle, Line2D) and handle.get_marker() not in ("None", None, ""):
            markers.setdefault(label.strip().split(" @ ")[0], set()).add(handle.get_marker())
    assert markers == {p: {POLICY_MARKERS[p]} for p, _ in POLICIES}
    assert len({m for (m,) in markers.values()}) == len(POLICIES)  # distinct per policy
    assert sum(label.startswith(MODELS) for label in labels) == len(MODELS)  # one curve entry per model
    # Every run's threshold point is drawn on both panels.
    for ax in (ax_pr, ax_roc):
        assert sum(line.get_linestyle() == "None" for line in ax.lines) == len(comparison.sweep.runs)


def test_more_than_ten_models_change_line_style() -> None:
    models = tuple(f"s{i} × m" for i in range(12))
    styles = run_styles(synthetic_comparison(models, POLICIES[:1], n=200))
    pairs = {(c, ls) for c, ls, _ in styles.values()}
    assert len(pairs) == 12


# --------------------------------------------------------------------------------------------------
# 3. The report fits 1,280 px
# --------------------------------------------------------------------------------------------------

# Chromium's default sans at the report's 0.85em: about 7.5 px per character, 17 px of padding and
# border per cell, 2em page margins. The variant column wraps (max-width 24em, min-width 14em).
PX_PER_CHAR, PX_PER_CELL, PAGE = 7.5, 17, 1280 - 2 * 32
VARIANT_CHARS = 24 * 16 * 0.85 / PX_PER_CHAR


def _width_px(table: pd.DataFrame) -> float:
    width = 0.0
    for column in table.columns:
        chars = max([len(str(column)), *(len(str(v)) for v in table[column])])
        width += (min(chars, VARIANT_CHARS) if column == "variant" else chars) * PX_PER_CHAR + PX_PER_CELL
    return width


def test_report_tables_fit_1280_px_and_keep_every_metric() -> None:
    comparison = synthetic_comparison()
    tables = report_tables(comparison)
    assert [title for title, _ in tables] == [
        "Ranking by CV PR-AUC",
        "Test metrics at each run's frozen threshold",
        "Cost and saving per lot on the test set",
    ]
    for title, table in tables:
        assert len(table.columns) <= 9, title
        assert _width_px(table) <= PAGE, (title, _width_px(table))
        assert len(table) == len(comparison.sweep.runs)
    shown = " ".join(c for _, t in tables for c in t.columns)
    for metric in ("PR-AUC", "ROC-AUC", "recall", "precision", "F1", "MCC", "expected cost", "net saving"):
        assert metric in shown
    md = markdown_table(comparison)
    assert md.count(ABBREVIATIONS) == 1 and md.count("## ") == 3


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs Debian's chromium package")
def test_report_html_has_no_horizontal_scroll_at_1280_px_in_chromium(tmp_path: Path) -> None:
    paths = write_report(synthetic_comparison(), tmp_path / "report")
    page = paths["html"].read_text()
    # The page's full width and its visible width (1280 less a vertical scroll bar, if any).
    probe = (
        "<script>const e = document.documentElement;"
        "document.body.dataset.widths = `${e.scrollWidth} ${e.clientWidth}`</script>"
    )
    (tmp_path / "probe.html").write_text(page.replace("</body>", probe + "</body>"))
    proc = subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1280,900", "--dump-dom",
         (tmp_path / "probe.html").as_uri()],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    found = re.search(r'data-widths="(\d+) (\d+)"', proc.stdout)
    assert found, proc.stderr[-2000:]
    scroll, visible = map(int, found.groups())
    assert 1200 <= visible <= 1280 and scroll <= visible, "a horizontal scroll bar: something is off-screen"


# --------------------------------------------------------------------------------------------------
# 4. Reliability with the Brier score
# --------------------------------------------------------------------------------------------------


def test_reliability_legend_brier_equals_sklearn_and_axes_zoom_to_the_scores() -> None:
    rng = np.random.default_rng(3)
    curves = {}
    for name in ("test", "out-of-fold"):
        y = (rng.random(600) < 0.066).astype(int)
        curves[name] = (y, _scores(rng, y, 2.0))
    fig = reliability_figure(curves)
    ax, ax_hist = fig.axes
    legend = {t.get_text() for t in ax.get_legend().get_texts()}
    for name, (y, p) in curves.items():
        assert f"{name} (Brier {brier_score_loss(y, p):.4f})" in legend
    # Imbalanced scores: the diagram zooms in (equal axes) instead of leaving its points in a corner.
    assert ax.get_xlim() == ax.get_ylim() and ax.get_xlim()[1] < 0.5
    assert "zoomed" in ax.get_title() and ax_hist.get_yscale() == "log"
    assert ax.get_xscale() == "linear"  # the bins' means span less than three decades

    # Probabilities of 1e-7..1e-2 (an unweighted LightGBM on SECOM): the x axis turns logarithmic.
    y, p = curves["test"]
    tiny = 10.0 ** rng.uniform(-7, -4, len(y)) + 0.01 * y
    ax = reliability_figure({"test": (y, tiny)}).axes[0]
    assert ax.get_xscale() == "log" and ax.get_xlim()[0] < 1e-6 and "log x" in ax.get_title()
    assert {t.get_text() for t in ax.get_legend().get_texts()} >= {
        f"test (Brier {brier_score_loss(y, tiny):.4f})"
    }


# --------------------------------------------------------------------------------------------------
# 6. Tuning: parameter importances from few trials say so
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("n_trials", "caveat"), [(6, True), (MIN_TRIALS_FOR_IMPORTANCE, False)])
def test_param_importance_title_counts_complete_trials(n_trials: int, caveat: bool) -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(lambda t: t.suggest_float("x", 0, 1) + 0.1 * t.suggest_float("y", 0, 1), n_trials=n_trials)

    def pruned(trial: optuna.Trial) -> float:
        trial.suggest_float("x", 0, 1), trial.suggest_float("y", 0, 1)
        raise optuna.TrialPruned

    study.optimize(pruned, n_trials=3)  # pruned trials are not counted
    ax = study_figures(study, "pr_auc")["param_importances"].axes[0]
    title = ax.get_title(loc="left")  # where Optuna puts its own title: replaced, not doubled
    assert ax.get_title() == "" and "Hyperparameter Importances" not in title
    assert f"({n_trials} complete trials)" in title
    assert ("rough: fewer than 20 complete trials" in title) is caveat
