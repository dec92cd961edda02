"""Which runs a comparison covers, and their stored scores: a sweep's finished children, or every
finished training run of an experiment (the newest of each variant, ``imblab.report.variants``).

A sweep that is still running is compared only on request (``partial``); one that ended before every
job finished is compared, marked incomplete, with its unfinished job runs listed.

Runs are paired, so they must share what they were scored on: the same test rows under a holdout
(``check_same_test_set``), the same outer folds under repeated CV (``check_same_folds``: evaluation seed,
repeats, folds, data fingerprint and every fold's sizes). A mixture of the two protocols is refused.
Nothing is downloaded before the metric has been checked against the runs' protocol.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from mlflow.entities import Run
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from numpy.typing import NDArray

from imblab.errors import ImblabError
from imblab.metrics.costs import Costs
from imblab.metrics.ranking import HOLDOUT, REPEATED_CV, protocol_of
from imblab.report.variants import LoggedRun, labels, newest_per_variant
from imblab.tracking.artifacts import read_rcv_folds, read_scores, read_threshold
from imblab.tracking.evaluation import fold_differences
from imblab.tracking.layout import ROLE_RUN, ROLE_SWEEP, TAG_DATA_FINGERPRINT, TAG_ROLE, TAG_SWEEP
from imblab.tracking.store import client_for, find_experiment
from imblab.tracking.sweeps import SweepProgress, sweep_progress

log = logging.getLogger(__name__)

SPLIT_PARAMS = ("split.kind", "split.test_size", "split.seed")
ALL_RUNS = "all"


# --------------------------------------------------------------------------------------------------
# Loading a sweep from MLflow
# --------------------------------------------------------------------------------------------------


@dataclass
class RunScores(LoggedRun):
    """One training run ("sampler × model × policy") with the stored scores the comparison is computed
    from."""

    threshold: float  # the frozen decision threshold
    costs: Costs  # the costs this run reports expected cost / net saving under
    start_time: int = 0  # ms since the epoch (the ranking rule's late tie-break)
    oof: pd.DataFrame | None = None  # holdout: out-of-fold training scores: row, fold, y_true, score
    test: pd.DataFrame | None = None  # holdout: test scores: row, y_true, score, decision
    folds: pd.DataFrame | None = None  # repeated CV: one row per outer fold (step, sizes, metrics)

    @property
    def sampler(self) -> str:
        return self.tags.get("sampler", "?")

    @property
    def policy(self) -> str:
        return self.tags.get("threshold_policy", "?")

    @property
    def protocol(self) -> str:
        return protocol_of(self.tags)


@dataclass
class Sweep:
    """The runs compared: the finished children of one sweep, or all finished runs of an experiment."""

    experiment: str
    experiment_id: str
    sweep_id: str | None  # the parent run id; None when comparing all runs of the experiment
    tracking_uri: str
    runs: list[RunScores]
    progress: SweepProgress | None = None  # how far the sweep got; None when comparing all runs
    reruns_left_out: int = 0  # older runs of a variant that was run again

    @property
    def name(self) -> str:
        return f"{self.experiment}-{self.sweep_id or ALL_RUNS}"

    @property
    def state(self) -> str:
        """'complete'; 'partial' (still running: the runs finished so far); 'incomplete' (it ended
        before every job finished); 'all runs' when comparing the experiment's finished runs."""
        if self.progress is None:
            return "all runs"
        if self.progress.complete:
            return "complete"
        return "partial" if self.progress.running else "incomplete"

    @property
    def protocol(self) -> str:
        """``holdout`` or ``repeated_cv``: the same for every run (``load_sweep`` refuses a mixture)."""
        return self.runs[0].protocol

    @property
    def y_test(self) -> NDArray[np.int64]:
        return self.runs[0].test["y_true"].to_numpy(dtype=np.int64)

    def run(self, run_id: str) -> RunScores:
        return next(r for r in self.runs if r.run_id == run_id)


def latest_sweep_id(client: MlflowClient, experiment_id: str) -> str | None:
    """The most recently started sweep parent run of the experiment, if any."""
    parents = client.search_runs(
        [experiment_id],
        f"tags.`{TAG_ROLE}` = '{ROLE_SWEEP}'",
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
    if role != ROLE_SWEEP:
        hint = f" it belongs to sweep {parent.data.tags[TAG_SWEEP]}." if TAG_SWEEP in parent.data.tags else ""
        raise ImblabError(
            f"run {sweep_id} is not a sweep parent ({TAG_ROLE}={role!r});{hint} "
            "Pass the parent run id of an `imblab train -m` sweep, or --sweep all"
        )
    return parent


def _load_run(run: Run, label: str) -> RunScores:
    """The run's stored scores: test and out-of-fold under a holdout, the outer-fold table under
    repeated CV."""
    scores: dict[str, pd.DataFrame] = {}
    if protocol_of(run.data.tags) == REPEATED_CV:
        scores["folds"] = read_rcv_folds(run)
    else:
        scores["oof"], scores["test"] = read_scores(run)
    costs = read_threshold(run).get("costs", {})
    metrics = dict(run.data.metrics)
    # The logged metric keeps full float precision; the tag is a 6-digit rendering of it.
    threshold = metrics.get("test_threshold", metrics.get("cv_threshold"))
    threshold = float(run.data.tags.get("threshold", "nan")) if threshold is None else threshold
    if math.isnan(threshold):
        raise ImblabError(f"run {run.info.run_id} has no threshold metric nor threshold tag; re-run it")
    return RunScores(
        **LoggedRun.fields_of(run, label),
        threshold=float(threshold),
        costs=Costs(**costs),
        start_time=int(run.info.start_time or 0),
        **scores,
    )


def load_sweep(
    experiment: str | None = None,
    sweep: str | None = None,
    tracking_uri: str | None = None,
    partial: bool = False,
    keep_reruns: bool = False,
    check_metric: Callable[[str], object] | None = None,
) -> Sweep:
    """The finished runs of a sweep, with their stored out-of-fold and test scores.

    ``sweep``: a sweep parent run id; ``"all"`` for every finished run of the experiment; None for
    the experiment's most recent sweep, or all its finished runs when it has no sweep. With a sweep
    id and no ``experiment``, the experiment is the parent run's. A sweep still running raises
    ImblabError unless ``partial``. Of several runs of one variant only the newest is kept unless
    ``keep_reruns``. ``check_metric(protocol)`` (e.g. the ranking rule) runs before any download.
    Raises ImblabError when the runs mix protocols, or were not all scored on the same test rows / outer
    folds (a paired comparison needs that).
    """
    client = client_for(tracking_uri)
    sweep_id: str | None = None
    parent: Run | None = None
    if sweep and sweep != ALL_RUNS:
        parent = _sweep_parent(client, sweep)
        sweep_id = parent.info.run_id
        exp = (
            find_experiment(client, experiment)
            if experiment
            else client.get_experiment(parent.info.experiment_id)
        )
    else:
        exp = find_experiment(client, experiment or "imblab")
        if sweep is None:
            sweep_id = latest_sweep_id(client, exp.experiment_id)
            parent = client.get_run(sweep_id) if sweep_id else None
    progress = sweep_progress(client, parent) if parent else None
    if progress and progress.running and not partial:
        raise ImblabError(
            f"sweep {sweep_id} is still running ({progress.finished} of {progress.expected} children "
            "finished); rerun when it ends or pass --partial"
        )

    filters = [f"tags.`{TAG_ROLE}` = '{ROLE_RUN}'"]
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
    found, reruns = (found, 0) if keep_reruns else newest_per_variant(found)
    if reruns:
        log.info("leaving out %d older run(s) of variants run again (--all-runs keeps them)", reruns)
    if not found:
        where = f"sweep {sweep_id}" if sweep_id else f"experiment {exp.name!r}"
        if sweep_id and sweep is None:
            where = f"the latest sweep of experiment {exp.name!r} ({sweep_id})"
        raise ImblabError(
            f"{where} has no FINISHED training runs to compare; wait for the sweep to finish, "
            "check `imblab runs --all`, or pick another --sweep ID (or --sweep all) / --experiment"
        )

    protocol = check_same_protocol(found)
    if check_metric is not None:
        check_metric(protocol)
    runs = [_load_run(run, label) for run, label in zip(found, labels(found), strict=True)]
    result = Sweep(exp.name, exp.experiment_id, sweep_id, client.tracking_uri, runs, progress, reruns)
    (check_same_folds if protocol == REPEATED_CV else check_same_test_set)(result)
    return result


def check_same_protocol(runs: list[Run]) -> str:
    """The runs' protocol (holdout or repeated_cv); a clear error when they mix the two."""
    by = {protocol_of(r.data.tags): r for r in runs}
    if len(by) == 1:
        return next(iter(by))
    rcv, holdout = by[REPEATED_CV], by[HOLDOUT]
    raise ImblabError(
        f"runs {rcv.info.run_name!r} ({rcv.info.run_id[:8]}, evaluation=repeated_cv) and "
        f"{holdout.info.run_name!r} ({holdout.info.run_id[:8]}, evaluation=holdout) were evaluated by "
        "different protocols: repeated CV has no test set and a holdout run no outer folds, so they cannot "
        "be paired. Compare one sweep (--sweep ID), keep each protocol in its own experiment "
        "(tracking.experiment=...), or retrain the holdout variants with evaluation=repeated_cv"
    )


def check_same_folds(sweep: Sweep) -> None:
    """Raise ImblabError unless every repeated-CV run was scored on the same outer folds."""
    ref = sweep.runs[0]
    for other in sweep.runs[1:]:
        diffs = fold_differences((ref.tags, ref.params, ref.folds), (other.tags, other.params, other.folds))
        if diffs:
            raise ImblabError(
                f"runs {ref.run_name!r} ({ref.run_id[:8]}) and {other.run_name!r} ({other.run_id[:8]}) were "
                f"evaluated on different outer folds ({'; '.join(diffs)}), so a fold-by-fold paired "
                "comparison is meaningless. Compare the runs of one sweep (--sweep ID), or rerun the variants"
                " with the same evaluation.seed, evaluation.repeats and evaluation.folds on the same data"
            )


def check_same_test_set(sweep: Sweep) -> None:
    """Raise ImblabError unless every run was scored on the same data, split and test rows."""
    ref = sweep.runs[0]

    def identity(r: RunScores) -> tuple[str, ...]:
        return (r.tags.get(TAG_DATA_FINGERPRINT, "?"), *(r.params.get(p, "?") for p in SPLIT_PARAMS))

    for other in sweep.runs[1:]:
        same_rows = (
            len(other.test) == len(ref.test)
            and np.array_equal(other.test["row"].to_numpy(), ref.test["row"].to_numpy())
            and np.array_equal(other.test["y_true"].to_numpy(), ref.test["y_true"].to_numpy())
        )
        if identity(other) == identity(ref) and same_rows:
            continue
        keys = (TAG_DATA_FINGERPRINT, *SPLIT_PARAMS)
        diffs = [
            f"{k}: {a} vs {b}" for k, a, b in zip(keys, identity(ref), identity(other), strict=True) if a != b
        ] or ["the stored test rows differ"]
        raise ImblabError(
            f"runs {ref.run_name!r} ({ref.run_id[:8]}) and {other.run_name!r} ({other.run_id[:8]}) were "
            f"tested on different test sets ({'; '.join(diffs)}), so a paired bootstrap comparison is "
            "meaningless. Compare the runs of one sweep (--sweep ID), or keep runs on other data or "
            "splits in their own experiment"
        )
