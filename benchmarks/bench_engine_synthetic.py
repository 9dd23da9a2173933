"""Synthetic timing of the index and the flow-back engine.

Builds a random transfer graph (default 10M edges, 200k accounts, 365 days, skewed
account activity, log-normal amounts), times ``build_index``, ``save_index`` and
``load_index``, then scores random disbursements with random 1-4 account target sets
at 1 and 2 threads and single ``find_flow_back`` calls (p50 / p99).

    python benchmarks/bench_engine_synthetic.py [--edges 10000000] [--accounts 200000]
        [--disbursements 20000] [--out benchmarks/out/engine.json]

The first-call latency (JIT, with ``cache=True``) is measured in a fresh subprocess.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from flowgraph.core.values import DAY_MS  # noqa: E402
from flowgraph.engine.csr import build_index, load_index, save_index  # noqa: E402
from flowgraph.engine.flow_back import FlowBackParams, find_flow_back, find_flow_back_batch  # noqa: E402


def make_graph(n_edges: int, n_accounts: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    # skewed activity: account weights ~ Pareto, so a few hubs and a long tail
    w = rng.pareto(1.5, n_accounts) + 1.0
    w /= w.sum()
    cdf = np.cumsum(w)
    src = np.searchsorted(cdf, rng.random(n_edges)).clip(0, n_accounts - 1).astype(np.int32)
    dst = np.searchsorted(cdf, rng.random(n_edges)).clip(0, n_accounts - 1).astype(np.int32)
    ts = np.sort(rng.integers(0, 365 * DAY_MS, n_edges)).astype(np.int64)
    amount = np.round(rng.lognormal(np.log(50_000), 1.5, n_edges)).astype(np.int64) + 1
    ids = np.array([f"ACC{i:09d}" for i in range(n_accounts)])
    return src, dst, ts, amount, ids


def make_disbursements(n: int, n_accounts: int, seed: int = 1):
    rng = np.random.default_rng(seed)
    accounts = rng.integers(0, n_accounts, n)
    t0s = rng.integers(0, 335 * DAY_MS, n)
    amounts = np.round(rng.lognormal(np.log(300_000), 1.0, n)).astype(np.int64) + 100
    sizes = rng.integers(1, 5, n)
    tindptr = np.zeros(n + 1, np.int64)
    np.cumsum(sizes, out=tindptr[1:])
    tids = rng.integers(0, n_accounts, int(tindptr[-1]))
    return accounts, t0s, amounts, tindptr, tids


FIRST_CALL = r"""
import sys, time
t = time.perf_counter()
sys.path.insert(0, {root!r})
import numpy as np
from flowgraph.engine.csr import load_index
from flowgraph.engine.flow_back import FlowBackParams, find_flow_back
idx, _ = load_index({path!r})
t1 = time.perf_counter()
r = find_flow_back(idx, 0, 0, 100_000, np.array([1, 2]), FlowBackParams())
t2 = time.perf_counter()
print(t1 - t, t2 - t1)
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--edges", type=int, default=10_000_000)
    ap.add_argument("--accounts", type=int, default=200_000)
    ap.add_argument("--disbursements", type=int, default=20_000)
    ap.add_argument("--singles", type=int, default=2_000)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    out: dict = {"edges": args.edges, "accounts": args.accounts}
    params = FlowBackParams(window_ms=30 * DAY_MS, max_hops=5)
    out["params"] = params.__dict__

    t = time.perf_counter()
    src, dst, ts, amount, ids = make_graph(args.edges, args.accounts)
    print(f"generated graph in {time.perf_counter() - t:.1f}s", file=sys.stderr)
    build_index(src[:1000], dst[:1000], ts[:1000], amount[:1000], ids)  # JIT warm-up
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        idx = build_index(src, dst, ts, amount, ids)
        best = min(best, time.perf_counter() - t)
    out["build_s"] = best
    out["build_edges_per_s"] = args.edges / best

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "index"
        t = time.perf_counter()
        save_index(idx, path, {"bench": True})
        out["save_s"] = time.perf_counter() - t
        t = time.perf_counter()
        idx, _ = load_index(path)
        out["load_s"] = time.perf_counter() - t

        # first call in a fresh process (numba cache on disk already warm from above? no:
        # the first subprocess may compile; the second one shows the cached latency)
        for label in ("first_call_process_1", "first_call_process_2"):
            code = FIRST_CALL.format(root=str(ROOT), path=str(path))
            r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
            imp, call = (float(x) for x in r.stdout.split())
            out[label] = {"import_and_load_s": imp, "first_find_flow_back_s": call}

        acc, t0s, amts, tindptr, tids = make_disbursements(args.disbursements, args.accounts)
        find_flow_back_batch(idx, acc[:50], t0s[:50], amts[:50], tindptr[:51], tids, params, 1)
        for threads in (1, 2):
            t = time.perf_counter()
            b = find_flow_back_batch(idx, acc, t0s, amts, tindptr, tids, params, threads=threads)
            dt = time.perf_counter() - t
            out[f"batch_{threads}t_disb_per_s"] = args.disbursements / dt
            out[f"batch_{threads}t_s"] = dt
        out["disbursements_with_paths"] = int((b.path_count > 0).sum())
        out["paths_total"] = int(b.path_count.sum())
        out["truncated"] = int(b.truncated.sum())

        lat = []
        for i in range(args.singles):
            targets = tids[tindptr[i] : tindptr[i + 1]]
            t = time.perf_counter()
            find_flow_back(idx, int(acc[i]), int(t0s[i]), int(amts[i]), targets, params)
            lat.append(time.perf_counter() - t)
        lat_ms = np.array(lat) * 1e3
        out["single_p50_ms"] = float(np.percentile(lat_ms, 50))
        out["single_p99_ms"] = float(np.percentile(lat_ms, 99))
        out["single_max_ms"] = float(lat_ms.max())

    print(json.dumps(out, indent=2))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
