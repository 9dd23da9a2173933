"""Forward flow (资金流向) on a generated bank: kernel throughput, answers vs. the reference,
and `flowgraph flow LOAN --json` from the shell (issue #16).

    PYTHONPATH=. python benchmarks/bench_forward_flow.py [--scale small] [--seed 0] [--ref-sample 30]

Generates and ingests ``benchmarks/data/<scale>-<seed>`` once (as the other benchmarks),
then, in this process:

- kernel: ``find_forward_flow_many`` over every disbursement with the default pack's
  parameters (30 days, 5 hops, ratio 0.1) and with a low floor (ratio 0.01, more and
  longer flows); the first call (JIT cache load) apart; total, p50 / p99 per
  disbursement, transfers found;
- kernel, no floor: 200 random (account, time) starts, no amount floor, 365 days, 8 hops
  (ratio 0): the reachable sets are large;
- reference: ``find_forward_flow_reference`` on a random sample (ratio 0.01), every
  answer compared with the kernel's;
- cli: ``flowgraph flow LOAN --json`` started from the shell for 5 loans (wall time).

Prints JSON and writes ``benchmarks/out/forward_flow_<scale>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def _prepare(scale: str, seed: int):
    from flowgraph.graph.store_index import load_or_build_index
    from flowgraph.ingest.load import ingest_paths
    from flowgraph.store.embedded import Store
    from flowgraph.synthetic.generate import generate

    data = HERE / "data" / f"{scale}-{seed}"
    store_dir = HERE / "data" / f"{scale}-{seed}-store"
    if not (data / "transactions.csv").exists() and not (data / "transactions.parquet").exists():
        generate(data, scale, seed=seed)
    if not (store_dir / "manifest.json").exists():
        ingest_paths(Store.init(store_dir), [data])
    store = Store.open(store_dir)
    index, _ = load_or_build_index(store)
    return store, index


def _kernel(index, accounts, t0s, amounts, params) -> dict:
    import numpy as np

    from flowgraph.engine.forward_flow import find_forward_flow_many

    t = time.perf_counter()
    find_forward_flow_many(index, accounts[:1], t0s[:1], amounts[:1], params)
    first = time.perf_counter() - t
    per, edges, hops = [], 0, 0
    t_all = time.perf_counter()
    for d, t0, a in zip(accounts, t0s, amounts, strict=True):
        t = time.perf_counter()
        res = find_forward_flow_many(index, [d], [t0], [a], params)[0]
        per.append(time.perf_counter() - t)
        edges += len(res)
        hops = max(hops, int(res.hops.max()) if len(res) else 0)
    total = time.perf_counter() - t_all
    ms = np.array(per) * 1000
    return {"disbursements": len(per), "first_call_s": round(first, 3), "total_s": round(total, 3),
            "p50_ms": round(float(np.percentile(ms, 50)), 3), "p99_ms": round(float(np.percentile(ms, 99)), 3),
            "max_ms": round(float(ms.max()), 3), "transfers_found": edges, "deepest_hop": hops}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", default="small")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--ref-sample", type=int, default=30)
    args = ap.parse_args()
    from flowgraph.core.values import DAY_MS
    from flowgraph.engine.forward_flow import ForwardFlowParams, find_forward_flow_many
    from flowgraph.engine.forward_flow_reference import find_forward_flow_reference
    from flowgraph.graph.store_index import AccountLookup

    t = time.perf_counter()
    store, index = _prepare(args.scale, args.seed)
    prep = time.perf_counter() - t
    disb = store.read("disbursements").sort("disbursement_id")
    accounts = AccountLookup(index.account_ids).many(disb["account_id"].to_list()).tolist()
    t0s, amounts = disb["ts"].to_list(), disb["amount"].to_list()
    out = {"scale": args.scale, "seed": args.seed, "transactions": index.n_edges, "accounts": index.n_accounts,
           "disbursements": disb.height, "prepare_s": round(prep, 1), "loadavg_before": os.getloadavg()}  # fmt: skip
    default = ForwardFlowParams(window_ms=30 * DAY_MS, max_hops=5, min_amount_ratio=0.1)
    low = ForwardFlowParams(window_ms=30 * DAY_MS, max_hops=5, min_amount_ratio=0.01)
    out["kernel_default"] = _kernel(index, accounts, t0s, amounts, default)
    out["kernel_ratio_0.01"] = _kernel(index, accounts, t0s, amounts, low)
    # no floor at all, from 200 random accounts at random times: large reachable sets
    import numpy as np

    rng_np = np.random.default_rng(args.seed)
    ts_all = np.asarray(index.ts)
    starts = rng_np.integers(0, index.n_accounts, 200).tolist()
    times = rng_np.choice(ts_all, 200).tolist()
    nofloor = ForwardFlowParams(window_ms=365 * DAY_MS, max_hops=8, min_amount_ratio=0.0, max_edges=10_000_000)
    out["kernel_no_floor_random_starts"] = _kernel(index, starts, times, [1] * 200, nofloor)
    # reference on a sample, ratio 0.01
    tx = store.read("transactions", ["src_account", "dst_account", "ts", "amount"])
    cols = [tx[c].to_list() for c in ("src_account", "dst_account", "ts", "amount")]
    rng = random.Random(args.seed)
    sample = rng.sample(range(disb.height), min(args.ref_sample, disb.height))
    agree, ref_s, eng_s = 0, 0.0, 0.0
    for i in sample:
        t = time.perf_counter()
        ref = find_forward_flow_reference(*cols, disb["account_id"][i], t0s[i], amounts[i], window_ms=low.window_ms,
                                          max_hops=low.max_hops, min_amount_ratio=low.min_amount_ratio)  # fmt: skip
        ref_s += time.perf_counter() - t
        t = time.perf_counter()
        res = find_forward_flow_many(index, [accounts[i]], [t0s[i]], [amounts[i]], low)[0]
        eng_s += time.perf_counter() - t
        agree += dict(zip(res.rows.tolist(), res.hops.tolist(), strict=True)) == ref
    out["reference"] = {"sample": len(sample), "equal": agree, "reference_s": round(ref_s, 2), "engine_s": round(eng_s, 4)}
    # the CLI from the shell
    loans = disb["loan_id"].unique(maintain_order=True).to_list()[:5]
    wall = []
    for loan in loans:
        t = time.perf_counter()
        r = subprocess.run([str(Path(sys.executable).with_name("flowgraph")), "--store", str(store.root), "flow", loan, "--json"],
                           capture_output=True, text=True, cwd=ROOT)  # fmt: skip
        wall.append(round(time.perf_counter() - t, 3))
        assert r.returncode == 0, r.stderr
    out["cli_flow_wall_s"] = wall
    out["loadavg_after"] = os.getloadavg()
    (HERE / "out").mkdir(exist_ok=True)
    (HERE / "out" / f"forward_flow_{args.scale}.json").write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
