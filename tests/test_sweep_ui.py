"""Sweeps that read at a glance in the MLflow UI: names, descriptions, the parent's report, metrics, params.

The end-to-end tests run real sweeps (``imblab train -m`` / ``imblab panel -m``) in subprocesses; the last
one opens the store in ``mlflow server`` and looks at it in headless Chromium.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from imblab.report.sweep_run import PARTS
from imblab.tracking.sweeps import job_run_name, sweep_run_name
from tests.conftest import FAST
from tests.support.browser import chromium_page, mlflow_ui, require_browser
from tests.support.cli import imblab, runs_of

NOTE = "mlflow.note.content"
KEY = {"binary": ("pr_auc", "recall", "precision", "expected_cost")}


def test_the_parent_is_named_by_what_the_sweep_varies() -> None:
    assert sweep_run_name("secom", ["sampler", "threshold"], 4) == "secom: sampler × threshold (4 jobs)"
    assert sweep_run_name("nlswork", ["model"], 1) == "nlswork: model (1 job)"
    assert sweep_run_name("secom", [], None) == "secom: sweep"


def test_a_job_is_named_by_the_swept_values_in_sweep_order() -> None:
    values = {"threshold": "best_f1", "sampler": "smote", "model": "lgbm", "data": "secom"}
    assert job_run_name(["sampler", "model", "threshold"], values) == "smote·lgbm·best_f1"
    # A bare number would not say what it is: a dotted key's value keeps the key's last part.
    numbers = {"threshold.cost_fn": "20", "seed": "3", "+extra.flag": "true"}
    assert (
        job_run_name(["threshold.cost_fn", "seed", "+extra.flag"], numbers) == "cost_fn=20·seed=3·flag=true"
    )
    assert job_run_name([], values) is None


def _sweep(uri: str, experiment: str) -> tuple[Run, list[Run]]:
    runs = runs_of(uri, experiment)
    (parent,) = [r for r in runs if r.data.tags.get("imblab.role") == "sweep"]
    return parent, [r for r in runs if r.data.tags.get("imblab.sweep_id") == parent.info.run_id]


def _key_metrics(run: Run, metrics: tuple[str, ...]) -> dict[str, float]:
    return {
        f"{p}_{m}": run.data.metrics[f"{p}_{m}"]
        for p in PARTS
        for m in metrics
        if f"{p}_{m}" in run.data.metrics
    }


def _check_shared_params(parent: Run, children: list[Run]) -> None:
    keys = {k for c in children for k in c.data.params}
    shared = {k for k in keys if len({c.data.params.get(k) for c in children}) == 1}
    assert shared and shared != keys  # the sweep varied something, and the jobs share the rest
    assert parent.data.params == {k: children[0].data.params[k] for k in shared}


def _report_files(uri: str, run_id: str) -> set[str]:
    client = MlflowClient(uri)
    return {a.path for a in client.list_artifacts(run_id, "report")}


@pytest.fixture(scope="module")
def ui_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, str]]:
    """A store with a 2x2 sweep and a tuned run with pruned trials: (URI, directory, the sweep's stdout)."""
    root = tmp_path_factory.mktemp("ui-store")
    uri = f"sqlite:///{root / 'store' / 'mlflow.db'}"
    env = {"IMBLAB_CACHE_DIR": str(root / "cache")}
    where = (f"tracking.uri={uri}", "tracking.experiment=ui")
    sweep = imblab(
        "train", "-m", *FAST, "sampler=none,smote", "threshold=fixed,best_f1", *where, cwd=root, env=env
    )
    assert sweep.returncode == 0, sweep.stderr[-3000:]
    tuned = imblab(
        "train",
        *FAST,
        "tuning=optuna",
        "tuning.n_trials=8",
        "tuning.pruner.n_startup_trials=2",
        "tuning.progress_bar=false",
        "model.search_space.n_estimators.low=1",
        *where,
        cwd=root,
        env=env,
    )
    assert tuned.returncode == 0, tuned.stderr[-3000:]
    yield uri, root, sweep.stdout


@pytest.mark.slow
def test_a_sweep_parent_reads_as_a_summary_and_its_jobs_by_what_sets_them_apart(
    ui_store: tuple[str, Path, str],
) -> None:
    uri, _, stdout = ui_store
    parent, children = _sweep(uri, "ui")
    assert parent.info.status == "FINISHED"
    assert parent.info.run_name == "synthetic: sampler × threshold (4 jobs)"
    assert json.loads(parent.data.tags["imblab.swept_keys"]) == ["sampler", "threshold"]
    assert sorted(c.info.run_name for c in children) == sorted(
        ["none·fixed", "none·best_f1", "smote·fixed", "smote·best_f1"]
    )
    for child in children:
        sampler, policy = child.info.run_name.split("·")
        assert (child.data.tags["sampler"], child.data.tags["threshold_policy"]) == (sampler, policy)
        note = child.data.tags[NOTE]
        assert note.startswith(f"**{sampler} · lgbm · {policy}**: a job of sweep *{parent.info.run_name}*")
        assert f"this job: `{child.info.run_name}`" in note and "\n" not in note
        assert f"cv_pr_auc {child.data.metrics['cv_pr_auc']:.4f}" in note

    # The best job is chosen on cv_pr_auc (as the console's summary says); its key metrics are the parent's.
    best = next(c for c in children if c.info.run_id == parent.data.tags["imblab.best_run_id"])
    assert best.data.metrics["cv_pr_auc"] == max(c.data.metrics["cv_pr_auc"] for c in children)
    assert f"best by cv_pr_auc: run {best.info.run_id}" in stdout
    assert parent.data.metrics == _key_metrics(best, KEY["binary"]) and len(parent.data.metrics) == 8
    _check_shared_params(parent, children)

    note = parent.data.tags[NOTE]
    assert note.startswith(f"**{parent.info.run_name}**: parent run FINISHED; 4 of 4 jobs finished.")
    assert f"**Best by cv_pr_auc**: `{best.info.run_name}`" in note
    assert f"imblab compare --experiment ui --sweep {parent.info.run_id}" in note
    assert f"imblab promote --experiment ui --sweep {parent.info.run_id} --metric cv_pr_auc" in note
    assert "200 bootstrap resamples" in note

    # The same files imblab compare writes, on the same four runs.
    files = _report_files(uri, parent.info.run_id)
    assert {"report/report.html", "report/comparison.md", "report/comparison.csv", "report/plots"} <= files
    csv = MlflowClient(uri).download_artifacts(parent.info.run_id, "report/comparison.csv")
    assert set(pd.read_csv(csv)["run_id"]) == {c.info.run_id for c in children}


@pytest.mark.slow
def test_a_sweep_with_a_failed_job_still_gets_its_summary(tmp_path: Path, tracking_uri: str) -> None:
    proc = imblab(
        "train",
        "-m",
        *FAST,
        "sampler.estimator.k_neighbors=3,80",
        f"tracking.uri={tracking_uri}",
        "tracking.experiment=failing",
        cwd=tmp_path,
    )
    assert proc.returncode == 2, proc.stderr[-3000:]
    parent, children = _sweep(tracking_uri, "failing")
    assert parent.info.status == "FAILED"
    assert parent.info.run_name == "synthetic: sampler.estimator.k_neighbors (2 jobs)"
    by_name = {c.info.run_name: c for c in children}
    assert set(by_name) == {"k_neighbors=3", "k_neighbors=80"}
    good, bad = by_name["k_neighbors=3"], by_name["k_neighbors=80"]
    assert (good.info.status, bad.info.status) == ("FINISHED", "FAILED")
    assert re.search(r"It ended FAILED: .*k_neighbors", bad.data.tags[NOTE])
    assert parent.data.metrics == _key_metrics(good, KEY["binary"])
    assert parent.data.tags["imblab.best_run_id"] == good.info.run_id
    note = parent.data.tags[NOTE]
    assert "parent run FAILED; 1 of 2 jobs finished, 1 FAILED" in note
    assert f"- FAILED: `k_neighbors=80` (run `{bad.info.run_id}`)" in note
    assert "report/report.html" in _report_files(tracking_uri, parent.info.run_id)


@pytest.mark.slow
def test_a_panel_sweep_parent(tmp_path: Path, tracking_uri: str) -> None:
    proc = imblab(
        "panel",
        "-m",
        "data=panel_synthetic",
        "data.n_persons=150",
        "max_len=4",
        "model=persistence,lgbm_lags",
        f"tracking.uri={tracking_uri}",
        "tracking.experiment=panel-ui",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    parent, children = _sweep(tracking_uri, "panel-ui")
    assert parent.info.run_name == "panel_synthetic: model (2 jobs)"
    assert {c.info.run_name for c in children} == {"persistence", "lgbm_lags"}
    metric = "val_class_balanced_accuracy"
    best = max(children, key=lambda c: c.data.metrics[metric])
    assert parent.data.tags["imblab.best_run_id"] == best.info.run_id
    panel_keys = ("wage_rmse", "class_macro_f1", "class_balanced_accuracy", "class_accuracy")
    assert parent.data.metrics == _key_metrics(best, panel_keys) and metric in parent.data.metrics
    _check_shared_params(parent, children)
    assert f"**Best by {metric}**: `{best.info.run_name}`" in parent.data.tags[NOTE]
    assert "test persons" in parent.data.tags[NOTE]
    assert all(c.data.tags[NOTE].startswith(f"**{c.data.tags['model']} · none · argmax**") for c in children)
    assert "report/report.html" in _report_files(tracking_uri, parent.info.run_id)


# --- what a person sees in the MLflow UI ------------------------------------------------------------------


def _row(page: Any, run_id: str) -> Any:
    """The cells of a run's row in the runs table (ag-grid: row-id is the run id)."""
    return page.locator(f'[role="row"][row-id="{run_id}"]')


def _show_columns(page: Any, names: tuple[str, ...]) -> None:
    """Tick metric columns in the table's Columns menu, as a person would."""
    page.get_by_role("button", name="Columns").click()
    search = page.get_by_placeholder("Search columns")
    for name in names:
        search.fill(name)
        title = page.locator('[class*="tree-title"]', has_text=re.compile(rf"^{name}$"))
        node = page.locator('[class*="tree-treenode"]').filter(has=title)
        node.locator('[class*="tree-checkbox"]').first.click()
    page.keyboard.press("Escape")


@pytest.mark.slow
def test_the_mlflow_ui_shows_the_sweep_at_a_glance(ui_store: tuple[str, Path, str], tmp_path: Path) -> None:
    require_browser()
    uri, root, _ = ui_store
    parent, children = _sweep(uri, "ui")
    runs = runs_of(uri, "ui")
    tuned = next(
        r for r in runs if r.data.tags.get("tuning") == "optuna" and r.data.tags["imblab.role"] == "run"
    )
    trials = [r for r in runs if r.data.tags.get("imblab.role") == "trial"]
    pruned = next(r for r in trials if r.data.tags["optuna.state"] == "PRUNED")
    complete = next(r for r in trials if r.data.tags["optuna.state"] == "COMPLETE")
    exp = parent.info.experiment_id

    with mlflow_ui(uri, root) as base, chromium_page() as page:
        page.goto(f"{base}/#/experiments/{exp}/runs")
        parent_row = _row(page, parent.info.run_id)
        name_cell = parent_row.locator('[col-id="attributes.`Run Name`"]')
        name_cell.get_by_text(parent.info.run_name, exact=True).wait_for()
        if page.get_by_role("button", name="Close").count():  # the assistant panel takes a third of the page
            page.get_by_role("button", name="Close").first.click()
        # The parent's row with its (best job's) metrics.
        _show_columns(page, ("cv_pr_auc", "test_pr_auc"))
        cell = parent_row.locator('[col-id="metrics.`cv_pr_auc`"]')
        assert float(cell.inner_text()) == pytest.approx(parent.data.metrics["cv_pr_auc"])
        # The children under it, told apart by name; the tuned run's trials under it.
        name_cell.locator("button").first.click()
        _row(page, tuned.info.run_id).locator('[col-id="attributes.`Run Name`"] button').first.click()
        for child in children:
            child_name = _row(page, child.info.run_id).locator('[col-id="attributes.`Run Name`"]')
            child_name.get_by_text(child.info.run_name, exact=True).wait_for()
        pruned_row = _row(page, pruned.info.run_id)
        pruned_row.get_by_text(pruned.info.run_name, exact=True).wait_for()
        page.screenshot(path=str(tmp_path / "runs.png"))
        # A pruned trial wears the same status icon as a completed one (FINISHED), not a failure's.
        status = '[col-id="runDateAndNestInfo"] svg'
        icon = pruned_row.locator(status).first.inner_html()
        assert icon == _row(page, complete.info.run_id).locator(status).first.inner_html()
        assert icon == _row(page, children[0].info.run_id).locator(status).first.inner_html()

        # The parent's page: its description and metrics; the pruned trial's: Finished.
        page.goto(f"{base}/#/experiments/{exp}/runs/{parent.info.run_id}")
        page.get_by_text("Best by cv_pr_auc").first.wait_for()
        body = page.inner_text("body")
        assert "4 of 4 jobs finished" in body and "imblab compare --experiment ui" in body
        assert "cv_pr_auc" in body and f"{parent.data.metrics['test_pr_auc']}"[:6] in body
        page.screenshot(path=str(tmp_path / "parent.png"), full_page=True)
        page.goto(f"{base}/#/experiments/{exp}/runs/{pruned.info.run_id}")
        page.get_by_text(pruned.info.run_name, exact=True).first.wait_for()
        page.get_by_text("Finished", exact=True).first.wait_for()
        assert "Failed" not in page.inner_text("body")

        # The report on the parent, in the artifact view.
        page.goto(f"{base}/#/experiments/{exp}/runs/{parent.info.run_id}/artifacts")
        page.get_by_text("report", exact=True).first.click()
        page.get_by_text("report.html", exact=True).first.click()
        report = next(f for f in _frames_when(page, "imblab comparison"))
        text = report.inner_text("body")
        assert all(r.info.run_id[:8] in text for r in children)
        page.screenshot(path=str(tmp_path / "report.png"))


def _frames_when(page: Any, text: str, timeout: float = 90.0) -> Iterator[Any]:
    """The page's frames whose body contains ``text`` once one does (the artifact preview is an iframe)."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = []
        for frame in page.frames:
            try:
                if text in frame.inner_text("body", timeout=1000):
                    found.append(frame)
            except Exception:  # a frame still loading or detached
                continue
        if found:
            yield from found
            return
        time.sleep(0.5)
    raise AssertionError(f"no frame shows {text!r}")
