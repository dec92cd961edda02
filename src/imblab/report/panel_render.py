"""A panel comparison as text: what was compared and how, and its tables (wage, class, paired, parameters).

Each table is a DataFrame of strings; the terminal, Markdown and HTML renderings all use these, so they
say the same thing. The CSV is ``PanelComparison.table`` itself (every number, unformatted).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import pandas as pd
from tabulate import tabulate

from imblab.panel.metrics import CLASS_METRICS, WAGE_METRICS
from imblab.report.panel_runs import PanelRun, run_label
from imblab.report.render import FILES, TITLE_MARK, status_lines

if TYPE_CHECKING:
    from imblab.report.panel_comparison import PanelComparison

NICE = {
    "wage_rmse": "wage RMSE",
    "wage_mae": "wage MAE",
    "wage_r2": "wage R²",
    "wage_rmse_level": "wage RMSE (level)",
    "class_accuracy": "accuracy",
    "class_balanced_accuracy": "balanced accuracy",
    "class_macro_f1": "macro-F1",
}


def nice(metric: str) -> str:
    """``wage_rmse`` -> ``wage RMSE``; ``recall_under_35`` -> ``recall under_35``; prefixes kept."""
    for prefix in ("val_", "test_"):
        if metric.startswith(prefix):
            return f"{prefix[:-1]} {nice(metric.removeprefix(prefix))}"
    head, _, rest = metric.partition("_")
    return NICE.get(metric, f"{head} {rest}" if head in ("recall", "precision") else metric)


def num(v: object, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    return f"{float(v):.{digits}f}"  # type: ignore[arg-type]


def ci(row: pd.Series, key: str, digits: int = 3) -> str:
    """``value [lo, hi]`` of ``key`` (``test_<m>`` or a paired ``<against>_<m>``) in a table row."""
    if key.startswith("test_"):
        v, lo, hi = row.get(key), row.get(f"{key}_lo"), row.get(f"{key}_hi")
    else:
        v, lo, hi = row.get(f"{key}_diff"), row.get(f"{key}_lo"), row.get(f"{key}_hi")
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    # No-break spaces: a narrow cell may wrap before the interval, never inside it.
    return f"{num(v, digits)} [{num(lo, digits)},\u00a0{num(hi, digits)}]"


def _rank(row: pd.Series) -> str:
    r = row.get("rank")
    return "—" if pd.isna(r) else str(int(r))


def _run(row: pd.Series) -> str:
    rid = row.get("run_id")
    return str(rid)[:8] if isinstance(rid, str) else ""


def _short(value: str) -> str:
    """A logged parameter for reading: floats to 4 significant digits (``0.30592644736118974`` -> 0.3059)."""
    try:
        number = float(value)
    except ValueError:
        return value
    return value if number.is_integer() else f"{number:.4g}"


def _words(verdict: str) -> str:
    """``within noise`` kept on one line."""
    return verdict.replace(" ", "\u00a0")


def _versus(row: pd.Series, key: str) -> str:
    """``Δ [CI] verdict`` against a reference (the floor, the majority class); — where it does not apply."""
    verdict = row.get(f"{key}_verdict")
    if not isinstance(verdict, str):
        return "—"
    return f"{ci(row, key)} {_words(verdict)}"


# --------------------------------------------------------------------------------------------------
# Words
# --------------------------------------------------------------------------------------------------


def summary_lines(c: PanelComparison) -> list[str]:
    """What was compared, what chose the best run, how to read the intervals and the references."""
    sel, y = c.sweep, c.y_test
    shares = y["y_class"].value_counts(normalize=True)
    classes = ", ".join(f"{name} {shares.get(name, 0.0):.0%}" for name in c.class_names)
    best = next(r for r in c.ranked if r.run_id == c.best_run_id)
    direction = "higher" if c.higher_is_better else "lower"
    n_borrowed = len(sel.runs) - len(sel.candidates)
    lines = [
        *status_lines(c),  # type: ignore[arg-type]  # (duck-typed) a partial / incomplete sweep, reruns
        f"Experiment {sel.experiment!r}, {sel.source}{f' ({sel.state})' if sel.progress else ''}: "
        f"{len(sel.candidates)} run(s)"
        + (f" and the persistence floor from run {c.floor.run_id}" if n_borrowed and c.floor else "")
        + f", all scored on the same {len(y)} test examples of {c.n_persons} test persons "
        f"(classes: {classes}).",
    ]
    if c.ranked_on_test:
        lines.append(
            f"Ranked by the TEST metric {c.metric} ({direction} is better): best {best.label} (run "
            f"{best.run_id}), {num(best.metrics[c.metric])}."
            + (
                " Its test score is optimistic: it won on the examples that score it."
                if len(c.ranked) > 2
                else ""
            )
        )
    else:
        lines.append(
            f"Selected on validation, reported on test: best = {best.label} (run {best.run_id}) by "
            f"{c.metric} ({direction} is better) = {num(best.metrics[c.metric])}; no test number chose it."
        )
    study = f"; tuned by Optuna: {_study(best)}" if best.tuned else ""
    lines.append(f"Best run's parameters (* = tuned): {_params(best)}{study}.")
    lines += [
        f"95% percentile CIs from {c.n_boot} bootstrap resamples of the test PERSONS (each keeps all its "
        f"examples; seed {c.seed}), the same resamples for every run, so differences are paired.",
        "Δ vs best: run minus best on each resample; P: share of resamples in which the run is strictly "
        "better; verdict 'within noise' when the 95% CI of Δ contains 0, 'tied' when equal on every "
        "resample, else 'better' / 'worse'. Wage errors are in log units, except RMSE (level) (exp of both).",
        _floor_line(c),
        _majority_line(c),
    ]
    return lines + [f"Warning: {note}" for note in c.notes]


def _floor_line(c: PanelComparison) -> str:
    if c.floor is None:
        return (
            "Persistence floor: no FINISHED persistence run on these test examples in the experiment "
            "(`imblab panel model=persistence` adds one)."
        )
    rmse = c.table.loc[c.table["run_id"] == c.floor.run_id, "test_wage_rmse"].iloc[0]
    return (
        f"Persistence floor (this wave = the last one): {c.floor.label}, run {c.floor.run_id}, test wage "
        f"RMSE {num(rmse)}; 'vs floor' compares each run's wage RMSE with it."
    )


def _majority_line(c: PanelComparison) -> str:
    row = c.table.iloc[-1]
    acc, bal, f1 = (num(row[f"test_class_{m}"]) for m in ("accuracy", "balanced_accuracy", "macro_f1"))
    return (
        f"Majority-class reference (always {c.majority!r}, the most frequent class of the test persons): "
        f"accuracy {acc}, balanced accuracy {bal} (1/{len(c.class_names)} when every class occurs), "
        f"macro-F1 {f1}; "
        "'vs majority' compares each run's balanced accuracy with it."
    )


# --------------------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------------------


def wage_table(c: PanelComparison) -> pd.DataFrame:
    rows = []
    for _, r in c.table.iterrows():
        if not isinstance(r.get("run_id"), str):
            continue  # the majority-class reference predicts no wage
        rows.append(
            {
                "#": _rank(r),
                "run": r["label"],
                "id": _run(r),
                nice(c.metric): num(r.get(c.metric)),
                **{
                    f"{nice(m)} [95% CI]": ci(r, f"test_{m}", 2 if m == "wage_rmse_level" else 3)
                    for m in WAGE_METRICS
                },
                "vs floor: Δ wage RMSE [CI]": _versus(r, "floor_wage_rmse"),
            }
        )
    progress = c.sweep.progress
    for run in progress.unfinished if progress else ():  # what an incomplete sweep did not compare
        status = f"{run_label(run)} ({run.info.status}: not compared)"
        rows.append({**dict.fromkeys(rows[0], "—"), "run": status, "id": run.info.run_id[:8]})
    return pd.DataFrame(rows)


def class_table(c: PanelComparison) -> pd.DataFrame:
    rows = []
    for _, r in c.table.iterrows():
        row = {"#": _rank(r), "run": r["label"]}
        row |= {nice(m): ci(r, f"test_{m}") for m in CLASS_METRICS}
        row |= {
            f"recall {name}": ci(r, f"test_recall_{s}")
            for name, s in zip(c.class_names, c.slugs, strict=True)
        }
        row["vs majority: Δ balanced accuracy [CI]"] = _versus(r, "majority_class_balanced_accuracy")
        rows.append(row)
    return pd.DataFrame(rows)


def paired_table(c: PanelComparison) -> pd.DataFrame:
    rows = []
    for _, r in c.table.iterrows():
        if not isinstance(r.get("run_id"), str):
            continue
        row = {"#": _rank(r), "run": r["label"]}
        for m in c.headline:
            key, verdict = f"best_{m}", r.get(f"best_{m}_verdict")
            row[f"Δ {nice(m)} [95% CI]"] = "—" if verdict == "best" else ci(r, key)
            p = r.get(f"{key}_p_beats")
            row[f"{nice(m)}: verdict (P)"] = (
                "best" if verdict == "best" else f"{_words(verdict)} ({num(p, 2)})"
            )
        rows.append(row)
    return pd.DataFrame(rows)


def _params(run: PanelRun) -> str:
    """``k=v, ...`` of the model's parameters, the tuned ones starred."""
    tuned = run.best_params
    return (
        ", ".join(f"{k}={_short(v)}{'*' if k in tuned else ''}" for k, v in run.model_params.items()) or "—"
    )


def _study(run: PanelRun) -> str:
    """A tuned run's trial counts and best validation objective; — for an untuned run."""
    if not run.tuned:
        return "—"
    m = run.metrics
    counts = [f"{int(m.get(f'tuning_n_{s}', 0))} {s}" for s in ("complete", "pruned", "fail")]
    return f"{', '.join(counts)}; best val_objective {num(m.get('tuning_best_value', math.nan), 4)}"


def params_table(c: PanelComparison) -> pd.DataFrame:
    """Each run's model parameters (tuned ones starred), its study and its epochs."""
    rows = []
    ranks = dict(zip(c.table["run_id"], c.table["rank"], strict=True))
    for run in [*c.ranked, *(r for r in c.sweep.runs if r.borrowed)]:
        m = run.metrics
        epochs = (
            f"{int(m['epochs_run'])} run, best {int(m.get('best_epoch', -1))}" if "epochs_run" in m else "—"
        )
        offsets = (
            ", ".join(f"{k} {v:+.2f}" for k, v in run.offsets.items())
            if any(v != 0 for v in run.offsets.values())
            else "none"
        )
        rows.append(
            {
                "#": "—" if pd.isna(ranks[run.run_id]) else str(ranks[run.run_id]),
                "run": run.label,
                "id": run.run_id[:8],
                "parameters (* = tuned)": _params(run),
                "study (trials)": _study(run),
                "epochs": epochs,
                "decision offsets": offsets,
            }
        )
    return pd.DataFrame(rows)


def sections(c: PanelComparison) -> list[tuple[str, pd.DataFrame]]:
    """The report's tables in order, with their headings."""
    return [
        ("Wage on the test persons", wage_table(c)),
        ("Hours class on the test persons", class_table(c)),
        ("Paired differences against the best run (run − best)", paired_table(c)),
        ("Parameters", params_table(c)),
    ]


def text_report(c: PanelComparison) -> str:
    """For a terminal: the summary and a compact table; the files hold every table."""
    t = paired_table(c).drop(columns=["#", "run"])
    head = wage_table(c)[["#", "run", "id", nice(c.metric), "wage RMSE [95% CI]"]]
    cls = class_table(c).set_index("run")["balanced accuracy"]
    compact = head.assign(**{"balanced accuracy [95% CI]": head["run"].map(cls)})
    compact = pd.concat([compact, t[[k for k in t.columns if "verdict" in k]]], axis=1)
    table = tabulate(compact, headers="keys", tablefmt="simple", showindex=False, disable_numparse=True)
    more = f"All tables: {FILES['markdown']}, {FILES['csv']} and {FILES['html']} in the report directory."
    return "\n".join([*summary_lines(c), "", table, "", more]) + "\n"


def title(c: PanelComparison) -> str:
    """The selection's name, marked when its sweep is not complete."""
    return f"{c.sweep.name}{TITLE_MARK.get(c.sweep.state, '')}"


def markdown_report(c: PanelComparison, plots: dict[str, str]) -> str:
    """Every section as Markdown; ``plots``: file stem -> caption (PNG files under ``plots/``)."""
    parts = [f"# Panel comparison: {title(c)}", "\n".join(f"- {line}" for line in summary_lines(c))]
    for heading, table in sections(c):
        parts += [f"## {heading}", table.to_markdown(index=False, disable_numparse=True)]
    parts.append("## Plots")
    parts += [f"### {caption}\n\n![{caption}](plots/{name}.png)" for name, caption in plots.items()]
    return "\n\n".join(parts) + "\n"
