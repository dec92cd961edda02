"""The numeric fast path of JSON ``dataframe_split`` bodies (``imblab.serving.numeric_rows``): the same
frame as the general path (orjson, then one float array), bit for bit, and the general path's answer
and error message for every body it does not read."""

from __future__ import annotations

import random
import sys
from collections.abc import Callable

import numpy as np
import orjson
import pandas as pd
import pytest

from imblab.serving import numeric_rows
from imblab.serving.protocol import RequestError, numeric_split, parse_json

Outcome = tuple


def general(body: bytes, columns: list[str]) -> Outcome:
    """``parse_json`` as before the fast path: the frame and params, or the refusal."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(numeric_rows, "MIN_BYTES", sys.maxsize)
        return outcome(lambda: parse_json(body, columns))


def with_fast_path(body: bytes, columns: list[str]) -> Outcome:
    """``parse_json`` taking the fast path for a body of any size."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(numeric_rows, "MIN_BYTES", 0)
        return outcome(lambda: parse_json(body, columns))


def outcome(call: Callable[[], tuple[pd.DataFrame, dict | None]]) -> Outcome:
    try:
        frame, params = call()
    except RequestError as exc:
        return ("refused", exc.status, exc.code, str(exc))
    return ("frame", frame, params)


def assert_same_frame(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    """Equal labels and dtypes, NaN in the same cells, every other float equal bit for bit (-0.0 too)."""
    pd.testing.assert_frame_equal(got, expected, check_exact=True)
    if not all(pd.api.types.is_float_dtype(d) for d in got.dtypes):
        return  # a table of objects (the general path's): equal as compared above
    a, b = got.to_numpy(), expected.to_numpy()
    assert np.array_equal(np.isnan(a), np.isnan(b))
    kept = ~np.isnan(a)
    assert np.array_equal(a[kept].view(np.uint64), b[kept].view(np.uint64))


def assert_same_outcome(got: Outcome, expected: Outcome) -> None:
    assert got[0] == expected[0], (got, expected)
    if got[0] == "refused":
        assert got == expected
    else:
        assert_same_frame(got[1], expected[1])
        assert got[2] == expected[2]


def split_body(columns: list[str], rows: list[list[str]], params: str = "", layout: int = 0) -> bytes:
    """A compact ``dataframe_split`` body from number tokens as written (no whitespace); ``params``
    (``"params":...`` or empty) and the key order as ``layout`` says."""
    data = "[" + ",".join("[" + ",".join(row) + "]" for row in rows) + "]"
    names = orjson.dumps(columns).decode()
    split = [
        f'{{"columns":{names},"data":{data}}}',
        f'{{"data":{data},"columns":{names}}}',
        f'{{"index":null,"data":{data},"columns":{names}}}',
        f'{{"columns":{names},"data":{data},"index":null}}',
    ][layout % 4]
    parts = [f'"dataframe_split":{split}', *([params] if params else [])]
    return ("{" + ",".join(parts[::-1] if layout % 2 else parts) + "}").encode()


def random_doubles(rng: np.random.Generator, n: int) -> np.ndarray:
    """Finite doubles from random bit patterns (every exponent, subnormals included) and edge values."""
    bits = rng.integers(0, 2**64, size=n, dtype=np.uint64)
    values = bits.view(np.float64)
    values = values[np.isfinite(values)]
    subnormal = rng.integers(1, 2**52, size=n // 8, dtype=np.uint64).view(np.float64)
    edges = [0.0, -0.0, 1e308, -1e308, 5e-324, -5e-324, 2.2250738585072014e-308, 1.7976931348623157e308]
    return np.concatenate([values, subnormal * rng.choice([-1.0, 1.0], size=len(subnormal)), edges])


def token(value: float, style: int, rng: random.Random) -> str:
    """``value`` written one of the ways JSON allows (several read back to a nearby double: both paths
    must still round them the same way)."""
    if style == 0:
        return repr(value).replace("inf", "1e308")
    if style == 1:
        return format(value, ".17e")  # 1.23...e+05: a sign and leading zeros in the exponent
    if style == 2:
        return format(value, ".30E")  # more digits than a double holds
    if style == 3:
        return str(rng.randint(-(10**25), 10**25))  # integers past 2**53 and 2**64
    if style == 4:
        return rng.choice(["0", "0.0", "-0.0", "0e0", "-0e-0", "0E+00", "-0.0E5", "1", "-1", "1E2", "null"])
    digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 60)))
    return f"{rng.choice(['', '-'])}{rng.randint(1, 9)}{digits[:20]}.{digits}e{rng.randint(-340, 280)}"


def test_orjson_bodies_round_trip_every_double_exactly() -> None:
    """What clients send (``tests/support/serving.payload``: orjson from a float array): every double,
    subnormals, -0.0, 1e308 and NaN as null, read to the same bits as orjson reads them."""
    rng = np.random.default_rng(7)
    values = random_doubles(rng, 40_000)
    values = np.concatenate([values, np.full(len(values) // 10, np.nan)])
    rng.shuffle(values)
    width = 9
    values = values[: len(values) // width * width].reshape(-1, width)
    columns = [f"f{i}" for i in range(width)]
    body = orjson.dumps(
        {"dataframe_split": {"columns": columns, "data": values}}, option=orjson.OPT_SERIALIZE_NUMPY
    )
    assert b"null" in body and b"-0.0" in body and b"e-324" in body and b"1e+308" in body
    fast = numeric_split(body, columns)
    assert fast is not None
    frame, params = fast
    assert params is None
    assert_same_frame(frame, general(body, columns)[1])
    np.testing.assert_array_equal(frame.to_numpy(), values)  # and the values the client had


@pytest.mark.parametrize("seed", range(12))
def test_random_bodies_read_the_same_as_the_general_path(seed: int) -> None:
    rng = random.Random(seed)
    doubles = random_doubles(np.random.default_rng(seed), 2_000)
    width = rng.randint(1, 30)
    n = rng.randint(1, 60)
    columns = [f"c{i}" for i in range(width)] if seed % 3 else [f'we"ird\\{i} \u00b0' for i in range(width)]
    rows = [
        [token(float(rng.choice(doubles)), rng.randrange(6), rng) for _ in range(width)] for _ in range(n)
    ]
    params = rng.choice(["", '"params":{"threshold":0.25}', '"params":{}', '"params":null'])
    body = split_body(columns, rows, params, layout=seed)  # key orders: any reads the same
    fast = numeric_split(body, columns)
    assert fast is not None, body[:300]
    expected = general(body, columns)
    assert expected[0] == "frame"
    assert_same_frame(fast[0], expected[1])
    assert fast[1] == expected[2]
    assert_same_outcome(with_fast_path(body, columns), expected)


COLUMNS = ["a", "b"]
GOOD = '"dataframe_split":{"columns":["a","b"],"data":[[1.5,null],[-2,3e-5]]}'


@pytest.mark.parametrize(
    "body",
    [
        # Not JSON, or not as orjson reads it: each is the general path's error, or its frame.
        '{"dataframe_split":{"columns":["a","b"],"data":[[1.5,.5]]}}',
        '{"dataframe_split":{"columns":["a","b"],"data":[[1.5,5.]]}}',
        '{"dataframe_split":{"columns":["a","b"],"data":[[1.5,5.e3]]}}',
        '{"dataframe_split":{"columns":["a","b"],"data":[[1.5,-.5]]}}',
        '{"dataframe_split":{"columns":["a","b"],"data":[[1.5,01]]}}',
        '{"dataframe_split":{"columns":["a","b"],"data":[[1.5,-01]]}}',
        '{"dataframe_split":{"columns":["a","b"],"data":[[1.5,00.5]]}}',
        '{"dataframe_split":{"columns":["a","b"],"data":[[1.5,+1]]}}',
        '{"dataframe_split":{"columns":["a","b"],"data":[[1.5,1e]]}}',
        '{"dataframe_split":{"columns":["a","b"],"data":[[1.5,-]]}}',
        '{"dataframe_split":{"columns":["a","b"],"data":[[1.5,]]}}',
        '{"dataframe_split":{"columns":["a","b"],"data":[[1.5,,2]]}}',
        '{"dataframe_split":{"columns":["a","b"],"data":[[1.5,nul]]}}',
        '{"dataframe_split":{"columns":["a","b"],"data":[[1.5,NaN]]}}',
        '{"dataframe_split":{"columns":["a","b"],"data":[[1.5,Infinity]]}}',
        '{"dataframe_split":{"columns":["a","b"],"data":[[1.5,-0]]}}',  # orjson: the integer 0, so +0.0
        '{"dataframe_split":{"columns":["a","b"],"data":[[1.5,1e400]]}}',  # orjson refuses; json: inf
        '{"dataframe_split":{"columns":["a","b"],"data":[[1.5,-1e999]]}}',
        '{"dataframe_split":{"columns":["a","b"],"data":[[1.5,1e99999999999]]}}',
        '{"dataframe_split":{"columns":["a","b"],"data":[[1.5,2]]}',
        '{"dataframe_split":{"columns":["a","b"],"data":[[1.5,2]]}}x',
        # Whitespace, text, nesting, other shapes.
        '{"dataframe_split":{"columns":["a","b"],"data":[[1.5, 2]]}}',
        '{"dataframe_split":{"columns":["a","b"],"data":[[1.5,2],\n[3,4]]}}',
        '{"dataframe_split":{"columns":["a","b"],"data":[[1.5,"2"]]}}',
        '{"dataframe_split":{"columns":["a","b"],"data":[[1.5,true]]}}',
        '{"dataframe_split":{"columns":["a","b"],"data":[[1.5,[2]]]}}',
        '{"dataframe_split":{"columns":["a","b"],"data":[[[1.5,2]]]}}',
        '{"dataframe_split":{"columns":["a","b"],"data":[[1.5,2],[3]]}}',
        '{"dataframe_split":{"columns":["a","b"],"data":[[1.5,2],[3,4,5]]}}',
        '{"dataframe_split":{"columns":["a","b"],"data":[[1.5,2,3]]}}',
        '{"dataframe_split":{"columns":["a","b"],"data":[[1.5],[2]]}}',
        '{"dataframe_split":{"columns":["a","b"],"data":[[1.5,2],[]]}}',
        '{"dataframe_split":{"columns":["a","b"],"data":[[]]}}',
        '{"dataframe_split":{"columns":["a","b"],"data":[[1.5,2]],"index":[7]}}',
        '{"dataframe_split":{"columns":["b","a"],"data":[[1.5,2]]}}',
        '{"dataframe_split":{"columns":["a"],"data":[[1.5,2]]}}',
        '{"dataframe_split":{"data":[[1.5,2]]}}',
        '{"dataframe_split":{"columns":["a","b"],"data":[[1.5,2]],"extra":1}}',
        '{"dataframe_split":{"columns":["a","b"],"data":[[1.5,2]]},"dataframe_records":[]}',
        '{"dataframe_split":{"columns":["a","b"],"data":[[1.5,2]]},"other":1}',
        '{"dataframe_split":{"columns":["a","b"],"data":[[1.5,2]]},"params":[0.3]}',
        '{"dataframe_split":{"columns":["a","b"],"data":[[1.5,2]]},"params":{"t":NaN}}',
        '{"dataframe_split":{"columns":["a","b"],"data":[[1.5,2]]},"params":{"m":[[1,2]]}}',
        '[{"dataframe_split":{"columns":["a","b"],"data":[[1.5,2]]}}]',
        # A `data` value elsewhere, a duplicate key, the placeholder sent as a value.
        '{"params":{"data":[[1,2]]},"dataframe_split":{"columns":["a","b"],"data":[[3,4]]}}',
        '{"params":{"data":[[1,2]]},"dataframe_split":{"columns":["a","b"],"data":"imblab:numeric-rows"}}',
        '{"params":{"data":[[1,2]]},"dataframe_split":{"columns":["a","b"],"data":"imblab:numeric\\u002drows"}}',
        '{"dataframe_split":{"columns":["a","b"],"data":[[1,2]],"data":[[3,4]]}}',
        '{"dataframe_split":{"columns":["a","b"],"data":[[1,2]]},"dataframe_split":{"columns":["a","b"],"data":[[3,4]]}}',
        '{"dataframe_split":{"columns":["a","b"],"data":[[1,2]]},"params":{"x":"imblab:numeric-rows"}}',
        '{"dataframe_split":{"columns":["a\\"data\\":[[1,2]]","b"],"data":[[3,4]]}}',
        '{"dataframe_records":[{"a":1,"b":2}],"params":{"data":[[1,2]]}}',
        '{"inputs":{"data":[[1,2]]}}',
        '{"params":{"m":[[0]]},"dataframe_split":{"columns":["a","b"],"data":[[1,2] ]}}',
        '{"params":{"m":[[0]]},"dataframe_split":{"columns":["a","b"],"data":[[1,2',
    ],
)
def test_bodies_the_fast_path_leaves_get_the_general_answer(body: str) -> None:
    raw = body.encode()
    got = with_fast_path(raw, COLUMNS)
    expected = general(raw, COLUMNS)
    assert_same_outcome(got, expected)
    fast = numeric_split(raw, COLUMNS)
    if fast is not None:  # read here only where the general path reads the same frame
        assert expected[0] == "frame"
        assert_same_frame(fast[0], expected[1])


def test_what_the_fast_path_reads_and_what_it_leaves() -> None:
    """A sample of the list above, pinned: these are read by the fast path, these are left to orjson."""
    assert numeric_split(f"{{{GOOD}}}".encode(), COLUMNS) is not None
    assert numeric_split(f'{{{GOOD},"params":{{"threshold":0.3}}}}'.encode(), COLUMNS) is not None
    assert numeric_split(f'{{"params":{{"threshold":0.3}},{GOOD}}}'.encode(), COLUMNS) is not None
    for left in (
        GOOD.replace("1.5", ".5"),
        GOOD.replace(",null", ", null"),
        GOOD.replace("-2", "-0"),
        GOOD.replace("3e-5", "3e500"),
        GOOD.replace('"a","b"', '"b","a"'),
    ):
        assert numeric_split(f"{{{left}}}".encode(), COLUMNS) is None, left
    frame, params = numeric_split(f'{{{GOOD},"params":{{"threshold":0.3}}}}'.encode(), COLUMNS)
    assert params == {"threshold": 0.3} and list(frame.columns) == COLUMNS
    np.testing.assert_array_equal(frame.to_numpy(), [[1.5, np.nan], [-2.0, 3e-5]])


def test_small_bodies_skip_the_fast_path_and_large_ones_take_it() -> None:
    """Below ``MIN_BYTES`` orjson is quicker; above it the frame is pyarrow's (a transposed block)."""
    columns = [f"c{i}" for i in range(50)]
    rng = np.random.default_rng(1)
    for n, fast in ((2, False), (5_000, True)):
        data = rng.normal(size=(n, len(columns)))
        body = orjson.dumps(
            {"dataframe_split": {"columns": columns, "data": data}}, option=orjson.OPT_SERIALIZE_NUMPY
        )
        assert (len(body) >= numeric_rows.MIN_BYTES) is fast
        frame, _ = parse_json(body, columns)
        np.testing.assert_array_equal(frame.to_numpy(), data)
        assert frame.to_numpy().flags.f_contiguous is fast


def test_an_integer_beyond_float_range_is_the_models_input_problem_not_a_crash() -> None:
    """A 400-digit integer overflows float64: the rows take pandas' general path (an object column the
    model then refuses with a 400), not an OverflowError that the server would answer with a 500."""
    body = b'{"dataframe_split": {"columns": ["a", "b"], "data": [[1, ' + b"9" * 400 + b"], [2, 3]]}}"
    frame, params = parse_json(body, ["a", "b"])
    assert params is None and frame.shape == (2, 2) and frame["b"].dtype == object
