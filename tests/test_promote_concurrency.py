"""Promotion under concurrency (issue 10): one lock per store + model name, idempotent, no flip on a tie.

Real ``imblab promote`` subprocesses on a real SQLite store, lined up on the promotion lock so that they
all enter the critical section at the same moment (``tests/support/promotions.py``).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from imblab.registry.gate import CHALLENGER, CHAMPION
from imblab.registry.lock import LOCK_DIR, lock_path, promotion_lock
from imblab.registry.promote import promote
from imblab.tracking.store import client_for
from tests.support.promotions import lined_up_promotes
from tests.test_registry import NAME, aliases, train, versions


def test_lock_path_is_keyed_by_store_and_model_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "a" / "mlflow.db"
    local = lock_path(f"sqlite:///{db}", "defects")
    assert local.parent == db.parent / LOCK_DIR and "defects" in local.name
    assert lock_path(f"sqlite:///{db}", "defects") == local
    assert lock_path(f"sqlite:///{db}", "other") != local  # per model name
    assert (
        lock_path(f"sqlite:///{tmp_path / 'b' / 'mlflow.db'}", "defects").parent != local.parent
    )  # per store
    assert lock_path(f"file://{tmp_path / 'mlruns'}", "m").parent == tmp_path / "mlruns" / LOCK_DIR
    # A tracking server has no shared directory: the lock is per machine, keyed by the URI as well.
    monkeypatch.setenv("IMBLAB_CACHE_DIR", str(tmp_path / "cache"))
    server = lock_path("http://mlflow.example:5000", "defects")
    assert server.parent == tmp_path / "cache" / "locks"
    assert server != lock_path("http://other.example:5000", "defects")


def test_a_held_lock_makes_another_process_wait_then_time_out(tracking_uri: str) -> None:
    code = (
        "import logging, sys\n"
        "logging.basicConfig(level=logging.INFO)\n"
        "from imblab.errors import ImblabError\n"
        "from imblab.registry.lock import promotion_lock\n"
        "try:\n"
        "    with promotion_lock(sys.argv[1], 'defects', timeout=0.5):\n"
        "        print('ACQUIRED')\n"
        "except ImblabError as exc:\n"
        "    print('REFUSED', exc)\n"
    )
    with promotion_lock(tracking_uri, "defects"):
        held = subprocess.run([sys.executable, "-c", code, tracking_uri], capture_output=True, text=True)
    assert held.returncode == 0, held.stderr
    assert (
        held.stdout.startswith("REFUSED")
        and "has held the lock" in held.stdout
        and "over 0.5s" in held.stdout
    )
    assert "waiting for another promotion of 'defects'" in held.stderr  # said before waiting
    free = subprocess.run([sys.executable, "-c", code, tracking_uri], capture_output=True, text=True)
    assert free.stdout.strip() == "ACQUIRED"  # released by the holder


@pytest.mark.slow
def test_three_concurrent_promotes_register_once_and_agree(tmp_path: Path, tracking_uri: str) -> None:
    out = train(tracking_uri)
    client = client_for(tracking_uri)
    args = ["--experiment", "t", "--name", NAME]
    done = lined_up_promotes(3, args, tracking_uri, NAME, tmp_path / "promotes")

    assert [d.returncode for d in done] == [0, 0, 0], [d.stderr[-2000:] for d in done]
    assert all("waiting for another promotion" in d.stderr for d in done)  # all three met at the lock
    assert versions(client) == ["1"]  # one version for the run, not three
    assert client.get_model_version(NAME, "1").run_id == out.run_id
    stdout = "".join(d.stdout for d in done)
    assert stdout.count(f"is now @{CHAMPION}") == 1
    assert stdout.count("FIRST_CHAMPION:") == 1 and stdout.count("ALREADY_CHAMPION:") == 2
    assert stdout.count("no-op:") == 2
    assert aliases(client) == {CHAMPION: "1", CHALLENGER: "1"}
    assert client.get_model_version(NAME, "1").tags["imblab.decision"] == "first_champion"

    again = promote("t", model_name=NAME, tracking_uri=tracking_uri)  # and once more, alone: a no-op
    assert again.outcome == "already_champion" and versions(client) == ["1"]


def test_repromoting_the_champion_is_a_noop_and_a_tie_keeps_it(tracking_uri: str) -> None:
    out = train(tracking_uri)
    client = client_for(tracking_uri)
    assert promote("t", model_name=NAME, tracking_uri=tracking_uri).outcome == "first_champion"
    again = promote("t", model_name=NAME, run_id=out.run_id, tracking_uri=tracking_uri)
    assert again.outcome == "already_champion" and again.version == "1"
    assert "already is champion (version 1); nothing changed" in again.reason
    assert versions(client) == ["1"] and aliases(client) == {CHAMPION: "1", CHALLENGER: "1"}

    # The fourth promote: an identical retrain ties (+0) and must not move champion.
    twin = train(tracking_uri)
    assert twin.test_metrics["pr_auc"] == out.test_metrics["pr_auc"]
    tie = promote("t", model_name=NAME, tracking_uri=tracking_uri)
    assert tie.run_id == twin.run_id  # ties rank the newest run first
    assert tie.outcome == "rejected" and "improvement +0.0000 fails" in tie.reason
    assert "a tie never moves the champion" in tie.reason
    assert aliases(client) == {CHAMPION: "1", CHALLENGER: "2"}
    # Promoting the twin again reuses its version: a run is registered once.
    assert promote("t", model_name=NAME, tracking_uri=tracking_uri).version == "2"
    assert versions(client) == ["1", "2"]


def test_dry_runs_and_lock_files_leave_the_registry_alone(tracking_uri: str) -> None:
    train(tracking_uri)
    decision = promote("t", model_name=NAME, dry_run=True, tracking_uri=tracking_uri)
    assert decision.outcome == "first_champion" and decision.version is None
    assert client_for(tracking_uri).search_registered_models() == []
    assert lock_path(tracking_uri, NAME).is_file()  # the lock file stays (unlinking it would race)
