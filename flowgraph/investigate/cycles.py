"""Transfer cycles of a store or of a plain edge-list file, as CodeCraft-layout text."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from flowgraph.core.errors import InvalidValue
from flowgraph.engine.cycles import EdgeList, cycles_to_text, find_cycles, read_edge_list
from flowgraph.store.embedded import Store


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


def cycles_text(store: Store | None, edges_path: Path | None, **kw) -> str:
    """Count line, then one cycle per line starting at its smallest id, sorted by length then ids."""
    edges = read_edge_list(edges_path) if edges_path is not None else edges_from_store(store)
    if kw.get("temporal") and edges.ts is None:
        raise InvalidValue(f"{edges_path}: --temporal needs a fourth column with timestamps")
    src, dst, labels = edges.to_dense()
    found = find_cycles(src, dst, edges.amount, edges.ts, **kw)
    return cycles_to_text(found, labels)
