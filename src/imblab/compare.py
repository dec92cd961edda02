"""``imblab compare``: a sweep's variants side by side, with bootstrap CIs and a paired comparison.

Every run of a sweep is scored on the same test rows, so the rows are resampled *once* and the same
resamples are reused for every variant: differences between variants are then paired, and the
fraction of resamples in which a variant beats the best run says whether a gap is more than noise.

Resampling scheme (documented because tests and readers can reproduce it exactly)::

    idx = np.random.default_rng(seed).integers(0, n_test, size=(n_boot, n_test))

Resample ``b`` is the multiset of test rows ``idx[b]``; a row drawn twice counts twice. Ranking
metrics (PR-AUC = average precision, ROC-AUC) and the threshold-dependent metrics at each run's
frozen threshold are computed for all resamples at once from per-row weights (how often each row
was drawn), which gives the same numbers as scikit-learn on ``y[idx[b]], score[idx[b]]`` (to 1e-15)
but over a hundred times faster than a loop calling it (1000 resamples of SECOM's 314 test rows:
0.03 s instead of 4 s per run). CIs are 95% percentile intervals; resamples in which a metric is
undefined (a resample without positives has no PR-AUC) are left out of that metric's interval.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import re
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from mlflow.artifacts import download_artifacts
from mlflow.entities import Experiment, Run
from mlflow.environment_variables import MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from numpy.typing import NDArray

from imblab.errors import ImblabError
from imblab.metrics import LOWER_IS_BETTER, Costs, _expected_cost, _net_saving, _safe_div
from imblab.runner import OOF_SCORES, TEST_SCORES, THRESHOLD_JSON
from imblab.tracking import TAG_ROLE, TAG_SWEEP, resolve_tracking_uri

log = logging.getLogger(__name__)

# Metrics that can be bootstrapped from (labels, scores, threshold, costs) of the test rows.
BOOT_METRICS: tuple[str, ...] = (
    "pr_auc",
    "roc_auc",
    "brier",
    "accuracy",
    "precision",
    "recall",
    "specificity",
    "f1",
    "balanced_accuracy",
    "mcc",
    "g_mean",
    "expected_cost",
    "net_saving",
)
# Shown in the tables besides the ranking metric (which always comes first).
DEFAULT_METRICS: tuple[str, ...] = (
    "pr_auc",
    "roc_auc",
    "recall",
    "precision",
    "f1",
    "mcc",
    "expected_cost",
    "net_saving",
)
SPLIT_PARAMS = ("split.kind", "split.test_size", "split.seed")
ALL_RUNS = "all"
_MAX_CELLS = 4_000_000  # resamples x rows held in memory at once (32 MB of float64 weights)


# --------------------------------------------------------------------------------------------------
# Loading a sweep from MLflow
# --------------------------------------------------------------------------------------------------


@dataclass
class RunScores:
    """One training run with the stored scores the comparison is computed from."""

    run_id: str
    run_name: str
    label: str  # "sampler × model × policy", unique within a sweep
    tags: dict[str, str]
    params: dict[str, str]
    metrics: dict[str, float]  # as logged in MLflow (cv_*, test_*)
    threshold: float  # the frozen decision threshold
    costs: Costs  # the costs this run reports expected cost / net saving under
    oof: pd.DataFrame  # out-of-fold training scores: row, fold, y_true, score
    test: pd.DataFrame  # test scores: row, y_true, score, decision

    @property
    def sampler(self) -> str:
        return self.tags.get("sampler", "?")

    @property
    def model(self) -> str:
        return self.tags.get("model", "?")

    @property
    def policy(self) -> str:
        return self.tags.get("threshold_policy", "?")


@dataclass
class Sweep:
    """The runs compared: the finished children of one sweep, or all finished runs of an experiment."""

    experiment: str
    experiment_id: str
    sweep_id: str | None  # the parent run id; None when comparing all runs of the experiment
    tracking_uri: str
    runs: list[RunScores]

    @property
    def name(self) -> str:
        return f"{self.experiment}-{self.sweep_id or ALL_RUNS}"

    @property
    def y_test(self) -> NDArray[np.int64]:
        return self.runs[0].test["y_true"].to_numpy(dtype=np.int64)

    def run(self, run_id: str) -> RunScores:
        return next(r for r in self.runs if r.run_id == run_id)


def _experiment(client: MlflowClient, uri: str, name: str) -> Experiment:
    exp = client.get_experiment_by_name(name)
    if exp is None:
        names = [e.name for e in client.search_experiments()]
        raise ImblabError(
            f"no MLflow experiment {name!r} in {uri}; experiments there: {names}. "
            "Pass --experiment NAME (and --tracking-uri if the store is elsewhere)"
        )
    return exp


def latest_sweep_id(client: MlflowClient, experiment_id: str) -> str | None:
    """The most recently started sweep parent run of the experiment, if any."""
    parents = client.search_runs(
        [experiment_id],
        f"tags.`{TAG_ROLE}` = 'sweep'",
        max_results=1,
        order_by=["attributes.start_time DESC"],
    )
    return parents[0].info.run_id if parents else None


def _sweep_parent(client: MlflowClient, sweep_id: str) -> Run:
    try:
        parent = client.get_run(sweep_id)
    except MlflowException as exc:
        raise ImblabError(
            f"no run {sweep_id!r} in the tracking store: {exc.message}. "
            "Pass the parent run id of a sweep (see `imblab runs`, column sweep_id)"
        ) from None
    role = parent.data.tags.get(TAG_ROLE)
    if role != "sweep":
        hint = f" it belongs to sweep {parent.data.tags[TAG_SWEEP]}." if TAG_SWEEP in parent.data.tags else ""
        raise ImblabError(
            f"run {sweep_id} is not a sweep parent ({TAG_ROLE}={role!r});{hint} "
            "Pass the parent run id of an `imblab train -m` sweep, or --sweep all"
        )
    return parent


def _label(tags: dict[str, str]) -> str:
    tuned = " (tuned)" if tags.get("tuning", "none") not in ("none", "") else ""
    return (
        f"{tags.get('sampler', '?')} × {tags.get('model', '?')} × {tags.get('threshold_policy', '?')}{tuned}"
    )


@contextlib.contextmanager
def _quiet_downloads() -> Iterator[None]:
    """No per-file progress bars while fetching a sweep's small artifacts (unless the user set it)."""
    name = MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR.name
    if name in os.environ:
        yield
        return
    os.environ[name] = "false"
    try:
        yield
    finally:
        os.environ.pop(name, None)


def _load_run(uri: str, run: Run, label: str) -> RunScores:
    run_id = run.info.run_id
    with tempfile.TemporaryDirectory(prefix="imblab-compare-") as tmp, _quiet_downloads():
        try:
            # By the run's artifact URI: no further run lookup per file.
            root = run.info.artifact_uri.rstrip("/")
            folder = Path(download_artifacts(artifact_uri=f"{root}/scores", dst_path=tmp, tracking_uri=uri))
            test = pd.read_parquet(folder / Path(TEST_SCORES).name)
            oof = pd.read_parquet(folder / Path(OOF_SCORES).name)
            info_path = download_artifacts(
                artifact_uri=f"{root}/{THRESHOLD_JSON}", dst_path=tmp, tracking_uri=uri
            )
            info = json.loads(Path(info_path).read_text())
        except (MlflowException, OSError, ValueError) as exc:
            raise ImblabError(
                f"run {run_id} ({run.info.run_name}) lacks the stored scores imblab compare needs "
                f"({TEST_SCORES}, {OOF_SCORES}, {THRESHOLD_JSON}): {exc}. It was logged by another tool "
                "or an older imblab; re-run it with `imblab train` or leave it out (--sweep ID)"
            ) from None
    metrics = dict(run.data.metrics)
    # The logged metric keeps full float precision; the tag is a 6-digit rendering of it.
    threshold = metrics.get("test_threshold", float(run.data.tags.get("threshold", "nan")))
    if math.isnan(threshold):
        raise ImblabError(f"run {run_id} has no test_threshold metric nor threshold tag; re-run it")
    return RunScores(
        run_id=run_id,
        run_name=run.info.run_name or run_id,
        label=label,
        tags=dict(run.data.tags),
        params=dict(run.data.params),
        metrics=metrics,
        threshold=float(threshold),
        costs=Costs(**info.get("costs", {})),
        oof=oof,
        test=test,
    )


def load_sweep(
    experiment: str | None = None, sweep: str | None = None, tracking_uri: str | None = None
) -> Sweep:
    """The finished runs of a sweep, with their stored out-of-fold and test scores.

    ``sweep``: a sweep parent run id; ``"all"`` for every finished run of the experiment; None for
    the experiment's most recent sweep, or all its finished runs when it has no sweep. With a sweep
    id and no ``experiment``, the experiment is the parent run's. Raises ImblabError when the runs
    were not all scored on the same test rows (a paired comparison needs that).
    """
    uri = resolve_tracking_uri(tracking_uri)
    client = MlflowClient(uri)
    sweep_id: str | None = None
    if sweep and sweep != ALL_RUNS:
        parent = _sweep_parent(client, sweep)
        sweep_id = parent.info.run_id
        exp = (
            _experiment(client, uri, experiment)
            if experiment
            else client.get_experiment(parent.info.experiment_id)
        )
    else:
        exp = _experiment(client, uri, experiment or "imblab")
        if sweep is None:
            sweep_id = latest_sweep_id(client, exp.experiment_id)

    filters = [f"tags.`{TAG_ROLE}` = 'run'"]
    if sweep_id:
        filters.append(f"tags.`{TAG_SWEEP}` = '{sweep_id}'")
    candidates = client.search_runs(
        [exp.experiment_id], " and ".join(filters), max_results=5000, order_by=["attributes.start_time ASC"]
    )
    found = [r for r in candidates if r.info.status == "FINISHED"]
    if len(found) < len(candidates):
        log.warning(
            "leaving out %d run(s) that did not finish (FAILED, KILLED or still RUNNING)",
            len(candidates) - len(found),
        )
    if not found:
        where = f"sweep {sweep_id}" if sweep_id else f"experiment {exp.name!r}"
        if sweep_id and sweep is None:
            where = f"the latest sweep of experiment {exp.name!r} ({sweep_id})"
        raise ImblabError(
            f"{where} has no FINISHED training runs to compare; wait for the sweep to finish, "
            "check `imblab runs --all`, or pick another --sweep ID (or --sweep all) / --experiment"
        )

    labels = [_label(r.data.tags) for r in found]
    runs = []
    for run, label in zip(found, labels, strict=True):
        if labels.count(label) > 1:  # e.g. repeated runs in all-runs mode
            label = f"{label} [{run.info.run_id[:7]}]"
        runs.append(_load_run(uri, run, label))
    result = Sweep(exp.name, exp.experiment_id, sweep_id, uri, runs)
    check_same_test_set(result)
    return result


def check_same_test_set(sweep: Sweep) -> None:
    """Raise ImblabError unless every run was scored on the same data, split and test rows."""
    ref = sweep.runs[0]

    def identity(r: RunScores) -> tuple[str, ...]:
        return (r.tags.get("data_fingerprint", "?"), *(r.params.get(p, "?") for p in SPLIT_PARAMS))

    for other in sweep.runs[1:]:
        same_rows = (
            len(other.test) == len(ref.test)
            and np.array_equal(other.test["row"].to_numpy(), ref.test["row"].to_numpy())
            and np.array_equal(other.test["y_true"].to_numpy(), ref.test["y_true"].to_numpy())
        )
        if identity(other) == identity(ref) and same_rows:
            continue
        keys = ("data_fingerprint", *SPLIT_PARAMS)
        diffs = [
            f"{k}: {a} vs {b}" for k, a, b in zip(keys, identity(ref), identity(other), strict=True) if a != b
        ] or ["the stored test rows differ"]
        raise ImblabError(
            f"runs {ref.run_name!r} ({ref.run_id[:8]}) and {other.run_name!r} ({other.run_id[:8]}) were "
            f"tested on different test sets ({'; '.join(diffs)}), so a paired bootstrap comparison is "
            "meaningless. Compare the runs of one sweep (--sweep ID), or keep runs on other data or "
            "splits in their own experiment"
        )


# --------------------------------------------------------------------------------------------------
# Metrics on weighted (resampled) test sets, vectorised over resamples
# --------------------------------------------------------------------------------------------------


def bootstrap_indices(n: int, n_boot: int, seed: int) -> NDArray[np.int64]:
    """The resampled row positions, ``(n_boot, n)``: the scheme in the module docstring."""
    return np.concatenate(list(_index_chunks(n, n_boot, seed, n_boot)))


def _index_chunks(n: int, n_boot: int, seed: int, step: int) -> Iterator[NDArray[np.int64]]:
    """``bootstrap_indices`` in blocks of ``step`` resamples (the same numbers: one generator stream)."""
    rng = np.random.default_rng(seed)
    for start in range(0, n_boot, step):
        yield rng.integers(0, n, size=(min(step, n_boot - start), n))


def _weights(idx: NDArray[np.int64], n: int) -> NDArray[np.float64]:
    """How often each row was drawn in each resample: ``(len(idx), n)``."""
    flat = idx + (np.arange(idx.shape[0]) * n)[:, None]
    return np.bincount(flat.ravel(), minlength=idx.shape[0] * n).reshape(idx.shape[0], n).astype(np.float64)


def _ranking_metrics(
    y: NDArray[np.int64], s: NDArray[np.float64], w: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Average precision and ROC-AUC per weight row, as sklearn computes them (NaN with one class)."""
    order = np.argsort(-s, kind="stable")
    s_sorted, y_sorted, w_sorted = s[order], y[order], w[:, order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(s_sorted)), len(s) - 1]  # one threshold per distinct score
    tp = np.cumsum(w_sorted * y_sorted, axis=1)[:, last_of_tie]
    fp = np.cumsum(w_sorted * (1 - y_sorted), axis=1)[:, last_of_tie]
    pos, neg = tp[:, -1:], fp[:, -1:]
    recall = _safe_div(tp, pos)
    precision = _safe_div(tp, tp + fp)
    ap = (np.diff(recall, axis=1, prepend=0.0) * precision).sum(axis=1)
    tpr = np.pad(recall, ((0, 0), (1, 0)))
    fpr = np.pad(_safe_div(fp, neg), ((0, 0), (1, 0)))
    auc = (np.diff(fpr, axis=1) * (tpr[:, 1:] + tpr[:, :-1]) / 2).sum(axis=1)
    undefined = (pos[:, 0] == 0) | (neg[:, 0] == 0)
    ap[undefined] = np.nan
    auc[undefined] = np.nan
    return ap, auc


def weighted_metrics(
    y: NDArray[np.int64],
    s: NDArray[np.float64],
    threshold: float,
    costs: Costs,
    w: NDArray[np.float64],
    names: Iterable[str] = BOOT_METRICS,
) -> dict[str, NDArray[np.float64]]:
    """``BOOT_METRICS`` for each row of weights ``w`` (n_resamples, n_rows).

    With integer weights ``w[b]`` the values equal ``imblab.metrics.threshold_metrics`` on the rows
    repeated that often; a row of ones gives the metrics of the test set itself.
    """
    names = list(names)
    unknown = [m for m in names if m not in BOOT_METRICS]
    if unknown:
        raise ImblabError(f"cannot bootstrap metric(s) {unknown}; choose from {list(BOOT_METRICS)}")
    y = np.asarray(y, dtype=np.int64)
    s = np.asarray(s, dtype=np.float64)
    pred = s >= threshold
    tp = w @ (y * pred).astype(np.float64)
    fp = w @ ((1 - y) * pred).astype(np.float64)
    fn = w @ (y * ~pred).astype(np.float64)
    tn = w @ ((1 - y) * ~pred).astype(np.float64)
    n = tp + fp + fn + tn
    pos, neg = tp + fn, tn + fp
    recall, specificity = _safe_div(tp, pos), _safe_div(tn, neg)
    # Mean recall over the classes present, like sklearn's balanced_accuracy_score.
    balanced = np.where(
        (pos > 0) & (neg > 0), (recall + specificity) / 2, np.where(pos > 0, recall, specificity)
    )
    out: dict[str, NDArray[np.float64]] = {
        "brier": _safe_div(w @ (s - y) ** 2, n),
        "accuracy": _safe_div(tp + tn, n),
        "precision": _safe_div(tp, tp + fp),
        "recall": recall,
        "specificity": specificity,
        "f1": _safe_div(2 * tp, 2 * tp + fp + fn),
        "balanced_accuracy": balanced,
        "mcc": _safe_div(tp * tn - fp * fn, np.sqrt((tp + fp) * pos * neg * (tn + fn))),
        "g_mean": np.sqrt(recall * specificity),
        "expected_cost": _expected_cost(tn, fp, fn, tp, costs),
        "net_saving": _net_saving(tn, fp, fn, tp, costs),
    }
    if {"pr_auc", "roc_auc"} & set(names):  # the only costly ones: a sort and cumsums per resample
        out["pr_auc"], out["roc_auc"] = _ranking_metrics(y, s, w)
    return {m: out[m] for m in names}


# --------------------------------------------------------------------------------------------------
# The comparison
# --------------------------------------------------------------------------------------------------


@dataclass
class Comparison:
    """Bootstrap comparison of a sweep's runs; ``table`` has one row per run, best first."""

    sweep: Sweep
    metric: str  # ranking metric without prefix, e.g. "pr_auc"
    metrics: list[str]  # metrics with CIs in the table, ranking metric first
    n_boot: int
    seed: int
    best_run_id: str
    table: pd.DataFrame
    samples: dict[str, dict[str, NDArray[np.float64]]] = field(repr=False)  # run_id -> metric -> values

    @property
    def higher_is_better(self) -> bool:
        return self.metric not in LOWER_IS_BETTER


def parse_metric(metric: str) -> str:
    """``test_pr_auc`` (or ``pr_auc``) -> ``pr_auc``; anything not bootstrappable is a clear error."""
    name = metric.removeprefix("test_")
    if name not in BOOT_METRICS:
        raise ImblabError(
            f"--metric {metric!r} cannot be compared with bootstrap CIs on the test set; choose one of "
            f"{['test_' + m for m in BOOT_METRICS]}"
        )
    return name


def bootstrap_table(
    sweep: Sweep,
    metric: str = "test_pr_auc",
    n_boot: int = 1000,
    seed: int = 0,
    metrics: Sequence[str] = DEFAULT_METRICS,
) -> Comparison:
    """Test metrics with 95% percentile bootstrap CIs and a paired comparison against the best run.

    The best run is the one with the best test ``metric`` on the full test set. For every run the
    table gives, on the same resamples, the difference ``run - best`` with its 95% CI and
    ``p_beats_best``: the fraction of resamples in which the run is strictly better than the best.
    """
    key = parse_metric(metric)
    if isinstance(n_boot, bool) or not isinstance(n_boot, int) or n_boot < 1:
        raise ImblabError(f"--n-boot must be a positive integer, got {n_boot!r}")
    shown = list(dict.fromkeys([key, *(parse_metric(m) for m in metrics)]))
    y = sweep.y_test
    n = len(y)
    ones = np.ones((1, n))
    point = {
        r.run_id: {
            m: float(v[0])
            for m, v in weighted_metrics(y, _scores(r), r.threshold, r.costs, ones, shown).items()
        }
        for r in sweep.runs
    }
    samples: dict[str, dict[str, list[NDArray[np.float64]]]] = {
        r.run_id: {m: [] for m in shown} for r in sweep.runs
    }
    # Blocks of resamples bound memory on large test sets; the weights are shared by every run.
    for idx in _index_chunks(n, n_boot, seed, step=max(1, _MAX_CELLS // n)):
        w = _weights(idx, n)
        for r in sweep.runs:
            for m, v in weighted_metrics(y, _scores(r), r.threshold, r.costs, w, shown).items():
                samples[r.run_id][m].append(v)
    boot = {rid: {m: np.concatenate(v) for m, v in per.items()} for rid, per in samples.items()}

    sign = -1.0 if key in LOWER_IS_BETTER else 1.0
    # Stable sort on the sweep's run order, so ties (e.g. policies picking the same threshold) keep it.
    ranked = sorted(sweep.runs, key=lambda r: -sign * _nan_last(point[r.run_id][key], sign))
    best = ranked[0].run_id
    rows = []
    for rank, r in enumerate(ranked, start=1):
        row: dict[str, object] = {
            "rank": rank,
            "variant": r.label,
            "run_name": r.run_name,
            "run_id": r.run_id,
            "sampler": r.sampler,
            "model": r.model,
            "threshold_policy": r.policy,
            "tuning": r.tags.get("tuning", "none"),
            "threshold": r.threshold,
            "cv_pr_auc": r.metrics.get("cv_pr_auc", np.nan),
            "cv_pr_auc_fold_se": r.metrics.get("cv_pr_auc_fold_se", np.nan),
        }
        for m in shown:
            row[f"cv_{m}"] = r.metrics.get(f"cv_{m}", np.nan)
        for m in shown:
            lo, hi = percentile_ci(boot[r.run_id][m])
            row.update({f"test_{m}": point[r.run_id][m], f"test_{m}_lo": lo, f"test_{m}_hi": hi})
        diff = boot[r.run_id][key] - boot[best][key]
        row["diff_vs_best"] = point[r.run_id][key] - point[best][key]
        row.update(paired_stats(diff, sign, is_best=r.run_id == best))
        rows.append(row)
    return Comparison(sweep, key, shown, n_boot, seed, best, pd.DataFrame(rows), boot)


def paired_stats(diff: NDArray[np.float64], sign: float, is_best: bool) -> dict[str, object]:
    """CI of the per-resample difference to the best run and how often the run beats / ties it."""
    valid = diff[~np.isnan(diff)]
    lo, hi = percentile_ci(diff)
    # The best run cannot beat itself: NaN rather than a misleading 0.
    undefined = is_best or valid.size == 0
    return {
        "diff_vs_best_lo": lo,
        "diff_vs_best_hi": hi,
        "p_beats_best": math.nan if undefined else float(np.mean(sign * valid > 0)),
        "p_ties_best": math.nan if undefined else float(np.mean(valid == 0)),
        "is_best": is_best,
        "n_boot_valid": int(valid.size),
    }


def _scores(run: RunScores) -> NDArray[np.float64]:
    return run.test["score"].to_numpy(dtype=np.float64)


def _nan_last(value: float, sign: float) -> float:
    return -sign * math.inf if math.isnan(value) else value


def percentile_ci(values: NDArray[np.float64], level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of the finite values (NaN, NaN when there are none)."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return math.nan, math.nan
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(finite, [tail, 100 - tail])
    return float(lo), float(hi)


# --------------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------------


def default_output(sweep: Sweep) -> Path:
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", sweep.name)
    return Path("reports") / safe


def main(argv: Sequence[str]) -> int:
    """``imblab compare``: print the comparison table and write the report in every format."""
    from imblab import report  # matplotlib is only needed once the numbers are in

    p = argparse.ArgumentParser(
        prog="imblab compare",
        description="Compare a sweep's runs on the test set: 95% bootstrap CIs and a paired comparison "
        "with the best run. All formats are written to --output; --format picks what is printed.",
    )
    p.add_argument("--experiment", default=None, help="MLflow experiment (default: imblab, or the sweep's)")
    p.add_argument(
        "--sweep",
        default=None,
        help="sweep parent run id, or 'all' for every finished run (default: latest sweep)",
    )
    p.add_argument(
        "--metric", default="test_pr_auc", help="test metric that ranks the runs (default: test_pr_auc)"
    )
    p.add_argument(
        "--format",
        choices=("table", "markdown", "csv", "html"),
        default="table",
        help="what to print (html prints the report's path)",
    )
    p.add_argument(
        "-o",
        "--output",
        type=Path,
        default=None,
        help="report directory (default: reports/<experiment>-<sweep>)",
    )
    p.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples (default: 1000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the resamples (default: 0)")
    p.add_argument("--tracking-uri", default=None, help="default: $MLFLOW_TRACKING_URI or ./mlruns/mlflow.db")
    p.add_argument("--no-log", action="store_true", help="do not log the report on the sweep's parent run")
    args = p.parse_args(list(argv))
    parse_metric(args.metric)  # fail before any download
    if args.n_boot < 1:
        raise ImblabError(f"--n-boot must be a positive integer, got {args.n_boot}")

    sweep = load_sweep(args.experiment, args.sweep, args.tracking_uri)
    comparison = bootstrap_table(sweep, args.metric, n_boot=args.n_boot, seed=args.seed)
    out = args.output or default_output(sweep)
    files = report.write_report(comparison, out)
    logged = None if args.no_log else report.log_report(comparison, out)
    if args.format == "html":
        print(files["html"])
    else:
        print(files[args.format].read_text(), end="")
    where = f"; logged on sweep run {logged} under report/" if logged else ""
    log.info("report written to %s%s", out, where)
    return 0
