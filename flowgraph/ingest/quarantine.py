"""Quarantine: rejected rows with their source file, row number and reason, written aside."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from flowgraph.core.files import atomic_write_bytes
from flowgraph.ingest.validate import REASON, ROW
from flowgraph.store.embedded import Store

SOURCE = "source_file"
SOURCE_NO = "__source_no"  # position of the source in the ingest, for input order



def quarantine_frame(bad: pl.DataFrame) -> pl.DataFrame:
    cols = [c for c in bad.columns if c not in (ROW, REASON, SOURCE)]
    return bad.select(
        [
            pl.col(SOURCE),
            pl.col(ROW).cast(pl.Int64).alias("row"),
            *[pl.col(c).cast(pl.Utf8) for c in cols],
            pl.col(REASON),
        ]
    )



def write_quarantine(store: Store, ingest_id: str, table: str, frames: list[pl.DataFrame]) -> Path:
    frames = [f for f in frames if f.height]
    out = pl.concat(frames, how="diagonal_relaxed")
    # the quarantine column is "reason"; an input column of that name (classifications
    # has one) is kept as "input.reason"
    out = out.rename({"reason": "input.reason"}) if "reason" in out.columns else out
    out = out.select([*[c for c in out.columns if c != REASON], pl.col(REASON).alias("reason")])
    path = store.root / "quarantine" / ingest_id / f"{table}.csv"
    atomic_write_bytes(path, out.write_csv().encode())
    return path


def write_warnings(store: Store, ingest_id: str, rows: pl.DataFrame) -> Path:
    """``<store>/warnings/<ingest-id>.csv``: the rows loaded with a warning and why."""
    path = store.root / "warnings" / f"{ingest_id}.csv"
    atomic_write_bytes(path, rows.write_csv().encode())
    return path
