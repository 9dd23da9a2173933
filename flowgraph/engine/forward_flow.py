"""Forward flow (资金流向): where a disbursement's money went, with the fewest hops per transfer.

DESIGN.md, "Forward flow": a transaction ``e`` is in the forward flow of a disbursement
(account ``d``, time ``t0``, amount ``a``) when some sequence ``e1 … ek = e`` leaves ``d``,
chains account to account with strictly increasing timestamps in ``(t0, t0 + window]``,
has ``k <= max_hops`` transactions and every amount ``>= max(min_amount,
ratio_threshold(min_amount_ratio, a))``. Accounts may repeat. ``hop(e)`` is the smallest
such ``k``. :mod:`flowgraph.engine.forward_flow_reference` enumerates the sequences; this
module computes the same answer without enumerating them.

The search is a layered, label-setting pass over the temporal CSR. Let ``A_k(u)`` be the
earliest time a valid sequence of exactly ``k`` transactions arrives at ``u``
(``A_0(d) = t0``). A transaction ``u → v`` at time ``t`` is reached at hop ``k + 1`` iff
``A_k(u) < t``, so ``hop(e) = 1 + min{k : A_k(src(e)) < ts(e)}``. ``A_k`` is not monotone
in ``k``: a later arrival with fewer hops can be the only way to take some transfer, and an
earlier arrival with more hops can open transfers the fewer-hop arrival cannot. So the
state is the pair (account, earliest arrival at hop ``k``), pruned by dominance: an arrival
at ``u`` at time ``t`` with ``k`` hops is useless when some arrival with fewer hops reached
``u`` at a time ``<= t`` (everything it opens, the other opens with fewer hops). With
``M_k(u) = min_{j<k} A_j(u)``, layer ``k`` keeps ``u`` only when ``A_k(u) < M_k(u)``, and
the transactions it newly reaches are exactly those leaving ``u`` in ``(A_k(u), M_k(u)]``
(the ones after ``M_k(u)`` were reached at a smaller hop already). These intervals are
disjoint across layers, so every transaction is looked at once per account visit and
emitted exactly once, with its smallest hop.

>>> import numpy as np
>>> from flowgraph.engine.csr import build_index
>>> idx = build_index(np.array([0, 1, 1], np.int32), np.array([1, 2, 0], np.int32),
...                   np.array([10, 20, 30]), np.array([500, 400, 400]), np.array(["d", "x", "y"]))
>>> res = find_forward_flow(idx, 0, 0, 1000, ForwardFlowParams(window_ms=100))
>>> res.rows.tolist(), res.hops.tolist(), res.truncated
([0, 1, 2], [1, 2, 2], False)

Notes
-----
O(H · F · log D + E_f) per disbursement for ``H`` hops, ``F`` accounts kept on a layer,
out-degree ``D`` and ``E_f`` transactions in the window leaving reached accounts; memory
O(n) scratch over accounts. The dominance pruning is the label-setting idea of earliest-
arrival temporal paths [1]_ extended with a hop budget (a Pareto front over (hops, time)).

References
----------
.. [1] H. Wu, J. Cheng, S. Huang, Y. Ke, Y. Lu and Y. Xu, "Path problems in temporal
   graphs", PVLDB 7(9), 2014 (earliest-arrival paths, one-pass algorithms).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from flowgraph.core.errors import InvalidValue
from flowgraph.core.values import DAY_MS, ratio_threshold

INF = np.int64(2**63 - 1)


@dataclass(frozen=True)
class ForwardFlowParams:
    """Parameters of the forward flow (the flow-back rule's window, hop limit and floor).

    Attributes
    ----------
    window_ms : int
        Transactions at most this long after the disbursement (UTC ms).
    max_hops : int
        Longest sequence, in transactions.
    min_amount : int
        Absolute amount floor per transaction (minor units).
    min_amount_ratio : float
        Relative floor; the threshold is ``max(min_amount, ratio_threshold(ratio, a))``.
    max_edges : int
        At most this many transactions are returned (fewest hops first); the result is
        ``truncated`` when more were reachable.
    """

    window_ms: int = 30 * DAY_MS
    max_hops: int = 5
    min_amount: int = 0
    min_amount_ratio: float = 0.1
    max_edges: int = 100_000

    def __post_init__(self) -> None:
        if self.max_hops < 1:
            raise InvalidValue("max_hops must be >= 1")
        if self.window_ms < 0 or self.min_amount < 0 or self.min_amount_ratio < 0:
            raise InvalidValue("window_ms, min_amount and min_amount_ratio must be >= 0")
        if self.max_edges < 1:
            raise InvalidValue("max_edges must be >= 1")

    def threshold(self, amount: int) -> int:
        """Per-transaction floor for a disbursement of ``amount`` minor units.

        >>> ForwardFlowParams(min_amount=50, min_amount_ratio=0.1).threshold(1001)
        101
        """
        return max(int(self.min_amount), ratio_threshold(self.min_amount_ratio, int(amount)))


@dataclass
class ForwardFlowResult:
    """The forward flow of one disbursement.

    Attributes
    ----------
    rows : ndarray of int64
        Transaction rows in the flow, ordered by (ts, row) — a transaction comes after
        every transaction that can precede it in a sequence.
    hops : ndarray of int64
        Fewest transactions at which each row is reached (1 = leaves ``d``).
    truncated : bool
        More than ``max_edges`` transactions were reachable; the kept ones are those
        of the smallest hops.
    """

    rows: np.ndarray
    hops: np.ndarray
    truncated: bool

    def __len__(self) -> int:
        return int(self.rows.shape[0])


@njit(cache=True, nogil=True)
def _forward_one(
    indptr, dst, ts, amount, d, t0, tend, thr, H, cap,
    best, nxt, touched, fr_u, fr_a, fr_m, nl, out_pos, out_hop,
):  # pragma: no cover - compiled  # fmt: skip
    """Layered search from ``d``; ``best`` and ``nxt`` are INF-filled scratch over accounts
    and are left INF-filled. Returns (number of out positions, truncated)."""
    INF_ = np.int64(9223372036854775807)
    best[d] = t0
    touched[0] = d
    n_touched = 1
    fr_u[0] = d
    fr_a[0] = t0
    fr_m[0] = INF_
    nf = 1
    n_out = 0
    trunc = False
    for k in range(H):
        nn = 0
        for q in range(nf):
            if trunc:
                break
            u = fr_u[q]
            a = fr_a[q]
            hi_t = fr_m[q]
            if tend < hi_t:
                hi_t = tend
            lo = indptr[u]
            hi = indptr[u + 1]
            p = lo + np.searchsorted(ts[lo:hi], a, side="right")
            while p < hi and ts[p] <= hi_t:
                if amount[p] >= thr:
                    if n_out == cap:
                        trunc = True
                        break
                    out_pos[n_out] = p
                    out_hop[n_out] = k + 1
                    n_out += 1
                    if k + 1 < H:
                        v = dst[p]
                        t = ts[p]
                        if t < best[v] and t < nxt[v]:
                            if nxt[v] == INF_:
                                nl[nn] = v
                                nn += 1
                            nxt[v] = t
                p += 1
        nf = 0
        for q in range(nn):
            v = nl[q]
            t = nxt[v]
            nxt[v] = INF_
            if trunc:
                continue
            fr_u[nf] = v
            fr_a[nf] = t
            fr_m[nf] = best[v]
            nf += 1
            if best[v] == INF_:
                touched[n_touched] = v
                n_touched += 1
            best[v] = t
        if nf == 0 or trunc:
            break
    for q in range(n_touched):
        best[touched[q]] = INF_
    return n_out, trunc


class _Scratch:
    """INF-filled arrays over accounts, reused by the disbursements of one call."""

    def __init__(self, n: int) -> None:
        self.best = np.full(n, INF, np.int64)
        self.nxt = np.full(n, INF, np.int64)
        self.touched = np.empty(n, np.int64)
        self.fr_u = np.empty(n, np.int64)
        self.fr_a = np.empty(n, np.int64)
        self.fr_m = np.empty(n, np.int64)
        self.nl = np.empty(n, np.int64)


def _ro(a) -> np.ndarray:
    v = np.asarray(a).view(np.ndarray)
    v.flags.writeable = False
    return v


def find_forward_flow_many(index, accounts, t0s, amounts, params: ForwardFlowParams) -> list[ForwardFlowResult]:
    """The forward flow of several disbursements (dense account ids, times, amounts).

    Parameters
    ----------
    index : flowgraph.engine.csr.TemporalIndex
    accounts, t0s, amounts : sequences of int
        Receiving account (dense id), time (UTC ms) and amount of each disbursement.
    params : ForwardFlowParams

    Returns
    -------
    list of ForwardFlowResult
        One per disbursement, in input order.
    """
    n = index.n_accounts
    indptr, dst, ts, amount, row = (_ro(getattr(index, k)) for k in ("indptr", "dst", "ts", "amount", "row"))
    s = _Scratch(max(n, 1))
    cap = int(params.max_edges)
    out_pos = np.empty(min(cap, max(index.n_edges, 1)), np.int64)
    out_hop = np.empty_like(out_pos)
    results = []
    for d, t0, a in zip(accounts, t0s, amounts, strict=True):
        d, t0, a = int(d), int(t0), int(a)
        if not 0 <= d < n:
            raise InvalidValue(f"account {d} out of range 0..{n - 1}")
        n_out, trunc = _forward_one(
            indptr, dst, ts, amount, d, t0, t0 + int(params.window_ms), params.threshold(a),
            int(params.max_hops), out_pos.shape[0], s.best, s.nxt, s.touched, s.fr_u, s.fr_a,
            s.fr_m, s.nl, out_pos, out_hop,
        )  # fmt: skip
        pos = out_pos[:n_out]
        rows = np.asarray(row[pos], np.int64)
        order = np.lexsort((rows, np.asarray(ts[pos])))
        results.append(ForwardFlowResult(rows[order], out_hop[:n_out][order].copy(), bool(trunc)))
    return results


def find_forward_flow(index, d: int, t0: int, a: int, params: ForwardFlowParams | None = None) -> ForwardFlowResult:
    """The forward flow of one disbursement: account ``d`` (dense id), time ``t0``, amount ``a``."""
    return find_forward_flow_many(index, [d], [t0], [a], params or ForwardFlowParams())[0]
