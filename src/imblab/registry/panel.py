"""The panel workload's side of the gate: a panel run's test persons, rebuilt from its logged config.

The challenger run's test persons are rebuilt as ``run_panel`` built them (config -> panel -> examples ->
person split) and checked against the test predictions the run logged (same waves, same targets). Every
test wave then becomes one history (``example_histories``), so each frozen model, champion and challenger
alike, predicts every test wave from the same history through its own ``max_len``, standardiser and frozen
decision. The metrics are the run's own (``wage_metrics`` + ``class_metrics``): the challenger's recomputed
test metrics equal the ones it logged.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass

import numpy as np
import pandas as pd
from mlflow.entities import Run
from mlflow.exceptions import MlflowException

from imblab.config.panel import panel_experiment_from_config
from imblab.errors import ImblabError
from imblab.panel.examples import Examples, build_examples, person_split
from imblab.panel.frozen import CLASS, WAGE, PanelFrozenModel, example_histories
from imblab.panel.metrics import class_metrics, wage_metrics
from imblab.registry.gate import GateRows, run_header
from imblab.registry.versions import load_model
from imblab.tracking.artifacts import read_config, read_panel_predictions
from imblab.tracking.layout import WORKLOAD_PANEL

PANEL_SHOWN = (
    "class_balanced_accuracy",
    "class_macro_f1",
    "class_accuracy",
    "wage_rmse",
    "wage_mae",
    "wage_r2",
)
WAVE_KEYS = ["person", "time"]  # columns of the logged test predictions that name a test wave


@dataclass
class PanelGateData:
    """The challenger run's test waves: one history per wave, and their true targets."""

    histories: pd.DataFrame  # example_histories of the test examples
    y_reg: np.ndarray
    y_cls: np.ndarray
    class_names: list[str]
    waves: pd.DataFrame  # person, time, y_wage, y_class (class names) of each test wave, in example order

    @property
    def n_persons(self) -> int:
        return int(self.waves["person"].nunique())


def _waves(ex: Examples, class_names: list[str]) -> pd.DataFrame:
    names = np.asarray(class_names, dtype=object)
    return pd.DataFrame(
        {"person": ex.person, "time": ex.time, "y_wage": ex.y_reg, "y_class": names[ex.y_cls]}
    )


def wave_difference(ours: pd.DataFrame, theirs: pd.DataFrame) -> str | None:
    """How two sets of test waves (person, time, y_wage, y_class) differ; None when they are the same."""
    lacking = [c for c in (*WAVE_KEYS, "y_wage", "y_class") if c not in theirs.columns]
    if lacking:
        return f"test predictions without the columns {lacking} (logged by an older imblab)"
    a = ours.sort_values(WAVE_KEYS, kind="stable").reset_index(drop=True)
    b = theirs.sort_values(WAVE_KEYS, kind="stable").reset_index(drop=True)
    if len(a) != len(b) or not (a[WAVE_KEYS].to_numpy() == b[WAVE_KEYS].to_numpy()).all():
        common = len(a.merge(b[WAVE_KEYS], on=WAVE_KEYS))
        return f"{len(b)} test waves against the challenger's {len(a)}, {common} of them in common"
    wage = np.isclose(a["y_wage"].to_numpy(float), b["y_wage"].to_numpy(float), rtol=1e-9, atol=1e-12)
    same_class = a["y_class"].astype(str).to_numpy() == b["y_class"].astype(str).to_numpy()
    if not (wage.all() and same_class.all()):
        return f"the same test waves with other targets ({int((~(wage & same_class)).sum())} differ)"
    return None


def load_test_persons(run: Run) -> PanelGateData:
    """Rebuild the run's test persons from its logged config; refuse if they differ from the logged ones."""
    experiment = panel_experiment_from_config(read_config(run))
    panel = experiment.load_data()
    examples = build_examples(panel, experiment.max_len)
    persons = person_split(examples, experiment.split.fractions, experiment.split.seed)
    test = examples.of_persons(persons[2])
    waves = _waves(test, panel.class_names)
    differ = wave_difference(waves, read_panel_predictions(run))
    if differ:
        raise ImblabError(
            f"the rebuilt test persons of panel run {run.info.run_id} differ from the ones it logged "
            f"({differ}): its data changed since it was trained, or another imblab version split it. "
            "Restore the original data or retrain it."
        )
    histories = example_histories(panel, test)
    return PanelGateData(histories, test.y_reg, test.y_cls, list(panel.class_names), waves)


def evaluate(model_uri: str, data: PanelGateData) -> dict[str, float]:
    """Wage and class metrics of a frozen panel model on every test wave, with its frozen decision."""
    with tempfile.TemporaryDirectory(prefix="imblab-model-") as tmp:  # loaded into memory, then removed
        pyfunc, model = load_model(model_uri, dst=tmp)
    if not isinstance(model, PanelFrozenModel):
        raise ImblabError(f"{model_uri} is a binary model; a panel gate compares panel models only")
    if list(model.class_names) != data.class_names:
        raise ImblabError(
            f"model {model_uri} predicts the classes {model.class_names}, the challenger "
            f"{data.class_names}: they cannot be compared"
        )
    try:
        out = pyfunc.predict(data.histories)
    except MlflowException as exc:
        raise ImblabError(f"model {model_uri} cannot score the comparison persons: {exc.message}") from None
    if not np.array_equal(out[model.schema["id"]].to_numpy(), np.arange(len(data.y_reg))):
        raise ImblabError(f"model {model_uri} did not return one prediction per test wave")
    codes = pd.Categorical(out[CLASS], categories=data.class_names).codes
    return wage_metrics(data.y_reg, out[WAGE].to_numpy()) | class_metrics(data.y_cls, codes, data.class_names)


def champion_problem(champion_run: Run, data: PanelGateData) -> str | None:
    """Why the challenger's test waves may not be test waves of the champion's fit; None if they are."""
    differ = wave_difference(data.waves, read_panel_predictions(champion_run))
    return None if differ is None else f"it was tested on {differ} (other data, split or persons)"


def panel_rows(run: Run) -> GateRows:
    """The gate's rows for a panel run (``imblab panel``): every wave of its test persons."""
    data = load_test_persons(run)
    settings = {k: run.data.tags.get(k, "?") for k in ("model", "class_balance", "decision", "data")}
    io = (
        "The decision was chosen on the validation persons. Input: history rows, one per person and wave, "
        "each person's last row the wave to predict with empty targets; output per person: id, time, "
        f"{WAGE}, {CLASS}, prob_<class> (params: decision=argmax overrides the frozen decision)."
    )
    header = run_header(WORKLOAD_PANEL, run.info.run_id, str(run.info.run_name), settings, io)
    label = f"test waves of {data.n_persons} persons"
    return GateRows(
        WORKLOAD_PANEL, len(data.y_reg), label, PANEL_SHOWN, header, data, evaluate, champion_problem
    )
