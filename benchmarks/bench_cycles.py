"""Transfer-cycle finder vs networkx on the CodeCraft 2020 contest data.

Run from the repository root::

    python benchmarks/bench_cycles.py [--data DIR] [--repeat 3] [--skip-networkx]

For every data set it prints the number of cycles found by
:func:`flowgraph.engine.cycles.find_cycles` and by the networkx reference (they must be
equal), the seconds each took (warm, best of ``--repeat``), the speed-up, and
the edges per second.  It also measures, in fresh interpreters, the latency of
the first call (import + JIT) with an empty numba cache (compile) and with a
populated one (load), and the peak resident memory of a full run.
"""

from __future__ import annotations

import argparse
import os
import pickle
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from flowgraph.engine.cycles import find_cycles, read_edge_list  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "codecraft2020"
SETS = [
    ("FirstRound_std", {}),
    ("SecondRound_std", {"amount_ratio": (0.2, 3)}),
    ("FirstRound_3738", {}),
    ("FirstRound_38252", {}),
    ("FirstRound_58284", {}),
]

FIRST_CALL = """
import time, resource, sys
t0 = time.perf_counter()
from flowgraph.engine.cycles import find_cycles, read_edge_list
t1 = time.perf_counter()
find_cycles([0, 1, 2], [1, 2, 0], [1, 1, 1], amount_ratio=(0.2, 3))
t2 = time.perf_counter()
print(f"{t1 - t0:.3f} {t2 - t1:.3f}")
"""

FULL_RUN = """
import resource, sys
from flowgraph.engine.cycles import find_cycles_in_edge_list, read_edge_list
edges = read_edge_list(sys.argv[1])
n = len(find_cycles_in_edge_list(edges))
print(n, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
"""


def _best(fn, repeat: int) -> tuple[float, object]:
    best = float("inf")
    out = None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def _python(code: str, *args: str, env: dict[str, str] | None = None) -> str:
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    res = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        env=full_env,
        check=True,
    )
    return res.stdout.strip()


REFERENCE = """
import ast, pickle, sys, time
from flowgraph.engine.cycles import read_edge_list
from flowgraph.engine.cycles_reference import simple_cycles_reference
edges = read_edge_list(sys.argv[1])
kw = ast.literal_eval(sys.argv[2])
src, dst, _ = edges.to_dense()
t = time.perf_counter()
out = simple_cycles_reference(src, dst, edges.amount, **kw)
sys.stdout.buffer.write(pickle.dumps((time.perf_counter() - t, out)))
"""


def _reference_in_subprocess(path: Path, kw: dict, timeout: float):
    """(seconds, cycles) of the networkx reference, or (timeout, None) when it takes too long."""
    try:
        res = subprocess.run(
            [sys.executable, "-c", REFERENCE, str(path), repr(kw)],
            capture_output=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            check=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return timeout, None
    return pickle.loads(res.stdout)


def main() -> int:
    sys.stdout.reconfigure(line_buffering=True)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--skip-networkx", action="store_true")
    ap.add_argument("--sets", nargs="*", help="data set names (default: all)")
    ap.add_argument(
        "--nx-timeout", type=float, default=600.0, help="seconds before giving up on networkx"
    )
    args = ap.parse_args()

    print("first call (fresh interpreter: import s, first find_cycles s)")
    with tempfile.TemporaryDirectory() as cache:
        cold = _python(FIRST_CALL, env={"NUMBA_CACHE_DIR": cache})
        warm = _python(FIRST_CALL, env={"NUMBA_CACHE_DIR": cache})
    print(f"  empty numba cache (compile): {cold}")
    print(f"  populated numba cache      : {warm}")
    print()

    header = f"{'data set':<18}{'edges':>8}{'cycles':>9}{'nx cycles':>10}{'flowgraph s':>12}"
    header += f"{'networkx s':>12}{'speed-up':>10}{'edges/s':>12}{'peak MB':>9}"
    print(header)
    ok = True
    for name, kw in SETS:
        if args.sets and name not in args.sets:
            continue
        path = args.data / name / "test_data.txt"
        if not path.exists():
            print(f"{name:<18} (missing)")
            continue
        edges = read_edge_list(path)
        src, dst, _ = edges.to_dense()
        find_cycles(src, dst, edges.amount, **kw)  # warm up threads and caches
        t_fg, got = _best(lambda: find_cycles(src, dst, edges.amount, **kw), args.repeat)  # noqa: B023
        if args.skip_networkx:
            t_nx, want = float("nan"), None
        else:
            t_nx, want = _reference_in_subprocess(path, kw, args.nx_timeout)
            if want is not None:
                ok &= got == want
        peak = "-"
        if not kw:
            peak = _python(FULL_RUN, str(path)).split()[1]
        n_nx = "-" if want is None else str(len(want))
        if want is None and not args.skip_networkx:
            n_nx = "timeout"
        speed = t_nx / t_fg  # a lower bound when networkx timed out
        print(
            f"{name:<18}{len(edges):>8}{len(got):>9}{n_nx:>10}{t_fg:>12.4f}"
            f"{t_nx:>12.3f}{speed:>9.0f}x{len(edges) / t_fg:>12.0f}{peak:>9}"
        )
    if not ok:
        print("MISMATCH between flowgraph and networkx")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
