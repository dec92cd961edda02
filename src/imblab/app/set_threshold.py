"""``imblab set-threshold``: a new model version with a threshold re-chosen by a policy (no retraining)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from imblab.registry.threshold import policy_parameters, set_threshold
from imblab.thresholds import POLICIES


def main(argv: Sequence[str]) -> int:
    p = argparse.ArgumentParser(
        prog="imblab set-threshold",
        description="New model version: the same fitted pipeline with a threshold re-chosen by a policy "
        "on the training run's out-of-fold scores (no retraining).",
    )
    p.add_argument("model_uri", help="models:/<name>@<alias> or models:/<name>/<version>")
    p.add_argument("--policy", required=True, choices=sorted(POLICIES), help="threshold policy")
    parameters = policy_parameters()
    for key, users in parameters.items():
        p.add_argument("--" + key.replace("_", "-"), dest=key, type=float, default=None, help=f"for {users}")
    p.add_argument("--alias", default=None, help="point this alias at the new version (e.g. staging)")
    p.add_argument("--tracking-uri", default=None, help="default: $MLFLOW_TRACKING_URI or ./mlruns/mlflow.db")
    args = p.parse_args(list(argv))
    params = {k: getattr(args, k) for k in parameters if getattr(args, k) is not None}
    change = set_threshold(
        args.model_uri, args.policy, params, alias=args.alias, tracking_uri=args.tracking_uri
    )
    print(
        f"{change.model_uri}: threshold {change.old_threshold:.6g} -> {change.new_threshold:.6g} "
        f"({change.policy} {change.params}; from version {change.source_version}, no retraining)"
    )
    print(f"  {change.detail}")
    for label, m in (("out-of-fold", change.cv_metrics), ("test", change.test_metrics)):
        print(
            f"  {label}: recall {m['recall']:.3f}, precision {m['precision']:.3f}, "
            f"expected cost/lot {m['expected_cost']:.4f}"
        )
    if change.new_threshold == change.old_threshold:
        print("  note: the threshold did not change")
    if args.alias:
        print(f"  alias {args.alias!r} -> version {change.version}")
    return 0
