"""Values are read as exactly what they say, or refused with a reason — never changed.

Three implementations of the same rules must agree on every input: the Python parsers
of :mod:`flowgraph.core.values` (the plain reference), the polars column parser of
ingest (the full parser) and the numba fast pass in front of it.
"""

from __future__ import annotations

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flowgraph.core.errors import InvalidValue
from flowgraph.core.schema import TABLES
from flowgraph.core.values import TS_MAX, TS_MIN, parse_amount, parse_float, parse_ts
from flowgraph.ingest.validate import REASON, ROW, validate

# (text, UTC ms or None when refused, words of the reason when refused)
TS_CASES = [
    ("2024-03-01T08:00:00+08:00", 1709251200000, None),
    ("2024-03-01T00:00:00Z", 1709251200000, None),
    ("２０２４－０３－０１", 1709251200000, None),  # full-width: NFKC → ASCII
    ("20240301", 1709251200000, None),  # compact date, never epoch ms
    ("1709251200000", 1709251200000, None),  # epoch ms, 13 digits
    ("1709251200", None, "epoch seconds are not read"),  # seconds are refused, not read as ms
    ("123456789012345", None, "15 digits"),  # would be the year 33658
    ("2024-03-01T08:00:00+25:00", None, "outside ±14:00"),
    ("2024-03-01T08:00:00+99:99", None, "outside ±14:00"),
    ("2024-03-01T08:00:00+14:00", 1709229600000, None),
    ("2024-03-01T08:00:00-14:00", 1709330400000, None),
    ("20240230", None, "not a date YYYYMMDD"),
    ("1969-12-31T23:59:59.9995Z", -1, None),  # digits after the millisecond are cut towards the past
    ("1960-05-01", -305164800000, None),
    ("19600501", -305164800000, None),
    ("1899-12-31", None, "outside 1900-01-01"),
    ("2200-01-01", None, "outside 1900-01-01"),
    ("٢٠٢٤-٠٣-٠١", None, "unparsable timestamp"),  # Arabic-Indic digits are not NFKC-folded
]
AMOUNT_CASES = [
    ("０５", 500, None),
    ("1.2３", 123, None),
    ("１２３．４５", 12345, None),
    ("1.500", 150, None),
    ("9999999999999999.99", 999999999999999999, None),
    ("10000000000000000", None, "amount too large"),
    ("1.505", None, "more than 2 decimals"),
    ("NaN", None, "unparsable number"),
    ("inf", None, "unparsable number"),
    ("-5", None, "negative amount"),
    ("١٢", None, "unparsable number"),
    ("2.5 (floating point)", None, "floating-point value"),
]
RATE_CASES = [
    ("0.0446", 0.0446, None),
    ("nan", None, "not a finite"),
    ("inf", None, "not a finite"),
    ("-3", None, "outside [0, 1]"),
    ("1e308", None, "outside [0, 1]"),
    ("4.46", None, "outside [0, 1]"),
]


def _one(table: str, column: str, text: str) -> tuple[object, str | None]:
    """(typed value, reason) of ``text`` in ``column`` of a row otherwise valid."""
    base = {
        "transactions": {"tx_id": "t", "ts": "2024-01-01", "src_account": "a", "dst_account": "b", "amount": "1"},
        "loans": {"loan_id": "L", "borrower_id": "p", "amount": "1", "rate": "0.1"},
    }[table]
    raw = pl.DataFrame({**base, column: [text]}, schema=dict.fromkeys(base, pl.Utf8))
    good, bad = validate(raw.lazy(), table, "f.csv")
    if good.height:
        return good[column][0], None
    return None, bad[REASON][0]


@pytest.mark.parametrize(("text", "ms", "words"), TS_CASES, ids=[c[0] for c in TS_CASES])
def test_timestamp_cases(text, ms, words):
    value, reason = _one("transactions", "ts", text)
    assert value == ms
    if words is None:
        assert parse_ts(text, bounded=True) == ms and reason is None
    else:
        assert words in reason and "column 'ts'" in reason and reason.startswith("f.csv row 1: ")
        with pytest.raises(InvalidValue, match=words.split("'")[0][:12]):
            parse_ts(text, bounded=True)


@pytest.mark.parametrize(("text", "minor", "words"), AMOUNT_CASES, ids=[c[0] for c in AMOUNT_CASES])
def test_amount_cases(text, minor, words):
    value, reason = _one("transactions", "amount", text)
    assert value == minor
    if words is None:
        assert parse_amount(text) == minor
    else:
        assert words in reason and "column 'amount'" in reason
        with pytest.raises(InvalidValue):
            parse_amount(text)


@pytest.mark.parametrize(("text", "rate", "words"), RATE_CASES, ids=[c[0] for c in RATE_CASES])
def test_rate_cases(text, rate, words):
    value, reason = _one("loans", "rate", text)
    assert value == rate
    if words is None:
        assert parse_float(text, TABLES["loans"].column("rate").bounds) == rate
    else:
        assert words in reason and "column 'rate'" in reason
        with pytest.raises(InvalidValue):
            parse_float(text, TABLES["loans"].column("rate").bounds)


# random text built from the pieces the rules care about: ASCII, full-width and
# Arabic-Indic digits, separators, offsets, signs, spaces
DIGITS = st.sampled_from(list("0123456789") + ["０", "９", "٣", "５"])
PIECES = st.sampled_from(["-", ":", "T", " ", ".", "Z", "+", "+08:00", "-14:00", "+14:30", "+0530", "e", "\u3000", "．", "－"])
texty = st.lists(st.one_of(DIGITS, DIGITS, PIECES), max_size=26).map("".join)
iso = st.builds(
    lambda y, mo, d, h, mi, s, f, off: f"{y:04d}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d}{f}{off}",
    st.integers(1890, 2210), st.integers(1, 12), st.integers(1, 31), st.integers(0, 24), st.integers(0, 59),
    st.integers(0, 60), st.sampled_from(["", ".5", ".123", ".1234567"]),
    st.sampled_from(["", "Z", "+08:00", "-0930", "+14:00", "-14:01", "+25:00", "+05:60"]),
)
digit_runs = st.integers(0, 10**16).map(str)


def _python(parse, text):
    try:
        return parse(text)
    except InvalidValue:
        return None


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(texty, iso, digit_runs), min_size=1, max_size=30))
def test_python_polars_and_fast_pass_agree_on_timestamps(texts):
    raw = pl.DataFrame({"tx_id": [f"t{i}" for i in range(len(texts))], "ts": texts, "src_account": "a",
                        "dst_account": "b", "amount": "1"})
    good, bad = validate(raw.lazy(), "transactions", "f.csv")
    got = dict(zip(good[ROW].to_list(), good["ts"].to_list(), strict=True))
    for i, text in enumerate(texts, 1):
        want = _python(lambda x: parse_ts(x, bounded=True), text)
        assert got.get(i) == want, text
        if want is not None:
            assert TS_MIN <= want < TS_MAX
    assert good.height + bad.height == len(texts)


amounts = st.one_of(
    texty,
    st.builds(lambda w, f: f"{w}.{f}", st.integers(0, 10**17), st.sampled_from(["", "0", "5", "05", "50", "500", "501", "0000"])),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(amounts, min_size=1, max_size=30))
def test_python_polars_and_fast_pass_agree_on_amounts(texts):
    raw = pl.DataFrame({"tx_id": [f"t{i}" for i in range(len(texts))], "ts": "2024-01-01", "src_account": "a",
                        "dst_account": "b", "amount": texts})
    good, _ = validate(raw.lazy(), "transactions", "f.csv")
    got = dict(zip(good[ROW].to_list(), good["amount"].to_list(), strict=True))
    for i, text in enumerate(texts, 1):
        assert got.get(i) == _python(parse_amount, text), text


def test_money_sums_are_exact_beyond_int64():
    """The totals' path (Int128 sums, any-size formatting) at the bounds: the largest
    amount the contract loads, twelve times, and the largest int64, twelve times."""
    from flowgraph.core.values import AMOUNT_MAX, format_amount, money_sum, sum_money

    int64_max = 2**63 - 1
    for value, total in ((AMOUNT_MAX, "119999999999999999.88"), (int64_max, "1106804644422573096.84")):
        df = pl.DataFrame({"a": [value] * 12}, schema={"a": pl.Int64})
        assert df["a"].sum() != value * 12  # a plain int64 sum wraps around here
        got = df.select(money_sum(pl.col("a"))).item()
        assert got == value * 12 == sum_money([value] * 12)
        assert format_amount(got) == total
        grouped = df.with_columns(pl.lit("g").alias("k")).group_by("k").agg(money_sum(pl.col("a")))
        assert grouped["a"][0] == value * 12
