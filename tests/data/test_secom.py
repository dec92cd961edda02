"""imblab.data.secom: the real SECOM files, their validation, and a download from a loopback HTTP server."""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from imblab.data.dataset import Dataset
from imblab.data.secom import CACHE_ENV, SECOM_ENV, SECOM_SHA256, SECOM_URL, load_secom
from imblab.errors import ImblabError

# Real SECOM location: $IMBLAB_SECOM_DIR, else <repo>/../shared/data/secom (CI clones with shared/ beside).
_SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "secom"
SECOM_DIR = Path(os.environ[SECOM_ENV]) if os.environ.get(SECOM_ENV) else _SHARED
HAVE_SECOM = (SECOM_DIR / "secom.data").is_file() and (SECOM_DIR / "secom_labels.data").is_file()
HAVE_ZIP = (SECOM_DIR / "secom.zip").is_file()
needs_secom = pytest.mark.skipif(
    not HAVE_SECOM, reason=f"real SECOM files not found in {SECOM_DIR} (set {SECOM_ENV} to their directory)"
)
needs_zip = pytest.mark.skipif(not HAVE_ZIP, reason=f"secom.zip not found in {SECOM_DIR} (needed to serve)")


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test may see the caller's SECOM env var or write to the real ~/.cache."""
    monkeypatch.delenv(SECOM_ENV, raising=False)
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "default-cache"))


@pytest.fixture(scope="module")
def secom() -> Dataset:
    if not HAVE_SECOM:
        pytest.skip(f"real SECOM files not found in {SECOM_DIR}")
    return load_secom(dir=str(SECOM_DIR))


@needs_secom
def test_load_secom_shape_labels_timestamps_missing(secom: Dataset) -> None:
    assert secom.name == "secom"
    assert secom.X.shape == (1567, 590)
    assert list(secom.X.columns[:2]) == ["f000", "f001"] and secom.X.columns[-1] == "f589"
    assert (secom.X.dtypes == np.float64).all()
    assert secom.X.index.equals(pd.RangeIndex(1567))
    assert secom.y.name == "target" and secom.y.dtype == np.int64
    assert int(secom.y.sum()) == 104 and int((secom.y == 0).sum()) == 1463
    assert secom.positive_rate == pytest.approx(104 / 1567)
    assert int(secom.X.isna().sum().sum()) == 41_951
    ts = secom.timestamps
    assert ts is not None and pd.api.types.is_datetime64_any_dtype(ts)
    assert ts.is_monotonic_increasing
    assert ts.iloc[0] == pd.Timestamp("2008-07-19 11:55:00")
    assert ts.iloc[-1] == pd.Timestamp("2008-10-17 06:07:00")
    assert secom.X.iloc[0, 0] == pytest.approx(3030.93)


@needs_secom
def test_load_secom_via_env_var(monkeypatch: pytest.MonkeyPatch, secom: Dataset) -> None:
    monkeypatch.setenv(SECOM_ENV, str(SECOM_DIR))
    ds = load_secom(download=False)
    assert ds.fingerprint() == secom.fingerprint()


@needs_secom
def test_fingerprint_stable_and_sensitive(secom: Dataset) -> None:
    again = load_secom(dir=str(SECOM_DIR))
    fp = secom.fingerprint()
    assert len(fp) == 16 and int(fp, 16) >= 0
    assert again.fingerprint() == fp

    changed = Dataset(secom.name, secom.X.copy(), secom.y, secom.timestamps)
    changed.X.iloc[100, 7] += 1e-9
    assert changed.fingerprint() != fp
    filled = Dataset(secom.name, secom.X.fillna(0.0), secom.y, secom.timestamps)
    assert filled.fingerprint() != fp
    flipped = Dataset(secom.name, secom.X, 1 - secom.y, secom.timestamps)
    assert flipped.fingerprint() != fp
    shifted = Dataset(secom.name, secom.X, secom.y, secom.timestamps + pd.Timedelta(seconds=1))
    assert shifted.fingerprint() != fp
    renamed = Dataset(secom.name, secom.X.rename(columns={"f000": "g000"}), secom.y, secom.timestamps)
    assert renamed.fingerprint() != fp


def test_load_secom_missing_dir_message(tmp_path: Path) -> None:
    with pytest.raises(ImblabError) as exc:
        load_secom(dir=str(tmp_path / "nowhere"))
    msg = str(exc.value)
    for part in ("nowhere", "secom.data", "secom_labels.data", SECOM_ENV, "data.dir=", SECOM_URL):
        assert part in msg


def test_load_secom_env_dir_missing_files(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "secom.data").write_text("1 2\n")  # only one of the two files
    monkeypatch.setenv(SECOM_ENV, str(tmp_path))
    with pytest.raises(ImblabError, match=r"secom_labels\.data") as exc:
        load_secom(cache_dir=str(tmp_path / "cache"))
    assert SECOM_ENV in str(exc.value)


def test_load_secom_no_download_nothing_cached(tmp_path: Path) -> None:
    with pytest.raises(ImblabError) as exc:
        load_secom(cache_dir=str(tmp_path / "cache"), download=False)
    msg = str(exc.value)
    for part in ("secom.data", "secom_labels.data", SECOM_ENV, "data.dir=", SECOM_URL, "download"):
        assert part in msg
    assert not (tmp_path / "cache").exists()


def test_load_secom_mismatched_rows_and_bad_labels(tmp_path: Path) -> None:
    row = " ".join(["1.5"] * 590) + "\r\n"
    (tmp_path / "secom.data").write_text(row * 3, newline="")
    (tmp_path / "secom_labels.data").write_text('-1 "19/07/2008 11:55:00"\r\n1 "19/07/2008 12:00:00"\r\n')
    with pytest.raises(ImblabError, match="3 rows"):
        load_secom(dir=str(tmp_path))
    (tmp_path / "secom_labels.data").write_text(
        '-1 "19/07/2008 11:55:00"\n1 "19/07/2008 12:00:00"\n0 "20/07/2008 12:00:00"\n'
    )
    with pytest.raises(ImblabError, match=r"labels \[0\]"):
        load_secom(dir=str(tmp_path))


def test_load_secom_parses_day_first_explicitly(tmp_path: Path) -> None:
    """02/08/2008 must be 2 August (not 8 February), even though month-first would also parse."""
    rows = [" ".join(["1.5"] * 589) + end for end in (" NaN\r\n", " 2.5\r\n")]
    (tmp_path / "secom.data").write_text("".join(rows), newline="")
    (tmp_path / "secom_labels.data").write_text(
        '-1 "02/08/2008 10:00:00"\r\n1 "13/08/2008 10:00:00"\r\n', newline=""
    )
    ds = load_secom(dir=str(tmp_path))
    assert list(ds.timestamps) == [pd.Timestamp("2008-08-02 10:00"), pd.Timestamp("2008-08-13 10:00")]
    assert list(ds.y) == [0, 1] and ds.X.shape == (2, 590) and ds.X["f589"].isna().tolist() == [True, False]


# ---------------------------------------------------------------------------------------------------------
# Download from a real loopback HTTP server
# ---------------------------------------------------------------------------------------------------------


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


class _Server:
    def __init__(self, root: Path) -> None:
        handler = functools.partial(_QuietHandler, directory=str(root))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def stop(self) -> None:
        if self.thread.is_alive():
            self.httpd.shutdown()
            self.httpd.server_close()
            self.thread.join(5)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[_Server]:
    root = tmp_path / "www"
    root.mkdir()
    shutil.copyfile(SECOM_DIR / "secom.zip", root / "secom.zip")
    corrupt = bytearray((root / "secom.zip").read_bytes())
    for i in range(1000, 1010):
        corrupt[i] ^= 0xFF
    (root / "corrupt.zip").write_bytes(bytes(corrupt))
    srv = _Server(root)
    yield srv
    srv.stop()


def _dead_url() -> str:
    with socket.socket() as s:  # a port that was just free: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/secom.zip"


@needs_secom
@needs_zip
def test_download_verify_extract_then_cache(server: _Server, tmp_path: Path, secom: Dataset) -> None:
    cache = tmp_path / "cache"
    ds = load_secom(cache_dir=str(cache), url=f"{server.base}/secom.zip", timeout=10)
    assert ds.fingerprint() == secom.fingerprint()
    assert sorted(p.name for p in cache.iterdir()) == ["secom.data", "secom_labels.data"]
    assert (cache / "secom.data").read_bytes() == (SECOM_DIR / "secom.data").read_bytes()

    server.stop()  # the second call must not touch the network
    again = load_secom(cache_dir=str(cache), url=f"{server.base}/secom.zip", timeout=2)
    assert again.fingerprint() == secom.fingerprint()


@needs_zip
def test_download_to_default_cache_from_env(server: _Server, tmp_path: Path) -> None:
    ds = load_secom(url=f"{server.base}/secom.zip", timeout=10)  # cache_dir=None -> $IMBLAB_CACHE_DIR/secom
    assert ds.X.shape == (1567, 590)
    cache = tmp_path / "default-cache" / "secom"
    assert sorted(p.name for p in cache.iterdir()) == ["secom.data", "secom_labels.data"]


@needs_zip
def test_download_corrupted_rejected_and_cleaned(server: _Server, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    with pytest.raises(ImblabError, match="sha256") as exc:
        load_secom(cache_dir=str(cache), url=f"{server.base}/corrupt.zip", timeout=10)
    msg = str(exc.value)
    assert SECOM_SHA256 in msg and "data.dir=" in msg
    assert list(cache.iterdir()) == []  # no partial zip, no extracted files


@needs_zip
def test_download_http_404(server: _Server, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    with pytest.raises(ImblabError, match="404") as exc:
        load_secom(cache_dir=str(cache), url=f"{server.base}/missing.zip", timeout=10)
    assert f"{server.base}/missing.zip" in str(exc.value)
    assert list(cache.iterdir()) == []


def test_download_unreachable(tmp_path: Path) -> None:
    url = _dead_url()
    cache = tmp_path / "cache"
    with pytest.raises(ImblabError, match="could not download") as exc:
        load_secom(cache_dir=str(cache), url=url, timeout=5)
    assert url in str(exc.value) and "data.dir=" in str(exc.value)
    assert list(cache.iterdir()) == []
