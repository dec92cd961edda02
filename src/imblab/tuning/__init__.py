"""Optuna tuning inside a run: honest cross-validation, fast trials, resumable and shared by workers.

``imblab train tuning=optuna`` calls :func:`imblab.tuning.run.tune` inside the run's MLflow run;
:func:`imblab.experiment.run_experiment` then refits the best parameters on the whole training set,
picks the threshold on their out-of-fold scores and logs the frozen model. ``imblab tune-worker``
(:func:`imblab.tuning.run.run_worker`) adds processes to the same study::

    imblab train tuning=optuna tuning.n_trials=50 sampler=smote_enn model=lgbm threshold=best_f1
    imblab train tuning=optuna tuning.storage=sqlite:///mlruns/optuna.db tuning.study_name=secom-lgbm
    imblab tune-worker tuning.storage=sqlite:///mlruns/optuna.db tuning.study_name=secom-lgbm

A worker takes the same overrides as ``imblab train`` (it loads the same data, split and folds) and
runs the study's remaining trials; the training run waits for other workers' running trials
(``tuning.wait_for_workers`` seconds) before it refits the best. Across machines, point everyone at
one database server, e.g. ``tuning.storage=postgresql://optuna@db-host:5432/optuna`` with the password
in ``PGPASSWORD`` or ``~/.pgpass`` (libpq reads them; a password in the URL works too and is masked
wherever imblab writes or prints it, see ``imblab.secrets``). The driver must be installed: psycopg 3
(``psycopg[binary]``) for ``postgresql://`` under SQLAlchemy 2.1, ``psycopg2-binary`` for
``postgresql+psycopg2://``; the data must be readable on every machine.

Modules, in the order a study runs
    ``settings``   checks of ``tuning.*`` (metric, direction, counts, early stopping) before any trial
    ``space``      ``model.search_space`` parsed into ``ParamSpec`` ranges, checked against the model
    ``storage``    ``tuning.storage`` URL -> Optuna storage (in memory, SQLite/RDB, journal file)
    ``study``      the study's setup and signature, opening or resuming it: ``open_session``
    ``workers``    which process runs a trial; RUNNING trials of dead workers marked FAIL
    ``folds``      the tuning folds, preprocessed and resampled once per study
    ``trainers``   fitting the model on a cached fold: any estimator, or LightGBM's fast path
    ``objective``  one trial: fold by fold, scored, reported to the pruner
    ``progress``   after each trial: progress bar, the ``n_trials`` budget, failures in a row
    ``run``        ``tune`` (inside ``imblab train``) and ``run_worker`` (``imblab tune-worker``)
    The MLflow side (a nested run per trial, the study's summary on the parent run) is
    ``imblab.tracking.trials``; every input arrives as typed specs (``imblab.config.specs.TuningSpec``
    inside ``Experiment``), never as the raw Hydra config.

How a trial is scored
    The training rows are split into ``tuning.folds`` stratified folds (``cv.shuffle`` / ``cv.seed``).
    Preprocessing and the sampler are fitted on each fold's training part only, so a validation fold
    never holds synthetic neighbours of its own rows. Resampling does not depend on the model's
    hyperparameters, so every fold is preprocessed and resampled once per study (per process) and
    the arrays are reused by every trial; for LightGBM the fold's ``lightgbm.Dataset`` (the binning)
    is built once as well (``feature_pre_filter=False`` so ``min_child_samples`` may vary). A trial
    fits only the model (a clone of the run pipeline's unfitted model with the trial's parameters),
    fold by fold, and its value is the mean of the per-fold scores.

Metric (``tuning.metric``)
    Any metric of :data:`imblab.metrics.names.METRIC_NAMES` except ``n``, ``threshold`` and
    ``positive_rate``; ``brier``, ``expected_cost``, ``fp`` and ``fn`` are minimised, the others
    maximised. Threshold-free metrics (``pr_auc``, ``roc_auc``, ``brier``) are computed on each
    validation fold's scores. Threshold-dependent ones are computed on each validation fold at the
    threshold the configured policy (``threshold=...``, with ``costs``) picks on that fold's scores:
    the best operating point the trial's ranking offers under that policy, measured the same way for
    every trial.

Pruning (the ``tuning/pruner`` config group)
    ``tuning/pruner=percentile`` (the default), ``median``, ``wilcoxon`` or ``none``; each is a plain
    ``_target_: optuna.pruners.X`` YAML, so its parameters are overrides (``tuning.pruner.percentile=10``)
    and any Optuna pruner can be a YAML of your own. After each fold the trial reports to the pruner.
    What it reports follows from the pruner's class: Optuna's ``WilcoxonPruner`` gets the fold's own
    score with the fold index as step, the pairing its signed-rank test needs (with no pruning, too,
    the fold's own score is what is recorded); every other pruner gets the running mean over the folds
    done so far, what ``PercentilePruner`` / ``MedianPruner`` compare: they prune a trial whose best
    running mean is below the given percentile (25: outside the top quarter; median: the bottom half)
    of COMPLETE trials' running means at the same fold, once ``n_startup_trials`` trials are
    COMPLETE. The folds are the same for every trial, so the comparison is paired by fold. With 5
    folds, Wilcoxon's test cannot reach p < 0.1 before four folds are worse than the best trial's, so
    it prunes late (it suits many folds or repeated CV). PRUNED trials count towards ``n_trials``;
    the best trial is always a COMPLETE one. Why the top quarter: replaying one 50-trial SECOM study
    (smote_enn + LightGBM, no pruning, every fold recorded; ``benchmarks/pruning_replay.py``) under
    each rule, keeping the top quarter cost 90 fold fits against 130 for the median and 250 for none,
    and its best trial (0.188) was within 0.013 of the unpruned study's best (0.201), far inside one
    standard error across folds (0.04). A stricter pruner risks dropping a trial whose first fold is
    unlucky; set ``tuning/pruner=median`` or ``none`` when trials are cheap.

Early stopping (LightGBM only, ``tuning.early_stopping``) and why the reported score stays honest
    Each validation fold is split, stratified, into halves A and B. The model is fitted once on the
    fold's training part while LightGBM tracks ``early_stopping.metric`` on both halves; training
    stops when both halves have not improved for ``patience`` rounds (or at the trial's
    ``n_estimators``). Rows of A are then scored with the model truncated at the iteration that was
    best *on B*, and rows of B at the iteration best *on A*: no validation row's label influences the
    iteration its own score comes from, and the model never sees the validation fold. The trial's
    ``n_estimators`` acts as a cap; the refit uses the mean chosen iteration, recorded on the trial as
    ``imblab.n_estimators`` and returned in the best parameters. An inner split carved from the
    fold's training part is the other honest design, but it takes a fifth of the few positives away
    from training: on SECOM (smote_enn, 8 random configurations, 5 folds) it lowered the mean fold
    PR-AUC from 0.162 (no early stopping) to 0.152, while the cross-fitted halves kept 0.160 at 74%
    of the CPU time. Stopping on PR-AUC or ROC-AUC of a half fold (~8 positives) stopped at noise
    (0.128 / 0.136), hence ``binary_logloss``. ``patience`` 20: in the replayed study above, 20
    rounds instead of 50 cut the boosting rounds per fold fit from 518 to 429 (mean) and changed a
    fold's PR-AUC by -0.0013 on average (SD 0.0085), which is noise next to fold-to-fold differences.

Storage (``tuning.storage``) and study name
    ``null``                     in memory: this process only, nothing to resume
    ``sqlite:///optuna.db``      SQLite, relative to the working directory (``sqlite:////abs/x.db``)
    ``journal:optuna.log``       Optuna's JournalStorage on a file (``journal:///abs/x.log``); a bare
                                 path ending in ``.log`` / ``.journal`` means the same
    ``postgresql://u:pw@host/db``  any SQLAlchemy URL (needs its driver, e.g. ``psycopg2-binary``):
                                 workers on several machines share the study through the server
    SQLite and journal files serve workers on one machine (or a shared file system for journals);
    relative paths are relative to each process's working directory.
    ``tuning.study_name`` defaults to a name derived from the setup (data, split, folds, sampler,
    model, search space, metric), so rerunning the same command resumes the same study.

Resume and workers
    ``n_trials`` counts COMPLETE + PRUNED trials of the study over all runs and workers (Optuna's
    ``MaxTrialsCallback`` with those states): a rerun or a worker runs trials until the study holds
    that many, then stops; it also stops when the trials other workers are running will fill the
    remaining slots. Trial numbers come from Optuna's storage, so they never repeat. When two workers
    start a trial at the same moment for the last slot, the one with the higher trial number is
    recorded as FAIL with ``imblab.surplus`` and runs nothing. A study remembers its setup: a rerun or
    worker with different data, folds, sampler, model, search space or metric is refused before any
    trial runs, as is a metric whose direction differs from the study's. Three failed trials in a row
    stop the study with an error.

Dead workers (``tuning.heartbeat_interval``, ``grace_period``, ``retries``; ``workers``)
    A RUNNING trial of a worker that died is found by Optuna's heartbeat on SQL storages (no beat for
    ``grace_period`` seconds, default two intervals: any worker on any machine notices before its next
    trial) and, on this machine and for any storage, by its process being gone. It is marked FAIL, its
    MLflow trial run ends KILLED with ``imblab.killed_reason``, and Optuna's own retry callback
    (``RetryHeartbeatStaleTrialCallback``, formerly ``RetryFailedTrialCallback``) queues it again with
    the same parameters, up to ``retries`` times; the training run runs queued retries before it
    refits. A grace period for a journal storage is refused: heartbeats are an RDB feature.

MLflow
    Every trial is a nested child run (``imblab.role=trial``), opened RUNNING when the trial starts (its
    id on the trial as ``imblab.mlflow_trial_run_id``) and ended with it. Its parent is the training
    run of the study: trials of ``imblab tune-worker`` nest under it too while it runs (tag
    ``imblab.worker_run_id`` names the worker's own run, ``imblab.role=tune-worker``), and under the
    worker's own run otherwise (no training run, or one that has ended). A trial run holds the
    trial's parameters, per-fold scores (``cv_fold_<metric>``, step = fold), value, duration and
    state: tag ``optuna.state`` COMPLETE / PRUNED / FAIL, run status FINISHED / FINISHED / FAILED (a pruned
    trial is not an error); run names say the value or where it stopped (``trial-7 pr_auc=0.1812``,
    ``trial-8 pruned@fold 2``). The study names its metric (``set_metric_names``), so Optuna's plots and
    optuna-dashboard label their axis with it.
    The parent logs ``best_params.*``, ``tuning_best_value``, trial counts, the optimisation-history
    and parameter-importance plots, ``tuning/trials.csv`` and the study's storage URL (password
    masked) and name (tags ``optuna.storage`` / ``optuna.study_name``).
"""
