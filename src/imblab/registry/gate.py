"""The champion/challenger gate, as pure rules: no MLflow, no I/O, testable on plain numbers.

``imblab promote`` registers the best run's model as ``challenger`` and moves ``champion`` to it only
when it beats the current champion by a minimum improvement. Both models are scored on the *same*
rows (the challenger run's test rows), which is only honest if those rows were test rows for the
champion too: ``comparability_problem`` says when they may not be, and ``comparable`` refuses such a
comparison unless forced (the decision then records it). Repeated-CV runs have no test rows: their gate is
the paired corrected t over the outer folds both runs share (``Decision.paired``), and the challenger must
then be better with an interval above 0. ``Decision.tags()`` (a few tags scripts read) and
``Decision.description()`` (for people: the run and its variant, the gate's metrics with intervals, the
decision and why) go onto the challenger version; ``Decision.record()`` is the full record (an artifact).

The rule is the same for every workload (binary runs of ``imblab train``, panel runs of ``imblab panel``):
only the metrics differ, and a ``Decision`` carries which ones it shows (``shown``). A tie never moves the
champion: with a minimum improvement of 0 (the default) the challenger must be strictly better, so two
promotions of equal models cannot flip the alias back and forth.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from imblab.errors import ImblabError
from imblab.metrics.ranking import ranking_rule
from imblab.metrics.resampled import PairedTest

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
    """``(base metric, higher_is_better)`` of a ``cv_*`` / ``test_*`` / ``rcv_*`` ranking metric, or a clear
    error."""
    rule = ranking_rule(metric, None)
    return rule.base, rule.higher_is_better


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


def comparable(
    problem: str | None, champion_version: str, force: bool, refusal: Callable[[str, str], str] | None = None
) -> bool:
    """True without a problem; False (with a warning) when forced; otherwise a clear error (``refusal``
    (problem, version) words it; the default is about test rows shared with a holdout champion)."""
    if problem is None:
        return True
    if force:
        log.warning("comparing with champion v%s anyway (--force): %s", champion_version, problem)
        return False
    if refusal is not None:
        raise ImblabError(refusal(problem, champion_version))
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
    # Repeated CV: (challenger URI, champion URI, base metric, data) -> paired corrected t over the folds
    pair: Callable[[str, str, str, Any], PairedTest] | None = None
    refusal: Callable[[str, str], str] | None = None  # (problem, champion version) -> the error message
    gate_prefix: str = "test"  # what the gate metric is on: test rows, or rcv (the outer folds)

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
    """What ``promote`` decided, and why: tags, description and the full record for the version."""

    model_name: str
    metric: str  # the ranking metric, e.g. cv_pr_auc
    gate_metric: str  # compared on shared data: test_<base> (shared test rows) or rcv_<base> (shared folds)
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
    comparable: bool = True  # False when --force compared across different data, splits or folds
    test_rows: int = 0  # what the gate compared on: test rows, waves or outer folds (``rows_label``)
    version: str | None = None  # the challenger's version (None in a dry run)
    dry_run: bool = False
    shown: tuple[str, ...] = BINARY_SHOWN  # metrics shown besides the gate metric
    rows_label: str = "test rows"  # what ``test_rows`` counts
    paired: PairedTest | None = None  # repeated CV: challenger - champion per shared outer fold
    variant: str = ""  # the source run's variant, e.g. "smote × lgbm × best_f1"

    @property
    def base(self) -> str:
        return self.gate_metric.split("_", 1)[1]

    @property
    def improvement(self) -> float:
        if self.champion is None:
            return math.nan
        diff = self.challenger[self.base] - self.champion[self.base]
        return diff if self.higher_is_better else -diff

    def gain_interval(self) -> tuple[float, float]:
        """The paired interval of the improvement, in the metric's better direction (NaN without one)."""
        if self.paired is None:
            return math.nan, math.nan
        lo, hi = self.paired.low, self.paired.high
        return (lo, hi) if self.higher_is_better else (-hi, -lo)

    def tags(self) -> dict[str, str]:
        """The few version tags scripts read; everything else is in the description and ``record()``."""
        base = self.base
        return {
            "imblab.decision": self.outcome,
            "imblab.source_run_id": self.run_id,
            "imblab.selection_metric": self.metric,
            "imblab.gate.metric": self.gate_metric,
            "imblab.gate.challenger_value": f"{self.challenger[base]:.6g}",
            "imblab.gate.champion_value": "" if self.champion is None else f"{self.champion[base]:.6g}",
            "imblab.gate.champion_version": self.champion_version or "",
            "imblab.gate.comparable": str(self.comparable).lower(),
        }

    def record(self) -> dict[str, Any]:
        """Everything the decision knows, as plain data (logged as JSON beside the source run)."""
        keep = (self.base, *self.shown)

        def pick(m: dict[str, float] | None) -> dict[str, float] | None:
            return {k: m[k] for k in keep if k in m} if m else None

        return {
            "model_name": self.model_name,
            "version": self.version,
            "decision": self.outcome,
            "reason": self.reason,
            "source_run_id": self.run_id,
            "variant": self.variant,
            "selection_metric": self.metric,
            "selection_value": self.selection_value,
            "gate_metric": self.gate_metric,
            "direction": "higher_is_better" if self.higher_is_better else "lower_is_better",
            "min_improvement": self.min_improvement,
            "improvement": None if self.champion is None else self.improvement,
            "paired": None if self.paired is None else vars(self.paired),
            "comparable": self.comparable,
            "compared_on": f"{self.test_rows} {self.rows_label}",
            "champion_version": self.champion_version,
            "challenger_metrics": pick(self.challenger),
            "champion_metrics": pick(self.champion),
        }

    def _where(self) -> str:
        return "mean over the outer folds" if self.gate_metric.startswith("rcv_") else "test metric"

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
        width = max(16, len(self._where()) + 2, *(len(m) + 2 for m in shown))
        lines.append(f"  {self._where():<{width}}{'challenger':>12}{label:>16}")
        for m in shown:
            new = f"{self.challenger[m]:.4f}" if m in self.challenger else "-"
            old = f"{champ[m]:.4f}" if m in champ else "-"
            lines.append(f"  {m:<{width}}{new:>12}{old:>16}")
        lines.append(f"  (on {self.test_rows} {self.rows_label} of run {self.run_id})")
        return "\n".join(lines)

    def description(self, header: str, record_path: str | None = None) -> str:
        """The registered version's description, for people: what it is (``header``) and its variant, the
        gate's metrics (with the paired interval under repeated CV), the decision and why."""
        picked = dict.fromkeys(m for m in (self.base, *self.shown) if m in self.challenger)
        champ = self.champion or {}
        versus = f" (champion v{self.champion_version} in brackets)" if self.champion else ""
        scores = ", ".join(
            f"{m} {self.challenger[m]:.4g}" + (f" [{champ[m]:.4g}]" if m in champ else "") for m in picked
        )
        parts = [
            header + (f" Variant: {self.variant}." if self.variant else ""),
            f"Selected by {self.metric} = {self.selection_value:.4g}.",
            f"Gate: {self.gate_metric} on {self.test_rows} {self.rows_label}. "
            f"{self._where().capitalize()}s{versus}: {scores}.",
        ]
        if self.paired is not None:
            lo, hi = self.gain_interval()
            parts.append(
                f"Paired over {self.paired.n_folds} shared outer folds: improvement "
                f"{signed(self.improvement)} [{lo:+.4f}, {hi:+.4f}] "
                f"({self.paired.level:.0%} corrected resampled t), p = {self.paired.p_value:.3g}."
            )
        parts.append(f"Decision: {self.outcome}. {self.reason}")
        if record_path:
            parts.append(f"Full record: artifact {record_path} of run {self.run_id}.")
        return "\n\n".join(parts)


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
    (an explicit allowance for a worse model), above zero: a tie never moves the champion. With a paired
    fold comparison (repeated CV) and a minimum >= 0 the improvement's interval must also lie above 0:
    a gain within the folds' noise does not move the champion. A NaN on either side fails.
    """
    if decision.champion is None:
        decision.promoted, decision.outcome = True, FIRST_CHAMPION
        decision.reason = (
            f"no {CHAMPION} of {decision.model_name!r} yet: the first promoted version becomes champion"
        )
        return decision
    base = decision.base
    new, old = decision.challenger[base], decision.champion[base]
    prefix = decision.gate_metric.split("_", 1)[0]
    cmp = f"{prefix} {base} {new:.4f} vs champion v{decision.champion_version} {old:.4f}"
    forced = (
        "not paired: the logged estimates of another protocol or other outer folds"
        if prefix == "rcv"
        else "champion trained on other data/split"
    )
    note = "" if decision.comparable else f" [--force: {forced}]"
    if math.isnan(new) or math.isnan(old):
        decision.promoted, decision.outcome = False, REJECTED
        decision.reason = f"{cmp}: a NaN metric cannot pass the gate{note}"
        return decision
    gain, minimum = decision.improvement, decision.min_improvement
    # TIE absorbs float noise: 0.1 + 0.2 vs 0.3 is a tie, not a gain.
    tie = abs(gain) <= TIE and minimum >= 0
    passed = gain >= minimum - TIE and not tie
    why = "; a tie never moves the champion" if tie else ""
    interval = ""
    if decision.paired is not None:
        lo, hi = decision.gain_interval()
        interval = (
            f" [{lo:+.4f}, {hi:+.4f}] over {decision.paired.n_folds} paired folds, p = "
            f"{decision.paired.p_value:.3g}"
        )
        if minimum >= 0 and not lo > 0:
            passed = False
            why += "; its corrected interval reaches 0 or below: within the folds' noise"
    decision.promoted = passed
    decision.outcome = PROMOTED if passed else REJECTED
    verb = "passes" if passed else "fails"
    decision.reason = (
        f"{cmp}: improvement {signed(gain)}{interval} {verb} the gate (minimum {minimum:g}, "
        f"{'higher' if decision.higher_is_better else 'lower'} is better{why}){note}"
    )
    return decision
