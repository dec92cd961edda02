"""What does repeated cross-validation cost, and does a policy sweep under it stay cheap? Target: <= 1.3x.

``evaluation=repeated_cv`` runs the whole holdout protocol (inner CV + refit) in each of R x K outer folds,
plus the refit on all rows for the frozen model: (R*K + 1) * (cv.folds + 1) pipeline fits. Threshold
policies do not change a fit, and the fit cache is keyed per outer fold, so a sweep over policies should
fit each outer fold once. This script times, as a user would run them, in fresh stores and caches:

  holdout   : imblab train threshold=best_f1                                 (reference, --holdout)
  1 policy  : imblab train evaluation=repeated_cv threshold=best_f1
  2 policies: imblab train -m evaluation=repeated_cv threshold=best_f1,min_cost

and prints the wall times, the ratio 2 policies / 1 policy and the rcv_pr_auc interval of the run. On a
shared machine the load can change between the two commands, so it also prints each sweep job's own
seconds: the second job's share is what the second policy cost, measured minutes apart, not an hour.
Default: real SECOM, the default sampler and model (smote_enn, LightGBM 600 trees), 5 x 5 outer folds.

    python benchmarks/repeated_cv.py                        # SECOM 5x5 (IMBLAB_SECOM_DIR or ../shared)
    python benchmarks/repeated_cv.py --repeats 2 --folds 3  # smaller
    python benchmarks/repeated_cv.py --data synthetic       # quick check
    python benchmarks/repeated_cv.py --study                # the README's experiment=secom_study (~1.3 h)
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from timing import timed_train  # benchmarks/ is on sys.path when a script in it runs

REPO = Path(__file__).resolve().parents[1]
POLICIES = "best_f1,min_cost"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", choices=("secom", "synthetic"), default="secom")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--sampler", default="smote_enn")
    p.add_argument("--trees", type=int, default=600, help="LightGBM n_estimators")
    p.add_argument("--holdout", action="store_true", help="also time the same run under evaluation=holdout")
    p.add_argument(
        "--study", action="store_true", help="time `imblab train -m experiment=secom_study` instead (24 jobs)"
    )
    args = p.parse_args()
    if args.study:
        study()
        return

    env = dict(os.environ)
    extra = [f"sampler={args.sampler}", "model=lgbm", f"model.estimator.n_estimators={args.trees}"]
    if args.data == "secom":
        shared = str(REPO.parent / "shared" / "data" / "secom")
        env["IMBLAB_SECOM_DIR"] = env.get("IMBLAB_SECOM_DIR") or shared
    else:
        extra += ["data=synthetic", "data.n_samples=2000", "data.n_features=40"]
    rcv = ["evaluation=repeated_cv", f"evaluation.repeats={args.repeats}", f"evaluation.folds={args.folds}"]
    fits = (args.repeats * args.folds + 1) * (5 + 1)
    print(
        f"data={args.data} sampler={args.sampler} model=lgbm ({args.trees} trees), cv.folds=5, "
        f"{args.repeats}x{args.folds} outer folds = {fits} pipeline fits, {os.cpu_count()} CPUs "
        f"(load average {os.getloadavg()[0]:.1f} at start)"
    )
    if args.holdout:
        seconds, _ = timed_train([*extra, "threshold=best_f1"], env)
        print(f"holdout, 1 policy        : {seconds:8.1f} s")
    one, ((metrics, _),) = timed_train([*extra, *rcv, "threshold=best_f1"], env)
    print(f"repeated_cv, 1 policy    : {one:8.1f} s")
    lo, hi = metrics["rcv_pr_auc_ci_low"], metrics["rcv_pr_auc_ci_high"]
    print(f"  rcv_pr_auc {metrics['rcv_pr_auc']:.4f}  95% corrected interval [{lo:.4f}, {hi:.4f}]")
    two, jobs = timed_train(["-m", *extra, *rcv, f"threshold={POLICIES}"], env)
    print(f"repeated_cv, 2 policies  : {two:8.1f} s   ({POLICIES})")
    (_, first), (_, second) = jobs
    print(f"  sweep jobs: {first:.1f} s (fits every outer fold), {second:.1f} s (reuses them)")
    ratio = two / one
    print(f"ratio 2/1 : {ratio:.2f}x   target <= 1.30  -> {'PASS' if ratio <= 1.3 else 'FAIL'}")
    within = (first + second) / first
    verdict = "PASS" if within <= 1.3 else "FAIL"
    print(f"within the sweep, (job 1 + job 2) / job 1 : {within:.2f}x  -> {verdict}")
    load = os.getloadavg()[0]
    print(f"load average at the end: {load:.1f} (the machine is shared: compare ratios, not seconds)")


def study() -> None:
    """Wall time of the README's SECOM study, and each job's own seconds: the first policy of every
    (sampler, model) fits its outer folds, the second reuses them from the cache."""
    env = dict(os.environ)
    env["IMBLAB_SECOM_DIR"] = env.get("IMBLAB_SECOM_DIR") or str(REPO.parent / "shared" / "data" / "secom")
    print(f"imblab train -m experiment=secom_study, {os.cpu_count()} CPUs (load {os.getloadavg()[0]:.1f})")
    seconds, jobs = timed_train(["-m", "experiment=secom_study"], env)
    firsts, seconds_ = [s for _, s in jobs[0::2]], [s for _, s in jobs[1::2]]
    print(f"secom_study: {len(jobs)} jobs in {seconds:.0f} s ({seconds / 3600:.2f} h)")
    print(f"  first policy per (sampler, model): {min(firsts):.0f}-{max(firsts):.0f} s per job")
    print(f"  second policy (fits from the cache): {min(seconds_):.1f}-{max(seconds_):.1f} s per job")
    ratio = sum(s for _, s in jobs) / sum(firsts)
    print(f"  policy sweep cost: (all jobs) / (first policies) = {ratio:.3f}x   target <= 1.30")


if __name__ == "__main__":
    main()
