"""Child-process stages of ``python -m benchmarks`` (one stage = one fresh process).

``python -m benchmarks.stages STAGE --store DIR [--data DIR] [--opts JSON]`` prints one
JSON object on its last stdout line; ``peak_rss_mb`` is the process's own ``ru_maxrss``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import signal
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
NEO4J_PASSWORD = "flowgraph-bench"

HOPS = (3, 4, 5)
WINDOWS = (7, 30, 90)


def _rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _params(hops: int = 5, window_days: int = 30, max_paths: int = 100):
    from flowgraph.core.values import DAY_MS
    from flowgraph.engine.flow_back import FlowBackParams

    return FlowBackParams(window_ms=window_days * DAY_MS, max_hops=hops, min_amount_ratio=0.1,
                          max_paths=max_paths)  # fmt: skip


def same_batch(a, b) -> bool:
    """Two batch results agree on counts, returned amounts and every hop."""
    return bool(
        np.array_equal(a.path_count, b.path_count)
        and np.array_equal(a.returned_amount, b.returned_amount)
        and np.array_equal(a.hop_rows, b.hop_rows)
    )


def _targets(store):
    """Disbursements, dense accounts and target CSR, as ``trace.trace_loans`` builds them."""
    from flowgraph.investigate.trace import search_inputs

    index, inp = search_inputs(store)
    return index, inp.disb, inp.accounts, inp.t0s, inp.amounts, inp.target_indptr, inp.target_ids, inp.linked_of


# ------------------------------------------------------------------------------ stages
def stage_generate(args, opts) -> dict:
    from benchmarks.datasets import generate_scale

    _, info = generate_scale(opts["label"], opts.get("seed", 0), Path(args.data).parent)
    info["peak_rss_mb"] = _rss_mb()
    return info


def stage_ingest(args, opts) -> dict:
    from flowgraph.ingest.load import ingest_paths
    from flowgraph.store.embedded import Store

    root = Path(args.store)
    if root.exists():
        shutil.rmtree(root)
    store = Store.init(root)
    parts = int(opts.get("parts", 1))
    extra = {}
    if parts > 1:  # the transactions file in `parts` ingests, after the other tables
        files, split_s = _split_transactions(Path(args.data), parts)
        extra["split_seconds"] = round(split_s, 1)
        t = time.perf_counter()
        base = [f for f in sorted(Path(args.data).glob("*.csv")) if f.name != "transactions.csv"]
        rep = ingest_paths(store, base)
        extra["parts_seconds"] = [round(time.perf_counter() - t, 2)]
        for f in files:
            t1 = time.perf_counter()
            r = ingest_paths(store, [f], table="transactions")
            extra["parts_seconds"].append(round(time.perf_counter() - t1, 2))
            extra.setdefault("parts_rss_mb", []).append(_rss_mb())
            rep["rejected"] = (rep.get("rejected") or 0) + (r.get("rejected") or 0)
        sec = time.perf_counter() - t
        extra["parts"] = parts
    else:
        t = time.perf_counter()
        rep = ingest_paths(store, [Path(args.data)])
        sec = time.perf_counter() - t
    tables = store.status()["tables"]
    n_tx = tables["transactions"]["rows"]
    n_all = sum(v["rows"] for v in tables.values())
    return {
        "seconds": round(sec, 2),
        "transactions": n_tx,
        "rows_all_tables": n_all,
        "rows_per_s": round(n_all / sec),
        "transactions_per_s": round(n_tx / sec),
        "rejected": rep.get("rejected"),
        "tables": {k: v["rows"] for k, v in tables.items()},
        **extra,
        "peak_rss_mb": _rss_mb(),
    }


def _split_transactions(data: Path, parts: int) -> tuple[list[Path], float]:
    """``transactions.csv`` cut into ``parts`` CSV files with the header (cached)."""
    import subprocess

    src = data / "transactions.csv"
    out = data.parent / f"{data.name}-parts{parts}"
    done = out / "done"
    t = time.perf_counter()
    if not done.exists():
        out.mkdir(exist_ok=True)
        n = sum(1 for _ in open(src, "rb")) - 1
        per = -(-n // parts)
        script = ('head -1 "$0" > "$1/header"; tail -n +2 "$0" | split -l "$2" -d -a 2 '
                  '--filter=\'cat "$H" - > "$FILE.csv"\' - "$1/part_"')  # fmt: skip
        subprocess.run(["sh", "-c", script, str(src), str(out), str(per)], check=True,
                       env={"H": str(out / "header"), "PATH": "/usr/bin:/bin"})  # fmt: skip
        done.write_text(str(n))
    return sorted(out.glob("part_*.csv")), time.perf_counter() - t


def stage_index(args, opts) -> dict:
    from flowgraph.graph.store_index import load_or_build_index
    from flowgraph.store.embedded import Store

    store = Store.open(args.store)
    t = time.perf_counter()
    index, meta = load_or_build_index(store, rebuild=True)
    sec = time.perf_counter() - t
    return {
        "seconds": round(sec, 2),
        "edges": index.n_edges,
        "accounts": index.n_accounts,
        "edges_per_s": round(index.n_edges / sec),
        "encode_seconds": meta.get("encode_seconds"),
        "build_seconds": meta.get("build_seconds"),
        "peak_rss_mb": _rss_mb(),
    }


def stage_grid(args, opts) -> dict:
    """Batch throughput over every disbursement for hops × windows × threads."""
    from flowgraph.engine.flow_back import find_flow_back_batch
    from flowgraph.store.embedded import Store

    store = Store.open(args.store)
    t = time.perf_counter()
    index, disb, accounts, t0s, amounts, tindptr, tids, _ = _targets(store)
    out = {"disbursements": len(accounts), "targets_seconds": round(time.perf_counter() - t, 2),
           "target_ids": int(len(tids)), "cells": []}  # fmt: skip
    k = min(len(accounts), 64)
    t = time.perf_counter()
    find_flow_back_batch(index, accounts[:k], t0s[:k], amounts[:k], tindptr[: k + 1], tids, _params(), threads=2)
    out["first_call_seconds"] = round(time.perf_counter() - t, 3)
    repeat = int(opts.get("repeat", 2))
    for hops in opts.get("hops", HOPS):
        for wd in opts.get("windows", WINDOWS):
            p = _params(hops, wd)
            ref = None
            for threads in (1, 2):
                runs = []
                for _ in range(repeat):
                    t = time.perf_counter()
                    b = find_flow_back_batch(index, accounts, t0s, amounts, tindptr, tids, p, threads=threads)
                    runs.append(time.perf_counter() - t)
                cell = {"hops": hops, "window_days": wd, "threads": threads,
                        "seconds_runs": [round(x, 4) for x in runs], "seconds": round(min(runs), 4),
                        "disbursements_per_s": round(len(accounts) / min(runs)),
                        "with_paths": int((b.path_count > 0).sum()), "paths": int(b.path_count.sum()),
                        "truncated": int(b.truncated.sum())}  # fmt: skip
                if ref is None:
                    ref = b
                else:
                    cell["same_as_threads1"] = same_batch(ref, b)
                out["cells"].append(cell)
    out["peak_rss_mb"] = _rss_mb()
    return out


def stage_latency(args, opts) -> dict:
    """``find_flow_back`` single-call latency, and ``trace_loans`` for one loan (the CLI's
    ``flowgraph trace LOAN`` library call) in a warm process."""
    from flowgraph.engine.flow_back import find_flow_back
    from flowgraph.investigate.trace import trace_loans
    from flowgraph.store.embedded import Store

    store = Store.open(args.store)
    index, disb, accounts, t0s, amounts, tindptr, tids, _ = _targets(store)
    p = _params()
    rng = np.random.default_rng(1)
    pick = rng.choice(len(accounts), size=min(int(opts.get("calls", 1001)), len(accounts)), replace=False)
    lat = []
    for i in pick.tolist():
        tg = tids[tindptr[i] : tindptr[i + 1]]
        t = time.perf_counter()
        find_flow_back(index, int(accounts[i]), int(t0s[i]), int(amounts[i]), tg, p)
        lat.append(time.perf_counter() - t)
    first, warm = lat[0], np.array(lat[1:])
    loans = disb["loan_id"].unique(maintain_order=True).to_list()
    lp = rng.choice(len(loans), size=min(int(opts.get("trace_calls", 21)), len(loans)), replace=False)
    tl = []
    for j in lp.tolist():
        t = time.perf_counter()
        trace_loans(store, [loans[j]])
        tl.append(time.perf_counter() - t)

    def ms(x):
        return round(float(x) * 1000, 3)

    return {
        "find_flow_back": {"calls": len(warm), "first_call_ms": ms(first), "p50_ms": ms(np.percentile(warm, 50)),
                           "p99_ms": ms(np.percentile(warm, 99)), "max_ms": ms(warm.max()),
                           "mean_ms": ms(warm.mean())},
        "trace_one_loan": {"calls": len(tl) - 1, "first_call_ms": ms(tl[0]),
                           "p50_ms": ms(np.percentile(tl[1:], 50)), "p99_ms": ms(np.percentile(tl[1:], 99)),
                           "max_ms": ms(max(tl[1:]))},
        "peak_rss_mb": _rss_mb(),
    }  # fmt: skip


def stage_trace_all(args, opts) -> dict:
    from flowgraph.investigate.trace import trace_loans
    from flowgraph.store.embedded import Store

    store = Store.open(args.store)
    t = time.perf_counter()
    recs = trace_loans(store, None)
    sec = time.perf_counter() - t
    return {"seconds": round(sec, 2), "records": len(recs),
            "with_paths": sum(1 for r in recs if r["path_count"] > 0),
            "disbursements_per_s": round(len(recs) / sec), "peak_rss_mb": _rss_mb()}  # fmt: skip


def stage_score_all(args, opts) -> dict:
    """``flowgraph score --all``: every rule of the default pack, as of the last data day."""
    from flowgraph.rules.batch import last_data_day, score_days
    from flowgraph.rules.pack import load_pack
    from flowgraph.store.embedded import Store

    store = Store.open(args.store)
    t = time.perf_counter()
    summary = score_days(store, [last_data_day(store)], load_pack(), every=True)
    sec = time.perf_counter() - t
    return {"seconds": round(sec, 2), "disbursements": summary["disbursements"],
            "alerts": summary["alerts"], "peak_rss_mb": _rss_mb()}  # fmt: skip


class _Timeout(Exception):
    pass


def _engine_sample(args, opts) -> dict:
    """The peers' sample of disbursements (random + with paths, seeded) and the engine's
    answers and timings on it; every peer stage compares against these."""
    from benchmarks.peers import canonical
    from flowgraph.engine.flow_back import find_flow_back, find_flow_back_batch
    from flowgraph.store.embedded import Store

    store = Store.open(args.store)
    hops, wd = int(opts.get("hops", 5)), int(opts.get("window_days", 30))
    p = _params(hops, wd)
    p_all = _params(hops, wd, max_paths=1_000_000)  # every path, to compare whole sets
    index, disb, accounts, t0s, amounts, tindptr, tids, linked_of = _targets(store)
    tx = store.read("transactions", ["tx_id", "src_account", "dst_account", "ts", "amount"])
    tx_ids = tx["tx_id"]  # a polars Series: no 50M Python strings
    b = find_flow_back_batch(index, accounts, t0s, amounts, tindptr, tids, p)
    rng = np.random.default_rng(int(opts.get("seed", 7)))
    n_rand, n_paths = int(opts.get("random", 100)), int(opts.get("with_paths", 100))
    has = np.flatnonzero(b.path_count > 0)
    pick_p = rng.choice(has, size=min(n_paths, len(has)), replace=False) if len(has) else np.zeros(0, int)
    rest = np.setdiff1d(np.arange(len(accounts)), pick_p)
    pick_r = rng.choice(rest, size=min(n_rand, len(rest)), replace=False)
    pick = np.concatenate([pick_r, pick_p]).astype(np.int64)
    group = ["random"] * len(pick_r) + ["with_paths"] * len(pick_p)
    rows = []
    for i in pick.tolist():
        r = disb.row(i, named=True)
        rows.append({"i": i, "disb_id": r["disbursement_id"], "d": r["account_id"], "t0": int(t0s[i]),
                     "a": int(amounts[i]), "threshold": p.threshold(int(amounts[i])),
                     "targets": sorted(linked_of[i])})  # fmt: skip

    # engine: batch over the sample, and single calls (best of 3), both warm
    s_acc, s_t0, s_am = accounts[pick], t0s[pick], amounts[pick]
    s_ind = np.zeros(len(pick) + 1, np.int64)
    s_ind[1:] = np.cumsum(tindptr[pick + 1] - tindptr[pick])
    s_ids = np.concatenate([tids[tindptr[i] : tindptr[i + 1]] for i in pick.tolist()]) if len(pick) else tids[:0]
    find_flow_back_batch(index, s_acc, s_t0, s_am, s_ind, s_ids, p)  # warm
    eng_batch = {}
    for threads in (1, 2):
        runs = []
        for _ in range(5):
            t = time.perf_counter()
            sb = find_flow_back_batch(index, s_acc, s_t0, s_am, s_ind, s_ids, p, threads=threads)
            runs.append(time.perf_counter() - t)
        eng_batch[threads] = min(runs)
    eng_single, engine_paths, engine_ret, engine_trunc = [], [], [], []
    for k, i in enumerate(pick.tolist()):
        tg = tids[tindptr[i] : tindptr[i + 1]]
        runs = []
        for _ in range(3):
            t = time.perf_counter()
            find_flow_back(index, int(accounts[i]), int(t0s[i]), int(amounts[i]), tg, p)
            runs.append(time.perf_counter() - t)
        eng_single.append(min(runs))
        full = find_flow_back(index, int(accounts[i]), int(t0s[i]), int(amounts[i]), tg, p_all)
        engine_paths.append(canonical([tx_ids.gather(q).to_list() for q in full.paths]))
        engine_ret.append(int(sb.returned_amount[k]))
        engine_trunc.append(bool(full.truncated))
        assert full.path_count == int(sb.path_count[k])

    return {"store": store, "hops": hops, "wd": wd, "p": p, "tx": tx, "tx_ids": tx_ids, "pick": pick,
            "pick_r": pick_r, "pick_p": pick_p, "has": has, "group": group, "rows": rows,
            "eng_batch": eng_batch, "eng_single": eng_single, "engine_paths": engine_paths,
            "engine_ret": engine_ret, "engine_trunc": engine_trunc}


def stage_peers(args, opts) -> dict:
    """Engine vs networkx vs DuckDB on a sample of disbursements, same parameters."""
    import polars as pl

    from benchmarks.peers import (
        canonical,
        duckdb_connect,
        duckdb_flow_back,
        edges_of,
        greedy_returned,
        nx_flow_back,
    )

    smp = _engine_sample(args, opts)
    store, hops, wd, p, tx, tx_ids = smp["store"], smp["hops"], smp["wd"], smp["p"], smp["tx"], smp["tx_ids"]
    pick, pick_r, pick_p, has, group, rows = (smp[k] for k in ("pick", "pick_r", "pick_p", "has", "group", "rows"))
    eng_batch, eng_single, engine_paths, engine_ret, engine_trunc = (
        smp[k] for k in ("eng_batch", "eng_single", "engine_paths", "engine_ret", "engine_trunc"))
    del smp

    out = {"hops": hops, "window_days": wd, "sample": len(pick), "random": len(pick_r),
           "with_paths_pool": int(len(has)), "with_paths": len(pick_p),
           "engine_batch_threads1_ms_per_disb": round(eng_batch[1] / max(1, len(pick)) * 1000, 5),
           "engine_batch_threads2_ms_per_disb": round(eng_batch[2] / max(1, len(pick)) * 1000, 5),
           "engine_single_ms_median": round(float(np.median(eng_single)) * 1000, 4),
           "engine_single_ms_mean": round(float(np.mean(eng_single)) * 1000, 4),
           "engine_truncated": int(sum(engine_trunc))}  # fmt: skip
    eng_mean = float(np.mean(eng_single))
    eng_b1 = eng_batch[1] / max(1, len(pick))

    # networkx, one disbursement at a time, with a per-call timeout
    budget, per_call = float(opts.get("nx_budget", 300)), float(opts.get("nx_timeout", 60))

    def alarm(*_):
        raise _Timeout

    signal.signal(signal.SIGALRM, alarm)
    nx_rows, started = [], time.perf_counter()
    for k, r in enumerate(rows):
        if time.perf_counter() - started > budget:
            break
        T = set(r["targets"])
        signal.setitimer(signal.ITIMER_REAL, per_call)
        t = time.perf_counter()
        try:
            res = nx_flow_back(tx, r["d"], r["t0"], r["a"], T, window_ms=p.window_ms, max_hops=hops,
                               threshold=r["threshold"])  # fmt: skip
        except _Timeout:
            res = None
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        sec = time.perf_counter() - t
        rec = {"k": k, "seconds": sec, "timed_out": res is None}
        if res is not None:
            rec.update(filter_s=res["filter_s"], build_s=res["build_s"], search_s=res["search_s"],
                       edges=res["edges"], same_paths=canonical(res["paths"]) == engine_paths[k],
                       same_returned=res["returned"] == engine_ret[k], n_paths=len(res["paths"]))  # fmt: skip
        nx_rows.append(rec)
    done = [x for x in nx_rows if not x["timed_out"]]
    nx_mean = float(np.mean([x["seconds"] for x in done])) if done else None
    eng_done_mean = float(np.mean([eng_single[x["k"]] for x in done])) if done else None
    eng_done_b = eng_b1
    out["networkx"] = {
        "run": len(nx_rows), "timed_out": sum(x["timed_out"] for x in nx_rows),
        "not_reached_budget": len(rows) - len(nx_rows), "timeout_s": per_call, "budget_s": budget,
        "same_paths": sum(1 for x in done if x["same_paths"]), "same_returned": sum(1 for x in done if x["same_returned"]),
        "compared": len(done),
        "ms_mean": round(nx_mean * 1000, 3) if done else None,
        "ms_median": round(float(np.median([x["seconds"] for x in done])) * 1000, 3) if done else None,
        "filter_ms_mean": round(float(np.mean([x["filter_s"] for x in done])) * 1000, 3) if done else None,
        "build_ms_mean": round(float(np.mean([x["build_s"] for x in done])) * 1000, 3) if done else None,
        "search_ms_mean": round(float(np.mean([x["search_s"] for x in done])) * 1000, 3) if done else None,
        "window_edges_median": int(np.median([x["edges"] for x in done])) if done else None,
        "ratio_vs_engine_single": round(nx_mean / eng_done_mean, 1) if done else None,
        "ratio_vs_engine_batch_threads1": round(nx_mean / eng_done_b, 1) if done else None,
        "ratio_search_only_vs_engine_single": round(
            float(np.mean([x["search_s"] + x["build_s"] for x in done])) / eng_done_mean, 1) if done else None,
        "mismatch_k": [x["k"] for x in done if not (x["same_paths"] and x["same_returned"])][:20],
    }  # fmt: skip

    # DuckDB: load the table, then one recursive query for the whole sample, and one
    # query per disbursement for the first few; the polars table is let go first (memory)
    del tx, tx_ids
    import gc

    gc.collect()
    t = time.perf_counter()
    con = duckdb_connect(str(store.table_path("transactions")), opts.get("duckdb_memory", "6GB"),
                         int(opts.get("duckdb_threads", 2)))  # fmt: skip
    load_s = time.perf_counter() - t
    duck = {"load_seconds": round(load_s, 2), "threads": int(opts.get("duckdb_threads", 2))}
    limit = float(opts.get("duckdb_timeout", 600))

    def timed(rows_, pre):
        """(answer or None on timeout, seconds): DuckDB is interrupted from a timer thread."""
        import threading

        timer = threading.Timer(limit, con.interrupt)
        timer.start()
        t = time.perf_counter()
        try:
            res = duckdb_flow_back(con, rows_, window_ms=p.window_ms, max_hops=hops, prefilter=pre)
        except Exception as exc:  # duckdb.InterruptException / OutOfMemoryException
            name = type(exc).__name__
            if "Interrupt" not in name and "OutOfMemory" not in name:
                raise
            res = None
            duck.setdefault("failures", []).append(f"{len(rows_)} row(s), prefilter={pre}: {name}: {str(exc)[:160]}")
        finally:
            timer.cancel()
        return res, time.perf_counter() - t

    duck["timeout_s"] = limit
    for name, pre in (("batch", False), ("prefiltered_batch", True)):
        got, batch_s = timed(rows, pre)
        duck[f"{name}_seconds"] = round(batch_s, 3)
        duck[f"{name}_failed"] = got is None  # timeout or out of memory: see "failures"
        if got is None:
            continue
        duck[f"{name}_ms_per_disb"] = round(batch_s / max(1, len(rows)) * 1000, 3)
        duck[f"ratio_{name}_vs_engine_batch_threads1"] = round((batch_s / len(rows)) / eng_b1, 1) if rows else None
        duck[f"ratio_{name}_vs_engine_single"] = round((batch_s / len(rows)) / eng_mean, 1) if rows else None
        ids = {e for ps in got.values() for path in ps for e in path}
        edges = edges_of(con, ids)
        same_p = same_r = 0
        bad = []
        for k, r in enumerate(rows):
            ps = got[r["disb_id"]]
            sp = canonical(ps) == engine_paths[k]
            sr = greedy_returned(ps, edges, r["d"], r["a"], set(r["targets"])) == engine_ret[k]
            same_p += sp
            same_r += sr
            if not (sp and sr):
                bad.append(k)
        if name == "batch":
            duck.update(compared=len(rows), same_paths=same_p, same_returned=same_r, mismatch_k=bad[:20])
        else:
            duck.update(prefiltered_batch_same_paths=same_p, prefiltered_batch_same_returned=same_r)
    # one query per disbursement: plain (first few) and pre-filtered to its own window
    for name, pre, n_max in (("single", False, int(opts.get("duckdb_single", 10))),
                             ("prefiltered_single", True, int(opts.get("duckdb_prefiltered_single", 50)))):  # fmt: skip
        singles, timeouts = [], 0
        budget_single, s0 = float(opts.get("duckdb_single_budget", 120)), time.perf_counter()
        for k in range(min(n_max, len(rows))):
            if time.perf_counter() - s0 > budget_single:
                break
            one, sec = timed([rows[k]], pre)
            if one is None:
                timeouts += 1
                break
            singles.append(sec)
            assert canonical(one[rows[k]["disb_id"]]) == engine_paths[k]
        duck[f"{name}_timeouts"] = timeouts
        if singles:
            sm = float(np.mean(singles))
            duck[f"{name}_queries"] = len(singles)
            duck[f"{name}_ms_mean"] = round(sm * 1000, 2)
            duck[f"{name}_ms_median"] = round(float(np.median(singles)) * 1000, 2)
            duck[f"ratio_{name}_vs_engine_single"] = round(sm / float(np.mean(eng_single[: len(singles)])), 1)
    con.close()
    out["duckdb"] = duck
    out["groups"] = {"random": len(pick_r), "with_paths": len(pick_p)}
    out["sample_paths_total"] = int(sum(len(x) for x in engine_paths))
    out["disbursements_in_sample_with_paths"] = int(sum(1 for x in engine_paths if x))
    out["engine_ms_total_single"] = round(float(np.sum(eng_single)) * 1000, 3)
    _ = group, pl
    out["peak_rss_mb"] = _rss_mb()
    return out



def _start_neo4j(home: Path, heap: str, pagecache: str):
    """``tools/neo4j/server --home`` as a child: (process, Bolt URI, seconds to start)."""
    import subprocess
    import threading

    env = {**os.environ, "FLOWGRAPH_NEO4J_HEAP": heap, "FLOWGRAPH_NEO4J_PASSWORD": NEO4J_PASSWORD}
    t = time.perf_counter()
    proc = subprocess.Popen([str(ROOT / "tools" / "neo4j" / "server"), "--home", str(home), "--pagecache", pagecache],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env=env)  # fmt: skip
    box: list[str] = []
    reader = threading.Thread(target=lambda: box.append(proc.stdout.readline()), daemon=True)
    reader.start()
    reader.join(600)
    uri = box[0].strip() if box else ""
    if not uri.startswith("bolt://"):
        proc.kill()
        raise RuntimeError(f"tools/neo4j/server did not start (printed {uri!r})")
    return proc, uri, time.perf_counter() - t


def _stop_neo4j(proc) -> None:
    proc.stdin.close()
    try:
        proc.wait(60)
    except Exception:  # noqa: BLE001  (subprocess.TimeoutExpired)
        proc.kill()


def stage_neo4j(args, opts) -> dict:
    """Neo4j 5.26 as a peer: ``neo4j push`` rows/s, the flow-back rule in Cypher (QPP and
    variable-length) on the peers' sample with answers compared to the engine's, and
    ``neo4j-admin database import full`` rows/s on the ``neo4j export-import`` files."""
    import shlex
    import subprocess
    import tempfile

    from neo4j import GraphDatabase

    from benchmarks.neo4j_peer import VARIANTS, edges_from_neo4j, timed_flow_back
    from benchmarks.peers import canonical, greedy_returned
    from flowgraph.neo4j.export import export_import
    from flowgraph.neo4j.store import PUSH_TABLES, Neo4jStore

    smp = _engine_sample(args, opts)
    store, hops, p, rows = smp["store"], smp["hops"], smp["p"], smp["rows"]
    eng_single, engine_paths, engine_ret = smp["eng_single"], smp["engine_paths"], smp["engine_ret"]
    eng_b1 = smp["eng_batch"][1] / max(1, len(rows))
    eng_mean = float(np.mean(eng_single)) if eng_single else 0.0
    out: dict = {"hops": hops, "window_days": smp["wd"], "sample": len(rows), "random": len(smp["pick_r"]),
                 "with_paths": len(smp["pick_p"]),
                 "engine_batch_threads1_ms_per_disb": round(eng_b1 * 1000, 5),
                 "engine_single_ms_mean": round(eng_mean * 1000, 4)}  # fmt: skip
    limit = float(opts.get("timeout", 600))
    work = Path(tempfile.mkdtemp(prefix="fg-neo4j-bench-", dir=opts.get("tmp")))
    heap, pagecache = opts.get("heap", "2g"), opts.get("pagecache", "1g")
    try:
        proc, uri, start_s = _start_neo4j(work / "server", heap, pagecache)
        out["server"] = {"start_seconds": round(start_s, 1), "heap": heap, "pagecache": pagecache}
        try:
            # push: the whole store, as `flowgraph neo4j push` does it
            batch = int(opts.get("batch_size", 5000))
            with Neo4jStore(uri, "neo4j", NEO4J_PASSWORD) as neo:
                res = neo.push(store, batch_size=batch)
            pushed = sum(t["rows"] for t in res["tables"].values())
            out["push"] = {"rows": pushed, "seconds": res["seconds"], "rows_per_s": round(pushed / res["seconds"]),
                           "transactions": res["tables"]["transactions"]["rows"], "batch_size": batch,
                           "tables": list(PUSH_TABLES), "in_sync": res["in_sync"]}  # fmt: skip
            drv = GraphDatabase.driver(uri, auth=("neo4j", NEO4J_PASSWORD), notifications_min_severity="OFF")
            kw = {"window_ms": p.window_ms, "max_hops": hops, "timeout": limit}
            for variant in VARIANTS:
                v: dict = {}
                try:
                    timed_flow_back(drv, rows[:5], variant=variant, **kw)  # plan cache, page cache
                    runs = []
                    for _ in range(int(opts.get("repeat", 3))):
                        got, sec = timed_flow_back(drv, rows, variant=variant, **kw)
                        runs.append(sec)
                    batch_s = min(runs)
                except Exception as exc:  # noqa: BLE001  (a timeout or the memory pool)
                    v["failed"] = f"{type(exc).__name__}: {str(exc)[:200]}"
                    out[variant] = v
                    continue
                ids = {e for ps in got.values() for path in ps for e in path}
                edges = edges_from_neo4j(drv, ids)
                same_p = same_r = 0
                bad = []
                for k, r in enumerate(rows):
                    ps = got[r["disb_id"]]
                    sp = canonical(ps) == engine_paths[k]
                    sr = greedy_returned(ps, edges, r["d"], r["a"], set(r["targets"])) == engine_ret[k]
                    same_p += sp
                    same_r += sr
                    if not (sp and sr):
                        bad.append(r["disb_id"])
                v.update(batch_seconds=round(batch_s, 3), batch_runs=[round(x, 3) for x in runs],
                         batch_ms_per_disb=round(batch_s / max(1, len(rows)) * 1000, 3),
                         ratio_batch_vs_engine_batch_threads1=round(batch_s / max(1, len(rows)) / eng_b1, 1),
                         compared=len(rows), same_paths=same_p, same_returned=same_r, mismatch=bad[:20],
                         paths=sum(len(x) for x in got.values()))  # fmt: skip
                singles, s0 = [], time.perf_counter()
                for k in range(min(int(opts.get("single", 50)), len(rows))):
                    if time.perf_counter() - s0 > float(opts.get("single_budget", 120)):
                        break
                    one, sec = timed_flow_back(drv, [rows[k]], variant=variant, **kw)
                    singles.append(sec)
                    assert canonical(one[rows[k]["disb_id"]]) == engine_paths[k], rows[k]["disb_id"]
                if singles:
                    sm = float(np.mean(singles))
                    v.update(single_queries=len(singles), single_ms_mean=round(sm * 1000, 2),
                             single_ms_median=round(float(np.median(singles)) * 1000, 2),
                             ratio_single_vs_engine_single=round(sm / float(np.mean(eng_single[: len(singles)])), 1))
                out[variant] = v
            drv.close()
        finally:
            _stop_neo4j(proc)

        # bulk path: export-import files, then Neo4j's own neo4j-admin into a fresh home
        t = time.perf_counter()
        exp = export_import(store, work / "csv")
        export_s = time.perf_counter() - t
        cmd = shlex.split(exp["command"].replace("\\\n", " "))
        t = time.perf_counter()
        done = subprocess.run([str(ROOT / "tools" / "neo4j" / "neo4j-admin"), "--home", str(work / "home"), *cmd[1:]],
                              capture_output=True, text=True, cwd=work,  # import.report goes to the cwd
                              env={**os.environ, "FLOWGRAPH_NEO4J_HEAP": heap})  # fmt: skip
        import_s = time.perf_counter() - t
        if done.returncode != 0:
            out["admin_import"] = {"failed": done.stdout[-1500:] + done.stderr[-1500:]}
        else:
            nodes = int(re.search(r"(\d+) nodes", done.stdout).group(1))
            rels = int(re.search(r"(\d+) relationships", done.stdout).group(1))
            m = re.search(r"IMPORT DONE in (?:(\d+)m )?(\d+)s (\d+)ms", done.stdout)
            tool_s = (int(m.group(1) or 0) * 60 + int(m.group(2)) + int(m.group(3)) / 1000) if m else None
            out["admin_import"] = {
                "export_seconds": round(export_s, 2), "nodes": nodes, "relationships": rels,
                "wall_seconds": round(import_s, 2), "tool_seconds": tool_s,
                "rows_per_s_wall": round((nodes + rels) / import_s),
                "rows_per_s_tool": round((nodes + rels) / tool_s) if tool_s else None,
            }  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)
    out["peak_rss_mb"] = _rss_mb()
    return out


STAGES = {
    "generate": stage_generate, "ingest": stage_ingest, "index": stage_index, "grid": stage_grid,
    "latency": stage_latency, "trace_all": stage_trace_all, "score_all": stage_score_all,
    "peers": stage_peers, "neo4j": stage_neo4j,
}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("stage", choices=sorted(STAGES))
    ap.add_argument("--store", default="")
    ap.add_argument("--data", default="")
    ap.add_argument("--opts", default="{}")
    args = ap.parse_args()
    res = STAGES[args.stage](args, json.loads(args.opts))
    print(json.dumps(res), flush=True)


if __name__ == "__main__":
    main()
