"""Transfer cycles of a store or of a plain edge-list file, capped and in a stable order."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from flowgraph.core.errors import InvalidValue
from flowgraph.engine.cycles import EdgeList, find_cycles, find_cycles_capped, read_edge_list
from flowgraph.store.embedded import Store

#: cycles listed unless ``--limit`` says otherwise (0 = all): a tiny synthetic bank holds
#: millions of temporal cycles of up to 7 hops (hundreds of MB of text); the first
#: thousand, shortest first, are what a person reads
DEFAULT_LIMIT = 1000


def edges_from_store(store: Store) -> EdgeList:
    """The store's transactions as an :class:`EdgeList` (amounts in minor units)."""
    tx = store.read("transactions", ["src_account", "dst_account", "amount", "ts"])
    return EdgeList(
        src=tx["src_account"].to_numpy().astype(object),
        dst=tx["dst_account"].to_numpy().astype(object),
        amount=tx["amount"].to_numpy().astype(np.int64),
        ts=tx["ts"].to_numpy().astype(np.int64),
        amount_scale=100,
    )


def list_cycles(store: Store | None, edges_path: Path | None, limit: int = DEFAULT_LIMIT, **kw) -> dict:
    """``{"cycles": [[account, ...], ...], "count", "truncated", "limit"}``: cycles sorted
    by length then ids, each starting at its smallest id, at most ``limit`` of them
    (``0``: all); ``truncated`` when more exist."""
    edges = read_edge_list(edges_path) if edges_path is not None else edges_from_store(store)
    if kw.get("temporal") and edges.ts is None:
        raise InvalidValue(f"{edges_path}: --temporal needs a fourth column with timestamps")
    src, dst, labels = edges.to_dense()
    if limit:
        found, truncated = find_cycles_capped(src, dst, edges.amount, edges.ts, limit=limit, **kw)
    else:
        found, truncated = find_cycles(src, dst, edges.amount, edges.ts, **kw), False
    cycles = [[str(labels[v]) for v in c] for c in found]
    return {"cycles": cycles, "count": len(cycles), "truncated": truncated, "limit": limit or None}


def cycles_text(result: dict) -> str:
    """The CodeCraft answer layout: the number of cycles listed, then one per line."""
    return "\n".join([str(result["count"]), *(",".join(c) for c in result["cycles"])]) + "\n"
