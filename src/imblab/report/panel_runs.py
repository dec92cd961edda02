"""Which ``imblab panel`` runs a comparison covers, and their stored test predictions, read from MLflow.

A selection is the FINISHED panel runs of one ``-m`` sweep (the default: the experiment's latest sweep),
of the whole experiment (``--sweep all``: e.g. a baseline run and a separately launched tuned run), or one
panel run on its own (``--sweep RUN_ID``: e.g. a tuning run). Only training runs count: Optuna trials are
nested runs with their own role and are never variants. Every run must have been scored on the same test
examples (same persons, waves and targets), or the paired person bootstrap is meaningless.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from mlflow.entities import Experiment, Run
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

from imblab.errors import ImblabError
from imblab.report.comparison import ALL_RUNS, latest_sweep_id
from imblab.report.variants import LoggedRun, newest_per_variant
from imblab.tracking.artifacts import read_panel_decision, read_panel_predictions
from imblab.tracking.layout import (
    PANEL_TEST_PREDICTIONS,
    ROLE_RUN,
    ROLE_SWEEP,
    ROLE_TRIAL,
    TAG_ROLE,
    TAG_STUDY,
    TAG_SWEEP,
    TAG_TRIAL_NUMBER,
    TAG_WORKLOAD,
    WORKLOAD_PANEL,
)
from imblab.tracking.store import client_for, find_experiment
from imblab.tracking.sweeps import SweepProgress, sweep_progress

log = logging.getLogger(__name__)

PANEL_RUN = f"tags.`{TAG_ROLE}` = '{ROLE_RUN}' and tags.`{TAG_WORKLOAD}` = '{WORKLOAD_PANEL}'"
FLOOR_MODEL = "persistence"  # this year = last year: the floor every panel model must beat
# Params that decide which test examples a run is scored on (the person split runs on the built examples).
TEST_SET_PARAMS = ("data.", "split.", "max_len")
# Model params that describe the run rather than the model (shown nowhere in the parameter table).
_NOT_KEY_PARAMS = ("_target_", "name", "seed", "n_threads")
_HISTORY = ("train_loss", "val_loss")


@dataclass
class PanelRun(LoggedRun):
    """One panel training run ("model · class_balance · decision[ · tuned]") with its test predictions,
    sorted by (person, time)."""

    class_names: list[str]  # in class order (decision.json)
    offsets: dict[str, float]  # the decision's per-class logit offsets (0 for argmax)
    predictions: pd.DataFrame  # person, time, y_wage, y_class, wage, class (+ prob_*)
    history: dict[str, list[float]] = field(default_factory=dict)  # per epoch (recurrent models)
    borrowed: bool = False  # a persistence floor from elsewhere in the experiment: shown, never ranked
    start_time: int = 0  # ms since the epoch (the ranking rule's late tie-break)

    @property
    def tuned(self) -> bool:
        return _is_tuned(self.tags, self.params)

    @property
    def best_params(self) -> dict[str, str]:
        return {
            k.removeprefix("best_params."): v for k, v in self.params.items() if k.startswith("best_params.")
        }

    @property
    def model_params(self) -> dict[str, str]:
        """The model's configured parameters (for a tuned run, ``best_params`` replace the searched ones)."""
        params = {
            k.removeprefix("model."): v
            for k, v in self.params.items()
            if k.startswith("model.") and not k.startswith("model.search_space.")
        }
        return {k: v for k, v in params.items() if k not in _NOT_KEY_PARAMS} | self.best_params

    def codes(self, column: str) -> np.ndarray:
        """Class codes (0..K-1) of the ``y_class`` or ``class`` column."""
        index = {c: i for i, c in enumerate(self.class_names)}
        values = self.predictions[column].astype(str)
        unknown = sorted(set(values) - set(index))
        if unknown:
            raise ImblabError(
                f"run {self.run_id}: {PANEL_TEST_PREDICTIONS} has classes {unknown} that its decision.json "
                f"does not list ({self.class_names}); it was not written by this imblab: re-run it"
            )
        return values.map(index).to_numpy(dtype=np.int64)


@dataclass
class PanelSelection:
    """The runs compared; ``sweep_id`` is the run the report is logged on (a sweep parent, or the one run
    compared); None for ``--sweep all``. Named like the binary ``Sweep``, so the report file helpers apply.
    """

    experiment: str
    experiment_id: str
    sweep_id: str | None
    tracking_uri: str
    runs: list[PanelRun]
    source: str  # what was selected, in words
    progress: SweepProgress | None = None  # how far the sweep got; None for --sweep all or one run
    reruns_left_out: int = 0  # older runs of a variant that was run again (--sweep all)

    @property
    def name(self) -> str:
        return f"{self.experiment}-{self.sweep_id or ALL_RUNS}"

    @property
    def state(self) -> str:
        """As a binary ``Sweep``'s: complete, partial (still running), incomplete, or all runs."""
        p = self.progress
        return (
            "all runs"
            if p is None
            else "complete"
            if p.complete
            else "partial"
            if p.running
            else "incomplete"
        )

    @property
    def candidates(self) -> list[PanelRun]:
        return [r for r in self.runs if not r.borrowed]


def _get_run(client: MlflowClient, run_id: str) -> Run | None:
    try:
        return client.get_run(run_id)
    except MlflowException:
        return None


def is_panel_selection(experiment: str | None, sweep: str | None, tracking_uri: str | None) -> bool:
    """Whether ``imblab compare`` with these arguments selects panel runs (no download, a query or two).

    Anything unclear is False, so the binary comparison reports unknown runs and experiments as before.
    """
    client = client_for(tracking_uri)
    if sweep and sweep != ALL_RUNS:
        run = _get_run(client, sweep)
        if run is None:
            return False
        tags = run.data.tags
        if tags.get(TAG_ROLE) == ROLE_TRIAL and MLFLOW_PARENT_RUN_ID in tags:
            parent = _get_run(client, tags[MLFLOW_PARENT_RUN_ID])
            return parent is not None and parent.data.tags.get(TAG_WORKLOAD) == WORKLOAD_PANEL
        if tags.get(TAG_ROLE) == ROLE_SWEEP:
            return _has_panel_runs(client, run.info.experiment_id, sweep)
        return tags.get(TAG_WORKLOAD) == WORKLOAD_PANEL
    exp = client.get_experiment_by_name(experiment or "imblab")
    if exp is None:
        return False
    sweep_id = latest_sweep_id(client, exp.experiment_id) if sweep is None else None
    return _has_panel_runs(client, exp.experiment_id, sweep_id)


def _has_panel_runs(client: MlflowClient, experiment_id: str, sweep_id: str | None) -> bool:
    query = PANEL_RUN + (f" and tags.`{TAG_SWEEP}` = '{sweep_id}'" if sweep_id else "")
    return bool(client.search_runs([experiment_id], query, max_results=1))


def load_panel_runs(
    experiment: str | None = None,
    sweep: str | None = None,
    tracking_uri: str | None = None,
    partial: bool = False,
    keep_reruns: bool = False,
) -> PanelSelection:
    """The selected FINISHED panel runs with their test predictions (see the module docstring).

    As for binary runs (``imblab.report.comparison.load_sweep``): a sweep still running raises ImblabError
    unless ``partial``; of several runs of one variant only the newest is kept unless ``keep_reruns``.
    Without a persistence run among them, the latest FINISHED persistence run of the experiment scored on
    the same test examples joins as the floor (``borrowed``: shown, not ranked). Raises ImblabError when the
    runs were not scored on the same test examples.
    """
    client = client_for(tracking_uri)
    selection, found = _select(client, experiment, sweep, partial)
    if not keep_reruns:
        found, selection.reruns_left_out = newest_per_variant(found)
    labels = [run_label(r) for r in found]
    for run, label in zip(found, labels, strict=True):
        if labels.count(label) > 1:  # e.g. the same configuration run twice, kept with --all-runs
            label = f"{label} #{labels[: len(selection.runs) + 1].count(label)}"
        selection.runs.append(_load_run(client, run, label))
    _check_same_test_examples(selection.runs)
    if not any(r.model == FLOOR_MODEL for r in selection.runs):
        floor = _borrowed_floor(client, selection.experiment_id, selection.runs[0])
        selection.runs += [floor] if floor else []
    return selection


def _select(
    client: MlflowClient, experiment: str | None, sweep: str | None, partial: bool
) -> tuple[PanelSelection, list[Run]]:
    """The selection (no runs loaded yet) and its FINISHED panel runs, oldest first."""
    parent: Run | None = None
    if sweep and sweep != ALL_RUNS:
        run = _get_run(client, sweep)
        if run is None:
            raise ImblabError(f"no run {sweep!r} in the tracking store; pass a sweep or panel run id")
        exp = (
            find_experiment(client, experiment)
            if experiment
            else client.get_experiment(run.info.experiment_id)
        )
        role = run.data.tags.get(TAG_ROLE)
        if role == ROLE_TRIAL:
            parent_id, number = (
                run.data.tags.get(MLFLOW_PARENT_RUN_ID, "?"),
                run.data.tags.get(TAG_TRIAL_NUMBER),
            )
            raise ImblabError(
                f"run {sweep} is Optuna trial {number} of run {parent_id}; "
                f"trials are not variants to compare: pass --sweep {parent_id} (the tuned run)"
            )
        if role != ROLE_SWEEP:
            if run.info.status != "FINISHED":
                raise ImblabError(f"run {sweep} is {run.info.status}, not FINISHED: nothing to compare yet")
            return _empty(client, exp, sweep, f"run {sweep}"), [run]
        parent = run
    else:
        exp = find_experiment(client, experiment or "imblab")
        latest = latest_sweep_id(client, exp.experiment_id) if sweep is None else None
        parent = client.get_run(latest) if latest else None
    if parent is None:
        found = _finished(client, exp, None, f"experiment {exp.name!r}")
        return _empty(client, exp, None, "all finished panel runs"), found
    sweep_id = parent.info.run_id
    progress = sweep_progress(client, parent)
    if progress.running and not partial:
        raise ImblabError(
            f"sweep {sweep_id} is still running ({progress.finished} of {progress.expected} children "
            "finished); rerun when it ends or pass --partial"
        )
    found = _finished(
        client, exp, sweep_id, f"sweep {sweep_id}" if sweep else f"the latest sweep ({sweep_id})"
    )
    return _empty(client, exp, sweep_id, f"sweep {sweep_id}", progress), found


def _empty(
    client: MlflowClient,
    exp: Experiment,
    log_on: str | None,
    source: str,
    progress: SweepProgress | None = None,
) -> PanelSelection:
    return PanelSelection(exp.name, exp.experiment_id, log_on, client.tracking_uri, [], source, progress)


def _finished(client: MlflowClient, exp: Experiment, sweep_id: str | None, where: str) -> list[Run]:
    query = PANEL_RUN + (f" and tags.`{TAG_SWEEP}` = '{sweep_id}'" if sweep_id else "")
    candidates = client.search_runs(
        [exp.experiment_id], query, max_results=5000, order_by=["attributes.start_time ASC"]
    )
    found = [r for r in candidates if r.info.status == "FINISHED"]
    if len(found) < len(candidates):
        log.warning(
            "leaving out %d panel run(s) that did not finish (FAILED, KILLED or still RUNNING)",
            len(candidates) - len(found),
        )
    if not found:
        raise ImblabError(
            f"{where} has no FINISHED panel runs to compare; wait for them to "
            "finish, check `imblab runs --experiment ...`, or pick another --sweep ID (or --sweep all)"
        )
    return found


def run_label(run: Run) -> str:
    """``model · class_balance · decision``, `` · tuned`` for a tuned run."""
    tags, params = run.data.tags, run.data.params
    parts = [tags.get("model", "?"), tags.get("class_balance", "?"), tags.get("decision", "?")]
    return " · ".join(parts + (["tuned"] if _is_tuned(tags, params) else []))


def _is_tuned(tags: dict[str, str], params: dict[str, str]) -> bool:
    """A run that ran an Optuna study (its best parameters refitted), by its study tag or its config."""
    return TAG_STUDY in tags or params.get("tuning.enabled", "False").lower() == "true"


def _load_run(client: MlflowClient, run: Run, label: str, borrowed: bool = False) -> PanelRun:
    decision = read_panel_decision(run)
    offsets = {str(k): float(v) for k, v in (decision.get("offsets") or {}).items()}
    frame = read_panel_predictions(run).sort_values(["person", "time"], kind="stable").reset_index(drop=True)
    metrics = dict(run.data.metrics)
    history: dict[str, list[float]] = {}
    if "epochs_run" in metrics:  # recurrent models log a history; steps beyond it are the final model's
        n = int(metrics["epochs_run"])
        for key in _HISTORY:
            points = sorted(client.get_metric_history(run.info.run_id, key), key=lambda m: m.step)
            history[key] = [m.value for m in points if m.step < n]
    return PanelRun(
        **LoggedRun.fields_of(run, label),
        class_names=list(offsets),
        offsets=offsets,
        predictions=frame,
        history=history,
        borrowed=borrowed,
        start_time=int(run.info.start_time or 0),
    )


def _test_set_difference(ref: PanelRun, other: PanelRun) -> str | None:
    """None when both runs were scored on the same test examples; otherwise what differs, in words."""
    keys = ["person", "time", "y_wage", "y_class"]
    a, b = ref.predictions, other.predictions
    same = (
        ref.class_names == other.class_names
        and len(a) == len(b)
        and all(np.array_equal(a[k].to_numpy(), b[k].to_numpy()) for k in keys)
    )
    if same:
        return None
    params = sorted({k for k in (*ref.params, *other.params) if k.startswith(TEST_SET_PARAMS)})
    diffs = [
        f"{k}: {ref.params.get(k, '-')} vs {other.params.get(k, '-')}"
        for k in params
        if ref.params.get(k) != other.params.get(k)
    ]
    if ref.class_names != other.class_names:
        diffs.append(f"classes {ref.class_names} vs {other.class_names}")
    if not diffs:
        diffs = [
            f"{len(a)} vs {len(b)} test examples of {a['person'].nunique()} vs {b['person'].nunique()} "
            "persons"
            if len(a) != len(b)
            else "the stored test examples differ"
        ]
    return "; ".join(diffs)


def _check_same_test_examples(runs: list[PanelRun]) -> None:
    ref = runs[0]
    for other in runs[1:]:
        diff = _test_set_difference(ref, other)
        if diff is not None:
            raise ImblabError(
                f"runs {ref.run_name!r} ({ref.run_id[:8]}) and {other.run_name!r} ({other.run_id[:8]}) were "
                f"not scored on the same test examples ({diff}), so a paired bootstrap over test persons is "
                "meaningless. Compare the runs of one sweep (--sweep ID), or keep runs on other data, "
                "split or max_len in their own experiment (tracking.experiment=...)"
            )


def _borrowed_floor(client: MlflowClient, experiment_id: str, ref: PanelRun) -> PanelRun | None:
    """The latest FINISHED persistence run of the experiment on ``ref``'s test examples, if any."""
    query = f"{PANEL_RUN} and tags.model = '{FLOOR_MODEL}' and attributes.status = 'FINISHED'"
    for run in client.search_runs(
        [experiment_id], query, max_results=10, order_by=["attributes.start_time DESC"]
    ):
        try:
            floor = _load_run(client, run, f"{run_label(run)} (floor)", borrowed=True)
        except ImblabError:
            continue
        if _test_set_difference(ref, floor) is None:
            return floor
    return None
