"""Bad input as a user types it (issue 10, item 7): a clear ``imblab: error:`` that says what to do, exit 2,
no traceback, no run left RUNNING, nothing half-written. Real subprocesses, real Hydra, real SQLite stores."""

from __future__ import annotations

import logging
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from imblab.errors import ImblabError
from imblab.protocol.cache import FitCache
from imblab.serving.batch import predict_file, read_table
from tests.conftest import FAST, compose_config
from tests.support.cli import imblab, runs_of
from tests.support.unprivileged import read_only, unprivileged

# MLflow retries a SQLite file it cannot create for ~107 s; checked up front, it fails within the start-up.
RETRY_SECONDS = 100


def assert_clean_error(proc: subprocess.CompletedProcess, *fragments: str) -> None:
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "imblab: error:" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    for fragment in fragments:
        assert fragment in proc.stderr, proc.stderr[-3000:]


# --- config: groups, Hydra's own errors, estimator parameters -----------------------------------------------


@pytest.mark.parametrize("override", ["~sampler", "sampler=null"])
def test_a_removed_group_names_its_options(tmp_path: Path, tracking_uri: str, override: str) -> None:
    proc = imblab("train", "data=synthetic", override, f"tracking.uri={tracking_uri}", cwd=tmp_path)
    assert_clean_error(proc, "sampler", "smote_enn", "random_over", "none")
    assert runs_of(tracking_uri, "imblab") == []


@pytest.mark.parametrize(
    ("overrides", "fragments"),
    [
        (["foo=bar"], ["Could not override 'foo'", "+foo=bar"]),
        (["model=xgb"], ["Could not find 'model/xgb'", "logreg", "random_forest"]),
        (["-m", "foo=1,2"], ["Could not override 'foo'"]),
    ],
    ids=["unknown-key", "unknown-option", "unknown-key-in-a-sweep"],
)
def test_hydra_config_errors_are_imblab_errors(
    tmp_path: Path, tracking_uri: str, overrides: list[str], fragments: list[str]
) -> None:
    proc = imblab("train", *overrides, f"tracking.uri={tracking_uri}", cwd=tmp_path)
    assert_clean_error(proc, *fragments)
    assert "Config search path" not in proc.stderr and "HYDRA_FULL_ERROR" not in proc.stderr
    # A sweep Hydra refuses after its parent run opened leaves that parent FAILED with the reason.
    runs = runs_of(tracking_uri, "imblab")
    assert all(r.info.status == "FAILED" and "foo" in r.data.tags["imblab.error"] for r in runs)
    assert len(runs) == (1 if "-m" in overrides else 0)


def test_an_invalid_estimator_parameter_fails_before_any_run(tmp_path: Path, tracking_uri: str) -> None:
    proc = imblab(
        "train", *FAST, "model.estimator.n_estimators=0", f"tracking.uri={tracking_uri}", cwd=tmp_path
    )
    assert_clean_error(proc, "model.estimator.n_estimators must be an int in the range [1, inf), got 0")
    assert runs_of(tracking_uri, "imblab") == []


# --- the tracking store -------------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["file-in-the-way", "under-proc"])
def test_an_unwritable_tracking_path_fails_at_once(tmp_path: Path, where: str) -> None:
    (tmp_path / "notes.txt").write_text("a file, not a folder")
    db = {
        "file-in-the-way": tmp_path / "notes.txt" / "mlflow.db",
        "under-proc": Path("/proc/imblab-no-such-folder/mlflow.db"),
    }[where]
    start = time.perf_counter()
    proc = imblab("train", *FAST, f"tracking.uri=sqlite:///{db}", cwd=tmp_path)
    assert time.perf_counter() - start < RETRY_SECONDS
    assert_clean_error(proc, f" the MLflow store {db}: ", "tracking.uri")
    # As root, os.access calls /proc writable, and creating the folder is what fails.
    assert re.search(r"imblab: error: cannot (write|create) the MLflow store", proc.stderr)
    assert not db.exists()


@pytest.mark.parametrize("store", ["read-only-store", "new-store-in-read-only-folder"])
def test_a_read_only_store_fails_at_once_and_is_left_as_it_was(
    tmp_path: Path, tracking_uri: str, store: str
) -> None:
    prefix = unprivileged()
    db = Path(tracking_uri.removeprefix("sqlite:///"))
    if store == "new-store-in-read-only-folder":
        db = tmp_path / "frozen" / "mlflow.db"
        db.parent.mkdir()
    uri = f"sqlite:///{db}"
    before = db.read_bytes() if db.exists() else None
    with read_only(*([db] if before is not None else []), db.parent):
        start = time.perf_counter()
        proc = imblab("train", *FAST, f"tracking.uri={uri}", cwd=tmp_path, prefix=prefix)
        seconds = time.perf_counter() - start
        # The check itself, timed inside the unprivileged process.
        probe = subprocess.run(
            [
                *prefix,
                sys.executable,
                "-c",
                "import time; from imblab.errors import ImblabError; from imblab.tracking.store import "
                "use_tracking, ensure_experiment\nt = time.perf_counter()\ntry:\n"
                f"    ensure_experiment('x', use_tracking({uri!r}, write=True))\nexcept ImblabError:\n"
                "    print(time.perf_counter() - t)",
            ],
            capture_output=True,
            text=True,
            cwd=tmp_path,
        )
    assert seconds < RETRY_SECONDS
    reason = f"{db} is read-only" if before is not None else f"directory {db.parent} is not writable"
    assert_clean_error(proc, f"cannot write the MLflow store {db}: {reason}", "tracking.uri=")
    assert float(probe.stdout) < 1.0, probe.stderr[-2000:]
    if before is None:
        assert not db.exists()
    else:
        assert db.read_bytes() == before  # no experiment, no run: nothing written


# --- the fit cache ------------------------------------------------------------------------------------------


def test_an_unwritable_cache_is_skipped_with_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "notes.txt").write_text("a file, not a folder")
    cache = FitCache(tmp_path / "notes.txt" / "fits")
    calls = []
    with caplog.at_level(logging.WARNING, logger="imblab.protocol.cache"):
        for _ in range(2):
            assert cache.get_or_fit("key", lambda: calls.append(1) or "fitted") == ("fitted", False)
    assert len(calls) == 2 and not cache.enabled
    (warning,) = [r.getMessage() for r in caplog.records]
    assert "fit cache off" in warning and "notes.txt is a file" in warning and "cache.dir=" in warning


def test_a_read_only_cache_directory_falls_back_to_no_cache(tmp_path: Path, tracking_uri: str) -> None:
    frozen = tmp_path / "frozen"
    frozen.mkdir()
    with read_only(frozen):
        proc = imblab(
            "train",
            *FAST,
            f"cache.dir={frozen}/fits",
            f"tracking.uri={tracking_uri}",
            cwd=tmp_path,
            prefix=unprivileged(),
        )
    assert proc.returncode == 0, proc.stderr[-3000:]
    output = proc.stdout + proc.stderr
    assert output.count("fit cache off") == 1, output[-3000:]
    assert f"cannot create {frozen}/fits" in output
    (run,) = runs_of(tracking_uri, "imblab")
    assert run.info.status == "FINISHED" and run.data.tags["imblab.cache_hit"] == "false"
    assert list(frozen.iterdir()) == []


# --- sweeps -------------------------------------------------------------------------------------------------


def _sweep_runs(uri: str, experiment: str) -> tuple[object, list]:
    runs = runs_of(uri, experiment)
    (parent,) = [r for r in runs if r.data.tags.get("imblab.role") == "sweep"]
    return parent, [r for r in runs if r.data.tags.get("imblab.role") == "run"]


@pytest.mark.slow
def test_a_sweep_job_with_a_config_error_is_reported_and_the_others_run(
    tmp_path: Path, tracking_uri: str
) -> None:
    proc = imblab(
        "train",
        "-m",
        *FAST,
        "model.estimator.n_estimators=0,40",
        f"tracking.uri={tracking_uri}",
        cwd=tmp_path,
    )
    assert_clean_error(
        proc,
        "imblab: error: job 0 (model.estimator.n_estimators=0): "
        "model.estimator.n_estimators must be an int in the range [1, inf), got 0\n",
        "1 sweep job(s) failed",
    )
    assert "job 1" not in proc.stderr
    parent, children = _sweep_runs(tracking_uri, "imblab")
    assert parent.info.status == "FAILED"
    assert parent.data.tags["imblab.error"].startswith("job 0 (model.estimator.n_estimators=0): ")
    assert (parent.data.tags["imblab.n_children"], parent.data.tags["imblab.n_finished"]) == ("1", "1")
    (child,) = children  # job 0 failed before its run started
    assert child.info.status == "FINISHED" and child.data.params["model.estimator.n_estimators"] == "40"


@pytest.mark.slow
def test_a_failed_job_of_a_joblib_sweep_fails_its_run_and_the_sweep(
    tmp_path: Path, tracking_uri: str
) -> None:
    proc = imblab(
        "train",
        "-m",
        *FAST,
        "sampler.estimator.k_neighbors=3,80",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        f"tracking.uri={tracking_uri}",
        cwd=tmp_path,
    )
    assert_clean_error(proc, "imblab: error: job 1 (sampler.estimator.k_neighbors=80): sampler 'smote' needs")
    parent, children = _sweep_runs(tracking_uri, "imblab")
    assert parent.info.status == "FAILED" and "job 1 (" in parent.data.tags["imblab.error"]
    assert (parent.data.tags["imblab.n_children"], parent.data.tags["imblab.n_finished"]) == ("2", "1")
    status = {c.data.params["sampler.estimator.k_neighbors"]: c for c in children}
    assert status["3"].info.status == "FINISHED"
    assert status["80"].info.status == "FAILED" and "k_neighbors" in status["80"].data.tags["imblab.error"]


@pytest.mark.slow
def test_a_failed_job_of_a_panel_sweep(tmp_path: Path, tracking_uri: str) -> None:
    proc = imblab(
        "panel",
        "-m",
        "data=panel_synthetic",
        "data.n_persons=150,5",
        "max_len=4",
        "model=persistence",
        f"tracking.uri={tracking_uri}",
        "tracking.experiment=panel-sweep",
        cwd=tmp_path,
    )
    assert_clean_error(proc, "imblab: error: job 1 (data.n_persons=5): ")
    parent, children = _sweep_runs(tracking_uri, "panel-sweep")
    assert parent.info.status == "FAILED" and parent.data.tags["imblab.n_finished"] == "1"
    assert sorted(c.info.status for c in children) == ["FAILED", "FINISHED"]


# --- tables: training and predict agree ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", r"input file .*lots\.csv is empty: it has no header and no rows"),
        ("\n\n", r"input file .*lots\.csv is empty: it has no header and no rows"),
        (
            "x00,x01\n",
            r"the input has no rows to score: input file .* has column names \(x00, x01\) but no rows",
        ),
    ],
    ids=["empty", "blank-lines", "header-only"],
)
def test_predict_input_without_rows_is_a_clear_error(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "lots.csv"
    path.write_text(content)
    with pytest.raises(ImblabError, match=message):
        read_table(path, features=["x00", "x01"])


def test_predict_parquet_without_rows_or_not_parquet(tmp_path: Path) -> None:
    empty = tmp_path / "lots.parquet"
    pd.DataFrame({"x00": pd.Series([], dtype=float)}).to_parquet(empty)
    with pytest.raises(ImblabError, match=r"has column names \(x00\) but no rows"):
        read_table(empty)
    broken = tmp_path / "broken.parquet"
    broken.write_text("not parquet")
    with pytest.raises(ImblabError, match=r"could not read .*broken\.parquet as parquet"):
        read_table(broken)


def _table_model(tmp_path: Path, tracking_uri: str) -> tuple[str, Path]:
    """A frozen model trained on a CSV whose all-NaN column ``dead`` was dropped as the error says."""
    from imblab.config.compose import experiment_from_config
    from imblab.experiment import run_experiment

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {"lot": [f"L{i:03d}" for i in range(120)], "a": rng.normal(size=120), "b": rng.normal(size=120)}
    )
    frame["dead"] = np.nan
    frame["failed"] = (frame["a"] + rng.normal(0, 0.5, size=120) > 1.0).astype(int)
    path = tmp_path / "lots.csv"
    frame.to_csv(path, index=False)
    table = ("data=table", f"data.path={path}", "data.target=failed", "data.id_columns=[lot]")
    fast = ("sampler=none", "model=logreg", "cv.folds=3", "cv.n_jobs=1", f"tracking.uri={tracking_uri}")
    with pytest.raises(ImblabError, match=r"'dead'.*data\.drop_columns=\[dead\]"):
        run_experiment(experiment_from_config(compose_config(*table, *fast)))
    out = run_experiment(experiment_from_config(compose_config(*table, "data.drop_columns=[dead]", *fast)))
    assert out.model_uri
    return out.model_uri, path


def test_an_all_nan_column_training_refuses_is_carried_through_by_predict(
    tmp_path: Path, tracking_uri: str
) -> None:
    model_uri, path = _table_model(tmp_path, tracking_uri)
    out = predict_file(model_uri, path, tmp_path / "scored.csv", tracking_uri=tracking_uri)
    # Not a model feature: carried through like the id column, in input order.
    assert list(out.columns) == ["lot", "dead", "failed", "decision", "probability"]
    assert out["lot"].tolist() == pd.read_csv(path)["lot"].tolist() and out["dead"].isna().all()


def test_predict_refuses_an_empty_csv_and_an_unwritable_output(tmp_path: Path, tracking_uri: str) -> None:
    model_uri, _ = _table_model(tmp_path, tracking_uri)
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    output = tmp_path / "scored.csv"
    proc = imblab(
        "predict", model_uri, str(empty), "-o", str(output), "--tracking-uri", tracking_uri, cwd=tmp_path
    )
    assert_clean_error(proc, f"input file {empty} is empty: it has no header and no rows")
    assert not output.exists()
    blocked = tmp_path / "notes.txt"
    blocked.write_text("a file, not a folder")
    with pytest.raises(ImblabError, match=r"cannot write the output .*notes\.txt is a file, not a directory"):
        predict_file(model_uri, tmp_path / "lots.csv", blocked / "scored.csv", tracking_uri=tracking_uri)
    assert not (blocked / "scored.csv").exists()


@pytest.mark.parametrize("port", ["99999", "0", "-1"])
def test_serve_refuses_a_port_out_of_range(port: str, capsys: pytest.CaptureFixture[str]) -> None:
    from imblab.app.main import main as imblab_main

    assert imblab_main(["serve", "models:/defects@champion", "--port", port]) == 2
    assert f"imblab: error: --port must be a TCP port, 1 to 65535, got {port}" in capsys.readouterr().err


@pytest.mark.parametrize("sweep", [False, True], ids=["run", "sweep"])
def test_a_read_only_working_directory(tmp_path: Path, tracking_uri: str, sweep: bool) -> None:
    """Hydra writes outputs/ (multirun/) in the working directory: a clear error, no run, no parent run."""
    here = tmp_path / "frozen"
    here.mkdir()
    with read_only(here):
        proc = imblab(
            "train",
            *(["-m"] if sweep else []),
            *FAST,
            f"tracking.uri={tracking_uri}",
            cwd=here,
            prefix=unprivileged(),
        )
    assert_clean_error(proc, "multirun" if sweep else "outputs", "Permission denied", "hydra.")
    assert runs_of(tracking_uri, "imblab") == []


def test_an_unreachable_tracking_server_fails_in_seconds(capsys: pytest.CaptureFixture[str]) -> None:
    from imblab.app.main import main as imblab_main

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    start = time.perf_counter()
    assert imblab_main(["runs", "--tracking-uri", f"http://imblab:s3cret@127.0.0.1:{port}"]) == 2
    assert time.perf_counter() - start < 10  # MLflow's own retries take minutes
    err = capsys.readouterr().err
    assert f"cannot reach the MLflow tracking server http://imblab:***@127.0.0.1:{port}" in err
    assert "s3cret" not in err


def test_a_file_store_is_refused_clearly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    proc = imblab("train", *FAST, f"tracking.uri={tmp_path / 'mlruns'}", cwd=tmp_path)
    assert_clean_error(proc, f"cannot use the MLflow tracking store {tmp_path / 'mlruns'}: ", "sqlite")
