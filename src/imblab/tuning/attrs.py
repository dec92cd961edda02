"""What imblab writes into an Optuna storage besides Optuna's own records: user attribute names.

Trials and studies outlive a process (resume, workers), so these names are a storage format: keep them.
"""

from __future__ import annotations

from imblab.secrets import mask

# Trial user attributes
ATTR_FOLD_SCORES = "imblab.fold_scores"  # per step: every fold done (train), every epoch (panel)
ATTR_N_ESTIMATORS = "imblab.n_estimators"  # mean early-stopped rounds: the refit's n_estimators
ATTR_WORKER = "imblab.worker"  # host:pid of the process that ran the trial
ATTR_ERROR = "imblab.error"  # why a FAIL trial failed
ATTR_SURPLUS = "imblab.surplus"  # started when the study already held n_trials: ran nothing
ATTR_TRIAL_RUN = "imblab.mlflow_trial_run_id"  # the trial's MLflow run, opened when the trial starts

# Study user attributes
ATTR_SIGNATURE = "imblab.signature"  # hash of the setup: a study is only continued with the same one
ATTR_SETUP = "imblab.setup"  # the setup itself, to name what differs
ATTR_METRIC = "imblab.metric"
ATTR_RUN_ID = "imblab.mlflow_run_id"  # the latest training run that tuned with this study


def error_attr(exc: BaseException) -> str:
    """The ``ATTR_ERROR`` value of a failed trial: the exception, passwords masked, bounded in length."""
    return mask(f"{type(exc).__name__}: {exc}")[:2000]
