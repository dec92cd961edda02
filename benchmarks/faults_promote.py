"""Fault drill (issue 10, item 5): concurrent ``imblab promote`` of one model name on one store.

The reported fault: three promotes at once all registered a version of the same run, each tagged
``first_champion``, each printing "is now @champion"; a fourth then moved champion back on an
improvement of +0.0000. The drill, on a fresh SQLite store in ``workdir``:

1. trains one small binary run (synthetic data, LightGBM; imblab's own code path);
2. starts 3 real ``imblab promote`` subprocesses and lines them up on the promotion lock: this process
   holds it until all 3 have chosen and scored the run and wait for it, then releases it, so all 3 enter
   the critical section at the same moment (the worst case; ``tests/support/promotions.py``);
3. promotes once more (the champion again: must be a no-op);
4. retrains the identical run and promotes it (a tie, +0: must not move champion).

``drill(workdir)`` returns ``(name, figure, target)`` rows for ``benchmarks/faults.py``, which gathers the
drills; run alone, it prints them:

    python benchmarks/faults_promote.py [--workdir DIR]
    python benchmarks/faults.py --only promote
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

from hydra import compose, initialize_config_dir
from mlflow.tracking import MlflowClient

from imblab.app.hydra import conf_dir
from imblab.config.compose import experiment_from_config
from imblab.experiment import RunOutcome, run_experiment
from imblab.registry.gate import CHAMPION
from imblab.registry.promote import promote

# Lining processes up on the lock is a test helper, shared with the tests (tests/support).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.conftest import FAST as TRAIN  # the tests' small synthetic binary run
from tests.support.promotions import lined_up_promotes

NAME = "drill-defects"
EXPERIMENT = "drill"


def _train(uri: str, cache: Path) -> RunOutcome:
    overrides = [*TRAIN, f"tracking.uri={uri}", f"tracking.experiment={EXPERIMENT}", f"cache.dir={cache}"]
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    return run_experiment(experiment_from_config(cfg))


def drill(workdir: Path) -> list[tuple[str, float, str]]:
    """Run the drill on a fresh store under ``workdir``; ``(name, figure, target)`` per measured fact."""
    workdir = Path(workdir)
    store = workdir / "store"
    shutil.rmtree(store, ignore_errors=True)
    store.mkdir(parents=True)
    uri = f"sqlite:///{store / 'mlflow.db'}"
    client = MlflowClient(uri)
    run = _train(uri, workdir / "cache")

    start = time.perf_counter()
    done = lined_up_promotes(3, ["--experiment", EXPERIMENT, "--name", NAME], uri, NAME, workdir / "promotes")
    seconds = time.perf_counter() - start
    stdout = "".join(d.stdout for d in done)
    of_run = client.search_model_versions(f"name = '{NAME}' and run_id = '{run.run_id}'")
    decisions = {v.tags.get("imblab.decision") for v in of_run}

    before = len(client.search_model_versions(f"name = '{NAME}'"))
    again = promote(EXPERIMENT, model_name=NAME, tracking_uri=uri)
    new_versions = len(client.search_model_versions(f"name = '{NAME}'")) - before

    champion = client.get_model_version_by_alias(NAME, CHAMPION).version
    twin = _train(uri, workdir / "cache")
    tie = promote(EXPERIMENT, model_name=NAME, tracking_uri=uri)
    moved = client.get_model_version_by_alias(NAME, CHAMPION).version != champion

    return [
        ("concurrent promotes that exited 0", sum(d.returncode == 0 for d in done), "3"),
        ("concurrent promotes that met at the lock", sum("waiting for" in d.stderr for d in done), "3"),
        ("versions for the run after 3 concurrent promotes", len(of_run), "1"),
        ("decisions recorded on the run's versions", len(decisions), "1"),
        ("'is now @champion' lines among the 3", stdout.count(f"is now @{CHAMPION}"), "1"),
        ("promotes among the 3 that reported a no-op", stdout.count("no-op:"), "2"),
        ("seconds for the 3 concurrent promotes", round(seconds, 1), "<= 120"),
        ("new versions after re-promoting the champion", new_versions, "0"),
        (
            "re-promote of the champion reported as already champion",
            int(again.outcome == "already_champion"),
            "1",
        ),
        (
            f"champion moves on a tie (identical retrain, improvement {tie.improvement:+.4f})",
            int(moved),
            "0",
        ),
        ("tie promoted the identical retrain's run", int(tie.run_id == twin.run_id and tie.promoted), "0"),
    ]


def main() -> None:
    from faults import meets  # benchmarks/faults.py, beside this script: the gatherer's own rule

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workdir", default=None, help="where the store goes (default: a temporary directory)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="imblab-drill-") as tmp:
        rows = drill(Path(args.workdir or tmp))
    width = max(len(name) for name, _, _ in rows)
    print(f"{'figure':<{width}} {'value':>8}  target  ok")
    for name, value, target in rows:
        print(f"{name:<{width}} {value:>8g}  {target:<6}  {'yes' if meets(value, target) else 'NO'}")


if __name__ == "__main__":
    main()
