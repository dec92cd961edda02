"""How much does a sweep over threshold policies cost? Target: 4 policies <= 1.3x one policy.

Threshold policies do not change the fitted model, so ``imblab train -m threshold=a,b,c,d`` fits
data+preprocess+sampler+model+CV once and reuses it (``imblab.protocol.cache``). This script times, as a
user would run them, in fresh stores and caches:

  1 policy : imblab train -m threshold=best_f1
  4 policies: imblab train -m threshold=fixed,best_f1,min_cost,max_roi
  (--contrast) 4 policies with cache.enabled=false, i.e. what a sweep costs without reuse

and prints the wall-time ratio. Default: real SECOM data, one sampler (smote), LightGBM 600 trees.

    python benchmarks/policy_sweep.py                  # SECOM (needs IMBLAB_SECOM_DIR or ../shared)
    python benchmarks/policy_sweep.py --data synthetic # quick check
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from timing import timed_train  # benchmarks/ is on sys.path when a script in it runs

REPO = Path(__file__).resolve().parents[1]
POLICIES = "fixed,best_f1,min_cost,max_roi"


def timed_sweep(policies: str, extra: list[str], env: dict[str, str]) -> float:
    return timed_train(["-m", f"threshold={policies}", *extra], env)[0]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", choices=("secom", "synthetic"), default="secom")
    p.add_argument("--sampler", default="smote")
    p.add_argument("--contrast", action="store_true", help="also time 4 policies with the cache disabled")
    args = p.parse_args()

    env = dict(os.environ)
    extra = [f"sampler={args.sampler}", "model=lgbm"]
    if args.data == "secom":
        secom = env.get("IMBLAB_SECOM_DIR") or str(REPO.parent / "shared" / "data" / "secom")
        env["IMBLAB_SECOM_DIR"] = secom
    else:
        extra += ["data=synthetic", "data.n_samples=2000", "data.n_features=40"]

    print(f"data={args.data} sampler={args.sampler} model=lgbm (600 trees), 5-fold CV, sequential launcher")
    one = timed_sweep("best_f1", extra, env)
    print(f"1 policy  : {one:7.1f} s")
    four = timed_sweep(POLICIES, extra, env)
    print(f"4 policies: {four:7.1f} s   ({POLICIES})")
    if args.contrast:
        nocache = timed_sweep(POLICIES, [*extra, "cache.enabled=false"], env)
        print(f"4 policies, cache disabled: {nocache:7.1f} s   (ratio {nocache / one:.2f}x)")
    ratio = four / one
    print(f"ratio 4/1 : {ratio:.2f}x   target <= 1.30  -> {'PASS' if ratio <= 1.3 else 'FAIL'}")


if __name__ == "__main__":
    main()
