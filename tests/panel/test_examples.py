"""imblab.panel.examples: no leakage from wave t or later, exact contents, train-only scaling, splits."""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from imblab.errors import ImblabError
from imblab.panel.dataset import Panel, validate
from imblab.panel.examples import (
    CLASS,
    GAP,
    MISSING,
    TARGET,
    Examples,
    Standardizer,
    build_examples,
    person_split,
)
from imblab.panel.synthetic import make_panel_synthetic
from tests.panel.conftest import needs_nlswork

INPUTS = ("seq", "lengths", "known", "last_reg", "last_cls")


def _row(ex: Examples, person: object, t: object) -> int:
    (i,) = np.flatnonzero((ex.person == person) & (ex.time == t))
    return int(i)


@pytest.mark.parametrize("max_len", [1, 3, 8])
def test_no_leakage_from_wave_t_or_later(max_len: int) -> None:
    """Change everything of wave t but its time and known values, and everything of every later wave
    (later times too): the inputs of the example at t do not move, its targets do, and every other
    example of the panel stays exactly as it was."""
    panel = make_panel_synthetic(n_persons=80, max_waves=8, seed=3)
    before = build_examples(panel, max_len=max_len)
    f = panel.frame
    sizes = f.groupby("person").size()
    checked = 0
    for person in sizes[sizes >= 5].index[:6]:
        rows = np.flatnonzero(f["person"] == person)
        for k in (1, 3, len(rows) - 1):
            r_t, later = rows[k], rows[k + 1 :]
            g = f.copy()
            g.loc[r_t, ["wage", "x", "noise"]] = [g.loc[r_t, "wage"] + 5, 99.0, np.nan]
            g.loc[r_t, "band"] = (g.loc[r_t, "band"] + 1) % 3
            g.loc[later, ["wage", "x", "noise", "age"]] = [-7.0, np.nan, 42.0, 99.0]
            g.loc[later, "band"] = (g.loc[later, "band"] + 2) % 3
            g.loc[later, "year"] += 1
            after = build_examples(validate(replace(panel, frame=g)), max_len=max_len)
            t = f.loc[r_t, "year"]
            i = _row(before, person, t)
            assert _row(after, person, t) == i
            for name in INPUTS:
                np.testing.assert_array_equal(getattr(after, name)[i], getattr(before, name)[i], err_msg=name)
            assert after.y_reg[i] == before.y_reg[i] + 5 and after.y_cls[i] != before.y_cls[i]
            untouched = ~((before.person == person) & (before.time >= t))
            for name in (*INPUTS, "y_reg", "y_cls", "person", "time"):
                np.testing.assert_array_equal(
                    getattr(after, name)[untouched], getattr(before, name)[untouched]
                )
            checked += 1
    assert checked == 18


def _tiny() -> Panel:
    """Person 0: waves in 2000, 2001, 2004, 2005 (irregular), a missing x in 2001; 10 filler persons."""
    rows = [
        (0, 2000, 1.0, 20.0, 1.5, 1),
        (0, 2001, np.nan, 21.0, 1.7, 0),
        (0, 2004, 3.0, 24.0, 2.0, 2),
        (0, 2005, 4.0, np.nan, 2.2, 1),
    ]
    rows += [(p, 2000 + w, 0.0, 30.0, 1.0, 1) for p in range(1, 11) for w in range(2)]
    frame = pd.DataFrame(rows, columns=["pid", "t", "x", "age", "wage", "cls"]).sample(frac=1, random_state=0)
    return validate(Panel("tiny", frame, "pid", "t", ["x"], ["age"], "wage", "cls", ["lo", "mid", "hi"]))


def test_examples_hold_exactly_the_earlier_waves() -> None:
    ex = build_examples(_tiny(), max_len=2)
    assert ex.seq_names == [
        "x",
        MISSING + "x",
        TARGET + "wage",
        CLASS + "lo",
        CLASS + "mid",
        CLASS + "hi",
        GAP,
    ]
    assert ex.known_names == ["age", MISSING + "age", GAP]
    assert ex.class_names == ["lo", "mid", "hi"] and ex.n_classes == 3 and len(ex) == 3 + 10
    assert ex.seq.dtype == np.float32 and ex.known.dtype == np.float32 and ex.lengths.dtype == np.int64
    mine = ex.subset(ex.person == 0)
    np.testing.assert_array_equal(mine.time, [2001, 2004, 2005])
    np.testing.assert_array_equal(mine.lengths, [1, 2, 2])  # max_len=2 keeps the two most recent
    wave = {  # x, missing x, wage, one-hot, gap to the next wave
        2000: [1, 0, 1.5, 0, 1, 0, 1],
        2001: [0, 1, 1.7, 1, 0, 0, 3],
        2004: [3, 0, 2.0, 0, 0, 1, 1],
    }
    zero = [0.0] * 7
    np.testing.assert_allclose(mine.seq[0], [wave[2000], zero], rtol=1e-6)
    np.testing.assert_allclose(mine.seq[1], [wave[2000], wave[2001]], rtol=1e-6)
    np.testing.assert_allclose(mine.seq[2], [wave[2001], wave[2004]], rtol=1e-6)
    np.testing.assert_allclose(mine.known, [[21, 0, 1], [24, 0, 3], [0, 1, 1]])
    np.testing.assert_allclose(mine.y_reg, [1.7, 2.0, 2.2])
    np.testing.assert_array_equal(mine.y_cls, [0, 2, 1])
    np.testing.assert_allclose(mine.last_reg, [1.5, 1.7, 2.0])
    np.testing.assert_array_equal(mine.last_cls, [1, 0, 2])
    assert len(ex.of_persons([0, 3])) == 4 and len(ex.subset([0, 2])) == 2


def test_examples_count_and_bad_max_len(synthetic: Panel, synthetic_examples: Examples) -> None:
    f = synthetic.frame
    assert len(synthetic_examples) == len(f) - synthetic.n_persons  # one per wave after a person's first
    assert synthetic_examples.lengths.min() == 1 and synthetic_examples.lengths.max() == 7
    with pytest.raises(ImblabError, match=r"max_len must be at least 1"):
        build_examples(synthetic, max_len=0)


def test_standardizer_is_fitted_on_training_examples_only(synthetic_examples: Examples) -> None:
    ex = synthetic_examples
    train, val, _ = person_split(ex, seed=0)
    tr, va = ex.of_persons(train), ex.of_persons(val)
    scaler = Standardizer().fit(tr)
    assert scaler.mean_ == pytest.approx(tr.y_reg.mean()) and scaler.std_ == pytest.approx(tr.y_reg.std())
    # A wildly different validation set changes nothing fitted.
    shifted = replace(va, seq=va.seq * 100 + 5, known=va.known * 100, y_reg=va.y_reg + 50)
    again = Standardizer().fit(tr)
    for name in ("seq_mean_", "seq_std_", "known_mean_", "known_std_"):
        np.testing.assert_array_equal(getattr(scaler, name), getattr(again, name))
    assert scaler.transform(shifted).seq.shape == va.seq.shape

    z = scaler.transform(tr)
    valid = np.arange(ex.seq.shape[1])[None, :] < tr.lengths[:, None]
    names = tr.seq_names
    x, miss_x, wage = names.index("x"), names.index(MISSING + "x"), names.index(TARGET + "wage")
    observed = z.seq[valid][tr.seq[valid][:, miss_x] == 0]
    assert observed[:, x].mean() == pytest.approx(0, abs=1e-5) and observed[:, x].std() == pytest.approx(
        1, abs=1e-4
    )
    assert (z.seq[valid][tr.seq[valid][:, miss_x] == 1][:, x] == 0).all()  # missing stays 0
    assert (z.seq[~valid] == 0).all()  # padding stays 0
    onehot = [*tr.channels(CLASS).tolist(), miss_x]
    np.testing.assert_array_equal(z.seq[..., onehot], tr.seq[..., onehot])
    raw_wage = tr.seq[valid][:, wage].astype(np.float64)
    np.testing.assert_allclose(z.seq[valid][:, wage], scaler.scale_wage(raw_wage), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(scaler.unscale_wage(scaler.scale_wage(tr.y_reg)), tr.y_reg)
    np.testing.assert_array_equal(z.y_reg, tr.y_reg)  # targets and persistence stay in original units
    np.testing.assert_array_equal(z.last_reg, tr.last_reg)
    assert z.seq.dtype == np.float32 and z.known.dtype == np.float32
    with pytest.raises(ImblabError, match=r"other input channels"):
        scaler.transform(replace(tr, known_names=["age", "other"]))
    assert tr.known_names == ["age", GAP]  # the synthetic age is never missing
    np.testing.assert_allclose(z.known.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(z.known.std(axis=0), 1, atol=1e-4)


def _last_class_shares(ex: Examples, persons: np.ndarray) -> np.ndarray:
    part = ex.of_persons(persons)
    last = (
        pd.DataFrame({"p": part.person, "t": part.time, "c": part.y_cls}).sort_values("t").groupby("p").last()
    )
    return np.bincount(last["c"], minlength=ex.n_classes) / len(last)


def test_person_split_is_disjoint_complete_stratified_and_seeded(synthetic_examples: Examples) -> None:
    ex = synthetic_examples
    parts = person_split(ex, seed=0)
    everyone = np.unique(ex.person)
    assert sum(len(p) for p in parts) == len(everyone)
    np.testing.assert_array_equal(np.sort(np.concatenate(parts)), everyone)
    assert (
        not set(parts[0]) & set(parts[1])
        and not set(parts[0]) & set(parts[2])
        and not set(parts[1]) & set(parts[2])
    )
    sizes = np.array([len(p) for p in parts]) / len(everyone)
    np.testing.assert_allclose(sizes, [0.7, 0.15, 0.15], atol=0.02)
    overall = _last_class_shares(ex, everyone)
    for p in parts:
        np.testing.assert_allclose(_last_class_shares(ex, p), overall, atol=0.03)
    same = person_split(ex, seed=0)
    assert all(np.array_equal(a, b) for a, b in zip(parts, same, strict=True))
    assert not np.array_equal(person_split(ex, seed=1)[1], parts[1])


def test_person_split_of_a_panel_counts_every_person(synthetic: Panel) -> None:
    parts = person_split(synthetic, fractions=(0.5, 0.25, 0.25), seed=2)
    assert sum(len(p) for p in parts) == synthetic.n_persons  # one-wave persons included


def test_person_split_with_too_few_persons_is_a_clear_error(synthetic_examples: Examples) -> None:
    few = synthetic_examples.of_persons(np.unique(synthetic_examples.person)[:5])
    with pytest.raises(ImblabError, match=r"too few persons for a person split: 5 persons.*at least 7"):
        person_split(few)
    with pytest.raises(ImblabError, match=r"three positive shares"):
        person_split(synthetic_examples, fractions=(0.8, 0.2))


@needs_nlswork
def test_nlswork_examples_build_fast_and_completely(nlswork: Panel) -> None:
    start = time.perf_counter()
    ex = build_examples(nlswork, max_len=8)
    seconds = time.perf_counter() - start
    assert len(ex) == len(nlswork.frame) - nlswork.n_persons == 23_757
    assert ex.seq.shape == (23_757, 8, 31) and ex.known.shape == (23_757, 5)
    assert seconds < 10, f"building nlswork examples took {seconds:.1f} s"
    assert not np.isnan(ex.seq).any() and not np.isnan(ex.known).any()
    parts = person_split(ex, seed=0)
    assert sum(len(p) for p in parts) == len(np.unique(ex.person)) == 4_160
