"""The one place that turns a composed ``imblab panel`` config into a typed :class:`PanelExperiment`.

Shares the binary workload's helpers (:func:`imblab.config.compose.build`, ``plain``, ``typed_spec``) and
its ``tracking`` / ``tuning`` specs; only what is panel-specific lives here. A group option of
``imblab train`` picked by mistake (``model=lgbm``, ``data=secom``) fails here, before a run opens.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from omegaconf import DictConfig

from imblab.config.compose import build, check_complete, plain, section, tuning_spec, typed_spec
from imblab.config.specs import TrackingSpec, TuningSpec, number, whole
from imblab.errors import ImblabError
from imblab.panel.dataset import Panel

PANEL_DATA = ("nlswork", "panel_table", "panel_synthetic")
PANEL_MODELS = ("persistence", "lgbm_lags", "lstm", "gru")
DECISIONS = ("argmax", "offsets_balanced_accuracy", "offsets_macro_f1")
# Keys of a model YAML that describe the model rather than being constructor arguments.
MODEL_META = ("name", "search_space")
PANEL_TUNING_METRIC = "val_objective"  # the only one: comparable across trials whatever class_loss_weight


@dataclass(frozen=True)
class PanelSplitSpec:
    """Persons into training, validation and test (``imblab.panel.examples.person_split``)."""

    fractions: tuple[float, float, float] = (0.7, 0.15, 0.15)
    seed: int = 42

    def __post_init__(self) -> None:
        fr = self.fractions
        if not isinstance(fr, list | tuple) or len(fr) != 3:
            raise ImblabError(f"split.fractions must be three shares (train, validation, test), got {fr!r}")
        values = tuple(number(v, "split.fractions") for v in fr)
        if min(values) <= 0 or not math.isclose(sum(values), 1.0, abs_tol=1e-6):
            raise ImblabError(f"split.fractions must be positive and sum to 1, got {list(values)}")
        object.__setattr__(self, "fractions", values)
        object.__setattr__(self, "seed", whole(self.seed, "split.seed", minimum=0))


@dataclass
class PanelExperiment:
    """One configured panel run, typed: built once from the composed config, no data read yet."""

    load_data: Callable[[], Panel]
    data_name: str
    model: Any  # unfitted panel estimator: fit(train, val[, on_epoch]) / predict(examples)
    model_name: str
    class_balance: str
    decision: Any  # ArgmaxPolicy | LogitOffsetPolicy
    decision_name: str
    split: PanelSplitSpec
    max_len: int
    tracking: TrackingSpec
    seed: int
    config: dict[str, Any]  # the resolved config as plain data (logged as params and config.yaml)
    tuning: TuningSpec = field(default_factory=TuningSpec)
    search_space: dict[str, Any] | None = None

    @property
    def run_name(self) -> str:
        tuned = "-tuned" if self.tuning.enabled else ""
        return self.tracking.run_name or f"{self.model_name}{tuned}-{self.class_balance}-{self.decision_name}"


def load_panel(node: dict[str, Any], data_name: str) -> Panel:
    """Build the ``data`` group's loader; it must return a validated :class:`Panel`."""
    panel = build(node, "data")
    if not isinstance(panel, Panel):
        raise ImblabError(
            f"data={data_name} gave a {type(panel).__name__}, not a panel; panel data: {list(PANEL_DATA)}"
        )
    return panel


def _data_name(node: dict[str, Any]) -> str:
    target = str(node.get("_target_", ""))
    if not target.startswith("imblab.panel."):
        raise ImblabError(
            f"data ({target or 'no _target_'}) is not a panel data source: `imblab train` data options "
            f"do not apply to `imblab panel`; choose one of data={{{','.join(PANEL_DATA)}}}"
        )
    return target.rsplit(".", 1)[-1].removeprefix("load_").removeprefix("make_")


def build_panel_model(node: dict[str, Any], class_balance: str) -> tuple[Any, str]:
    """The unfitted estimator of the ``model`` group and its name, with the class balance applied."""
    if "_target_" not in node or "estimator" in node:
        raise ImblabError(
            f"model={node.get('name', '?')} is an `imblab train` (binary) model, not a panel model; "
            f"choose one of model={{{','.join(PANEL_MODELS)}}}"
        )
    name = str(node.get("name") or node["_target_"].rsplit(".", 1)[-1])
    args = {k: v for k, v in node.items() if k not in MODEL_META}
    model = build(args, f"model {name}")
    if hasattr(model, "class_balance"):  # built again with the balance, so the model checks it itself
        model = build({**args, "class_balance": class_balance}, f"model {name}")
    elif class_balance != "none":
        raise ImblabError(
            f"model={name} fits nothing, so class_balance={class_balance} does not apply; use "
            "class_balance=none (or a model that learns: lgbm_lags, lstm, gru)"
        )
    return model, name


def panel_experiment_from_config(cfg: DictConfig | dict[str, Any]) -> PanelExperiment:
    """Validate the composed ``imblab panel`` config and build the typed :class:`PanelExperiment`."""
    if isinstance(cfg, DictConfig):
        check_complete(cfg)
        config = plain(cfg)
    else:
        config = dict(cfg)
    data = section(config, "data")
    data_name = _data_name(data)
    balance = str(section(config, "class_balance").get("name", "none"))
    model, model_name = build_panel_model(section(config, "model"), balance)
    decision_node = dict(section(config, "decision"))
    decision_name = str(decision_node.pop("name", "?"))
    if decision_name not in DECISIONS and "_target_" not in decision_node:
        raise ImblabError(f"decision: choose one of decision={{{','.join(DECISIONS)}}}")
    decision = build(decision_node, "decision policy")
    if not (hasattr(decision, "choose") and hasattr(decision, "decide")):
        raise ImblabError(f"decision={decision_name} is not a panel decision policy: {list(DECISIONS)}")
    tuning = _panel_tuning(config.get("tuning"), model, model_name)
    split = section(config, "split")
    return PanelExperiment(
        load_data=functools.partial(load_panel, data, data_name),
        data_name=data_name,
        model=model,
        model_name=model_name,
        class_balance=balance,
        decision=decision,
        decision_name=decision_name,
        split=typed_spec(PanelSplitSpec, split, "split"),
        max_len=whole(config.get("max_len", 8), "max_len"),
        tracking=typed_spec(TrackingSpec, section(config, "tracking"), "tracking"),
        seed=whole(config.get("seed", 0), "seed", minimum=0),
        config=config,
        tuning=tuning,
        search_space=dict(section(config, "model").get("search_space") or {}) or None,
    )


def _panel_tuning(node: Any, model: Any, model_name: str) -> TuningSpec:
    """``tuning``: the shared group; a panel study minimises ``val_objective`` (no folds, no LightGBM)."""
    spec = tuning_spec(node)
    if not spec.enabled:
        return spec
    if "on_epoch" not in inspect.signature(model.fit).parameters:
        raise ImblabError(
            f"tuning=optuna tunes the recurrent panel models (model=lstm|gru), not {model_name}"
        )
    if spec.metric != PANEL_TUNING_METRIC or spec.direction not in (None, "minimize"):
        raise ImblabError(
            f"imblab panel tunes on {PANEL_TUNING_METRIC} (minimised; per epoch, comparable across "
            f"class_loss_weight); tuning.metric={spec.metric} / tuning.direction={spec.direction} "
            "do not apply"
        )
    return spec
