"""The shared kernel pieces: earliest arrival, keep-the-K-earliest, the scratch pool."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flowgraph.engine.csr import build_index
from flowgraph.engine.keep_earliest import offer, sort_rows
from flowgraph.engine.reach import earliest_arrival
from flowgraph.engine.scratch import ScratchPool, run_workers

A = 1_000_000


def graph(edges, n=None):
    n = n or 1 + max(max(s, d) for s, d, _, _ in edges)
    src, dst, ts, am = (np.array(c, np.int64) for c in zip(*edges, strict=True))
    return build_index(src.astype(np.int32), dst.astype(np.int32), ts, am, np.array([f"a{i}" for i in range(n)]))


def test_earliest_arrival_trades_hops_for_time():
    idx = graph([(0, 1, 5, A), (1, 2, 6, A), (0, 2, 9, A), (2, 3, 7, A)])
    r = earliest_arrival(idx, 0, 0, A, window_ms=100, max_hops=3, threshold=1)
    assert r[2] == [-1, 9, 6, 6]
    assert r[3] == [-1, -1, -1, 7]  # only through the 2-hop arrival at 6 (9 > 7)


def test_earliest_arrival_threshold_window_and_range():
    idx = graph([(0, 1, 5, 40), (0, 2, 150, A), (1, 2, 6, A)])
    r = earliest_arrival(idx, 0, 0, A, window_ms=100, max_hops=2, threshold=50)
    assert r == {0: [0, 0, 0]}  # 0->1 below the floor, 0->2 after the window
    with pytest.raises(ValueError):
        earliest_arrival(idx, 7, 0, A, window_ms=100, max_hops=2, threshold=50)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.integers(-3, 3)), unique=True, max_size=30), st.integers(0, 6))
def test_offer_keeps_the_k_smallest(events, K):
    """Offering every (distinct) key keeps exactly the K smallest, whatever the order;
    the payload column past the compared width travels with its key."""
    keys = np.zeros((K, 3), np.int64)
    n, worst = 0, -1
    for k, (a, b) in enumerate(events):
        slot, n, worst = offer(keys, n, worst, np.array([a, b], np.int64), 2)
        if slot >= 0:
            keys[slot, 2] = k  # payload: which event
    sort_rows(keys, n, 2)
    expected = sorted((a, b, k) for k, (a, b) in enumerate(events))[:K]
    assert [tuple(map(int, r)) for r in keys[:n]] == expected


def test_scratch_pool_reuses_clean_sets_only():
    built = []
    pool = ScratchPool(lambda n: built.append(n) or {"a": np.zeros(n)})
    with pool.borrow(3) as s1:
        pass
    with pool.borrow(3) as s2:
        assert s2 is s1
    with pool.borrow(4) as s3:  # another key: a new set
        assert s3.a.shape == (4,)
    with pytest.raises(RuntimeError), pool.borrow(4):
        raise RuntimeError("kernel failed")
    with pool.borrow(4) as s4:  # the set of the failed block was not handed back
        assert s4 is not s3
    assert built == [3, 4, 4]


def test_run_workers_runs_each_worker_once_and_reraises():
    seen = []
    run_workers(lambda w, out: out.append(w), 3, seen)
    assert sorted(seen) == [0, 1, 2]
    run_workers(lambda w, out: out.append(w), 1, seen)  # one worker: inline
    assert seen[-1] == 0

    def fail(w):
        if w == 1:
            raise RuntimeError("worker 1 failed")

    with pytest.raises(RuntimeError, match="worker 1"):
        run_workers(fail, 2)


def test_kernel_arrays_are_read_only_and_made_once():
    idx = graph([(0, 1, 5, A), (1, 2, 6, A)])
    arrays = idx.kernel_arrays
    assert arrays is idx.kernel_arrays and len(arrays) == 10
    assert not any(a.flags.writeable for a in arrays)
    assert idx.dst.flags.writeable  # the index's own arrays are untouched
