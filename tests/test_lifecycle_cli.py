"""Killing real ``imblab`` commands (a run, a tuning run, a joblib sweep) with SIGTERM, SIGINT and SIGKILL:
no run stays RUNNING after the next command, no worker process outlives its command."""

from __future__ import annotations

import re
import signal
import time
from pathlib import Path

import pytest

from tests.support.lifecycle import (
    LONG_RUN,
    LONG_TUNING,
    Command,
    all_runs,
    kill,
    start,
    wait_until,
    with_role,
)
from tests.support.processes import orphans_of, orphans_within

pytestmark = pytest.mark.slow

EXPERIMENT = "drill"


def train(tmp_path: Path, uri: str, *args: str) -> Command:
    return start(["train", *args, f"tracking.uri={uri}", f"tracking.experiment={EXPERIMENT}"], tmp_path, uri)


def fitting_in_parallel(cmd: Command) -> None:
    """Until the run is RUNNING and its joblib workers exist (the signal must land in ``Parallel``)."""
    wait_until(cmd, lambda runs: bool(with_role(runs, "run")) and len(orphans_of(cmd.proc.pid)) >= 2)


def statuses(uri: str, role: str) -> list[str]:
    return sorted(r.info.status for r in with_role(all_runs(uri), role))


def test_sigterm_ends_the_run_killed_and_exits_143(tmp_path: Path, tracking_uri: str) -> None:
    cmd = train(tmp_path, tracking_uri, *LONG_RUN, "cv.n_jobs=2")
    fitting_in_parallel(cmd)
    after = kill(cmd, signal.SIGTERM, settle=2, experiment=EXPERIMENT)
    assert after.returncode == 143, cmd.output()[-3000:]
    assert cmd.err.read_text().strip().splitlines()[-1] == "imblab: terminated"
    (run,) = with_role(all_runs(tracking_uri), "run")
    assert run.info.status == "KILLED"
    assert run.data.tags["imblab.killed_reason"] == "interrupted by SIGTERM"
    assert (after.orphans, after.running_before) == (0, 0)


def test_sigint_ends_the_run_killed_with_one_line_and_no_traceback(tmp_path: Path, tracking_uri: str) -> None:
    # cv.n_jobs=1: the signal lands in the main thread in the middle of a LightGBM fit.
    cmd = train(tmp_path, tracking_uri, *LONG_RUN, "cv.n_jobs=1")
    wait_until(cmd, lambda runs: bool(with_role(runs, "run")))
    after = kill(cmd, signal.SIGINT, settle=0, experiment=EXPERIMENT)
    assert after.returncode == 130, cmd.output()[-3000:]
    assert "Traceback" not in cmd.output()
    assert [line for line in cmd.err.read_text().splitlines() if "imblab" in line] == ["imblab: interrupted"]
    (run,) = with_role(all_runs(tracking_uri), "run")
    assert (run.info.status, run.data.tags["imblab.killed_reason"]) == ("KILLED", "interrupted by SIGINT")


def test_sigkill_of_a_run_leaves_no_worker_and_the_next_command_reaps_it(
    tmp_path: Path, tracking_uri: str
) -> None:
    cmd = train(tmp_path, tracking_uri, *LONG_RUN, "cv.n_jobs=2")
    fitting_in_parallel(cmd)
    after = kill(cmd, signal.SIGKILL, settle=10, experiment=EXPERIMENT)
    assert after.returncode == -signal.SIGKILL
    assert after.orphans == 0  # loky's workers and resource trackers included
    assert (after.running_before, after.running_after) == (1, 0)
    (run,) = with_role(all_runs(tracking_uri), "run")
    reason = f"process {cmd.proc.pid} on host "
    assert run.info.status == "KILLED" and run.data.tags["imblab.killed_reason"].startswith(reason)
    assert f"imblab: marked run {run.info.run_id} " in after.runs_stderr


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_killed_tuning_run_leaves_no_run_or_trial_running(
    tmp_path: Path, tracking_uri: str, signum: int
) -> None:
    cmd = train(tmp_path, tracking_uri, *LONG_TUNING)
    wait_until(cmd, lambda runs: len(with_role(runs, "trial")) >= 2)
    after = kill(cmd, signum, settle=2, experiment=EXPERIMENT)
    assert after.returncode == (143 if signum == signal.SIGTERM else -signal.SIGKILL), cmd.output()[-3000:]
    assert after.running_after == 0 and after.orphans == 0
    assert statuses(tracking_uri, "run") == ["KILLED"]
    assert "RUNNING" not in statuses(tracking_uri, "trial")


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_killed_joblib_sweep_leaves_no_worker_and_no_run_running(
    tmp_path: Path, tracking_uri: str, signum: int
) -> None:
    # Two jobs in Hydra's joblib workers, each fitting its folds in loky workers of its own.
    cmd = train(
        tmp_path,
        tracking_uri,
        "-m",
        *LONG_RUN,
        "cv.n_jobs=2",
        "threshold=fixed,best_f1",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
    )
    wait_until(cmd, lambda runs: len([r for r in with_role(runs, "run") if r.info.status == "RUNNING"]) == 2)
    after = kill(cmd, signum, settle=10, experiment=EXPERIMENT)
    assert after.returncode == (143 if signum == signal.SIGTERM else -signal.SIGKILL), cmd.output()[-3000:]
    assert after.orphans == 0
    if signum == signal.SIGTERM:
        assert after.running_before == 0  # the command itself ended every run
    assert after.running_after == 0
    (parent,) = with_role(all_runs(tracking_uri), "sweep")
    assert parent.info.status == "KILLED" and parent.data.tags["imblab.n_children"] == "2"
    assert statuses(tracking_uri, "run") == ["KILLED", "KILLED"]
    reasons = [r.data.tags["imblab.killed_reason"] for r in with_role(all_runs(tracking_uri), "run")]
    assert all(reasons), reasons


# Two trials in Optuna's thread pool, each far longer than the test waits: after an interrupt the pool
# still waits for them, so the main thread cannot unwind.
STUCK_TUNING = (
    *LONG_TUNING,
    "tuning.n_jobs=2",
    "tuning.early_stopping.enabled=false",
    # Trials of tens of seconds: the unwinding (which waits for the running trials) is still stuck
    # when the second signal comes, however fast the machine.
    "model.search_space.n_estimators.low=30000",
    "model.search_space.n_estimators.high=40000",
)


def test_a_second_signal_ends_a_stuck_unwinding_at_once(tmp_path: Path, tracking_uri: str) -> None:
    cmd = train(tmp_path, tracking_uri, *STUCK_TUNING)
    wait_until(cmd, lambda runs: bool(with_role(runs, "run")) and "folds preprocessed" in cmd.out.read_text())
    time.sleep(2)  # both trials are under way
    cmd.proc.send_signal(signal.SIGTERM)
    time.sleep(1)
    second = time.monotonic()
    cmd.proc.send_signal(signal.SIGTERM)
    returncode = cmd.proc.wait(timeout=60)
    assert returncode == 143 and time.monotonic() - second < 5, cmd.output()[-3000:]
    (run,) = with_role(all_runs(tracking_uri), "run")
    reason = "interrupted by SIGTERM (unwinding did not finish in time)"
    assert (run.info.status, run.data.tags["imblab.killed_reason"]) == ("KILLED", reason)
    # The training run and the trial runs open at that moment (one per running trial) end KILLED.
    said = r"imblab: interrupted by SIGTERM; ended (\d+) open run\(s\) KILLED and exited"
    ended = re.search(said, cmd.err.read_text())
    assert ended and 1 <= int(ended.group(1)) <= 3, cmd.err.read_text()[-2000:]
    assert not [r for r in all_runs(tracking_uri) if r.info.status == "RUNNING"]
    assert orphans_within(cmd.proc.pid, 5) == []
