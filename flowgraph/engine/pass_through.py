"""Kernel of the rapid pass-through detector: an account on the proceeds' way forwards most
of an inflow within hours.

After :func:`~flowgraph.engine.reach.reach`, every qualifying in-edge of a touched account
(reverse CSR) that extends a chain from ``d`` is a candidate inflow; the account's
out-edges in the following ``within`` ms are summed until they reach the forward share;
an outflow to a suppressed account (``benign``) or to a counterparty the account had paid
at least ``known`` times in the ``hist`` ms before the inflow (its payroll, its regular
suppliers: :func:`~flowgraph.engine.outflow.known_counterparty`) is not forwarding, and a
suppressed account is no candidate.
``extra = (ratio_ppm, within, min_fwd, include_d, exclude, benign, hist, known)``. Result slots: 1 = the inflow
of the first pass-through, 5 = its account, 6 = forwarded share × 1e9. Evidence key:
(completion ts, inflow row); rows: chain to the inflow, the inflow, the outflows.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from flowgraph.engine.keep_earliest import offer_event
from flowgraph.engine.outflow import known_counterparty
from flowgraph.engine.reach import INF, ceil_ppm, chain, enter, leave, min_level, write_result


@njit(cache=True, nogil=True)
def _forwards(indptr, dst, ts, amount, o, v, tin, min_fwd, benign, hist, known):  # pragma: no cover - compiled
    """Outflow ``o`` of ``v`` counts as forwarding the inflow received at ``tin``."""
    if amount[o] < min_fwd or benign[dst[o]] != 0:
        return False
    return not known_counterparty(indptr, dst, ts, v, dst[o], tin - hist, tin, known)


@njit(cache=True, nogil=True)
def _pass_one(indptr, dst, ts, amount, row, rindptr, rsrc, rts, ramount, rrow,
              arr, pred, touched, nt, d, t0, a, tend, thr, H, ratio_ppm, within, min_fwd,
              include_d, blk, benign, hist, known, res, ev_rows, ev_len, ev_key):  # pragma: no cover  # fmt: skip
    """Rapid pass-through; event = (completion ts, inflow row)."""
    best_ts = INF
    best_in = INF
    best_A = 0
    best_share = 0.0
    best_v = -1
    min_h = -1
    n_ev = 0
    worst = -1
    cand = np.empty(2, np.int64)
    for q in range(nt):
        v = touched[q]
        if benign[v] != 0:
            continue
        if v == d:
            if not include_d:
                continue
        elif blk[v] != 0:
            continue
        lo = rindptr[v]
        hi = rindptr[v + 1]
        j0 = lo + np.searchsorted(rts[lo:hi], t0, side="right")
        j1 = lo + np.searchsorted(rts[lo:hi], tend, side="right")
        # candidates: qualifying in-edges j0..j1-1, plus for d the disbursement itself (j0-1)
        start = j0 - 1 if v == d else j0
        for j in range(start, j1):
            if j < j0:
                tin = t0
                A = a
                hin = 0
                in_row = -1
            else:
                if ramount[j] < thr:
                    continue
                u = rsrc[j]
                tin = rts[j]
                hu = min_level(arr, u, H - 1, tin)
                if hu < 0:
                    continue
                A = ramount[j]
                hin = hu + 1
                in_row = rrow[j]
            need = ceil_ppm(ratio_ppm, A)
            olo = indptr[v]
            ohi = indptr[v + 1]
            o0 = olo + np.searchsorted(ts[olo:ohi], tin, side="right")
            o1 = olo + np.searchsorted(ts[olo:ohi], tin + within, side="right")
            fwd = 0
            done = INF
            done_o = -1
            for o in range(o0, o1):
                if not _forwards(indptr, dst, ts, amount, o, v, tin, min_fwd, benign, hist, known):
                    continue
                fwd += amount[o]
                if done == INF and fwd >= need:
                    done = ts[o]
                    done_o = o
            if done == INF:
                continue
            if min_h < 0 or hin < min_h:
                min_h = hin
            if done < best_ts or (done == best_ts and in_row < best_in):
                best_ts = done
                best_in = in_row
                best_A = A
                best_v = v
                best_share = fwd / A if A > 0 else 0.0
            slot, n_ev, worst = offer_event(ev_key, n_ev, worst, cand, done, in_row, v)
            if slot >= 0:
                n = 0
                if in_row >= 0:
                    n = chain(indptr, row, pred, rsrc[j], hin - 1, ev_rows[slot], 0)
                    ev_rows[slot, n] = in_row
                    n += 1
                for o in range(o0, done_o + 1):
                    if n < ev_rows.shape[1] and _forwards(indptr, dst, ts, amount, o, v, tin, min_fwd, benign, hist, known):
                        ev_rows[slot, n] = row[o]
                        n += 1
                ev_len[slot] = n
    write_result(res, best_v >= 0, best_A, best_ts, min_h, n_ev)
    res[5] = best_v
    res[6] = int(round(best_share * 1e9))


@njit(cache=True, nogil=True)
def pass_through_worker(w, g, dk, sc, window, H, K, extra, out_res, out_rows, out_len, out_key):  # pragma: no cover  # fmt: skip
    """Worker ``w`` of the rapid pass-through batch
    (every W-th disbursement of ``dk``; see :mod:`flowgraph.engine.reach`)."""
    ratio_ppm, within, min_fwd, include_d, exclude, benign, hist, known = extra
    W = sc[0].shape[0]
    N = dk[0].shape[0]
    blk = sc[6][w] if exclude else sc[8]  # T and d, when the rule excludes them
    for i in range(w, N, W):
        nt = enter(g, dk, sc, w, i, window, H)
        _pass_one(g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7], g[8], g[9],
                  sc[0][w], sc[1][w], sc[2][w], nt, dk[0][i], dk[1][i], dk[2][i],
                  dk[1][i] + window, dk[3][i], H, ratio_ppm, within, min_fwd, include_d, blk,
                  benign, hist, known, out_res[i], out_rows[i], out_len[i], out_key[i])  # fmt: skip
        leave(dk, sc, w, i, nt)
