"""Panel runs side by side on the test persons: 95% person-bootstrap CIs, paired differences, references.

Select on validation, report on test: the best run is the one with the best ``val_<m>`` (by default
``val_class_balanced_accuracy``), chosen among the selected runs before any test number is looked at;
ranking by a ``test_<m>`` works too, but among more than two runs the winner's test score is then
optimistic (it won a contest on the very examples that score it), and the report says so.

Every run is scored on the same test examples, so the same person resamples (``imblab.metrics.
panel_bootstrap``) are applied to all of them: differences are paired. For each headline metric a run gets
``run - best`` with its 95% CI, the share of resamples in which it beats the best, and a verdict (the
binary comparison's: better / worse / within noise / tied). Two references: the persistence floor (a run,
when one exists on the same test examples) and "always the majority class of the test persons".
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from imblab.errors import ImblabError
from imblab.metrics.bootstrap import paired_stats, percentile_ci
from imblab.metrics.panel_bootstrap import (
    boot_metric_names,
    panel_metrics,
    person_codes,
    person_sums,
    person_weights,
)
from imblab.metrics.ranking import PANEL, ranking_rule
from imblab.panel.metrics import RANKING_METRICS, WAGE_METRICS, slug
from imblab.report.comparison import check_n_boot
from imblab.report.panel_runs import FLOOR_MODEL, PanelRun, PanelSelection
from imblab.report.render import verdict

log = logging.getLogger(__name__)

DEFAULT_METRIC = "val_class_balanced_accuracy"
# Paired against the best run (and the ranking metric's test counterpart, when it is another one).
HEADLINE = ("wage_rmse", "class_balanced_accuracy", "class_macro_f1")
MAJORITY = "majority class"  # the label of the "always the majority class" reference
_CHECK_RTOL = 1e-6  # recomputed test metrics vs the logged ones


@dataclass(frozen=True)
class _Direction:
    """What :func:`imblab.report.render.verdict` needs to know about a metric."""

    higher_is_better: bool


@dataclass
class PanelComparison:
    """The comparison; ``table``: a row per run (ranked, then a borrowed floor), then the majority class."""

    sweep: PanelSelection  # named like the binary Comparison's, so report.files.log_report applies
    metric: str  # the ranking metric as logged, e.g. val_class_balanced_accuracy
    higher_is_better: bool
    headline: list[str]  # metrics with paired differences against the best
    n_boot: int
    seed: int
    class_names: list[str]
    slugs: list[str]
    majority: str  # the majority class of the test examples
    best_run_id: str
    ranked: list[PanelRun]  # candidates, best first
    floor: PanelRun | None  # the persistence run the wage error is compared with, if any
    table: pd.DataFrame
    samples: dict[str, dict[str, NDArray[np.float64]]] = field(repr=False)  # run id (or MAJORITY) -> metric
    notes: list[str] = field(default_factory=list)  # warnings the report repeats

    @property
    def y_test(self) -> pd.DataFrame:
        return self.ranked[0].predictions

    @property
    def n_persons(self) -> int:
        return int(self.y_test["person"].nunique())

    @property
    def ranked_on_test(self) -> bool:
        return self.metric.startswith("test_")


def panel_comparison(
    selection: PanelSelection, metric: str = DEFAULT_METRIC, n_boot: int = 1000, seed: int = 0
) -> PanelComparison:
    """Rank the selection's runs by ``metric`` and bootstrap their test metrics over test persons."""
    rule = ranking_rule(metric, PANEL)
    base, higher = rule.base, rule.higher_is_better
    check_n_boot(n_boot)
    runs = selection.runs
    ref = runs[0]
    names = ref.class_names
    slugs = [slug(c) or f"class_{i}" for i, c in enumerate(names)]
    shown = boot_metric_names(slugs)
    missing = [r.label for r in selection.candidates if metric not in r.metrics]
    if missing:
        raise ImblabError(
            f"--metric {metric} is not logged on run(s) {missing}; panel runs log val_/test_ of "
            f"{shown[:7]} and per class recall_/precision_ of {slugs}"
        )

    codes, n_persons = person_codes(ref.predictions["person"].to_numpy())
    y_wage = ref.predictions["y_wage"].to_numpy(dtype=np.float64)
    y_cls = ref.codes("y_class")
    weights = np.vstack([np.ones((1, n_persons)), person_weights(n_persons, n_boot, seed)])

    def metrics_of(wage: NDArray[np.float64], pred: NDArray[np.int64]) -> dict[str, NDArray[np.float64]]:
        sums = person_sums(codes, n_persons, y_wage, wage, y_cls, pred, len(names), float(y_wage.mean()))
        return panel_metrics(weights @ sums, slugs)  # row 0: the test set itself

    values = {
        r.run_id: metrics_of(r.predictions["wage"].to_numpy(np.float64), r.codes("class")) for r in runs
    }
    majority = int(np.bincount(y_cls, minlength=len(names)).argmax())
    values[MAJORITY] = {
        m: (np.full(n_boot + 1, np.nan) if m in WAGE_METRICS else v)
        for m, v in metrics_of(y_wage, np.full(len(y_cls), majority)).items()
    }
    # The test set's own per-class recall / precision follow the logged convention (0 where undefined:
    # a class never true / never predicted); resamples where they are undefined stay out of the CI.
    per_class = {m for m in shown if m.startswith(("recall_", "precision_"))}
    point = {
        rid: {m: float(np.nan_to_num(v[0]) if m in per_class else v[0]) for m, v in per.items()}
        for rid, per in values.items()
    }
    boot = {rid: {m: v[1:] for m, v in per.items()} for rid, per in values.items()}

    candidates = selection.candidates
    # The shared rule (imblab promote ranks the same way): ties go to val_<m>, then to the newest run.
    ranked = sorted(candidates, key=lambda r: rule.key(r.metrics, r.start_time, r.run_id))
    best = ranked[0]
    floor = next((r for r in runs if r.model == FLOOR_MODEL), None)
    headline = list(dict.fromkeys([*HEADLINE, base]))  # base is logged, so it is one of shown
    notes = _checks(runs, point, shown)
    warning = rule.warning(len(candidates))
    if warning:
        notes.insert(0, warning)
    for note in notes:
        log.warning("%s", note)

    rows = []
    for rank, run in enumerate([*ranked, *(r for r in runs if r.borrowed)], start=1):
        row = _identity(run, None if run.borrowed else rank, metric)
        row |= _cis(point[run.run_id], boot[run.run_id], shown)
        for m in headline:
            row |= _paired(
                m, boot[run.run_id][m], boot[best.run_id][m], point, run.run_id, best.run_id, "best"
            )
        if floor is not None and run is not floor:
            m = "wage_rmse"
            row |= _paired(
                m, boot[run.run_id][m], boot[floor.run_id][m], point, run.run_id, floor.run_id, "floor"
            )
        m = "class_balanced_accuracy"
        row |= _paired(m, boot[run.run_id][m], boot[MAJORITY][m], point, run.run_id, MAJORITY, "majority")
        rows.append(row)
    majority_row = {"rank": None, "role": "reference", "label": f"{MAJORITY}: always {names[majority]!r}"}
    rows.append(majority_row | _cis(point[MAJORITY], boot[MAJORITY], shown))
    table = pd.DataFrame(rows).astype({"rank": "Int64"})
    return PanelComparison(
        selection, metric, higher, headline, n_boot, seed, names, slugs, names[majority], best.run_id,
        ranked, floor, table, boot, notes,
    )  # fmt: skip


def _identity(run: PanelRun, rank: int | None, metric: str) -> dict[str, object]:
    role = "floor" if run.model == FLOOR_MODEL else "candidate"
    return {
        "rank": rank,
        "role": f"{role} (borrowed)" if run.borrowed else role,
        "label": run.label,
        "run_id": run.run_id,
        "run_name": run.run_name,
        "model": run.model,
        "class_balance": run.tags.get("class_balance", "?"),
        "decision": run.tags.get("decision", "?"),
        "tuned": run.tuned,
        metric: run.metrics.get(metric, math.nan),
    }


def _cis(point: dict[str, float], boot: dict[str, NDArray[np.float64]], shown: list[str]) -> dict[str, float]:
    row: dict[str, float] = {}
    for m in shown:
        lo, hi = percentile_ci(boot[m])
        row |= {f"test_{m}": point[m], f"test_{m}_lo": lo, f"test_{m}_hi": hi}
    return row


def _paired(
    metric: str,
    run: NDArray[np.float64],
    other: NDArray[np.float64],
    point: dict[str, dict[str, float]],
    run_id: str,
    other_id: str,
    against: str,
) -> dict[str, object]:
    """``run - other`` on ``metric``: point difference, 95% CI, P(run beats other) and the verdict.

    Columns ``<against>_<metric>_diff``, ``..._lo``, ``..._hi``, ``..._p_beats``, ``..._verdict``.
    """
    higher = RANKING_METRICS.get(metric, True)  # per-class recall / precision: higher
    stats = paired_stats(run - other, 1.0 if higher else -1.0, is_best=run_id == other_id)
    key = f"{against}_{metric}"
    return {
        f"{key}_diff": point[run_id][metric] - point[other_id][metric],
        f"{key}_lo": stats["diff_vs_best_lo"],
        f"{key}_hi": stats["diff_vs_best_hi"],
        f"{key}_p_beats": stats["p_beats_best"],
        f"{key}_verdict": verdict(_Direction(higher), stats),  # type: ignore[arg-type]
    }


def _checks(runs: list[PanelRun], point: dict[str, dict[str, float]], shown: list[str]) -> list[str]:
    """Notes on recomputed test metrics that do not match what a run logged (an edited or foreign run)."""
    notes = []
    for run in runs:
        off = [
            m
            for m in shown
            if f"test_{m}" in run.metrics
            and not math.isnan(point[run.run_id][m])
            and not math.isclose(
                point[run.run_id][m], run.metrics[f"test_{m}"], rel_tol=_CHECK_RTOL, abs_tol=1e-9
            )
        ]
        if off:
            notes.append(
                f"run {run.run_id[:8]} ({run.label}): test metrics recomputed from its stored predictions "
                f"differ from the logged ones ({', '.join(off)}); the report uses the recomputed values"
            )
    return notes
