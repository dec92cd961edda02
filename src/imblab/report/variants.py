"""What a variant is: the configuration that tells training runs apart, and the label it is shown by.

Two runs are the same variant when they were trained on the same data with the same configuration:
their logged params, less those that only say where things are kept or how fast they ran (tracking,
cache, parallelism, where the data files live) and less results (tuned best params). Rerunning a
sweep therefore repeats its variants, and a comparison of every run keeps the newest of each.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mlflow.entities import Run

from imblab.tracking.layout import TAG_DATA_FINGERPRINT

IGNORED_PREFIXES = ("tracking.", "cache.", "best_params.")
IGNORED_PARAMS = frozenset({"cv.n_jobs", "data.dir"})

Identity = tuple[str, tuple[tuple[str, str], ...]]


@dataclass
class LoggedRun:
    """What every compared training run carries from MLflow (binary ``RunScores``, panel ``PanelRun``)."""

    run_id: str
    run_name: str
    label: str  # the variant's label, unique within a comparison
    tags: dict[str, str]
    params: dict[str, str]
    metrics: dict[str, float]  # as logged (cv_*, test_*, rcv_*, val_*, ...)

    @property
    def model(self) -> str:
        return self.tags.get("model", "?")

    @staticmethod
    def fields_of(run: Run, label: str) -> dict[str, Any]:
        """The base fields as MLflow logged them, for a subclass's constructor."""
        return {
            "run_id": run.info.run_id,
            "run_name": run.info.run_name or run.info.run_id,
            "label": label,
            "tags": dict(run.data.tags),
            "params": dict(run.data.params),
            "metrics": dict(run.data.metrics),
        }


def base_label(tags: dict[str, str]) -> str:
    """'sampler × model × policy', with ' (tuned)' for a tuned run."""
    tuned = " (tuned)" if tags.get("tuning", "none") not in ("none", "") else ""
    return (
        f"{tags.get('sampler', '?')} × {tags.get('model', '?')} × {tags.get('threshold_policy', '?')}{tuned}"
    )


def config_params(run: Run) -> dict[str, str]:
    """The params that define the run's variant."""
    return {
        k: v
        for k, v in run.data.params.items()
        if k not in IGNORED_PARAMS and not k.startswith(IGNORED_PREFIXES)
    }


def identity(run: Run) -> Identity:
    return run.data.tags.get(TAG_DATA_FINGERPRINT, "?"), tuple(sorted(config_params(run).items()))


def newest_per_variant(runs: Sequence[Run]) -> tuple[list[Run], int]:
    """The newest run of each variant (``runs`` oldest first, kept in that order) and how many older
    runs of a variant were left out."""
    newest = {identity(r): r for r in runs}  # later runs overwrite earlier ones
    kept = {id(r) for r in newest.values()}
    return [r for r in runs if id(r) in kept], len(runs) - len(newest)


def labels(runs: Sequence[Run]) -> list[str]:
    """A unique label per run: its base label, then the params in which the runs sharing that base
    label differ (e.g. ``none × lgbm × min_cost (threshold.cost_fn=20)``), then the run id if none."""
    bases = [base_label(r.data.tags) for r in runs]
    params = [config_params(r) for r in runs]
    groups: dict[str, list[dict[str, str]]] = {}
    for base, own in zip(bases, params, strict=True):
        groups.setdefault(base, []).append(own)
    differing = {
        base: sorted(k for k in {k for p in group for k in p} if len({p.get(k) for p in group}) > 1)
        for base, group in groups.items()
    }
    out = []
    for base, own in zip(bases, params, strict=True):
        shown = ", ".join(f"{k}={own.get(k, '-')}" for k in differing[base])
        out.append(f"{base} ({shown})" if shown else base)
    counts = Counter(out)
    return [
        f"{label} [{run.info.run_id[:7]}]" if counts[label] > 1 else label
        for label, run in zip(out, runs, strict=True)
    ]
