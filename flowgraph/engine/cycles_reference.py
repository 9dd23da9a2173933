"""The plain reference for :mod:`flowgraph.engine.cycles`: networkx's simple cycles and a
brute force over parallel transfers, checked literally with fractions."""

from __future__ import annotations

from collections.abc import Iterable
from itertools import product

from flowgraph.engine.cycles import _as_fraction, _validate

__all__ = ["simple_cycles_reference"]


def simple_cycles_reference(
    src,
    dst,
    amount=None,
    ts=None,
    *,
    min_hops: int = 3,
    max_hops: int = 7,
    amount_ratio: tuple[float, float] | None = None,
    window_ms: int | None = None,
    temporal: bool = False,
) -> list[tuple[int, ...]]:
    """Slow, obviously correct :func:`find_cycles` (same parameters and answer).

    ``networkx.simple_cycles(G, length_bound=max_hops)`` on the collapsed
    digraph, then, per cycle, a brute force over every choice of parallel
    transfers, checking the constraints literally with :class:`fractions.Fraction`.

    Notes
    -----
    Exponential in the number of parallel transfers per cycle; for tests and
    benchmarks only.

    References
    ----------
    .. [1] D. B. Johnson, "Finding all the elementary circuits of a directed
       graph", SIAM J. Comput. 4(1):77-84, 1975.

    Examples
    --------
    >>> simple_cycles_reference([0, 1, 2, 2, 3], [1, 2, 0, 3, 0])
    [(0, 1, 2), (0, 1, 2, 3)]
    """
    import networkx as nx

    src_l = [int(x) for x in src]
    dst_l = [int(x) for x in dst]
    m = len(src_l)
    amt_l = None if amount is None else [int(x) for x in amount]
    ts_l = None if ts is None else [int(x) for x in ts]
    _validate(m, amt_l, ts_l, min_hops, max_hops, amount_ratio, window_ms, temporal)
    ratio = None if amount_ratio is None else tuple(_as_fraction(b) for b in amount_ratio)

    multi: dict[tuple[int, int], list[int]] = {}
    for i, (u, v) in enumerate(zip(src_l, dst_l, strict=True)):
        if u != v:
            multi.setdefault((u, v), []).append(i)
    g = nx.DiGraph()
    g.add_edges_from(multi)

    def ok(edge_ids: Iterable[int]) -> bool:
        es = list(edge_ids)
        k = len(es)
        if ratio is not None:
            lo, hi = ratio
            for i in range(k):
                x, y = amt_l[es[i]], amt_l[es[(i + 1) % k]]
                if not (lo * x <= y <= hi * x):
                    return False
        if temporal:
            for j in range(k):
                order = [ts_l[es[(j + i) % k]] for i in range(k)]
                if all(a < b for a, b in zip(order, order[1:], strict=False)) and (
                    window_ms is None or order[-1] - order[0] <= window_ms
                ):
                    break
            else:
                return False
        return True

    out = []
    for cyc in nx.simple_cycles(g, length_bound=max_hops):
        k = len(cyc)
        if k < min_hops:
            continue
        i = cyc.index(min(cyc))
        cyc = cyc[i:] + cyc[:i]
        choices = [multi[(cyc[j], cyc[(j + 1) % k])] for j in range(k)]
        if any(ok(es) for es in product(*choices)):
            out.append(tuple(cyc))
    out.sort(key=lambda c: (len(c), c))
    return out
