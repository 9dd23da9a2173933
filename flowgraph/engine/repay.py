"""Kernel of the repay-with-loan detector: the proceeds reach an account that then repays a loan.

After :func:`~flowgraph.engine.reach.reach`, every touched account with repayments is
checked for the first qualifying repayment after its earliest arrival (binary search into
its time-sorted repayments). ``extra = (rp_indptr, rp_ts, rp_amount, rp_idx, rthrs,
rp_routine)``: repayments grouped by paying account (CSR over accounts, sorted by ts then
input order, ``rp_idx`` the input position), the per-disbursement repayment floor, and per
repayment the time from which it is a routine instalment (a repayment with
``rp_routine < t0`` does not count for a disbursement at ``t0``). Result slots:
5 = input position of the first repayment, 6 = its account, 7 = repaying accounts reached.
Evidence key: (repayment ts, repayment position), one chain per repaying account.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from flowgraph.engine.keep_earliest import offer_event
from flowgraph.engine.reach import INF, chain, enter, leave, write_result


@njit(cache=True, nogil=True)
def _first_repayment(rp_ts, rp_amount, rp_routine, lo, hi, after, tend, rthr, t0):  # pragma: no cover - compiled
    """Position of the first repayment in ``lo:hi`` with ``after < ts <= tend``,
    ``amount >= rthr`` and not routine at ``t0``, or -1."""
    j = lo + np.searchsorted(rp_ts[lo:hi], after, side="right")
    while j < hi and rp_ts[j] <= tend:
        if rp_amount[j] >= rthr and rp_routine[j] >= t0:
            return j
        j += 1
    return -1


@njit(cache=True, nogil=True)
def _repay_one(indptr, row, arr, pred, touched, nt, t0, tend, H, rthr,
               rp_indptr, rp_ts, rp_amount, rp_idx, rp_routine, res, ev_rows, ev_len, ev_key):  # pragma: no cover  # fmt: skip
    best_ts = INF
    best_idx = INF
    best_amt = 0
    best_v = -1
    min_h = -1
    n_ev = 0
    worst = -1
    n_acc = 0
    cand = np.empty(2, np.int64)
    for q in range(nt):
        v = touched[q]
        lo = rp_indptr[v]
        hi = rp_indptr[v + 1]
        if lo == hi:
            continue
        av = arr[v, H]
        if av == INF:
            continue
        first_j = _first_repayment(rp_ts, rp_amount, rp_routine, lo, hi, av, tend, rthr, t0)
        if first_j < 0:
            continue
        n_acc += 1
        # fewest hops for this account: smallest h with a qualifying repayment after arr[v, h]
        for h in range(H + 1):
            ah = arr[v, h]
            if ah == INF:
                continue
            if _first_repayment(rp_ts, rp_amount, rp_routine, lo, hi, ah, tend, rthr, t0) >= 0:
                if min_h < 0 or h < min_h:
                    min_h = h
                break
        tr = rp_ts[first_j]
        ri = rp_idx[first_j]
        if tr < best_ts or (tr == best_ts and ri < best_idx):
            best_ts = tr
            best_idx = ri
            best_amt = rp_amount[first_j]
            best_v = v
        # evidence: one chain per repaying account, the K earliest repayments
        slot, n_ev, worst = offer_event(ev_key, n_ev, worst, cand, tr, ri, v)
        if slot >= 0:
            ev_len[slot] = chain(indptr, row, pred, v, H, ev_rows[slot], 0)
    write_result(res, best_v >= 0, best_amt, best_ts, min_h, n_ev)
    res[5] = best_idx if best_v >= 0 else -1
    res[6] = best_v
    res[7] = n_acc


@njit(cache=True, nogil=True)
def repay_worker(w, g, dk, sc, window, H, K, extra, out_res, out_rows, out_len, out_key):  # pragma: no cover  # fmt: skip
    """Worker ``w`` of the repay-with-loan batch
    (every W-th disbursement of ``dk``; see :mod:`flowgraph.engine.reach`)."""
    rp_indptr, rp_ts, rp_amount, rp_idx, rthrs, rp_routine = extra
    W = sc[0].shape[0]
    N = dk[0].shape[0]
    for i in range(w, N, W):
        nt = enter(g, dk, sc, w, i, window, H)
        _repay_one(g[0], g[4], sc[0][w], sc[1][w], sc[2][w], nt, dk[1][i], dk[1][i] + window,
                   H, rthrs[i], rp_indptr, rp_ts, rp_amount, rp_idx, rp_routine,
                   out_res[i], out_rows[i], out_len[i], out_key[i])  # fmt: skip
        leave(dk, sc, w, i, nt)
