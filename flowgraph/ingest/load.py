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
import json
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from flowgraph.core.files import atomic_write_bytes
from flowgraph.ingest.checks import run_checks
from flowgraph.ingest.merge import conflict_frame, merge_rows
from flowgraph.ingest.quarantine import (
    SOURCE,
    SOURCE_NO,
    quarantine_frame,
    write_quarantine,
    write_warnings,
)
from flowgraph.ingest.read import (
    _check_header,
    _read_errors,
    expand_paths,
    read_text_frame,
)
from flowgraph.ingest.validate import validate
from flowgraph.store.embedded import Store

INGEST_LOG = "ingests.jsonl"
# part of every source fingerprint: bump when validation or merge rules change, so that
# the re-ingest shortcut never reuses the outcome of different rules
FINGERPRINT_VERSION = 2



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
        bad_by_table.setdefault(table, []).append(quarantine_frame(bad_df))
    report_tables: dict[str, dict] = {}
    new_frames: dict[str, pl.DataFrame] = {}
    inserted: dict[str, pl.DataFrame] = {}
    quarantine_files: dict[str, str] = {}
    with store.lock():
        before = store.snapshot_id
        rows_before = {t: v["rows"] for t, v in store.status()["tables"].items()}
        for table in sorted(good_by_table):
            if progress:
                progress(f"merging {table}")
            new = pl.concat(good_by_table[table], how="diagonal_relaxed")
            existing = store.read(table)
            m = merge_rows(existing, new, table)
            conflict_df = conflict_frame(m.conflicts, table, originals)
            rejected = [*bad_by_table[table], conflict_df]
            n_rejected = sum(f.height for f in rejected)
            n_loaded = m.table.height - existing.height
            if n_loaded:
                new_frames[table] = m.table
                inserted[table] = m.inserted
            if n_rejected:
                quarantine_files[table] = str(write_quarantine(store, ingest_id, table, rejected))
            report_tables[table] = {"loaded": n_loaded, "rejected": n_rejected, "duplicates": m.duplicates}
        if progress and inserted:
            progress("checking references")

        def current(table: str, columns: list[str]) -> pl.DataFrame:
            return new_frames[table].select(columns) if table in new_frames else store.read(table, columns)

        checks = run_checks(current, rows_before, inserted)
        warned = checks.frame()
        warnings_file = write_warnings(store, ingest_id, warned) if warned.height else None
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
            "warnings": dict(sorted(checks.counts.items())),
            "checks_pending": sorted(set(checks.pending)),
            "warnings_file": str(warnings_file) if warnings_file else None,
            "seconds": round(time.time() - started, 3),
        }
        _log_ingest(store, report, [s for s, _, _ in sources], fingerprint)
    return report


def _log_ingest(
    store: Store, report: dict, sources: list[str], fingerprint: str | Future[str] | None
) -> None:
    record = {k: report[k] for k in ("ingest_id", "snapshot_id", "tables", "loaded", "rejected", "warnings")}
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
        # nothing is inserted, so nothing is checked (the checks look at inserted rows)
        "warnings": {},
        "checks_pending": [],
        "warnings_file": None,
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
    sources = [(str(f), name, read_text_frame(f, name)) for f, name in files]
    # hashing a large file takes a while: do it beside the validation (hashlib releases
    # the GIL); ingest_frames waits for it only when an earlier ingest could match
    with ThreadPoolExecutor(1) as pool:
        fingerprint = pool.submit(sources_fingerprint, files)
        return ingest_frames(store, sources, progress, fingerprint=fingerprint)
