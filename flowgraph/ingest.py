"""Ingest files into the store: read, validate, quarantine, dedupe, swap atomically.

>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> _ = (d / "transactions.csv").write_text(
...     "tx_id,ts,src_account,dst_account,amount\\n"
...     "t1,2024-01-01,a,b,10.00\\n"
...     "t2,yesterday,a,b,5\\n")
>>> store = Store.init(d / "store")
>>> report = ingest_paths(store, [d / "transactions.csv"])
>>> report["tables"]["transactions"]
{'loaded': 1, 'rejected': 1, 'duplicates': 0}
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from .schema import TABLE_NAMES, TABLES
from .store import Store, atomic_write_bytes
from .validate import REASON, ROW, validate

SOURCE = "source_file"
SOURCE_NO = "__source_no"  # position of the source in the ingest, for input order
_ALIASES = {name: (name, name.rstrip("s")) for name in TABLE_NAMES}
_ALIASES["classifications"] += ("classification", "grades")


class IngestError(Exception):
    """A file that cannot be read at all (unknown table, missing required column, ...)."""


def table_for_file(path: Path) -> str | None:
    """Recognise the table from a file name: ``transactions.csv``, ``account_2024.parquet``…"""
    stem = path.name.split(".")[0].lower()
    for name, aliases in _ALIASES.items():
        if any(stem == a or stem.startswith(a + "_") or stem.startswith(a + "-") for a in aliases):
            return name
    return None


def detect_delimiter(path: Path) -> str:
    with open(path, encoding="utf-8", errors="replace") as f:
        header = f.readline()
    return "|" if header.count("|") > header.count(",") else ","


def read_text_frame(path: Path) -> pl.LazyFrame:
    """A CSV or Parquet file as a lazy frame of text columns (Parquet datetimes → epoch ms)."""
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        lf = pl.scan_parquet(path)
        schema = lf.collect_schema()
        casts = []
        for name, dtype in schema.items():
            if isinstance(dtype, pl.Datetime):
                expr = pl.col(name).dt.replace_time_zone(None) if dtype.time_zone else pl.col(name)
                casts.append(expr.dt.epoch("ms").cast(pl.Utf8).alias(name))
            elif isinstance(dtype, pl.Date):
                casts.append(pl.col(name).cast(pl.Datetime("ms")).dt.epoch("ms").cast(pl.Utf8))
            else:
                casts.append(pl.col(name).cast(pl.Utf8))
        return lf.select(casts)
    if suffix in (".csv", ".txt", ".psv", ".tsv") or suffix == "":
        sep = "\t" if suffix == ".tsv" else detect_delimiter(path)
        return pl.scan_csv(path, separator=sep, infer_schema=False, encoding="utf8")
    raise IngestError(f"{path}: unsupported file type {suffix!r} (use CSV or Parquet)")


def _check_header(lf: pl.LazyFrame, table: str, source: str) -> None:
    names = set(lf.collect_schema().names())
    t = TABLES[table]
    missing = [c.name for c in t.required_columns if c.name not in names and c.name not in t.derived]
    if missing:
        raise IngestError(
            f"{source}: missing required column(s) {', '.join(missing)} for table {table}"
            f" (has: {', '.join(sorted(names))})"
        )


def _content_columns(table: str) -> list[str]:
    return TABLES[table].column_names


def merge_table(
    existing: pl.DataFrame, new: pl.DataFrame, table: str
) -> tuple[pl.DataFrame, pl.DataFrame, int]:
    """Merge validated new rows into a table, by key.

    Returns (merged table sorted by key, conflicting new rows with ``__why``, number of
    exact duplicates dropped). Rows already present win over new rows with the same key
    and different content; among new rows the first in input order wins. Only the
    contract columns count as content; extra columns ride along.
    """
    key = list(TABLES[table].key)
    content = _content_columns(table)
    others = [c for c in content if c not in key]
    dup_count = 0
    conflicts: list[pl.DataFrame] = []
    if new.select(pl.struct(key).is_duplicated().any()).item():
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
        new = first.drop("__ord")
    if existing.height:
        seen = new.join(existing.select(key), on=key, how="semi", nulls_equal=True)
        if seen.height:
            old = existing.select(content).rename({c: f"{c}__old" for c in others})
            cmp = seen.join(old, on=key, how="left", nulls_equal=True)
            same = pl.all_horizontal([pl.col(c).eq_missing(pl.col(f"{c}__old")) for c in others] or [pl.lit(True)])
            cmp = cmp.with_columns(same.alias("__same"))
            dup_count += cmp.filter("__same").height
            conflicts.append(
                cmp.filter(~pl.col("__same"))
                .select(new.columns)
                .with_columns(
                    pl.lit("same key with different content as a row already in the store").alias("__why")
                )
            )
            new = new.join(existing.select(key), on=key, how="anti", nulls_equal=True)
    extra = [c for c in new.columns if c not in content and c not in (ROW, SOURCE, SOURCE_NO)]
    inserts = new.select([*content, *extra])
    if existing.height == 0:
        merged = inserts.sort(key)
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
    return merged, conflict_df, dup_count


def _key_text(table: str) -> pl.Expr:
    key = TABLES[table].key
    return pl.concat_str(
        [pl.format("{}='{}'", pl.lit(k), pl.col(k).cast(pl.Utf8)) for k in key], separator=", "
    )


def _quarantine_frame(bad: pl.DataFrame) -> pl.DataFrame:
    cols = [c for c in bad.columns if c not in (ROW, REASON, SOURCE)]
    return bad.select(
        [
            pl.col(SOURCE),
            pl.col(ROW).cast(pl.Int64).alias("row"),
            *[pl.col(c).cast(pl.Utf8) for c in cols],
            pl.col(REASON),
        ]
    )


def _conflict_frame(
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
    return _quarantine_frame(pl.concat(parts, how="diagonal_relaxed"))


def _write_quarantine(store: Store, ingest_id: str, table: str, frames: list[pl.DataFrame]) -> Path:
    frames = [f for f in frames if f.height]
    out = pl.concat(frames, how="diagonal_relaxed")
    # the quarantine column is "reason"; an input column of that name (classifications
    # has one) is kept as "input.reason"
    out = out.rename({"reason": "input.reason"}) if "reason" in out.columns else out
    out = out.select([*[c for c in out.columns if c != REASON], pl.col(REASON).alias("reason")])
    path = store.root / "quarantine" / ingest_id / f"{table}.csv"
    atomic_write_bytes(path, out.write_csv().encode())
    return path


def expand_paths(paths: Iterable[Path], table: str | None) -> list[tuple[Path, str]]:
    """Files to ingest with their tables; folders are expanded (unknown files skipped)."""
    out: list[tuple[Path, str]] = []
    for p in paths:
        p = Path(p)
        if not p.exists():
            raise IngestError(f"{p}: no such file or folder")
        files = sorted(x for x in p.iterdir() if x.is_file()) if p.is_dir() else [p]
        for f in files:
            if f.name.startswith("."):
                continue
            name = table or table_for_file(f)
            if name is None:
                if p.is_dir():
                    continue
                raise IngestError(
                    f"{f}: cannot tell which table this file holds; name it after a table "
                    f"({', '.join(TABLE_NAMES)}) or pass --table"
                )
            if name not in TABLES:
                raise IngestError(f"unknown table {name!r}; tables: {', '.join(TABLE_NAMES)}")
            out.append((f, name))
    if not out:
        raise IngestError("no table files found in " + ", ".join(str(p) for p in paths))
    return out


def ingest_frames(
    store: Store,
    sources: list[tuple[str, str, pl.LazyFrame]],
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Validate and load text frames ``(source name, table, frame)`` in one atomic swap."""
    started = time.time()
    digest = hashlib.sha256("\n".join(f"{s}:{t}" for s, t, _ in sources).encode()).hexdigest()
    ingest_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ") + "-" + digest[:8]
    originals = {source: lf for source, _, lf in sources}
    good_by_table: dict[str, list[pl.DataFrame]] = {}
    bad_by_table: dict[str, list[pl.DataFrame]] = {}
    for source, table, lf in sources:
        if progress:
            progress(f"validating {source} as {table}")
        _check_header(lf, table, source)
        good, bad = validate(lf, table, source)
        tag = [pl.lit(source).alias(SOURCE), pl.lit(len(good_by_table.get(table, []))).alias(SOURCE_NO)]
        good_df, bad_df = pl.collect_all(
            [good.with_columns(tag), bad.with_columns(pl.lit(source).alias(SOURCE))],
            engine="streaming",
        )
        good_by_table.setdefault(table, []).append(good_df)
        bad_by_table.setdefault(table, []).append(_quarantine_frame(bad_df))
    report_tables: dict[str, dict] = {}
    new_frames: dict[str, pl.DataFrame] = {}
    quarantine_files: dict[str, str] = {}
    with store.lock():
        before = store.snapshot_id
        for table in sorted(good_by_table):
            if progress:
                progress(f"merging {table}")
            new = pl.concat(good_by_table[table], how="diagonal_relaxed")
            existing = store.read(table)
            merged, conflicts, dups = merge_table(existing, new, table)
            conflict_df = _conflict_frame(conflicts, table, originals)
            rejected = [*bad_by_table[table], conflict_df]
            n_rejected = sum(f.height for f in rejected)
            n_loaded = merged.height - existing.height
            if n_loaded:
                new_frames[table] = merged
            if n_rejected:
                quarantine_files[table] = str(_write_quarantine(store, ingest_id, table, rejected))
            report_tables[table] = {"loaded": n_loaded, "rejected": n_rejected, "duplicates": dups}
        if new_frames:
            manifest = store.write_tables(new_frames)
        else:
            manifest = store.manifest()
        report = {
            "ingest_id": ingest_id,
            "snapshot_id": manifest["snapshot_id"],
            "previous_snapshot_id": before,
            "changed": manifest["snapshot_id"] != before,
            "tables": report_tables,
            "quarantine": quarantine_files,
            "loaded": sum(t["loaded"] for t in report_tables.values()),
            "rejected": sum(t["rejected"] for t in report_tables.values()),
            "seconds": round(time.time() - started, 3),
        }
        store.append_log(
            "ingests.jsonl",
            {k: report[k] for k in ("ingest_id", "snapshot_id", "tables", "loaded", "rejected")}
            | {"sources": [s for s, _, _ in sources]},
        )
    return report


def ingest_paths(
    store: Store,
    paths: Iterable[Path],
    table: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Ingest CSV/Parquet files or folders of them (see :func:`ingest_frames`)."""
    sources = [(str(f), name, read_text_frame(f)) for f, name in expand_paths(paths, table)]
    return ingest_frames(store, sources, progress)
