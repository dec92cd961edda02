"""Panel loaders: the real nlswork file (counts, hours-band shares, sha256, lookup order), any panel table,
and the synthetic panel's claimed structure."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from imblab.errors import ImblabError
from imblab.panel.dataset import Panel
from imblab.panel.nlswork import HOURS_BANDS, KNOWN, NLSWORK_ENV, NLSWORK_FILE, load_nlswork
from imblab.panel.synthetic import make_panel_synthetic
from imblab.panel.table import load_panel_table
from tests.panel.conftest import NLSWORK_DIR, needs_nlswork

# ---------------------------------------------------------------- nlswork


@needs_nlswork
def test_nlswork_counts_roles_and_hours_band_shares(nlswork: Panel) -> None:
    raw = pd.read_csv(NLSWORK_DIR / NLSWORK_FILE)
    assert raw.shape == (28_534, 21) and raw["idcode"].nunique() == 4_711
    assert nlswork.dropped == {"missing hours": 67}
    assert len(nlswork.frame) + sum(nlswork.dropped.values()) == 28_534
    assert nlswork.n_persons == 4_710  # one woman had hours at none of her waves
    assert (nlswork.id, nlswork.time, nlswork.regression_target) == ("idcode", "year", "ln_wage")
    assert nlswork.class_names == HOURS_BANDS == ["under 35", "35-40", "over 40"]
    assert nlswork.known == KNOWN == ["age", "birth_yr", "race"]
    assert not {"hours", "ln_wage", "idcode", "year", *KNOWN} & set(nlswork.features)
    assert "hours" not in nlswork.frame.columns
    assert len(nlswork.features) == 14 and "grade" in nlswork.features and "tenure" in nlswork.features
    shares = np.bincount(nlswork.frame[nlswork.class_target], minlength=3) / len(nlswork.frame)
    np.testing.assert_allclose(shares, [0.211, 0.673, 0.116], atol=0.002)
    # Bands follow the documented cut points (35 and 40 belong to the middle band).
    merged = raw.dropna(subset=["hours"]).reset_index(drop=True)
    codes = nlswork.frame.set_index(["idcode", "year"])["hours_band"]
    band = codes.loc[list(zip(merged.idcode, merged.year, strict=True))].to_numpy()
    np.testing.assert_array_equal(band, np.digitize(merged.hours, [35, 40.5]))
    assert set(merged.hours[band == 1]) >= {35.0, 40.0}


@needs_nlswork
def test_nlswork_lookup_env_var_and_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(NLSWORK_ENV, str(NLSWORK_DIR))
    assert len(load_nlswork().frame) == 28_467
    monkeypatch.delenv(NLSWORK_ENV)
    cache = tmp_path / "cache"  # the tests' $IMBLAB_CACHE_DIR (tests/conftest.py)
    (cache / "nlswork").mkdir(parents=True)
    shutil.copy(NLSWORK_DIR / NLSWORK_FILE, cache / "nlswork" / NLSWORK_FILE)
    assert len(load_nlswork().frame) == 28_467
    other = tmp_path / "elsewhere"
    shutil.copytree(cache / "nlswork", other)
    assert len(load_nlswork(cache_dir=str(other)).frame) == 28_467


@needs_nlswork
def test_nlswork_sha_mismatch_is_a_clear_error(tmp_path: Path) -> None:
    data = bytearray((NLSWORK_DIR / NLSWORK_FILE).read_bytes())
    data[-3] = ord("7") if data[-3] != ord("7") else ord("8")  # one digit of the last ln_wage
    (tmp_path / NLSWORK_FILE).write_bytes(bytes(data))
    with pytest.raises(ImblabError, match=r"failed its sha256 check: expected 9a4906f3.*unmodified copy"):
        load_nlswork(dir=str(tmp_path))


def test_nlswork_missing_file_says_where_to_put_it_and_where_it_comes_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ImblabError, match=r"does not exist") as e:
        load_nlswork(dir=str(tmp_path))
    assert "data.dir=" in str(e.value) and NLSWORK_ENV in str(e.value) and "(from data.dir)" in str(e.value)
    monkeypatch.setenv(NLSWORK_ENV, str(tmp_path / "typo"))
    with pytest.raises(ImblabError, match=rf"\(from {NLSWORK_ENV}\)"):
        load_nlswork()  # an explicit directory never falls back to the cache
    monkeypatch.delenv(NLSWORK_ENV)
    with pytest.raises(ImblabError) as e:
        load_nlswork()
    message = str(e.value)
    assert str(tmp_path / "cache" / "nlswork" / NLSWORK_FILE) in message
    assert "does not download" in message and "sampleSelection::nlswork" in message and "Stata" in message
    assert "National Longitudinal Survey" in message and f"{NLSWORK_ENV}=/that/dir" in message


# ---------------------------------------------------------------- any panel table


def _table(tmp_path: Path, name: str = "panel.csv", **cols: list) -> Path:
    base = {
        "pid": [p for p in range(12) for _ in range(3)],
        "year": [2000 + w for _ in range(12) for w in range(3)],
        "income": np.linspace(1, 2, 36),
        "age": [30.0 + w for _ in range(12) for w in range(3)],
        "score": np.linspace(-1, 1, 36),
        "mood": ["low", "mid", "high", "mid"] * 9,
        "comment": ["free text"] * 36,
    }
    df = pd.DataFrame({**base, **cols})
    path = tmp_path / name
    df.to_parquet(path) if name.endswith((".parquet", ".pq")) else df.to_csv(path, index=False)
    return path


def _load(path: Path, **kw: object) -> Panel:
    args = {
        "id": "pid",
        "time": "year",
        "regression_target": "income",
        "class_target": "mood",
        "class_order": ["low", "mid", "high"],
        "known": ["age"],
    } | kw
    return load_panel_table(str(path), **args)


@pytest.mark.parametrize("name", ["panel.csv", "panel.parquet"])
def test_panel_table_maps_classes_and_picks_numeric_features(tmp_path: Path, name: str) -> None:
    panel = _load(_table(tmp_path, name))
    assert panel.name == "panel" and panel.class_names == ["low", "mid", "high"]
    assert panel.features == ["score"]  # numeric, no other role: text columns are left out
    assert panel.frame["mood"].tolist()[:4] == [0, 1, 2, 1]
    assert panel.known == ["age"] and len(panel.frame) == 36


def test_panel_table_class_values_match_leniently(tmp_path: Path) -> None:
    path = _table(tmp_path, mood=[1, 2, 3, 2] * 9)
    assert _load(path, class_order=["1", "2", "3"]).frame["mood"].tolist()[:4] == [0, 1, 2, 1]
    path = _table(tmp_path, mood=[1.0, 2.0, np.nan, 2.0] * 9)  # a CSV column with gaps reads 1 as 1.0
    panel = _load(path, class_order=["1", "2", "3"])
    assert panel.dropped == {"missing mood": 9} and set(panel.frame["mood"]) == {0, 1}


def test_panel_table_drops_and_counts_missing_targets(tmp_path: Path) -> None:
    income = np.linspace(1, 2, 36)
    income[[0, 4]] = np.nan
    panel = _load(_table(tmp_path, income=income, mood=["low", "mid", None, "mid"] * 9))
    assert panel.dropped == {"missing income": 2, "missing mood": 9}
    assert len(panel.frame) == 36 - 11


@pytest.mark.parametrize(
    ("kw", "cols", "message"),
    [
        (
            {"class_order": ["low", "mid"]},
            {},
            r"values outside class_order \['low', 'mid'\]: 'high' \(9 rows\)",
        ),
        ({"class_order": ["low", "low", "mid"]}, {}, r"at least two distinct class values"),
        ({"id": "person"}, {}, r"id column \['person'\] not in the frame"),
        ({"class_target": "satisfaction"}, {}, r"class target 'satisfaction' not in the columns"),
        ({"features": ["score", "comment"]}, {}, r"feature columns must be numeric, found 'comment'"),
        ({}, {"year": [2000] * 36}, r"duplicate \(pid, year\) rows, e.g. \(0, 2000\)"),
        ({}, {"pid": list(range(36))}, r"0 persons with two or more waves"),
        ({}, {"income": ["unknown"] * 36}, r"regression target must be numeric"),
    ],
)
def test_panel_table_bad_inputs_are_clear_errors(tmp_path: Path, kw: dict, cols: dict, message: str) -> None:
    with pytest.raises(ImblabError, match=message):
        _load(_table(tmp_path, **cols), **kw)


def test_panel_table_bad_paths(tmp_path: Path) -> None:
    with pytest.raises(ImblabError, match=r"unsupported file type"):
        _load(tmp_path / "panel.xlsx")
    with pytest.raises(ImblabError, match=r"panel file not found"):
        _load(tmp_path / "absent.csv")
    (tmp_path / "broken.parquet").write_text("not parquet")
    with pytest.raises(ImblabError, match=r"could not read .*broken.parquet as parquet"):
        _load(tmp_path / "broken.parquet")


# ---------------------------------------------------------------- synthetic


def test_synthetic_panel_has_the_structure_it_claims() -> None:
    panel = make_panel_synthetic(n_persons=3000, max_waves=8, seed=1)
    f = panel.frame
    assert panel.n_persons == 3000 and f.groupby("person").size().max() <= 8
    assert 0.07 < panel.n_single_wave_persons / 3000 < 0.13  # single_wave_share=0.1
    assert set(f.groupby("person")["year"].diff().dropna().unique()) == {1, 2, 3}  # irregular waves
    shares = np.bincount(f["band"], minlength=3) / len(f)
    np.testing.assert_allclose(shares, [0.2, 0.65, 0.15], atol=0.03)  # a dominant middle class
    for col in ("x", "noise"):
        assert 0.03 < f[col].isna().mean() < 0.07  # missing_rate=0.05
    # wage = 2 + alpha + 0.02 (age - 30) + 0.3 x + AR(1) + noise: OLS on the complete rows recovers it.
    ok = f.dropna()
    design = np.column_stack([np.ones(len(ok)), ok["age"] - 30, ok["x"], ok["noise"]])
    coef = np.linalg.lstsq(design, ok["wage"], rcond=None)[0]
    np.testing.assert_allclose(coef, [2.0, 0.02, 0.3, 0.0], atol=0.03)
    assert abs(coef[1] - 0.02) < 0.003
    # Persons persist: the next wave's wage and class follow the last ones.
    nxt = f.groupby("person")[["wage", "band"]].shift(-1)
    pairs = f.assign(next_wage=nxt["wage"], next_band=nxt["band"]).dropna(subset=["next_wage"])
    assert np.corrcoef(pairs["wage"], pairs["next_wage"])[0, 1] > 0.6
    same = (pairs["band"] == pairs["next_band"]).mean()
    assert same > (shares**2).sum() + 0.1  # more often the same class than independent draws would give
    assert make_panel_synthetic(seed=1).frame.equals(make_panel_synthetic(seed=1).frame)


@pytest.mark.parametrize(
    "kw",
    [{"class_shares": (0.5, 0.6)}, {"max_waves": 1}, {"rho": 1.0}, {"single_wave_share": 1.0}],
)
def test_synthetic_bad_parameters(kw: dict) -> None:
    with pytest.raises(ImblabError):
        make_panel_synthetic(**kw)
