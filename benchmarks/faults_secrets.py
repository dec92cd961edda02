"""Leak drill: a planted password, given to imblab every way it supports, must occur nowhere it writes or
prints (issue 10: passwords never stored or printed).

Plants a fresh random password in

* a real ``mlflow server --app-name basic-auth`` on loopback (``admin``): passed in ``tracking.uri``
  (a ``-m`` sweep in two joblib processes), through ``MLFLOW_TRACKING_USERNAME/PASSWORD`` (a tuned run with
  nested trial runs), through ``${oc.env:VAR}`` inside ``tracking.uri``, and a wrong one;
* a private PostgreSQL 15 cluster holding the Optuna study (when its binaries are installed): in the
  ``postgresql+psycopg2://`` URL, through ``PGPASSWORD``, through a ``.pgpass`` file (a tune-worker),
  and none;

then counts its occurrences, byte for byte, in the stores (MLflow's SQLite database behind the server,
the study databases, the PostgreSQL cluster's files), the artifacts, Hydra's output directories and the
captured stdout/stderr of every command. Target: 0 everywhere; every right way in must work and every
wrong one must fail with exit status 2.

``drill(workdir)`` returns ``(name, figure, target)`` rows for ``benchmarks/faults.py``, which gathers the
drills; run alone, it prints them:

    .venv/bin/python benchmarks/faults_secrets.py [--workdir DIR]
    .venv/bin/python benchmarks/faults.py --only secrets
"""

from __future__ import annotations

import argparse
import secrets
import sys
import tempfile
import time
from pathlib import Path

# The servers, the scenarios and the counter are test helpers, shared with the tests (tests/support).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.support import credentials as cred

PLACES = ("stores", "artifacts", "Hydra outputs", "stdout/stderr")


def _count(password: str, places: dict[str, list[Path]], steps: list[cred.Step]) -> dict[str, int]:
    """Occurrences of ``password`` per place (artifacts are counted once, under ``artifacts``)."""
    counts = {}
    for place, roots in places.items():
        found = cred.occurrences(password, [r for r in roots if r.exists()])
        if place == "stores":  # the stores' directories hold the artifacts too: not twice
            found = {f: n for f, n in found.items() if "/artifacts/" not in f}
        counts[place] = sum(found.values())
    counts["stdout/stderr"] = sum(cred.occurrences(password, texts=[s.output for s in steps]).values())
    return counts


def _hydra_dirs(workdir: Path) -> list[Path]:
    return [workdir / "outputs", workdir / "multirun"]


def drill(workdir: Path) -> list[tuple[str, float, str]]:
    """Run the drill in ``workdir``; ``(name, figure, target)`` rows."""
    totals = dict.fromkeys(PLACES, 0)
    ok = refused = expected_ok = expected_refused = control = 0

    def tally(password: str, places: dict[str, list[Path]], steps: list[cred.Step], refusal: str) -> None:
        nonlocal ok, refused, expected_ok, expected_refused, control
        for place, n in _count(password, places, steps).items():
            totals[place] += n
        ok += sum(s.proc.returncode == 0 for s in steps if s.name != refusal)
        refused += sum(s.proc.returncode == 2 for s in steps if s.name == refusal)
        expected_ok, expected_refused = expected_ok + len(steps) - 1, expected_refused + 1
        # The same scan finds the password where it is meant to be: the command lines that carried it.
        control += len(cred.occurrences(password, texts=[" ".join(s.proc.args) for s in steps]))

    password = f"drill-{secrets.token_hex(8)}"
    with cred.mlflow_auth_server(workdir / "server", password) as server:
        work = workdir / "http"
        steps = cred.http_scenario(server, password, work)
        places = {
            "stores": [server.store, work / "optuna.db"],
            "artifacts": [server.store / "artifacts"],
            "Hydra outputs": _hydra_dirs(work),
        }
        tally(password, places, steps, refusal="wrong")

    if cred.postgres_available():
        password = f"drill-{secrets.token_hex(8)}"
        work = workdir / "postgres"
        store = work / "store"
        store.mkdir(parents=True, exist_ok=True)
        with cred.postgres_cluster("imblab", password) as pg:
            steps = cred.postgres_scenario(pg, password, work, f"sqlite:///{store / 'mlflow.db'}")
            places = {
                "stores": [pg.data, store],
                "artifacts": [store / "artifacts"],
                "Hydra outputs": _hydra_dirs(work),
            }
            tally(password, places, steps, refusal="none")
    else:
        print("PostgreSQL 15 binaries not installed: the study-storage part is skipped", file=sys.stderr)

    rows = [(f"occurrences of a planted password in {place}", float(n), "0") for place, n in totals.items()]
    return [
        *rows,
        ("occurrences of a planted password, all places", float(sum(totals.values())), "0"),
        ("right ways in that worked", float(ok), str(expected_ok)),
        ("wrong or missing passwords refused with exit status 2", float(refused), str(expected_refused)),
        ("control: command lines in which the same scan finds the password", float(control), ">= 1"),
    ]


def main() -> None:
    from faults import meets  # benchmarks/faults.py, beside this script: the gatherer's own rule

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, default=None, help="default: a temporary directory")
    args = parser.parse_args()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="imblab-drill-") as tmp:
        rows = drill(args.workdir or Path(tmp))
    width = max(len(name) for name, _, _ in rows)
    print(f"{'figure':<{width}} {'value':>8}  target  ok")
    for name, value, target in rows:
        print(f"{name:<{width}} {value:>8g}  {target:<6}  {'yes' if meets(value, target) else 'NO'}")
    print(f"drill took {time.perf_counter() - start:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
