"""Kernel of the transfer-cycle detector: the proceeds feed a time-respecting cycle.

After :func:`~flowgraph.engine.reach.reach`, a depth-first search from every reached,
unblocked account ``s`` enumerates simple cycles ``s → … → s`` whose transfers start after
the proceeds arrived at ``s``, increase in time, stay in the window and above the hop
floor, and (optionally) keep consecutive amounts within a ppm band; a step budget bounds
the search per disbursement. ``extra = (Lmin, Lmax, lo_ppm, hi_ppm, budget, exclude)``.
Result slots: 1 = smallest transfer of the first cycle to close, 5 = its start account,
6 = its length, 7 = budget hit, 8 = start accounts with a cycle. Evidence key: (closing
ts, start account), one per start account: feeding chain then its first-closing cycle.
(The CodeCraft simple-cycle search over the whole graph is :mod:`flowgraph.engine.cycles`.)
"""

from __future__ import annotations

import numpy as np
from numba import njit

from flowgraph.engine.keep_earliest import offer_event
from flowgraph.engine.reach import (
    INF,
    ceil_ppm,
    chain,
    enter,
    floor_ppm,
    leave,
    min_level,
    write_result,
)


@njit(cache=True, nogil=True)
def _cycle_key_less(ta, la, ra, tb, lb, rb):  # pragma: no cover - compiled
    if ta != tb:
        return ta < tb
    if la != lb:
        return la < lb
    for i in range(la):
        if ra[i] != rb[i]:
            return ra[i] < rb[i]
    return False


@njit(cache=True, nogil=True)
def _cycle_one(indptr, dst, ts, amount, row, arr, pred, touched, nt, tend, thr, R,
               Lmin, Lmax, lo_ppm, hi_ppm, blocked, on_path, budget,
               res, ev_rows, ev_len, ev_key, cyc_rows):  # pragma: no cover  # fmt: skip
    """Temporal cycles from reached accounts; event key (closing ts, length, rows)."""
    best_t = INF
    best_L = 0
    best_rows = np.empty(Lmax, np.int64)
    best_amt = 0
    best_s = -1
    min_h = -1
    steps = 0
    hit = False
    n_ev = 0
    worst = -1
    n_starts = 0
    ev_cand = np.empty(2, np.int64)
    st_node = np.empty(Lmax + 1, np.int64)
    st_pos = np.empty(Lmax + 1, np.int64)
    st_end = np.empty(Lmax + 1, np.int64)
    p_edge = np.empty(Lmax, np.int64)
    cand = np.empty(Lmax, np.int64)
    for q in range(nt):
        s = touched[q]
        if blocked[s] != 0:
            continue
        a_s = arr[s, R]
        if a_s == INF:
            continue
        s_t = INF
        s_L = 0
        s_min_h = -1
        s_first_h = 0
        on_path[s] = 1
        st_node[0] = s
        lo = indptr[s]
        hi = indptr[s + 1]
        st_pos[0] = lo + np.searchsorted(ts[lo:hi], a_s, side="right")
        st_end[0] = lo + np.searchsorted(ts[lo:hi], tend, side="right")
        k = 0
        while k >= 0:
            if st_pos[k] >= st_end[k]:
                if k > 0:
                    on_path[st_node[k]] = 0
                k -= 1
                continue
            e = st_pos[k]
            st_pos[k] = e + 1
            if amount[e] < thr:
                continue
            if k > 0:
                prev = amount[p_edge[k - 1]]
                if lo_ppm > 0 and amount[e] < ceil_ppm(lo_ppm, prev):
                    continue
                if hi_ppm > 0 and amount[e] > floor_ppm(hi_ppm, prev):
                    continue
            steps += 1
            if steps > budget:
                hit = True
                break
            v = dst[e]
            if v == s:
                L = k + 1
                if L < Lmin:
                    continue
                p_edge[k] = e
                for i in range(L):
                    cand[i] = row[p_edge[i]]
                te = ts[e]
                h0 = min_level(arr, s, R, ts[p_edge[0]])
                if s_min_h < 0 or h0 < s_min_h:
                    s_min_h = h0
                if s_t == INF or _cycle_key_less(te, L, cand, s_t, s_L, cyc_rows):
                    s_t = te
                    s_L = L
                    s_first_h = h0
                    for i in range(L):
                        cyc_rows[i] = cand[i]
                if best_s < 0 or _cycle_key_less(te, L, cand, best_t, best_L, best_rows):
                    best_t = te
                    best_L = L
                    best_s = s
                    m = amount[p_edge[0]]
                    for i in range(L):
                        best_rows[i] = cand[i]
                        if amount[p_edge[i]] < m:
                            m = amount[p_edge[i]]
                    best_amt = m
                continue
            if on_path[v] != 0 or blocked[v] != 0 or k + 1 >= Lmax:
                continue
            p_edge[k] = e
            k += 1
            st_node[k] = v
            on_path[v] = 1
            lo = indptr[v]
            hi = indptr[v + 1]
            st_pos[k] = lo + np.searchsorted(ts[lo:hi], ts[e], side="right")
            st_end[k] = lo + np.searchsorted(ts[lo:hi], tend, side="right")
        for qq in range(1, k + 1):
            on_path[st_node[qq]] = 0
        on_path[s] = 0
        if s_t != INF:
            n_starts += 1
            if min_h < 0 or s_min_h < min_h:
                min_h = s_min_h
            slot, n_ev, worst = offer_event(ev_key, n_ev, worst, ev_cand, s_t, s, s_L)
            if slot >= 0:
                # feeding chain: fewest hops arriving before the cycle's first transfer
                n = chain(indptr, row, pred, s, s_first_h, ev_rows[slot], 0)
                for i in range(s_L):
                    ev_rows[slot, n + i] = cyc_rows[i]
                ev_len[slot] = n + s_L
        if hit:
            break
    write_result(res, best_s >= 0, best_amt, best_t, min_h, n_ev)
    res[5] = best_s
    res[6] = best_L
    res[7] = 1 if hit else 0
    res[8] = n_starts


@njit(cache=True, nogil=True)
def transfer_cycle_worker(w, g, dk, sc, window, H, K, extra, out_res, out_rows, out_len, out_key):  # pragma: no cover  # fmt: skip
    """Worker ``w`` of the transfer-cycle batch
    (every W-th disbursement of ``dk``; see :mod:`flowgraph.engine.reach`)."""
    Lmin, Lmax, lo_ppm, hi_ppm, budget, exclude = extra
    W = sc[0].shape[0]
    N = dk[0].shape[0]
    cyc_rows = np.empty(max(Lmax, 1), np.int64)
    blk = sc[6][w] if exclude else sc[8]  # T and d, when the rule excludes them
    for i in range(w, N, W):
        nt = enter(g, dk, sc, w, i, window, H)
        _cycle_one(g[0], g[1], g[2], g[3], g[4], sc[0][w], sc[1][w], sc[2][w], nt,
                   dk[1][i] + window, dk[3][i], H, Lmin, Lmax, lo_ppm, hi_ppm, blk, sc[7][w],
                   budget, out_res[i], out_rows[i], out_len[i], out_key[i], cyc_rows)  # fmt: skip
        leave(dk, sc, w, i, nt)
