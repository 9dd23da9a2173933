"""Kernel of the prohibited-destination detector: the proceeds reach a flagged account.

After :func:`~flowgraph.engine.reach.reach`, the touched accounts flagged in ``bad`` are the
destinations reached. ``extra = (bad, include_d)``: a uint8 flag per account and whether a
disbursement straight into a flagged ``d`` fires at 0 hops. Result slots: 1 = the sum of
qualifying chain transactions from unflagged into flagged accounts (capped at ``a``),
5 = the first destination, 7 = destinations reached. Evidence key: (arrival, account).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from flowgraph.engine.keep_earliest import offer_event
from flowgraph.engine.reach import INF, chain, enter, leave, min_level, write_result


@njit(cache=True, nogil=True)
def _prohibited_one(indptr, dst, ts, amount, row, arr, pred, touched, nt, d, t0, tend, thr, H,
                    bad, a, include_d, res, ev_rows, ev_len, ev_key):  # pragma: no cover  # fmt: skip
    best_ts = INF
    best_v = -1
    min_h = -1
    total = 0
    n_ev = 0
    worst = -1
    n_acc = 0
    cand = np.empty(2, np.int64)
    if include_d and bad[d] != 0:
        best_ts = t0
        best_v = d
        min_h = 0
        total = a
        n_acc = 1
    for q in range(nt):
        v = touched[q]
        if v == d or bad[v] == 0:
            continue
        av = arr[v, H]
        if av == INF:
            continue
        n_acc += 1
        if av < best_ts or (av == best_ts and v < best_v):
            best_ts = av
            best_v = v
        h = min_level(arr, v, H, INF)
        if min_h < 0 or h < min_h:
            min_h = h
        slot, n_ev, worst = offer_event(ev_key, n_ev, worst, cand, av, v, v)
        if slot >= 0:
            ev_len[slot] = chain(indptr, row, pred, v, H, ev_rows[slot], 0)
    # amount: qualifying transactions from non-prohibited into prohibited accounts (not d)
    if best_v >= 0 and not (include_d and bad[d] != 0):
        for q in range(nt):
            u = touched[q]
            if bad[u] != 0:
                continue
            au = arr[u, H - 1]
            if au == INF:
                continue
            lo = indptr[u]
            hi = indptr[u + 1]
            s = lo + np.searchsorted(ts[lo:hi], au, side="right")
            b = lo + np.searchsorted(ts[lo:hi], tend, side="right")
            for e in range(s, b):
                v = dst[e]
                if amount[e] >= thr and bad[v] != 0 and v != d:
                    total += amount[e]
        if total > a:
            total = a
    write_result(res, best_v >= 0, total, best_ts, min_h, n_ev)
    res[5] = best_v
    res[6] = 0
    res[7] = n_acc


@njit(cache=True, nogil=True)
def prohibited_worker(w, g, dk, sc, window, H, K, extra, out_res, out_rows, out_len, out_key):  # pragma: no cover  # fmt: skip
    """Worker ``w`` of the prohibited-destination batch
    (every W-th disbursement of ``dk``; see :mod:`flowgraph.engine.reach`)."""
    bad, include_d = extra
    W = sc[0].shape[0]
    N = dk[0].shape[0]
    for i in range(w, N, W):
        nt = enter(g, dk, sc, w, i, window, H)
        _prohibited_one(g[0], g[1], g[2], g[3], g[4], sc[0][w], sc[1][w], sc[2][w], nt,
                        dk[0][i], dk[1][i], dk[1][i] + window, dk[3][i], H, bad, dk[2][i],
                        include_d, out_res[i], out_rows[i], out_len[i], out_key[i])  # fmt: skip
        leave(dk, sc, w, i, nt)
