"""TODO docstring."""

from __future__ import annotations

import numpy as np

from flowgraph.core.errors import InvalidValue, NotFound
from flowgraph.core.values import format_ts
from flowgraph.engine.flow_back import FlowBackParams, find_flow_back
from flowgraph.graph.hops import read_hops
from flowgraph.graph.store_index import AccountLookup, load_or_build_index
from flowgraph.store.embedded import Store


def paths_between(
    store: Store, src: str, dst: str, since: int | None = None, until: int | None = None,
    max_hops: int = 5, min_amount: int = 0, max_paths: int = 100,
) -> dict:
    """Time-respecting paths from ``src`` to ``dst`` with the flow-back engine.

    With T = {dst}, d = src and no amount ratio, the flow-back conditions say exactly:
    transfers from ``src`` with strictly increasing times in [since, until], each at least
    ``min_amount``, no account twice, ending the first time they reach ``dst``.
    """
    if src == dst:
        raise InvalidValue("paths needs two different accounts")
    index, _ = load_or_build_index(store)
    lookup = AccountLookup(index.account_ids)
    s, d = lookup.get(src), lookup.get(dst)
    for name, i in ((src, s), (dst, d)):
        if i < 0:
            raise NotFound(f"unknown account {name!r}")
    ts = np.asarray(index.ts)
    lo = (int(since) if since is not None else int(ts.min(initial=0))) - 1
    hi = int(until) if until is not None else int(ts.max(initial=0))
    params = FlowBackParams(window_ms=max(0, hi - lo), max_hops=max_hops, min_amount=min_amount,
                            min_amount_ratio=0.0, max_paths=max_paths)
    res = find_flow_back(index, s, lo, 0, np.array([d], np.int64), params)
    rows = np.concatenate(res.paths) if res.paths else np.zeros(0, np.int64)
    hops = read_hops(store, rows)
    return {
        "src": src, "dst": dst,
        "since": format_ts(lo + 1), "until": format_ts(hi), "max_hops": max_hops,
        "path_count": res.path_count, "truncated": res.truncated,
        "paths": [{"hops": [hops[int(r)] for r in p]} for p in res.paths],
    }
