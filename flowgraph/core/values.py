"""Money and time values: one place that turns them into text and back.

Money is int64 minor units (cents); time is int64 UTC milliseconds.

>>> format_amount(123456)
'1234.56'
>>> parse_amount("1234.5")
123450
>>> format_ts(0)
'1970-01-01T00:00:00.000Z'
>>> parse_ts("1970-01-02")
86400000
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_CEILING, Decimal

from flowgraph.core.errors import InvalidValue

DAY_MS = 86_400_000
HOUR_MS = 3_600_000

AMOUNT_RE = re.compile(r"^-?\d+(?:\.\d+)?$")
TS_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2}))?(?:\.(\d{1,9}))?)?"
    r"(Z|[+-]\d{2}:?\d{2})?$"
)


def day_start_ms(d: date) -> int:
    """UTC midnight of a calendar day, in ms."""
    return int(datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp() * 1000)


def format_amount(minor: int) -> str:
    """Minor units → decimal string with two places (``-5`` → ``'-0.05'``)."""
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
    """Decimal string (≤ 2 places, not negative) → minor units; ValueError otherwise."""
    s = str(text).strip()
    if not AMOUNT_RE.match(s):
        raise InvalidValue(f"unparsable amount {text!r}")
    if s.startswith("-"):
        raise InvalidValue(f"negative amount {text!r}")
    whole, _, frac = s.partition(".")
    if len(frac) > 2:
        raise InvalidValue(f"more than 2 decimals in {text!r}")
    return int(whole) * 100 + int(frac.ljust(2, "0") or 0)


def format_ts(ms: int) -> str:
    """UTC ms → ISO-8601 with milliseconds and ``Z``."""
    dt = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=int(ms))
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def format_date(ms: int) -> str:
    return format_ts(ms)[:10]


def parse_ts(text: str | int) -> int:
    """ISO-8601 (naive = UTC) or epoch ms → UTC ms; sub-millisecond digits are truncated."""
    if isinstance(text, int):
        return text
    s = str(text).strip()
    if s.isdigit():
        return int(s)
    m = TS_RE.match(s)
    if not m:
        raise InvalidValue(f"unparsable timestamp {text!r}")
    y, mo, d, hh, mi, ss, frac, off = m.groups()
    dt = datetime(int(y), int(mo), int(d), int(hh or 0), int(mi or 0), int(ss or 0), tzinfo=UTC)
    ms = int((dt - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1))
    if frac:
        ms += int(frac[:3].ljust(3, "0"))
    if off and off != "Z":
        sign = 1 if off[0] == "+" else -1
        digits = off[1:].replace(":", "")
        ms -= sign * (int(digits[:2]) * 60 + int(digits[2:])) * 60_000
    return ms


def ratio_threshold(ratio: float, amount: int) -> int:
    """Smallest integer amount ≥ ratio × amount, computed exactly in decimal."""
    return int((Decimal(str(ratio)) * int(amount)).to_integral_value(rounding=ROUND_CEILING))
