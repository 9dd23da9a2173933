"""Alert partitions: ``<store>/alerts/date=D/alerts.parquet`` + ``_manifest.json``.

A partition is written aside and swapped into place under the store's lock, so a reader
sees the old or the new alerts of a day. When a writer is killed in the middle of the
swap, whoever takes the lock next puts the previous partition back
(:meth:`Store.clean_leftovers`); :func:`read_alerts` takes the lock itself when it finds
such a gap, so it never answers "no alerts" for a day whose swap was cut.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from datetime import date
from pathlib import Path

import polars as pl

from flowgraph.core.errors import StoreError
from flowgraph.core.files import replace_directory
from flowgraph.core.values import format_amount, format_ts
from flowgraph.graph.hops import hop_json
from flowgraph.store.embedded import Store

HOP = pl.Struct({"tx_id": pl.Utf8, "src": pl.Utf8, "dst": pl.Utf8, "ts": pl.Int64, "amount": pl.Int64})



PATH = pl.Struct({"hops": pl.List(HOP)})



ALERT_SCHEMA: dict[str, pl.DataType] = {
    "alert_id": pl.Utf8(),
    "loan_id": pl.Utf8(),
    "disbursement_id": pl.Utf8(),
    "borrower_id": pl.Utf8(),
    "account": pl.Utf8(),
    "disbursed_amount": pl.Int64(),
    "disbursed_ts": pl.Int64(),
    "rule_id": pl.Utf8(),
    "rule_name": pl.Utf8(),
    "kind": pl.Utf8(),
    "rule_version": pl.Utf8(),
    "ruleset_id": pl.Utf8(),
    "ruleset_hash": pl.Utf8(),
    "score": pl.Float64(),
    "level": pl.Utf8(),
    "returned_amount": pl.Int64(),
    "return_ratio": pl.Float64(),
    "first_return_ts": pl.Int64(),
    "path_count": pl.Int64(),
    "min_hops": pl.Int64(),
    "truncated": pl.Boolean(),
    "paths": pl.List(PATH),
    "reasons": pl.List(pl.Utf8),
    "as_of": pl.Utf8(),
    "scored_at": pl.Int64(),
}






def alert_id_of(rule_id: str, disbursement_id: str) -> str:
    """Stable across runs and days: one alert per (rule, disbursement)."""
    return hashlib.sha256(f"{rule_id}\0{disbursement_id}".encode()).hexdigest()[:24]



def partition_dir(store: Store, day: date) -> Path:
    return store.root / "alerts" / f"date={day.isoformat()}"



def write_partition(store: Store, day: date, alerts: pl.DataFrame, manifest: dict) -> Path:
    """Write a date partition aside, then swap it into place (under the store's lock, so
    the next writer knows that leftovers it finds belong to a killed run)."""
    final = partition_dir(store, day)
    with store.lock():
        final.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.tmp-"))
        try:
            alerts.write_parquet(tmp / "alerts.parquet", compression="zstd", statistics=True)
            (tmp / "_manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
            replace_directory(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return final



# ------------------------------------------------------------------ reading alerts
def read_alerts(
    store: Store, day: date | None = None, level: str | None = None, rule: str | None = None,
    loan: str | None = None, latest: bool = True, until: date | None = None,
) -> pl.DataFrame:
    """Alerts of one partition, or of all (latest as_of per alert when ``latest``);
    ``until`` keeps only what was known at the end of that day (partitions up to it)."""
    base = store.root / "alerts"
    if store.interrupted_swaps(base):
        # a partition is being replaced right now, or its writer was killed in the middle:
        # wait for the lock (a live writer finishes its swap), which also rolls back the swap
        # of a dead one (Store.clean_leftovers) — never answer "no alerts" for a cut swap
        with store.lock():
            pass
        if cut := store.interrupted_swaps(base):
            raise StoreError(f"{base}: alert partition(s) {', '.join(cut)} are missing (a `score` run was"
                             " killed while replacing them) and could not be put back; see docs/security.md")
    files = [partition_dir(store, day) / "alerts.parquet"] if day else sorted(base.glob("date=*/alerts.parquet"))
    if until is not None:
        files = [f for f in files if f.parent.name[len("date="):] <= until.isoformat()]
    files = [f for f in files if f.exists()]
    if not files:
        return pl.DataFrame(schema=ALERT_SCHEMA)
    df = pl.concat([pl.read_parquet(f) for f in files], how="vertical_relaxed")
    if latest and day is None:
        df = df.sort("as_of").unique(subset=["alert_id"], keep="last")
    if level:
        df = df.filter(pl.col("level") == level)
    if rule:
        df = df.filter(pl.col("rule_id") == rule)
    if loan:
        df = df.filter(pl.col("loan_id") == loan)
    return df.sort(["score", "alert_id"], descending=[True, False])



def alert_json(row: dict) -> dict:
    """An alert row → DESIGN.md JSON: amounts as decimal strings, times ISO-8601 UTC."""
    def ts(x):
        return format_ts(x) if x is not None and x >= 0 else None

    def amt(x):
        return format_amount(x) if x is not None else None

    out = dict(row)
    out["disbursed_amount"] = amt(row["disbursed_amount"])
    out["disbursed_ts"] = ts(row["disbursed_ts"])
    out["returned_amount"] = amt(row["returned_amount"])
    out["first_return_ts"] = ts(row["first_return_ts"])
    out["scored_at"] = ts(row["scored_at"])
    out["paths"] = [
        {"hops": [hop_json(h) for h in p["hops"]]}
        for p in row["paths"] or []
    ]
    return out
