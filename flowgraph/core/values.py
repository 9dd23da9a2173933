"""Money and time values: one place that turns them into text and back.

Money is int64 minor units (cents); time is int64 UTC milliseconds. A value is read as
exactly what it says or refused with a reason (:class:`~flowgraph.core.errors.InvalidValue`);
nothing is guessed. The rules, which ingest's column parser
(:mod:`flowgraph.ingest.validate`) applies too and a property test keeps equal:

- **text is NFKC-normalised first**, so full-width digits and signs (``１２３．４５``,
  ``２０２４－０３－０１``) read as their ASCII twins; any other non-ASCII digit
  (``١٢``) is refused.
- **amounts**: ``[0-9]+(.[0-9]+)?``, not negative, at most 16 digits before the point
  (at most 9,999,999,999,999,999.99); places after the second must be zeros (``1.500``
  is exactly 1.50; ``1.505`` is refused). No sign, exponent, grouping, ``NaN`` or ``inf``.
- **timestamps**, stored as UTC ms, within [1900-01-01, 2200-01-01) (``bounded``):

  - ISO-8601 ``YYYY-MM-DD``, ``YYYY-MM-DD[T ]HH:MM[:SS[.f…]]``, naive = UTC, or with
    ``Z`` / an offset ``±HH:MM`` / ``±HHMM`` of at most 14:00; digits after the
    millisecond are cut (towards the past, also before 1970);
  - compact ``YYYYMMDD`` (exactly 8 digits): that calendar day at 00:00 UTC;
  - epoch **milliseconds** written with 11 to 13 digits (1970-04-26 … 2199-12-31).
    Other digit strings are refused, never re-read in another unit: 9 or 10 digits
    are what epoch *seconds* look like, 14 or more digits are beyond the year 2200.
- **rates** (``float`` columns): a plain decimal (an exponent is allowed), finite, within
  the column's bounds (a loan rate is a yearly fraction in [0, 1]: 0.0446 = 4.46 %).

>>> format_amount(123456)
'1234.56'
>>> parse_amount("1234.5")
123450
>>> parse_amount("１２３．４５")
12345
>>> format_ts(0)
'1970-01-01T00:00:00.000Z'
>>> parse_ts("1970-01-02")
86400000
>>> parse_ts("19700102")
86400000
>>> parse_ts("2024-03-01T08:00:00+08:00") == parse_ts("2024-03-01T00:00:00Z")
True
>>> parse_ts("1709251200")
Traceback (most recent call last):
...
flowgraph.core.errors.InvalidValue: '1709251200' has 10 digits: epoch milliseconds have 11 to 13 (epoch seconds are not read); write ISO-8601
>>> sum_money([2**63 - 1, 2**63 - 1])
18446744073709551614
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_CEILING, Decimal

import polars as pl

from flowgraph.core.errors import InvalidValue

DAY_MS = 86_400_000
HOUR_MS = 3_600_000

#: the accepted time range, [TS_MIN, TS_MAX) in UTC ms: 1900-01-01 … 2199-12-31
TS_MIN = -2_208_988_800_000
TS_MAX = 7_258_118_400_000
#: epoch milliseconds are written with this many digits (10**10 ms = 1970-04-26)
EPOCH_MS_DIGITS = (11, 13)
#: the largest UTC offset in use anywhere (UTC+14:00, Kiribati), in minutes
MAX_OFFSET_MIN = 14 * 60
#: digits before the decimal point of an amount: at most 9,999,999,999,999,999.99
AMOUNT_WHOLE_DIGITS = 16
AMOUNT_MAX = 10 ** (AMOUNT_WHOLE_DIGITS + 2) - 1

AMOUNT_RE = re.compile(r"^-?[0-9]+(?:\.[0-9]+)?$")
TS_RE = re.compile(
    r"^([0-9]{4})-([0-9]{2})-([0-9]{2})(?:[T ]([0-9]{2}):([0-9]{2})(?::([0-9]{2}))?(?:\.([0-9]{1,9}))?)?"
    r"(Z|[+-][0-9]{2}:?[0-9]{2})?$"
)
FLOAT_RE = re.compile(r"^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$")
#: how ingest shows a floating-point value read from a money column of a Parquet file
#: (refused: a float is not an exact decimal)
FLOAT_MARK = " (floating point)"


def normalize(text: str) -> str:
    """NFKC, then surrounding white space stripped: what the value rules read."""
    return unicodedata.normalize("NFKC", str(text)).strip()


def day_start_ms(d: date) -> int:
    """UTC midnight of a calendar day, in ms."""
    return int(datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp() * 1000)


def format_amount(minor: int) -> str:
    """Minor units → decimal string with two places (``-5`` → ``'-0.05'``); exact for
    any integer, so totals beyond int64 print right too."""
    minor = int(minor)
    sign = "-" if minor < 0 else ""
    q, r = divmod(abs(minor), 100)
    return f"{sign}{q}.{r:02d}"


def format_amount_grouped(minor: int) -> str:
    """For people: ``100000000`` → ``'1,000,000.00'``."""
    minor = int(minor)
    sign = "-" if minor < 0 else ""
    q, r = divmod(abs(minor), 100)
    return f"{sign}{q:,}.{r:02d}"


def parse_amount(text: str) -> int:
    """Decimal string → minor units, by the amount rules above; InvalidValue otherwise."""
    s = normalize(text)
    if s.endswith(FLOAT_MARK.strip()):
        raise InvalidValue(f"floating-point value {text!r} in a money column (not an exact decimal)")
    if not AMOUNT_RE.match(s):
        raise InvalidValue(f"unparsable amount {text!r}")
    if s.startswith("-"):
        raise InvalidValue(f"negative amount {text!r}")
    whole, _, frac = s.partition(".")
    if frac[2:].strip("0"):
        raise InvalidValue(f"more than 2 decimals in {text!r}")
    if len(whole.lstrip("0")) > AMOUNT_WHOLE_DIGITS:
        raise InvalidValue(f"amount too large {text!r} (at most 9999999999999999.99)")
    return int(whole) * 100 + int(frac[:2].ljust(2, "0"))


def format_ts(ms: int) -> str:
    """UTC ms → ISO-8601 with milliseconds and ``Z``."""
    dt = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=int(ms))
    return f"{dt.year:04d}" + dt.strftime("-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def format_date(ms: int) -> str:
    return format_ts(ms)[:10]


def _civil_ms(y: int, mo: int, d: int, hh: int = 0, mi: int = 0, ss: int = 0) -> int:
    dt = datetime(y, mo, d, hh, mi, ss, tzinfo=UTC)
    return int((dt - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1))


def parse_ts(text: str | int, bounded: bool = False) -> int:
    """ISO-8601, ``YYYYMMDD`` or epoch milliseconds → UTC ms, by the timestamp rules above.

    ``bounded``: also the contract's range 1900-01-01 … 2199-12-31, as ingest reads
    data; without it (query options such as ``--since 2999-01-01``) any time the layouts
    can write is fine.
    """
    if isinstance(text, int) and not isinstance(text, bool):
        return text
    s = normalize(text)
    if s.isascii() and s.isdigit():
        if len(s) == 8:
            try:
                ms = _civil_ms(int(s[:4]), int(s[4:6]), int(s[6:]))
            except ValueError:
                raise InvalidValue(f"{text!r} is not a date YYYYMMDD") from None
        elif EPOCH_MS_DIGITS[0] <= len(s) <= EPOCH_MS_DIGITS[1]:
            ms = int(s)
        else:
            raise InvalidValue(
                f"{text!r} has {len(s)} digits: epoch milliseconds have 11 to 13 (epoch seconds are"
                " not read); write ISO-8601"
            )
        return _in_range(ms, text) if bounded else ms
    m = TS_RE.match(s)
    if not m:
        raise InvalidValue(f"unparsable timestamp {text!r}")
    y, mo, d, hh, mi, ss, frac, off = m.groups()
    try:
        ms = _civil_ms(int(y), int(mo), int(d), int(hh or 0), int(mi or 0), int(ss or 0))
    except ValueError:
        raise InvalidValue(f"unparsable timestamp {text!r}") from None
    if frac:
        ms += int(frac[:3].ljust(3, "0"))
    if off and off != "Z":
        digits = off[1:].replace(":", "")
        oh, om = int(digits[:2]), int(digits[2:])
        if om > 59 or oh * 60 + om > MAX_OFFSET_MIN:
            raise InvalidValue(f"UTC offset {off!r} outside ±14:00 in {text!r}")
        ms -= (1 if off[0] == "+" else -1) * (oh * 60 + om) * 60_000
    return _in_range(ms, text) if bounded else ms


def _in_range(ms: int, text) -> int:
    if not TS_MIN <= ms < TS_MAX:
        raise InvalidValue(f"timestamp {text!r} outside 1900-01-01 … 2199-12-31")
    return ms


def parse_float(text: str, bounds: tuple[float, float] | None = None) -> float:
    """A finite plain decimal (exponent allowed) within ``bounds``; InvalidValue otherwise."""
    s = normalize(text)
    if not FLOAT_RE.match(s):
        raise InvalidValue(f"not a finite decimal number {text!r}")
    v = float(s)
    if v != v or v in (float("inf"), float("-inf")):
        raise InvalidValue(f"not a finite decimal number {text!r}")
    if bounds is not None and not bounds[0] <= v <= bounds[1]:
        raise InvalidValue(f"{text!r} outside [{bounds[0]:g}, {bounds[1]:g}]")
    return v


def ratio_threshold(ratio: float, amount: int) -> int:
    """Smallest integer amount ≥ ratio × amount, computed exactly in decimal."""
    return int((Decimal(str(ratio)) * int(amount)).to_integral_value(rounding=ROUND_CEILING))


def sum_money(values: Iterable[int | None]) -> int:
    """Exact sum of minor units (Python integers: no int64 wrap-around); None counts 0."""
    return sum(int(v) for v in values if v is not None)


def money_sum(expr: pl.Expr) -> pl.Expr:
    """A polars sum of minor units that cannot wrap around: summed as Int128 (exact up to
    ±1.7e38, i.e. 10**19 amounts of the largest allowed size); format with
    :func:`format_amount`, which takes any Python integer.

    >>> df = pl.DataFrame({"a": [AMOUNT_MAX] * 12}, schema={"a": pl.Int64})
    >>> format_amount(df.select(money_sum(pl.col("a"))).item())
    '119999999999999999.88'
    """
    return expr.cast(pl.Int128).sum()
