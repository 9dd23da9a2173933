"""Flow-back engine on the generated ``medium`` bank (issue #3).

    PYTHONPATH=. python benchmarks/bench_flow_back.py [--scale medium] [--seed 0]
        [--stages build,load,batch,trace,single,reference] [--ref-sample 200]

Generates ``benchmarks/data/<scale>-<seed>`` once (``flowgraph.synthetic.generate.generate``),
ingests it into ``benchmarks/data/<scale>-<seed>-store`` once, then runs every stage in a
fresh child process (``--child STAGE``), so that peak RSS (``getrusage`` of the child) and
first-call costs are real:

- build:     ``load_or_build_index(store, rebuild=True)``: seconds, edges/s
- load:      ``load_index`` in a fresh process
- batch:     ``find_flow_back_batch`` over all disbursements (targets built as
             ``trace.py`` builds them), threads=1 and threads=2, the batch call alone
- trace:     ``trace_loans(store, None)`` end to end
- single:    ``find_flow_back`` on 1,000 random disbursements (first call apart, p50/p99)
- reference: ``find_flow_back_reference`` on a random sample (``--ref-pool paths``: of
             the disbursements with paths), answers compared with the engine,
             per-disbursement time ratio reference / engine

The load average (``os.getloadavg``) is recorded before and after each stage. Prints
JSON and writes it to ``benchmarks/out/flow_back_<scale>.json`` (merging with the stages
already there, so stages can be re-run one at a time).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PARAMS = dict(window_days=30, max_hops=5, min_amount_ratio=0.1, link_depth=1)


def _rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _targets(store):
    """Disbursements and their target CSR, exactly as ``trace.trace_loans`` builds them
    (the index loaded, not rebuilt: the build is its own stage)."""
    from flowgraph.engine.csr import load_index
    from flowgraph.investigate.trace import search_inputs
    from flowgraph.rules.kinds.flow_back import TraceOptions

    options = TraceOptions.defaults()
    index, inp = search_inputs(store, options, index=load_index(store.index_dir)[0])
    return (index, inp.disb, inp.accounts, inp.t0s, inp.amounts, inp.target_indptr, inp.target_ids,
            inp.linked_of, options)


# ------------------------------------------------------------------ child stages
def child_build(store_dir: str, args) -> dict:
    from flowgraph.graph.store_index import load_or_build_index
    from flowgraph.store.embedded import Store

    store = Store.open(store_dir)
    runs = []
    for _ in range(max(1, args.repeat)):  # best of --repeat (the first also loads numba's cache)
        usage = resource.getrusage(resource.RUSAGE_SELF)
        t = time.perf_counter()
        index, meta = load_or_build_index(store, rebuild=True)
        sec = time.perf_counter() - t
        after = resource.getrusage(resource.RUSAGE_SELF)
        cpu = after.ru_utime + after.ru_stime - usage.ru_utime - usage.ru_stime
        runs.append((sec, cpu, meta, os.getloadavg()[0]))
    sec, cpu, meta, _ = min(runs, key=lambda r: r[0])
    return {
        "runs_seconds": [round(r[0], 2) for r in runs],
        "runs_cpu_seconds": [round(r[1], 2) for r in runs],
        "runs_load_after": [round(r[3], 2) for r in runs],
        "cpu_seconds": round(cpu, 2),
        "seconds": round(sec, 2),
        "edges": index.n_edges,
        "accounts": index.n_accounts,
        "edges_per_s": round(index.n_edges / sec),
        "encode_seconds": meta.get("encode_seconds"),
        "build_seconds": meta.get("build_seconds"),
        "save_and_reload_seconds": round(sec - meta.get("encode_seconds", 0) - meta.get("build_seconds", 0), 2),
        "peak_rss_mb": _rss_mb(),
    }


def child_load(store_dir: str, args) -> dict:
    t = time.perf_counter()
    import numpy as np

    from flowgraph.engine.csr import load_index
    from flowgraph.store.embedded import Store

    imported = time.perf_counter() - t
    store = Store.open(store_dir)
    t = time.perf_counter()
    index, meta = load_index(store.index_dir)
    sec = time.perf_counter() - t
    t = time.perf_counter()
    touched = int(np.asarray(index.indptr)[-1]) + int(np.asarray(index.ts).sum() & 1)  # fault the pages in
    touch = time.perf_counter() - t
    return {
        "import_seconds": round(imported, 3),
        "load_index_seconds": round(sec, 4),
        "touch_ts_seconds": round(touch, 3),
        "edges": index.n_edges,
        "_": touched & 0,
        "peak_rss_mb": _rss_mb(),
    }


def child_batch(store_dir: str, args) -> dict:

    from flowgraph.engine.flow_back import find_flow_back_batch
    from flowgraph.store.embedded import Store

    store = Store.open(store_dir)
    t = time.perf_counter()
    index, disb, accounts, t0s, amounts, tindptr, tids, _, options = _targets(store)
    targets_s = time.perf_counter() - t
    n = len(accounts)
    out = {"disbursements": n, "targets_seconds": round(targets_s, 2), "target_ids": int(len(tids))}
    # first call in this process (loads the numba cache): a small slice
    k = min(n, 64)
    t = time.perf_counter()
    find_flow_back_batch(index, accounts[:k], t0s[:k], amounts[:k], tindptr[: k + 1], tids, options.params, threads=1)
    out["first_call_64_threads1_seconds"] = round(time.perf_counter() - t, 3)
    t = time.perf_counter()
    find_flow_back_batch(index, accounts[:k], t0s[:k], amounts[:k], tindptr[: k + 1], tids, options.params, threads=2)
    out["first_call_64_threads2_seconds"] = round(time.perf_counter() - t, 3)
    ref = None
    for threads in (1, 2):
        runs = []
        for _ in range(args.repeat):
            t = time.perf_counter()
            b = find_flow_back_batch(index, accounts, t0s, amounts, tindptr, tids, options.params, threads=threads)
            runs.append(time.perf_counter() - t)
        best = min(runs)
        out[f"threads{threads}"] = {
            "seconds_runs": [round(x, 2) for x in runs],
            "seconds": round(best, 2),
            "disbursements_per_s": round(n / best),
        }
        if ref is None:
            ref = b
        else:
            from benchmarks.stages import same_batch

            out["threads_identical"] = same_batch(ref, b)
    out["with_paths"] = int((ref.path_count > 0).sum())
    out["truncated"] = int(ref.truncated.sum())
    out["paths_total"] = int(ref.path_count.sum())
    out["peak_rss_mb"] = _rss_mb()
    return out


def child_trace(store_dir: str, args) -> dict:
    t = time.perf_counter()
    from flowgraph.investigate.trace import trace_loans
    from flowgraph.store.embedded import Store

    imported = time.perf_counter() - t
    store = Store.open(store_dir)
    t = time.perf_counter()
    recs = trace_loans(store, None)
    sec = time.perf_counter() - t
    return {
        "import_seconds": round(imported, 3),
        "seconds": round(sec, 2),
        "records": len(recs),
        "with_paths": sum(1 for r in recs if r["path_count"] > 0),
        "disbursements_per_s": round(len(recs) / sec),
        "peak_rss_mb": _rss_mb(),
    }


def child_single(store_dir: str, args) -> dict:
    import numpy as np

    from flowgraph.engine.flow_back import find_flow_back
    from flowgraph.store.embedded import Store

    store = Store.open(store_dir)
    index, disb, accounts, t0s, amounts, tindptr, tids, _, options = _targets(store)
    rng = np.random.default_rng(args.sample_seed)
    pick = rng.choice(len(accounts), size=min(1001, len(accounts)), replace=False)
    lat = []
    hits = 0
    for i in pick.tolist():
        tg = tids[tindptr[i] : tindptr[i + 1]]
        t = time.perf_counter()
        r = find_flow_back(index, int(accounts[i]), int(t0s[i]), int(amounts[i]), tg, options.params)
        lat.append(time.perf_counter() - t)
        hits += r.path_count > 0
    first, warm = lat[0], np.array(lat[1:])
    ms = lambda x: round(float(x) * 1000, 3)  # noqa: E731
    return {
        "first_call_ms": ms(first),
        "calls_warm": len(warm),
        "p50_ms": ms(np.percentile(warm, 50)),
        "p90_ms": ms(np.percentile(warm, 90)),
        "p99_ms": ms(np.percentile(warm, 99)),
        "max_ms": ms(warm.max()),
        "mean_ms": ms(warm.mean()),
        "with_paths": int(hits),
        "peak_rss_mb": _rss_mb(),
    }


class _Timeout(Exception):
    pass


def child_reference(store_dir: str, args) -> dict:
    import numpy as np

    from flowgraph.core.values import DAY_MS, ratio_threshold
    from flowgraph.engine.flow_back import find_flow_back
    from flowgraph.engine.flow_back_reference import find_flow_back_reference
    from flowgraph.store.embedded import Store

    store = Store.open(store_dir)
    index, disb, accounts, t0s, amounts, tindptr, tids, linked_of, options = _targets(store)
    p = options.params
    tx = store.read("transactions", ["src_account", "dst_account", "ts", "amount"])
    src, dst = tx["src_account"].to_numpy(), tx["dst_account"].to_numpy()
    ts, amount = tx["ts"].to_numpy(), tx["amount"].to_numpy()
    window = 30 * DAY_MS
    assert p.window_ms == window and p.max_hops == 5 and p.min_amount_ratio == 0.1
    rng = np.random.default_rng(args.sample_seed + 1)
    pool = np.arange(len(accounts))
    if args.ref_pool == "paths":  # only disbursements the engine finds paths for
        from flowgraph.engine.flow_back import find_flow_back_batch

        b = find_flow_back_batch(index, accounts, t0s, amounts, tindptr, tids, p)
        pool = np.flatnonzero(b.path_count > 0)
    pick = rng.choice(pool, size=min(args.ref_sample, len(pool)), replace=False)
    # warm the engine (numba cache load) on something else first
    find_flow_back(index, int(accounts[0]), int(t0s[0]), int(amounts[0]), tids[tindptr[0] : tindptr[1]], p)

    def alarm(*_):
        raise _Timeout

    signal.signal(signal.SIGALRM, alarm)
    rows = []
    started = time.perf_counter()
    mismatches = []
    for i in pick.tolist():
        if time.perf_counter() - started > args.ref_budget:
            break
        t0, a = int(t0s[i]), int(amounts[i])
        tg = tids[tindptr[i] : tindptr[i + 1]]
        eng_runs = []
        for _ in range(3):
            t = time.perf_counter()
            r = find_flow_back(index, int(accounts[i]), t0, a, tg, p)
            eng_runs.append(time.perf_counter() - t)
        eng = min(eng_runs)
        t = time.perf_counter()
        keep = np.flatnonzero((ts > t0) & (ts <= t0 + window) & (amount >= ratio_threshold(0.1, a)))
        s_, d_, ts_, am_ = src[keep].tolist(), dst[keep].tolist(), ts[keep].tolist(), amount[keep].tolist()
        filt = time.perf_counter() - t
        row = disb.row(i, named=True)
        signal.setitimer(signal.ITIMER_REAL, args.ref_timeout)
        t = time.perf_counter()
        try:
            ref = find_flow_back_reference(
                s_, d_, ts_, am_, row["account_id"], t0, a, list(linked_of[i]),
                window_ms=window, max_hops=5, min_amount_ratio=0.1, max_paths=p.max_paths,
            )
            timed_out = False
        except _Timeout:
            ref = None
            timed_out = True
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        refs = time.perf_counter() - t
        rec = {
            "i": i, "filtered_edges": len(keep), "engine_s": eng, "filter_s": filt, "reference_s": refs,
            "timed_out": timed_out, "paths": r.path_count,
        }
        if ref is not None:
            got = [pp.tolist() for pp in r.paths]
            want = [[int(keep[e]) for e in pp] for pp in ref.paths]
            same = (
                got == want and r.path_count == ref.path_count and r.truncated == ref.truncated
                and r.returned_amount == ref.returned_amount and r.first_return_ts == ref.first_return_ts
            )
            rec["identical"] = bool(same)
            if not same:
                mismatches.append({"disbursement_id": row["disbursement_id"], "engine_paths": got[:3],
                                   "reference_paths": want[:3], "engine_returned": r.returned_amount,
                                   "reference_returned": ref.returned_amount,
                                   "engine_count": r.path_count, "reference_count": ref.path_count})
        rows.append(rec)
    done = [x for x in rows if not x["timed_out"]]
    eng = np.array([x["engine_s"] for x in done])
    refs = np.array([x["reference_s"] for x in done])
    tot = np.array([x["reference_s"] + x["filter_s"] for x in done])
    ratio = refs / eng if len(done) else np.zeros(0)
    ratio_f = tot / eng if len(done) else np.zeros(0)
    return {
        "pool": args.ref_pool,
        "sampled": len(pick),
        "compared": len(done),
        "timed_out": sum(x["timed_out"] for x in rows),
        "not_reached_budget": len(pick) - len(rows),
        "per_disbursement_timeout_s": args.ref_timeout,
        "with_paths": sum(1 for x in done if x["paths"] > 0),
        "identical": sum(1 for x in done if x.get("identical")),
        "mismatches": mismatches[:10],
        "filtered_edges_median": int(np.median([x["filtered_edges"] for x in rows])) if rows else None,
        "engine_ms_median": round(float(np.median(eng)) * 1000, 4) if len(done) else None,
        "engine_ms_total": round(float(eng.sum()) * 1000, 2),
        "reference_ms_median": round(float(np.median(refs)) * 1000, 2) if len(done) else None,
        "reference_s_total": round(float(refs.sum()), 2),
        "filter_ms_median": round(float(np.median([x["filter_s"] for x in done])) * 1000, 2) if done else None,
        "ratio_median": round(float(np.median(ratio)), 1) if len(done) else None,
        "ratio_min": round(float(ratio.min()), 1) if len(done) else None,
        "ratio_of_totals": round(float(refs.sum() / eng.sum()), 1) if len(done) else None,
        "ratio_with_filter_median": round(float(np.median(ratio_f)), 1) if len(done) else None,
        "timed_out_engine_ms": [round(x["engine_s"] * 1000, 3) for x in rows if x["timed_out"]],
        "wall_seconds": round(time.perf_counter() - started, 1),
        "peak_rss_mb": _rss_mb(),
    }


CHILDREN = {
    "build": child_build, "load": child_load, "batch": child_batch, "trace": child_trace,
    "single": child_single, "reference": child_reference,
}


# ------------------------------------------------------------------ parent
def prepare(data: Path, store_dir: Path, scale: str, seed: int) -> dict:
    from flowgraph.ingest.load import ingest_paths
    from flowgraph.store.embedded import Store
    from flowgraph.synthetic.generate import generate

    info = {}
    if not (data / "labels.parquet").exists():
        t = time.perf_counter()
        generate(data, scale, seed)
        info["generate_seconds"] = round(time.perf_counter() - t, 1)
    store = Store.init(store_dir)
    if store.status()["tables"]["transactions"]["rows"] == 0:
        t = time.perf_counter()
        rep = ingest_paths(store, [data])
        info["ingest_seconds"] = round(time.perf_counter() - t, 1)
        info["ingest_loaded"] = rep["loaded"]
        info["ingest_rejected"] = rep["rejected"]
    info["status"] = store.status()["tables"]
    return info


def run_child(stage: str, store_dir: Path, args) -> dict:
    cmd = [sys.executable, __file__, "--child", stage, "--store", str(store_dir),
           "--repeat", str(args.repeat), "--ref-sample", str(args.ref_sample),
           "--ref-timeout", str(args.ref_timeout), "--ref-budget", str(args.ref_budget),
           "--sample-seed", str(args.sample_seed), "--ref-pool", args.ref_pool]  # fmt: skip
    load_before = [round(x, 2) for x in os.getloadavg()]
    t = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    wall = time.perf_counter() - t
    if res.returncode != 0:
        return {"error": res.stderr[-3000:], "load_before": load_before}
    out = json.loads(res.stdout.strip().splitlines()[-1])
    out["child_wall_seconds"] = round(wall, 2)
    out["load_before"] = load_before
    out["load_after"] = [round(x, 2) for x in os.getloadavg()]
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", default="medium")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--stages", default="build,load,batch,trace,single,reference")
    ap.add_argument("--repeat", type=int, default=2, help="batch runs per thread count (best kept)")
    ap.add_argument("--ref-sample", type=int, default=200)
    ap.add_argument("--ref-timeout", type=float, default=120.0, help="seconds per reference call")
    ap.add_argument("--ref-budget", type=float, default=1500.0, help="seconds for the whole reference stage")
    ap.add_argument("--sample-seed", type=int, default=0)
    ap.add_argument("--ref-pool", choices=("all", "paths"), default="all",
                    help="sample the reference stage from all disbursements or those with paths")
    ap.add_argument("--child")
    ap.add_argument("--store")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(CHILDREN[args.child](args.store, args)))
        return
    sys.path.insert(0, str(ROOT))
    data = HERE / "data" / f"{args.scale}-{args.seed}"
    store_dir = HERE / "data" / f"{args.scale}-{args.seed}-store"
    out_path = args.out or HERE / "out" / f"flow_back_{args.scale}.json"
    result = json.loads(out_path.read_text()) if out_path.exists() else {}
    result["params"] = PARAMS
    result["prepare"] = {**result.get("prepare", {}), **prepare(data, store_dir, args.scale, args.seed)}
    for stage in args.stages.split(","):
        print(f"stage {stage} (load {os.getloadavg()[0]:.2f})", file=sys.stderr, flush=True)
        name = stage if not (stage == "reference" and args.ref_pool == "paths") else "reference_with_paths"
        result.setdefault("runs", {}).setdefault(name, []).append(run_child(stage, store_dir, args))
        result[name] = result["runs"][name][-1]
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
