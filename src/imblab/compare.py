"""``imblab compare``: a sweep's variants side by side, with bootstrap CIs and a paired comparison.

Every run of a sweep is scored on the same test rows, so the rows are resampled *once* and the same
resamples are reused for every variant: differences between variants are then paired, and the
fraction of resamples in which a variant beats the best run says whether a gap is more than noise.

The resampling scheme and the vectorised metrics are in :mod:`imblab.metrics.bootstrap`; this module
loads a sweep's runs and their stored scores from MLflow, builds the comparison table and runs the CLI.
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
from collections.abc import Iterator, Sequence
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
from imblab.metrics.bootstrap import (
    index_chunks,
    paired_stats,
    percentile_ci,
    resample_weights,
    weighted_metrics,
)
from imblab.metrics.costs import Costs
from imblab.metrics.names import METRICS, bootstrap_metric
from imblab.runner import OOF_SCORES, TEST_SCORES, THRESHOLD_JSON
from imblab.tracking import TAG_ROLE, TAG_SWEEP, resolve_tracking_uri

log = logging.getLogger(__name__)

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
        return METRICS[self.metric].higher_is_better


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
    key = bootstrap_metric(metric).base
    if isinstance(n_boot, bool) or not isinstance(n_boot, int) or n_boot < 1:
        raise ImblabError(f"--n-boot must be a positive integer, got {n_boot!r}")
    shown = list(dict.fromkeys([key, *(bootstrap_metric(m).base for m in metrics)]))
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
    for idx in index_chunks(n, n_boot, seed, step=max(1, _MAX_CELLS // n)):
        w = resample_weights(idx, n)
        for r in sweep.runs:
            for m, v in weighted_metrics(y, _scores(r), r.threshold, r.costs, w, shown).items():
                samples[r.run_id][m].append(v)
    boot = {rid: {m: np.concatenate(v) for m, v in per.items()} for rid, per in samples.items()}

    sign = 1.0 if METRICS[key].higher_is_better else -1.0
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


def _scores(run: RunScores) -> NDArray[np.float64]:
    return run.test["score"].to_numpy(dtype=np.float64)


def _nan_last(value: float, sign: float) -> float:
    return -sign * math.inf if math.isnan(value) else value


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
    bootstrap_metric(args.metric)  # fail before any download
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
