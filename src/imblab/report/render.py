"""The comparison as text: names, the verdict on each run, terminal table, Markdown and CSV columns.

A sweep that is not complete says so first, in every format, and lists its job runs that did not
finish under the ranked ones.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import pandas as pd
from tabulate import tabulate

from imblab.report.variants import base_label

if TYPE_CHECKING:  # annotations only: a training run's plots need no MLflow reader
    from imblab.report.comparison import Comparison


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
COST_FIELDS = ("fn", "fp", "defect_value", "inspection")  # of imblab.metrics.costs.Costs, shown per run
MONEY_METRICS = frozenset({"expected_cost", "net_saving", "roi"})  # the report's cost table
# Said once, under the summary, so the table headers can stay short.
ABBREVIATIONS = (
    "Abbreviations: PR-AUC: area under the precision-recall curve (average precision); ROC-AUC: area "
    "under the ROC curve; F1: harmonic mean of precision and recall; MCC: Matthews correlation "
    "coefficient; Brier: mean squared error of the probabilities; CV: cross-validation on the training "
    "rows (out-of-fold scores), ± se: standard error over its folds; CI: confidence interval; costs fn / "
    "fp / value / inspection: cost of a missed defect / of a false alarm, value of a caught defect, cost "
    "of an inspection."
)
FILES = {
    "table": "comparison.txt",
    "markdown": "comparison.md",
    "csv": "comparison.csv",
    "html": "report.html",
}
TITLE_MARK = {"partial": " (PARTIAL)", "incomplete": " (INCOMPLETE)"}


def nice(metric: str) -> str:
    return NICE.get(metric, metric)


# --------------------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------------------


def _num(v: float, digits: int = 3) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"


def _sig(v: float) -> str:
    """3 significant digits: a threshold of 0.000119 reads as such, not as 0.0001."""
    return "n/a" if v is None or math.isnan(v) else f"{v:.3g}"


def _ci(v: float, lo: float, hi: float) -> str:
    return f"{_num(v)} [{_num(lo)}, {_num(hi)}]"


BETTER_THAN_ALL = "best: better than all"


def verdict(comparison: Comparison, row: pd.Series) -> str:
    """'best' ('best: better than all' when every other run is clearly worse); 'tied' (equal on every
    resample or fold); 'within noise' (the 95% CI of the paired difference contains 0); 'worse' or
    'better' (it does not)."""
    if row["is_best"]:
        table = getattr(comparison, "table", None)  # the panel comparison asks about one row at a time
        if table is None:
            return "best"
        others = table[~table["is_best"].astype(bool)]
        clear = len(others) > 0 and all(verdict(comparison, r) == "worse" for _, r in others.iterrows())
        return BETTER_THAN_ALL if clear else "best"
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
    """The human table (strings): the ranking (``ranking_table``) and, after it, ``extra`` further
    metrics with their intervals (default: all of ``comparison.metrics``): one wide table, for a terminal.
    Holdout runs: test metrics with bootstrap CIs; repeated-CV runs: ``rcv_`` means over the outer folds
    with corrected intervals."""
    m = comparison.metric
    extra = [x for x in (comparison.metrics[1:] if extra is None else extra) if x != m]
    table = ranking_table(comparison)
    where = _where(comparison)
    for other in extra:
        table[f"{where} {nice(other)}"] = _metric_cells(comparison, other)
    return table


def _where(comparison: Comparison) -> str:
    return "test" if comparison.score_prefix == "test" else "CV folds"


def _metric_cells(comparison: Comparison, metric: str) -> list[str]:
    """``value [lo, hi]`` of a metric per ranked run, then "—" for every unfinished job."""
    t, p = comparison.table, comparison.score_prefix
    cells = [_ci(r[f"{p}_{metric}"], r[f"{p}_{metric}_lo"], r[f"{p}_{metric}_hi"]) for _, r in t.iterrows()]
    return cells + ["—"] * len(_unfinished(comparison))


def _unfinished(comparison: Comparison) -> list:
    progress = comparison.sweep.progress
    return list(progress.unfinished) if progress else []


def ranking_table(comparison: Comparison) -> pd.DataFrame:
    """The ranking (strings): threshold, CV PR-AUC (holdout), the ranking metric with its 95% interval,
    the paired difference with the best run, P(beats best) (holdout) or the p-value (repeated CV), and
    the verdict; unfinished jobs listed after it."""
    m, prefix = comparison.metric, comparison.score_prefix
    holdout = prefix == "test"
    where = _where(comparison)
    ranked_by_other_cv = holdout and comparison.rule.prefix == "cv" and m != "pr_auc"
    rows = []
    for _, r in comparison.table.iterrows():
        best = bool(r["is_best"])
        diff = _ci(r["diff_vs_best"], r["diff_vs_best_lo"], r["diff_vs_best_hi"])
        row: dict[str, object] = {
            "#": int(r["rank"]),
            "variant": r["variant"],
            "run": str(r["run_id"])[:8],
            "threshold": _sig(r["threshold"]),
        }
        if holdout:
            row["CV PR-AUC ± se"] = f"{_num(r['cv_pr_auc'])} ± {_num(r['cv_pr_auc_fold_se'])}"
        if ranked_by_other_cv:
            row[f"CV {nice(m)}"] = _num(r[f"cv_{m}"])
        row |= {
            f"{where} {nice(m)} [95% CI]": _ci(
                r[f"{prefix}_{m}"], r[f"{prefix}_{m}_lo"], r[f"{prefix}_{m}_hi"]
            ),
            "Δ vs best [95% CI]": "—" if best else diff,
        }
        if holdout:
            row["P(beats best)"] = "—" if best else _num(r["p_beats_best"], 2)
        else:
            row["p"] = "—" if best else _num(r["p_value"], 3)
        row["verdict"] = verdict(comparison, r)
        rows.append(row)
    for run in _unfinished(comparison):
        rows.append(
            {
                **dict.fromkeys(rows[0], "—"),
                "variant": base_label(run.data.tags),
                "run": run.info.run_id[:8],
                "verdict": f"{run.info.status}: not compared",
            }
        )
    return pd.DataFrame(rows)


def _short_table(comparison: Comparison, metrics: Sequence[str], costs: bool) -> pd.DataFrame:
    """'#' and variant of each ranked run (unfinished jobs are listed in the ranking only), then each of
    ``metrics`` as ``value [95% CI]`` (and each run's costs)."""
    t, p = comparison.table, comparison.score_prefix
    table = pd.DataFrame({"#": t["rank"].astype(int), "variant": t["variant"]})
    for metric in metrics:
        table[f"{nice(metric)} [95% CI]"] = [
            _ci(r[f"{p}_{metric}"], r[f"{p}_{metric}_lo"], r[f"{p}_{metric}_hi"]) for _, r in t.iterrows()
        ]
    if costs:
        table["costs fn / fp / value / inspection"] = [
            "/".join(f"{getattr(comparison.sweep.run(rid).costs, k):g}" for k in COST_FIELDS)
            for rid in t["run_id"]
        ]
    return table.reset_index(drop=True)


def report_tables(comparison: Comparison) -> list[tuple[str, pd.DataFrame]]:
    """The report's tables, each narrow enough for a 1,280 px page: the ranking, the other test metrics
    at each run's frozen threshold, and the money metrics with each run's costs."""
    others = [x for x in comparison.metrics if x != comparison.metric]
    quality = [x for x in others if x not in MONEY_METRICS]
    money = [x for x in others if x in MONEY_METRICS]
    holdout = comparison.score_prefix == "test"
    rule = comparison.rule
    by = {"cv": "CV", "rcv": "CV-fold mean", "test": "test", "val": "validation"}[rule.prefix]
    where = "the test set" if holdout else "the outer CV folds (mean)"
    quality_title = (
        "Test metrics at each run's frozen threshold"
        if holdout
        else "Outer-fold metrics (mean) at each fold's own threshold"
    )
    tables = [(f"Ranking by {by} {nice(rule.base)}", ranking_table(comparison))]
    if quality:
        tables.append((quality_title, _short_table(comparison, quality, False)))
    tables.append((f"Cost and saving per lot on {where}", _short_table(comparison, money, True)))
    return tables


def csv_table(comparison: Comparison) -> pd.DataFrame:
    """The comparison table with each run's status; the sweep's job runs that did not finish follow
    it, with no metrics."""
    table = comparison.table.assign(status="FINISHED")
    progress = comparison.sweep.progress
    unfinished = [
        {
            "variant": base_label(run.data.tags),
            "run_name": run.info.run_name,
            "run_id": run.info.run_id,
            **{k: run.data.tags.get(k, "?") for k in ("sampler", "model", "threshold_policy")},
            "is_best": False,
            "status": run.info.status,
        }
        for run in (progress.unfinished if progress else ())
    ]
    return pd.concat([table, pd.DataFrame(unfinished)], ignore_index=True) if unfinished else table


def status_lines(comparison: Comparison) -> list[str]:
    """What the comparison leaves out: unfinished jobs of a partial or incomplete sweep, reruns."""
    sweep = comparison.sweep
    lines = []
    if sweep.state == "partial":
        lines.append(
            f"PARTIAL: sweep {sweep.sweep_id} is still running ({sweep.progress.describe()}); only the runs "
            "finished so far are compared."
        )
    elif sweep.state == "incomplete":
        lines.append(
            f"INCOMPLETE: sweep {sweep.sweep_id} ended before all its jobs finished "
            f"({sweep.progress.describe()}); its runs that did not finish are listed after the ranked "
            "ones, not compared."
        )
    if sweep.reruns_left_out:
        lines.append(
            f"Left out {sweep.reruns_left_out} older run(s) of variants that were run again: each variant "
            "is its newest finished run (imblab compare --all-runs keeps them)."
        )
    return lines


def summary_lines(comparison: Comparison) -> list[str]:
    """What was compared and how to read the table, shared by every format."""
    sweep, rule, m = comparison.sweep, comparison.rule, nice(comparison.metric)
    best = comparison.table.iloc[0]
    source = f"sweep {sweep.sweep_id} ({sweep.state})" if sweep.sweep_id else "all finished runs"
    direction = "higher" if comparison.higher_is_better else "lower"
    ties = "" if rule.cv_metric == rule.metric else f"{rule.cv_metric}, then "
    ranked = (
        f"Ranked by {rule.metric} ({direction} is better; ties: {ties}fewer alarms, then the newest run); "
        f"best: {best['variant']} (run {best['run_id']})."
    )
    notes = [f"WARNING: {note}." for note in comparison.notes]
    if comparison.score_prefix == "rcv":
        folds = sweep.runs[0].folds
        p = sweep.runs[0].params
        return [
            *status_lines(comparison),
            *notes,
            f"Experiment {sweep.experiment!r}, {source}: {len(sweep.runs)} runs evaluated by repeated CV on "
            f"the same {len(folds)} outer folds ({p.get('evaluation.repeats', '?')} x "
            f"{p.get('evaluation.folds', '?')}, evaluation.seed {p.get('evaluation.seed', '?')}, "
            f"{int(folds['n_test'].min())}-{int(folds['n_test'].max())} test rows per fold). No test set: "
            "each frozen model was refitted on all rows.",
            ranked,
            f"CV folds {m}: the mean over the outer folds with its 95% corrected resampled t interval "
            "(Nadeau and Bengio: the training sets overlap, so the plain standard error is too small).",
            f"Δ vs best: the mean per-fold difference (run minus best) in {m}, on the same outer folds, with "
            "its corrected 95% interval; p: two-sided p-value of no difference; verdict 'within noise': the "
            "interval contains 0; 'tied': equal in every fold (e.g. two policies on one fitted model).",
            "Threshold-dependent metrics use the threshold each outer fold's policy chose on that fold's "
            "training part; the threshold column is the frozen model's (chosen on all rows' out-of-fold "
            "scores).",
        ]
    y = sweep.y_test
    return [
        *status_lines(comparison),
        *notes,
        f"Experiment {sweep.experiment!r}, {source}: {len(sweep.runs)} runs on the same test set "
        f"({len(y)} rows, {int(y.sum())} positives).",
        ranked,
        f"Test {m} confirms the choice: 95% percentile CIs from {comparison.n_boot} bootstrap resamples of "
        f"the test rows (seed {comparison.seed}), the same resamples for every run, so differences are "
        "paired.",
        f"Δ vs best: run minus best in test {m} on each resample; P(beats best): "
        "fraction of resamples in which the run is strictly better; verdict 'within noise': the CI of Δ "
        "contains 0; 'tied': equal on every resample (e.g. two policies on one fitted model).",
        "Threshold-dependent metrics use each run's frozen threshold, chosen on out-of-fold training "
        "scores; expected cost and net saving are per lot under each run's costs.",
        ABBREVIATIONS,
    ]


def text_table(comparison: Comparison) -> str:
    """For a terminal: the ranking metric and a few others; the files hold every metric."""
    extra = [x for x in TERMINAL_METRICS if x in comparison.metrics]
    table = tabulate(display_table(comparison, extra), headers="keys", tablefmt="simple", showindex=False)
    more = f"All metrics: {FILES['markdown']}, {FILES['csv']} and {FILES['html']} in the report directory."
    return "\n".join([*summary_lines(comparison), "", table, "", more]) + "\n"


def markdown_table(comparison: Comparison) -> str:
    """The report in Markdown: title, summary, then each of ``report_tables`` under its own heading."""
    title = f"# Comparison: {comparison.sweep.name}{TITLE_MARK.get(comparison.sweep.state, '')}"
    parts = [title, "\n".join(f"- {line}" for line in summary_lines(comparison))]
    for heading, table in report_tables(comparison):
        parts += [f"## {heading}", table.to_markdown(index=False)]
    return "\n\n".join(parts) + "\n"
