"""What does the team server cost, and does it lose anything? Target: 0 runs lost, 0 stuck, on both.

Two workloads, each run against the team stack (PostgreSQL 15 + MLflow tracking server with its
artifacts in an S3-compatible bucket, all on loopback, started with ``imblab team-server start
--s3-trial``) and against the embedded store (SQLite tracking + SQLite study in a temp directory):

  sweep : a 20-job joblib sweep (5 samplers x 4 threshold policies, synthetic data, 2 joblib workers)
  study : a 30-trial study shared by two ``imblab tune-worker`` processes

For each it prints the wall time, the ratio server / embedded, and what went wrong: runs lost (a job
or trial without its FINISHED run, trials missing from the study) and runs stuck (RUNNING after the
commands ended). The machine's load average is printed too: on a shared machine compare ratios.

    python benchmarks/team.py            # needs PostgreSQL's server binaries (see imblab team-server)
    python benchmarks/team.py --quick    # 4 jobs, 6 trials
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.conftest import FAST  # noqa: E402
from tests.support.team import team_stack  # noqa: E402

SAMPLERS = ("none", "smote", "random_over", "random_under", "smote_tomek")
POLICIES = ("fixed", "best_f1", "min_cost", "max_roi")
TRIAL_ARGS = (
    *FAST,
    "tuning=optuna",
    "tuning.progress_bar=false",
    "data.n_samples=2000",
    "model.search_space.n_estimators.low=100",
    "model.search_space.n_estimators.high=300",
    "tuning.early_stopping.enabled=false",
    "tuning/pruner=none",
)


@dataclass
class Outcome:
    seconds: float
    expected: int
    finished: int
    lost: int
    stuck: int


def imblab(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "imblab", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def finish(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        out = proc.communicate(timeout=3600)[0]
        if proc.returncode != 0:
            sys.exit(f"benchmark command failed ({proc.args}):\n{out[-3000:]}")


def sweep(uri: str, cwd: Path, env: dict[str, str], samplers: tuple[str, ...]) -> Outcome:
    from tests.support.cli import runs_of

    args = [
        "train", "-m", *[o for o in FAST if not o.startswith("sampler=")], f"sampler={','.join(samplers)}",
        f"threshold={','.join(POLICIES)}", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
        f"tracking.uri={uri}", "tracking.experiment=bench-sweep",
    ]  # fmt: skip
    start = time.perf_counter()
    finish([imblab(args, cwd, env)])
    seconds = time.perf_counter() - start
    runs = runs_of(uri, "bench-sweep")
    jobs = [r for r in runs if r.data.tags.get("imblab.role") == "run"]
    expected = len(samplers) * len(POLICIES)
    done = sum(r.info.status == "FINISHED" for r in jobs)
    return Outcome(seconds, expected, done, expected - done, sum(r.info.status == "RUNNING" for r in runs))


def study(uri: str, storage: str, cwd: Path, env: dict[str, str], n_trials: int) -> Outcome:
    import optuna
    from optuna.trial import TrialState

    from imblab.tuning.storage import open_storage
    from tests.support.cli import runs_of

    args = [
        "tune-worker", *TRIAL_ARGS, f"tuning.n_trials={n_trials}", f"tuning.storage={storage}",
        "tuning.study_name=bench", f"tracking.uri={uri}", "tracking.experiment=bench-study",
    ]  # fmt: skip
    start = time.perf_counter()
    finish([imblab(args, cwd, env) for _ in range(2)])
    seconds = time.perf_counter() - start
    os.environ["PGPASSFILE"] = env.get("PGPASSFILE", "")
    trials = optuna.load_study(study_name="bench", storage=open_storage(storage)).trials
    done = sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
    runs = runs_of(uri, "bench-study")
    logged = sum(r.data.tags.get("imblab.role") == "trial" and r.info.status != "RUNNING" for r in runs)
    stuck = sum(r.info.status == "RUNNING" for r in runs) + sum(t.state == TrialState.RUNNING for t in trials)
    return Outcome(seconds, n_trials, done, max(n_trials - done, 0) + max(done - logged, 0), stuck)


def report(name: str, embedded: Outcome, server: Outcome) -> bool:
    ratio = server.seconds / embedded.seconds
    print(f"{name}: embedded {embedded.seconds:6.1f} s, server {server.seconds:6.1f} s: ratio {ratio:.2f}x")
    ok = True
    for label, o in (("embedded", embedded), ("server", server)):
        good = o.lost == 0 and o.stuck == 0 and o.finished >= o.expected
        ok &= good
        print(f"    {label:8s}: {o.finished}/{o.expected} finished, lost {o.lost}, stuck {o.stuck}  "
              f"-> {'PASS' if good else 'FAIL'} (target 0 / 0)")  # fmt: skip
    return ok


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="a 4-job sweep and a 6-trial study")
    args = p.parse_args()
    samplers = SAMPLERS[:1] if args.quick else SAMPLERS
    n_trials = 6 if args.quick else 30
    print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    results: dict[str, dict[str, Outcome]] = {"sweep": {}, "study": {}}
    with tempfile.TemporaryDirectory(prefix="imblab-bench-") as tmp:
        work = Path(tmp)
        base = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "IMBLAB_PARENT"))}
        base["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "src"), base.get("PYTHONPATH")]))
        for name in ("embedded", "server"):
            (work / name).mkdir()
            env = {**base, "IMBLAB_CACHE_DIR": str(work / name / "cache")}
            if name == "embedded":
                uri, storage = (
                    f"sqlite:///{work}/embedded/mlruns/mlflow.db",
                    f"sqlite:///{work}/embedded/optuna.db",
                )
                results["sweep"][name] = sweep(uri, work / name, env, samplers)
                results["study"][name] = study(uri, storage, work / name, env, n_trials)
                continue
            start = time.perf_counter()
            with team_stack() as team:
                print(f"team stack started in {time.perf_counter() - start:.0f} s")
                env.update(team.env())
                results["sweep"][name] = sweep(team.tracking_uri, work / name, env, samplers)
                results["study"][name] = study(team.tracking_uri, team.storage, work / name, env, n_trials)
            print("team stack stopped, no process left")
    jobs = len(samplers) * len(POLICIES)
    ok = report(f"{jobs}-job joblib sweep", results["sweep"]["embedded"], results["sweep"]["server"])
    ok &= report(
        f"{n_trials}-trial two-worker study", results["study"]["embedded"], results["study"]["server"]
    )
    print(f"load average at end: {os.getloadavg()[0]:.1f}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
