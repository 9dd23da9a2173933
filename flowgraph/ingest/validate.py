"""Row validation against the data contract.

Input frames hold text (every column Utf8, as read from CSV); the output splits them
into typed good rows and bad rows that keep their original fields plus a ``reason``
naming the row, the column and the rule broken.

Two passes, so that clean data pays for one cheap parse per value:

1. a fast pass over every row (numba kernels on the Arrow text buffers for timestamps
   and amounts, a whole-column check for text) gives the typed value of every row it
   fully understands and flags the others;
2. only the flagged rows are read again and checked by the full parser (polars
   expressions, :func:`column_expr`), which decides between good and bad and words the
   reason. The fast pass accepts a strict subset of what the full parser accepts, with
   the same values, so the split is the same as running the full parser on every row.

>>> import polars as pl
>>> raw = pl.DataFrame({"tx_id": ["a", "b"], "ts": ["2024-01-01", "x"],
...                     "src_account": ["1", "1"], "dst_account": ["2", "2"],
...                     "amount": ["1.50", "2"]})
>>> good, bad = validate(raw.lazy(), "transactions", "t.csv")
>>> good["amount"].to_list()
[150]
>>> bad["__reason"].to_list()
["t.csv row 2: column 'ts': unparsable timestamp 'x'"]
"""

from __future__ import annotations

from functools import partial

import numpy as np
import polars as pl
import pyarrow as pa
from numba import njit

from flowgraph.core.schema import TABLES, Column, Table
from flowgraph.core.values import (
    AMOUNT_WHOLE_DIGITS,
    DAY_MS,
    EPOCH_MS_DIGITS,
    FLOAT_MARK,
    FLOAT_RE,
    MAX_OFFSET_MIN,
    TS_MAX,
    TS_MIN,
)

ROW = "__row"  # 1-based data row number (the header is not counted)
REASON = "__reason"  # internal; quarantine files call it "reason"
FLAG = "__flag"  # internal: the fast pass could not vouch for this row

_ISO = (
    r"^([0-9]{4}-[0-9]{2}-[0-9]{2})(?:[T ]([0-9]{2}:[0-9]{2})(:[0-9]{2})?(?:\.([0-9]{1,9}))?)?"
    r"(Z|[+-][0-9]{2}:?[0-9]{2})?$"
)


# ------------------------------------------------------------------ full parser
# The exact rules are those of flowgraph.core.values (parse_amount, parse_ts,
# parse_float); these expressions apply them to whole columns, and a property test
# keeps the two equal.
def _blank(s: pl.Expr) -> pl.Expr:
    return s.is_null() | (s.str.strip_chars() == "")


def _norm(s: pl.Expr) -> pl.Expr:
    """NFKC (full-width digits → ASCII), then surrounding white space cut."""
    return s.str.normalize("NFKC").str.strip_chars()


def money_expr(s: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """(minor units, error) for a decimal text column; error is null when fine."""
    t = _norm(s)
    shape_ok = t.str.contains(r"^-?[0-9]+(\.[0-9]+)?$")
    whole = t.str.extract(r"^-?([0-9]+)", 1).str.strip_chars_start("0")
    frac = t.str.extract(r"\.([0-9]+)$", 1).fill_null("")
    whole_v = pl.when(whole == "").then(0).otherwise(whole.cast(pl.Int64, strict=False))
    value = whole_v * 100 + frac.str.pad_end(2, "0").str.slice(0, 2).cast(pl.Int64, strict=False)
    error = (
        pl.when(t.str.ends_with(FLOAT_MARK.strip()))
        .then(pl.format("floating-point value '{}' in a money column (not an exact decimal)", t))
        .when(~shape_ok)
        .then(pl.format("unparsable number '{}'", t))
        .when(t.str.starts_with("-"))
        .then(pl.format("negative amount '{}'", t))
        .when(frac.str.slice(2).str.contains("[1-9]"))
        .then(pl.format("more than 2 decimals '{}'", t))
        .when(whole.str.len_chars() > AMOUNT_WHOLE_DIGITS)
        .then(pl.format("amount too large '{}' (at most 9999999999999999.99)", t))
    )
    return value, error


def ts_expr(s: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """(UTC ms, error) for ISO-8601 (naive = UTC), ``YYYYMMDD`` or epoch-millisecond text."""
    t = _norm(s)
    g = t.str.extract_groups(_ISO)
    date, hm, sec, frac, off = (g.struct.field(str(i)) for i in range(1, 6))
    naive = pl.concat_str(
        [date, pl.lit(" "), hm.fill_null("00:00"), sec.fill_null(":00")]
    ).str.to_datetime("%Y-%m-%d %H:%M:%S", strict=False, time_unit="ms")
    frac_ms = frac.str.pad_end(3, "0").str.slice(0, 3).cast(pl.Int64, strict=False).fill_null(0)
    off_digits = off.str.replace(":", "", literal=True)
    off_h = off_digits.str.slice(1, 2).cast(pl.Int64, strict=False)
    off_m = off_digits.str.slice(3, 2).cast(pl.Int64, strict=False)
    off_min = off_h * 60 + off_m
    has_off = off.is_not_null() & (off != "Z")
    bad_off = has_off & ((off_m > 59) | (off_min > MAX_OFFSET_MIN))
    # a leap second (:60) has no exact UTC millisecond: refused, as parse_ts does (polars
    # would roll it over into the next minute)
    bad_sec = sec.str.slice(1, 2).cast(pl.Int64, strict=False) > 59
    off_ms = (
        pl.when(~has_off)
        .then(0)
        .when(off.str.starts_with("-"))
        .then(-off_min * 60_000)
        .otherwise(off_min * 60_000)
    )
    iso_ms = naive.dt.epoch("ms") + frac_ms - off_ms
    digits = t.str.contains(r"^[0-9]+$")
    n = t.str.len_bytes()
    compact = digits & (n == 8)
    compact_ms = t.str.to_date("%Y%m%d", strict=False).cast(pl.Datetime("ms")).dt.epoch("ms")
    epoch = digits & (n >= EPOCH_MS_DIGITS[0]) & (n <= EPOCH_MS_DIGITS[1])
    value = (
        pl.when(compact)
        .then(compact_ms)
        .when(epoch)
        .then(t.cast(pl.Int64, strict=False))
        .when(digits | bad_off | bad_sec.fill_null(False))
        .then(None)
        .otherwise(iso_ms)
    )
    error = (
        pl.when(compact & value.is_null())
        .then(pl.format("'{}' is not a date YYYYMMDD", t))
        .when(digits & ~compact & ~epoch)
        .then(
            pl.format(
                "'{}' has {} digits: epoch milliseconds have 11 to 13 (epoch seconds are not read);"
                " write ISO-8601", t, n,
            )
        )
        .when(bad_off)
        .then(pl.format("UTC offset '{}' outside ±14:00 in '{}'", off, t))
        .when(value.is_null())
        .then(pl.format("unparsable timestamp '{}'", t))
        .when((value < TS_MIN) | (value >= TS_MAX))
        .then(pl.format("timestamp '{}' outside 1900-01-01 … 2199-12-31", t))
    )
    return value, error


def float_expr(s: pl.Expr, bounds: tuple[float, float] | None = None) -> tuple[pl.Expr, pl.Expr]:
    """(value, error) for a finite decimal number within ``bounds``."""
    t = _norm(s)
    shape_ok = t.str.contains(FLOAT_RE.pattern)
    value = t.cast(pl.Float64, strict=False)
    error = pl.when(~shape_ok | value.is_null() | value.is_infinite() | value.is_nan()).then(
        pl.format("not a finite decimal number '{}'", t)
    )
    if bounds is not None:
        lo, hi = bounds
        error = error.when((value < lo) | (value > hi)).then(
            pl.format("'{}' outside [{}, {}]", t, pl.lit(f"{lo:g}"), pl.lit(f"{hi:g}"))
        )
    return value, error


def column_expr(col: Column, present: bool) -> tuple[pl.Expr, pl.Expr]:
    """(typed value, error text or null) for one contract column: the full parser."""
    if not present:
        value = pl.lit(None, dtype=col.dtype)
        error = pl.lit("missing required value") if col.required else pl.lit(None, pl.Utf8)
        return value, error
    s = pl.col(col.name).cast(pl.Utf8)
    blank = _blank(s)
    if col.kind == "money":
        value, err = money_expr(s)
    elif col.kind == "ts":
        value, err = ts_expr(s)
    elif col.kind == "float":
        value, err = float_expr(s, col.bounds)
    else:
        value, err = _text_expr(col, s)
    missing = pl.lit("missing required value") if col.required else pl.lit(None, pl.Utf8)
    error = pl.when(blank).then(missing).otherwise(err)
    value = pl.when(blank).then(pl.lit(None, col.dtype)).otherwise(value).cast(col.dtype)
    return value, error


def _text_expr(col: Column, s: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    value, err = s.str.strip_chars(), pl.lit(None, pl.Utf8)
    if col.allowed:
        value = value.str.to_lowercase()
        allowed = ", ".join(col.allowed)
        err = pl.when(~value.is_in(list(col.allowed))).then(
            pl.format("value '{}' not in allowed set ({})", value, pl.lit(allowed))
        )
    return value, err


def derive_expr(table: Table, name: str) -> pl.Expr:
    """The derived id of an event from its content: ``loan_id:account_id:ts:amount``
    (ts in UTC ms, the amount as a decimal), e.g. ``L1:A7:1714557600000:100.00``."""
    pieces: list[pl.Expr] = []
    for i, p in enumerate(table.derived[name]):
        if i:
            pieces.append(pl.lit(":"))
        col = table.column(p)
        if col.kind == "money":
            minor = pl.col(p)
            pieces.append(pl.format("{}.{}", minor // 100, (minor % 100).cast(pl.Utf8).str.pad_start(2, "0")))
        else:
            pieces.append(pl.col(p).cast(pl.Utf8))
    return pl.concat_str(pieces)


def derive_ids(good: pl.DataFrame, table: Table, present: bool) -> pl.DataFrame:
    """Fill the derived id column (see :data:`flowgraph.core.schema.EVENT_KEYS`).

    The id is the row's content (:func:`derive_expr`); rows of one file (``good``) with
    the same content are separate events, numbered ``#2``, ``#3``, ... So two repayments
    of the same amount in the same millisecond are both kept, a re-ingest (or a re-ordered
    copy) gives the same ids, a row added later never renumbers the others, and the same
    row in two files is one event.

    >>> from flowgraph.core.schema import TABLES
    >>> df = pl.DataFrame({"repayment_id": [None, None, None, "R9"], "loan_id": ["L"] * 4,
    ...     "account_id": ["A"] * 4, "amount": [100, 100, 250, 5], "ts": [7] * 4, "__row": [1, 2, 3, 4]})
    >>> sorted(derive_ids(df, TABLES["repayments"], True)["repayment_id"].to_list())
    ['L:A:7:1.00', 'L:A:7:1.00#2', 'L:A:7:2.50', 'R9']
    """
    for name, parts in table.derived.items():
        missing = pl.col(name).is_null() if present else pl.lit(True)
        need = good.filter(missing) if present else good
        if need.height == 0:
            if not present:
                good = good.with_columns(pl.lit(None, pl.Utf8).alias(name))
            continue
        nth = pl.int_range(1, pl.len() + 1).over(list(parts), order_by=ROW)
        derived = derive_expr(table, name)
        filled = need.with_columns(
            pl.when(nth > 1).then(pl.format("{}#{}", derived, nth)).otherwise(derived).alias(name)
        )
        good = pl.concat([good.filter(~missing), filled], how="vertical_relaxed") if present else filled
    return good


def _typed_and_errors(table: Table, names: list[str]) -> tuple[list[pl.Expr], list[pl.Expr]]:
    typed: list[pl.Expr] = []
    errors: list[pl.Expr] = []
    for col in _columns(table, names):
        value, err = column_expr(col, col.name in names)
        typed.append(value.alias(col.name))
        errors.append(pl.format("column '{}': {}", pl.lit(col.name), err))
    return typed, errors


def _columns(table: Table, names: list[str]) -> list[Column]:
    """Contract columns validated for an input (absent derived columns are made later)."""
    return [c for c in table.columns if c.name in names or c.name not in table.derived]


# ------------------------------------------------------------------ fast pass
# The kernels read Arrow large_string buffers (offsets + UTF-8 bytes) and accept only
# layouts whose value is certain; anything else is flagged for the full parser. They
# do not strip: a padded value is flagged and the full parser strips it.


@njit(cache=True, nogil=True, inline="always")
def _digits(data: np.ndarray, a: int, n: int) -> int:
    """Value of ``n`` ASCII digits at ``data[a:]``, or -1 if one is not a digit."""
    v = 0
    for k in range(a, a + n):
        c = data[k] - 48
        if c < 0 or c > 9:
            return -1
        v = v * 10 + c
    return v


@njit(cache=True, nogil=True, inline="always")
def _days_from_civil(y: int, m: int, d: int) -> int:
    # H. Hinnant, "chrono-Compatible Low-Level Date Algorithms": proleptic Gregorian
    y -= m <= 2
    era = (y if y >= 0 else y - 399) // 400
    yoe = y - era * 400
    mp = (m + 9) % 12
    doy = (153 * mp + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


@njit(cache=True, nogil=True)
def _parse_ts_kernel(
    offsets: np.ndarray, data: np.ndarray, valid: np.ndarray, out: np.ndarray, ok: np.ndarray,
    ts_max: int = TS_MAX,
) -> None:
    """Epoch ms (11-13 digits, before 2200), ``YYYY-MM-DD`` or
    ``YYYY-MM-DD[T ]HH:MM:SS[.f{1,9}]`` of the years 1900-2199, optionally ending in
    ``Z``, to UTC ms; ``ok[i]`` False for anything else (compact dates, offsets, other
    digit counts and ranges are the full parser's)."""
    for i in range(out.shape[0]):
        ok[i] = False
        out[i] = 0
        if not valid[i]:
            continue
        a = offsets[i]
        end = offsets[i + 1]
        n = end - a
        if n == 0:
            continue
        if n >= 11 and n <= 13:
            v = _digits(data, a, n)
            if v >= 0:
                if v < ts_max:
                    out[i] = v
                    ok[i] = True
                continue
        if n < 10 or data[a + 4] != 45 or data[a + 7] != 45:  # '-'
            continue
        y = _digits(data, a, 4)
        mo = _digits(data, a + 5, 2)
        d = _digits(data, a + 8, 2)
        if y < 1900 or y > 2199 or mo < 1 or mo > 12 or d < 1:
            continue
        dim = 31
        if mo == 2:
            dim = 29 if (y % 4 == 0 and y % 100 != 0) or y % 400 == 0 else 28
        elif mo == 4 or mo == 6 or mo == 9 or mo == 11:
            dim = 30
        if d > dim:
            continue
        p = a + 10
        ms = 0
        if p < end and (data[p] == 84 or data[p] == 32):  # 'T' or ' '
            if end - p < 9 or data[p + 3] != 58 or data[p + 6] != 58:  # ':'
                continue
            hh = _digits(data, p + 1, 2)
            mi = _digits(data, p + 4, 2)
            ss = _digits(data, p + 7, 2)
            # second 60 (leap) is left to the full parser
            if hh < 0 or hh > 23 or mi < 0 or mi > 59 or ss < 0 or ss > 59:
                continue
            ms = (hh * 3600 + mi * 60 + ss) * 1000
            p += 9
            if p < end and data[p] == 46:  # '.': 1-9 digits, truncated to ms
                p += 1
                nd = 0
                frac = 0
                while p < end and nd < 10:
                    c = data[p] - 48
                    if c < 0 or c > 9:
                        break
                    if nd < 3:
                        frac = frac * 10 + c
                    nd += 1
                    p += 1
                if nd == 0 or nd > 9:
                    continue
                for _ in range(nd, 3):
                    frac *= 10
                ms += frac
        if p < end and data[p] == 90:  # 'Z'
            p += 1
        if p != end:
            continue
        out[i] = _days_from_civil(y, mo, d) * DAY_MS + ms
        ok[i] = True


@njit(cache=True, nogil=True)
def _parse_money_kernel(
    offsets: np.ndarray, data: np.ndarray, valid: np.ndarray, out: np.ndarray, ok: np.ndarray
) -> None:
    """``\\d{1,16}(\\.\\d{1,2})?`` to minor units; ``ok[i]`` False for anything else."""
    for i in range(out.shape[0]):
        ok[i] = False
        out[i] = 0
        if not valid[i]:
            continue
        a = offsets[i]
        end = offsets[i + 1]
        p = a
        whole = 0
        while p < end and p - a <= 16:
            c = data[p] - 48
            if c < 0 or c > 9:
                break
            whole = whole * 10 + c
            p += 1
        if p == a or p - a > 16:
            continue
        frac = 0
        if p < end:
            nf = end - p - 1
            if data[p] != 46 or nf < 1 or nf > 2:  # '.'
                continue
            frac = _digits(data, p + 1, nf)
            if frac < 0:
                continue
            if nf == 1:
                frac *= 10
        out[i] = whole * 100 + frac
        ok[i] = True


@njit(cache=True, nogil=True)
def _text_kernel(offsets: np.ndarray, data: np.ndarray, valid: np.ndarray, blank: np.ndarray) -> bool:
    """Mark null/empty values in ``blank``; True when some value might need stripping
    (ASCII whitespace or a non-ASCII byte at either end: Unicode whitespace is possible)."""
    maybe = False
    for i in range(blank.shape[0]):
        a = offsets[i]
        b = offsets[i + 1]
        if not valid[i] or a == b:
            blank[i] = True
            continue
        blank[i] = False
        c0 = data[a]
        c1 = data[b - 1]
        if c0 == 32 or 9 <= c0 <= 13 or c0 >= 128 or c1 == 32 or 9 <= c1 <= 13 or c1 >= 128:
            maybe = True
    return maybe


def text_buffers(s: pl.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(offsets, bytes, valid) of a text series as Arrow large_string, zero-copy from Arrow."""
    arr = s.to_arrow(compat_level=pl.CompatLevel.oldest())
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if arr.type != pa.large_string():
        arr = arr.cast(pa.large_string())
    _, off, data = arr.buffers()
    offsets = np.frombuffer(off, dtype=np.int64)[arr.offset : arr.offset + len(arr) + 1]
    raw = np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(0, np.uint8)
    valid = s.is_not_null().to_numpy() if s.null_count() else np.ones(len(s), np.bool_)
    return offsets, raw, valid


def _fast_column(col: Column, s: pl.Series) -> tuple[pl.Series, np.ndarray | None]:
    """(typed values, flagged rows or None when none is) for one present column of a batch."""
    n = len(s)
    if s.dtype != pl.Utf8:
        s = s.cast(pl.Utf8)
    if col.kind == "float" or col.allowed:
        return _exact_column(col, s)
    offsets, data, valid = text_buffers(s)
    if col.kind in ("money", "ts"):
        out = np.empty(n, np.int64)
        ok = np.empty(n, np.bool_)
        kernel = _parse_money_kernel if col.kind == "money" else _parse_ts_kernel
        kernel(offsets, data, valid, out, ok)
        value = pl.Series(col.name, out, pl.Int64)
        if ok.all():
            return value, None
        bad = ~ok
        value = value.scatter(np.flatnonzero(bad), None)
        if not col.required:
            # a null or empty optional value is simply absent, not an error
            bad &= valid & (offsets[1:] != offsets[:-1])
        return value, bad
    blank = np.empty(n, np.bool_)
    if _text_kernel(offsets, data, valid, blank):
        return _exact_column(col, s)  # some value may carry whitespace: strip exactly
    if not blank.any():
        return s.alias(col.name), None
    value = s.alias(col.name).scatter(np.flatnonzero(blank), None)
    return value, blank if col.required else None


def _exact_column(col: Column, s: pl.Series) -> tuple[pl.Series, np.ndarray | None]:
    """The full parser on a whole column, for kinds and values the kernels do not cover."""
    value, err = column_expr(col, True)
    frame = pl.DataFrame({col.name: s}).select(value.alias("v"), err.is_not_null().alias("e"))
    return frame["v"].alias(col.name), frame["e"].to_numpy()


def _fast_batch(df: pl.DataFrame, table: Table, names: list[str], extras: list[str]) -> pl.DataFrame:
    """Typed contract columns, extras, ``__row`` and ``__flag`` for one batch of text rows."""
    n = df.height
    flag = np.zeros(n, np.bool_)
    out: list[pl.Series] = []
    for col in _columns(table, names):
        if col.name in names:
            value, bad = _fast_column(col, df[col.name])
        else:
            value = pl.Series(col.name, [None] * n, col.dtype)
            bad = np.ones(n, np.bool_) if col.required else None
        if bad is not None:
            flag |= bad
        out.append(value)
    return pl.DataFrame([*out, *[df[e] for e in extras], df[ROW], pl.Series(FLAG, flag)])


def _fast_schema(table: Table, names: list[str], extras: list[str], schema: pl.Schema) -> dict:
    out = {c.name: c.dtype for c in _columns(table, names)}
    out |= {e: schema[e] for e in extras}
    return out | {ROW: schema[ROW], FLAG: pl.Boolean()}


def validate(
    raw: pl.LazyFrame, table: str, source: str, engine: str = "streaming"
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Split text rows into (typed good rows, bad rows with ``__reason``).

    Good rows have the contract columns (typed), then any extra input columns (text),
    then ``__row`` (not necessarily in input order). Bad rows have the original fields,
    ``__row`` and ``__reason``, which names every broken column.

    Notes
    -----
    ``raw`` is read once in streaming batches; it is read a second time, keeping only
    the flagged rows, when the fast pass flagged any.
    """
    t = TABLES[table]
    schema = raw.collect_schema()
    names = schema.names()
    if ROW not in names:
        raw = raw.with_row_index(ROW, offset=1)
        schema = raw.collect_schema()
        names = [ROW, *names]
    extras = [n for n in names if n not in t.column_names and n != ROW]

    # pass 1: every row, one cheap parse per value
    fast = raw.map_batches(
        partial(_fast_batch, table=t, names=names, extras=extras),
        schema=_fast_schema(t, names, extras, schema),
        streamable=True,
    ).collect(engine=engine)
    flagged = fast[FLAG]
    good = fast.filter(~flagged).drop(FLAG) if flagged.any() else fast.drop(FLAG)

    # pass 2: the full parser and the reasons, only on the rows pass 1 flagged
    if flagged.any():
        rows = fast.filter(flagged)[ROW]
        suspects = raw.filter(pl.col(ROW).is_in(rows.implode())).select(names).collect(engine=engine)
        typed_full, errors = _typed_and_errors(t, names)
        all_errors = pl.concat_str(errors, separator="; ", ignore_nulls=True)
        all_errors = pl.when(all_errors == "").then(None).otherwise(all_errors)
        checked = suspects.with_columns(
            pl.format("{} row {}: {}", pl.lit(source), pl.col(ROW), all_errors).alias(REASON)
        )
        bad = checked.filter(pl.col(REASON).is_not_null()).select([*names, REASON])
        good_slow = checked.filter(pl.col(REASON).is_null()).select([*typed_full, *extras, ROW])
        # good rows are not in input order (fast-pass rows first); merge restores order
        # when it matters, i.e. when duplicate keys exist
        good = pl.concat([good, good_slow])
    else:
        bad = raw.select(names).clear().collect().with_columns(pl.lit(None, pl.Utf8).alias(REASON))
    if t.derived:
        good = derive_ids(good, t, any(n in names for n in t.derived))
    return good.select([*t.column_names, *extras, ROW]), bad
