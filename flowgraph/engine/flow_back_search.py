"""Flow-back search kernels: the closing-time pass, the pruned depth-first search, the batch.

The algorithm is described in :mod:`flowgraph.engine.flow_back` (the public API that
calls these). One disbursement is searched by :func:`_search_one`: a bounded backward pass
(:func:`_closing_times`) gives, per account and remaining hops, the latest time a chain to
``T`` can still start there; the iterative DFS from ``d`` expands only edges that can
still reach ``T`` in time. Kept paths are the ``max_paths`` first by (last ts, hops,
rows) (:mod:`flowgraph.engine.keep_earliest`); the returned amount is traced greedily over
the union of every path's edges (:mod:`flowgraph.engine.flow_back_tracing`).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from flowgraph.engine.flow_back_tracing import greedy_trace, union_maxflow
from flowgraph.engine.keep_earliest import offer, sort_rows
from flowgraph.engine.scratch import ScratchPool, run_workers

NEG = np.int64(-(2**63))  # "cannot reach T" closing time

# int64 scalar slots of the per-call result vector
R_KEPT, R_TRUNC, R_COUNT, R_RETURNED, R_FIRST, R_NUNION, R_STEPS, R_TOUCHED = range(8)
R_SIZE = 8

BACKWARD_SHARE = 0.4  # H=5 -> 2 backward levels, 3 forward (measured best on 10M edges)

SCRATCH = ScratchPool(
    lambda workers, n, m, hops: {
        "in_t": np.zeros((workers, n), np.uint8),
        "on_path": np.zeros((workers, n), np.uint8),
        "late": np.full((workers, n, hops + 1), NEG, np.int64),
        "seen": np.zeros((workers, n), np.uint8),
        "infr": np.zeros((workers, n), np.uint8),
        "touched": np.empty((workers, n), np.int64),
        "fr_a": np.empty((workers, n), np.int64),
        "fr_b": np.empty((workers, n), np.int64),
        "emark": np.zeros((workers, m), np.uint8),
        "bal": np.zeros((workers, n), np.int64),
    }
)  # per-worker scratch over accounts and edges (returned clean by the kernels)


def backward_hops(H: int) -> int:
    """Levels of the backward closing-time pass (meet in the middle with the DFS)."""
    return max(1, min(H, int(round(H * BACKWARD_SHARE + 0.01))))


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
def _add_path(p_edge, hops, last_ts, row, emark, union_buf, n_union, cand):  # pragma: no cover - compiled
    """A path found: its key ``(last ts, hops, rows…, 0…)`` into ``cand``, its edges (CSR
    positions ``p_edge[:hops]``) into the union unless marked; ``(union_buf, n_union)``."""
    cand[0] = last_ts
    cand[1] = hops
    for i in range(cand.shape[0] - 2):
        if i >= hops:
            cand[2 + i] = 0
            continue
        pe = p_edge[i]
        cand[2 + i] = row[pe]
        if emark[pe] == 0:
            emark[pe] = 1
            if n_union == union_buf.shape[0]:
                nb = np.empty(2 * n_union + 16, np.int64)
                nb[:n_union] = union_buf[:n_union]
                union_buf = nb
            union_buf[n_union] = pe
            n_union += 1
    return union_buf, n_union


@njit(cache=True, nogil=True)
def _trace_union(indptr, dst, ts, amount, row, union_buf, n_union, emark, d, a, in_t, bal):  # pragma: no cover - compiled
    """Greedy returned amount over the union of path edges (CSR positions); unmarks them."""
    if n_union == 0:
        return 0
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
    return greedy_trace(u_src, u_dst, u_ts, u_amount, u_row, n_union, d, a, in_t, bal)


@njit(cache=True, nogil=True)
def _search_one(
    indptr, dst, ts, amount, row,
    rindptr, rsrc, rts, ramount,
    d, t0, a, thr, tend, H, Hb, budget, targets,
    in_t, on_path, late, seen, infr, touched, fr_a, fr_b, emark, bal,
    kept, res, union_buf,
):  # pragma: no cover - compiled  # fmt: skip
    """Search one disbursement; ``in_t`` must already mark ``targets``.

    Fills ``kept[:n, :]`` with the kept paths' keys ``(last ts, hops, row_1 … row_H)``,
    sorted, ``n = res[R_KEPT] <= K = kept.shape[0]``, and ``res``; returns the union buffer
    of CSR positions (possibly reallocated), of which the first ``res[R_NUNION]`` are used.
    All scratch arrays are returned clean.
    """
    for q in range(res.shape[0]):
        res[q] = 0
    res[R_FIRST] = -1
    n_touched = _closing_times(
        rindptr, rsrc, rts, ramount, targets, t0, tend, thr, Hb, late, seen, infr, touched,
        fr_a, fr_b,
    )
    width = 2 + H
    n_kept = 0
    worst = -1
    count = 0
    first = np.int64(0)
    steps = 0
    budget_hit = False
    n_union = 0
    root_close = late[d, H] if H <= Hb else tend
    if root_close > t0:
        st_node = np.empty(H + 1, np.int64)
        st_pos = np.empty(H + 1, np.int64)
        st_end = np.empty(H + 1, np.int64)
        st_left = np.empty(H + 1, np.bool_)
        p_edge = np.empty(H, np.int64)  # CSR positions of the path's edges
        cand = np.zeros(width, np.int64)
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
                    count += 1
                    if count == 1 or te < first:
                        first = te
                    p_edge[k] = e
                    union_buf, n_union = _add_path(p_edge, k + 1, te, row, emark, union_buf, n_union, cand)
                    _, n_kept, worst = offer(kept, n_kept, worst, cand, width)
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
    sort_rows(kept, n_kept, width)
    returned = _trace_union(indptr, dst, ts, amount, row, union_buf, n_union, emark, d, a, in_t, bal)
    # reset closing times
    for q in range(n_touched):
        v = touched[q]
        seen[v] = 0
        for r in range(H + 1):
            late[v, r] = NEG
    res[R_KEPT] = n_kept
    res[R_TRUNC] = 1 if (budget_hit or count > kept.shape[0]) else 0
    res[R_COUNT] = count
    res[R_RETURNED] = returned
    res[R_FIRST] = first if count > 0 else -1
    res[R_NUNION] = n_union
    res[R_STEPS] = steps
    res[R_TOUCHED] = n_touched
    return union_buf


@njit(cache=True, nogil=True)
def _batch_worker(
    w, indptr, dst, ts, amount, row,
    rindptr, rsrc, rts, ramount,
    accounts, t0s, amounts, thrs, tends, tindptr, tids,
    start, stop, H, Hb, budget,
    in_t, on_path, late, seen, infr, touched, fr_a, fr_b, emark, bal,
    out_kept, out_res,
):  # pragma: no cover - compiled  # fmt: skip
    """Worker ``w`` of W (= ``in_t.shape[0]``): disbursements start+w, start+w+W, ...
    (:func:`~flowgraph.engine.scratch.run_workers` runs the W workers on threads)."""
    W = in_t.shape[0]
    union_buf = np.empty(64, np.int64)
    res = np.empty(R_SIZE, np.int64)
    for i in range(start + w, stop, W):
        slot = i - start
        targets = tids[tindptr[i] : tindptr[i + 1]]
        for q in range(targets.shape[0]):
            in_t[w, targets[q]] = 1
        union_buf = _search_one(
            indptr, dst, ts, amount, row, rindptr, rsrc, rts, ramount,
            accounts[i], t0s[i], amounts[i], thrs[i], tends[i], H, Hb, budget,
            targets, in_t[w], on_path[w], late[w], seen[w], infr[w], touched[w],
            fr_a[w], fr_b[w], emark[w], bal[w], out_kept[slot], res, union_buf,
        )
        for q in range(targets.shape[0]):
            in_t[w, targets[q]] = 0
        for q in range(R_SIZE):
            out_res[slot, q] = res[q]


# ============================================================================ drivers


def search_one(index, account: int, t0: int, amount: int, targets: np.ndarray, tend: int, params
               ) -> tuple[list[np.ndarray], bool, int, int, int | None]:  # fmt: skip
    """One disbursement: ``(kept paths, truncated, path count, returned amount, first
    return ts or None)``, the fields of :class:`~flowgraph.engine.flow_back.FlowBackResult`."""
    H, K = int(params.max_hops), int(params.max_paths)
    kept = np.zeros((K, H + 2), np.int64)
    res = np.zeros(R_SIZE, np.int64)
    with SCRATCH.borrow(1, index.n_accounts, index.n_edges, H) as s:
        in_t = s.in_t[0]
        in_t[targets] = 1
        try:
            union = _search_one(
                *index.kernel_arrays[:9], account, t0, amount, params.threshold(amount), tend,
                H, backward_hops(H), int(params.max_enumerated), targets,
                in_t, s.on_path[0], s.late[0], s.seen[0], s.infr[0], s.touched[0],
                s.fr_a[0], s.fr_b[0], s.emark[0], s.bal[0], kept, res, np.empty(64, np.int64),
            )  # fmt: skip
        finally:
            in_t[targets] = 0
    count = int(res[R_COUNT])
    returned = int(res[R_RETURNED])
    if params.tracing == "maxflow" and count > 0:
        returned = union_maxflow(index, union[: int(res[R_NUNION])], account, t0, amount, targets)
    paths = [kept[i, 2 : 2 + kept[i, 1]].copy() for i in range(int(res[R_KEPT]))]
    return paths, bool(res[R_TRUNC]), count, returned, int(res[R_FIRST]) if count > 0 else None


def search_batch(index, accounts, t0s, amounts, thrs, tends, tindptr, tids, H: int, K: int,
                 budget: int, workers: int, chunk: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """Every disbursement, ``chunk`` at a time on ``workers`` workers: ``(hops of every
    kept path, rows of every kept path, result slots N × R_SIZE)``, paths in disbursement
    then key order (``res_all[:, R_KEPT]`` paths per disbursement)."""
    N = accounts.shape[0]
    res_all = np.zeros((N, R_SIZE), np.int64)
    out_kept = np.zeros((chunk, K, H + 2), np.int64)
    hop_lens, hop_rows = [], []
    g = index.kernel_arrays[:9]
    with SCRATCH.borrow(workers, index.n_accounts, index.n_edges, H) as s:
        for start in range(0, N, chunk):
            stop = min(N, start + chunk)
            c = stop - start
            args = (
                *g, accounts, t0s, amounts, thrs, tends, tindptr, tids,
                start, stop, H, backward_hops(H), int(budget),
                s.in_t, s.on_path, s.late, s.seen, s.infr, s.touched, s.fr_a, s.fr_b,
                s.emark, s.bal, out_kept, res_all[start:stop],
            )  # fmt: skip
            run_workers(_batch_worker, workers, *args)
            kept = res_all[start:stop, R_KEPT]
            mask = np.arange(K)[None, :] < kept[:, None]
            hops = out_kept[:c, :, 1]
            rmask = mask[:, :, None] & (np.arange(H)[None, None, :] < hops[:, :, None])
            hop_lens.append(hops[mask])
            hop_rows.append(out_kept[:c, :, 2:][rmask])
    hops_all = np.concatenate(hop_lens) if hop_lens else np.zeros(0, np.int64)
    rows_all = np.concatenate(hop_rows) if hop_rows else np.zeros(0, np.int64)
    return hops_all, rows_all, res_all
