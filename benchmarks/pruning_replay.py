"""How much each pruner and early-stopping patience saves, and what it costs in best CV PR-AUC.

Runs one unpruned imblab study on SECOM (smote_enn + LightGBM, TPE seed 42, every fold of every
trial fitted, early stopping with the longest patience) and records, for each fold fit, its CPU time,
its rounds and the validation halves' log-loss curves. Because a shorter patience only stops the same
boosting sequence earlier, the fold's score under each shorter patience is computed from the same
booster. The recorded study is then replayed through Optuna's real pruners: the same trials in the
same order, each fold's recorded score reported after each fold, so a rule's cost is the CPU of the
folds it lets run. This is how ``conf/tuning/optuna.yaml``'s defaults (top-quarter percentile
pruner, patience 20) were chosen.

It is an approximation in one respect: in a live pruned study TPE sees the pruned trials and proposes
different parameters afterwards. ``benchmarks/tuning_speed.py`` measures the live study.

    python benchmarks/pruning_replay.py                          # record 50 trials (~15 min) and replay
    python benchmarks/pruning_replay.py --save /tmp/study.json   # keep the record
    python benchmarks/pruning_replay.py --load /tmp/study.json   # replay a saved record only
    python benchmarks/pruning_replay.py --trials 2               # a smoke test (~1 min)
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import optuna

from imblab.config.compose import experiment_from_config
from imblab.pipeline import model_of
from imblab.protocol.split import holdout_split
from imblab.tuning.folds import prepare_folds
from imblab.tuning.objective import FoldScorer, Objective, reports_fold_values
from imblab.tuning.study import open_session
from imblab.tuning.trainers import LightGBMTrainer, _HalvesStopper

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tuning_speed import REPO, compose_config

PATIENCES = (10, 20, 30, 50)


def stop_point(curve: list[float], patience: int) -> tuple[int, int]:
    """(best iteration, iteration training stops at) of one half under ``patience``, as _HalvesStopper."""
    best, best_iter = math.inf, 0
    for i, value in enumerate(curve):
        if value < best:
            best, best_iter = value, i + 1
        elif i + 1 - best_iter >= patience:
            return best_iter, i + 1
    return best_iter, len(curve)


class RecordingTrainer(LightGBMTrainer):
    """imblab's LightGBM trainer that also records what each shorter patience would have done."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.records: list[dict[str, Any]] = []
        self.scorer = FoldScorer("pr_auc")

    def fit_predict(self, k: int, params: dict[str, Any]) -> tuple[np.ndarray, int | None]:
        fold = self.folds[k]
        assert fold.halves is not None
        train, half_a, half_b = self._datasets(k)
        p, rounds = self.train_params(params)
        curves: dict[str, Any] = {}
        cpu = time.process_time()
        booster = lgb.train(
            p,
            train,
            num_boost_round=rounds,
            valid_sets=[half_a, half_b],
            valid_names=["a", "b"],
            callbacks=[_HalvesStopper(max(PATIENCES)), lgb.record_evaluation(curves)],
        )
        cpu = time.process_time() - cpu
        a, b = fold.halves
        by_patience = {}
        for patience in PATIENCES:
            (best_a, stop_a), (best_b, stop_b) = (
                stop_point(curves[h][self.es_metric], patience) for h in ("a", "b")
            )
            proba = np.empty(len(fold.y_val))
            proba[a] = booster.predict(fold.X_val[a], num_iteration=best_b)
            proba[b] = booster.predict(fold.X_val[b], num_iteration=best_a)
            score = self.scorer(fold.y_val, proba)
            by_patience[str(patience)] = {"stop": max(stop_a, stop_b), "score": score, "proba": proba}
        rounds_run = len(curves["a"][self.es_metric])
        self.records.append(
            {
                "fold": k,
                "cpu": cpu,
                "rounds": rounds_run,
                **{f"p{q}": {"stop": v["stop"], "score": v["score"]} for q, v in by_patience.items()},
            }
        )
        longest = by_patience[str(max(PATIENCES))]
        return longest["proba"], longest["stop"]


def record(secom_dir: str, trials: int) -> list[list[dict[str, Any]]]:
    cfg = compose_config(
        secom_dir, trials, ["tuning/pruner=none", f"tuning.early_stopping.patience={max(PATIENCES)}"]
    )
    experiment = experiment_from_config(cfg)
    dataset = experiment.load_data()
    split = holdout_split(dataset, experiment.split)
    session = open_session(experiment, dataset)
    folds = prepare_folds(dataset, split, experiment, early_stopping=True)
    trainer = RecordingTrainer(model_of(experiment.pipeline), folds, experiment.tuning.early_stopping)
    objective = Objective(
        session.specs, trainer, folds, trainer.scorer, trials, reports_fold_values(session.study.pruner)
    )
    started = time.perf_counter()
    for n in range(trials):
        session.study.optimize(objective, n_trials=1)
        print(f"\rrecorded trial {n + 1}/{trials} ({time.perf_counter() - started:.0f}s)", end="", flush=True)
    print()
    n_folds = len(folds)
    return [trainer.records[i : i + n_folds] for i in range(0, len(trainer.records), n_folds)]


def replay(
    study_record: list[list[dict[str, Any]]], pruner: optuna.pruners.BasePruner, patience: int
) -> dict[str, Any]:
    """The recorded trials in order through ``pruner``; running means reported as imblab does."""
    key = f"p{patience}"
    cpu, fits = 0.0, 0
    study = optuna.create_study(direction="maximize", pruner=pruner)

    def objective(trial: optuna.Trial) -> float:
        nonlocal cpu, fits
        scores = []
        for k, fit in enumerate(study_record[trial.number]):
            cpu += fit["cpu"] * fit[key]["stop"] / fit["rounds"]  # rounds cost about the same each
            fits += 1
            scores.append(fit[key]["score"])
            trial.report(float(np.mean(scores)), k)
            if k + 1 < len(study_record[trial.number]) and trial.should_prune():
                raise optuna.TrialPruned()
        return float(np.mean(scores))

    study.optimize(objective, n_trials=len(study_record))
    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    return {"cpu": cpu, "fits": fits, "best": study.best_value, "complete": len(complete)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument(
        "--secom-dir",
        default=os.environ.get("IMBLAB_SECOM_DIR") or str(REPO.parent / "shared" / "data" / "secom"),
    )
    parser.add_argument("--save", type=Path, help="write the recorded study here (JSON)")
    parser.add_argument("--load", type=Path, help="replay a recorded study instead of recording one")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.basicConfig(level=logging.WARNING)
    optuna.logging.set_verbosity(optuna.logging.ERROR)

    study_record = json.loads(args.load.read_text()) if args.load else record(args.secom_dir, args.trials)
    if args.save:
        args.save.write_text(json.dumps(study_record))
    fits = [fit for trial in study_record for fit in trial]
    longest = f"p{max(PATIENCES)}"
    full_cpu = sum(fit["cpu"] for fit in fits)
    best = max(np.mean([fit[longest]["score"] for fit in trial]) for trial in study_record)
    print(
        f"\n{len(study_record)} trials x {len(study_record[0])} folds, unpruned, patience {max(PATIENCES)}:"
    )
    print(f"  fit CPU {full_cpu:.0f}s, best CV PR-AUC {best:.4f}")
    print("\npatience  rounds/fit  fold PR-AUC change vs longest (mean, SD)  fit CPU")
    for patience in PATIENCES:
        key = f"p{patience}"
        change = [f[key]["score"] - f[longest]["score"] for f in fits]
        cpu = sum(f["cpu"] * f[key]["stop"] / f["rounds"] for f in fits)
        rounds = np.mean([f[key]["stop"] for f in fits])
        shift = f"{np.mean(change):+.4f} ({np.std(change):.4f})"
        print(f"{patience:8d}  {rounds:10.0f}  {shift:40} {cpu:6.0f}s")

    rules = {
        "none": lambda: optuna.pruners.NopPruner(),
        "median, 5 startup": lambda: optuna.pruners.MedianPruner(n_startup_trials=5),
        "top third, 5 startup": lambda: optuna.pruners.PercentilePruner(33, n_startup_trials=5),
        "top quarter, 5 startup": lambda: optuna.pruners.PercentilePruner(25, n_startup_trials=5),
        "top quarter, 10 startup": lambda: optuna.pruners.PercentilePruner(25, n_startup_trials=10),
    }
    print("\npatience  pruner                    fold fits  fit CPU  saving  best CV PR-AUC  complete")
    for patience in PATIENCES[1:]:
        for name, make in rules.items():
            r = replay(study_record, make(), patience)
            print(
                f"{patience:8d}  {name:24} {r['fits']:10d} {r['cpu']:7.0f}s {full_cpu / r['cpu']:6.2f}x"
                f" {r['best']:15.4f} {r['complete']:9d}"
            )


if __name__ == "__main__":
    main()
