"""Fault drills: what is left behind when imblab is killed, raced or fed a secret, against its target.

Each ``benchmarks/faults_<part>.py`` exposes ``drill(workdir) -> [(figure name, value, target), ...]``
and runs its drills for real (subprocesses, a fresh SQLite store, real signals); this script runs every
part in its own temporary directory and prints one table. The exit code is 1 when a figure misses its
target, so the script doubles as a slow check.

    .venv/bin/python benchmarks/faults.py [--only lifecycle,store] [--keep]
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path
from types import ModuleType

HERE = Path(__file__).resolve().parent


def parts() -> dict[str, Path]:
    """Every drill module beside this script, by part name (``faults_store.py`` -> ``store``)."""
    return {p.stem.removeprefix("faults_"): p for p in sorted(HERE.glob("faults_*.py"))}


def load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def meets(value: float, target: str) -> bool:
    """Targets are written as a number (``"0"``, ``"3"``) or a bound (``"<= 10"``, ``">= 2"``)."""
    text = target.strip()
    for op, test in (("<=", float.__le__), (">=", float.__ge__), ("<", float.__lt__), (">", float.__gt__)):
        if text.startswith(op):
            return test(float(value), float(text[len(op) :]))
    return float(value) == float(text)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", default="", help=f"comma-separated parts (default: all of {sorted(parts())})")
    p.add_argument("--keep", action="store_true", help="keep the drills' working directories")
    args = p.parse_args()
    chosen = [s.strip() for s in args.only.split(",") if s.strip()] or sorted(parts())
    if not chosen:
        p.error(f"no benchmarks/faults_*.py drills next to {HERE}")
    unknown = sorted(set(chosen) - set(parts()))
    if unknown:
        p.error(f"unknown parts {unknown}; choose from {sorted(parts())}")

    rows: list[tuple[str, str, float, str, bool]] = []
    for name in chosen:
        work = Path(tempfile.mkdtemp(prefix=f"imblab-faults-{name}-"))
        start = time.perf_counter()
        try:
            for figure, value, target in load(parts()[name]).drill(work):
                rows.append((name, figure, float(value), target, meets(value, target)))
        except Exception:  # a drill that crashes is a failed drill, not a crashed report
            traceback.print_exc()
            rows.append((name, "drill crashed (see traceback above)", float("nan"), "no crash", False))
        finally:
            if not args.keep:
                shutil.rmtree(work, ignore_errors=True)
        print(f"[{name}] {time.perf_counter() - start:.0f}s", file=sys.stderr, flush=True)

    width = max(len(r[1]) for r in rows)
    print(f"{'part':<10} {'figure':<{width}} {'value':>8}  target  ok")
    for part, figure, value, target, ok in rows:
        print(f"{part:<10} {figure:<{width}} {value:>8g}  {target:<6}  {'yes' if ok else 'NO'}")
    missed = sum(not r[4] for r in rows)
    print(f"{len(rows) - missed} of {len(rows)} figures meet their target")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
