"""What users see on the console: progress, run and sweep summaries, shell completion, ``--info``, the
recorded command. Real subprocesses (``python -m imblab``), a real bash (and zsh when installed), a real
pseudo-terminal for the live display, a real SQLite store."""

from __future__ import annotations

import fcntl
import io
import os
import pty
import re
import shlex
import shutil
import struct
import subprocess
import sys
import termios
import threading
from pathlib import Path

import pytest
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient

from imblab.app.main import route_completion
from imblab.console.progress import RunProgress, duration
from imblab.console.summary import describe_sweep
from imblab.tracking.sweeps import sweep_progress
from tests.conftest import FAST, QUICK
from tests.support.cli import imblab, runs_of

SMOTE_VARIANTS = {"sampler=smote", "sampler=smote_enn", "sampler=smote_tomek", "sampler=smotenc"}


# ------------------------------------------------------------------------------------------------------
# Shell completion
# ------------------------------------------------------------------------------------------------------


@pytest.fixture
def on_path(tmp_path: Path) -> dict[str, str]:
    """An environment whose PATH starts with an ``imblab`` that runs this checkout (as an install would)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    exe = bin_dir / "imblab"
    exe.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m imblab "$@"\n')
    exe.chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}


def _completion_script(tmp_path: Path, env: dict[str, str], shell: str) -> Path:
    proc = subprocess.run(
        ["imblab", "train", "-sc", f"install={shell}"], capture_output=True, text=True, env=env, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    script = tmp_path / f"imblab-completion.{shell}"
    script.write_text(proc.stdout)
    return script


def test_bash_completion_offers_commands_groups_and_options(tmp_path: Path, on_path: dict[str, str]) -> None:
    script = _completion_script(tmp_path, on_path, "bash")
    assert script.read_text().rstrip().endswith("-F hydra_bash_completion imblab")
    # What bash does at <TAB>: set COMP_LINE / COMP_POINT / COMP_CWORD and call the registered function,
    # which runs `imblab -sc query=bash`. One completion per line of output.
    lines = ["imblab tr", "imblab train sampler=sm", "imblab panel decision=", "imblab panel tracking="]
    calls = "\n".join(
        f"COMP_LINE={shlex.quote(line)}; COMP_POINT=${{#COMP_LINE}}; COMP_CWORD={len(line.split()) - 1}; "
        'COMPREPLY=(); hydra_bash_completion; echo "${COMPREPLY[*]}"'
        for line in lines
    )
    proc = subprocess.run(
        ["bash", "-c", f"source {shlex.quote(str(script))}\n{calls}"],
        capture_output=True,
        text=True,
        env=on_path,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    train, sampler, decision, tracking = (set(out.split()) for out in proc.stdout.splitlines())
    assert train == {"train"}
    assert sampler == SMOTE_VARIANTS
    assert decision == {"decision=argmax", "decision=offsets_macro_f1", "decision=offsets_balanced_accuracy"}
    assert tracking == {"tracking=embedded"}  # a group of conf/, found through imblab panel's search path


@pytest.mark.skipif(
    shutil.which("zsh") is None and os.environ.get("CI") != "true",
    reason="zsh is not installed (CI installs it)",
)
def test_zsh_completes_through_bashcompinit(tmp_path: Path, on_path: dict[str, str]) -> None:
    script = _completion_script(tmp_path, on_path, "zsh")
    check = subprocess.run(["zsh", "-n", str(script)], capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stderr
    # Hydra's zsh support is its bash script under zsh's bashcompinit; compgen is the path zsh takes at <TAB>.
    line = "imblab train sampler=sm"
    body = (
        "autoload -Uz compinit bashcompinit; compinit -u -D; bashcompinit\n"
        f"source {shlex.quote(str(script))}\n"
        'print -r -- "registered: $_comps[imblab]"\n'
        f"words=({line}); CURRENT=3; export COMP_LINE={shlex.quote(line)}; COMP_CWORD=2\n"
        "compgen -o nospace -o default -F hydra_bash_completion -- sampler=sm\n"
    )
    proc = subprocess.run(["zsh", "-f", "-c", body], capture_output=True, text=True, env=on_path, timeout=300)
    assert proc.returncode == 0, proc.stderr
    first, *offered = proc.stdout.splitlines()
    assert first == "registered: _bash_complete -o nospace -o default -F hydra_bash_completion"
    assert set(offered) == SMOTE_VARIANTS


def test_completion_queries_are_routed_by_the_command_being_typed(monkeypatch: pytest.MonkeyPatch) -> None:
    query = ["-sc", "query=bash"]
    assert route_completion(["-sc", "install=bash"]) == ("train", ["-sc", "install=bash"])
    monkeypatch.setenv("COMP_LINE", "imblab train  sampler=sm")
    assert route_completion(query) == ("train", query)
    assert os.environ["COMP_LINE"] == "imblab  sampler=sm"  # what Hydra expects: program, then overrides
    monkeypatch.setenv("COMP_LINE", "imblab panel ")
    assert route_completion(query) == ("panel", query)
    assert os.environ["COMP_LINE"] == "imblab "  # a new word is being started
    monkeypatch.setenv("COMP_LINE", "imblab compare --exp")
    assert route_completion(query) is None  # argparse commands: the shell completes file names


def test_hydra_options_print_once_and_the_completion_help_points_at_imblab(tmp_path: Path) -> None:
    info = imblab("train", "--info", "plugins", cwd=tmp_path)
    assert info.returncode == 0, info.stderr
    assert (info.stdout + info.stderr).count("Installed Hydra Plugins") == 1
    assert info.stderr == ""
    config = imblab("train", "--cfg", "job", cwd=tmp_path)
    assert config.returncode == 0 and (config.stdout + config.stderr).count("sampler:") == 1
    helped = imblab("train", "--hydra-help", cwd=tmp_path)
    assert 'eval "$(imblab -sc install=bash)"' in helped.stdout  # which works: imblab routes -sc itself


# ------------------------------------------------------------------------------------------------------
# A run on the console, and the command it records
# ------------------------------------------------------------------------------------------------------


def test_run_summary_recorded_command_and_a_rerun_that_reuses_the_fit(
    tmp_path: Path, tracking_uri: str
) -> None:
    typed = [
        "train",
        *FAST,
        "tracking.run_name=two words",
        f"tracking.uri={tracking_uri}",
        "tracking.experiment=c",
    ]
    first = imblab(*typed, cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    (run,) = runs_of(tracking_uri, "c")
    run_id = run.info.run_id
    # Nothing on stderr but what matters: no MLflow model-logging chatter, no progress (not a terminal).
    for noise in (
        "CloudPickle",
        "Validating input example",
        "Downloading artifacts",
        "\r",
        "folds + final fit",
    ):
        assert noise not in first.stderr, first.stderr
    # The summary: run id, variant, threshold, both metric rows, the fit, the model, what to do next.
    out = first.stdout
    assert f"run {run_id} FINISHED: smote · lgbm · best_f1 (experiment c)" in out
    assert f"threshold {run.data.tags['threshold']} (best_f1" in out
    for part in ("cv", "test"):
        assert re.search(rf"^  {part} +{run.data.metrics[f'{part}_pr_auc']:.4f} ", out, re.M), out
    assert f"fitted, cached as {run.data.tags['imblab.fit_key'][:12]}" in out
    assert "models:/m-" in out
    assert f"imblab runs --experiment c --tracking-uri {tracking_uri}" in out
    assert f"mlflow ui --backend-store-uri {tracking_uri}" in out

    # The recorded command is the one typed, subcommand included, quoted so that it reruns as it is.
    command = run.data.tags["imblab.command"]
    assert command == shlex.join(["imblab", *typed])
    argv = shlex.split(command)
    assert argv[:2] == ["imblab", "train"] and "tracking.run_name=two words" in argv
    again = imblab(*argv[1:], cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    rerun = next(r for r in runs_of(tracking_uri, "c") if r.info.run_id != run_id)
    assert rerun.info.run_name == "two words" and rerun.data.tags["imblab.command"] == command
    assert rerun.data.params == run.data.params
    assert f"reused cached fit {run.data.tags['imblab.fit_key'][:12]}" in again.stdout


def test_progress_is_drawn_on_a_terminal_only(tmp_path: Path, tracking_uri: str) -> None:
    """stderr is a pseudo-terminal here: the stages appear there, the summary stays plain on stdout."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    chunks: list[bytes] = []

    def drain() -> None:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the terminal's last writer is gone
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "imblab", "train", *QUICK, f"tracking.uri={tracking_uri}"],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=slave,
            text=True,
            timeout=600,
        )
    finally:
        os.close(slave)
        reader.join(timeout=30)
        os.close(master)
    terminal = b"".join(chunks).decode(errors="replace")
    assert proc.returncode == 0, terminal[-3000:]
    assert "imblab train: none · logreg · best_f1" in terminal
    for stage in (
        r"data +\d+\.\ds +synthetic: 600 rows",
        r"fit +\d+\.\ds +3 folds \+ final fit",
        "scoring",
        "logging",
    ):
        assert re.search(stage, terminal), terminal
    assert "fit:" in terminal  # the live bar of the fold fits, replaced by the finished line
    assert "\r" not in proc.stdout and proc.stdout.startswith("run ")


def test_progress_lines_and_durations() -> None:
    assert [duration(s) for s in (0.04, 41.25, 59.96, 192.4)] == ["0.0s", "41.2s", "1m00s", "3m12s"]
    quiet, shown = io.StringIO(), io.StringIO()
    for stream, live in ((quiet, None), (shown, True)):  # a StringIO is no terminal: None draws nothing
        with RunProgress("title", live, stream) as progress:
            with progress.stage("fit", total=3, unit="fit") as stage:
                for _ in range(3):
                    stage.advance()
                stage.detail = "3 folds"
            with pytest.raises(RuntimeError), progress.stage("logging"):
                raise RuntimeError("no finished line for a stage that fails")
    assert quiet.getvalue() == ""
    text = shown.getvalue()
    lines = re.split(r"[\r\n]+", text)  # the live bars are redrawn after a carriage return
    assert lines[0] == "title" and any(line.startswith("  fit:") and "0/3" in line for line in lines)
    assert any(re.fullmatch(r"  fit +\d+\.\ds  3 folds", line) for line in lines)
    assert "  logging ...  00:00" in lines  # its transient line, but no finished line
    assert not any(re.match(r"  logging +\d", line) for line in lines)


# ------------------------------------------------------------------------------------------------------
# A sweep's summary
# ------------------------------------------------------------------------------------------------------


def test_sweep_summary_names_jobs_the_best_by_cv_and_the_next_commands(tracking_uri: str) -> None:
    client = MlflowClient(tracking_uri)
    exp = client.create_experiment("s")
    parent = client.create_run(exp, tags={"imblab.role": "sweep", "imblab.n_jobs": "4"}).info.run_id
    jobs = [
        ("none", "fixed", 0.30, "FINISHED"),
        ("smote", "best_f1", 0.41, "FINISHED"),
        ("adasyn", "fixed", 0.5, "FAILED"),
    ]
    ids = {}
    for sampler, policy, cv_pr_auc, status in jobs:
        tags = {"mlflow.parentRunId": parent, "sampler": sampler, "model": "lgbm", "threshold_policy": policy}
        run = client.create_run(exp, tags={**tags, "imblab.role": "run", "threshold": "0.5"})
        client.log_metric(run.info.run_id, "cv_pr_auc", cv_pr_auc)
        client.log_metric(run.info.run_id, "test_pr_auc", cv_pr_auc - 0.1)
        client.set_terminated(run.info.run_id, status)
        ids[sampler] = run.info.run_id
    client.set_terminated(parent, "FAILED")
    text = describe_sweep(tracking_uri, parent)
    assert (
        text.splitlines()[0] == f"sweep {parent}: {sweep_progress(client, client.get_run(parent)).describe()}"
    )
    assert "2 of 4 jobs finished, 1 FAILED, 1 without a run" in text
    # The best by cv_pr_auc among FINISHED jobs (the FAILED one's higher value does not count).
    assert f"best by cv_pr_auc: run {ids['smote']}  smote · lgbm · best_f1  cv_pr_auc 0.4100" in text
    assert f"FAILED: run {ids['adasyn']}  adasyn · lgbm · fixed" in text
    assert f"imblab compare --experiment s --sweep {parent} --tracking-uri {tracking_uri}" in text
    assert f"mlflow ui --backend-store-uri {tracking_uri}" in text


def test_a_panel_sweep_is_summarised_by_its_own_variant_and_validation_metric(tracking_uri: str) -> None:
    parts = (("val", 0.0), ("test", 0.05))
    client = MlflowClient(tracking_uri)
    exp = client.create_experiment("panel")
    parent = client.create_run(exp, tags={"imblab.role": "sweep"}).info.run_id
    ids = {}
    for model, score in (("lstm", 0.52), ("gru", 0.48)):
        tags = {"mlflow.parentRunId": parent, "imblab.workload": "panel", "imblab.role": "run"}
        tags |= {"model": model, "class_balance": "class_weight", "decision": "argmax"}
        run = client.create_run(exp, tags=tags)
        client.log_batch(
            run.info.run_id,
            metrics=[Metric(f"{part}_class_balanced_accuracy", score - drop, 0, 3) for part, drop in parts],
        )
        client.set_terminated(run.info.run_id)
        ids[model] = run.info.run_id
    client.set_terminated(parent)
    text = describe_sweep(tracking_uri, parent)
    # Ranked as imblab compare and imblab runs select panel runs: on validation balanced accuracy.
    assert f"best by val_class_balanced_accuracy: run {ids['lstm']}  lstm · class_weight · argmax" in text
    assert "val_class_balanced_accuracy 0.5200  test_class_balanced_accuracy 0.4700" in text
    assert f"imblab compare --experiment panel --sweep {parent}" in text
