"""How much of a disbursement came back: tracing the returned amount over path edges.

The flow-back search (:mod:`flowgraph.engine.flow_back_search`) collects the union of the
edges of every flow-back path of a disbursement; the returned amount is traced over that
union, greedily (DESIGN.md: walk the edges in (ts, row) order, moving what each account
holds) or as an exact maximum flow on the time-expanded network (networkx).
:func:`~flowgraph.engine.flow_back_reference.greedy_returned` is the slow reference of the
greedy rule.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def greedy_trace(
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
        greedy_trace(
            local[:m].copy(), local[m:].copy(), ts, amount, row, m, ld, int(a), in_t, bal
        )
    )


def union_maxflow(index, pos, d, t0, a, targets) -> int:
    """Maximum-flow returned amount over the index edges at forward-CSR positions ``pos``."""
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
