"""``imblab serve`` as a real uvicorn subprocess: every protocol form, every refusal (one short JSON object,
no stack trace, no path), body limits, and the panel model served like the binary one."""

from __future__ import annotations

import os
import signal
import socket
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterable, Iterator
from pathlib import Path

import mlflow
import numpy as np
import orjson
import pandas as pd
import pytest

from imblab.app.main import main as imblab_main
from imblab.config.panel import panel_experiment_from_config
from imblab.panel.experiment import run_panel
from imblab.panel.frozen import panel_input_example
from imblab.panel.synthetic import make_panel_synthetic
from imblab.serving import numeric_rows
from imblab.serving.protocol import RequestError, numeric_split, parse_json
from tests.conftest import FAST
from tests.panel.test_app import compose_panel
from tests.support.processes import spawn, stop_group
from tests.support.serving import CHAMPION_URI, Served, free_port, invoke, payload, serving, trained

LIMIT_MB = 25  # over the 20 MB malformed body below, so that one reaches the JSON parser
PARQUET = "application/vnd.apache.parquet"


@pytest.fixture(scope="module")
def fast(tmp_path_factory: pytest.TempPathFactory) -> Served:
    return trained(tmp_path_factory.mktemp("server"), *FAST)


@pytest.fixture(scope="module")
def base(fast: Served) -> Iterator[str]:
    with serving(CHAMPION_URI, fast.tracking_uri, args=["--max-body-mb", str(LIMIT_MB)]) as url:
        yield url


def private_dirs() -> list[str]:
    """Directories an error must not reveal."""
    import imblab

    dirs = [sys.prefix, tempfile.gettempdir(), str(Path(imblab.__file__).parent), str(Path.home())]
    return [d for d in dirs if len(d) > 1]


def refused(base: str, body: bytes, content_type: str = "application/json") -> tuple[int, dict, bytes]:
    """POST a body the server must refuse; check the answer's shape and return it (status, JSON, raw)."""
    request = urllib.request.Request(f"{base}/invocations", body, {"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=120) as resp:
            raise AssertionError(f"accepted with {resp.status}: {resp.read()[:300]!r}")
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    answer = orjson.loads(raw)
    assert set(answer) == {"error_code", "message"}, answer
    assert len(raw) < 2048, f"{len(raw)} bytes of error"
    for marker in ("Traceback", 'File "', ".py", *private_dirs()):
        assert marker not in answer["message"], (marker, answer)
    return status, answer, raw


def raw_request(base: str, head: bytes, body_parts: Iterable[bytes]) -> bytes:
    """Send raw HTTP on one socket (headers, then parts until the server stops reading); the answer."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=60) as sock:
        sock.sendall(head)
        try:
            for part in body_parts:
                sock.sendall(part)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed before the whole body was sent: that is the point
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def probabilities(answer: dict) -> np.ndarray:
    return pd.DataFrame(answer["predictions"])["probability"].to_numpy()


# ------------------------------------------------------------------------------------------------------
# The protocol: every body form answers the same numbers
# ------------------------------------------------------------------------------------------------------


def test_every_body_form_answers_the_same_predictions(base: str, fast: Served) -> None:
    rows = fast.X.iloc[:25]
    expected = fast.model.predict_proba(rows)
    records = rows.to_dict(orient="records")
    columns = rows.to_dict(orient="list")
    bodies = {
        "split": (payload(rows), "application/json"),
        "records": (orjson.dumps({"dataframe_records": records}), "application/json; charset=utf-8"),
        "inputs": (orjson.dumps({"inputs": columns}), "application/json"),
        "instances": (orjson.dumps({"instances": records}), "application/json"),
        "csv": (rows.to_csv(index=False).encode(), "text/csv"),
        "parquet": (rows.to_parquet(index=False), PARQUET),
    }
    for name, (body, content_type) in bodies.items():
        status, answer = invoke(f"{base}/invocations", body, content_type=content_type)
        assert status == 200, (name, answer)
        assert [set(r) for r in answer["predictions"]] == [{"decision", "probability"}] * len(rows), name
        np.testing.assert_allclose(probabilities(answer), expected, rtol=1e-9, err_msg=name)
    # Columns in another order and numbers sent as text take pandas' general path: same answer.
    shuffled = rows[rows.columns[::-1]].astype(str)
    status, answer = invoke(f"{base}/invocations", payload(shuffled))
    assert status == 200
    np.testing.assert_allclose(probabilities(answer), expected, rtol=1e-9)


def test_a_large_json_batch_answers_as_its_parquet_twin(base: str, fast: Served) -> None:
    """A batch over ``numeric_rows.MIN_BYTES`` is read by the numeric fast path: the very answer of
    the same rows as Parquet; a number JSON does not allow in it gets the general path's refusal."""
    rows = fast.X.sample(n=20_000, replace=True, random_state=5).reset_index(drop=True)
    rows.iloc[::7, 2] = np.nan
    body = payload(rows)
    assert len(body) >= numeric_rows.MIN_BYTES
    assert numeric_split(body, fast.model.feature_names) is not None  # what the server reads it with
    status, answer = invoke(f"{base}/invocations", body)
    assert status == 200
    status, expected = invoke(f"{base}/invocations", rows.to_parquet(index=False), content_type=PARQUET)
    assert status == 200 and answer == expected  # every decision and probability, exactly

    bad = body.replace(b'"data":[[', b'"data":[[0', 1)  # 00.5 or 0-1.2: not JSON
    with pytest.MonkeyPatch.context() as mp, pytest.raises(RequestError) as general:
        mp.setattr(numeric_rows, "MIN_BYTES", sys.maxsize)  # the general path, in process
        parse_json(bad, list(rows.columns))
    status, answer, _ = refused(base, bad)
    assert status == 400 and answer["message"] == str(general.value)
    assert answer["message"].startswith("the body is not valid JSON")


def test_health_version_and_unknown_routes(base: str) -> None:
    for path in ("/ping", "/health"):
        with urllib.request.urlopen(f"{base}{path}", timeout=10) as resp:
            assert resp.status == 200
    with urllib.request.urlopen(f"{base}/version", timeout=10) as resp:
        version = orjson.loads(resp.read())
    assert version["mlflow"] == mlflow.__version__ and version["model"] == f"{CHAMPION_URI} (version 1)"
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(f"{base}/predict", timeout=10)
    assert info.value.code == 404
    assert orjson.loads(info.value.read())["error_code"] == "ENDPOINT_NOT_FOUND"


# ------------------------------------------------------------------------------------------------------
# Refusals: one JSON object, a clear message, no echo, no trace, no path
# ------------------------------------------------------------------------------------------------------


def test_malformed_json_of_20_mb_gets_a_short_answer(base: str) -> None:
    body = b'{"dataframe_split": {"columns": ["a"], "data": [[1, ' + b"x" * 20_000_000 + b"]]}}"
    status, answer, raw = refused(base, body)
    assert status == 400 and answer["error_code"] == "BAD_REQUEST"
    assert "the body is not valid JSON" in answer["message"] and f"({len(body):,} bytes)" in answer["message"]
    quoted = answer["message"].split("it starts ")[1]
    assert quoted.startswith("'") and len(quoted.split("'")[1]) <= 80  # the preview, no more
    assert len(raw) < 400


def test_an_empty_table_is_a_clear_400(base: str, fast: Served) -> None:
    empty = fast.X.iloc[:0]
    for body, content_type in (
        (payload(empty), "application/json"),
        (b'{"dataframe_records": []}', "application/json"),
        (empty.to_csv(index=False).encode(), "text/csv"),
        (empty.to_parquet(index=False), PARQUET),
    ):
        status, answer, _ = refused(base, body, content_type)
        assert status == 400 and answer["error_code"] == "INVALID_PARAMETER_VALUE", content_type
        assert answer["message"] == "the request has no rows to score; send at least one row"


@pytest.mark.parametrize(
    ("body", "content_type", "status", "message"),
    [
        (b"PAR1" + b"\x00garbage" * 5000, PARQUET, 400, "the body is not a Parquet file"),
        (b'"a","b\n1', "text/csv", 400, "the body is not a CSV table"),
        (b"", "application/json", 400, "the request body is empty"),
        (b"[[1, 2]]", "application/json", 400, "the JSON body must be an object"),
        (b'{"data": [[1]]}', "application/json", 400, "unknown key(s) ['data']"),
        (
            b'{"dataframe_split": {"columns": ["a", "b"], "data": [[1]]}}',
            "application/json",
            400,
            "not a table",
        ),
        (b'{"inputs": [1, 2]}', "application/json", 400, "this model takes a table with named columns"),
        (
            b"a=1",
            "application/x-www-form-urlencoded",
            415,
            "Content-Type 'application/x-www-form-urlencoded'",
        ),
        (b"{}", "application/json; charset=latin-1", 415, "only charset=utf-8"),
    ],
    ids=[
        "parquet",
        "csv",
        "empty-body",
        "json-list",
        "unknown-key",
        "ragged",
        "inputs-list",
        "415",
        "charset",
    ],
)
def test_unreadable_bodies_are_refused_plainly(
    base: str, body: bytes, content_type: str, status: int, message: str
) -> None:
    got, answer, _ = refused(base, body, content_type)
    assert got == status and message in answer["message"], answer


def test_missing_and_unknown_columns_are_named_in_a_bounded_list(base: str, fast: Served) -> None:
    rows = fast.X.iloc[:2].drop(columns=["x00"])
    rows = pd.concat(
        [rows, pd.DataFrame(0.0, index=rows.index, columns=[f"id{i}" for i in range(300)])], axis=1
    )
    status, answer, _ = refused(base, payload(rows))
    assert status == 400 and answer["error_code"] == "INVALID_PARAMETER_VALUE"
    message = answer["message"]
    assert "1 missing column(s) ['x00']" in message and "300 unexpected column(s) ['id0'," in message
    assert "'id9'" in message and "'id10'" not in message  # ten names at most


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"treshold": 0.3}, "unknown param(s) ['treshold']: this model takes the params ['threshold']"),
        ({"threshold": "abc"}, "Failed to validate type and shape for 'threshold'"),
        ({"threshold": 1.5}, "threshold must be in [0, 1], got 1.5"),
        ([0.3], '"params" must be a JSON object'),
    ],
    ids=["unknown", "type", "range", "not-object"],
)
def test_invalid_params_are_a_400(base: str, fast: Served, params: object, message: str) -> None:
    body = orjson.dumps({"dataframe_records": fast.X.iloc[:1].to_dict(orient="records"), "params": params})
    status, answer, _ = refused(base, body)
    assert status == 400 and answer["error_code"] == "INVALID_PARAMETER_VALUE"
    assert message in answer["message"]


def test_a_body_over_the_limit_is_413_before_it_is_read(base: str) -> None:
    head = (
        b"POST /invocations HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        b"Content-Length: 1000000000000\r\n\r\n"
    )
    answer = raw_request(base, head, iter([b'{"dataframe_split": ']))  # a terabyte announced, 20 bytes sent
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line == b"HTTP/1.1 413 Request Entity Too Large", answer[:300]
    assert b"connection: close" in rest.lower()
    error = orjson.loads(rest.split(b"\r\n\r\n", 1)[1])
    assert error["error_code"] == "REQUEST_LIMIT_EXCEEDED"
    assert f"over the server's limit of {LIMIT_MB} MB (imblab serve --max-body-mb)" in error["message"]

    # Without a Content-Length (chunked), bytes are counted as they arrive: refused past the limit.
    head = (
        b"POST /invocations HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    chunk = b"%x\r\n%s\r\n" % (2**20, b" " * 2**20)
    answer = raw_request(base, head, iter([chunk] * (LIMIT_MB + 10)))
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:300]
    # A chunked body under the limit is read and scored as usual.
    body = b'{"dataframe_records": [{"x": 1}]}'
    head = head.replace(b"Host: t\r\n", b"Host: t\r\nConnection: close\r\n")
    answer = raw_request(base, head, iter([b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)]))
    assert answer.startswith(b"HTTP/1.1 400 ") and b"1 unexpected column(s) ['x']" in answer, answer[:500]


def test_serve_refuses_a_bad_body_limit_and_a_directory_that_is_no_model(
    fast: Served, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = imblab_main(["serve", CHAMPION_URI, "--tracking-uri", fast.tracking_uri, "--max-body-mb", "0"])
    assert code == 2 and "--max-body-mb must be > 0, got 0.0" in capsys.readouterr().err
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "notes.txt").write_text("not a model")
    code = imblab_main(["serve", str(tmp_path / "junk"), "--tracking-uri", fast.tracking_uri])
    assert code == 2 and f"cannot load model {tmp_path / 'junk'}: MlflowException" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------------
# The panel model, and the server's life cycle
# ------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def panel_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A persistence panel run on 150 synthetic persons: (tracking URI, model URI)."""
    uri = f"sqlite:///{tmp_path_factory.mktemp('panel') / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        cfg = compose_panel(
            "data=panel_synthetic",
            "data.n_persons=150",
            "max_len=4",
            "model=persistence",
            f"tracking.uri={uri}",
            "tracking.experiment=panel",
        )
        outcome = run_panel(panel_experiment_from_config(cfg))
    assert outcome.model_uri
    return uri, outcome.model_uri


def test_panel_model_served_history_in_one_row_per_person_out(panel_model: tuple[str, str]) -> None:
    uri, model_uri = panel_model
    panel = make_panel_synthetic(n_persons=150, seed=42)
    waves = panel.frame[panel.id].value_counts(sort=False)
    persons = waves[waves >= 3].index[:6].to_numpy()  # a history of two waves or more, and the one to predict
    history = panel_input_example(panel, persons)
    mlflow.set_tracking_uri(uri)
    local = mlflow.pyfunc.load_model(model_uri)
    expected = local.predict(history)
    argmax = local.predict(history, params={"decision": "argmax"})
    with serving(model_uri, uri) as url:
        status, answer = invoke(f"{url}/invocations", payload(history))
        assert status == 200, answer
        got = pd.DataFrame(answer["predictions"])
        assert list(got.columns) == list(expected.columns) and len(got) == len(persons)
        assert got[panel.id].tolist() == expected[panel.id].tolist()
        assert got["class"].tolist() == expected["class"].tolist()
        np.testing.assert_allclose(got["wage"], expected["wage"], rtol=1e-9)  # 15 digits in JSON
        probs = [c for c in got.columns if c.startswith("prob_")]
        np.testing.assert_allclose(got[probs], expected[probs], rtol=1e-9)

        body = orjson.dumps(
            {
                "dataframe_records": orjson.loads(history.to_json(orient="records")),
                "params": {"decision": "argmax"},
            }
        )
        status, answer = invoke(f"{url}/invocations", body)
        assert (
            status == 200
            and pd.DataFrame(answer["predictions"])["class"].tolist() == argmax["class"].tolist()
        )
        status, answer = invoke(f"{url}/invocations", history.to_parquet(index=False), content_type=PARQUET)
        assert status == 200 and len(answer["predictions"]) == len(persons)

        # The panel model's own checks reach the client as a 400 with its message.
        filled = history.assign(**{panel.regression_target: 1.0})
        status, answer, _ = refused(url, payload(filled))
        assert status == 400 and "must leave" in answer["message"]
        status, answer, _ = refused(url, payload(history.iloc[:0]))
        assert "no rows to score" in answer["message"]


@pytest.mark.slow
def test_two_workers_serve_and_sigint_stops_cleanly(fast: Served, tmp_path: Path) -> None:
    """``--workers 2`` loads the model in each worker; SIGINT ends the server with no traceback and no
    downloaded model left behind."""
    (tmp_path / "tmp").mkdir()
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        "imblab",
        "serve",
        CHAMPION_URI,
        "--port",
        str(port),
        "--workers",
        "2",
        "--tracking-uri",
        fast.tracking_uri,
    ]
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        proc = spawn(argv, stdout=out, stderr=out, env={**os.environ, "TMPDIR": str(tmp_path / "tmp")})
    try:
        rows = fast.X.iloc[:5]
        for _ in range(600):
            try:
                status, answer = invoke(f"http://127.0.0.1:{port}/invocations", payload(rows), timeout=5)
                break
            except OSError:
                if proc.poll() is not None:
                    raise AssertionError(log.read_text()[-3000:]) from None
                time.sleep(0.2)
        assert status == 200
        np.testing.assert_allclose(probabilities(answer), fast.model.predict_proba(rows), rtol=1e-9)
        proc.send_signal(signal.SIGINT)
        # uvicorn's supervisor of several workers returns normally (0); a single worker exits 130.
        assert proc.wait(timeout=60) in (0, 128 + signal.SIGINT)
    finally:
        stop_group(proc)
    text = log.read_text()
    assert "Traceback" not in text and "KeyboardInterrupt" not in text, text[-3000:]
    assert not list((tmp_path / "tmp").iterdir()), text[-3000:]
