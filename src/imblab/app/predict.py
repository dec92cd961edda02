"""``imblab predict``: batch-score a CSV or Parquet file with a frozen model (binary or panel)."""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

from imblab.frozen import DECISION
from imblab.panel.frozen import CLASS
from imblab.serving.batch import OUTPUT_COLUMNS, predict_file


def main(argv: Sequence[str]) -> int:
    p = argparse.ArgumentParser(
        prog="imblab predict",
        description="Batch-score a CSV/Parquet file with a frozen model. Binary model: output = id columns + "
        "decision + probability, in input order. Panel model: input = history rows (each person's last row "
        "is the wave to predict, targets empty); output = one row per person: id, time, wage, class, "
        "prob_<class>.",
    )
    p.add_argument(
        "model_uri", help="e.g. models:/secom-defects@champion, models:/<name>/<version>, runs:/..."
    )
    p.add_argument("input", help="input .csv / .csv.gz / .parquet")
    p.add_argument("-o", "--output", required=True, help="output .csv / .csv.gz / .parquet")
    p.add_argument(
        "--id-columns",
        default=None,
        help="comma-separated columns to carry through (default: every input column that is not a model "
        "feature); all other columns must be exactly the model's features",
    )
    p.add_argument(
        "--threshold", type=float, default=None, help="binary model: override the model's frozen threshold"
    )
    p.add_argument(
        "--decision",
        default=None,
        help="panel model: 'argmax' overrides the frozen decision policy (default: the frozen one)",
    )
    p.add_argument("--batch-size", type=int, default=50_000, help="rows per model call (default 50000)")
    p.add_argument("--tracking-uri", default=None, help="default: $MLFLOW_TRACKING_URI or ./mlruns/mlflow.db")
    args = p.parse_args(list(argv))
    ids = None if args.id_columns is None else [c.strip() for c in args.id_columns.split(",") if c.strip()]
    start = time.perf_counter()
    out = predict_file(
        args.model_uri,
        args.input,
        args.output,
        id_columns=ids,
        threshold=args.threshold,
        decision=args.decision,
        batch_size=args.batch_size,
        tracking_uri=args.tracking_uri,
    )
    seconds = time.perf_counter() - start
    if DECISION not in out.columns:  # a panel model: one row per person
        counts = out[CLASS].value_counts().to_dict()
        print(f"predicted the next wave of {len(out)} persons in {seconds:.1f}s -> {args.output} ({counts})")
        return 0
    ids_out = [c for c in out.columns if c not in OUTPUT_COLUMNS]
    print(
        f"scored {len(out)} rows in {seconds:.1f}s -> {args.output} "
        f"({int(out[DECISION].sum())} flagged; id columns {ids_out})"
    )
    return 0
