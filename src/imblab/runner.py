"""One experiment run: data -> split -> (tuning) -> fit/out-of-fold -> policy -> metrics -> MLflow.

``run_experiment(cfg)`` is what ``imblab train`` calls for every Hydra job. The threshold is
chosen on out-of-fold training scores only; test labels are used once, for reporting.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import mlflow
import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf

import imblab
from imblab.cache import FitCache, fit_key
from imblab.data.dataset import Dataset
from imblab.errors import ImblabError
from imblab.frozen import FrozenModel, model_signature, pip_requirements
from imblab.metrics.core import threshold_metrics
from imblab.metrics.costs import Costs
from imblab.pipeline import build, predict_pipeline
from imblab.plots import confusion_matrix_figure, pr_roc_figure, threshold_curves_figure
from imblab.protocol import FitResult, Split, fit_and_score, holdout_split
from imblab.thresholds import ThresholdChoice, ThresholdPolicy
from imblab.tracking import (
    TAG_ROLE,
    TAG_SWEEP,
    command_line,
    ensure_experiment,
    flatten_config,
    git_commit,
    parent_run_id,
    tracked_run,
    use_tracking,
)

log = logging.getLogger(__name__)

# Artifact paths inside a run; ``imblab compare`` / ``set-threshold`` read them back.
OOF_SCORES = "scores/oof_scores.parquet"
TEST_SCORES = "scores/test_scores.parquet"
METRICS_JSON = "metrics.json"
CONFIG_YAML = "config.yaml"
THRESHOLD_JSON = "threshold.json"
MODEL_NAME = "model"


@dataclass
class RunOutcome:
    run_id: str
    experiment_id: str
    choice: ThresholdChoice
    cv_metrics: dict[str, float]
    test_metrics: dict[str, float]
    cache_hit: bool
    model_uri: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def run_name(cfg: DictConfig) -> str:
    if cfg.tracking.get("run_name"):
        return str(cfg.tracking.run_name)
    tuned = "-tuned" if cfg.tuning.get("enabled") else ""
    return f"{cfg.sampler.name}-{cfg.model.name}{tuned}-{policy_name(cfg)}"


def policy_name(cfg: DictConfig) -> str:
    return build(cfg.threshold, "threshold policy").name


def effective_costs(cfg: DictConfig, policy: ThresholdPolicy) -> Costs:
    """The configured costs with the policy's own cost parameters on top."""
    base = OmegaConf.to_container(cfg.costs, resolve=True)
    assert isinstance(base, dict)
    return Costs(**{**{k: float(v) for k, v in base.items()}, **policy.costs_override()})


def fold_metrics(y: np.ndarray, scores: np.ndarray, folds: np.ndarray) -> pd.DataFrame:
    """PR-AUC and ROC-AUC of each CV fold (for spread / standard errors)."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    rows = []
    for k in np.unique(folds):
        m = folds == k
        rows.append(
            {
                "fold": int(k),
                "pr_auc": average_precision_score(y[m], scores[m]),
                "roc_auc": roc_auc_score(y[m], scores[m]),
                "n": int(m.sum()),
                "positives": int(y[m].sum()),
            }
        )
    return pd.DataFrame(rows)


def _tune(dataset: Dataset, split: Split, cfg: DictConfig) -> dict[str, Any]:
    """Tuned model parameters when ``tuning.enabled`` (Optuna, inside this run), else none."""
    if not cfg.tuning.get("enabled", False):
        return {}
    from imblab.tuning import tune  # imported lazily: plain runs do not need Optuna

    return tune(dataset, split, cfg)


def run_experiment(cfg: DictConfig) -> RunOutcome:
    """Run one configured experiment and log it to MLflow; the run ends FINISHED or FAILED."""
    check_config(cfg)
    uri = use_tracking(cfg.tracking.uri)
    experiment_id = ensure_experiment(cfg.tracking.experiment, uri)
    policy: ThresholdPolicy = build(cfg.threshold, "threshold policy")
    parent = parent_run_id()
    tags = {
        "sampler": str(cfg.sampler.name),
        "model": str(cfg.model.name),
        "threshold_policy": policy.name,
        "tuning": "optuna" if cfg.tuning.get("enabled") else "none",
        "imblab.version": imblab.__version__,
        "imblab.git_commit": git_commit(),
        "imblab.command": command_line()[:5000],
        TAG_ROLE: "run",
    }
    if parent:
        tags[TAG_SWEEP] = parent
    with tracked_run(experiment_id, run_name(cfg), tags, parent_run_id=parent) as run:
        mlflow.log_params(flatten_config(cfg))
        dataset: Dataset = build(cfg.data, "data")
        dataset.validate()
        fingerprint = dataset.fingerprint()
        mlflow.set_tags(
            {
                "data": dataset.name,
                "data_fingerprint": fingerprint,
                "data_rows": str(len(dataset.y)),
                "data_positive_rate": f"{dataset.positive_rate:.4f}",
            }
        )
        split = holdout_split(dataset, cfg.split)
        model_params = _tune(dataset, split, cfg)

        cache = FitCache(cfg.cache.dir, cfg.cache.enabled)
        key = fit_key(fingerprint, cfg, model_params)
        start = time.perf_counter()
        fit, hit = cache.get_or_fit(key, lambda: fit_and_score(dataset, split, cfg, model_params))
        mlflow.set_tags({"imblab.fit_key": key, "imblab.cache_hit": str(hit).lower()})
        mlflow.log_metrics(
            {"fit_seconds": fit.fit_seconds, "fit_or_load_seconds": time.perf_counter() - start}
        )

        y_train = dataset.y.to_numpy()[split.train]
        y_test = dataset.y.to_numpy()[split.test]
        # The policy sees out-of-fold training scores only: never a test label.
        choice = policy.choose(y_train, fit.oof_scores)
        costs = effective_costs(cfg, policy)
        cv = threshold_metrics(y_train, fit.oof_scores, choice.threshold, costs)
        test = threshold_metrics(y_test, fit.test_scores, choice.threshold, costs)
        folds = fold_metrics(y_train, fit.oof_scores, fit.fold_ids)
        cv["pr_auc_fold_mean"] = float(folds["pr_auc"].mean())
        cv["pr_auc_fold_se"] = float(folds["pr_auc"].std(ddof=1) / np.sqrt(len(folds)))
        cv["roc_auc_fold_mean"] = float(folds["roc_auc"].mean())

        model_info = None
        frozen = FrozenModel(
            predict_pipeline(fit.pipeline), choice.threshold, [str(c) for c in dataset.X.columns], policy.name
        )
        if cfg.tracking.get("log_model", True):
            model_info = log_frozen_model(frozen, dataset.X.iloc[split.train[:5]])
        metrics = {**{f"cv_{k}": v for k, v in cv.items()}, **{f"test_{k}": v for k, v in test.items()}}
        mlflow.log_metrics(metrics, model_id=model_info.model_id if model_info else None)
        for row in folds.itertuples():
            mlflow.log_metric("cv_fold_pr_auc", float(row.pr_auc), step=int(row.fold))
        mlflow.set_tags(
            {"threshold": f"{choice.threshold:.6g}", "threshold_feasible": str(choice.feasible).lower()}
        )
        log_run_artifacts(cfg, dataset, split, fit, choice, costs, cv, test, folds, policy)
        log.info(
            "run %s: threshold %.4f (%s), test PR-AUC %.4f, recall %.3f, precision %.3f",
            run.info.run_id,
            choice.threshold,
            policy.name,
            test["pr_auc"],
            test["recall"],
            test["precision"],
        )
        return RunOutcome(
            run.info.run_id,
            experiment_id,
            choice,
            cv,
            test,
            hit,
            model_info.model_uri if model_info else None,
        )


def log_frozen_model(frozen: FrozenModel, example: pd.DataFrame) -> Any:
    """Log the frozen pyfunc (with imblab's code, signature and input example) as ``model``."""
    return mlflow.pyfunc.log_model(
        name=MODEL_NAME,
        python_model=frozen,
        signature=model_signature(frozen, example),
        input_example=example,
        pip_requirements=pip_requirements(),
        metadata={
            "feature_names": frozen.feature_names,
            "threshold": frozen.threshold,
            "threshold_policy": frozen.policy,
        },
        code_paths=[str(Path(imblab.__file__).parent)],
    )


def log_run_artifacts(
    cfg: DictConfig,
    dataset: Dataset,
    split: Split,
    fit: FitResult,
    choice: ThresholdChoice,
    costs: Costs,
    cv: dict[str, float],
    test: dict[str, float],
    folds: pd.DataFrame,
    policy: ThresholdPolicy,
) -> None:
    y_train = dataset.y.to_numpy()[split.train]
    y_test = dataset.y.to_numpy()[split.test]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        (out / "scores").mkdir()
        (out / "plots").mkdir()
        pd.DataFrame(
            {
                "row": dataset.X.index[split.train],
                "fold": fit.fold_ids,
                "y_true": y_train,
                "score": fit.oof_scores,
            }
        ).to_parquet(out / OOF_SCORES, index=False)
        pd.DataFrame(
            {
                "row": dataset.X.index[split.test],
                "y_true": y_test,
                "score": fit.test_scores,
                "decision": (fit.test_scores >= choice.threshold).astype("int64"),
            }
        ).to_parquet(out / TEST_SCORES, index=False)
        folds.to_csv(out / "scores" / "cv_folds.csv", index=False)
        (out / CONFIG_YAML).write_text(OmegaConf.to_yaml(cfg, resolve=True))
        (out / METRICS_JSON).write_text(json.dumps({"cv": cv, "test": test}, indent=2, default=float))
        (out / THRESHOLD_JSON).write_text(
            json.dumps(
                {
                    "policy": policy.name,
                    "params": policy.params(),
                    "threshold": choice.threshold,
                    "objective": choice.objective,
                    "feasible": choice.feasible,
                    "detail": choice.detail,
                    "costs": costs.__dict__,
                    "chosen_on": "out-of-fold training scores",
                },
                indent=2,
            )
        )
        figures = {
            "plots/confusion_matrix_test.png": confusion_matrix_figure(
                y_test, fit.test_scores, choice.threshold, "test"
            ),
            "plots/confusion_matrix_cv.png": confusion_matrix_figure(
                y_train, fit.oof_scores, choice.threshold, "out-of-fold (train)"
            ),
            "plots/pr_roc_curves.png": pr_roc_figure(
                {"test": (y_test, fit.test_scores), "out-of-fold": (y_train, fit.oof_scores)},
                choice.threshold,
            ),
            "plots/threshold_curves.png": threshold_curves_figure(
                y_train, fit.oof_scores, costs, choice.threshold
            ),
        }
        for name, fig in figures.items():
            fig.savefig(out / name, dpi=110)
            plt.close(fig)
        mlflow.log_artifacts(str(out))


def check_config(cfg: DictConfig) -> None:
    """Config checks that need no data: fail before a run is opened."""
    missing = OmegaConf.missing_keys(cfg)
    if missing:
        raise ImblabError(
            f"missing required config values: {sorted(missing)}; set them on the command line, "
            "e.g. data.path=lots.csv data.target=failed"
        )
