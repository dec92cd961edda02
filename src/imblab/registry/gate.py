"""The champion/challenger gate, as pure rules: no MLflow, no I/O, testable on plain numbers.

``imblab promote`` registers the best run's model as ``challenger`` and moves ``champion`` to it only
when it beats the current champion by a minimum improvement. Both models are scored on the *same*
rows (the challenger run's test rows), which is only honest if those rows were test rows for the
champion too: ``comparability_problem`` says when they may not be, and ``comparable`` refuses such a
comparison unless forced (the decision then records it). ``Decision.tags()`` is what goes onto the
challenger version, so the registry itself tells why an alias moved or did not.

The rule is the same for every workload (binary runs of ``imblab train``, panel runs of ``imblab panel``):
only the metrics differ, and a ``Decision`` carries which ones it shows (``shown``). A tie never moves the
champion: with a minimum improvement of 0 (the default) the challenger must be strictly better, so two
promotions of equal models cannot flip the alias back and forth.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from imblab.errors import ImblabError
from imblab.metrics.names import ranking_metric

log = logging.getLogger(__name__)

CHAMPION = "champion"
CHALLENGER = "challenger"
DEFAULT_MODEL_NAME = "secom-defects"

# Metrics of both models recorded as version tags and printed next to the gate metric (binary workload).
SUMMARY_METRICS = ("pr_auc", "roc_auc", "recall", "precision", "f1", "expected_cost", "net_saving")
BINARY_SHOWN = (*SUMMARY_METRICS, "threshold")
# Below this, an improvement is float noise: a tie.
TIE = 1e-12

# Outcomes
FIRST_CHAMPION = "first_champion"
PROMOTED = "promoted"
REJECTED = "rejected"
ALREADY_CHAMPION = "already_champion"


def metric_direction(metric: str) -> tuple[str, bool]:
    """``(base metric, higher_is_better)`` of a ``cv_*`` / ``test_*`` ranking metric, or a clear error."""
    parsed = ranking_metric(metric)
    return parsed.base, parsed.higher_is_better


# --------------------------------------------------------------------------------------------------
# Ranking candidates
# --------------------------------------------------------------------------------------------------


class Ranked(Protocol):
    @property
    def value(self) -> float: ...  # the ranking metric

    @property
    def start_time(self) -> int: ...


R = TypeVar("R", bound=Ranked)


def rank(candidates: Iterable[R], higher_is_better: bool) -> list[R]:
    """Best first; candidates without a value (NaN) are left out.

    Ties go to the most recent run, so re-running an identical config does not promote the old one.
    """
    scored = [c for c in candidates if not math.isnan(c.value)]
    scored.sort(key=lambda c: (c.value if higher_is_better else -c.value, c.start_time), reverse=True)
    return scored


# --------------------------------------------------------------------------------------------------
# Comparability
# --------------------------------------------------------------------------------------------------


def comparability_problem(
    champion_fingerprint: str | None,
    champion_split: Any,
    fingerprint: str,
    split: Any,
) -> str | None:
    """Why the challenger's test rows may not be test rows of the champion's fit; None if they are."""
    if champion_fingerprint != fingerprint:
        return f"its data fingerprint is {champion_fingerprint}, the challenger's {fingerprint}"
    if champion_split != split:
        return f"its split config is {champion_split}, the challenger's {split}"
    return None


def comparable(problem: str | None, champion_version: str, force: bool) -> bool:
    """True without a problem; False (with a warning) when forced; otherwise a clear error."""
    if problem is None:
        return True
    if force:
        log.warning("comparing with champion v%s anyway (--force): %s", champion_version, problem)
        return False
    raise ImblabError(
        f"champion version {champion_version} was trained on other data or another split ({problem}), so "
        "the challenger's test rows may be training rows for it and the comparison would flatter it. "
        "Retrain a challenger with the champion's data and split, or pass --force to compare anyway "
        "(recorded)."
    )


@dataclass
class GateRows:
    """A workload's side of the gate: the challenger run's test rows and how to score a model on them.

    ``imblab.registry.binary`` and ``imblab.registry.panel`` build one; ``promote`` uses nothing else of
    a workload, so binary and panel promotions go through the same locked code path.
    """

    workload: str  # "binary" | "panel"
    n: int  # test rows (binary) or test waves (panel)
    label: str  # what n counts, e.g. "test rows" or "test waves of 712 persons"
    shown: tuple[str, ...]  # metrics shown and tagged besides the gate metric
    header: str  # the challenger version's description: run, model, data, decision or threshold
    data: Any  # the rebuilt rows, as the workload's two functions below take them
    scorer: Callable[[str, Any], dict[str, float]]  # (model URI, data) -> every metric on these rows
    checker: Callable[[Any, Any], str | None]  # (champion's training run, data) -> why its rows differ

    def score(self, model_uri: str) -> dict[str, float]:
        return self.scorer(model_uri, self.data)

    def problem(self, champion_run: Any) -> str | None:
        return self.checker(champion_run, self.data)


def run_header(workload: str, run_id: str, run_name: str, settings: dict[str, str], io: str) -> str:
    """The first paragraph of a version's description: which run, its settings, its input and output."""
    told = ", ".join(f"{k}={v}" for k, v in settings.items())
    return f"imblab {workload} model from run {run_id} ({run_name}): {told}. {io}"


# --------------------------------------------------------------------------------------------------
# The decision
# --------------------------------------------------------------------------------------------------


@dataclass
class Decision:
    """What ``promote`` decided, and why; ``tags()`` is what goes onto the challenger version."""

    model_name: str
    metric: str  # the ranking metric, e.g. test_pr_auc
    gate_metric: str  # the metric compared on the shared test rows: test_<base>
    higher_is_better: bool
    run_id: str
    model_uri: str
    selection_value: float
    challenger: dict[str, float]
    champion: dict[str, float] | None
    champion_version: str | None
    min_improvement: float
    promoted: bool
    outcome: str  # first_champion | promoted | rejected | already_champion
    reason: str
    comparable: bool = True  # False when --force compared across different data or splits
    test_rows: int = 0
    version: str | None = None  # the challenger's version (None in a dry run)
    dry_run: bool = False
    shown: tuple[str, ...] = BINARY_SHOWN  # metrics shown and tagged besides the gate metric
    rows_label: str = "test rows"  # what ``test_rows`` counts

    @property
    def base(self) -> str:
        return self.gate_metric.removeprefix("test_")

    @property
    def improvement(self) -> float:
        if self.champion is None:
            return math.nan
        diff = self.challenger[self.base] - self.champion[self.base]
        return diff if self.higher_is_better else -diff

    def tags(self) -> dict[str, str]:
        base = self.base

        def pick(m: dict[str, float] | None) -> str:
            return json.dumps({k: m[k] for k in (base, *self.shown) if k in m} if m else None)

        return {
            "imblab.decision": self.outcome,
            "imblab.reason": self.reason[:5000],
            "imblab.source_run_id": self.run_id,
            "imblab.selection_metric": self.metric,
            "imblab.selection_value": f"{self.selection_value:.6g}",
            "imblab.gate.metric": self.gate_metric,
            "imblab.gate.direction": "higher_is_better" if self.higher_is_better else "lower_is_better",
            "imblab.gate.min_improvement": f"{self.min_improvement:g}",
            "imblab.gate.challenger_value": f"{self.challenger[base]:.6g}",
            "imblab.gate.champion_value": "" if self.champion is None else f"{self.champion[base]:.6g}",
            "imblab.gate.champion_version": self.champion_version or "",
            "imblab.gate.improvement": "" if self.champion is None else f"{self.improvement:.6g}",
            "imblab.gate.comparable": str(self.comparable).lower(),
            "imblab.gate.test_rows": str(self.test_rows),
            "imblab.gate.challenger_metrics": pick(self.challenger),
            "imblab.gate.champion_metrics": pick(self.champion),
        }

    def summary(self) -> str:
        base = self.base
        head = "DRY RUN (nothing registered): " if self.dry_run else ""
        where = f"version {self.version}" if self.version else f"run {self.run_id}"
        lines = [
            f"{head}{self.outcome.upper()}: {self.model_name} {where}",
            f"  reason: {self.reason}",
            f"  selected by {self.metric} = {self.selection_value:.4f} "
            f"({'higher' if self.higher_is_better else 'lower'} is better)",
        ]
        shown = (base, *[m for m in self.shown if m != base])
        champ = self.champion or {}
        label = f"champion v{self.champion_version}" if self.champion_version else "champion"
        width = max(16, *(len(m) + 2 for m in shown))
        lines.append(f"  {'test metric':<{width}}{'challenger':>12}{label:>16}")
        for m in shown:
            new = f"{self.challenger[m]:.4f}" if m in self.challenger else "-"
            old = f"{champ[m]:.4f}" if m in champ else "-"
            lines.append(f"  {m:<{width}}{new:>12}{old:>16}")
        lines.append(f"  (on {self.test_rows} {self.rows_label} of run {self.run_id})")
        return "\n".join(lines)

    def description(self, header: str) -> str:
        """The registered version's description: what it is (``header``), its test metrics, the decision."""
        picked = (m for m in (self.base, *self.shown) if m in self.challenger)
        scores = ", ".join(f"{m} {self.challenger[m]:.4g}" for m in dict.fromkeys(picked))
        return (
            f"{header}\n\nTest metrics (on {self.test_rows} {self.rows_label}): {scores}.\n\n"
            f"Promotion ({self.metric}, gate {self.gate_metric}): {self.outcome}. {self.reason}"
        )


def already_champion(decision: Decision, champion_version: str) -> Decision:
    """The run's version already holds the champion alias: nothing to decide, nothing changes."""
    decision.champion, decision.champion_version = decision.challenger, champion_version
    decision.promoted, decision.outcome = False, ALREADY_CHAMPION
    decision.reason = (
        f"run {decision.run_id} already is champion (version {champion_version}); nothing changed"
    )
    return decision


def signed(gain: float) -> str:
    """An improvement as text: 4 decimals, or 3 significant digits when 4 decimals would show +0.0000."""
    return f"{gain:+.4f}" if gain == 0 or abs(gain) >= 5e-5 else f"{gain:+.2e}"


def apply_gate(decision: Decision) -> Decision:
    """Fill in ``promoted``, ``outcome`` and ``reason`` from the two models' gate metric.

    Without a champion the challenger becomes the first one. Otherwise it passes when its improvement
    (in the metric's better direction) is at least ``min_improvement`` and, unless the minimum is negative
    (an explicit allowance for a worse model), above zero: a tie never moves the champion. A NaN on either
    side fails.
    """
    if decision.champion is None:
        decision.promoted, decision.outcome = True, FIRST_CHAMPION
        decision.reason = (
            f"no {CHAMPION} of {decision.model_name!r} yet: the first promoted version becomes champion"
        )
        return decision
    base = decision.base
    new, old = decision.challenger[base], decision.champion[base]
    cmp = f"test {base} {new:.4f} vs champion v{decision.champion_version} {old:.4f}"
    note = "" if decision.comparable else " [--force: champion trained on other data/split]"
    if math.isnan(new) or math.isnan(old):
        decision.promoted, decision.outcome = False, REJECTED
        decision.reason = f"{cmp}: a NaN metric cannot pass the gate{note}"
        return decision
    gain, minimum = decision.improvement, decision.min_improvement
    # TIE absorbs float noise: 0.1 + 0.2 vs 0.3 is a tie, not a gain.
    tie = abs(gain) <= TIE and minimum >= 0
    passed = gain >= minimum - TIE and not tie
    verb = "passes" if passed else "fails"
    decision.promoted = passed
    decision.outcome = PROMOTED if passed else REJECTED
    why = "; a tie never moves the champion" if tie else ""
    decision.reason = (
        f"{cmp}: improvement {signed(gain)} {verb} the gate (minimum {minimum:g}, "
        f"{'higher' if decision.higher_is_better else 'lower'} is better{why}){note}"
    )
    return decision
