"""Kernels of the outflow detectors: what leaves ``d`` soon after ``t0``, and to whom.

:func:`large_outflows` (single large transfers) and :func:`spend_shares` (the share of the
proceeds spent, by counterparty class) scan ``d``'s time-sorted out-edges after ``t0``
with a binary search; no reach. :func:`known_counterparty` is the counterparty-history
test the outflow and pass-through detectors share: ``u`` paid ``v`` at least ``need``
times in ``[t_lo, t_hi)``.

Exclusions per disbursement ``i``: the borrower side ``T`` (``target_ids`` of
``target_indptr[i]:target_indptr[i+1]``, sorted), its declared payee ``payee[i]`` (``-1``:
none), accounts flagged in ``benign`` (the pack's suppression list), and counterparties
``d`` paid at least ``known`` times in the ``hist`` ms before ``t0``.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from flowgraph.engine.hits import Disbursements


@njit(cache=True, nogil=True)
def known_counterparty(indptr, dst, ts, u, v, t_lo, t_hi, need):  # pragma: no cover - compiled
    """``u`` paid ``v`` at least ``need`` times with ``t_lo <= ts < t_hi`` (``need <= 0``: False)."""
    if need <= 0:
        return False
    lo = indptr[u]
    hi = indptr[u + 1]
    a = lo + np.searchsorted(ts[lo:hi], t_lo, side="left")
    b = lo + np.searchsorted(ts[lo:hi], t_hi, side="left")
    n = 0
    for e in range(a, b):
        if dst[e] == v:
            n += 1
            if n >= need:
                return True
    return False


@njit(cache=True, nogil=True)
def _excluded(indptr, dst, ts, i, d, v, t0, tip, tid, payee, benign, hist, known):  # pragma: no cover - compiled
    """Counterparty ``v`` of disbursement ``i`` does not count (borrower side, payee,
    suppressed, or established)."""
    if v == d or v == payee[i] or benign[v] != 0:
        return True
    lo = tip[i]
    hi = tip[i + 1]
    if hi > lo:
        k = lo + np.searchsorted(tid[lo:hi], v)
        if k < hi and tid[k] == v:
            return True
    return known_counterparty(indptr, dst, ts, d, v, t0 - hist, t0, known)


@njit(cache=True, nogil=True)
def _outflow_kernel(indptr, dst, ts, amount, row, accounts, t0s, thrs, within, K,
                    tip, tid, payee, benign, hist, known, out_res, out_rows):  # pragma: no cover  # fmt: skip
    for i in range(accounts.shape[0]):
        d = accounts[i]
        lo = indptr[d]
        hi = indptr[d + 1]
        a = lo + np.searchsorted(ts[lo:hi], t0s[i], side="right")
        b = lo + np.searchsorted(ts[lo:hi], t0s[i] + within, side="right")
        n = 0
        best = -1
        first = -1
        for e in range(a, b):
            if amount[e] < thrs[i]:
                continue
            if _excluded(indptr, dst, ts, i, d, dst[e], t0s[i], tip, tid, payee, benign, hist, known):
                continue
            if first < 0:
                first = e
            if best < 0 or amount[e] > amount[best]:
                best = e
            if n < K:
                out_rows[i, n] = row[e]
            n += 1
        if n:
            out_res[i, 0] = 1
            out_res[i, 1] = amount[best]
            out_res[i, 2] = ts[first]
            out_res[i, 3] = n
            out_res[i, 4] = dst[best]
            out_res[i, 5] = row[best]


def _exclusions(index, disb: Disbursements, benign) -> tuple[np.ndarray, np.ndarray]:
    n = index.n_accounts
    payee = disb.payee_ids()
    if payee.size and payee.max() >= n:
        raise ValueError("payee account id out of range")
    ben = np.zeros(n, np.uint8) if benign is None else np.ascontiguousarray(benign, np.uint8)
    if ben.shape[0] != n:
        raise ValueError("benign must have one flag per account")
    return payee, ben


def large_outflows(index, disb: Disbursements, thrs: np.ndarray, within: int, K: int,
                   benign=None, hist: int = 0, known: int = 0) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Per disbursement, its out-edges with ``t0 < ts <= t0 + within``, amount at least
    ``thrs[i]`` and a counterparty that is not excluded (see the module docstring):
    ``out_res[i]`` = (any, largest amount, first ts, count, largest's destination,
    largest's row) and ``out_rows[i, :K]`` the rows of the first ``K``."""
    acc, t0, _, tip, tid = disb.checked(index.n_accounts)
    payee, ben = _exclusions(index, disb, benign)
    N = acc.shape[0]
    out_res = np.zeros((N, 6), np.int64)
    out_rows = np.zeros((N, max(K, 1)), np.int64)
    a = index.kernel_arrays
    _outflow_kernel(a[0], a[1], a[2], a[3], a[4], acc, t0, thrs, int(within), int(K),
                    tip, tid, payee, ben, int(hist), int(known), out_res, out_rows)  # fmt: skip
    return out_res, out_rows


@njit(cache=True, nogil=True)
def _spend_kernel(indptr, dst, ts, amount, row, accounts, t0s, thrs, within, K, tip, tid, payee,
                  benign, hist, known, cls, cls_of, out_res, out_rows):  # pragma: no cover  # fmt: skip
    for i in range(accounts.shape[0]):
        d = accounts[i]
        lo = indptr[d]
        hi = indptr[d + 1]
        a = lo + np.searchsorted(ts[lo:hi], t0s[i], side="right")
        b = lo + np.searchsorted(ts[lo:hi], t0s[i] + within, side="right")
        n = 0
        for e in range(a, b):
            if amount[e] < thrs[i]:
                continue
            v = dst[e]
            if _excluded(indptr, dst, ts, i, d, v, t0s[i], tip, tid, payee, benign, hist, known):
                continue
            c = cls[cls_of[i], v]
            if c == 0:
                continue
            out_res[i, 0] += amount[e]
            if c == 2:
                out_res[i, 1] += amount[e]
            if out_res[i, 2] < 0:
                out_res[i, 2] = ts[e]
            out_res[i, 3] = ts[e]
            if n < K:
                out_rows[i, n] = row[e]
            n += 1
        out_res[i, 4] = n


def spend_shares(index, disb: Disbursements, thrs: np.ndarray, within: int, K: int, cls: np.ndarray,
                 cls_of: np.ndarray, benign=None, hist: int = 0, known: int = 0) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Per disbursement, what leaves ``d`` in ``(t0, t0 + within]`` in transfers of at least
    ``thrs[i]`` to counterparties that are not excluded, by class ``cls[cls_of[i], v]``
    (0 = not counted, 1 = counted, 2 = counted and flagged): ``out_res[i]`` = (counted
    total, flagged total, first ts, last ts, transfers) and ``out_rows[i, :K]`` the rows
    of the first ``K`` counted transfers."""
    acc, t0, _, tip, tid = disb.checked(index.n_accounts)
    payee, ben = _exclusions(index, disb, benign)
    N = acc.shape[0]
    c = np.ascontiguousarray(cls, np.uint8)
    which = np.ascontiguousarray(cls_of, np.int64)
    if c.ndim != 2 or c.shape[1] != index.n_accounts or which.shape != (N,):
        raise ValueError("cls must have shape (P, n_accounts) and cls_of one row per disbursement")
    if N and (which.min() < 0 or which.max() >= c.shape[0]):
        raise ValueError("cls_of out of range")
    out_res = np.zeros((N, 5), np.int64)
    out_res[:, 2] = -1
    out_rows = np.zeros((N, max(K, 1)), np.int64)
    a = index.kernel_arrays
    if N:
        _spend_kernel(a[0], a[1], a[2], a[3], a[4], acc, t0, thrs, int(within), int(K), tip, tid,
                      payee, ben, int(hist), int(known), c, which, out_res, out_rows)  # fmt: skip
    return out_res, out_rows
