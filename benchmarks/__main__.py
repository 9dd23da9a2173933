"""Benchmarks of issue #9: cost curve 1M → 50M transactions, and peers on identical work.

    python -m benchmarks [--scales 1M,10M,50M] [--out benchmarks/out] [--quick]
                         [--stages generate,ingest,index,grid,latency,trace_all,score_all,peers]
    python -m benchmarks --report benchmarks/out/bench_1M.json,...   # tables + charts only
    python -m benchmarks --scales 100k,1M --stages generate,ingest,index,neo4j   # Neo4j as a peer

For each scale the bank is generated once into ``benchmarks/data/<scale>-<seed>``
(:mod:`benchmarks.datasets`), ingested into a fresh store ``<that>-bench-store``, indexed
and measured; every stage runs in a fresh child process (:mod:`benchmarks.stages`) so its
peak RSS (``ru_maxrss``) and first-call costs are its own. The parent records the 1-minute
load average before each stage, watches the child's RSS (kills it above ``--rss-limit-gb``)
and writes ``<out>/bench_<scale>.json`` after every stage. ``--report`` renders the
markdown tables (``<out>/tables.md``) and the charts (``benchmarks/cost_curve.svg``,
``benchmarks/hops_window.svg``) from those JSON files.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
ALL_STAGES = ("generate", "ingest", "index", "grid", "latency", "trace_all", "score_all", "peers")
#: not in the default run: a Neo4j push of 10M+ rows takes hours at ~8k rows/s. Run it with
#: --scales 100k,1M --stages generate,ingest,index,neo4j (needs Java 17 + Maven: tools/neo4j)
EXTRA_STAGES = ("neo4j",)


def machine_info() -> dict:
    import numba
    import numpy
    import polars

    info = {"python": platform.python_version(), "polars": polars.__version__, "numba": numba.__version__,
            "numpy": numpy.__version__, "cpus": os.cpu_count(), "platform": platform.platform()}  # fmt: skip
    for mod in ("networkx", "duckdb", "pyarrow"):
        try:
            info[mod] = __import__(mod).__version__
        except ImportError:
            info[mod] = None
    try:
        with open("/proc/cpuinfo") as f:
            info["cpu"] = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), None)
        with open("/proc/meminfo") as f:
            info["mem_gib"] = round(int(f.readline().split()[1]) / 2**20, 1)
    except OSError:
        pass
    try:
        git = ["git", "-C", str(ROOT)]
        info["git_head"] = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True,
                                          text=True).stdout.strip()  # fmt: skip
        info["library_changes"] = subprocess.run([*git, "status", "--short", "flowgraph"], capture_output=True,
                                                 text=True).stdout.split("\n")  # fmt: skip
    except OSError:
        pass
    info["library_sha256"] = library_hash()
    return info


def library_hash() -> str:
    """Short hash of ``flowgraph/*.py``: which library code a stage measured (dirty trees too)."""
    import hashlib

    h = hashlib.sha256()
    for f in sorted((ROOT / "flowgraph").glob("*.py")):
        h.update(f.name.encode() + f.read_bytes())
    return h.hexdigest()[:16]


def run_stage(stage: str, store: Path, data: Path, opts: dict, rss_limit_gb: float, log,
              cgroup: str | None = None) -> dict:  # fmt: skip
    import psutil

    cmd = [sys.executable, "-m", "benchmarks.stages", stage, "--store", str(store), "--data", str(data),
           "--opts", json.dumps(opts)]  # fmt: skip
    if cgroup:  # a memory cgroup (v1) that hard-caps the child, e.g. to spare other processes
        cmd = ["sh", "-c", f'echo $$ > {cgroup}/cgroup.procs && exec "$@"', "sh", *cmd]
    load = os.getloadavg()
    up = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(f"[{time.strftime('%H:%M:%S')}] {stage} {data.name}  ({up})", file=log, flush=True)
    lib = library_hash()
    t = time.perf_counter()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    ps = psutil.Process(proc.pid)
    max_rss, killed = 0, False
    while proc.poll() is None:
        try:
            rss = sum(p.memory_info().rss for p in [ps, *ps.children(recursive=True)])
        except psutil.Error:
            rss = 0
        max_rss = max(max_rss, rss)
        if rss > rss_limit_gb * 2**30:
            proc.kill()
            killed = True
            break
        time.sleep(0.25)
    stdout, stderr = proc.communicate()
    wall = time.perf_counter() - t
    base = {"load_before": round(load[0], 2), "uptime_before": up, "child_wall_seconds": round(wall, 2),
            "sampled_max_rss_mb": round(max_rss / 2**20), "library_sha256": lib}  # fmt: skip
    if killed:
        return {**base, "error": f"killed: RSS above {rss_limit_gb} GB", "stderr": stderr[-2000:]}
    if proc.returncode != 0:
        return {**base, "error": f"exit {proc.returncode}", "stderr": stderr[-3000:]}
    return {**json.loads(stdout.strip().splitlines()[-1]), **base}


def run_scale(label: str, args, log) -> dict:
    from benchmarks.datasets import DATA, SCALE_OF

    scale = SCALE_OF.get(label, label)
    data = DATA / f"{scale}-{args.seed}"
    store = DATA / f"{scale}-{args.seed}-bench-store"
    out_path = args.out / f"bench_{label}.json"
    res = json.loads(out_path.read_text()) if out_path.exists() and args.resume else {}
    res.update({"scale": label, "generate_scale": scale, "seed": args.seed, "data": str(data), "store": str(store),
                "command": " ".join([Path(sys.executable).name, "-m", "benchmarks", *sys.argv[1:]]),
                "machine": machine_info()})  # fmt: skip
    res.setdefault("stages", {})
    big = label in ("50M",)
    opts = {
        "generate": {"label": label, "seed": args.seed},
        "ingest": {"parts": args.ingest_parts},
        "grid": {"repeat": 1 if args.quick else 3, **({"hops": [5], "windows": [30]} if args.quick else {})},
        "latency": {"calls": 201 if args.quick else 1001, "trace_calls": 4 if big else 6 if args.quick else 21},
        "peers": {"random": args.peer_sample, "with_paths": args.peer_sample, "nx_budget": args.nx_budget,
                  "nx_timeout": args.nx_timeout, "duckdb_single": 3 if big else 10,
                  "duckdb_timeout": args.duckdb_timeout, "duckdb_memory": "8GB" if big else "6GB"},
        # same sample as "peers" (same seed and sizes); a Neo4j server of its own (tools/neo4j)
        "neo4j": {"random": args.peer_sample, "with_paths": args.peer_sample, "timeout": args.duckdb_timeout},
    }  # fmt: skip
    for stage in args.stages.split(","):
        started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        r = run_stage(stage, store, data, opts.get(stage, {}), args.rss_limit_gb, log, args.cgroup)
        r["started_utc"] = started
        res["stages"][stage] = r
        args.out.mkdir(parents=True, exist_ok=True)
        out_path.write_text(json.dumps(res, indent=2))
        print(json.dumps({stage: {k: v for k, v in r.items() if k not in ("cells", "stderr")}}), file=log, flush=True)
        if "error" in r:
            print(r.get("stderr", ""), file=log, flush=True)
            if stage in ("generate", "ingest", "index"):
                break
    return res


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0])
    ap.add_argument("--scales", default="1M,10M,50M")
    ap.add_argument("--out", type=Path, default=HERE / "out")
    ap.add_argument("--quick", action="store_true", help="one hops/window cell, fewer calls, small peer sample")
    ap.add_argument("--stages", default=",".join(ALL_STAGES))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--peer-sample", type=int, default=100, help="disbursements per group (random, with paths)")
    ap.add_argument("--nx-budget", type=float, default=300.0, help="seconds for the networkx peer per scale")
    ap.add_argument("--nx-timeout", type=float, default=60.0, help="seconds per networkx call")
    ap.add_argument("--duckdb-timeout", type=float, default=300.0, help="seconds per DuckDB query")
    ap.add_argument("--rss-limit-gb", type=float, default=14.0)
    ap.add_argument("--ingest-parts", type=int, default=1,
                    help="ingest transactions.csv in this many successive parts (bounds ingest memory)")
    ap.add_argument("--cgroup", help="memory cgroup (v1) folder each child joins, e.g. to cap its memory")
    ap.add_argument("--resume", action="store_true", help="merge into existing bench_<scale>.json")
    ap.add_argument("--report", help="comma-separated JSON files: render tables and charts only")
    args = ap.parse_args()
    if args.quick and args.peer_sample == 100:
        args.peer_sample = 20
    if args.report:
        from benchmarks.report import render

        render([Path(p) for p in args.report.split(",")], args.out)
        return
    args.out.mkdir(parents=True, exist_ok=True)
    log = sys.stderr
    for label in args.scales.split(","):
        run_scale(label, args, log)


if __name__ == "__main__":
    main()
