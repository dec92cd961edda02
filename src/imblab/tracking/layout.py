"""Names that tie runs, artifacts and readers together: tags, roles and artifact paths.

Writers (``imblab.tracking.artifacts``, ``imblab.experiment``) and readers (compare, registry,
serving) import them from here only, so the layout of a run is defined once.
"""

from __future__ import annotations

# Tags
TAG_ROLE = "imblab.role"  # what a run is: one of the ROLE_* values
TAG_SWEEP = "imblab.sweep_id"  # the parent run id of the sweep a job belongs to
TAG_ERROR = "imblab.error"
TAG_ERROR_TYPE = "imblab.error_type"
TAG_COMMAND = "imblab.command"  # the command as typed (shlex-quoted, rerunnable)
COMMAND_ENV = "IMBLAB_COMMAND"  # where imblab.app.main leaves that command for the runs (and sweep workers)
TAG_VERSION = "imblab.version"
TAG_N_CHILDREN = "imblab.n_children"  # a sweep parent: its job runs, counted when it ends
TAG_N_JOBS = "imblab.n_jobs"  # a sweep parent: the jobs it launches, recorded when it starts
TAG_N_FINISHED = "imblab.n_finished"  # a sweep parent: its job runs that FINISHED, counted when it ends
TAG_SWEPT_KEYS = "imblab.swept_keys"  # a sweep parent: JSON list of the keys it varies, in sweep order
TAG_BEST_RUN = "imblab.best_run_id"  # a sweep parent: its best job by the selection metric (cv_/val_)
TAG_FIT_KEY = "imblab.fit_key"
TAG_CACHE_HIT = "imblab.cache_hit"
TAG_SOURCE_RUN = "imblab.source_run_id"  # a set-threshold run -> the training run it re-thresholds
TAG_SOURCE_VERSION = "imblab.source_version"
TAG_DATA_FINGERPRINT = "data_fingerprint"
# Tags of tuned runs, tune-worker runs and trial runs (written by imblab.tracking.trials)
TAG_STUDY = "optuna.study_name"
TAG_STORAGE = "optuna.storage"  # the study's storage URL, password masked
TAG_STUDY_METRIC = "optuna.metric"
TAG_STUDY_DIRECTION = "optuna.direction"
TAG_TRIAL_NUMBER = "optuna.trial_number"
TAG_TRIAL_STATE = "optuna.state"  # COMPLETE | PRUNED | FAIL (a PRUNED trial's run is FINISHED)
TAG_STUDY_RUN = "imblab.study_run_id"  # a tune-worker run -> the latest training run of its study
# Where a run lives (written at its start by imblab.tracking.lifecycle) and why it was killed
TAG_HOST = "imblab.host"
TAG_PID_SCOPE = "imblab.pid_scope"  # boot id / PID namespace: where TAG_PID names one process
TAG_PID = "imblab.pid"
TAG_PROCESS_START = "imblab.process_start"  # clock ticks since boot: tells a reused pid apart
TAG_HEARTBEAT = "imblab.heartbeat"  # unix seconds of the last beat, rewritten while the run lives
TAG_HEARTBEAT_SECONDS = "imblab.heartbeat_seconds"  # the beat interval the run promised
TAG_KILLED = "imblab.killed_reason"  # why a run ended KILLED (a signal, or the reaper's finding)
TAG_WORKER_RUN = "imblab.worker_run_id"  # a trial run nested under a training run -> the worker that ran it
TAG_RETRY_OF = "optuna.retry_of"  # a trial run of a retried trial -> the number of the trial it retries

# Roles (values of TAG_ROLE)
ROLE_RUN = "run"  # a training run: one frozen model
ROLE_SWEEP = "sweep"  # a multirun's parent
ROLE_TRIAL = "trial"  # one Optuna trial, nested under the run (or worker) that ran it
ROLE_WORKER = "tune-worker"  # a tune-worker's own run
ROLE_SET_THRESHOLD = "set_threshold"  # a re-thresholded model version's run

# Artifacts of a training run
MODEL_NAME = "model"  # the frozen pyfunc, log_model(name=...)
CONFIG_YAML = "config.yaml"  # the resolved config
METRICS_JSON = "metrics.json"
THRESHOLD_JSON = "threshold.json"
SCORES_DIR = "scores"
OOF_SCORES = f"{SCORES_DIR}/oof_scores.parquet"  # row, fold, y_true, score
TEST_SCORES = f"{SCORES_DIR}/test_scores.parquet"  # row, y_true, score, decision
CV_FOLDS_CSV = f"{SCORES_DIR}/cv_folds.csv"
# evaluation=repeated_cv: one row per outer fold (step, repeat, fold, n_train, n_test, threshold, metrics)
# and one row per (outer fold, outer-test row) (step, repeat, fold, row, y_true, score, threshold, decision)
RCV_FOLDS_CSV = f"{SCORES_DIR}/rcv_folds.csv"
RCV_SCORES = f"{SCORES_DIR}/rcv_scores.parquet"
PLOTS_DIR = "plots"
# rank, feature (after preprocessing), importance, share, kind; only for models that have importances
FEATURE_IMPORTANCES_CSV = "feature_importances.csv"
REPORT_DIR = "report"  # a comparison report on a sweep's parent
PROMOTIONS_DIR = "promotions"  # a promoted run: <model name>-v<version>.json, the full gate decision
TUNING_DIR = "tuning"  # study summary, trials table and plots on a tuned run

# The panel workload (imblab panel): its runs carry TAG_WORKLOAD = WORKLOAD_PANEL and role ROLE_RUN
TAG_WORKLOAD = "imblab.workload"
WORKLOAD_PANEL = "panel"
WORKLOAD_BINARY = "binary"  # what a run without TAG_WORKLOAD is (imblab train)
DECISION_JSON = "decision.json"  # the decision policy, its offsets and what they were chosen on
PANEL_TEST_PREDICTIONS = f"{SCORES_DIR}/test_predictions.parquet"  # person, time, y, predictions
