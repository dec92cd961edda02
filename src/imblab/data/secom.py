"""UCI SECOM (1567 lots x 590 sensors, 104 fails): read locally, or downloaded, verified and cached.

Lookup order: ``dir`` (``data.dir``), ``$IMBLAB_SECOM_DIR``, the cache (``$IMBLAB_CACHE_DIR/secom`` or
``~/.cache/imblab/secom``), then a download of the official zip checked against its sha256.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.error
import urllib.request
import zipfile
from http.client import HTTPException
from pathlib import Path

import numpy as np
import pandas as pd

from imblab import __version__
from imblab.data.dataset import TARGET_NAME, Dataset, py_scalar
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
_CHUNK = 1 << 20


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

    bad = sorted({py_scalar(v) for v in pd.unique(labels["label"])} - {-1, 1}, key=repr)
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
