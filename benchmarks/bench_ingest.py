"""Ingest throughput and peak memory on a large transactions CSV.

    python benchmarks/bench_ingest.py --rows 10000000

Writes a synthetic contract-layout ``transactions.csv`` (ISO timestamps, 2-decimal
amounts) under ``benchmarks/data/`` once, then ingests it into a fresh store in a child
process and reports rows/s and the child's peak RSS (from ``getrusage``). A second
ingest of the same file (all duplicates) is timed too.
"""

from __future__ import annotations

import argparse
import json
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
import sys, time, json
from flowgraph.store import Store
from flowgraph.ingest import ingest_paths
t = time.perf_counter()
rep = ingest_paths(Store.init(sys.argv[1]), [sys.argv[2]])
print(json.dumps({"seconds": time.perf_counter() - t, "loaded": rep["loaded"], "rejected": rep["rejected"]}))
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


def run_child(store: Path, csv: Path) -> dict:
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    out = subprocess.run([sys.executable, "-c", CHILD, str(store), str(csv)], capture_output=True, text=True, check=True)
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    res = json.loads(out.stdout.strip().splitlines()[-1])
    res["peak_rss_mb"] = round(max(peak_kb, before) / 1024, 1)
    return res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--out", type=Path, default=HERE / "out" / "ingest.json")
    args = ap.parse_args()
    csv = HERE / "data" / f"ingest_{args.rows}" / "transactions.csv"
    t = time.perf_counter()
    make_csv(csv, args.rows)
    made = time.perf_counter() - t
    store = HERE / "data" / f"ingest_{args.rows}_store"
    shutil.rmtree(store, ignore_errors=True)
    first = run_child(store, csv)
    again = run_child(store, csv)
    result = {
        "rows": args.rows,
        "csv_mb": round(csv.stat().st_size / 2**20, 1),
        "csv_seconds": round(made, 1),
        "ingest_seconds": round(first["seconds"], 2),
        "rows_per_s": round(args.rows / first["seconds"]),
        "peak_rss_mb": first["peak_rss_mb"],
        "reingest_seconds": round(again["seconds"], 2),
        "reingest_loaded": again["loaded"],
        "machine": f"{platform.machine()} {platform.processor() or ''} cores={__import__('os').cpu_count()}",
        "python": platform.python_version(),
        "polars": pl.__version__,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
