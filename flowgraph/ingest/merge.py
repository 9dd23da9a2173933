"""Merge validated rows into a stored table by key: duplicates, conflicts, inserts.

A row whose key is already stored is a duplicate when its content is the same and a
conflict (quarantined with the reason) when it differs; stored rows win, and among new
rows the first in input order wins. Only the contract columns count as content.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
from numba import njit

from flowgraph.core.schema import TABLES
from flowgraph.ingest.quarantine import SOURCE, SOURCE_NO, quarantine_frame
from flowgraph.ingest.validate import REASON, ROW, text_buffers


def _content_columns(table: str) -> list[str]:
    return TABLES[table].column_names



def _strictly_increasing(df: pl.DataFrame, key: list[str]) -> bool:
    """True when ``key`` strictly increases row by row: sorted by key and no key repeats.

    One linear pass; it lets already ordered input skip the duplicate check and the sort.
    """
    if df.height < 2:
        return True
    expr: pl.Expr | None = None
    for k in reversed(key):
        cur, prev = pl.col(k), pl.col(k).shift(1)
        expr = cur > prev if expr is None else (cur > prev) | ((cur == prev) & expr)
    assert expr is not None
    # a null key compares as null: treat it as "not increasing" and take the slow path
    return bool(df.select(expr.slice(1).fill_null(False).all()).item())



@njit(cache=True, nogil=True)
def _merge_join_kernel(
    a_off: np.ndarray, a_data: np.ndarray, b_off: np.ndarray, b_data: np.ndarray, out: np.ndarray
) -> None:
    """``out[i]`` = row of ``b`` whose text equals row ``i`` of ``a``, or -1.

    Both columns must be strictly increasing in byte order (polars' string order), so
    one simultaneous walk finds every match: O(len(a) + len(b)) comparisons.
    """
    na = a_off.shape[0] - 1
    nb = b_off.shape[0] - 1
    j = 0
    for i in range(na):
        out[i] = -1
        a0 = a_off[i]
        la = a_off[i + 1] - a0
        while j < nb:
            b0 = b_off[j]
            lb = b_off[j + 1] - b0
            c = 0
            for k in range(min(la, lb)):
                x = a_data[a0 + k]
                y = b_data[b0 + k]
                if x != y:
                    c = -1 if x < y else 1
                    break
            if c == 0 and la != lb:
                c = -1 if la < lb else 1
            if c > 0:  # b[j] < a[i]: b[j] is not in a
                j += 1
                continue
            if c == 0:
                out[i] = j
                j += 1
            break



def _stored_rows(new: pl.DataFrame, existing: pl.DataFrame, key: list[str]) -> np.ndarray:
    """For each row of ``new``, the row of ``existing`` with the same key, or -1.

    Both frames must be strictly increasing by key. A single text key (every table but
    the ones with compound keys) takes a linear merge walk over the Arrow buffers; the
    others a hash join on the key columns only.
    """
    k = key[0]
    if (
        len(key) == 1
        and new.schema[k] == pl.Utf8
        and existing.schema[k] == pl.Utf8
        and not new[k].null_count()
        and not existing[k].null_count()
    ):
        a_off, a_data, _ = text_buffers(new[k])
        b_off, b_data, _ = text_buffers(existing[k])
        out = np.empty(new.height, np.int64)
        _merge_join_kernel(a_off, a_data, b_off, b_data, out)
        return out
    idx = new.select(key).join(
        existing.select(key).with_row_index("__at"), on=key, how="left", nulls_equal=True,
        maintain_order="left",
    )["__at"]
    return idx.cast(pl.Int64).fill_null(-1).to_numpy()



def _sorted_by_key(df: pl.DataFrame, key: list[str]) -> pl.DataFrame:
    return df if _strictly_increasing(df, key) else df.sort(key)



@dataclass(frozen=True)
class Merged:
    table: pl.DataFrame  # the merged table, sorted by key
    conflicts: pl.DataFrame  # conflicting new rows with ``__why``
    duplicates: int  # exact duplicates dropped
    inserted: pl.DataFrame  # the new rows that were inserted: contract columns, source and row


def upgrade(existing: pl.DataFrame, table: str) -> pl.DataFrame:
    """A stored table written before a contract column existed, with that column added:
    derived ids derived as ingest derives them, others null."""
    from flowgraph.ingest.validate import derive_expr

    t = TABLES[table]
    missing = [c for c in t.columns if c.name not in existing.columns]
    for c in missing:
        value = derive_expr(t, c.name) if c.name in t.derived else pl.lit(None, c.dtype)
        existing = existing.with_columns(value.alias(c.name))
    return existing.select([*t.column_names, *[c for c in existing.columns if c not in t.column_names]]) if missing else existing


def merge_table(
    existing: pl.DataFrame, new: pl.DataFrame, table: str
) -> tuple[pl.DataFrame, pl.DataFrame, int]:
    """Merge validated new rows into a table, by key.

    Returns (merged table sorted by key, conflicting new rows with ``__why``, number of
    exact duplicates dropped); :func:`merge_rows` also gives the inserted rows.
    """
    m = merge_rows(existing, new, table)
    return m.table, m.conflicts, m.duplicates


def merge_rows(existing: pl.DataFrame, new: pl.DataFrame, table: str) -> Merged:
    """Merge validated new rows into a table, by key (see the module docstring); extra
    columns ride along."""
    if existing.height:
        existing = upgrade(existing, table)
    key = list(TABLES[table].key)
    content = _content_columns(table)
    others = [c for c in content if c not in key]
    dup_count = 0
    conflicts: list[pl.DataFrame] = []
    # sorted by key with no repeat means no duplicate key: the common case costs one pass
    # (plus a sort when the input is not in key order) instead of a hash-based check
    ordered = _strictly_increasing(new, key)
    if not ordered:
        by_key = new.sort(key)
        ordered = _strictly_increasing(by_key, key)  # sorted now: False means a repeated key
        if ordered:
            new = by_key
        del by_key  # with repeated keys, the input order below decides which row is first
    if not ordered:
        order = [c for c in (SOURCE_NO, ROW) if c in new.columns]
        new = new.sort(order).with_row_index("__ord") if order else new.with_row_index("__ord")
        deduped = new.unique(subset=content, keep="first", maintain_order=True)
        dup_count += new.height - deduped.height
        first = deduped.unique(subset=key, keep="first", maintain_order=True)
        conflicts.append(
            deduped.join(first.select("__ord"), on="__ord", how="anti").with_columns(
                pl.lit("same key with different content as an earlier row of this ingest").alias("__why")
            )
        )
        new = first.drop("__ord").sort(key)
    if existing.height:
        existing = _sorted_by_key(existing, key)
        at = _stored_rows(new, existing, key)
        stored = at >= 0
        if stored.any():
            # compare stored content column by column (exact, and one column in memory at
            # a time) instead of joining every content column
            where = np.flatnonzero(stored)
            old_at = at[where]  # increasing, since both sides are in key order
            same = np.ones(where.shape[0], np.bool_)
            # whole or contiguous stretches (the re-ingest case) compare without a gather
            all_new = where.shape[0] == new.height
            run = int(old_at[-1] - old_at[0] + 1) == old_at.shape[0]
            where_s = None if all_new else pl.Series(where, dtype=pl.UInt32)
            old_s = None if run else pl.Series(old_at, dtype=pl.UInt32)
            for c in others:
                mine = new[c] if where_s is None else new[c].gather(where_s)
                theirs = (
                    existing[c].slice(int(old_at[0]), old_at.shape[0])
                    if old_s is None
                    else existing[c].gather(old_s)
                )
                same &= mine.eq_missing(theirs).to_numpy()
            dup_count += int(same.sum())
            conflicts.append(
                new[where[~same]].with_columns(
                    pl.lit("same key with different content as a row already in the store").alias("__why")
                )
            )
            new = new.filter(pl.Series(~stored))
    extra = [c for c in new.columns if c not in content and c not in (ROW, SOURCE, SOURCE_NO)]
    inserted = new.select([*content, *[c for c in (SOURCE, ROW) if c in new.columns]])
    inserts = new.select([*content, *extra])  # still sorted by key
    if existing.height == 0:
        merged = inserts
    elif inserts.height == 0:
        merged = existing
    elif len(key) == 1 and inserts.schema == existing.schema:
        # two key-sorted frames with disjoint keys: a linear merge instead of a sort
        merged = existing.merge_sorted(inserts, key[0])
    else:
        merged = pl.concat([existing, inserts], how="diagonal_relaxed").sort(key)
    merged = merged.select([*content, *[c for c in merged.columns if c not in content]])
    conflict_df = (
        pl.concat(
            [c.select([x for x in c.columns if x != "__ord"]) for c in conflicts], how="diagonal_relaxed"
        )
        if conflicts
        else pl.DataFrame()
    )
    return Merged(merged, conflict_df, dup_count, inserted)



def _key_text(table: str) -> pl.Expr:
    key = TABLES[table].key
    return pl.concat_str(
        [pl.format("{}='{}'", pl.lit(k), pl.col(k).cast(pl.Utf8)) for k in key], separator=", "
    )



def conflict_frame(
    conflicts: pl.DataFrame, table: str, originals: dict[str, pl.LazyFrame]
) -> pl.DataFrame:
    """Conflicting rows with their original text fields, re-read from their sources."""
    if conflicts.height == 0:
        return pl.DataFrame()
    reason = pl.format(
        "{} row {}: key {}: {}", pl.col(SOURCE), pl.col(ROW), _key_text(table), pl.col("__why")
    )
    why = conflicts.select(SOURCE, ROW, reason.alias(REASON))
    parts = []
    for source, rows in why.group_by(SOURCE, maintain_order=True):
        lf = originals[source[0]]
        if ROW not in lf.collect_schema().names():
            lf = lf.with_row_index(ROW, offset=1)
        text = lf.filter(pl.col(ROW).is_in(rows[ROW].implode())).collect()
        parts.append(
            text.with_columns(pl.lit(source[0]).alias(SOURCE)).join(rows, on=[SOURCE, ROW])
        )
    return quarantine_frame(pl.concat(parts, how="diagonal_relaxed"))
