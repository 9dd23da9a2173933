"""Brute-force reference for the forward flow (资金流向), written straight from its definition.

DESIGN.md, "Forward flow": a transaction ``e`` is in the forward flow of a disbursement
(account ``d``, time ``t0``, amount ``a``) when some sequence ``e1 … ek = e`` satisfies
conditions 1–4 of the flow-back rule:

1. ``e1`` leaves ``d`` and each ``e(i+1)`` leaves the account ``e(i)`` entered;
2. ``t0 < ts(e1) < … < ts(ek) <= t0 + window``;
3. ``1 <= k <= max_hops``;
4. every amount is ``>= max(min_amount, ratio_threshold(min_amount_ratio, a))``;

accounts may repeat, and ``hop(e)`` is the smallest such ``k``.

This module enumerates every such sequence (no dominance, no index; only transactions that
break a per-transaction condition are left out first) and keeps the smallest length per
transaction. Slow and obviously correct: the tests compare
:mod:`flowgraph.engine.forward_flow` with it on random temporal multigraphs.

>>> find_forward_flow_reference([0, 1, 1], [1, 2, 0], [10, 20, 30], [500, 400, 400],
...                             0, 0, 1000, window_ms=100, max_hops=5, min_amount_ratio=0.1)
{0: 1, 1: 2, 2: 2}
"""

from __future__ import annotations

from flowgraph.core.values import DAY_MS, ratio_threshold


def is_forward_sequence(seq, src, dst, ts, amount, d, t0, a, *, window_ms, max_hops,
                        min_amount, min_amount_ratio) -> bool:  # fmt: skip
    """Check conditions 1–4 for one sequence ``seq`` of transaction rows."""
    k = len(seq)
    if not 1 <= k <= max_hops:  # 3
        return False
    if src[seq[0]] != d:  # 1
        return False
    if any(src[seq[i + 1]] != dst[seq[i]] for i in range(k - 1)):  # 1
        return False
    times = [ts[e] for e in seq]
    if not times[0] > t0 or not times[-1] <= t0 + window_ms:  # 2
        return False
    if any(not times[i] < times[i + 1] for i in range(k - 1)):  # 2
        return False
    thr = max(min_amount, ratio_threshold(min_amount_ratio, a))
    return all(amount[e] >= thr for e in seq)  # 4


def _sequences(src, dst, ts, candidates, d, max_hops):
    """Every sequence of ``candidates`` rows leaving ``d`` whose consecutive edges connect
    and whose timestamps strictly increase, up to ``max_hops`` edges (all four conditions
    are checked again on each sequence by :func:`is_forward_sequence`)."""
    out_of: dict[int, list[int]] = {}
    for e in candidates:
        out_of.setdefault(src[e], []).append(e)
    stack = [[e] for e in out_of.get(d, [])]
    while stack:
        seq = stack.pop()
        yield seq
        if len(seq) < max_hops:
            last = seq[-1]
            stack.extend(seq + [e] for e in out_of.get(dst[last], []) if ts[e] > ts[last])


def find_forward_flow_reference(src, dst, ts, amount, d, t0, a, *, window_ms=30 * DAY_MS,
                                max_hops=5, min_amount=0, min_amount_ratio=0.1) -> dict[int, int]:  # fmt: skip
    """Transaction row → hop for every transaction in the forward flow of one disbursement.

    Parameters
    ----------
    src, dst, ts, amount : sequences
        One entry per transaction; its position is its row.
    d, t0, a : int
        Receiving account, time and amount of the disbursement.

    Returns
    -------
    dict
        ``{row: hop}``, ordered by row.

    Notes
    -----
    Exponential in ``max_hops`` (every sequence is enumerated): for tests only.
    """
    src, dst, ts, amount = list(src), list(dst), list(ts), list(amount)
    kw = dict(window_ms=window_ms, max_hops=max_hops, min_amount=min_amount,
              min_amount_ratio=min_amount_ratio)  # fmt: skip
    # an edge outside (t0, t0 + window] or under the floor is on no valid sequence (each
    # condition holds for every edge of one): leave those out before enumerating
    thr = max(min_amount, ratio_threshold(min_amount_ratio, a))
    candidates = [e for e in range(len(src)) if t0 < ts[e] <= t0 + window_ms and amount[e] >= thr]
    hop: dict[int, int] = {}
    for seq in _sequences(src, dst, ts, candidates, d, max_hops):
        if is_forward_sequence(seq, src, dst, ts, amount, d, t0, a, **kw):
            e = seq[-1]
            hop[e] = min(hop.get(e, len(seq)), len(seq))
    return dict(sorted(hop.items()))
