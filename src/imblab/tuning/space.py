"""The search space: ``model.search_space`` as ranges Optuna samples, checked before any trial runs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import optuna

from imblab.config.specs import number
from imblab.errors import ImblabError

WHERE = "model.search_space"
RANGE_KEYS = frozenset({"type", "low", "high", "log", "step", "choices"})


@dataclass(frozen=True)
class ParamSpec:
    """One searched hyperparameter, as ``model.search_space.<name>`` declares it."""

    name: str
    type: str  # int | float | categorical
    low: float = 0.0
    high: float = 0.0
    log: bool = False
    step: float | None = None
    choices: tuple[Any, ...] = ()

    def suggest(self, trial: optuna.Trial) -> Any:
        if self.type == "int":
            step = int(self.step or 1)
            return trial.suggest_int(self.name, int(self.low), int(self.high), step=step, log=self.log)
        if self.type == "float":
            return trial.suggest_float(self.name, self.low, self.high, step=self.step, log=self.log)
        return trial.suggest_categorical(self.name, list(self.choices))


def parse_search_space(space: Any, model: Any, model_name: str | None = None) -> list[ParamSpec]:
    """Validate the search space against ``model`` (the unfitted estimator) and Optuna's rules.

    ``space`` is plain data (``{name: {type: int, low: 1, high: 10}}``); ``model_name`` names the
    model in messages. Every mistake is a clear ``ImblabError``; nothing is fitted.
    """
    shown = model_name or type(model).__name__
    if not space:
        raise ImblabError(
            f"{WHERE} of model {shown!r} is empty: there is nothing to tune. Add ranges, "
            f"e.g. {WHERE}.learning_rate='{{type: float, low: 0.01, high: 0.2, log: true}}' (or tuning=none)"
        )
    if not isinstance(space, dict):
        raise ImblabError(f"{WHERE} must map parameter names to ranges, got {space!r}")
    known = set(model.get_params())
    specs = []
    for name, raw in space.items():
        key = f"{WHERE}.{name}"
        if name not in known:
            raise ImblabError(
                f"{key}: model {shown!r} has no parameter {name!r}; its parameters are {sorted(known)}"
            )
        specs.append(_param(name, raw, key))
    return specs


def _param(name: str, raw: Any, key: str) -> ParamSpec:
    if not isinstance(raw, dict):
        raise ImblabError(f"{key} must be a mapping like {{type: int, low: 1, high: 10}}, got {raw!r}")
    unknown = sorted(set(raw) - RANGE_KEYS)
    if unknown:
        raise ImblabError(f"{key} has unknown key(s) {unknown}; allowed: {sorted(RANGE_KEYS)}")
    kind = raw.get("type")
    if kind == "categorical":
        choices = raw.get("choices")
        if not isinstance(choices, list) or not choices:
            raise ImblabError(f"{key}: a categorical range needs a non-empty list `choices`, got {choices!r}")
        return ParamSpec(name, "categorical", choices=tuple(choices))
    if kind not in ("int", "float"):
        raise ImblabError(f"{key}.type must be int, float or categorical, got {kind!r}")
    low, high = number(raw.get("low"), f"{key}.low"), number(raw.get("high"), f"{key}.high")
    if kind == "int" and (low != int(low) or high != int(high)):
        raise ImblabError(f"{key}: an int range needs whole-number bounds, got low={low}, high={high}")
    if low > high:
        raise ImblabError(f"{key}: inverted range, low={low:g} > high={high:g}; swap them")
    if low == high:
        raise ImblabError(
            f"{key}: empty range, low = high = {low:g}; widen it, or drop it from the search space and "
            f"set model.estimator.{name}={low:g} instead"
        )
    use_log = bool(raw.get("log", False))
    if use_log and low <= 0:
        raise ImblabError(f"{key}: a log range needs low > 0, got low={low:g}")
    step = raw.get("step")
    if step is not None:
        step = number(step, f"{key}.step")
        if step <= 0 or (kind == "int" and step != int(step)):
            raise ImblabError(f"{key}.step must be a positive {'whole ' if kind == 'int' else ''}number")
        if use_log:
            raise ImblabError(f"{key}: step and log cannot be combined (Optuna rule); drop one")
        if step > high - low:
            raise ImblabError(f"{key}: step={step:g} is wider than the range {low:g}..{high:g}")
    return ParamSpec(name, kind, low, high, use_log, step)
