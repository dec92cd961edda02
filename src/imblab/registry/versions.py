"""Looking up registered versions, the frozen models they hold and the training runs behind them."""

from __future__ import annotations

from typing import Any

import mlflow
from mlflow.entities import Run
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from imblab.errors import ImblabError
from imblab.frozen import FrozenModel
from imblab.panel.frozen import PanelFrozenModel
from imblab.registry.gate import CHAMPION
from imblab.tracking.artifacts import quiet_downloads
from imblab.tracking.layout import TAG_SOURCE_RUN, TAG_WORKLOAD, WORKLOAD_BINARY


def parse_registered_uri(client: MlflowClient, model_uri: str) -> ModelVersion:
    """The registry version named by ``models:/<name>@<alias>`` or ``models:/<name>/<version>``."""
    if not model_uri.startswith("models:/"):
        raise ImblabError(
            f"{model_uri!r} is not a registered model URI; "
            "use models:/<name>@<alias> or models:/<name>/<version>"
        )
    ref = model_uri[len("models:/") :].strip("/")
    try:
        if "@" in ref:
            name, alias = ref.split("@", 1)
            return client.get_model_version_by_alias(name, alias)
        name, sep, version = ref.rpartition("/")
        if sep and version.isdigit():
            return client.get_model_version(name, version)
    except MlflowException as exc:
        raise ImblabError(f"{model_uri} is not in the model registry: {exc.message}") from None
    raise ImblabError(
        f"{model_uri!r} names no registered version; use models:/<name>@<alias> or models:/<name>/<version>"
    )


def load_model(model_uri: str, dst: str | None = None) -> tuple[Any, FrozenModel | PanelFrozenModel]:
    """The pyfunc model and the imblab model inside it: binary (``FrozenModel``) or panel."""
    try:
        with quiet_downloads():  # a model is ~100 files (imblab's code travels with it): no progress bar
            pyfunc = mlflow.pyfunc.load_model(model_uri, dst_path=dst)
    except MlflowException as exc:
        raise ImblabError(f"cannot load model {model_uri}: {exc.message}") from None
    model = pyfunc.unwrap_python_model()
    if not isinstance(model, FrozenModel | PanelFrozenModel):
        raise ImblabError(f"{model_uri} is not an imblab frozen model (it holds {type(model).__name__})")
    return pyfunc, model


def load_frozen(model_uri: str, dst: str | None = None) -> tuple[Any, FrozenModel]:
    """The pyfunc model and the binary ``FrozenModel`` inside it."""
    pyfunc, frozen = load_model(model_uri, dst)
    if not isinstance(frozen, FrozenModel):
        raise ImblabError(
            f"{model_uri} is a panel model (history rows in, next wave out), not a binary frozen model"
        )
    return pyfunc, frozen


def workload_of(run: Run) -> str:
    """``panel`` for ``imblab panel`` runs, ``binary`` for ``imblab train`` runs (no workload tag)."""
    return run.data.tags.get(TAG_WORKLOAD, WORKLOAD_BINARY)


def training_run(client: MlflowClient, run_id: str) -> Run:
    """The training run behind ``run_id``, following set-threshold links back to the fit."""
    seen: set[str] = set()
    run = client.get_run(run_id)
    while TAG_SOURCE_RUN in run.data.tags and run.info.run_id not in seen:
        seen.add(run.info.run_id)
        run = client.get_run(run.data.tags[TAG_SOURCE_RUN])
    return run


def existing_version(client: MlflowClient, name: str, run_id: str) -> ModelVersion | None:
    """A version of ``name`` already registered from ``run_id`` (re-promoting must not duplicate it)."""
    try:
        found = client.search_model_versions(f"name = '{name}' and run_id = '{run_id}'")
    except MlflowException:
        return None
    return min(found, key=lambda v: int(v.version)) if found else None


def current_champion(client: MlflowClient, name: str) -> ModelVersion | None:
    """The version holding the ``champion`` alias, if any."""
    try:
        return client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        return None  # no registered model, or no champion alias yet
