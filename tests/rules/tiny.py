"""Tiny hand-made graphs for detector tests: dense account ids, rows = list positions."""

from __future__ import annotations

import numpy as np

from flowgraph.engine.csr import build_index
from flowgraph.engine.hits import Disbursements

A = 1_000_000  # disbursed amount in hand-written cases


def graph(edges, n=None):
    """edges: (src, dst, ts, amount); row = position in the list."""
    n = n or 1 + max([max(s, d) for s, d, _, _ in edges] or [0])
    src, dst, ts, am = (
        (np.array(c, np.int64) for c in zip(*edges, strict=True)) if edges else ([],) * 4
    )
    return build_index(np.asarray(src, np.int32), np.asarray(dst, np.int32), np.asarray(ts, np.int64),
                       np.asarray(am, np.int64), np.array([f"a{i}" for i in range(n)]))  # fmt: skip


def one(d=0, t0=0, a=A, targets=()):
    return Disbursements.of([d], [t0], [a], [list(targets)])
