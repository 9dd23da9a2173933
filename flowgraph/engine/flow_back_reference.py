"""Brute-force reference for the flow-back rule, written straight from its definition.

Slow and obviously correct: it enumerates every chain of transactions leaving ``d``
(condition 1) of at most ``max_hops`` edges with strictly increasing timestamps
(conditions 2 and 3 only stop a chain from growing), then keeps the chains for which
:func:`is_flow_back_path` checks all eight conditions one by one. No pruning, no index:
it reads plain edge lists, where the position of an edge is its transaction row.
The tests compare :mod:`flowgraph.engine.flow_back` with this module on random graphs.

>>> res = find_flow_back_reference([0, 1], [1, 2], [10, 20], [500, 400],
...                                0, 0, 1000, [2], window_ms=100)
>>> res.paths, res.returned_amount
([[0, 1]], 400)
"""

from __future__ import annotations

from dataclasses import dataclass, field

from flowgraph.core.values import DAY_MS, ratio_threshold


@dataclass
class ReferenceResult:
    """Same fields as :class:`flowgraph.engine.flow_back.FlowBackResult` (paths as lists)."""

    paths: list[list[int]]
    truncated: bool
    path_count: int
    returned_amount: int
    first_return_ts: int | None
    edges: list[int] = field(default_factory=list)  # union of every path's edges, cap or not


def is_flow_back_path(path, src, dst, ts, amount, d, t0, a, targets, *, window_ms,
                      max_hops, min_amount, min_amount_ratio) -> bool:  # fmt: skip
    """Check the eight conditions of DESIGN.md for one chain ``path`` (edge rows)."""
    T = set(targets)
    h = len(path)
    if h == 0:
        return False
    accounts = [src[path[0]]] + [dst[e] for e in path]
    # 1. e1 leaves d; e(i+1) leaves the account e(i) entered
    if src[path[0]] != d:
        return False
    for i in range(h - 1):
        if src[path[i + 1]] != dst[path[i]]:
            return False
    # 2. t0 < ts(e1) < ... < ts(eh) <= t0 + window
    times = [ts[e] for e in path]
    if not times[0] > t0:
        return False
    if any(not times[i] < times[i + 1] for i in range(h - 1)):
        return False
    if not times[-1] <= t0 + window_ms:
        return False
    # 3. 1 <= h <= max_hops
    if not 1 <= h <= max_hops:
        return False
    # 4. every amount >= max(min_amount, ratio_threshold(ratio, a))
    thr = max(min_amount, ratio_threshold(min_amount_ratio, a))
    if any(amount[e] < thr for e in path):
        return False
    # 5. no account repeats, except that the last account may be d itself
    body = accounts[:-1]
    if len(set(body)) != len(body):
        return False
    if accounts[-1] in body and accounts[-1] != d:
        return False
    # 6. the last account is in T
    if accounts[-1] not in T:
        return False
    # 7. some account before the last is not in T
    if all(x in T for x in body):
        return False
    # 8. T accounts only as a leading run from d and at the end
    k = 0
    while k < len(body) and body[k] in T:
        k += 1
    if any(x in T for x in body[k:]):
        return False
    return True


def _chains(src, dst, ts, d, t0, max_hops):
    """Every chain from ``d`` with strictly increasing ts (> t0), up to max_hops edges."""
    m = len(src)
    out = []
    stack = [[e] for e in range(m) if src[e] == d and ts[e] > t0]
    while stack:
        chain = stack.pop()
        out.append(chain)
        if len(chain) == max_hops:
            continue
        last = chain[-1]
        for e in range(m):
            if src[e] == dst[last] and ts[e] > ts[last]:
                stack.append(chain + [e])
    return out


def greedy_returned(edges, src, dst, ts, amount, d, a, targets) -> int:
    """Greedy tracing of DESIGN.md: the amount of a disbursement that comes back into ``T``.

    ``edges`` are edge keys (duplicates count once); ``src``, ``dst``, ``ts`` and
    ``amount`` map a key to its value: sequences indexed by row, or dicts keyed by tx id.
    A balance of ``a`` starts at ``d``; the edges are walked in ``(ts, key)`` order, each
    ``u -> v`` moving ``min(amount, balance[u])``; what moves from outside ``T`` into
    ``T`` is returned and leaves circulation. This is the one plain-Python copy of the
    walk (the engine's compiled one is :func:`flowgraph.engine.flow_back_tracing.greedy_trace`).

    >>> greedy_returned([0, 1, 1], [0, 1], [1, 2], [5, 6], [90, 80], d=0, a=100, targets=[2])
    80
    >>> greedy_returned({"t2", "t1"}, {"t1": "d", "t2": "x"}, {"t1": "x", "t2": "b"},
    ...                 {"t1": 5, "t2": 6}, {"t1": 90, "t2": 120}, "d", 100, {"b"})
    90
    """
    T = set(targets)
    balance = {d: a}
    returned = 0
    for e in sorted(set(edges), key=lambda e: (ts[e], e)):
        u, v = src[e], dst[e]
        moved = min(amount[e], balance.get(u, 0))
        balance[u] = balance.get(u, 0) - moved
        if u not in T and v in T:
            returned += moved
        else:
            balance[v] = balance.get(v, 0) + moved
    return returned


def find_flow_back_reference(src, dst, ts, amount, d, t0, a, targets, *,
                             window_ms=30 * DAY_MS, max_hops=5, min_amount=0,
                             min_amount_ratio=0.1, max_paths=100) -> ReferenceResult:  # fmt: skip
    """All flow-back paths of one disbursement by brute force.

    Parameters
    ----------
    src, dst, ts, amount : sequences
        One entry per transaction; its position is its row.
    d, t0, a : int
        Receiving account, time and amount of the disbursement.
    targets : iterable of int
        The accounts of T.

    Returns
    -------
    ReferenceResult

    Notes
    -----
    O(m · c) for c enumerated chains; exponential in ``max_hops``: for tests only.
    """
    src, dst, ts, amount = list(src), list(dst), list(ts), list(amount)
    targets = sorted(set(targets))
    kw = dict(window_ms=window_ms, max_hops=max_hops, min_amount=min_amount,
              min_amount_ratio=min_amount_ratio)  # fmt: skip
    valid = [
        c
        for c in _chains(src, dst, ts, d, t0, max_hops)
        if is_flow_back_path(c, src, dst, ts, amount, d, t0, a, targets, **kw)
    ]
    valid.sort(key=lambda p: (ts[p[-1]], len(p), tuple(p)))
    union = sorted({e for p in valid for e in p})
    return ReferenceResult(
        paths=valid[:max_paths],
        truncated=len(valid) > max_paths,
        path_count=len(valid),
        returned_amount=greedy_returned(union, src, dst, ts, amount, d, a, targets),
        first_return_ts=min((ts[p[-1]] for p in valid), default=None),
        edges=union,
    )
