"""Tests for imblab.data: real SECOM (local + loopback download), tables, validation, synthetic data."""

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

from imblab.data import (
    CACHE_ENV,
    SECOM_ENV,
    SECOM_SHA256,
    SECOM_URL,
    Dataset,
    load_secom,
    load_table,
    make_synthetic,
)
from imblab.errors import ImblabError

# ---------------------------------------------------------------------------------------------------------
# Real SECOM location: $IMBLAB_SECOM_DIR, else <repo>/../shared/data/secom (CI clones with shared/ beside).
# ---------------------------------------------------------------------------------------------------------

_SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "secom"
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


def test_fingerprint_nan_payload_and_time_unit_stable() -> None:
    weird_nan = np.frombuffer(np.uint64(0x7FF8DEADBEEF0001).tobytes(), dtype=np.float64)[0]
    assert np.isnan(weird_nan)
    ts = pd.Series(pd.date_range("2024-01-01", periods=2, freq="h"))
    a = Dataset("a", pd.DataFrame({"x": [np.nan, 0.0]}), pd.Series([0, 1], name="target"), ts)
    b = Dataset(
        "b", pd.DataFrame({"x": [weird_nan, -0.0]}), pd.Series([0, 1], name="target"), ts.dt.as_unit("s")
    )
    assert a.fingerprint() == b.fingerprint()


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
    row = " ".join(["1.5"] * 589) + " NaN\r\n"
    (tmp_path / "secom.data").write_text(row * 2, newline="")
    (tmp_path / "secom_labels.data").write_text(
        '-1 "02/08/2008 10:00:00"\r\n1 "13/08/2008 10:00:00"\r\n', newline=""
    )
    ds = load_secom(dir=str(tmp_path))
    assert list(ds.timestamps) == [pd.Timestamp("2008-08-02 10:00"), pd.Timestamp("2008-08-13 10:00")]
    assert list(ds.y) == [0, 1] and ds.X.shape == (2, 590) and ds.X["f589"].isna().all()


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


# ---------------------------------------------------------------------------------------------------------
# load_table
# ---------------------------------------------------------------------------------------------------------


def _frame(n: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "lot": [f"L{i:03d}" for i in range(n)],
            "a": rng.normal(size=n),
            "b": rng.integers(0, 5, size=n),
            "flag": rng.random(n) < 0.5,
            "when": pd.date_range("2024-03-01", periods=n, freq="D").strftime("%Y-%m-%d %H:%M:%S"),
            "label": np.where(np.arange(n) % 8 == 0, 1, 0),
        }
    )


@pytest.mark.parametrize("fname", ["t.csv", "t.csv.gz", "t.parquet", "t.pq"])
def test_load_table_round_trip(tmp_path: Path, fname: str) -> None:
    df = _frame()
    df.loc[3, "a"] = np.nan
    path = tmp_path / fname
    if ".csv" in fname:
        df.to_csv(path, index=False)
    else:
        df.to_parquet(path, index=False)
    ds = load_table(str(path), target="label", id_columns=["lot"], timestamp_column="when")
    assert ds.name == "t"
    assert list(ds.X.columns) == ["a", "b", "flag"]
    assert (ds.X.dtypes == np.float64).all()
    assert np.isnan(ds.X.loc[3, "a"])
    np.testing.assert_allclose(ds.X["a"].to_numpy(), df["a"].to_numpy())
    assert ds.y.name == "target" and ds.y.dtype == np.int64
    assert ds.y.tolist() == df["label"].tolist()
    assert ds.ids is not None and ds.ids["lot"].tolist() == df["lot"].tolist()
    assert ds.timestamps is not None and ds.timestamps.iloc[1] == pd.Timestamp("2024-03-02")
    assert ds.X.index.equals(pd.RangeIndex(len(df)))


def test_load_table_drop_columns_and_name(tmp_path: Path) -> None:
    path = tmp_path / "plant.csv"
    _frame().to_csv(path, index=False)
    ds = load_table(str(path), target="label", drop_columns=["lot", "when"], name="plant-a")
    assert ds.name == "plant-a" and list(ds.X.columns) == ["a", "b", "flag"]
    assert ds.ids is None and ds.timestamps is None


@pytest.mark.parametrize(
    ("values", "expected"),
    [([0, 1], [0, 1]), ([False, True], [0, 1]), ([-1, 1], [0, 1]), ([1.0, 0.0], [1, 0])],
)
def test_load_table_numeric_targets_map_larger_to_one(tmp_path: Path, values: list, expected: list) -> None:
    path = tmp_path / "t.parquet"
    pd.DataFrame({"x": [1.0, 2.0] * 3, "y": values * 3}).to_parquet(path)
    assert load_table(str(path), target="y").y.tolist() == expected * 3


def test_load_table_string_labels_need_positive_label(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "status": ["pass", "fail", "pass", "pass"]}).to_csv(
        path, index=False
    )
    with pytest.raises(ImblabError, match="positive_label") as exc:
        load_table(str(path), target="status")
    assert "'fail'" in str(exc.value) and "'pass'" in str(exc.value)
    assert load_table(str(path), target="status", positive_label="fail").y.tolist() == [0, 1, 0, 0]
    with pytest.raises(ImblabError, match="'broken' is not one of"):
        load_table(str(path), target="status", positive_label="broken")


def test_load_table_positive_label_overrides_and_is_lenient(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": [0, 1, 0]}).to_csv(path, index=False)
    assert load_table(str(path), target="y", positive_label=0).y.tolist() == [1, 0, 1]
    assert load_table(str(path), target="y", positive_label="1").y.tolist() == [0, 1, 0]


def test_load_table_absent_target_lists_columns(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    pd.DataFrame({f"c{i}": [1.0, 2.0] for i in range(25)}).to_csv(path, index=False)
    with pytest.raises(ImblabError, match="'nope'") as exc:
        load_table(str(path), target="nope")
    msg = str(exc.value)
    assert "c0" in msg and "c19" in msg and "c20" not in msg and "25" in msg


def test_load_table_one_class(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    pd.DataFrame({"x": [1.0, 2.0], "y": [0, 0]}).to_csv(path, index=False)
    with pytest.raises(ImblabError, match=r"only one class \(0\).*needs both"):
        load_table(str(path), target="y")


def test_load_table_three_classes(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": ["a", "b", "c"]}).to_csv(path, index=False)
    with pytest.raises(ImblabError, match="3 distinct values"):
        load_table(str(path), target="y", positive_label="a")


def test_load_table_null_target(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "y": [0, None, 1, None]}).to_csv(path, index=False)
    with pytest.raises(ImblabError, match=r"2 missing values.*drop"):
        load_table(str(path), target="y")


def test_load_table_bad_paths(tmp_path: Path) -> None:
    bad = tmp_path / "t.xlsx"
    bad.write_text("x")
    with pytest.raises(ImblabError, match=r"\.csv, \.csv\.gz, \.parquet, \.pq"):
        load_table(str(bad), target="y")
    with pytest.raises(ImblabError, match="not found") as exc:
        load_table(str(tmp_path / "absent.csv"), target="y")
    assert "absent.csv" in str(exc.value)


def test_load_table_unknown_id_and_ambiguous_timestamps(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    df = pd.DataFrame({"x": [1.0, 2.0], "y": [0, 1], "when": ["02/08/2008 10:00", "13/08/2008 10:00"]})
    df.to_csv(path, index=False)
    with pytest.raises(ImblabError, match=r"data\.id_columns"):
        load_table(str(path), target="y", id_columns=["lot"], drop_columns=["when"])
    with pytest.raises(ImblabError, match="ISO 8601"):
        load_table(str(path), target="y", timestamp_column="when")


def test_load_table_non_numeric_feature_suggests_drop(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    pd.DataFrame({"x": [1.0, 2.0], "tool": ["A", "B"], "y": [0, 1]}).to_csv(path, index=False)
    with pytest.raises(ImblabError, match=r"'tool'.*data\.drop_columns=\[tool\]"):
        load_table(str(path), target="y")


# ---------------------------------------------------------------------------------------------------------
# Dataset.validate
# ---------------------------------------------------------------------------------------------------------


def _ds(X: pd.DataFrame, y: list[int] | None = None) -> Dataset:
    y = y if y is not None else [i % 2 for i in range(len(X))]
    return Dataset("t", X, pd.Series(y, name="target", dtype=np.int64))


def test_validate_infinite_values_names_columns() -> None:
    X = pd.DataFrame(
        {f"c{i}": [1.0, np.inf if i % 2 else 0.0, -np.inf if i == 6 else 2.0] for i in range(14)}
    )
    with pytest.raises(ImblabError, match="infinite") as exc:
        _ds(X).validate()
    msg = str(exc.value)
    assert all(f"'c{i}'" in msg for i in (1, 3, 5, 6, 7))
    assert "'c9'" not in msg and "and 3 more" in msg and "NaN" in msg


def test_validate_all_nan_features() -> None:
    _ds(pd.DataFrame({"a": [np.nan, np.nan], "b": [1.0, 2.0]})).validate()  # one all-NaN column is fine
    with pytest.raises(ImblabError, match="every feature column is entirely missing"):
        _ds(pd.DataFrame({"a": [np.nan, np.nan], "b": [np.nan, np.nan]})).validate()


def test_validate_non_numeric_columns() -> None:
    X = pd.DataFrame(
        {"a": [1.0, 2.0], "tool": ["A", "B"], "day": pd.to_datetime(["2024-01-01", "2024-01-02"])}
    )
    with pytest.raises(ImblabError, match="non-numeric") as exc:
        _ds(X).validate()
    msg = str(exc.value)
    assert "'tool'" in msg and "'day'" in msg and "'a'" not in msg and "data.drop_columns" in msg


def test_validate_target_problems() -> None:
    X = pd.DataFrame({"a": [1.0, 2.0, 3.0]})
    with pytest.raises(ImblabError, match=r"target column 'target' has only one class \(0\).*needs both"):
        _ds(X, [0, 0, 0]).validate()
    with pytest.raises(ImblabError, match="0/1"):
        _ds(X, [0, 1, 2]).validate()
    with pytest.raises(ImblabError, match="duplicate feature column names"):
        _ds(pd.DataFrame([[1.0, 2.0], [3.0, 4.0]], columns=["a", "a"])).validate()
    with pytest.raises(ImblabError, match="no rows"):
        _ds(pd.DataFrame({"a": pd.Series([], dtype=float)}), []).validate()


# ---------------------------------------------------------------------------------------------------------
# make_synthetic
# ---------------------------------------------------------------------------------------------------------


def test_make_synthetic_defaults() -> None:
    ds = make_synthetic()
    assert ds.X.shape == (2000, 20) and ds.X.columns[0] == "x00" and ds.X.columns[-1] == "x19"
    assert (ds.X.dtypes == np.float64).all() and ds.y.dtype == np.int64 and ds.y.name == "target"
    assert abs(ds.positive_rate - 0.066) < 0.01
    assert ds.X.isna().sum().sum() == 0
    assert ds.timestamps is not None and ds.timestamps.is_monotonic_increasing
    assert (ds.timestamps.diff().dropna() == pd.Timedelta(hours=1)).all()


def test_make_synthetic_missing_rate_and_seed() -> None:
    ds = make_synthetic(n_samples=3000, n_features=10, positive_rate=0.2, missing_rate=0.1, seed=3)
    assert abs(ds.positive_rate - 0.2) < 0.01
    assert abs(float(ds.X.isna().to_numpy().mean()) - 0.1) < 0.01
    same = make_synthetic(n_samples=3000, n_features=10, positive_rate=0.2, missing_rate=0.1, seed=3)
    other = make_synthetic(n_samples=3000, n_features=10, positive_rate=0.2, missing_rate=0.1, seed=4)
    assert same.fingerprint() == ds.fingerprint()
    assert other.fingerprint() != ds.fingerprint()


def test_make_synthetic_small_informative() -> None:
    ds = make_synthetic(n_samples=200, n_features=1, n_informative=1, positive_rate=0.1)
    assert ds.X.shape == (200, 1)


@pytest.mark.parametrize("rate", [0.0, 0.5, 0.7, -0.1])
def test_make_synthetic_rejects_bad_rate(rate: float) -> None:
    with pytest.raises(ImblabError, match="positive_rate"):
        make_synthetic(positive_rate=rate)
