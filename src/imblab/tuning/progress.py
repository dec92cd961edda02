"""After every trial: the progress bar, the study-wide ``n_trials`` budget, failures in a row."""

from __future__ import annotations

import logging
import sys
import threading

import optuna
from optuna.study import MaxTrialsCallback
from optuna.trial import FrozenTrial, TrialState

from imblab.tuning.attrs import ATTR_ERROR, ATTR_SURPLUS
from imblab.tuning.settings import MAX_CONSECUTIVE_FAILURES
from imblab.tuning.study import FINISHED_STATES, best_trial, finished, trial_counts

log = logging.getLogger(__name__)


class Controller:
    """An ``optimize`` callback: progress, stop at ``n_trials`` (study-wide), stop on repeated failures.

    The budget is Optuna's ``MaxTrialsCallback`` over COMPLETE + PRUNED trials of the whole study
    (earlier runs and other workers included). A second one also counts RUNNING trials: once the
    trials other workers (or threads) are running will fill the remaining slots, starting another
    would overshoot, so this process stops too.
    """

    def __init__(self, n_trials: int, metric: str, study: optuna.Study, show_bar: bool) -> None:
        from tqdm.auto import tqdm

        self.n_trials, self.metric = n_trials, metric
        self.budget = MaxTrialsCallback(n_trials, states=FINISHED_STATES)
        self.slots = MaxTrialsCallback(n_trials, states=(*FINISHED_STATES, TrialState.RUNNING))
        self.lock = threading.Lock()
        self.failures = 0
        self.failed: FrozenTrial | None = None
        self.ran = 0
        done = finished(trial_counts(study))
        self.bar = tqdm(
            total=n_trials,
            initial=min(done, n_trials),
            desc=f"tuning {study.study_name}",
            unit="trial",
            disable=None if show_bar else True,
            file=sys.stderr,
            dynamic_ncols=True,
        )
        self._show_best(study)

    def _show_best(self, study: optuna.Study) -> str:
        best = best_trial(study)
        text = (
            f"best {self.metric}={best.value:.4f} (trial {best.number})"
            if best is not None
            else "no best yet"
        )
        self.bar.set_postfix_str(text)
        return text

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        if trial.user_attrs.get(ATTR_SURPLUS):
            return
        with self.lock:
            self.ran += 1
            if trial.state == TrialState.FAIL:
                log.warning("trial %d failed: %s", trial.number, trial.user_attrs.get(ATTR_ERROR, "?"))
                self.failures += 1
                self.failed = trial
                if self.failures >= MAX_CONSECUTIVE_FAILURES:
                    study.stop()
            else:
                self.failures = 0
            self.budget(study, trial)
            self.slots(study, trial)
            done = finished(trial_counts(study))
            self.bar.n = min(done, self.n_trials)
            best = self._show_best(study)
            self.bar.refresh()
            if self.bar.disable:
                complete = trial.state == TrialState.COMPLETE and trial.value is not None
                value = f" {self.metric}={trial.value:.4f}" if complete else ""
                log.info(
                    "trial %d %s%s (%d/%d done, %s)",
                    trial.number,
                    trial.state.name,
                    value,
                    done,
                    self.n_trials,
                    best,
                )

    @property
    def too_many_failures(self) -> bool:
        return self.failures >= MAX_CONSECUTIVE_FAILURES and self.failed is not None

    def close(self) -> None:
        self.bar.close()
