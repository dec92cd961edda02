"""Data layer: the SECOM loader (local or verified download), generic CSV/Parquet tables, synthetic data.

Every loader returns a validated :class:`Dataset`: float64 features, a 0/1 ``target`` (1 = the positive,
rare class) and optional timestamps for time-ordered splits. Problems the user can fix raise
:class:`imblab.errors.ImblabError` with a message that says what to do.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from http.client import HTTPException
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pandas.api.types import is_datetime64_any_dtype, is_numeric_dtype

from imblab import __version__
from imblab.errors import ImblabError

SECOM_URL = "https://archive.ics.uci.edu/static/public/179/secom.zip"
SECOM_SHA256 = "eea568baf3c2229096d7d294cf0b096b5502bd96d92c0b80a65b84714059be8e"
SECOM_ENV = "IMBLAB_SECOM_DIR"
CACHE_ENV = "IMBLAB_CACHE_DIR"

SECOM_DATA_FILE = "secom.data"
SECOM_LABELS_FILE = "secom_labels.data"
SECOM_FILES = (SECOM_DATA_FILE, SECOM_LABELS_FILE)
SECOM_N_FEATURES = 590
# The labels file writes day first; an explicit format avoids pandas guessing month/day on ambiguous dates
# (the Kaggle copy of SECOM got exactly this wrong).
SECOM_TIME_FORMAT = "%d/%m/%Y %H:%M:%S"

TABLE_SUFFIXES = (".csv", ".csv.gz", ".parquet", ".pq")
TARGET_NAME = "target"
_CHUNK = 1 << 20


@dataclass
class Dataset:
    """A binary classification data set; ``y == 1`` marks the positive (rare) class."""

    name: str
    X: pd.DataFrame
    y: pd.Series
    timestamps: pd.Series | None = None
    ids: pd.DataFrame | None = None

    @property
    def positive_rate(self) -> float:
        """Share of positive rows (NaN for an empty data set)."""
        return float(self.y.mean()) if len(self.y) else float("nan")

    def fingerprint(self) -> str:
        """Content hash (16 hex chars) of column names, X, y and timestamps; ``name`` and ``ids`` excluded.

        NaNs are hashed through a mask so NaN bit patterns do not matter; ``-0.0`` hashes like ``0.0``.
        """
        h = hashlib.sha256()
        h.update(b"imblab-dataset-v1\0")
        h.update(json.dumps([str(c) for c in self.X.columns]).encode())
        h.update(np.int64(len(self.X)).tobytes())
        for j in range(self.X.shape[1]):
            s = self.X.iloc[:, j]
            if is_numeric_dtype(s):  # excludes datetime/timedelta
                a = s.to_numpy(dtype=np.float64, na_value=np.nan, copy=True)
                nan = np.isnan(a)
                a[nan] = 0.0
                a += 0.0  # turns -0.0 into 0.0
                h.update(b"n" + np.packbits(nan).tobytes() + a.astype("<f8", copy=False).tobytes())
            else:
                h.update(b"o" + pd.util.hash_pandas_object(s, index=False).to_numpy().tobytes())
        h.update(b"y" + self.y.to_numpy(dtype=np.int64).astype("<i8", copy=False).tobytes())
        if self.timestamps is None:
            h.update(b"t-none")
        else:
            # Unit-normalised int64 (UTC for tz-aware) so s/us/ns resolutions of the same instants agree.
            ns = pd.DatetimeIndex(self.timestamps).as_unit("ns").asi8
            h.update(b"t" + ns.astype("<i8", copy=False).tobytes())
        return h.hexdigest()[:16]

    def validate(self) -> None:
        """Check the data set is usable for imbalanced binary classification; raise ImblabError otherwise."""
        n, p = self.X.shape
        if n == 0:
            raise ImblabError(f"data set '{self.name}' has no rows; check the file and any row filtering.")
        if p == 0:
            raise ImblabError(
                f"data set '{self.name}' has no feature columns; check data.drop_columns / data.id_columns "
                "did not remove them all."
            )
        dupes = self.X.columns[self.X.columns.duplicated()].unique().tolist()
        if dupes:
            raise ImblabError(
                f"data set '{self.name}' has duplicate feature column names {dupes[:10]}; rename them."
            )
        if len(self.y) != n or not self.y.index.equals(self.X.index):
            raise ImblabError(
                f"data set '{self.name}': y ({len(self.y)} rows) is not aligned with X ({n} rows)."
            )
        for attr in ("timestamps", "ids"):
            part = getattr(self, attr)
            if part is not None and (len(part) != n or not part.index.equals(self.X.index)):
                raise ImblabError(
                    f"data set '{self.name}': {attr} ({len(part)} rows) is not aligned with X ({n} rows)."
                )
        self._validate_target()
        self._validate_features()
        if self.timestamps is not None:
            if not is_datetime64_any_dtype(self.timestamps):
                raise ImblabError(
                    f"data set '{self.name}': timestamps have dtype {self.timestamps.dtype}, "
                    "expected datetime64."
                )
            n_nat = int(self.timestamps.isna().sum())
            if n_nat:
                raise ImblabError(
                    f"data set '{self.name}': {n_nat} rows have no timestamp; drop those rows or fill "
                    "them in, since the time split needs a time for every row."
                )

    def _validate_target(self) -> None:
        y = self.y
        name = y.name if y.name is not None else TARGET_NAME
        if y.isna().any():
            raise ImblabError(
                f"target column '{name}' has {int(y.isna().sum())} missing values; drop those rows."
            )
        values = _sorted_values([_py(v) for v in pd.unique(y)])
        if not set(values) <= {0, 1}:
            raise ImblabError(
                f"target column '{name}' must hold 0/1 labels (1 = positive class), found {values[:10]}."
            )
        if len(values) < 2:
            raise ImblabError(
                f"target column '{name}' has only one class ({values[0]}) in {len(y)} rows; imbalanced "
                "classification needs both classes (0 = negative, 1 = positive). Check the target column, "
                "positive_label and any row filtering."
            )

    def _validate_features(self) -> None:
        X = self.X
        non_numeric = [c for c in X.columns if not is_numeric_dtype(X[c])]
        if non_numeric:
            kinds = ", ".join(f"{c!r} ({X[c].dtype})" for c in non_numeric[:10])
            more = f" and {len(non_numeric) - 10} more" if len(non_numeric) > 10 else ""
            listed = ",".join(str(c) for c in non_numeric[:10])
            raise ImblabError(
                f"data set '{self.name}' has non-numeric feature columns: {kinds}{more}. Drop them with "
                f"data.drop_columns=[{listed}], declare id columns with data.id_columns, or encode them as "
                "numbers before loading."
            )
        values = X.to_numpy(dtype=np.float64, na_value=np.nan)
        inf_cols = [X.columns[j] for j in np.flatnonzero(np.isinf(values).any(axis=0))]
        if inf_cols:
            shown = ", ".join(repr(c) for c in inf_cols[:5])
            more = f" and {len(inf_cols) - 5} more" if len(inf_cols) > 5 else ""
            raise ImblabError(
                f"data set '{self.name}' has infinite values in columns {shown}{more}; replace them with NaN "
                "(treated as missing) or drop those columns (data.drop_columns)."
            )
        # A single all-NaN column is fine (preprocessing drops it); all of them means nothing to learn from.
        if np.isnan(values).all():
            raise ImblabError(
                f"data set '{self.name}': every feature column is entirely missing (NaN); check the file's "
                "separator/format and data.drop_columns."
            )


# ---------------------------------------------------------------------------------------------------------
# SECOM
# ---------------------------------------------------------------------------------------------------------


def default_cache_dir() -> Path:
    """``$IMBLAB_CACHE_DIR/secom`` if that variable is set, else ``~/.cache/imblab/secom``."""
    root = os.environ.get(CACHE_ENV)
    base = Path(root).expanduser() if root else Path.home() / ".cache" / "imblab"
    return base / "secom"


def _has_secom_files(d: Path) -> bool:
    return all((d / f).is_file() for f in SECOM_FILES)


def _manual_hint(url: str) -> str:
    return (
        f"To place the files manually: download {url}, unzip {SECOM_DATA_FILE} and {SECOM_LABELS_FILE} "
        f"into a directory, and pass it with the data.dir=/path/to/secom override or the {SECOM_ENV} "
        "environment variable."
    )


def load_secom(
    dir: str | None = None,
    cache_dir: str | None = None,
    url: str = SECOM_URL,
    sha256: str = SECOM_SHA256,
    download: bool = True,
    timeout: float = 60.0,
) -> Dataset:
    """Load UCI SECOM (1567 x 590, 104 fails) from ``dir``, ``$IMBLAB_SECOM_DIR``, the cache, or a download.

    The download is checked against ``sha256`` before it is unzipped, and the two data files are written
    atomically into the cache, so an interrupted or tampered download never leaves usable-looking files.
    ``timeout`` is in seconds per network operation (connect / each read), not for the whole transfer.
    """
    # An explicitly named directory must hold the files: falling back to a download would hide a typo.
    explicit, source = (dir, "data.dir") if dir else (os.environ.get(SECOM_ENV), SECOM_ENV)
    if explicit:
        d = Path(explicit).expanduser()
        if not _has_secom_files(d):
            missing = [f for f in SECOM_FILES if not (d / f).is_file()]
            raise ImblabError(
                f"SECOM data not found in {d} (given by {source}): expected the files {SECOM_DATA_FILE} and "
                f"{SECOM_LABELS_FILE} there, missing {', '.join(missing)}. Put both files (from the official "
                f"archive {SECOM_URL}) in that directory, or point data.dir=... or {SECOM_ENV} at a "
                "directory that has them (leave both unset to use the download cache)."
            )
        return _read_secom(d)

    cache = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
    if _has_secom_files(cache):
        return _read_secom(cache)
    if not download:
        raise ImblabError(
            f"SECOM data not found: no data.dir given, {SECOM_ENV} is not set, and the cache {cache} does "
            f"not hold {SECOM_DATA_FILE} and {SECOM_LABELS_FILE}; downloading is off (download=False). Set "
            f"data.download=true to fetch it. " + _manual_hint(url)
        )
    _download_secom(url, sha256, cache, timeout)
    return _read_secom(cache)


def _download_secom(url: str, sha256: str, cache: Path, timeout: float) -> None:
    """Fetch the archive into ``cache``, verify it, extract the two data files atomically, drop the zip."""
    try:
        cache.mkdir(parents=True, exist_ok=True)
        # The temp file lives in the cache dir itself so the final os.replace is a same-filesystem rename.
        fd, tmp_name = tempfile.mkstemp(dir=cache, prefix=".secom-", suffix=".zip.part")
    except OSError as e:
        raise ImblabError(
            f"cannot write to the SECOM cache directory {cache}: {e}. Pass a writable data.cache_dir or set "
            f"{CACHE_ENV}. " + _manual_hint(url)
        ) from e

    tmp_zip = Path(tmp_name)
    tmp_members: list[Path] = []
    try:
        digest = hashlib.sha256()
        request = urllib.request.Request(url, headers={"User-Agent": f"imblab/{__version__}"})
        try:
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(request, timeout=timeout) as resp:
                while chunk := resp.read(_CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
        except (urllib.error.URLError, HTTPException, OSError, ValueError) as e:
            # HTTPError prints its status code; for URLError the reason (refused, DNS, ...) is what helps.
            reason = e if isinstance(e, urllib.error.HTTPError) else getattr(e, "reason", None) or e
            raise ImblabError(f"could not download SECOM from {url}: {reason}. " + _manual_hint(url)) from e

        actual, expected = digest.hexdigest(), sha256.strip().lower()
        if actual != expected:
            raise ImblabError(
                f"the SECOM download from {url} failed its sha256 check: expected {expected}, got {actual}. "
                "The file was deleted unused (it may be truncated, an error page, or a changed archive). "
                "Retry later. " + _manual_hint(url)
            )

        try:
            with zipfile.ZipFile(tmp_zip) as zf:
                by_base = {Path(m).name: m for m in zf.namelist()}
                missing = [f for f in SECOM_FILES if f not in by_base]
                if missing:
                    raise ImblabError(
                        f"the archive from {url} does not contain {', '.join(missing)}. " + _manual_hint(url)
                    )
                staged: list[tuple[Path, Path]] = []
                for fname in SECOM_FILES:
                    mfd, mname = tempfile.mkstemp(dir=cache, prefix=f".{fname}-", suffix=".part")
                    tmp_members.append(Path(mname))
                    with os.fdopen(mfd, "wb") as out, zf.open(by_base[fname]) as src:
                        while chunk := src.read(_CHUNK):
                            out.write(chunk)
                    staged.append((Path(mname), cache / fname))
        except zipfile.BadZipFile as e:
            raise ImblabError(
                f"the archive from {url} is not a valid zip file: {e}. " + _manual_hint(url)
            ) from e
        # Rename only once both members are fully written; the cache counts as filled only with both files.
        for tmp, final in staged:
            os.replace(tmp, final)
    finally:
        tmp_zip.unlink(missing_ok=True)
        for tmp in tmp_members:
            tmp.unlink(missing_ok=True)


def _read_secom(d: Path) -> Dataset:
    data_path, labels_path = d / SECOM_DATA_FILE, d / SECOM_LABELS_FILE
    fix = (
        f"The files in {d} look damaged; replace them with fresh copies from {SECOM_URL} (if {d} is the "
        "download cache, delete it and imblab downloads again)."
    )
    try:
        # Single-space separator with the C engine is ~1.5x faster than sep=r"\s+" and handles CRLF.
        X = pd.read_csv(data_path, sep=" ", header=None, engine="c", dtype=np.float64)
        if X.shape[1] != SECOM_N_FEATURES:  # e.g. a re-saved file with runs of spaces
            X = pd.read_csv(data_path, sep=r"\s+", header=None, dtype=np.float64)
        labels = pd.read_csv(labels_path, sep=" ", header=None, names=["label", "timestamp"], engine="c")
    except (ValueError, pd.errors.ParserError) as e:
        raise ImblabError(f"could not parse SECOM: {e}. {fix}") from e
    if X.shape[1] != SECOM_N_FEATURES:
        raise ImblabError(f"{data_path} has {X.shape[1]} columns, expected {SECOM_N_FEATURES}. {fix}")
    if len(X) != len(labels):
        raise ImblabError(
            f"{data_path} has {len(X)} rows but {labels_path} has {len(labels)}; they must match row for "
            f"row. {fix}"
        )
    X.columns = [f"f{j:03d}" for j in range(X.shape[1])]

    bad = sorted({_py(v) for v in pd.unique(labels["label"])} - {-1, 1}, key=repr)
    if bad:
        raise ImblabError(f"{labels_path} has labels {bad[:10]}; expected only -1 (pass) and 1 (fail). {fix}")
    y = pd.Series((labels["label"].to_numpy() == 1).astype(np.int64), name=TARGET_NAME)
    try:
        ts = pd.to_datetime(labels["timestamp"], format=SECOM_TIME_FORMAT).rename("timestamp")
    except (ValueError, TypeError) as e:
        raise ImblabError(f"{labels_path} has timestamps not in dd/mm/yyyy HH:MM:SS form: {e}. {fix}") from e

    ds = Dataset(name="secom", X=X, y=y, timestamps=ts)
    ds.validate()
    return ds


# ---------------------------------------------------------------------------------------------------------
# Generic tables
# ---------------------------------------------------------------------------------------------------------


def load_table(
    path: str,
    target: str,
    positive_label: str | int | float | None = None,
    drop_columns: list[str] | None = None,
    id_columns: list[str] | None = None,
    timestamp_column: str | None = None,
    name: str | None = None,
) -> Dataset:
    """Load a CSV (``.csv``, ``.csv.gz``) or Parquet (``.parquet``, ``.pq``) file as a binary Dataset.

    ``target`` must have exactly two classes. 0/1, False/True and -1/1 targets map the larger value to 1;
    any other pair (e.g. "pass"/"fail") needs ``positive_label``. ``id_columns`` and ``timestamp_column``
    leave X and travel in ``ids`` / ``timestamps``; numeric features become float64.
    """
    p = Path(path).expanduser()
    suffix = next((s for s in TABLE_SUFFIXES if p.name.lower().endswith(s)), None)
    if suffix is None:
        raise ImblabError(
            f"cannot read {p}: unsupported file type; supported suffixes are {', '.join(TABLE_SUFFIXES)}."
        )
    if not p.is_file():
        raise ImblabError(f"data file not found: {p} (resolved from {path!r}); check data.path.")
    try:
        df = pd.read_parquet(p) if suffix in (".parquet", ".pq") else pd.read_csv(p, low_memory=False)
    except (OSError, ValueError, pd.errors.ParserError, ImportError) as e:
        raise ImblabError(f"could not read {p} as {suffix[1:]}: {e}") from e
    df = df.reset_index(drop=True)
    columns = list(df.columns)

    def need(cols: Iterable[str], what: str) -> None:
        absent = [c for c in cols if c not in df.columns]
        if absent:
            raise ImblabError(
                f"{what} {absent} not in {p}; available columns (first 20 of {len(columns)}): {columns[:20]}."
            )

    need([target], "target column")
    drop_columns, id_columns = list(drop_columns or []), list(id_columns or [])
    need(drop_columns, "data.drop_columns")
    need(id_columns, "data.id_columns")
    if timestamp_column is not None:
        need([timestamp_column], "timestamp column")
    special = [*drop_columns, *id_columns, *([timestamp_column] if timestamp_column else [])]
    if target in special:
        raise ImblabError(
            f"target column '{target}' is also listed in drop_columns/id_columns/timestamp_column."
        )

    y = _binary_target(df[target], target, positive_label, p)
    timestamps = _parse_timestamps(df[timestamp_column], timestamp_column, p) if timestamp_column else None
    ids = df[id_columns].copy() if id_columns else None
    X = df.drop(columns=[target, *special])
    # Numeric features (ints, bools, nullable types) become float64 with NaN; anything else is left as is so
    # that validate() can name it.
    X = X.astype({c: np.float64 for c in X.columns if is_numeric_dtype(X[c])})

    stem = p.name[: -len(suffix)]
    ds = Dataset(name=name or stem, X=X, y=y, timestamps=timestamps, ids=ids)
    ds.validate()
    return ds


def _py(v: Any) -> Any:
    """Numpy scalar -> Python scalar, so sets/messages behave (np.True_ == 1, clean reprs)."""
    return v.item() if isinstance(v, np.generic) else v


def _sorted_values(values: list[Any]) -> list[Any]:
    try:
        return sorted(values)
    except TypeError:
        return sorted(values, key=repr)


def _binary_target(s: pd.Series, target: str, positive_label: Any, path: Path) -> pd.Series:
    n_null = int(s.isna().sum())
    if n_null:
        rows = s.index[s.isna()][:5].tolist()
        raise ImblabError(
            f"target column '{target}' in {path} has {n_null} missing values (first data rows, 0-based: "
            f"{rows}); drop those rows before loading, imblab does not guess labels."
        )
    values = _sorted_values([_py(v) for v in pd.unique(s)])
    if len(values) == 1:
        raise ImblabError(
            f"target column '{target}' has only one class ({values[0]!r}) in {len(s)} rows; imbalanced "
            "classification needs both classes. Check that this is the right column and file."
        )
    if len(values) > 2:
        shown = values[:10] + (["..."] if len(values) > 10 else [])
        raise ImblabError(
            f"target column '{target}' has {len(values)} distinct values {shown}; imblab needs a binary "
            "target. Map it to two classes before loading (e.g. defect vs. no defect)."
        )
    if positive_label is None:
        if set(values) in ({0, 1}, {-1, 1}):  # also matches {False, True} and {0.0, 1.0}
            positive = max(values)
        else:
            raise ImblabError(
                f"target column '{target}' has values {values}; set positive_label to the one that marks the "
                f"positive (rare) class, e.g. data.positive_label={values[0]}."
            )
    else:
        positive = _match_label(values, positive_label, target)
    return pd.Series((s == positive).to_numpy(dtype=np.int64), name=TARGET_NAME)


def _match_label(values: list[Any], label: Any, target: str) -> Any:
    """Find ``label`` among the target values, leniently: YAML may give 1 for "1" or "1" for 1.0."""
    for same in (
        lambda v: type(v) is type(label) and v == label,
        lambda v: v == label,
        lambda v: _as_float(v) is not None and _as_float(v) == _as_float(label),
        lambda v: str(v) == str(label),
    ):
        hits = [v for v in values if same(v)]
        if len(hits) == 1:
            return hits[0]
    raise ImblabError(
        f"positive_label {label!r} is not one of the values of target column '{target}': {values}; "
        "set data.positive_label to one of them."
    )


def _as_float(v: Any) -> float | None:
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def _parse_timestamps(s: pd.Series, column: str, path: Path) -> pd.Series:
    if not is_datetime64_any_dtype(s):
        if is_numeric_dtype(s):
            raise ImblabError(
                f"timestamp column '{column}' in {path} is numeric ({s.dtype}); store it as ISO 8601 text "
                "or a datetime column so its unit is unambiguous."
            )
        try:
            # ISO 8601 only: formats like 01/02/2008 are ambiguous (day/month) and silently mis-order time.
            s = pd.to_datetime(s, format="ISO8601")
        except (ValueError, TypeError) as e:
            raise ImblabError(
                f"timestamp column '{column}' in {path} is not ISO 8601 (e.g. 2008-07-19 11:55:00): {e}. "
                "Convert it before loading."
            ) from e
    return s.copy()


# ---------------------------------------------------------------------------------------------------------
# Synthetic
# ---------------------------------------------------------------------------------------------------------


def make_synthetic(
    n_samples: int = 2000,
    n_features: int = 20,
    positive_rate: float = 0.066,
    n_informative: int = 5,
    class_sep: float = 1.0,
    missing_rate: float = 0.0,
    seed: int = 0,
) -> Dataset:
    """An imbalanced ``make_classification`` problem (default rate ~ SECOM's 6.6%) with hourly timestamps.

    ``missing_rate`` blanks cells completely at random (seeded) to exercise imputation.
    """
    from sklearn.datasets import make_classification  # deferred: sklearn import is slow and rarely needed

    if not 0 < positive_rate < 0.5:
        raise ImblabError(
            "positive_rate must be between 0 and 0.5 (exclusive) for an imbalanced problem, "
            f"got {positive_rate}."
        )
    if not 0 <= missing_rate < 1:
        raise ImblabError(f"missing_rate must be in [0, 1), got {missing_rate}.")
    if n_features < 1 or not 1 <= n_informative <= n_features:
        raise ImblabError(
            f"need n_features >= 1 and 1 <= n_informative <= n_features, got n_features={n_features}, "
            f"n_informative={n_informative}."
        )
    if n_samples * positive_rate < 2:
        raise ImblabError(
            f"n_samples={n_samples} with positive_rate={positive_rate} gives fewer than 2 positives; "
            "raise n_samples."
        )

    X, y = make_classification(
        n_samples=n_samples,
        n_features=n_features,
        n_informative=n_informative,
        n_redundant=min(2, n_features - n_informative),
        n_repeated=0,
        n_clusters_per_class=2 if n_informative >= 2 else 1,  # sklearn needs 2*clusters <= 2**informative
        weights=[1 - positive_rate],
        flip_y=0.0,
        class_sep=class_sep,
        random_state=seed,
    )
    if missing_rate > 0:
        X[np.random.default_rng(seed).random(X.shape) < missing_rate] = np.nan
    width = max(2, len(str(n_features - 1)))
    ds = Dataset(
        name="synthetic",
        X=pd.DataFrame(X, columns=[f"x{j:0{width}d}" for j in range(n_features)]),
        y=pd.Series(y.astype(np.int64), name=TARGET_NAME),
        timestamps=pd.Series(pd.date_range("2024-01-01", periods=n_samples, freq="h"), name="timestamp"),
    )
    ds.validate()
    return ds
