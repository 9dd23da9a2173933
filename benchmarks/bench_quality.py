"""Detection quality on generated labelled banks (issue #4).

    PYTHONPATH=. python benchmarks/bench_quality.py [--runs tiny:0,tiny:1,...]

Runs ``flowgraph.synthetic.evaluate.evaluate(data_dir)`` per (scale, seed). Data go to
``benchmarks/data/<scale>-<seed>`` (generated when missing); ``medium-0`` reuses the
folder and the store of ``bench_flow_back.py`` (``benchmarks/data/medium-0-store``),
every other run scores into a fresh store under ``benchmarks/data/quality-stores/``.
With ``--finbench SNAPSHOT`` it instead ingests a FinBench snapshot, scores every
disbursement as of the last data day (first run and warm runs), counts the distinct
disbursements each rule kind fires on and times ``cli.py trace --all --json``
(``benchmarks/out/finbench_score.json``).
Each run is a child process. Prints JSON lines as runs finish and writes all of them to
``benchmarks/out/quality.json``.

Per run: recall per typology, lowest recall, flow-back alerts on negative controls,
per-rule precision, disbursements, alerts and scoring seconds. Targets: recall 1.0 on
every typology and 0 flow-back alerts on negative controls.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DEFAULT_RUNS = "tiny:0,tiny:1,tiny:2,small:0,small:1,small:2,medium:0,medium:1,medium:2"


def child(scale: str, seed: int) -> dict:
    from flowgraph.synthetic.evaluate import evaluate
    from flowgraph.synthetic.generate import generate

    data = HERE / "data" / f"{scale}-{seed}"
    gen = None
    if not (data / "labels.parquet").exists():
        t = time.perf_counter()
        generate(data, scale, seed)
        gen = round(time.perf_counter() - t, 1)
    if scale == "medium" and seed == 0:
        store = HERE / "data" / "medium-0-store"
    else:
        store = HERE / "data" / "quality-stores" / f"{scale}-{seed}"
        shutil.rmtree(store, ignore_errors=True)
    t = time.perf_counter()
    res = evaluate(data, store_dir=store)
    res["evaluate_seconds"] = round(time.perf_counter() - t, 2)
    res["generate_seconds"] = gen
    res["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    res["scale"], res["seed"] = scale, seed
    return res


def finbench(snapshot: str, repeat: int) -> dict:
    """Ingest a FinBench snapshot, score it (all disbursements, last day) cold then warm."""
    from flowgraph.ingest.finbench import read_finbench
    from flowgraph.ingest.load import ingest_frames
    from flowgraph.rules.alerts import read_alerts
    from flowgraph.rules.batch import last_data_day, score_days
    from flowgraph.rules.pack import load_pack
    from flowgraph.store.embedded import Store

    root = HERE / "data" / "finbench-store"
    shutil.rmtree(root, ignore_errors=True)
    store = Store.init(root)
    out: dict = {"snapshot": snapshot, "store": str(root), "load_before": [round(x, 2) for x in os.getloadavg()]}
    t = time.perf_counter()
    rep = ingest_frames(store, read_finbench(snapshot))
    out["ingest_seconds"] = round(time.perf_counter() - t, 2)
    out["ingest"] = {k: rep[k] for k in ("loaded", "rejected")} | {"tables": rep["tables"]}
    day = last_data_day(store)
    pack = load_pack()
    out["as_of"] = day.isoformat()
    out["rulepack"] = f"{pack.id}@{pack.version}"
    runs = []
    for _ in range(repeat):
        load = round(os.getloadavg()[0], 2)
        t = time.perf_counter()
        summary = score_days(store, [day], pack, every=True)
        runs.append({"seconds": round(time.perf_counter() - t, 3), "load_1m": load,
                     "summary_seconds": summary["seconds"]})
    out["score_runs"] = runs
    out["disbursements"] = summary["disbursements"]
    out["alerts"] = summary["alerts"]
    out["by_rule"] = summary["by_rule"]
    warm = min(r["seconds"] for r in runs[1:]) if len(runs) > 1 else runs[0]["seconds"]
    out["score_seconds_first"] = runs[0]["seconds"]
    out["score_seconds_warm_best"] = warm
    out["disbursements_per_s_warm"] = round(summary["disbursements"] / warm)
    alerts = read_alerts(store, day)
    import polars as pl

    per_kind = alerts.group_by("kind").agg(
        pl.col("disbursement_id").n_unique().alias("disbursements"), pl.len().alias("alerts")
    ).sort("kind")
    out["distinct_disbursements_by_kind"] = {r["kind"]: r["disbursements"] for r in per_kind.iter_rows(named=True)}
    out["alerts_by_kind"] = {r["kind"]: r["alerts"] for r in per_kind.iter_rows(named=True)}
    out["disbursements_with_any_alert"] = alerts["disbursement_id"].n_unique()
    out["total_disbursements_in_store"] = store.status()["tables"]["disbursements"]["rows"]
    # CLI trace --all --json end to end (fresh interpreter, index already built)
    cli_runs = []
    for _ in range(repeat):
        load = round(os.getloadavg()[0], 2)
        t = time.perf_counter()
        p = subprocess.run([sys.executable, str(ROOT / "cli.py"), "--store", str(root), "trace", "--all", "--json"],
                           capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
        cli_runs.append({"seconds": round(time.perf_counter() - t, 2), "load_1m": load, "rc": p.returncode,
                         "lines": len(p.stdout.splitlines()),
                         "with_paths": sum(1 for x in p.stdout.splitlines() if json.loads(x)["path_count"] > 0)})
    out["cli_trace_all_runs"] = cli_runs
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    out["load_after"] = [round(x, 2) for x in os.getloadavg()]
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", default=DEFAULT_RUNS)
    ap.add_argument("--child")
    ap.add_argument("--out", type=Path, default=HERE / "out" / "quality.json")
    ap.add_argument("--finbench", help="a FinBench snapshot folder: score it instead")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    if args.finbench:
        res = finbench(args.finbench, args.repeat)
        (HERE / "out").mkdir(exist_ok=True)
        (HERE / "out" / "finbench_score.json").write_text(json.dumps(res, indent=2))
        print(json.dumps(res, indent=2))
        return
    if args.child:
        scale, seed = args.child.split(":")
        print(json.dumps(child(scale, int(seed))))
        return
    results = json.loads(args.out.read_text()) if args.out.exists() else {}
    for run in args.runs.split(","):
        load = [round(x, 2) for x in os.getloadavg()]
        print(f"{run} (load {load[0]})", file=sys.stderr, flush=True)
        t = time.perf_counter()
        p = subprocess.run([sys.executable, __file__, "--child", run], capture_output=True, text=True,
                           env={**os.environ, "PYTHONPATH": str(ROOT)})
        if p.returncode:
            res = {"error": p.stderr[-3000:]}
        else:
            res = json.loads(p.stdout.strip().splitlines()[-1])
        res["load_before"] = load
        res["load_after"] = [round(x, 2) for x in os.getloadavg()]
        res["child_wall_seconds"] = round(time.perf_counter() - t, 1)
        results[run] = res
        print(json.dumps(res), flush=True)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
