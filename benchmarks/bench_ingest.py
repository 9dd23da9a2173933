"""Ingest throughput and peak memory on a large transactions CSV.

    python benchmarks/bench_ingest.py --rows 10000000

Writes a synthetic contract-layout ``transactions.csv`` (ISO timestamps, 2-decimal
amounts) under ``benchmarks/data/`` once, then ingests it into a fresh store in a child
process and reports rows/s and the child's peak RSS (from ``getrusage``). A second
ingest of the same file (all duplicates) is timed too: once as ``ingest_paths`` does it
(the re-ingest shortcut: file hash + unchanged snapshot), once through ``ingest_frames``
without a fingerprint, which reads, validates and merges every row again. The 1-minute
load average is recorded before each child, since the machine may be shared.

``--accounts`` first loads an accounts table naming the 200k accounts (not timed), so the
ingest also runs the reference check of every transaction's two accounts (issue #21; its
time is the "checking references" stage).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl

HERE = Path(__file__).resolve().parent
CHILD = """
import sys, time, json, resource
from pathlib import Path
from flowgraph.store.embedded import Store
from flowgraph.ingest.load import ingest_frames, ingest_paths
from flowgraph.ingest.read import read_text_frame
def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
stages = []  # (message, wall s, CPU s since the start) at each progress message
def progress(msg):
    stages.append((msg, time.perf_counter() - t, cpu() - c))
t, c = time.perf_counter(), cpu()
store, csv = Store.init(sys.argv[1]), Path(sys.argv[2])
if sys.argv[3] == "full":
    rep = ingest_frames(store, [(str(csv), "transactions", read_text_frame(csv))], progress)
else:
    rep = ingest_paths(store, [csv], progress=progress)
progress("done")
print(json.dumps({"seconds": time.perf_counter() - t, "cpu_seconds": cpu() - c, "stages": stages,
                  "loaded": rep["loaded"], "rejected": rep["rejected"],
                  "duplicates": rep["tables"]["transactions"]["duplicates"], "shortcut": "same_as" in rep}))
"""


def make_csv(path: Path, rows: int, seed: int = 0) -> None:
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    chunk = 2_000_000
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as f:
        for start in range(0, rows, chunk):
            n = min(chunk, rows - start)
            ids = np.arange(start, start + n)
            ts = 1_704_067_200_000 + np.sort(rng.integers(0, 365 * 86_400_000, n))
            cents = pl.Series(rng.integers(1, 10_000_000, n))
            df = pl.DataFrame(
                {
                    "tx_id": pl.Series(ids).cast(pl.Utf8).str.pad_start(10, "0"),
                    "ts": pl.Series(ts).cast(pl.Datetime("ms")).dt.strftime("%Y-%m-%dT%H:%M:%S%.3fZ"),
                    "src_account": pl.Series(rng.integers(0, 200_000, n)).cast(pl.Utf8),
                    "dst_account": pl.Series(rng.integers(0, 200_000, n)).cast(pl.Utf8),
                    "amount": (cents // 100).cast(pl.Utf8)
                    + "."
                    + (cents % 100).cast(pl.Utf8).str.pad_start(2, "0"),
                    "currency": ["CNY"] * n,
                    "channel": ["transfer"] * n,
                }
            )
            df.write_csv(f, include_header=start == 0)
    tmp.rename(path)


def run_child(store: Path, csv: Path, mode: str = "paths") -> dict:
    load = os.getloadavg()[0]
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    out = subprocess.run([sys.executable, "-c", CHILD, str(store), str(csv), mode], capture_output=True, text=True, check=True)
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    res = json.loads(out.stdout.strip().splitlines()[-1])
    res["peak_rss_mb"] = round(max(peak_kb, before) / 1024, 1)
    res["load_before"] = round(load, 2)
    return res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--out", type=Path, default=HERE / "out" / "ingest.json")
    ap.add_argument("--accounts", action="store_true", help="load the accounts table first (reference checks run)")
    args = ap.parse_args()
    csv = HERE / "data" / f"ingest_{args.rows}" / "transactions.csv"
    t = time.perf_counter()
    make_csv(csv, args.rows)
    made = time.perf_counter() - t
    store = HERE / "data" / f"ingest_{args.rows}_store"
    shutil.rmtree(store, ignore_errors=True)
    if args.accounts:
        accounts = csv.parent / "accounts" / "accounts.csv"
        accounts.parent.mkdir(exist_ok=True)
        ids = pl.Series(range(200_000)).cast(pl.Utf8)
        pl.DataFrame({"account_id": ids, "owner_id": "p" + ids}).write_csv(accounts)
        from flowgraph.ingest.load import ingest_paths
        from flowgraph.store.embedded import Store

        ingest_paths(Store.init(store), [accounts])
    first = run_child(store, csv)
    again = run_child(store, csv)
    full = run_child(store, csv, "full")
    result = {
        "rows": args.rows,
        "accounts_loaded_first": args.accounts,
        "csv_mb": round(csv.stat().st_size / 2**20, 1),
        "csv_seconds": round(made, 1),
        "ingest_seconds": round(first["seconds"], 2),
        "ingest_cpu_seconds": round(first["cpu_seconds"], 2),
        "ingest_stages": first["stages"],
        "rows_per_s": round(args.rows / first["seconds"]),
        "peak_rss_mb": first["peak_rss_mb"],
        "peak_rss_mb_all_runs": full["peak_rss_mb"],
        "load_before": first["load_before"],
        "reingest_seconds": round(again["seconds"], 2),
        "reingest_loaded": again["loaded"],
        "reingest_shortcut": again["shortcut"],
        "reingest_load_before": again["load_before"],
        "reingest_full_seconds": round(full["seconds"], 2),
        "reingest_full_cpu_seconds": round(full["cpu_seconds"], 2),
        "reingest_full_stages": full["stages"],
        "reingest_full_loaded": full["loaded"],
        "reingest_full_duplicates": full["duplicates"],
        "reingest_full_load_before": full["load_before"],
        "machine": f"{platform.machine()} {platform.processor() or ''} cores={os.cpu_count()}",
        "python": platform.python_version(),
        "polars": pl.__version__,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
