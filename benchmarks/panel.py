"""The panel workload's cost on nlswork: seconds per LSTM epoch, and what per-epoch pruning saves a study.

Both parts use imblab's own code paths (``imblab panel`` composed by Hydra from ``conf/panel``, then
``load_nlswork`` -> ``build_examples`` -> ``person_split`` -> ``Standardizer`` fitted on training persons):

1. one fit of ``model=lstm`` with the YAML's default hyper-parameters on the training persons, validated
   on the validation persons every epoch; it prints seconds per epoch (training + validation): the first
   (warm-up: tensorising and building the network included) and the mean and median of the later ones.
2. the panel Optuna study of ``imblab panel tuning=optuna`` (``imblab.panel.tuning``: same session,
   objective and trial budget) run twice on the same data, search space and TPE seed:

   * pruned: imblab's default ``tuning/pruner`` (percentile: keep a trial only while its per-epoch
     ``val_objective`` is in the top quarter of COMPLETE trials at that epoch, after 5 startup trials);
   * baseline: the same study with ``tuning/pruner=none`` (NopPruner): every trial runs until early stopping.

   It prints wall and CPU seconds of each, the baseline/pruned ratios (target: pruned >= 2x faster) and
   the best ``val_objective`` (minimised) of each. Noise measure: the SD of ``val_objective`` over refits of
   the baseline's best parameters with 3 model seeds; the gap is "within noise" if it is at most one SD.
   Once a trial is pruned the two TPE samplers see different histories, so later trials differ.

    python benchmarks/panel.py                                  # 30 trials each, the issue's setting
    python benchmarks/panel.py --trials 6 --max-epochs 4        # a quick look (a few minutes)
    python benchmarks/panel.py --skip-study                     # seconds per epoch only

CPU time is the process's (all torch threads, ``torch.threads=2`` by default); the machine may be shared,
so the CPU-time ratio is the one other processes do not distort.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import time
import warnings
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
from hydra import compose, initialize_config_dir

from imblab.app.panel import panel_conf_dir, search_path_override
from imblab.config.panel import PanelExperiment, panel_experiment_from_config
from imblab.panel.examples import Examples, Standardizer, build_examples, person_split
from imblab.panel.tuning import (
    PanelObjective,
    _optimize,
    model_value,
    open_panel_session,
    study_setup,
    with_params,
)
from imblab.tuning.progress import Controller
from imblab.tuning.run import best_params


@dataclass
class StudyResult:
    name: str
    wall: float
    cpu: float
    best_value: float
    best_params: dict[str, Any]
    states: Counter[str]
    epochs: int  # epochs trained over all trials


def experiment_for(pruner: str, trials: int, max_epochs: int | None, extra: list[str]) -> PanelExperiment:
    overrides = ["model=lstm", "tracking.log_model=false", *extra]
    if max_epochs is not None:
        overrides.append(f"model.max_epochs={max_epochs}")
    if pruner:
        overrides += ["tuning=optuna", f"tuning/pruner={pruner}", f"tuning.n_trials={trials}"]
        overrides.append("tuning.progress_bar=false")
    with initialize_config_dir(config_dir=str(panel_conf_dir()), version_base="1.3"):
        cfg = compose("panel", overrides=[*overrides, search_path_override()])
    return panel_experiment_from_config(cfg)


def prepare(experiment: PanelExperiment) -> tuple[Any, Examples, Examples]:
    """As ``run_panel`` does: examples, person split, standardiser fitted on the training persons."""
    panel = experiment.load_data()
    examples = build_examples(panel, experiment.max_len)
    persons = person_split(examples, experiment.split.fractions, experiment.split.seed)
    raw = [examples.of_persons(p) for p in persons[:2]]
    scaler = Standardizer().fit(raw[0])
    return panel, scaler.transform(raw[0]), scaler.transform(raw[1])


def epoch_seconds(model: Any, train: Examples, val: Examples) -> list[float]:
    stamps = [time.perf_counter()]
    model.fit(train, val, on_epoch=lambda epoch, logs: stamps.append(time.perf_counter()))
    return list(np.diff(stamps))


def run_study(
    name: str, experiment: PanelExperiment, panel: Any, train: Examples, val: Examples
) -> StudyResult:
    """``tune_panel`` without the MLflow parent run: same session, objective, budget and optimize loop."""
    spec, model = experiment.tuning, experiment.model
    setup = study_setup(experiment.config, panel, experiment.model_name)
    wall, cpu = time.perf_counter(), time.process_time()
    session = open_panel_session(spec, experiment.search_space, model, experiment.model_name, setup)
    study = session.study
    controller = Controller(int(spec.n_trials), session.metric, study, False)
    _optimize(study, PanelObjective(model, session.specs, train, val), spec, [controller])
    best, params = best_params(study)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    epochs = sum(len(t.intermediate_values) for t in study.trials)
    states = Counter(t.state.name for t in study.trials)
    return StudyResult(name, wall, cpu, float(best.value), params, states, epochs)  # type: ignore[arg-type]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--trials", type=int, default=30, help="trials of each study (default: 30, the issue's)"
    )
    parser.add_argument("--max-epochs", type=int, default=None, help="model.max_epochs (default: the YAML's)")
    parser.add_argument("--noise-seeds", type=int, default=3, help="refits of the baseline's best (0: skip)")
    parser.add_argument("--skip-study", action="store_true", help="seconds per epoch only")
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides for all, e.g. torch.threads=1")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.basicConfig(level=logging.WARNING)
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    plain = experiment_for("", args.trials, args.max_epochs, args.overrides)
    panel, train, val = prepare(plain)
    model = plain.model
    if getattr(model, "n_classes", 0) is None:
        model.n_classes = panel.n_classes
    print(
        f"nlswork: {len(panel.frame)} rows, {panel.n_persons} persons; examples: {len(train)} training "
        f"({len(np.unique(train.person))} persons), {len(val)} validation ({len(np.unique(val.person))} "
        f"persons); lstm units {model.units1}/{model.units2}, batch {model.batch_size}, max_epochs "
        f"{model.max_epochs}, patience {model.patience}, {model.n_threads} torch threads; {os.cpu_count()} "
        f"CPUs, load average {os.getloadavg()[0]:.1f}",
        flush=True,
    )

    seconds = epoch_seconds(model, train, val)
    later = seconds[1:]
    print(f"\n1. lstm seconds per epoch (train + validation), {len(seconds)} epochs run:")
    print(f"   first (warm-up) {seconds[0]:.2f} s")
    if later:
        print(
            f"   later {len(later)}: mean {statistics.mean(later):.2f} s, "
            f"median {statistics.median(later):.2f} s"
        )
    if args.skip_study:
        return

    results = []
    for name, pruner in (("pruned", "percentile"), ("baseline", "none")):
        experiment = experiment_for(pruner, args.trials, args.max_epochs, args.overrides)
        if getattr(experiment.model, "n_classes", 0) is None:
            experiment.model.n_classes = panel.n_classes
        results.append(run_study(name, experiment, panel, train, val))
        print(f"{name} study done in {results[-1].wall:.0f} s", flush=True)
    pruned, base = results

    print(f"\n2. study of {args.trials} trials (TPE seed {experiment.tuning.seed}), val_objective minimised")
    print(f"{'':10} {'wall s':>8} {'CPU s':>8} {'epochs':>7} {'best val_objective':>19}  trials")
    for r in results:
        states = ", ".join(f"{n} {s.lower()}" for s, n in sorted(r.states.items()))
        print(f"{r.name:10} {r.wall:8.1f} {r.cpu:8.1f} {r.epochs:7d} {r.best_value:19.4f}  {states}")
    print(f"pruned best params: {pruned.best_params}")
    print(f"baseline best params: {base.best_params}")
    wall_ratio, cpu_ratio = base.wall / pruned.wall, base.cpu / pruned.cpu
    print(f"\nwall-time ratio baseline/pruned: {wall_ratio:.2f}x   CPU-time ratio: {cpu_ratio:.2f}x")
    print(f"target >= 2x faster (wall): {'met' if wall_ratio >= 2 else 'NOT met'}")
    gap = pruned.best_value - base.best_value  # > 0: pruning found a worse best
    print(
        f"best val_objective: pruned {pruned.best_value:.4f} vs baseline {base.best_value:.4f} "
        f"(gap {gap:+.4f})"
    )
    if args.noise_seeds > 0:
        seed0 = int(experiment.model.seed)
        values = []
        for seed in range(seed0, seed0 + args.noise_seeds):
            refit = with_params(experiment.model, {**base.best_params, "seed": seed}).fit(train, val)
            values.append(model_value(refit, val))
        sd = float(np.std(values, ddof=1)) if len(values) > 1 else float("nan")
        print(
            f"noise: SD of val_objective over refits of the baseline's best params with model seeds "
            f"{seed0}..{seed0 + args.noise_seeds - 1}: {sd:.4f} "
            f"(values {', '.join(f'{v:.4f}' for v in values)})"
        )
        print(f"target gap within noise (gap <= 1 SD): {'met' if gap <= sd else 'NOT met'}")


if __name__ == "__main__":
    main()
