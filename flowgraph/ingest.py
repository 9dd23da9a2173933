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

import contextlib
import hashlib
import json
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl
from numba import njit

from .schema import TABLE_NAMES, TABLES
from .store import Store, atomic_write_bytes
from .validate import REASON, ROW, text_buffers, validate

SOURCE = "source_file"
INGEST_LOG = "ingests.jsonl"
# part of every source fingerprint: bump when validation or merge rules change, so that
# the re-ingest shortcut never reuses the outcome of different rules
FINGERPRINT_VERSION = 1
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
        with _read_errors(str(path), "Parquet"):
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


@contextlib.contextmanager
def _read_errors(source: str, table: str) -> Iterator[None]:
    """A file polars cannot read becomes an IngestError naming it (and nothing is loaded)."""
    try:
        yield
    except pl.exceptions.NoDataError:
        raise IngestError(f"{source}: empty file (a {table} file needs at least a header row)") from None
    except (pl.exceptions.PolarsError, UnicodeDecodeError, OSError) as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        hint = ""
        if "utf-8" in first.lower() or "utf8" in first.lower():
            hint = " — the file is not UTF-8 text; convert it first (e.g. iconv -f GBK -t UTF-8)"
        elif "parquet" in source.lower() and ("cast" in first.lower() or "nested" in first.lower()):
            hint = " — Parquet columns must be plain values (text, numbers, dates), not lists or structs"
        raise IngestError(f"{source}: cannot read as a {table} table: {first}{hint}") from None


def _check_header(lf: pl.LazyFrame, table: str, source: str) -> None:
    all_names = lf.collect_schema().names()
    # polars renames a repeated header "x" to "x_duplicated_0": which of them is meant?
    repeated = sorted({n.rsplit("_duplicated_", 1)[0] for n in all_names if "_duplicated_" in n})
    if repeated:
        raise IngestError(f"{source}: column(s) {', '.join(repeated)} appear more than once in the header")
    if any(not n.strip() for n in all_names):
        raise IngestError(f"{source}: a column of the header has no name")
    names = set(all_names)
    t = TABLES[table]
    missing = [c.name for c in t.required_columns if c.name not in names and c.name not in t.derived]
    if missing:
        raise IngestError(
            f"{source}: missing required column(s) {', '.join(missing)} for table {table}"
            f" (has: {', '.join(sorted(names))})"
        )


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
    fingerprint: str | Future[str] | None = None,
) -> dict:
    """Validate and load text frames ``(source name, table, frame)`` in one atomic swap.

    ``fingerprint`` identifies the exact content of ``sources`` (see
    :func:`sources_fingerprint`). When given, and an earlier ingest of the same content
    left the store at the snapshot it still has, the outcome is known without reading
    the data: nothing loads, every row loaded then is a duplicate now, the same rows are
    rejected for the same reasons (their quarantine file is copied). It may be a future
    (the hash of large files is computed in a thread while validation runs); it is only
    waited for when the log holds an ingest that left the store at its current snapshot.
    """
    started = time.time()
    digest = hashlib.sha256("\n".join(f"{s}:{t}" for s, t, _ in sources).encode()).hexdigest()
    ingest_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ") + "-" + digest[:8]
    if fingerprint is not None:
        with store.lock():
            report = _repeat_ingest(store, fingerprint, ingest_id, [s for s, _, _ in sources])
        if report is not None:
            report["seconds"] = round(time.time() - started, 3)
            return report
    originals = {source: lf for source, _, lf in sources}
    good_by_table: dict[str, list[pl.DataFrame]] = {}
    bad_by_table: dict[str, list[pl.DataFrame]] = {}
    for source, table, lf in sources:
        if progress:
            progress(f"validating {source} as {table}")
        with _read_errors(source, table):
            _check_header(lf, table, source)
            good_df, bad_df = validate(lf, table, source)
        tag = [pl.lit(source).alias(SOURCE), pl.lit(len(good_by_table.get(table, []))).alias(SOURCE_NO)]
        good_df = good_df.with_columns(tag)
        bad_df = bad_df.with_columns(pl.lit(source).alias(SOURCE))
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
            if progress:
                progress(f"writing {', '.join(sorted(new_frames))}")
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
        _log_ingest(store, report, [s for s, _, _ in sources], fingerprint)
    return report


def _log_ingest(
    store: Store, report: dict, sources: list[str], fingerprint: str | Future[str] | None
) -> None:
    record = {k: report[k] for k in ("ingest_id", "snapshot_id", "tables", "loaded", "rejected")}
    record["sources"] = sources
    if fingerprint is not None:
        record["fingerprint"] = fingerprint if isinstance(fingerprint, str) else fingerprint.result()
        record["quarantine"] = {
            t: str(Path(p).relative_to(store.root)) for t, p in report["quarantine"].items()
        }
    store.append_log(INGEST_LOG, record)


def _repeat_ingest(
    store: Store, fingerprint: str | Future[str], ingest_id: str, sources: list[str]
) -> dict | None:
    """The report of re-ingesting already ingested content into an unchanged store, or
    None when that cannot be known without reading the data. Call under the lock.

    Re-ingesting sources S into the snapshot that ingesting S produced changes nothing:
    validation is deterministic, so the same rows are rejected with the same reasons;
    rows that conflicted (within S, or with a row already stored) conflict again, since
    stored rows win; every row that was loaded or was a duplicate is a duplicate.
    """
    snapshot = store.snapshot_id
    log = store.root / INGEST_LOG
    if not log.exists():
        return None
    records = []
    with open(log, encoding="utf-8") as f:
        for line in f:
            try:
                records.append(json.loads(line))
            except ValueError:  # a line cut short by a crash
                continue
    # only an ingest that left the store as it is now can match: without one, do not
    # wait for the (possibly still running) hash of the sources
    if not any(r.get("fingerprint") and r.get("snapshot_id") == snapshot for r in records):
        return None
    if not isinstance(fingerprint, str):
        fingerprint = fingerprint.result()
    previous = None
    for record in records:
        if record.get("fingerprint") == fingerprint:
            previous = record  # the latest one counts
    if previous is None or previous.get("snapshot_id") != snapshot:
        return None
    tables = previous["tables"]
    # the same checks as the full path, which reads these tables: a missing or damaged
    # table file raises StoreError here too instead of being reported as unchanged
    for table in tables:
        store.scan(table)
    old_quarantine = {t: store.root / p for t, p in previous.get("quarantine", {}).items()}
    if any(v["rejected"] and t not in old_quarantine for t, v in tables.items()):
        return None
    if not all(p.exists() for p in old_quarantine.values()):
        return None
    quarantine: dict[str, str] = {}
    for table, path in old_quarantine.items():
        target = store.root / "quarantine" / ingest_id / f"{table}.csv"
        atomic_write_bytes(target, path.read_bytes())
        quarantine[table] = str(target)
    report_tables = {
        t: {"loaded": 0, "rejected": v["rejected"], "duplicates": v["duplicates"] + v["loaded"]}
        for t, v in tables.items()
    }
    report = {
        "ingest_id": ingest_id,
        "snapshot_id": snapshot,
        "previous_snapshot_id": snapshot,
        "changed": False,
        "tables": report_tables,
        "quarantine": quarantine,
        "loaded": 0,
        "rejected": sum(t["rejected"] for t in report_tables.values()),
        "same_as": previous["ingest_id"],
    }
    _log_ingest(store, report, sources, fingerprint)
    return report


def sources_fingerprint(files: list[tuple[Path, str]]) -> str:
    """SHA-256 over each file's source name, table and bytes, and the validation version."""
    h = hashlib.sha256(f"flowgraph-ingest/{FINGERPRINT_VERSION}\n".encode())
    for path, table in files:
        h.update(f"{path}\0{table}\0".encode())
        with open(path, "rb") as f:
            h.update(hashlib.file_digest(f, "sha256").digest())
    return h.hexdigest()


def ingest_paths(
    store: Store,
    paths: Iterable[Path],
    table: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Ingest CSV/Parquet files or folders of them (see :func:`ingest_frames`)."""
    files = expand_paths(paths, table)
    sources = [(str(f), name, read_text_frame(f)) for f, name in files]
    # hashing a large file takes a while: do it beside the validation (hashlib releases
    # the GIL); ingest_frames waits for it only when an earlier ingest could match
    with ThreadPoolExecutor(1) as pool:
        fingerprint = pool.submit(sources_fingerprint, files)
        return ingest_frames(store, sources, progress, fingerprint=fingerprint)
