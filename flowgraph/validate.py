"""Row validation against the data contract, as polars expressions.

Input frames hold text (every column Utf8, as read from CSV); the output splits them
into typed good rows and bad rows that keep their original fields plus a ``reason``
naming the row, the column and the rule broken.

>>> import polars as pl
>>> raw = pl.DataFrame({"tx_id": ["a", "b"], "ts": ["2024-01-01", "x"],
...                     "src_account": ["1", "1"], "dst_account": ["2", "2"],
...                     "amount": ["1.50", "2"]})
>>> good, bad = validate(raw.lazy(), "transactions", "t.csv")
>>> good.collect()["amount"].to_list()
[150]
>>> bad.collect()["__reason"].to_list()
["t.csv row 2: column 'ts': unparsable timestamp 'x'"]
"""

from __future__ import annotations

import polars as pl

from .schema import TABLES, Column, Table

ROW = "__row"  # 1-based data row number (the header is not counted)
REASON = "__reason"  # internal; quarantine files call it "reason"

_TS_PARTS = (
    r"^(\d{4}-\d{2}-\d{2})(?:[T ](\d{2}:\d{2})(:\d{2})?(?:\.(\d{1,9}))?)?"
    r"(Z|[+-]\d{2}:?\d{2})?$"
)


def _blank(s: pl.Expr) -> pl.Expr:
    return s.is_null() | (s.str.strip_chars() == "")


def money_expr(s: pl.Expr, strip: bool = True) -> tuple[pl.Expr, pl.Expr]:
    """(minor units, error) for a decimal text column; error is null when fine."""
    t = s.str.strip_chars() if strip else s
    shape_ok = t.str.contains(r"^-?\d+(\.\d+)?$")
    whole = t.str.extract(r"^-?(\d+)", 1)
    frac = t.str.extract(r"\.(\d+)$", 1).fill_null("")
    value = whole.cast(pl.Int64, strict=False) * 100 + frac.str.pad_end(2, "0").str.slice(
        0, 2
    ).cast(pl.Int64, strict=False)
    error = (
        pl.when(~shape_ok)
        .then(pl.format("unparsable number '{}'", t))
        .when(t.str.starts_with("-"))
        .then(pl.format("negative amount '{}'", t))
        .when(frac.str.len_chars() > 2)
        .then(pl.format("more than 2 decimals '{}'", t))
        .when(whole.str.len_chars() > 16)
        .then(pl.format("amount too large '{}'", t))
    )
    return value, error


def ts_expr(s: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """(UTC ms, error) for ISO-8601 (naive = UTC) or epoch-millisecond text."""
    t = s.str.strip_chars()
    g = t.str.extract_groups(_TS_PARTS)
    date, hm, sec, frac, off = (g.struct.field(str(i)) for i in range(1, 6))
    naive = pl.concat_str(
        [date, pl.lit(" "), hm.fill_null("00:00"), sec.fill_null(":00")]
    ).str.to_datetime("%Y-%m-%d %H:%M:%S", strict=False, time_unit="ms")
    frac_ms = frac.str.pad_end(3, "0").str.slice(0, 3).cast(pl.Int64, strict=False).fill_null(0)
    off_digits = off.str.replace(":", "", literal=True)
    off_min = (
        off_digits.str.slice(1, 2).cast(pl.Int64, strict=False) * 60
        + off_digits.str.slice(3, 2).cast(pl.Int64, strict=False)
    )
    off_ms = (
        pl.when(off.is_null() | (off == "Z"))
        .then(0)
        .when(off.str.starts_with("-"))
        .then(-off_min * 60_000)
        .otherwise(off_min * 60_000)
    )
    iso_ms = naive.dt.epoch("ms") + frac_ms - off_ms
    is_epoch = t.str.contains(r"^\d{1,15}$")
    value = pl.when(is_epoch).then(t.cast(pl.Int64, strict=False)).otherwise(iso_ms)
    error = pl.when(value.is_null()).then(pl.format("unparsable timestamp '{}'", t))
    return value, error


FAST_TS_FORMATS = (
    "%Y-%m-%dT%H:%M:%S%.fZ",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d",
)


def fast_ts_expr(t: pl.Expr) -> pl.Expr:
    """UTC ms for the common fixed layouts (null otherwise); much cheaper than :func:`ts_expr`.

    No whitespace stripping here: padded values fail and go to the full parser.
    """
    tries = [
        t.str.to_datetime(fmt, strict=False, time_unit="ms").dt.epoch("ms") for fmt in FAST_TS_FORMATS
    ]
    is_epoch = t.str.contains(r"^\d{1,15}$")
    return pl.when(is_epoch).then(t.cast(pl.Int64, strict=False)).otherwise(pl.coalesce(tries))


def float_expr(s: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    t = s.str.strip_chars()
    value = t.cast(pl.Float64, strict=False)
    return value, pl.when(value.is_null()).then(pl.format("unparsable number '{}'", t))


def column_expr(col: Column, present: bool, fast: bool = False) -> tuple[pl.Expr, pl.Expr]:
    """(typed value, error text or null) for one contract column.

    With ``fast`` the error is only a boolean flag and timestamps take the fixed-layout
    parser; rows it flags are re-checked by the full parser, so results are the same.
    """
    if not present:
        value = pl.lit(None, dtype=col.dtype)
        error = pl.lit("missing required value") if col.required else pl.lit(None, pl.Utf8)
        return value, error
    s = pl.col(col.name).cast(pl.Utf8)
    blank = _blank(s)
    if col.kind == "money":
        value, err = money_expr(s, strip=not fast)
    elif col.kind == "ts" and fast:
        value = fast_ts_expr(s)
        err = pl.when(value.is_null()).then(pl.lit("x"))
    elif col.kind == "ts":
        value, err = ts_expr(s)
    elif col.kind == "float":
        value, err = float_expr(s)
    else:
        value, err = s.str.strip_chars(), pl.lit(None, pl.Utf8)
        if col.allowed:
            value = value.str.to_lowercase()
            allowed = ", ".join(col.allowed)
            err = pl.when(~value.is_in(list(col.allowed))).then(
                pl.format("value '{}' not in allowed set ({})", value, pl.lit(allowed))
            )
    missing = pl.lit("missing required value") if col.required else pl.lit(None, pl.Utf8)
    error = pl.when(blank).then(missing).otherwise(err)
    value = pl.when(blank).then(pl.lit(None, col.dtype)).otherwise(value).cast(col.dtype)
    return value, error


def derive_expr(table: Table, name: str) -> pl.Expr:
    """Expression that derives a missing column (disbursement_id = loan_id:account_id:ts)."""
    parts = table.derived[name]
    pieces: list[pl.Expr] = []
    for i, p in enumerate(parts):
        if i:
            pieces.append(pl.lit(":"))
        pieces.append(pl.col(p).cast(pl.Utf8))
    return pl.concat_str(pieces)


def _typed_and_errors(
    table: Table, names: list[str], fast: bool
) -> tuple[list[pl.Expr], list[pl.Expr]]:
    typed: list[pl.Expr] = []
    errors: list[pl.Expr] = []
    for col in table.columns:
        present = col.name in names
        if not present and col.name in table.derived:
            continue
        value, err = column_expr(col, present, fast)
        typed.append(value.alias(col.name))
        errors.append(err if fast else pl.format("column '{}': {}", pl.lit(col.name), err))
    return typed, errors


def validate(
    raw: pl.LazyFrame, table: str, source: str
) -> tuple[pl.LazyFrame, pl.LazyFrame]:
    """Split text rows into (typed good rows, bad rows with ``reason``).

    Good rows have the contract columns (typed), then any extra input columns (text),
    then ``__row`` (not necessarily in input order). Bad rows have the original fields,
    ``__row`` and ``__reason``, which names every broken column.
    """
    t = TABLES[table]
    names = raw.collect_schema().names()
    if ROW not in names:
        raw = raw.with_row_index(ROW, offset=1)
        names = [ROW, *names]
    extras = [n for n in names if n not in t.column_names and n != ROW]

    # pass 1: cheap checks on every row
    typed, flags = _typed_and_errors(t, names, fast=True)
    flagged = pl.any_horizontal([f.is_not_null() for f in flags])
    staged = raw.with_columns(flagged.alias("__flag"))
    good_fast = staged.filter(~pl.col("__flag")).select([*typed, *extras, ROW])

    # pass 2: the full parser and the reasons, only on the rows pass 1 flagged
    suspects = staged.filter(pl.col("__flag")).select(names)
    typed_full, errors = _typed_and_errors(t, names, fast=False)
    all_errors = pl.concat_str(errors, separator="; ", ignore_nulls=True)
    all_errors = pl.when(all_errors == "").then(None).otherwise(all_errors)
    checked = suspects.with_columns(
        pl.format("{} row {}: {}", pl.lit(source), pl.col(ROW), all_errors).alias(REASON)
    )
    bad = checked.filter(pl.col(REASON).is_not_null()).select([*names, REASON])
    good_slow = checked.filter(pl.col(REASON).is_null()).select([*typed_full, *extras, ROW])
    # good rows are not in input order (fast-pass rows first); merge restores order when
    # it matters, i.e. when duplicate keys exist
    good = pl.concat([good_fast, good_slow])
    for name in t.derived:
        derived = derive_expr(t, name)
        expr = pl.coalesce(pl.col(name), derived) if name in names else derived
        good = good.with_columns(expr.alias(name))
    return good.select([*t.column_names, *extras, ROW]), bad
