"""A new SQLite store used by several processes at once, and a store that cannot be locked or created.

MLflow builds a store's schema (and runs its migrations) the first time a process opens it, with no
lock between processes; imblab does it under ``<db>.lock``. The races are timing-dependent, so the
tests start their processes together (a barrier, or simultaneous subprocesses) and repeat.
"""

from __future__ import annotations

import fcntl
import multiprocessing
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from imblab.app.main import main as imblab_main
from imblab.tracking.store import artifact_location, ensure_experiment, sqlite_path, use_tracking
from tests.conftest import QUICK
from tests.support.cli import runs_of

ROUNDS = 2


def _first_use(uris: list[str], barrier: multiprocessing.synchronize.Barrier, results) -> None:
    """In a fresh process: for each store, wait for the others, then open it and get-or-create an
    experiment, as every imblab command does first."""
    for uri in uris:
        barrier.wait(timeout=120)
        try:
            results.put((uri, "ok", ensure_experiment("imblab", use_tracking(uri))))
        except BaseException as exc:
            results.put((uri, "error", f"{type(exc).__name__}: {exc}"))


def test_concurrent_first_use_creates_the_store_and_experiment_once(tmp_path: Path) -> None:
    n = 3
    uris = [f"sqlite:///{tmp_path / f'round{i}' / 'mlflow.db'}" for i in range(ROUNDS)]
    ctx = multiprocessing.get_context("spawn")  # fresh interpreters, as separate commands are
    barrier, results = ctx.Barrier(n), ctx.Queue()
    procs = [ctx.Process(target=_first_use, args=(uris, barrier, results)) for _ in range(n)]
    for p in procs:
        p.start()
    outcomes = [results.get(timeout=300) for _ in range(n * ROUNDS)]
    for p in procs:
        p.join(timeout=60)
    errors = [o for o in outcomes if o[1] != "ok"]
    assert not errors, errors
    for uri in uris:
        ids = {o[2] for o in outcomes if o[0] == uri}
        assert len(ids) == 1, f"{uri}: experiment created more than once: {ids}"
        names = [e.name for e in MlflowClient(uri).search_experiments()]
        assert sorted(names) == ["Default", "imblab"]
        assert Path(sqlite_path(uri).as_posix() + ".lock").is_file()


def _start(*args: str, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "imblab", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(procs: list[subprocess.Popen]) -> list[tuple[int, str]]:
    out = []
    for p in procs:
        _, err = p.communicate(timeout=600)
        out.append((p.returncode, err))
    return out


@pytest.mark.slow
def test_three_concurrent_trains_on_a_new_store_all_finish(tmp_path: Path) -> None:
    for i in range(2):
        uri = f"sqlite:///{tmp_path / f'round{i}' / 'mlflow.db'}"
        args = [*QUICK, "tracking.log_model=false", f"tracking.uri={uri}"]
        procs = [_start("train", *args, cwd=tmp_path) for _ in range(3)]
        for code, err in _finish(procs):
            assert code == 0, err[-3000:]
        runs = runs_of(uri, "imblab")
        assert [r.info.status for r in runs] == ["FINISHED"] * 3


@pytest.mark.slow
def test_two_concurrent_runs_commands_on_a_new_store_both_succeed(tmp_path: Path) -> None:
    # The Default experiment exists in every new store: `imblab runs` lists its (zero) runs.
    for i in range(ROUNDS):
        uri = f"sqlite:///{tmp_path / f'round{i}' / 'mlflow.db'}"
        procs = [
            _start("runs", "--experiment", "Default", "--tracking-uri", uri, cwd=tmp_path) for _ in range(2)
        ]
        for code, err in _finish(procs):
            assert code == 0, err[-3000:]


def test_a_held_lock_times_out_with_a_clear_error(
    tmp_path: Path, tracking_uri: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # A store this process has not opened yet (the migrated template: no migration to wait for).
    db = sqlite_path(tracking_uri)
    holder = os.open(db.with_name("mlflow.db.lock"), os.O_RDONLY | os.O_CREAT)
    fcntl.flock(holder, fcntl.LOCK_EX)  # as a hung process creating the store would hold it
    monkeypatch.setenv("IMBLAB_STORE_LOCK_TIMEOUT", "0.5")
    try:
        start = time.monotonic()
        assert imblab_main(["runs", "--tracking-uri", f"sqlite:///{db}"]) == 2
        assert time.monotonic() - start < 10
    finally:
        os.close(holder)
    err = capsys.readouterr().err
    assert err.startswith("imblab: error: timed out after 0.5 s waiting for ") and "mlflow.db.lock" in err
    assert "IMBLAB_STORE_LOCK_TIMEOUT" in err
    # Released: the same command now opens the store.
    assert imblab_main(["runs", "--experiment", "Default", "--tracking-uri", f"sqlite:///{db}"]) == 0

    monkeypatch.setenv("IMBLAB_STORE_LOCK_TIMEOUT", "soon")
    with pytest.raises(ValueError, match=r"\$IMBLAB_STORE_LOCK_TIMEOUT must be a number of seconds"):
        use_tracking(f"sqlite:///{tmp_path / 'other' / 'mlflow.db'}")


def test_a_store_that_cannot_be_created_or_locked(
    tmp_path: Path, tracking_uri: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # A path under a regular file can never be created (unlike permissions, this holds for root too).
    (tmp_path / "a-file").write_text("")
    uri = f"sqlite:///{tmp_path / 'a-file' / 'mlflow.db'}"
    assert imblab_main(["runs", "--tracking-uri", uri]) == 2
    err = capsys.readouterr().err
    assert err.startswith(
        f"imblab: error: cannot create the MLflow store {tmp_path / 'a-file' / 'mlflow.db'}"
    )
    assert "writable directory" in err

    # No lock file can be made (here: a directory is in its way) for a new store: a clear error...
    new = tmp_path / "blocked" / "mlflow.db"
    new.with_name("mlflow.db.lock").mkdir(parents=True)
    assert imblab_main(["runs", "--tracking-uri", f"sqlite:///{new}"]) == 2
    assert "cannot create the MLflow store" in capsys.readouterr().err
    assert not new.exists()
    # ...but an existing store is read without one (as in a read-only directory).
    existing = sqlite_path(tracking_uri)
    existing.with_name("mlflow.db.lock").mkdir()
    assert imblab_main(["runs", "--experiment", "Default", "--tracking-uri", tracking_uri]) == 0
    assert "no runs in experiment 'Default'" in capsys.readouterr().out


def test_relative_sqlite_uri_is_relative_to_the_working_directory(
    tmp_path: Path, migrated_store: Path
) -> None:
    (tmp_path / "rel").mkdir()
    shutil.copyfile(migrated_store, tmp_path / "rel" / "mlflow.db")  # migrating takes seconds
    uri = use_tracking("sqlite:///rel/mlflow.db")  # the cwd is tmp_path (see conftest)
    assert uri == "sqlite:///rel/mlflow.db"
    assert sqlite_path(uri) == tmp_path / "rel" / "mlflow.db"
    assert (tmp_path / "rel" / "mlflow.db.lock").is_file()
    ensure_experiment("rel", uri)
    exp = MlflowClient(uri).get_experiment_by_name("rel")
    assert exp.artifact_location == (tmp_path / "rel" / "artifacts").as_uri() == artifact_location(uri)
    assert sqlite_path("sqlite://") is None and sqlite_path("http://127.0.0.1:5000") is None
