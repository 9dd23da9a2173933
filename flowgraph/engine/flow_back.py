"""Flow-back search: numba kernels, the batch API and the tracing of returned amounts.

For one disbursement (receiving account ``d``, amount ``a``, time ``t0``) and the set
``T`` of borrower-linked accounts, a flow-back path is a chain of transactions
``e1 … eh`` (see DESIGN.md, "Core rule: flow-back") such that

1. ``e1`` leaves ``d`` and each ``e(i+1)`` leaves the account ``e(i)`` entered;
2. ``t0 < ts(e1) < … < ts(eh) <= t0 + window`` (equal timestamps do not chain);
3. ``1 <= h <= max_hops``;
4. every amount is ``>= max(min_amount, ratio_threshold(min_amount_ratio, a))``;
5. no account repeats, except that the last account may be ``d`` itself;
6. the last account is in ``T``;
7. some account before the last is not in ``T``;
8. accounts of ``T`` appear only as a leading run from ``d`` and at the end.

The search is an iterative depth-first search over the temporal CSR, with binary search
into each account's time-sorted out-edges and a safe pruning from the target side, in
the spirit of the closing times of 2SCENT [1]_ and the barriers of BC-DFS [2]_: a
bounded backward pass over the reverse CSR computes, for every account ``v`` it reaches
and ``r = 1..Hb`` remaining hops, ``late[v, r]``, the latest time at which a transaction
leaving ``v`` can still start a time-respecting chain of at most ``r`` hops (inside the
window, above the amount threshold) that ends in ``T``. When ``r <= Hb`` hops remain,
the DFS expands only out-edges with ``ts <= late[v, r]`` and enters an account at time
``t`` only if ``late[v, r - 1] > t``. The relaxed chains ignore conditions 5, 7 and 8,
so the pruning never loses a valid path. The backward pass stops at
``Hb = round(0.4 * max_hops)`` levels (2 for 5 hops): the first hops of the DFS run
unpruned and the last ones exactly pruned, a meet in the middle that keeps both
frontiers small (a full-depth backward pass reaches ~10x more accounts on random
graphs and was ~30x slower on 10M edges).

>>> import numpy as np
>>> from flowgraph.engine.csr import build_index
>>> idx = build_index(np.array([0, 1], np.int32), np.array([1, 2], np.int32),
...                   np.array([10, 20]), np.array([500, 400]), np.array(["d", "x", "t"]))
>>> res = find_flow_back(idx, 0, 0, 1000, np.array([2]), FlowBackParams())
>>> [p.tolist() for p in res.paths], res.returned_amount
([[0, 1]], 400)

References
----------
.. [1] R. Kumar and T. Calders, "2SCENT: An efficient algorithm for enumerating all
   simple temporal cycles", PVLDB 11(11), 2018 (closing times).
.. [2] Y. Peng, Y. Zhang, X. Lin, W. Zhang, L. Qin and J. Zhou, "Towards bridging
   theory and practice: hop-constrained s-t simple path enumeration", PVLDB 13(4), 2019
   (BC-DFS barriers).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numba
import numpy as np
from numba import njit, prange

from flowgraph.core.errors import InvalidValue
from flowgraph.core.values import DAY_MS, ratio_threshold

NEG = np.int64(-(2**63))  # "cannot reach T" closing time

# int64 scalar slots of the per-call result vector
_R_KEPT, _R_TRUNC, _R_COUNT, _R_RETURNED, _R_FIRST, _R_NUNION, _R_STEPS, _R_TOUCHED = range(8)
_R_SIZE = 8


@dataclass(frozen=True)
class FlowBackParams:
    """Parameters of the flow-back search.

    Attributes
    ----------
    window_ms : int
        Paths must end at most this long after the disbursement (UTC ms).
    max_hops : int
        Longest path, in transactions.
    min_amount : int
        Absolute amount floor per transaction (minor units).
    min_amount_ratio : float
        Relative floor: every transaction must move at least this share of the
        disbursed amount; the threshold is ``max(min_amount, ratio_threshold(ratio, a))``.
    max_paths : int
        Paths kept per disbursement (the first ones in the deterministic order).
    tracing : str
        ``"greedy"`` (default) or ``"maxflow"``.
    max_enumerated : int
        Safety budget of search steps (edges followed) per disbursement; when hit, the
        search stops and the result is marked ``truncated``.
    """

    window_ms: int = 30 * DAY_MS
    max_hops: int = 5
    min_amount: int = 0
    min_amount_ratio: float = 0.1
    max_paths: int = 100
    tracing: str = "greedy"
    max_enumerated: int = 1_000_000

    def __post_init__(self) -> None:
        if self.max_hops < 1:
            raise InvalidValue("max_hops must be >= 1")
        if self.window_ms < 0 or self.min_amount < 0 or self.min_amount_ratio < 0:
            raise InvalidValue("window_ms, min_amount and min_amount_ratio must be >= 0")
        if self.max_paths < 0 or self.max_enumerated < 1:
            raise InvalidValue("max_paths must be >= 0 and max_enumerated >= 1")
        if self.tracing not in ("greedy", "maxflow"):
            raise InvalidValue(f"unknown tracing {self.tracing!r} (greedy or maxflow)")

    def threshold(self, amount: int) -> int:
        """Per-transaction amount floor for a disbursement of ``amount`` minor units.

        >>> FlowBackParams(min_amount=50, min_amount_ratio=0.1).threshold(1001)
        101
        """
        return max(int(self.min_amount), ratio_threshold(self.min_amount_ratio, int(amount)))


@dataclass
class FlowBackResult:
    """Flow-back paths of one disbursement.

    Attributes
    ----------
    paths : list of ndarray of int64
        Transaction rows of each kept path in hop order, at most ``max_paths``, ordered
        by (ts of last hop, hops, rows).
    truncated : bool
        More valid paths existed than were kept, or the search budget was hit.
    path_count : int
        Number of valid paths found (all of them, not just the kept ones).
    returned_amount : int
        Minor units traced back into ``T`` (greedy or maxflow tracing).
    first_return_ts : int or None
        Smallest last-hop ts over all paths; ``None`` when there is no path.
    """

    paths: list[np.ndarray]
    truncated: bool
    path_count: int
    returned_amount: int
    first_return_ts: int | None

    @property
    def min_hops(self) -> int | None:
        """Fewest hops among the kept paths (``None`` if no path)."""
        return min((len(p) for p in self.paths), default=None)


@dataclass
class BatchResult:
    """Columnar results of :func:`find_flow_back_batch` for ``N`` disbursements.

    Attributes
    ----------
    path_indptr : ndarray of int64, shape (N+1,)
        Kept paths of disbursement ``i`` are ``path_indptr[i]:path_indptr[i+1]``.
    hop_indptr : ndarray of int64, shape (P+1,)
        Rows of path ``p`` are ``hop_rows[hop_indptr[p]:hop_indptr[p+1]]``.
    hop_rows : ndarray of int64
        Transaction rows, hop order.
    truncated : ndarray of bool, shape (N,)
    path_count : ndarray of int64, shape (N,)
    returned_amount : ndarray of int64, shape (N,)
    first_return_ts : ndarray of int64, shape (N,)
        ``-1`` where there is no path.
    """

    path_indptr: np.ndarray
    hop_indptr: np.ndarray
    hop_rows: np.ndarray
    truncated: np.ndarray
    path_count: np.ndarray
    returned_amount: np.ndarray
    first_return_ts: np.ndarray

    def __len__(self) -> int:
        return int(self.path_count.shape[0])

    def result(self, i: int) -> FlowBackResult:
        """The :class:`FlowBackResult` of disbursement ``i``."""
        p0, p1 = int(self.path_indptr[i]), int(self.path_indptr[i + 1])
        paths = [
            np.array(self.hop_rows[self.hop_indptr[p] : self.hop_indptr[p + 1]], np.int64)
            for p in range(p0, p1)
        ]
        first = int(self.first_return_ts[i])
        count = int(self.path_count[i])
        return FlowBackResult(
            paths=paths,
            truncated=bool(self.truncated[i]),
            path_count=count,
            returned_amount=int(self.returned_amount[i]),
            first_return_ts=first if count > 0 else None,
        )


# ============================================================================ kernels


@njit(cache=True, nogil=True)
def _closing_times(
    rindptr, rsrc, rts, ramount, targets, t0, tend, thr, Hb, late, seen, infr, touched, fr_a, fr_b
):  # pragma: no cover - compiled
    """Bounded backward pass: ``late[v, r]`` for r = 1..Hb over the accounts it touches.

    ``late[v, r]`` = max first-edge ts over time-respecting chains of 1..r edges from
    ``v`` to an account of ``targets`` (edges in ``(t0, tend]``, amount >= thr); ``NEG``
    if none. Returns the number of touched accounts (listed in ``touched``).
    """
    n_touched = 0
    nf = 0
    for k in range(targets.shape[0]):
        w = targets[k]
        lo = rindptr[w]
        hi = rindptr[w + 1]
        a = lo + np.searchsorted(rts[lo:hi], t0, side="right")
        b = lo + np.searchsorted(rts[lo:hi], tend, side="right")
        for j in range(b - 1, a - 1, -1):
            if ramount[j] < thr:
                continue
            v = rsrc[j]
            if seen[v] == 0:
                seen[v] = 1
                touched[n_touched] = v
                n_touched += 1
            if rts[j] > late[v, 1]:
                late[v, 1] = rts[j]
                if infr[v] == 0:
                    infr[v] = 1
                    fr_a[nf] = v
                    nf += 1
    cur = fr_a
    nxt = fr_b
    for r in range(2, Hb + 1):
        for q in range(n_touched):
            v = touched[q]
            late[v, r] = late[v, r - 1]
        for q in range(nf):
            infr[cur[q]] = 0
        nn = 0
        for q in range(nf):
            w = cur[q]
            lw = late[w, r - 1]
            lo = rindptr[w]
            hi = rindptr[w + 1]
            a = lo + np.searchsorted(rts[lo:hi], t0, side="right")
            b = lo + np.searchsorted(rts[lo:hi], lw, side="left")
            for j in range(b - 1, a - 1, -1):
                if ramount[j] < thr:
                    continue
                v = rsrc[j]
                if seen[v] == 0:
                    seen[v] = 1
                    touched[n_touched] = v
                    n_touched += 1
                if rts[j] > late[v, r]:
                    late[v, r] = rts[j]
                    if infr[v] == 0:
                        infr[v] = 1
                        nxt[nn] = v
                        nn += 1
        tmp = cur
        cur = nxt
        nxt = tmp
        nf = nn
    for q in range(nf):
        infr[cur[q]] = 0
    return n_touched


@njit(cache=True, nogil=True)
def _key_less(last_a, hops_a, rows_a, last_b, hops_b, rows_b):  # pragma: no cover
    """(last ts, hops, rows) order of two paths."""
    if last_a != last_b:
        return last_a < last_b
    if hops_a != hops_b:
        return hops_a < hops_b
    for i in range(hops_a):
        if rows_a[i] != rows_b[i]:
            return rows_a[i] < rows_b[i]
    return False


@njit(cache=True, nogil=True)
def _greedy_trace(
    u_src, u_dst, u_ts, u_amount, u_row, n_union, d, a, in_t, bal
):  # pragma: no cover - compiled
    """Greedy tracing over the first ``n_union`` union edges (any order; sorted here).

    ``in_t`` marks T; ``bal`` is an all-zero int64 scratch over accounts, left all-zero.
    """
    if n_union == 0:
        return 0
    o1 = np.argsort(u_row[:n_union], kind="mergesort")
    t1 = np.empty(n_union, np.int64)
    for i in range(n_union):
        t1[i] = u_ts[o1[i]]
    o2 = np.argsort(t1, kind="mergesort")
    bal[d] = a
    returned = 0
    for i in range(n_union):
        e = o1[o2[i]]
        u = u_src[e]
        v = u_dst[e]
        m = u_amount[e]
        if bal[u] < m:
            m = bal[u]
        if m < 0:
            m = 0
        bal[u] -= m
        if in_t[u] == 0 and in_t[v] != 0:
            returned += m
        else:
            bal[v] += m
    bal[d] = 0
    for i in range(n_union):
        bal[u_src[i]] = 0
        bal[u_dst[i]] = 0
    return returned


@njit(cache=True, nogil=True)
def _search_one(
    indptr, dst, ts, amount, row,
    rindptr, rsrc, rts, ramount,
    d, t0, a, thr, tend, H, Hb, K, budget, targets,
    in_t, on_path, late, seen, infr, touched, fr_a, fr_b, emark, bal,
    kept_rows, kept_hops, kept_last, res, union_buf,
):  # pragma: no cover - compiled  # fmt: skip
    """Search one disbursement; ``in_t`` must already mark ``targets``.

    Fills ``kept_rows[:K, :H]`` / ``kept_hops`` / ``kept_last`` (sorted) and ``res``;
    returns the union buffer of CSR positions (possibly reallocated), of which the first
    ``res[_R_NUNION]`` are used. All scratch arrays are returned clean.
    """
    for q in range(res.shape[0]):
        res[q] = 0
    res[_R_FIRST] = -1
    n_touched = _closing_times(
        rindptr, rsrc, rts, ramount, targets, t0, tend, thr, Hb, late, seen, infr, touched,
        fr_a, fr_b,
    )
    n_kept = 0
    count = 0
    first = np.int64(0)
    steps = 0
    budget_hit = False
    n_union = 0
    worst = -1
    root_close = late[d, H] if H <= Hb else tend
    if root_close > t0:
        st_node = np.empty(H + 1, np.int64)
        st_pos = np.empty(H + 1, np.int64)
        st_end = np.empty(H + 1, np.int64)
        st_left = np.empty(H + 1, np.bool_)
        p_edge = np.empty(H, np.int64)
        cand = np.empty(H, np.int64)
        on_path[d] = 1
        st_node[0] = d
        st_left[0] = in_t[d] == 0
        lo = indptr[d]
        hi = indptr[d + 1]
        st_pos[0] = lo + np.searchsorted(ts[lo:hi], t0, side="right")
        st_end[0] = lo + np.searchsorted(ts[lo:hi], root_close, side="right")
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
            steps += 1
            if steps > budget:
                budget_hit = True
                break
            v = dst[e]
            te = ts[e]
            left = st_left[k]
            if in_t[v] != 0:
                if left:
                    if on_path[v] != 0 and v != d:
                        continue
                    # a valid flow-back path: p_edge[0..k-1] + e
                    p_edge_k = e
                    hops = k + 1
                    count += 1
                    if count == 1 or te < first:
                        first = te
                    for i in range(hops):
                        pe = p_edge[i] if i < k else p_edge_k
                        cand[i] = row[pe]
                        if emark[pe] == 0:
                            emark[pe] = 1
                            if n_union == union_buf.shape[0]:
                                nb = np.empty(2 * n_union + 16, np.int64)
                                nb[:n_union] = union_buf[:n_union]
                                union_buf = nb
                            union_buf[n_union] = pe
                            n_union += 1
                    if n_kept < K:
                        kept_hops[n_kept] = hops
                        kept_last[n_kept] = te
                        for i in range(hops):
                            kept_rows[n_kept, i] = cand[i]
                        n_kept += 1
                        if n_kept == K:
                            worst = 0
                            for q in range(1, K):
                                if _key_less(
                                    kept_last[worst], kept_hops[worst], kept_rows[worst],
                                    kept_last[q], kept_hops[q], kept_rows[q],
                                ):
                                    worst = q
                    elif K > 0 and _key_less(
                        te, hops, cand, kept_last[worst], kept_hops[worst], kept_rows[worst]
                    ):
                        kept_hops[worst] = hops
                        kept_last[worst] = te
                        for i in range(hops):
                            kept_rows[worst, i] = cand[i]
                        worst = 0
                        for q in range(1, K):
                            if _key_less(
                                kept_last[worst], kept_hops[worst], kept_rows[worst],
                                kept_last[q], kept_hops[q], kept_rows[q],
                            ):
                                worst = q
                    continue
                # still inside the leading run of T
                if on_path[v] != 0:
                    continue
                new_left = False
            else:
                if on_path[v] != 0:
                    continue
                new_left = True
            if k + 1 >= H:
                continue
            r2 = H - (k + 1)
            lv = late[v, r2] if r2 <= Hb else tend
            if lv <= te:
                continue
            p_edge[k] = e
            k += 1
            st_node[k] = v
            st_left[k] = new_left
            on_path[v] = 1
            lo = indptr[v]
            hi = indptr[v + 1]
            st_pos[k] = lo + np.searchsorted(ts[lo:hi], te, side="right")
            st_end[k] = lo + np.searchsorted(ts[lo:hi], lv, side="right")
        # clear path marks (after a budget break some may remain)
        for q in range(1, k + 1):
            on_path[st_node[q]] = 0
        on_path[d] = 0
    # sort kept paths (insertion sort on K <= max_paths items)
    for i in range(1, n_kept):
        j = i
        while j > 0 and _key_less(
            kept_last[j], kept_hops[j], kept_rows[j],
            kept_last[j - 1], kept_hops[j - 1], kept_rows[j - 1],
        ):
            tl = kept_last[j]
            kept_last[j] = kept_last[j - 1]
            kept_last[j - 1] = tl
            th = kept_hops[j]
            kept_hops[j] = kept_hops[j - 1]
            kept_hops[j - 1] = th
            for q in range(H):
                tr = kept_rows[j, q]
                kept_rows[j, q] = kept_rows[j - 1, q]
                kept_rows[j - 1, q] = tr
            j -= 1
    # greedy tracing over the union of path edges
    returned = 0
    if n_union > 0:
        u_src = np.empty(n_union, np.int64)
        u_dst = np.empty(n_union, np.int64)
        u_ts = np.empty(n_union, np.int64)
        u_amount = np.empty(n_union, np.int64)
        u_row = np.empty(n_union, np.int64)
        for i in range(n_union):
            pe = union_buf[i]
            emark[pe] = 0
            u_src[i] = np.searchsorted(indptr, pe, side="right") - 1
            u_dst[i] = dst[pe]
            u_ts[i] = ts[pe]
            u_amount[i] = amount[pe]
            u_row[i] = row[pe]
        returned = _greedy_trace(u_src, u_dst, u_ts, u_amount, u_row, n_union, d, a, in_t, bal)
    # reset closing times
    for q in range(n_touched):
        v = touched[q]
        seen[v] = 0
        for r in range(H + 1):
            late[v, r] = NEG
    res[_R_KEPT] = n_kept
    res[_R_TRUNC] = 1 if (budget_hit or count > K) else 0
    res[_R_COUNT] = count
    res[_R_RETURNED] = returned
    res[_R_FIRST] = first if count > 0 else -1
    res[_R_NUNION] = n_union
    res[_R_STEPS] = steps
    res[_R_TOUCHED] = n_touched
    return union_buf


@njit(cache=True, nogil=True)
def _batch_worker(
    w, indptr, dst, ts, amount, row,
    rindptr, rsrc, rts, ramount,
    accounts, t0s, amounts, thrs, tends, tindptr, tids,
    start, stop, H, Hb, K, budget,
    in_t, on_path, late, seen, infr, touched, fr_a, fr_b, emark, bal,
    out_rows, out_hops, out_res,
):  # pragma: no cover - compiled  # fmt: skip
    """Worker ``w`` of W (= ``in_t.shape[0]``): disbursements start+w, start+w+W, ..."""
    W = in_t.shape[0]
    union_buf = np.empty(64, np.int64)
    kept_last = np.empty(max(K, 1), np.int64)
    res = np.empty(_R_SIZE, np.int64)
    for i in range(start + w, stop, W):
        slot = i - start
        targets = tids[tindptr[i] : tindptr[i + 1]]
        for q in range(targets.shape[0]):
            in_t[w, targets[q]] = 1
        union_buf = _search_one(
            indptr, dst, ts, amount, row, rindptr, rsrc, rts, ramount,
            accounts[i], t0s[i], amounts[i], thrs[i], tends[i], H, Hb, K, budget,
            targets, in_t[w], on_path[w], late[w], seen[w], infr[w], touched[w],
            fr_a[w], fr_b[w], emark[w], bal[w],
            out_rows[slot], out_hops[slot], kept_last, res, union_buf,
        )
        for q in range(targets.shape[0]):
            in_t[w, targets[q]] = 0
        for q in range(_R_SIZE):
            out_res[slot, q] = res[q]


@njit(cache=True, nogil=True, parallel=True)
def _batch_kernel(
    indptr, dst, ts, amount, row,
    rindptr, rsrc, rts, ramount,
    accounts, t0s, amounts, thrs, tends, tindptr, tids,
    start, stop, H, Hb, K, budget,
    in_t, on_path, late, seen, infr, touched, fr_a, fr_b, emark, bal,
    out_rows, out_hops, out_res,
):  # pragma: no cover - compiled  # fmt: skip
    """Disbursements ``start..stop-1`` on W = ``in_t.shape[0]`` workers (``prange``)."""
    for w in prange(in_t.shape[0]):
        _batch_worker(
            w, indptr, dst, ts, amount, row, rindptr, rsrc, rts, ramount,
            accounts, t0s, amounts, thrs, tends, tindptr, tids,
            start, stop, H, Hb, K, budget,
            in_t, on_path, late, seen, infr, touched, fr_a, fr_b, emark, bal,
            out_rows, out_hops, out_res,
        )


# ============================================================================ scratch


class _Scratch:
    """Per-worker scratch arrays over accounts and edges (returned clean by kernels)."""

    def __init__(self, workers: int, n: int, m: int, hops: int) -> None:
        self.key = (workers, n, m, hops)
        self.in_t = np.zeros((workers, n), np.uint8)
        self.on_path = np.zeros((workers, n), np.uint8)
        self.late = np.full((workers, n, hops + 1), NEG, np.int64)
        self.seen = np.zeros((workers, n), np.uint8)
        self.infr = np.zeros((workers, n), np.uint8)
        self.touched = np.empty((workers, n), np.int64)
        self.fr_a = np.empty((workers, n), np.int64)
        self.fr_b = np.empty((workers, n), np.int64)
        self.emark = np.zeros((workers, m), np.uint8)
        self.bal = np.zeros((workers, n), np.int64)


_local = threading.local()


def _scratch(workers: int, n: int, m: int, hops: int) -> _Scratch:
    key = (workers, n, m, hops)
    cache = getattr(_local, "cache", None)
    if cache is None or cache.key != key:
        cache = _Scratch(workers, n, m, hops)
        _local.cache = cache
    _local.cache = None  # taken: a failing kernel cannot hand back dirty scratch
    return cache


def _give_back(s: _Scratch) -> None:
    _local.cache = s


def _ro(a) -> np.ndarray:
    """Read-only plain-ndarray view: built (writable) and memory-mapped (read-only)
    indexes then share one compiled specialisation of every kernel."""
    v = np.asarray(a).view(np.ndarray)
    v.flags.writeable = False
    return v


def _arrays(index):
    return tuple(
        _ro(getattr(index, name))
        for name in ("indptr", "dst", "ts", "amount", "row", "rindptr", "rsrc", "rts", "ramount")
    )


BACKWARD_SHARE = 0.4  # H=5 -> 2 backward levels, 3 forward (measured best on 10M edges)


def _backward_hops(H: int) -> int:
    """Levels of the backward closing-time pass (meet in the middle with the DFS)."""
    return max(1, min(H, int(round(H * BACKWARD_SHARE + 0.01))))


def _check_account(index, account: int) -> None:
    if not 0 <= account < index.n_accounts:
        raise ValueError(f"account {account} out of range 0..{index.n_accounts - 1}")


# ============================================================================ tracing


def _maxflow_returned(src, dst, ts, amount, d, t0, a, in_targets) -> int:
    import networkx as nx

    g = nx.DiGraph()
    sink = ("sink",)
    source = ("source",)
    events: dict[int, set] = {}

    def add(u, v, cap):
        if g.has_edge(u, v):
            g[u][v]["capacity"] += cap
        else:
            g.add_edge(u, v, capacity=cap)

    events.setdefault(int(d), set()).add((int(t0), 1))
    g.add_edge(source, ("n", int(d), int(t0), 1), capacity=int(a))
    for u, v, t, amt in zip(src.tolist(), dst.tolist(), ts.tolist(), amount.tolist(), strict=True):
        events.setdefault(u, set()).add((t, 0))
        if u not in in_targets and v in in_targets:
            add(("n", u, t, 0), sink, amt)
        else:
            events.setdefault(v, set()).add((t, 1))
            add(("n", u, t, 0), ("n", v, t, 1), amt)
    # hold-over edges: departures at t come before arrivals at t (strictly-before rule)
    for u, evs in events.items():
        seq = sorted(evs)
        for (ta, ka), (tb, kb) in zip(seq, seq[1:], strict=False):
            g.add_edge(("n", u, ta, ka), ("n", u, tb, kb))  # no capacity = infinite
    if sink not in g:
        return 0
    return int(nx.maximum_flow_value(g, source, sink))


def trace_returned_amount(
    src: np.ndarray,
    dst: np.ndarray,
    ts: np.ndarray,
    amount: np.ndarray,
    row: np.ndarray,
    d: int,
    t0: int,
    a: int,
    targets: np.ndarray,
    method: str = "greedy",
) -> int:
    """Amount of a disbursement traced back into ``T`` over a set of edges.

    Parameters
    ----------
    src, dst, ts, amount, row : ndarray
        The edges (normally the union of the edges of all flow-back paths), any order.
    d, t0, a : int
        Receiving account, time and amount of the disbursement.
    targets : ndarray of int
        The accounts of ``T``.
    method : {"greedy", "maxflow"}
        ``greedy``: walk the edges in (ts, row) order with ``balance[d] = a``; each edge
        ``u -> v`` moves ``min(amount, balance[u])``; what moves from outside ``T`` into
        ``T`` is returned and leaves circulation. ``maxflow``: exact maximum flow on the
        time-expanded network (a departure at ``ts`` only uses money that arrived
        strictly before ``ts``; edges from outside ``T`` into ``T`` go to the sink).

    Returns
    -------
    int
        Returned amount in minor units, ``0 <= returned <= a``.

    Notes
    -----
    greedy: O(m log m) for m edges. maxflow: networkx preflow-push on O(m) nodes and
    edges, O(m^3) worst case.

    Examples
    --------
    >>> import numpy as np
    >>> e = dict(src=np.array([0, 1, 1]), dst=np.array([1, 2, 3]), ts=np.array([1, 2, 3]),
    ...          amount=np.array([100, 30, 90]), row=np.array([0, 1, 2]))
    >>> trace_returned_amount(**e, d=0, t0=0, a=100, targets=np.array([2, 3]))
    100
    >>> trace_returned_amount(**e, d=0, t0=0, a=100, targets=np.array([2]))
    30
    """
    src = np.ascontiguousarray(src, np.int64)
    dst = np.ascontiguousarray(dst, np.int64)
    ts = np.ascontiguousarray(ts, np.int64)
    amount = np.ascontiguousarray(amount, np.int64)
    row = np.ascontiguousarray(row, np.int64)
    targets = np.asarray(targets, np.int64)
    if method == "maxflow":
        return _maxflow_returned(src, dst, ts, amount, d, t0, a, set(targets.tolist()))
    if method != "greedy":
        raise ValueError(f"unknown tracing method {method!r}")
    nodes = np.unique(np.concatenate([src, dst, targets, np.array([d], np.int64)]))
    local = np.searchsorted(nodes, np.concatenate([src, dst]))
    m = src.shape[0]
    in_t = np.zeros(nodes.shape[0], np.uint8)
    in_t[np.searchsorted(nodes, targets)] = 1
    bal = np.zeros(nodes.shape[0], np.int64)
    ld = int(np.searchsorted(nodes, d))
    return int(
        _greedy_trace(
            local[:m].copy(), local[m:].copy(), ts, amount, row, m, ld, int(a), in_t, bal
        )
    )


# ============================================================================ public


def find_flow_back(
    index,
    account: int,
    t0: int,
    amount: int,
    targets: np.ndarray,
    params: FlowBackParams,
    horizon: int | None = None,
) -> FlowBackResult:
    """Find the flow-back paths of one disbursement.

    Parameters
    ----------
    index : TemporalIndex
    account : int
        Dense id of the receiving account ``d``.
    t0 : int
        Disbursement time, UTC ms.
    amount : int
        Disbursed amount ``a``, minor units.
    targets : ndarray of int
        Dense ids of the borrower-linked accounts ``T`` (``d`` may or may not be one).
    params : FlowBackParams
    horizon : int, optional
        Latest transaction time (inclusive) to look at, e.g. a data cut-off; the search
        uses ``min(t0 + window_ms, horizon)``.

    Returns
    -------
    FlowBackResult

    Notes
    -----
    Backward closing-time pass O(Hb · E_b) over the E_b in-edges (inside the window,
    above the threshold) of the accounts that reach ``T`` within ``Hb`` hops, then a
    DFS whose cost is proportional to the partial paths it explores, each step
    O(log deg) for the binary search; scratch is reset only where touched, so the cost
    does not depend on the graph size. Worst case exponential in ``max_hops`` (bounded
    by ``max_enumerated`` search steps).

    References
    ----------
    .. [1] R. Kumar and T. Calders, "2SCENT: An efficient algorithm for enumerating all
       simple temporal cycles", PVLDB 11(11), 2018.
    .. [2] Y. Peng et al., "Towards bridging theory and practice: hop-constrained s-t
       simple path enumeration", PVLDB 13(4), 2019.

    Examples
    --------
    >>> import numpy as np
    >>> from flowgraph.engine.csr import build_index
    >>> idx = build_index(np.array([0, 1, 1], np.int32), np.array([1, 0, 0], np.int32),
    ...                   np.array([5, 6, 5]), np.array([90, 80, 70]), np.array(["d", "x"]))
    >>> r = find_flow_back(idx, 0, 0, 100, np.array([0]), FlowBackParams())
    >>> [p.tolist() for p in r.paths], r.path_count, r.returned_amount, r.first_return_ts
    ([[0, 1]], 1, 80, 6)
    """
    _check_account(index, int(account))
    targets = np.unique(np.asarray(targets, np.int64))
    if targets.size and (targets[0] < 0 or targets[-1] >= index.n_accounts):
        raise ValueError("target account id out of range")
    H = int(params.max_hops)
    K = int(params.max_paths)
    thr = params.threshold(amount)
    tend = int(t0) + int(params.window_ms)
    if horizon is not None:
        tend = min(tend, int(horizon))
    s = _scratch(1, index.n_accounts, index.n_edges, H)
    kept_rows = np.zeros((K, H), np.int64)
    kept_hops = np.zeros(K, np.int64)
    kept_last = np.zeros(max(K, 1), np.int64)
    res = np.zeros(_R_SIZE, np.int64)
    in_t = s.in_t[0]
    in_t[targets] = 1
    try:
        union = _search_one(
            *_arrays(index),
            int(account), int(t0), int(amount), int(thr), tend,
            H, _backward_hops(H), K, int(params.max_enumerated), targets,
            in_t, s.on_path[0], s.late[0], s.seen[0], s.infr[0], s.touched[0],
            s.fr_a[0], s.fr_b[0], s.emark[0], s.bal[0],
            kept_rows, kept_hops, kept_last, res, np.empty(64, np.int64),
        )  # fmt: skip
    finally:
        in_t[targets] = 0
    _give_back(s)
    n_kept = int(res[_R_KEPT])
    count = int(res[_R_COUNT])
    returned = int(res[_R_RETURNED])
    if params.tracing == "maxflow" and count > 0:
        pos = union[: int(res[_R_NUNION])]
        returned = _union_maxflow(index, pos, int(account), int(t0), int(amount), targets)
    return FlowBackResult(
        paths=[kept_rows[i, : kept_hops[i]].copy() for i in range(n_kept)],
        truncated=bool(res[_R_TRUNC]),
        path_count=count,
        returned_amount=returned,
        first_return_ts=int(res[_R_FIRST]) if count > 0 else None,
    )


def _union_maxflow(index, pos, d, t0, a, targets) -> int:
    indptr = np.asarray(index.indptr)
    src = np.searchsorted(indptr, pos, side="right") - 1
    return trace_returned_amount(
        src,
        np.asarray(index.dst)[pos],
        np.asarray(index.ts)[pos],
        np.asarray(index.amount)[pos],
        np.asarray(index.row)[pos],
        d,
        t0,
        a,
        targets,
        method="maxflow",
    )


def find_flow_back_batch(
    index,
    accounts: np.ndarray,
    t0s: np.ndarray,
    amounts: np.ndarray,
    target_indptr: np.ndarray,
    target_ids: np.ndarray,
    params: FlowBackParams,
    threads: int | None = None,
    chunk_elements: int = 1 << 22,
    horizon: np.ndarray | None = None,
) -> BatchResult:
    """Find the flow-back paths of many disbursements in parallel.

    Parameters
    ----------
    index : TemporalIndex
    accounts, t0s, amounts : ndarray, shape (N,)
        Receiving account (dense id), time (UTC ms) and amount of each disbursement.
    target_indptr : ndarray of int64, shape (N+1,)
    target_ids : ndarray of int
        Targets of disbursement ``i`` are ``target_ids[target_indptr[i]:target_indptr[i+1]]``.
    params : FlowBackParams
    threads : int, optional
        ``numba.set_num_threads(threads)`` before the run (capped at the numba maximum).
    chunk_elements : int
        Disbursements are processed in chunks whose path buffers hold at most this many
        int64 (``chunk * max_paths * max_hops``).
    horizon : ndarray of int64, shape (N,), optional
        Latest transaction time (inclusive) to look at per disbursement, e.g. the data
        cut-off of a batch run: the search uses ``min(t0 + window_ms, horizon)``.

    Returns
    -------
    BatchResult
        Identical, disbursement by disbursement, to :func:`find_flow_back`.

    Notes
    -----
    Each of W workers (numba ``prange``) owns its scratch arrays, O(W · (n · max_hops +
    E)) bytes, and takes every W-th disbursement of a chunk. With ``tracing="maxflow"``
    the returned amounts are recomputed per disbursement that has paths.

    Examples
    --------
    >>> import numpy as np
    >>> from flowgraph.engine.csr import build_index
    >>> idx = build_index(np.array([0, 1], np.int32), np.array([1, 0], np.int32),
    ...                   np.array([5, 6]), np.array([90, 80]), np.array(["d", "x"]))
    >>> b = find_flow_back_batch(idx, np.array([0, 0]), np.array([0, 5]),
    ...                          np.array([100, 100]), np.array([0, 1, 2]),
    ...                          np.array([0, 0]), FlowBackParams())
    >>> b.path_count.tolist(), b.result(0).paths[0].tolist(), b.first_return_ts.tolist()
    ([1, 0], [0, 1], [6, -1])
    """
    accounts = np.ascontiguousarray(accounts, np.int64)
    t0s = np.ascontiguousarray(t0s, np.int64)
    amounts = np.ascontiguousarray(amounts, np.int64)
    tindptr = np.ascontiguousarray(target_indptr, np.int64)
    tids = np.ascontiguousarray(target_ids, np.int64)
    N = accounts.shape[0]
    if not (t0s.shape[0] == amounts.shape[0] == N and tindptr.shape[0] == N + 1):
        raise ValueError("accounts, t0s, amounts must have length N and target_indptr N+1")
    n = index.n_accounts
    if N and (accounts.min() < 0 or accounts.max() >= n):
        raise ValueError("account id out of range")
    if tids.size and (tids.min() < 0 or tids.max() >= n):
        raise ValueError("target account id out of range")
    if threads is not None:
        numba.set_num_threads(max(1, min(int(threads), numba.config.NUMBA_NUM_THREADS)))
    W = max(1, min(numba.get_num_threads(), N))
    H = int(params.max_hops)
    K = int(params.max_paths)
    tends = t0s + int(params.window_ms)
    if horizon is not None:
        horizon = np.broadcast_to(np.asarray(horizon, np.int64), (N,))
        tends = np.minimum(tends, horizon)
    tends = np.ascontiguousarray(tends, np.int64)
    if params.min_amount_ratio == 0:
        thrs = np.full(N, int(params.min_amount), np.int64)
    else:
        thrs = np.fromiter((params.threshold(x) for x in amounts.tolist()), np.int64, N)
    chunk = max(1, min(N, int(chunk_elements) // max(1, K * H)))
    s = _scratch(W, n, index.n_edges, H)
    arrays = _arrays(index)
    path_counts = []
    hop_lens = []
    hop_rows = []
    res_all = np.zeros((N, _R_SIZE), np.int64)
    out_rows = np.zeros((chunk, K, H), np.int64)
    out_hops = np.zeros((chunk, K), np.int64)
    for start in range(0, N, chunk):
        stop = min(N, start + chunk)
        c = stop - start
        args = (
            *arrays, accounts, t0s, amounts, thrs, tends, tindptr, tids,
            start, stop, H, _backward_hops(H), K,
            int(params.max_enumerated),
            s.in_t, s.on_path, s.late, s.seen, s.infr, s.touched, s.fr_a, s.fr_b,
            s.emark, s.bal, out_rows, out_hops, res_all[start:stop],
        )  # fmt: skip
        if W == 1:
            _batch_worker(0, *args)  # no thread-pool start-up for one worker
        else:
            _batch_kernel(*args)
        kept = res_all[start:stop, _R_KEPT]
        mask = np.arange(K)[None, :] < kept[:, None]
        hops = out_hops[:c][mask]
        rmask = mask[:, :, None] & (np.arange(H)[None, None, :] < out_hops[:c][:, :, None])
        path_counts.append(kept)
        hop_lens.append(hops)
        hop_rows.append(out_rows[:c][rmask])
    _give_back(s)
    kept_all = np.concatenate(path_counts) if path_counts else np.zeros(0, np.int64)
    hops_all = np.concatenate(hop_lens) if hop_lens else np.zeros(0, np.int64)
    path_indptr = np.zeros(N + 1, np.int64)
    np.cumsum(kept_all, out=path_indptr[1:])
    hop_indptr = np.zeros(hops_all.shape[0] + 1, np.int64)
    np.cumsum(hops_all, out=hop_indptr[1:])
    returned = res_all[:, _R_RETURNED].copy()
    if params.tracing == "maxflow":
        for i in np.flatnonzero(res_all[:, _R_COUNT] > 0).tolist():
            targets = tids[tindptr[i] : tindptr[i + 1]]
            r = find_flow_back(
                index, int(accounts[i]), int(t0s[i]), int(amounts[i]), targets, params,
                horizon=int(tends[i]),
            )
            returned[i] = r.returned_amount
    return BatchResult(
        path_indptr=path_indptr,
        hop_indptr=hop_indptr,
        hop_rows=np.concatenate(hop_rows) if hop_rows else np.zeros(0, np.int64),
        truncated=res_all[:, _R_TRUNC].astype(bool),
        path_count=res_all[:, _R_COUNT].copy(),
        returned_amount=returned,
        first_return_ts=res_all[:, _R_FIRST].copy(),
    )


__all__ = [
    "BatchResult",
    "FlowBackParams",
    "FlowBackResult",
    "find_flow_back",
    "find_flow_back_batch",
    "trace_returned_amount",
]
