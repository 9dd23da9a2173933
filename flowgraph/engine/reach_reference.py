"""Brute-force building blocks for the slow references of the path detectors.

Where :mod:`flowgraph.engine.reach` keeps only the earliest arrival per account and hop
count, these enumerate every simple time-respecting chain explicitly, with plain Python
lists and no pruning. Each rule kind's ``reference_*`` function is written from its
definition on top of them, and the tests compare it with the kind's detector.

>>> import numpy as np
>>> from flowgraph.engine.csr import build_index
>>> idx = build_index(np.array([0, 1], np.int32), np.array([1, 2], np.int32),
...                   np.array([5, 6]), np.array([50, 50]), np.array(["d", "x", "y"]))
>>> out = edges_by_src(idx)
>>> [(v, arr, hops) for v, arr, hops, _ in simple_chains(out, 0, 0, 100, 10, 2)]
[(0, 0, 0), (1, 5, 1), (2, 6, 2)]
"""

from __future__ import annotations

import numpy as np

Edge = tuple[int, int, int, int]  # (ts, row, dst, amount)


def edges_by_src(index) -> dict[int, list[Edge]]:
    """Account → its out-edges ``(ts, row, dst, amount)`` in the index's (ts, row) order."""
    ip = np.asarray(index.indptr).tolist()
    dst = np.asarray(index.dst).tolist()
    ts = np.asarray(index.ts).tolist()
    am = np.asarray(index.amount).tolist()
    rw = np.asarray(index.row).tolist()
    out = {}
    for u in range(len(ip) - 1):
        out[u] = [(ts[e], rw[e], dst[e], am[e]) for e in range(ip[u], ip[u + 1])]
    return out


def simple_chains(out, d, t0, tend, thr, H) -> list[tuple[int, int, int, list[Edge]]]:
    """Every simple time-respecting chain from ``d``: ``(end, arrival, hops, edges)``.

    Transactions after ``t0``, strictly increasing in time, at most ``tend``, each at
    least ``thr``, at most ``H`` of them, no account twice; ``(d, t0, 0, [])`` first.
    """
    res = [(d, t0, 0, [])]

    def rec(u, t, hops, seen, path):
        if hops == H:
            return
        for e in out[u]:
            te, _, v, am = e
            if te <= t or te > tend or am < thr or v in seen:
                continue
            p = [*path, e]
            res.append((v, te, hops + 1, p))
            seen.add(v)
            rec(v, te, hops + 1, seen, p)
            seen.discard(v)

    rec(d, t0, 0, {d}, [])
    return res


def earliest_arrivals(out, d, t0, tend, thr, H) -> dict[int, int]:
    """Earliest arrival per account over every simple chain of at most ``H`` hops."""
    best = {}
    for v, arr, _, _ in simple_chains(out, d, t0, tend, thr, H):
        if v not in best or arr < best[v]:
            best[v] = arr
    return best
