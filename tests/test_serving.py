"""``imblab serve`` as a real subprocess (MLflow's scoring server) and ``imblab predict`` on real files."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from imblab.app.main import main as imblab_main
from imblab.errors import ImblabError
from imblab.serving.batch import predict_file
from tests.conftest import FAST
from tests.support.serving import CHAMPION_URI, MODEL_NAME, Served, invoke, payload, serving, trained

NAME = MODEL_NAME


@pytest.fixture(scope="module")
def fast(tmp_path_factory: pytest.TempPathFactory) -> Served:
    return trained(tmp_path_factory.mktemp("serving"), *FAST)


@pytest.fixture(scope="module")
def server(fast: Served, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``imblab serve models:/defects@champion`` on a free port; stopped after the module."""
    home = tmp_path_factory.mktemp("server")
    (home / "tmp").mkdir()
    env = {"TMPDIR": str(home / "tmp")}  # where the server downloads the model
    with serving(CHAMPION_URI, fast.tracking_uri, log_path=home / "serve.log", env=env) as base:
        yield f"{base}/invocations"
    # Stopped with SIGTERM, the server still removed its copy of the model.
    assert not list((home / "tmp").iterdir()), (home / "serve.log").read_text()


def predictions(answer: dict) -> pd.DataFrame:
    return pd.DataFrame(answer["predictions"])


def test_server_answers_per_row_and_honours_threshold(server: str, fast: Served) -> None:
    rows = fast.X.iloc[:40].copy()
    rows.iloc[0, 3] = np.nan  # missing values travel as JSON null and are imputed by the pipeline
    expected = fast.model.predict_proba(rows)

    status, answer = invoke(server, payload(rows))
    assert status == 200
    got = predictions(answer)
    assert list(got.columns) == ["decision", "probability"] and len(got) == len(rows)
    np.testing.assert_allclose(got["probability"], expected, rtol=1e-12)
    np.testing.assert_array_equal(got["decision"], (expected >= fast.model.threshold).astype(int))

    status, answer = invoke(server, payload(rows, threshold=0.3))
    assert status == 200
    low = predictions(answer)
    np.testing.assert_array_equal(low["decision"], (expected >= 0.3).astype(int))
    assert (low["decision"] != got["decision"]).any()  # the param really changed decisions

    status, answer = invoke(server, payload(rows.iloc[:1]))
    assert status == 200 and len(answer["predictions"]) == 1


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda X: X.drop(columns=[X.columns[1]]), "1 missing column(s) ['x01']"),
        (lambda X: X.assign(lot_id=7), "1 unexpected column(s) ['lot_id']"),
        (lambda X: X.assign(x02="abc"), "non-numeric values in feature column(s) ['x02']"),
    ],
    ids=["missing-column", "extra-column", "non-numeric"],
)
def test_server_rejects_bad_rows(server: str, fast: Served, change, message: str) -> None:
    status, answer = invoke(server, payload(change(fast.X.iloc[:3])))
    assert status == 400
    assert answer["error_code"] == "INVALID_PARAMETER_VALUE"
    assert message in answer["message"]


def test_server_rejects_bad_threshold_and_bad_json(server: str, fast: Served) -> None:
    status, answer = invoke(server, payload(fast.X.iloc[:2], threshold=1.5))
    assert status == 400 and "threshold must be in [0, 1], got 1.5" in answer["message"]
    status, answer = invoke(server, b"{not json")
    assert 400 <= status < 500


def test_serve_refuses_unknown_model_and_busy_port(fast: Served, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["serve", f"models:/{NAME}@nope", "--tracking-uri", fast.tracking_uri]
    assert imblab_main(args) == 2
    assert "cannot fetch model models:/defects@nope" in capsys.readouterr().err
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        assert imblab_main([*args[:2], "--port", port]) == 2
    assert f"port {port} on 127.0.0.1 is in use" in capsys.readouterr().err


def _lots(fast: Served, n: int = 60) -> pd.DataFrame:
    """Feature rows in shuffled order with id columns mixed in (text ids with leading zeros)."""
    rows = fast.X.iloc[:n].sample(frac=1.0, random_state=3)
    table = rows.reset_index(drop=True)
    table.insert(0, "lot", [f"{i:05d}" for i in rows.index])
    table.insert(4, "wafer", np.arange(len(rows)) % 7)
    return table


def test_predict_round_trips_parquet_keeping_order_and_ids(tmp_path: Path, fast: Served) -> None:
    table = _lots(fast)
    table.to_parquet(tmp_path / "in.parquet", index=False)
    out = predict_file(
        CHAMPION_URI,
        tmp_path / "in.parquet",
        tmp_path / "out.parquet",
        batch_size=7,
        tracking_uri=fast.tracking_uri,
    )
    back = pd.read_parquet(tmp_path / "out.parquet")
    pd.testing.assert_frame_equal(back, out)
    assert list(back.columns) == ["lot", "wafer", "decision", "probability"]  # ids inferred, in input order
    pd.testing.assert_series_equal(back["lot"], table["lot"])
    pd.testing.assert_series_equal(back["wafer"], table["wafer"])
    expected = fast.model.predict_proba(table.drop(columns=["lot", "wafer"]))
    np.testing.assert_allclose(back["probability"], expected, rtol=1e-12)  # batches keep row order
    np.testing.assert_array_equal(back["decision"], (expected >= fast.model.threshold).astype(int))

    # Naming only some ids leaves the other one among the features: a clear error, no silent drop.
    with pytest.raises(ImblabError, match=r"unexpected column\(s\) \['wafer'\]"):
        predict_file(
            CHAMPION_URI,
            tmp_path / "in.parquet",
            tmp_path / "o.parquet",
            id_columns=["lot"],
            tracking_uri=fast.tracking_uri,
        )
    with pytest.raises(ImblabError, match=r"use a \.csv"):
        predict_file(
            CHAMPION_URI, tmp_path / "in.parquet", tmp_path / "o.json", tracking_uri=fast.tracking_uri
        )


def test_predict_cli_round_trips_csv(tmp_path: Path, fast: Served) -> None:
    table = _lots(fast)
    table.to_csv(tmp_path / "in.csv", index=False)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "imblab",
            "predict",
            CHAMPION_URI,
            str(tmp_path / "in.csv"),
            "-o",
            str(tmp_path / "out.csv"),
            "--id-columns",
            "lot,wafer",
            "--threshold",
            "0.3",
            "--tracking-uri",
            fast.tracking_uri,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert f"scored {len(table)} rows" in proc.stdout
    back = pd.read_csv(tmp_path / "out.csv", dtype={"lot": str})
    assert list(back.columns) == ["lot", "wafer", "decision", "probability"]
    assert back["lot"].tolist() == table["lot"].tolist()  # "00012" stays "00012"
    assert back["wafer"].tolist() == table["wafer"].tolist()
    expected = fast.model.predict_proba(table.drop(columns=["lot", "wafer"]))
    np.testing.assert_allclose(back["probability"], expected, rtol=1e-9)
    np.testing.assert_array_equal(back["decision"], (expected >= 0.3).astype(int))


@pytest.mark.slow
def test_secom_model_served_and_batch_scored(tmp_path: Path, secom_dir: Path) -> None:
    """A SECOM-trained champion: REST and batch answers equal the in-process model on real rows."""
    secom = trained(
        tmp_path, "data=secom", "sampler=random_under", "model.estimator.n_estimators=60", "cv.folds=3"
    )
    rows = secom.X.iloc[::40]  # 40 real lots, NaNs included
    assert rows.isna().any().any()
    expected = secom.model.predict_proba(rows)
    with serving(CHAMPION_URI, secom.tracking_uri) as base:
        status, answer = invoke(f"{base}/invocations", payload(rows))
        assert status == 200
        np.testing.assert_allclose(predictions(answer)["probability"], expected, rtol=1e-9)
        status, answer = invoke(f"{base}/invocations", payload(rows.drop(columns=["f007"])))
        assert status == 400 and "missing column(s) ['f007']" in answer["message"]

    table = pd.concat([pd.Series(rows.index, name="lot"), rows.reset_index(drop=True)], axis=1)
    table.to_parquet(tmp_path / "lots.parquet", index=False)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "imblab",
            "predict",
            CHAMPION_URI,
            str(tmp_path / "lots.parquet"),
            "-o",
            str(tmp_path / "scored.parquet"),
            "--tracking-uri",
            secom.tracking_uri,
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    out = pd.read_parquet(tmp_path / "scored.parquet")
    assert out["lot"].tolist() == rows.index.tolist()
    np.testing.assert_allclose(out["probability"], expected, rtol=1e-12)
    versions = MlflowClient(secom.tracking_uri).search_model_versions(f"name = '{NAME}'")
    assert [str(v.version) for v in versions] == ["1"]
