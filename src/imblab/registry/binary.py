"""The binary workload's side of the gate: a training run's test rows, rebuilt from its logged config.

Both models are scored on the challenger run's test rows, rebuilt with the same holdout split and
checked against the logged data fingerprint and test rows, each at its own frozen threshold.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass

import numpy as np
import pandas as pd
from mlflow.entities import Run
from mlflow.exceptions import MlflowException

from imblab.config.compose import experiment_from_config
from imblab.config.specs import SplitSpec
from imblab.errors import ImblabError
from imblab.frozen import PROBABILITY
from imblab.metrics.core import threshold_metrics
from imblab.metrics.costs import Costs
from imblab.metrics.ranking import REPEATED_CV, protocol_of
from imblab.protocol.split import holdout_split
from imblab.registry.gate import BINARY_SHOWN, GateRows, comparability_problem, run_header
from imblab.registry.versions import load_frozen
from imblab.tracking.artifacts import read_config, read_scores
from imblab.tracking.layout import TAG_DATA_FINGERPRINT, WORKLOAD_BINARY


@dataclass
class GateData:
    """The challenger run's test rows, rebuilt from its config, and the costs it reports with."""

    X: pd.DataFrame
    y: np.ndarray
    costs: Costs
    fingerprint: str
    split: SplitSpec


def load_test_data(run: Run) -> GateData:
    """Reload the run's data from its logged config and reproduce its holdout split."""
    experiment = experiment_from_config(read_config(run))
    dataset = experiment.load_data()
    logged = run.data.tags.get(TAG_DATA_FINGERPRINT)
    fingerprint = dataset.fingerprint()
    if logged and logged != fingerprint:
        raise ImblabError(
            f"the data of run {run.info.run_id} changed since it was trained (fingerprint {fingerprint}, "
            f"logged {logged}); restore the original data ({dataset.name}) to compare on its test rows"
        )
    split = holdout_split(dataset, experiment.split)
    rows = dataset.X.index[split.test]
    stored = read_scores(run)[1]["row"].to_numpy()
    if len(stored) != len(rows) or not np.array_equal(stored, np.asarray(rows)):
        raise ImblabError(
            f"the rebuilt test rows of run {run.info.run_id} differ from the ones it logged; "
            "was it trained with another imblab version? Retrain it."
        )
    return GateData(
        X=dataset.X.iloc[split.test],
        y=dataset.y.to_numpy()[split.test],
        costs=experiment.costs,
        fingerprint=fingerprint,
        split=experiment.split,
    )


def evaluate(model_uri: str, data: GateData) -> dict[str, float]:
    """All metrics of a frozen model on ``data`` at the model's own threshold."""
    with tempfile.TemporaryDirectory(prefix="imblab-model-") as tmp:  # loaded into memory, then removed
        pyfunc, frozen = load_frozen(model_uri, dst=tmp)
    try:
        proba = pyfunc.predict(data.X)[PROBABILITY].to_numpy()
    except MlflowException as exc:
        raise ImblabError(f"model {model_uri} cannot score the comparison rows: {exc.message}") from None
    return threshold_metrics(data.y, proba, frozen.threshold, data.costs)


def champion_problem(champion_run: Run, data: GateData) -> str | None:
    """Why the challenger's test rows may not be test rows of the champion's fit; None if they are."""
    if protocol_of(champion_run.data.tags) == REPEATED_CV:
        return "it was evaluated by repeated CV and refitted on all rows, these test rows included"
    champion_split = experiment_from_config(read_config(champion_run)).split
    return comparability_problem(
        champion_run.data.tags.get(TAG_DATA_FINGERPRINT), champion_split, data.fingerprint, data.split
    )


def binary_rows(run: Run) -> GateRows:
    """The gate's rows for a binary training run (``imblab train``)."""
    data = load_test_data(run)
    tags = run.data.tags
    settings = {k: tags.get(k, "?") for k in ("sampler", "model", "threshold_policy", "threshold", "data")}
    io = (
        f"Data fingerprint {data.fingerprint}. Input: one row per item with the model's feature columns; "
        "output: decision, probability (params: threshold)."
    )
    header = run_header(WORKLOAD_BINARY, run.info.run_id, str(run.info.run_name), settings, io)
    return GateRows(
        WORKLOAD_BINARY, len(data.y), "test rows", BINARY_SHOWN, header, data, evaluate, champion_problem
    )
