"""imblab.secrets: what is masked, what is left alone, and the process-wide masking of logs and streams."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf

from imblab.config.compose import plain
from imblab.secrets import is_secret_name, mask, mask_config, mask_file
from imblab.tracking.runs import command_line, flatten
from imblab.tuning.storage import open_storage, storage_label
from tests.conftest import compose_config

PW = "Pl4nt3d-pw_9"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"postgresql://user:{PW}@host/db", "postgresql://user:***@host/db"),
        (
            f"postgresql+psycopg2://u:{PW}@db.example:5432/optuna",
            "postgresql+psycopg2://u:***@db.example:5432/optuna",
        ),
        (f"mysql://root:{PW}@localhost", "mysql://root:***@localhost"),
        (f"https://a:{PW}@mlflow.example/api?x=1", "https://a:***@mlflow.example/api?x=1"),
        (f"http://admin:{PW}@127.0.0.1:5000", "http://admin:***@127.0.0.1:5000"),
        (f"s3://AKIA123:{PW}@bucket/key.parquet", "s3://AKIA123:***@bucket/key.parquet"),
        (f"redis://:{PW}@h:6379/0", "redis://:***@h:6379/0"),
        ("postgresql://u:p%40ss@h/db", "postgresql://u:***@h/db"),  # percent-encoded "@"
        ("postgresql://u:p@ss@h/db", "postgresql://u:***@h/db"),  # unencoded "@": up to the last one
        # Hydra's escaped form of an override, as it logs and saves it
        (
            f"tracking.uri=http\\://admin\\:{PW}@127.0.0.1\\:5987",
            "tracking.uri=http\\://admin\\:***@127.0.0.1\\:5987",
        ),
        (
            f"View run x at: http://admin:{PW}@127.0.0.1:5000/#/experiments/1/runs/ab",
            "View run x at: http://admin:***@127.0.0.1:5000/#/experiments/1/runs/ab",
        ),
        (f"a=http://u:{PW}@h1,http://v:{PW}@h2 b", "a=http://u:***@h1,http://v:***@h2 b"),
        (f"'http://u:{PW}@h'", "'http://u:***@h'"),
        # secret-looking keys
        (f"password={PW}", "password=***"),
        (f"+db.password={PW}", "+db.password=***"),
        (f"  db_password: {PW}", "  db_password: ***"),
        (f'{{"api_key": "{PW}", "n": 3}}', '{"api_key": "***", "n": 3}'),
        (f"host=h port=5432 password={PW} dbname=d", "host=h port=5432 password=*** dbname=d"),
        (f"http://h/x?token={PW}&page=2", "http://h/x?token=***&page=2"),
        (f"PGPASSWORD={PW} psql", "PGPASSWORD=*** psql"),
        (f"AWS_SECRET_ACCESS_KEY: {PW}", "AWS_SECRET_ACCESS_KEY: ***"),
    ],
)
def test_mask_hides_the_password(text: str, expected: str) -> None:
    assert mask(text) == expected
    assert mask(expected) == expected  # idempotent


@pytest.mark.parametrize(
    "text",
    [
        "sqlite:////abs/path/mlruns/mlflow.db",
        "sqlite:///mlruns/optuna.db",
        "journal:mlruns/optuna.log",
        "file:///tmp/a@b/c",
        "http://127.0.0.1:5000/#/experiments/1",
        "https://user@host/x",  # a user name is not a secret
        "postgresql://imblab@127.0.0.1:5432/optuna",
        "ssh://git@github.com:22/org/repo",
        "git+ssh://git@github.com/org/repo.git",
        "mailto:ops@example.com",
        "lots@fab-3: 1567 rows at 12:30:01",
        "run 347329ae: threshold 0.6507 (best_f1), test PR-AUC 0.8868",
        'FATAL: password authentication failed for user "imblab"',
        "max_tokens=100 TOKENIZERS_PARALLELISM=false passthrough=1 x.bypass=2",
        "password: ${oc.env:DB_PASSWORD}",  # a reference to a secret is not one
        "postgresql://u:${oc.env:PGPASSWORD}@h/db",
        "+db.url=postgresql\\://u\\:$\\{oc.env\\:PGPASSWORD\\}@h/db",  # as Hydra escapes an override
        "cv.folds=5 model.estimator.n_estimators=600 threshold=min_cost costs.fn=5.0",
    ],
)
def test_mask_leaves_ordinary_text_alone(text: str) -> None:
    assert mask(text) == text


def test_values_of_secret_environment_variables_are_masked_wherever_they_appear(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PGPASSWORD", PW)
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "tok-12345")
    monkeypatch.setenv("DB_PASS", "abc")  # too short to mask without garbling ordinary text
    monkeypatch.setenv("TOKENIZERS_PARALLELISM", "false")  # not a secret name
    text = f"connect user=imblab dbname=x {PW}; bearer tok-12345; abc; false"
    assert mask(text) == "connect user=imblab dbname=x ***; bearer ***; abc; false"


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("password", True),
        ("db.password", True),
        ("PGPASSWORD", True),
        ("MLFLOW_TRACKING_PASSWORD", True),
        ("MLFLOW_TRACKING_TOKEN", True),
        ("AWS_SECRET_ACCESS_KEY", True),
        ("AZURE_STORAGE_ACCESS_KEY", True),
        ("api_key", True),
        ("apiKey", True),
        ("DB_PASS", True),
        ("client_secret", True),
        ("MLFLOW_TRACKING_USERNAME", False),
        ("PWD", False),
        ("TOKENIZERS_PARALLELISM", False),
        ("max_tokens", False),
        ("password_rules.min_length", False),  # only the last component counts
        ("tracking.uri", False),
    ],
)
def test_secret_names(name: str, secret: bool) -> None:
    assert is_secret_name(name) is secret


def test_mask_config_masks_secret_keys_and_urls_and_nothing_else() -> None:
    config = {
        "tracking": {"uri": f"http://admin:{PW}@127.0.0.1:5000", "experiment": "x"},
        "tuning": {"storage": f"postgresql+psycopg2://u:{PW}@h/db", "n_trials": 5, "password": None},
        "db": {"password": PW, "credentials": {"key": "v"}, "hosts": [f"mysql://r:{PW}@a", "b"]},
        "seed": 42,
    }
    masked = mask_config(config)
    assert PW not in str(masked)
    assert masked == {
        "tracking": {"uri": "http://admin:***@127.0.0.1:5000", "experiment": "x"},
        "tuning": {"storage": "postgresql+psycopg2://u:***@h/db", "n_trials": 5, "password": None},
        "db": {"password": "***", "credentials": "***", "hosts": ["mysql://r:***@a", "b"]},
        "seed": 42,
    }
    assert config["db"]["password"] == PW  # a copy: the config itself still works


def test_flatten_and_command_line_are_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    params = flatten({"tuning": {"storage": f"postgresql://u:{PW}@h/db"}, "db": {"password": PW}})
    assert params == {"tuning.storage": "postgresql://u:***@h/db", "db.password": "***"}
    monkeypatch.setattr(sys, "argv", ["imblab", "train", f"tracking.uri=http://a:{PW}@h:5000"])
    assert command_line() == "imblab train tracking.uri=http://a:***@h:5000"


@pytest.mark.parametrize("group", ["train", "panel"])
def test_no_key_of_imblabs_own_configs_is_taken_for_a_secret(group: str) -> None:
    """Masking must not blank a real parameter: none of the shipped configs' keys looks secret."""
    if group == "train":
        cfg = compose_config("tuning=optuna")
    else:
        from hydra import compose, initialize_config_dir

        from imblab.app.panel import panel_conf_dir, search_path_override

        with initialize_config_dir(config_dir=str(panel_conf_dir()), version_base="1.3"):
            cfg = compose("panel", overrides=["tuning=optuna", search_path_override()])
    config = plain(cfg)
    assert mask_config(config) == config
    assert all(v != "***" for v in flatten(config).values())


def test_storage_label_and_open_errors_never_show_the_password() -> None:
    assert storage_label(None) == "in-memory"
    assert storage_label(f"postgresql://u:{PW}@h/db") == "postgresql://u:***@h/db"
    assert storage_label("sqlite:////tmp/x.db") == "sqlite:////tmp/x.db"
    # Nothing listens on port 1: the driver's error is reported with the URL masked.
    with pytest.raises(Exception) as info:
        open_storage(f"postgresql://u:{PW}@127.0.0.1:1/db")
    assert "cannot open the Optuna storage postgresql://u:***@127.0.0.1:1/db" in str(info.value)
    assert PW not in str(info.value)


def test_mask_file_rewrites_yaml_that_still_parses(tmp_path: Path) -> None:
    path = tmp_path / "hydra.yaml"
    path.write_text(f"db:\n  password: {PW}\n  url: http://u:{PW}@h\n  list:\n  - password={PW}\n  n: 3\n")
    assert mask_file(path)
    text = path.read_text()
    assert PW not in text
    assert yaml.safe_load(text) == {
        "db": {"password": "***", "url": "http://u:***@h", "list": ["password=***"], "n": 3}
    }
    assert not mask_file(path)  # nothing left to mask
    assert not mask_file(tmp_path / "missing.yaml")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hydra.yaml"]  # no temporary file left


def test_installed_masking_covers_logs_tracebacks_prints_and_files(tmp_path: Path) -> None:
    """In a fresh process: after ``install()`` every log record (its file handler too), traceback and
    write to stdout/stderr is masked, including handlers configured later (as Hydra does per job)."""
    log_file = tmp_path / "job.log"
    script = textwrap.dedent(
        f"""
        import logging, sys, warnings
        from imblab.secrets import install
        install()
        install()  # idempotent
        logging.basicConfig(level=logging.INFO, handlers=[
            logging.StreamHandler(sys.stderr), logging.FileHandler({str(log_file)!r})])
        log = logging.getLogger("x")
        url = "http://admin:{PW}@127.0.0.1:5000"
        log.info("tracking at %s", url)
        try:
            raise RuntimeError("API request to " + url + "/api failed")
        except RuntimeError:
            log.exception("failed")
        print("View run at:", url + "/#/experiments/1")
        sys.stdout.write("password={PW}\\n")
        sys.stderr.write(url + "\\n")
        warnings.warn("cannot reach " + url)
        raise SystemExit("imblab: error: cannot open " + url)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    out = proc.stdout + proc.stderr + log_file.read_text()
    assert "http://admin:***@127.0.0.1:5000" in out and "RuntimeError: API request" in out
    assert "View run at: http://admin:***@127.0.0.1:5000/#/experiments/1" in proc.stdout
    assert "password=***" in proc.stdout
    assert PW not in out


def test_composed_hydra_config_keeps_env_references_unresolved(monkeypatch: pytest.MonkeyPatch) -> None:
    """Why ``${oc.env:VAR}`` is the recommended way: the value exists only in the resolved config, which
    imblab masks, while the config Hydra saves holds the reference."""
    monkeypatch.setenv("IMBLAB_DB_PASSWORD", PW)
    cfg = compose_config("+db.url=postgresql://u:${oc.env:IMBLAB_DB_PASSWORD}@h/db")
    assert PW not in OmegaConf.to_yaml(cfg)  # what Hydra writes to .hydra/config.yaml
    resolved = plain(cfg)
    assert resolved["db"]["url"] == f"postgresql://u:{PW}@h/db"
    assert mask_config(resolved)["db"]["url"] == "postgresql://u:***@h/db"
