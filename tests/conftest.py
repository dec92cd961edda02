"""Shared fixtures: a real SQLite MLflow store per test, real Hydra composition, the real SECOM data."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig

from imblab.app.hydra import conf_dir

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"
SECOM_DIR = Path(os.environ.get("IMBLAB_SECOM_DIR") or REPO.parent / "shared" / "data" / "secom")

# A small, fast configuration on synthetic data (seconds per run).
FAST = (
    "data=synthetic",
    "data.n_samples=600",
    "data.n_features=12",
    "data.positive_rate=0.1",
    "sampler=smote",
    "model=lgbm",
    "model.estimator.n_estimators=40",
    "cv.folds=3",
    "cv.n_jobs=1",
)
# The quickest training run (no resampling, logistic regression): for tests about tracking, not models.
QUICK = (*(o for o in FAST if not o.startswith(("sampler", "model"))), "sampler=none", "model=logreg")


def compose_config(*overrides: str) -> DictConfig:
    """The training config exactly as ``imblab train <overrides>`` composes it."""
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        return compose("train", overrides=list(overrides))


@pytest.fixture(scope="session", autouse=True)
def _subprocesses_import_this_checkout() -> Iterator[None]:
    """Subprocesses (``python -m imblab``, notebook kernels) import the code under test, not an install."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")])))
        yield


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test runs in its own directory, cache and tracking store; nothing leaks between tests."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("IMBLAB_CACHE_DIR", str(tmp_path / "cache"))
    for var in (
        "MLFLOW_TRACKING_URI",
        "MLFLOW_REGISTRY_URI",
        "IMBLAB_PARENT_RUN_ID",
        "IMBLAB_PARENT_TRACKING_URI",
        "IMBLAB_SWEPT_KEYS",
    ):
        monkeypatch.delenv(var, raising=False)
    yield


@pytest.fixture(scope="session")
def migrated_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One empty MLflow SQLite database with all migrations applied (creating one takes seconds)."""
    db = tmp_path_factory.mktemp("empty-store") / "mlflow.db"
    MlflowClient(f"sqlite:///{db}").search_experiments()
    return db


@pytest.fixture
def tracking_uri(tmp_path: Path, migrated_store: Path) -> str:
    """A fresh SQLite-backed MLflow store (artifacts beside it), copied from the migrated template.

    It lives in ``store/``, not in ``mlruns/``, so tests can tell it from the default store of the cwd.
    """
    db = tmp_path / "store" / "mlflow.db"
    db.parent.mkdir()
    shutil.copyfile(migrated_store, db)
    return f"sqlite:///{db}"


@pytest.fixture
def secom_dir(monkeypatch: pytest.MonkeyPatch) -> Path:
    """The shared UCI SECOM files; also exported as IMBLAB_SECOM_DIR for subprocesses."""
    if not (SECOM_DIR / "secom.data").is_file():
        pytest.fail(f"SECOM data not found at {SECOM_DIR}; set IMBLAB_SECOM_DIR")
    monkeypatch.setenv("IMBLAB_SECOM_DIR", str(SECOM_DIR))
    return SECOM_DIR
