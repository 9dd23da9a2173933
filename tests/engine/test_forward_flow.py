"""Forward-flow kernel vs. the brute-force reference, plus hand cases for the subtle ones."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowgraph.core.errors import InvalidValue
from flowgraph.engine.csr import build_index
from flowgraph.engine.forward_flow import (
    ForwardFlowParams,
    find_forward_flow,
    find_forward_flow_many,
)
from flowgraph.engine.forward_flow_reference import find_forward_flow_reference


def make_index(edges, n):
    return build_index(
        np.array([e[0] for e in edges], np.int32), np.array([e[1] for e in edges], np.int32),
        np.array([e[2] for e in edges], np.int64), np.array([e[3] for e in edges], np.int64),
        np.array([f"A{i}" for i in range(n)]),
    )


def engine(edges, d, t0, a, params, n=None):
    n = n or max([d, *(e[0] for e in edges), *(e[1] for e in edges)]) + 1
    res = find_forward_flow(make_index(edges, n), d, t0, a, params)
    rows = res.rows.tolist()
    assert len(set(rows)) == len(rows), "a transaction emitted twice"
    assert res.truncated == (len(rows) == params.max_edges and params.max_edges < len(edges))
    return dict(zip(res.rows.tolist(), res.hops.tolist(), strict=True)), res


def reference(edges, d, t0, a, params):
    return find_forward_flow_reference(
        [e[0] for e in edges], [e[1] for e in edges], [e[2] for e in edges], [e[3] for e in edges],
        d, t0, a, window_ms=params.window_ms, max_hops=params.max_hops,
        min_amount=params.min_amount, min_amount_ratio=params.min_amount_ratio,
    )


P = ForwardFlowParams(window_ms=100, max_hops=5, min_amount_ratio=0.0)


def test_chain_and_return_to_d():
    # d=0 → 1 → 2 → 0 (back to d) → 1 again: accounts may repeat
    edges = [(0, 1, 10, 50), (1, 2, 20, 50), (2, 0, 30, 50), (0, 1, 40, 50)]
    got, _ = engine(edges, 0, 0, 100, P)
    assert got == {0: 1, 1: 2, 2: 3, 3: 1} == reference(edges, 0, 0, 100, P)


def test_later_arrival_with_fewer_hops_is_the_only_way_to_an_edge():
    # 1 is reached at t=10 with 2 hops (0→2→1) and at t=30 with 1 hop (0→1 at 30).
    # 1→3 at t=40 is reached with 2 hops (through the later, 1-hop arrival) even though the
    # earliest arrival at 1 has 2 hops; 1→4 at t=20 only through the 2-hop arrival (hop 3).
    edges = [(0, 2, 5, 50), (2, 1, 10, 50), (0, 1, 30, 50), (1, 3, 40, 50), (1, 4, 20, 50)]
    got, _ = engine(edges, 0, 0, 100, P)
    assert got == {0: 1, 1: 2, 2: 1, 3: 2, 4: 3} == reference(edges, 0, 0, 100, P)


def test_window_floor_strict_times_and_hop_limit():
    edges = [
        (0, 1, 0, 50),     # at t0: not after it
        (0, 1, 10, 5),     # below the floor
        (0, 1, 10, 50),
        (1, 2, 10, 50),    # same ts as the hop before: no chain
        (1, 2, 11, 50),
        (2, 3, 12, 50),    # hop 3: beyond max_hops=2
        (0, 4, 101, 50),   # after the window
    ]
    p = ForwardFlowParams(window_ms=100, max_hops=2, min_amount=0, min_amount_ratio=0.1)
    got, _ = engine(edges, 0, 0, 100, p)
    assert got == {2: 1, 4: 2} == reference(edges, 0, 0, 100, p)


def test_truncation_keeps_fewest_hops():
    edges = [(0, 1, 10, 50), (1, 2, 20, 50), (0, 3, 30, 50)]
    got, res = engine(edges, 0, 0, 100, ForwardFlowParams(window_ms=100, min_amount_ratio=0, max_edges=2))
    assert res.truncated and got == {0: 1, 2: 1}
    _, res = engine(edges, 0, 0, 100, ForwardFlowParams(window_ms=100, min_amount_ratio=0, max_edges=3))
    assert not res.truncated


def test_scratch_is_reused_cleanly_and_bad_account_refused():
    edges = [(0, 1, 10, 50), (1, 0, 20, 50), (1, 2, 30, 50)]
    idx = make_index(edges, 3)
    a, b = find_forward_flow_many(idx, [0, 1], [0, 0], [100, 100], P)
    assert dict(zip(a.rows.tolist(), a.hops.tolist(), strict=False)) == reference(edges, 0, 0, 100, P)
    assert dict(zip(b.rows.tolist(), b.hops.tolist(), strict=False)) == reference(edges, 1, 0, 100, P)
    with pytest.raises(InvalidValue):
        find_forward_flow(idx, 7, 0, 100, P)
    with pytest.raises(InvalidValue):
        ForwardFlowParams(max_hops=0)


def test_rows_are_time_ordered():
    edges = [(0, 1, 30, 50), (0, 2, 10, 50), (2, 1, 20, 50), (1, 3, 40, 50)]
    _, res = engine(edges, 0, 0, 100, P)
    ts = [edges[r][2] for r in res.rows.tolist()]
    assert ts == sorted(ts)


# ------------------------------------------------------------------ property test
@st.composite
def temporal_multigraphs(draw):
    n = draw(st.integers(1, 6))
    m = draw(st.integers(0, 18))
    edge = st.tuples(st.integers(0, n - 1), st.integers(0, n - 1),
                     st.integers(0, 14), st.sampled_from([1, 5, 10, 20, 50]))  # fmt: skip
    edges = draw(st.lists(edge, min_size=m, max_size=m))  # self-loops, parallel edges, cycles
    d = draw(st.integers(0, n - 1))
    t0 = draw(st.integers(0, 4))
    a = draw(st.sampled_from([10, 100, 200]))
    params = ForwardFlowParams(
        window_ms=draw(st.integers(0, 14)), max_hops=draw(st.integers(1, 5)),
        min_amount=draw(st.sampled_from([0, 0, 5, 20])),
        min_amount_ratio=draw(st.sampled_from([0.0, 0.05, 0.1, 0.3])),
    )
    return n, edges, d, t0, a, params


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(temporal_multigraphs())
def test_engine_equals_reference(case):
    n, edges, d, t0, a, params = case
    got, res = engine(edges, d, t0, a, params, n=n)
    assert got == reference(edges, d, t0, a, params)
    assert not res.truncated
