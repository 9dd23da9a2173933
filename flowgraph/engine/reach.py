"""Hop-bounded earliest-arrival reachability: the kernel the path detectors share.

For the receiving account ``d``, time ``t0`` and amount ``a`` of a disbursement,
:func:`reach` computes, for every account ``v`` and ``h = 0..H``, the earliest time the
proceeds can be at ``v`` through a chain of at most ``h`` transactions such that

* the chain starts at ``d`` (``arr[d, 0] = t0``) and each transaction leaves the account
  the previous one entered;
* ``t0 < ts(e1) < ts(e2) < … <= t0 + window`` (strictly increasing; equal timestamps do
  not chain);
* every amount is ``>= max(min_amount, ratio_threshold(min_amount_ratio, a))``.

Time-respecting *walks* and *simple paths* reach the same accounts at the same earliest
times with the same fewest hops (cutting a loop out of a walk keeps it time-respecting and
shortens it), so the kernel is exact for paths. Cost per disbursement: ``O(H · E_w log d)``
over the ``E_w`` in-window, above-threshold out-edges of the accounts it touches; scratch
arrays are per worker and reset only where touched.

A detector of this family (repay with loan, prohibited destination, rapid pass-through,
transfer cycle) is one compiled worker with the signature of :func:`run_batch`'s
``worker``: for every W-th disbursement it calls :func:`enter` (reach, mark ``T``), its own
per-disbursement rule, then :func:`leave` (clean the scratch); :func:`run_batch` runs W
workers on threads. The worker's arguments are grouped in tuples: ``g`` the CSR arrays (:attr:`~flowgraph.engine.csr.TemporalIndex.kernel_arrays`),
``dk`` the disbursements ``(account, t0, amount, hop threshold, target_indptr,
target_ids)``, ``sc`` the scratch of :data:`SCRATCH`, ``extra`` the rule's own inputs.
Each writes ``out_res[i]`` (fired, amount, first ts, hops, kept evidence count, then its
own slots) and its evidence into ``out_rows[i, k]``, ``out_len[i, k]``, ``out_key[i, k]``.
The few lines of worker loop are written once per family rather than once with the rule
passed in: numba does not cache a compiled function that takes another one as an argument
or closes over it (it recompiled on every run, seconds per kernel, when tried), and the
kernels must load from the cache for the CLI to start fast.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from flowgraph.engine.hits import Disbursements, Hits
from flowgraph.engine.scratch import ScratchPool, run_workers, workers_for

INF = np.int64(2**62)
RES_SLOTS = 10  # int64 result slots per disbursement

SCRATCH = ScratchPool(
    lambda workers, n, hops: {
        "arr": np.full((workers, n, hops + 1), INF, np.int64),
        "pred": np.full((workers, n, hops + 1), -1, np.int64),
        "touched": np.empty((workers, n), np.int64),
        "fr_a": np.empty((workers, n), np.int64),
        "fr_b": np.empty((workers, n), np.int64),
        "infr": np.zeros((workers, n), np.uint8),
        "mark": np.zeros((workers, n), np.uint8),
        "on_path": np.zeros((workers, n), np.uint8),
        "zeros": np.zeros(n, np.uint8),
    }
)


def scratch_tuple(s) -> tuple[np.ndarray, ...]:
    """The scratch set as the ``sc`` tuple of the workers."""
    return (s.arr, s.pred, s.touched, s.fr_a, s.fr_b, s.infr, s.mark, s.on_path, s.zeros)


# ============================================================================ kernels


@njit(cache=True, nogil=True)
def reach(indptr, dst, ts, amount, d, t0, tend, thr, H, arr, pred, touched, fr_a, fr_b, infr):  # pragma: no cover  # fmt: skip
    """Hop-bounded earliest arrival from ``d`` (see module docstring).

    Level-synchronous (Bellman-Ford by hop count): level ``h`` rescans only the accounts
    whose arrival improved at level ``h - 1``, from their arrival time on (binary search).

    ``arr[v, h]`` (int64, ``INF`` = unreached) and ``pred[v, h]`` (forward-CSR position of
    the last transaction of a chain achieving it, -1 at ``d``/level 0) are filled for the
    returned number of touched accounts listed in ``touched``; untouched rows stay ``INF``.
    Reset with :func:`unreach`.
    """
    for h in range(H + 1):
        arr[d, h] = t0
        pred[d, h] = -1
    touched[0] = d
    nt = 1
    fr_a[0] = d
    nf = 1
    cur = fr_a
    nxt = fr_b
    for h in range(1, H + 1):
        nn = 0
        for q in range(nf):
            u = cur[q]
            au = arr[u, h - 1]
            lo = indptr[u]
            hi = indptr[u + 1]
            a = lo + np.searchsorted(ts[lo:hi], au, side="right")
            b = lo + np.searchsorted(ts[lo:hi], tend, side="right")
            for e in range(a, b):
                if amount[e] < thr:
                    continue
                v = dst[e]
                te = ts[e]
                if arr[v, H] == INF and arr[v, h] == INF and v != d:
                    # first touch: levels are INF already; record
                    touched[nt] = v
                    nt += 1
                if te < arr[v, h]:
                    # improve level h and every higher level still worse
                    for g in range(h, H + 1):
                        if te < arr[v, g]:
                            arr[v, g] = te
                            pred[v, g] = e
                    if infr[v] == 0:
                        infr[v] = 1
                        nxt[nn] = v
                        nn += 1
        for q in range(nn):
            infr[nxt[q]] = 0
        tmp = cur
        cur = nxt
        nxt = tmp
        nf = nn
        if nf == 0:
            break
    return nt


@njit(cache=True, nogil=True)
def unreach(arr, pred, touched, nt):  # pragma: no cover - compiled
    H1 = arr.shape[1]
    for q in range(nt):
        v = touched[q]
        for h in range(H1):
            arr[v, h] = INF
            pred[v, h] = -1


@njit(cache=True, nogil=True)
def src_of(indptr, e):  # pragma: no cover - compiled
    """Source account of forward-CSR position ``e``."""
    return np.searchsorted(indptr, e, side="right") - 1


@njit(cache=True, nogil=True)
def chain(indptr, row, pred, v, h, out, pos):  # pragma: no cover - compiled
    """Write the rows of the chain reaching ``(v, h)`` into ``out[pos:]``; return its length."""
    n = 0
    buf = np.empty(h + 1, np.int64)
    while h > 0 and pred[v, h] >= 0:
        e = pred[v, h]
        buf[n] = row[e]
        n += 1
        v = src_of(indptr, e)
        h -= 1
    for i in range(n):
        out[pos + i] = buf[n - 1 - i]
    return n


@njit(cache=True, nogil=True)
def min_level(arr, v, H, before):  # pragma: no cover - compiled
    """Fewest hops h <= H with arr[v, h] < before, or -1."""
    for h in range(H + 1):
        if arr[v, h] < before:
            return h
    return -1


@njit(cache=True, nogil=True)
def ceil_ppm(ppm, x):  # pragma: no cover - compiled
    """ceil(ppm · x / 1e6) for 0 <= ppm, x >= 0, without overflow for x < 2**62."""
    q = x // 1_000_000
    r = x - q * 1_000_000
    return ppm * q + (ppm * r + 999_999) // 1_000_000


@njit(cache=True, nogil=True)
def floor_ppm(ppm, x):  # pragma: no cover - compiled
    q = x // 1_000_000
    r = x - q * 1_000_000
    return ppm * q + (ppm * r) // 1_000_000


@njit(cache=True, nogil=True)
def write_result(res, fired, amount, first_ts, hops, n_ev):  # pragma: no cover - compiled
    """The common result slots 0-4: fired, amount, first ts (-1), fewest hops, evidence kept."""
    res[0] = 1 if fired else 0
    res[1] = amount if fired else 0
    res[2] = first_ts if fired else -1
    res[3] = hops
    res[4] = n_ev


@njit(cache=True, nogil=True)
def enter(g, dk, sc, w, i, window, H):  # pragma: no cover - compiled
    """Worker ``w`` starts disbursement ``i``: reach from ``d``, mark ``T`` and ``d`` in
    ``mark[w]``; returns the number of touched accounts."""
    d = dk[0][i]
    nt = reach(g[0], g[1], g[2], g[3], d, dk[1][i], dk[1][i] + window, dk[3][i], H,
               sc[0][w], sc[1][w], sc[2][w], sc[3][w], sc[4][w], sc[5][w])  # fmt: skip
    mark = sc[6][w]
    tids = dk[5]
    for q in range(dk[4][i], dk[4][i + 1]):
        mark[tids[q]] = 1
    mark[d] = 1
    return nt


@njit(cache=True, nogil=True)
def leave(dk, sc, w, i, nt):  # pragma: no cover - compiled
    """Worker ``w`` is done with disbursement ``i``: unmark, reset the reach scratch."""
    mark = sc[6][w]
    tids = dk[5]
    for q in range(dk[4][i], dk[4][i + 1]):
        mark[tids[q]] = 0
    mark[dk[0][i]] = 0
    unreach(sc[0][w], sc[1][w], sc[2][w], nt)


# ============================================================================ drivers


def run_batch(worker, index, disb: Disbursements, H: int, thrs: np.ndarray, window: int,
              K: int, width: int, extra: tuple) -> tuple[Hits, np.ndarray]:  # fmt: skip
    """Run a detector worker of this family over ``disb`` on W threads; ``(Hits, out_res)``.

    ``H`` reach levels, ``thrs`` per-disbursement hop floors, ``window`` ms, ``K`` evidence
    paths of at most ``width`` rows. The Hits get fired, amount, first_ts, hops and the
    evidence in key order; metric and detail are the detector's (from ``out_res``).
    """
    acc, t0, amt, tip, tid = disb.checked(index.n_accounts)
    N = acc.shape[0]
    out_res = np.zeros((N, RES_SLOTS), np.int64)
    out_rows = np.zeros((N, K, max(width, 1)), np.int64)
    out_len = np.zeros((N, K), np.int64)
    out_key = np.zeros((N, K, 3), np.int64)
    W = workers_for(N)
    with SCRATCH.borrow(W, index.n_accounts, int(H)) as s:
        if N:
            run_workers(worker, W, index.kernel_arrays, (acc, t0, amt, thrs, tip, tid), scratch_tuple(s),
                        int(window), int(H), int(K), extra, out_res, out_rows, out_len, out_key)  # fmt: skip
    hits = Hits.empty(N)
    fired = out_res[:, 0] == 1
    hits.fired = fired
    hits.amount = np.where(fired, out_res[:, 1], 0)
    hits.first_ts = np.where(fired, out_res[:, 2], -1)
    hits.hops = np.where(fired, out_res[:, 3], -1)
    for i in np.flatnonzero(fired).tolist():
        k = int(out_res[i, 4])
        keys = [tuple(out_key[i, j].tolist()) for j in range(k)]
        order = sorted(range(k), key=lambda j: keys[j])
        hits.evidence[i] = [out_rows[i, j, : out_len[i, j]].copy() for j in order]
    return hits, out_res


def earliest_arrival(index, account: int, t0: int, amount: int, *, window_ms: int,
                     max_hops: int, threshold: int) -> dict[int, list[int]]:  # fmt: skip
    """Hop-bounded earliest arrival of one disbursement (the shared building block).

    Parameters
    ----------
    index : TemporalIndex
    account, t0, amount : int
        Receiving account ``d`` (dense id), time (UTC ms) and amount (minor units).
    window_ms, max_hops, threshold : int
        Chains end at most ``window_ms`` after ``t0``, have at most ``max_hops``
        transactions, each at least ``threshold`` minor units.

    Returns
    -------
    dict
        ``{account: [arr_0, …, arr_H]}`` for every reached account, ``arr_h`` the earliest
        arrival with at most ``h`` transactions (``-1`` = not within ``h``); ``d`` maps to
        ``t0`` at every level.

    Examples
    --------
    >>> import numpy as np
    >>> from flowgraph.engine.csr import build_index
    >>> idx = build_index(np.array([0, 1, 0], np.int32), np.array([1, 2, 2], np.int32),
    ...                   np.array([5, 6, 9]), np.array([50, 50, 50]), np.array(["d", "x", "y"]))
    >>> earliest_arrival(idx, 0, 0, 100, window_ms=100, max_hops=2, threshold=10)
    {0: [0, 0, 0], 1: [-1, 5, 5], 2: [-1, 9, 6]}
    """
    H = int(max_hops)
    n = index.n_accounts
    if not 0 <= account < n:
        raise ValueError("account out of range")
    a = index.kernel_arrays
    with SCRATCH.borrow(1, n, H) as s:
        nt = reach(a[0], a[1], a[2], a[3], int(account), int(t0), int(t0) + int(window_ms),
                   int(threshold), H, s.arr[0], s.pred[0], s.touched[0], s.fr_a[0], s.fr_b[0],
                   s.infr[0])  # fmt: skip
        out = {}
        for v in sorted(s.touched[0, :nt].tolist()):
            out[v] = [-1 if x == INF else int(x) for x in s.arr[0, v].tolist()]
        unreach(s.arr[0], s.pred[0], s.touched[0], nt)
    return out
