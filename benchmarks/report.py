"""Markdown tables and charts from ``bench_<scale>.json`` files of ``python -m benchmarks``."""

from __future__ import annotations

import json
import math
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _g(d: dict, *keys, default=None):
    for k in keys:
        if not isinstance(d, dict) or k not in d:
            return default
        d = d[k]
    return d


def _cell(runs: dict, hops: int, wd: int, threads: int) -> dict | None:
    for c in _g(runs, "stages", "grid", "cells", default=[]) or []:
        if c["hops"] == hops and c["window_days"] == wd and c["threads"] == threads:
            return c
    return None


def _f(x, nd=2, unit=""):
    if x is None:
        return "-"
    if isinstance(x, float) and nd == 0:
        return f"{x:,.0f}{unit}"
    if isinstance(x, int):
        return f"{x:,}{unit}"
    return f"{x:,.{nd}f}{unit}"


def _e2e(r: dict) -> float | None:
    parts = [_g(r, "stages", s, "seconds") for s in ("ingest", "index", "score_all")]
    return round(sum(parts), 1) if all(p is not None for p in parts) else None


def tables(runs: list[dict]) -> str:
    out = []
    out.append("| scale | transactions | disbursements | ingest s (rows/s) | index s (edges/s) | batch h5 w30, 1 thread: s (disb/s) | same, 2 threads | `trace --all` s | `score --all` s | e2e ingest+index+score s |")
    out.append("|---|---|---|---|---|---|---|---|---|---|")
    for r in runs:
        st = r["stages"]
        c1, c2 = _cell(r, 5, 30, 1), _cell(r, 5, 30, 2)
        out.append(
            f"| {r['scale']} | {_f(_g(st, 'ingest', 'transactions'))} | {_f(_g(st, 'grid', 'disbursements'))} "
            f"| {_f(_g(st, 'ingest', 'seconds'), 1)} ({_f(_g(st, 'ingest', 'rows_per_s'))}) "
            f"| {_f(_g(st, 'index', 'seconds'), 1)} ({_f(_g(st, 'index', 'edges_per_s'))}) "
            f"| {_f(_g(c1 or {}, 'seconds'), 3)} ({_f(_g(c1 or {}, 'disbursements_per_s'))}) "
            f"| {_f(_g(c2 or {}, 'seconds'), 3)} ({_f(_g(c2 or {}, 'disbursements_per_s'))}) "
            f"| {_f(_g(st, 'trace_all', 'seconds'), 1)} | {_f(_g(st, 'score_all', 'seconds'), 1)} | {_f(_e2e(r), 1)} |"
        )
    out.append("")
    out.append("| scale | `find_flow_back` p50 / p99 ms | `trace LOAN` (library) p50 / p99 ms | peak RSS MB: ingest / index / grid / latency / trace --all / score --all / peers | load before each stage (same order) |")
    out.append("|---|---|---|---|---|")
    order = ("ingest", "index", "grid", "latency", "trace_all", "score_all", "peers")
    for r in runs:
        st = r["stages"]
        lat = _g(st, "latency", default={}) or {}
        rss = " / ".join(_f(_g(st, s, "peak_rss_mb"), 0) for s in order)
        load = " / ".join(_f(_g(st, s, "load_before"), 2) for s in order)
        out.append(
            f"| {r['scale']} | {_f(_g(lat, 'find_flow_back', 'p50_ms'), 3)} / {_f(_g(lat, 'find_flow_back', 'p99_ms'), 3)} "
            f"| {_f(_g(lat, 'trace_one_loan', 'p50_ms'), 0)} / {_f(_g(lat, 'trace_one_loan', 'p99_ms'), 0)} "
            f"| {rss} | {load} |"
        )
    out.append("")
    out.append("Peers, hops 5 / window 30 days / ratio 0.1, the same sample and targets; times per disbursement:")
    out.append("")
    out.append("| scale | sample (random + with paths) | engine single call ms (mean) | engine batch ms/disb (1 thread) | networkx ms (filter / build / search) | networkx ÷ engine single | networkx ÷ engine batch | networkx build+search only ÷ engine single | equal path sets / returned amounts |")
    out.append("|---|---|---|---|---|---|---|---|---|")
    peers = [(r, _g(r, "stages", "peers", default={}) or {}) for r in runs]
    peers = [(r, p) for r, p in peers if p and "error" not in p]
    for r, p in peers:
        nxr = p.get("networkx", {})
        out.append(
            f"| {r['scale']} | {p['sample']} ({p['random']} + {p['with_paths']}) | {_f(p['engine_single_ms_mean'], 4)} "
            f"| {_f(p['engine_batch_threads1_ms_per_disb'], 4)} "
            f"| {_f(nxr.get('ms_mean'), 1)} ({_f(nxr.get('filter_ms_mean'), 1)} / {_f(nxr.get('build_ms_mean'), 1)} / {_f(nxr.get('search_ms_mean'), 2)}) "
            f"| **{_f(nxr.get('ratio_vs_engine_single'), 0)}×** | {_f(nxr.get('ratio_vs_engine_batch_threads1'), 0)}× "
            f"| {_f(nxr.get('ratio_search_only_vs_engine_single'), 0)}× "
            f"| {nxr.get('same_paths')}/{nxr.get('compared')} / {nxr.get('same_returned')}/{nxr.get('compared')} |"
        )
    out.append("")
    out.append("| scale | DuckDB load s | batch query ms/disb | ÷ engine batch | batch, pre-filtered ms/disb | ÷ engine batch | one query ms (n) | ÷ engine single | one query pre-filtered ms (n) | ÷ engine single | equal path sets / returned amounts (batch) |")
    out.append("|---|---|---|---|---|---|---|---|---|---|---|")
    for r, p in peers:
        dk = p.get("duckdb", {})

        def why(name, dk=dk):
            if not dk.get(f"{name}_failed"):
                return None
            kind = "out of memory" if "OutOfMemory" in " ".join(dk.get("failures", [])) else "timeout"
            return f"failed ({kind} after {dk.get(f'{name}_seconds')} s)"

        out.append(
            f"| {r['scale']} | {_f(dk.get('load_seconds'), 1)} | {why('batch') or _f(dk.get('batch_ms_per_disb'), 1)} "
            f"| **{_f(dk.get('ratio_batch_vs_engine_batch_threads1'), 0)}×** "
            f"| {_f(dk.get('prefiltered_batch_ms_per_disb'), 1)} | {_f(dk.get('ratio_prefiltered_batch_vs_engine_batch_threads1'), 0)}× "
            f"| {_f(dk.get('single_ms_mean'), 0)} ({dk.get('single_queries', '-')}) | {_f(dk.get('ratio_single_vs_engine_single'), 0)}× "
            f"| {_f(dk.get('prefiltered_single_ms_mean'), 1)} ({dk.get('prefiltered_single_queries', '-')}) "
            f"| **{_f(dk.get('ratio_prefiltered_single_vs_engine_single'), 0)}×** "
            f"| {dk.get('same_paths')}/{dk.get('compared')} / {dk.get('same_returned')}/{dk.get('compared')} |"
        )
    out.append("")
    out.append("Batch over every disbursement, seconds with 1 / 2 threads (disbursements with paths):")
    out.append("")
    out.append("| scale | hops | 7 days | 30 days | 90 days |")
    out.append("|---|---|---|---|---|")
    for r in runs:
        for h in (3, 4, 5):
            cells = []
            for wd in (7, 30, 90):
                c1, c2 = _cell(r, h, wd, 1), _cell(r, h, wd, 2)
                cells.append(f"{_f(_g(c1 or {}, 'seconds'), 3)} / {_f(_g(c2 or {}, 'seconds'), 3)} ({_f(_g(c1 or {}, 'with_paths'))})" if c1 else "-")
            out.append(f"| {r['scale']} | {h} | " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


def growth(runs: list[dict]) -> dict:
    """Exponent k of time ∝ transactions^k between the smallest and largest scale."""
    rs = [r for r in runs if _g(r, "stages", "ingest", "transactions")]
    if len(rs) < 2:
        return {}
    a, b = rs[0], rs[-1]
    n = math.log(b["stages"]["ingest"]["transactions"] / a["stages"]["ingest"]["transactions"])
    out = {}
    for name, get in {
        "ingest": lambda r: _g(r, "stages", "ingest", "seconds"),
        "index": lambda r: _g(r, "stages", "index", "seconds"),
        "batch_h5_w30_t1": lambda r: _g(_cell(r, 5, 30, 1) or {}, "seconds"),
        "batch_h5_w30_t2": lambda r: _g(_cell(r, 5, 30, 2) or {}, "seconds"),
        "trace_all": lambda r: _g(r, "stages", "trace_all", "seconds"),
        "score_all": lambda r: _g(r, "stages", "score_all", "seconds"),
    }.items():
        x, y = get(a), get(b)
        if x and y:
            out[name] = round(math.log(y / x) / n, 2)
    return out


def charts(runs: list[dict], where: Path = HERE) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams["svg.fonttype"] = "none"
    rs = [r for r in runs if _g(r, "stages", "ingest", "transactions")]
    n = [r["stages"]["ingest"]["transactions"] for r in rs]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    series = {
        "ingest": lambda r: _g(r, "stages", "ingest", "seconds"),
        "index build": lambda r: _g(r, "stages", "index", "seconds"),
        "flow-back batch (h5 w30, 2 threads)": lambda r: _g(_cell(r, 5, 30, 2) or {}, "seconds"),
        "trace --all": lambda r: _g(r, "stages", "trace_all", "seconds"),
        "score --all (every rule)": lambda r: _g(r, "stages", "score_all", "seconds"),
        "ingest + index + score": _e2e,
    }
    for label, get in series.items():
        ys = [get(r) for r in rs]
        pts = [(x, y) for x, y in zip(n, ys, strict=True) if y]
        if pts:
            ax1.plot(*zip(*pts, strict=True), marker="o", label=label)
    ax1.set(xscale="log", yscale="log", xlabel="transactions", ylabel="seconds", title="time")
    ax1.legend(fontsize=7)
    for st in ("ingest", "index", "grid", "trace_all", "score_all", "peers"):
        pts = [(x, _g(r, "stages", st, "peak_rss_mb")) for x, r in zip(n, rs, strict=True)]
        pts = [(x, y) for x, y in pts if y]
        if pts:
            ax2.plot(*zip(*pts, strict=True), marker="o", label=st)
    ax2.set(xscale="log", yscale="log", xlabel="transactions", ylabel="peak RSS (MB)", title="memory")
    ax2.legend(fontsize=7)
    fig.tight_layout()
    p1 = where / "cost_curve.svg"
    fig.savefig(p1)
    plt.close(fig)

    fig, axes = plt.subplots(1, len(rs), figsize=(4 * max(1, len(rs)), 3.6), squeeze=False, sharey=True)
    for ax, r in zip(axes[0], rs, strict=True):
        n_disb = _g(r, "stages", "grid", "disbursements") or 1
        for wd in (7, 30, 90):
            for th, ls in ((1, "-"), (2, "--")):
                pts = [(h, _g(_cell(r, h, wd, th) or {}, "seconds")) for h in (3, 4, 5)]
                pts = [(h, s / n_disb * 1e6) for h, s in pts if s]
                if pts:
                    ax.plot(*zip(*pts, strict=True), ls, marker="o", label=f"{wd} d, {th} thr")
        ax.set(xticks=[3, 4, 5], xlabel="max hops", ylabel="µs per disbursement (batch, all)",
               title=f"{r['scale']} transactions ({n_disb:,} disbursements)")  # fmt: skip
        ax.set_ylim(bottom=0)
        ax.legend(fontsize=7)
    fig.tight_layout()
    p2 = where / "hops_window.svg"
    fig.savefig(p2)
    plt.close(fig)
    return [p1, p2]


def render(paths: list[Path], out: Path) -> None:
    runs = [json.loads(p.read_text()) for p in paths if p.exists()]
    md = tables(runs)
    g = growth(runs)
    md += "\nGrowth exponent k (time ∝ transactions^k, smallest → largest scale): " + json.dumps(g) + "\n"
    out.mkdir(parents=True, exist_ok=True)
    (out / "tables.md").write_text(md)
    made = charts(runs)
    print(md)
    print("charts:", ", ".join(str(p) for p in made))
