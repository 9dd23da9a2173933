"""Flow-back engine vs. the brute-force reference, plus hand cases for each condition."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowgraph.engine.csr import build_index
from flowgraph.engine.flow_back import FlowBackParams, find_flow_back, find_flow_back_batch
from flowgraph.engine.flow_back_reference import find_flow_back_reference, greedy_returned
from flowgraph.engine.flow_back_tracing import trace_returned_amount

# ---------------------------------------------------------------------------- helpers


def make_index(edges, n=None):
    """edges: list of (src, dst, ts, amount); rows are list positions."""
    src = np.array([e[0] for e in edges], np.int32)
    dst = np.array([e[1] for e in edges], np.int32)
    ts = np.array([e[2] for e in edges], np.int64)
    amount = np.array([e[3] for e in edges], np.int64)
    if n is None:
        n = max([0, *(e[0] for e in edges), *(e[1] for e in edges)]) + 1
    return build_index(src, dst, ts, amount, np.array([f"A{i}" for i in range(n)]))


def reference(edges, d, t0, a, targets, params):
    return find_flow_back_reference(
        [e[0] for e in edges], [e[1] for e in edges], [e[2] for e in edges],
        [e[3] for e in edges], d, t0, a, targets,
        window_ms=params.window_ms, max_hops=params.max_hops, min_amount=params.min_amount,
        min_amount_ratio=params.min_amount_ratio, max_paths=params.max_paths,
    )  # fmt: skip


def as_tuple(res):
    return (
        [list(map(int, p)) for p in res.paths],
        bool(res.truncated),
        int(res.path_count),
        int(res.returned_amount),
        res.first_return_ts,
    )


P = FlowBackParams(window_ms=100, max_hops=5, min_amount_ratio=0.0)


def paths(edges, d, targets, t0=0, a=100, params=P):
    """Engine paths, after checking the engine equals the reference."""
    idx = make_index(edges, n=10)
    got = find_flow_back(idx, d, t0, a, np.array(targets), params)
    ref = reference(edges, d, t0, a, targets, params)
    assert as_tuple(got) == as_tuple(ref)
    return [list(map(int, p)) for p in got.paths]


# ---------------------------------------------------------------------------- properties

@st.composite
def scenario(draw):
    """A small random temporal multigraph and one disbursement on it.

    Biased so that most examples contain flow-back paths: parallel edges, equal
    timestamps, self loops, edges back to d, d in T or not, cutting thresholds.
    """
    n = draw(st.integers(2, 8))
    acc = st.sampled_from(range(n))
    d = draw(acc)
    targets = draw(st.lists(acc, min_size=1, max_size=4, unique=True))
    if draw(st.booleans()) and d not in targets:
        targets.append(d)  # self payment: d in T
    edges = draw(
        st.lists(
            st.tuples(
                st.one_of(st.just(d), acc),
                st.one_of(st.sampled_from(targets), acc),
                st.sampled_from(range(10)),
                st.sampled_from([1, 5, 9, 10, 29, 30, 49, 60, 100]),
            ),
            min_size=3,
            max_size=25,
        )
    )
    # plant a few chains d -> x1 -> ... -> T with increasing times (then shuffle rows)
    for _ in range(draw(st.sampled_from([0, 1, 2, 2, 3]))):
        hops = draw(st.lists(acc, min_size=0, max_size=4)) + [draw(st.sampled_from(targets))]
        times = sorted(draw(st.lists(st.sampled_from(range(10)), min_size=len(hops),
                                     max_size=len(hops), unique=True)))  # fmt: skip
        prev = d
        for v, t in zip(hops, times, strict=True):
            edges.append((prev, v, t, draw(st.sampled_from([10, 30, 60, 100]))))
            prev = v
    edges = draw(st.permutations(edges[:40]))
    params = FlowBackParams(
        window_ms=draw(st.one_of(st.just(20), st.integers(0, 10))),
        max_hops=draw(st.sampled_from([1, 2, 3, 4, 5, 5, 5])),
        min_amount=draw(st.sampled_from([0, 0, 0, 5, 30])),
        min_amount_ratio=draw(st.sampled_from([0.0, 0.0, 0.1, 0.25, 0.5])),
        max_paths=draw(st.one_of(st.just(100), st.integers(0, 6))),
    )
    t0 = draw(st.sampled_from([-1, -1, 0, 0, 1, 3]))
    a = draw(st.sampled_from([20, 100, 150, 400]))
    return n, edges, d, t0, a, targets, params


@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario())
def test_engine_equals_reference(sc):
    n, edges, d, t0, a, targets, params = sc
    idx = make_index(edges, n)
    got = find_flow_back(idx, d, t0, a, np.array(targets, np.int64), params)
    ref = reference(edges, d, t0, a, targets, params)
    assert as_tuple(got) == as_tuple(ref)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    scenario(),
    st.lists(
        st.tuples(st.integers(0, 7), st.integers(-1, 4), st.sampled_from([20, 100, 400]),
                  st.lists(st.integers(0, 7), max_size=4, unique=True)),
        min_size=1, max_size=6,
    ),  # fmt: skip
    st.sampled_from([None, 1, 2]),
    st.lists(st.sampled_from([-2, 0, 3, 6, 100]), max_size=7),
)
def test_batch_equals_reference(sc, extra, threads, horizons):
    """Batch == reference per disbursement; a horizon (data cut-off) shortens the window."""
    n, edges, d, t0, a, targets, params = sc
    disb = [(d, t0, a, targets)] + [
        (x % n, t, amt, [y % n for y in tg]) for x, t, amt, tg in extra
    ]
    idx = make_index(edges, n)
    tindptr = np.cumsum([0] + [len(x[3]) for x in disb])
    tids = np.array([y for x in disb for y in x[3]], np.int64)
    horizon = np.array([t + h for (_, t, _, _), h in zip(disb, horizons, strict=False)]
                       + [100] * max(0, len(disb) - len(horizons)))  # fmt: skip
    batch = find_flow_back_batch(
        idx, np.array([x[0] for x in disb]), np.array([x[1] for x in disb]),
        np.array([x[2] for x in disb]), tindptr, tids, params, threads=threads,
        chunk_elements=int(max(1, params.max_paths * params.max_hops * 2)),
        horizon=horizon,
    )  # fmt: skip
    assert len(batch) == len(disb)
    for i, (dd, tt, aa, tg) in enumerate(disb):
        window = min(params.window_ms, int(horizon[i]) - tt)
        ref = find_flow_back_reference(
            [e[0] for e in edges], [e[1] for e in edges], [e[2] for e in edges],
            [e[3] for e in edges], dd, tt, aa, tg, window_ms=window, max_hops=params.max_hops,
            min_amount=params.min_amount, min_amount_ratio=params.min_amount_ratio,
            max_paths=params.max_paths,
        )  # fmt: skip
        assert as_tuple(batch.result(i)) == as_tuple(ref), i
        assert batch.first_return_ts[i] == (-1 if ref.first_return_ts is None else ref.first_return_ts)


@settings(max_examples=150, deadline=None)
@given(scenario())
def test_maxflow_bounds(sc):
    n, edges, d, t0, a, targets, params = sc
    idx = make_index(edges, n)
    p = FlowBackParams(**{**params.__dict__, "tracing": "maxflow"})
    got = find_flow_back(idx, d, t0, a, np.array(targets, np.int64), p)
    assert 0 <= got.returned_amount <= a
    if got.path_count == 0:
        assert got.returned_amount == 0
    else:
        # one path at least carries min(a, its smallest amount) back ... unless a parallel
        # same-time chain blocks nothing: the best single path is a lower bound
        best = max(
            min([a] + [int(edges[r][3]) for r in path]) for path in got.paths
        ) if got.paths else 0
        assert got.returned_amount >= best


# ---------------------------------------------------------------------------- conditions
# accounts: 0 = d, 1..4 outside T unless listed, 9 = a T account


def test_c1_chain_must_connect():
    # 0->1, then 2->9 does not leave the account 1 entered; 1->9 does
    assert paths([(0, 1, 1, 50), (2, 9, 2, 50)], 0, [9]) == []
    assert paths([(0, 1, 1, 50), (1, 9, 2, 50)], 0, [9]) == [[0, 1]]


def test_c1_first_edge_leaves_d():
    assert paths([(1, 9, 2, 50)], 0, [9]) == []
    assert paths([(0, 9, 2, 50)], 0, [9]) == [[0]]


def test_c2_strictly_increasing_and_window():
    assert paths([(0, 1, 3, 50), (1, 9, 3, 50)], 0, [9]) == []  # equal ts do not chain
    assert paths([(0, 1, 3, 50), (1, 9, 2, 50)], 0, [9]) == []  # decreasing
    assert paths([(0, 1, 3, 50), (1, 9, 4, 50)], 0, [9]) == [[0, 1]]
    # a later edge from 1 keeps 1 open: the equal-ts edge must still not chain
    assert paths([(0, 1, 3, 50), (1, 9, 3, 50), (1, 9, 5, 50)], 0, [9]) == [[0, 2]]
    assert paths([(0, 9, 0, 50)], 0, [9]) == []  # at t0: not after the disbursement
    assert paths([(0, 9, 101, 50)], 0, [9]) == []  # after t0 + window
    assert paths([(0, 9, 100, 50)], 0, [9]) == [[0]]  # at t0 + window: inside


def test_c3_max_hops():
    edges = [(0, 1, 1, 50), (1, 2, 2, 50), (2, 9, 3, 50)]
    p2 = FlowBackParams(window_ms=100, max_hops=2, min_amount_ratio=0.0)
    p3 = FlowBackParams(window_ms=100, max_hops=3, min_amount_ratio=0.0)
    assert paths(edges, 0, [9], params=p2) == []
    assert paths(edges, 0, [9], params=p3) == [[0, 1, 2]]


def test_c4_amount_threshold():
    p = FlowBackParams(window_ms=100, min_amount=10, min_amount_ratio=0.25)
    # a = 101 -> threshold ceil(25.25) = 26
    assert paths([(0, 1, 1, 26), (1, 9, 2, 25)], 0, [9], a=101, params=p) == []
    assert paths([(0, 1, 1, 26), (1, 9, 2, 26)], 0, [9], a=101, params=p) == [[0, 1]]
    # min_amount wins when larger
    p2 = FlowBackParams(window_ms=100, min_amount=40, min_amount_ratio=0.25)
    assert paths([(0, 1, 1, 39), (1, 9, 2, 50)], 0, [9], a=101, params=p2) == []


def test_c5_no_repeat_except_final_d():
    # 0->1->2->1->9 repeats account 1
    loop = [(0, 1, 1, 50), (1, 2, 2, 50), (2, 1, 3, 50), (1, 9, 4, 50)]
    assert paths(loop, 0, [9]) == [[0, 3]]
    # back to d (d in T) is allowed as the last account
    assert paths([(0, 1, 1, 50), (1, 0, 2, 50)], 0, [0]) == [[0, 1]]
    # but d not in T: returning to d is not a return
    assert paths([(0, 1, 1, 50), (1, 0, 2, 50)], 0, [9]) == []
    # and d may not repeat in the middle
    assert paths([(0, 1, 1, 50), (1, 0, 2, 50), (0, 9, 3, 50)], 0, [9]) == [[2]]


def test_c6_last_account_in_t():
    assert paths([(0, 1, 1, 50), (1, 2, 2, 50)], 0, [9]) == []
    assert paths([(0, 1, 1, 50), (1, 2, 2, 50)], 0, [2]) == [[0, 1]]


def test_c7_must_leave_t():
    # d in T, 0 -> 5 (in T): never left the borrower side
    assert paths([(0, 5, 1, 50)], 0, [0, 5]) == []
    assert paths([(0, 1, 1, 50), (1, 5, 2, 50)], 0, [0, 5]) == [[0, 1]]
    # entrusted payment: d not in T, a direct transfer to T is a return
    assert paths([(0, 5, 1, 50)], 0, [5]) == [[0]]


def test_c8_stops_at_first_t_account():
    # 0 -> 1 -> 9 -> 8 with 8, 9 in T: the path ends at 9, 0-1-9-8 is not a path
    edges = [(0, 1, 1, 50), (1, 9, 2, 50), (9, 8, 3, 50)]
    assert paths(edges, 0, [8, 9]) == [[0, 1]]
    # a leading run inside T is fine: 0 (T) -> 5 (T) -> 1 -> 9
    lead = [(0, 5, 1, 50), (5, 1, 2, 50), (1, 9, 3, 50)]
    assert paths(lead, 0, [0, 5, 9]) == [[0, 1, 2]]
    # but T again in the middle is not: 0 (T) -> 1 -> 5 (T) -> 2 -> 9
    mid = [(0, 1, 1, 50), (1, 5, 2, 50), (5, 2, 3, 50), (2, 9, 4, 50)]
    assert paths(mid, 0, [0, 5, 9]) == [[0, 1]]


@pytest.mark.parametrize(
    "prefix",
    [[(0, 3, 1, 50)], [(0, 3, 1, 50), (3, 4, 2, 50)]],
    ids=["depth2-of-4", "depth3-of-5"],
)
def test_closing_time_improves_with_more_hops(prefix):
    # account 1 reaches T directly only early (ts 2), but later through 2 (ts 5 -> 6):
    # the pruning must keep 1 open for the two-hop continuation
    last = prefix[-1][1]
    edges = prefix + [(last, 1, 3, 50), (1, 9, 2, 50), (1, 2, 5, 50), (2, 9, 6, 50)]
    hops = len(prefix) + 3
    p = FlowBackParams(window_ms=100, max_hops=hops, min_amount_ratio=0.0)
    n = len(prefix)
    assert paths(edges, 0, [9], params=p) == [list(range(n + 1)) + [n + 2, n + 3]]


def test_order_cap_and_truncation():
    edges = [(0, 1, 1, 50), (1, 9, 5, 50), (0, 9, 5, 50), (0, 2, 2, 50), (2, 9, 3, 50)]
    assert paths(edges, 0, [9]) == [[3, 4], [2], [0, 1]]
    idx = make_index(edges, n=10)
    p = FlowBackParams(window_ms=100, min_amount_ratio=0.0, max_paths=2)
    r = find_flow_back(idx, 0, 0, 100, np.array([9]), p)
    assert [p.tolist() for p in r.paths] == [[3, 4], [2]]
    assert r.truncated and r.path_count == 3 and r.first_return_ts == 3
    # the returned amount is traced over all paths, not only the kept ones
    assert r.returned_amount == 100


def test_budget_truncates():
    edges = [(0, 1, 1, 50), (1, 9, 2, 50), (0, 2, 3, 50), (2, 9, 4, 50)]
    idx = make_index(edges, n=10)
    p = FlowBackParams(window_ms=100, min_amount_ratio=0.0, max_enumerated=1)
    r = find_flow_back(idx, 0, 0, 100, np.array([9]), p)
    assert r.truncated and r.path_count == 0


def test_no_path_result():
    idx = make_index([(0, 1, 1, 50)])
    r = find_flow_back(idx, 0, 0, 100, np.array([1]), FlowBackParams(min_amount_ratio=0.9))
    assert as_tuple(r) == ([], False, 0, 0, None)


# ---------------------------------------------------------------------------- tracing


def _trace(edges, d, a, targets, method="greedy", t0=0):
    arr = np.array(edges, np.int64)
    return trace_returned_amount(
        arr[:, 0], arr[:, 1], arr[:, 2], arr[:, 3], np.arange(len(edges)), d, t0, a,
        np.array(targets), method=method,
    )  # fmt: skip


def test_greedy_split_and_merge():
    # 100 splits 60/40 through 1 and 2, merges at 3, returns 90 to 9 (T)
    e = [(0, 1, 1, 60), (0, 2, 2, 40), (1, 3, 3, 60), (2, 3, 4, 40), (3, 9, 5, 90)]
    assert _trace(e, 0, 100, [9]) == 90
    assert greedy_returned(range(5), *zip(*e, strict=True), 0, 100, [9]) == 90
    assert _trace(e, 0, 100, [9], "maxflow") == 90


def test_greedy_partial_return_and_order():
    # 1 receives 100 but forwards 30 before it received anything: moves 0
    e = [(1, 9, 1, 30), (0, 1, 2, 100), (1, 9, 3, 70)]
    assert _trace(e, 0, 100, [9]) == 70
    assert _trace(e, 0, 100, [9], "maxflow") == 70
    # balance caps: a = 50 but 80 is forwarded
    assert _trace([(0, 1, 1, 80), (1, 9, 2, 80)], 0, 50, [9]) == 50


def test_greedy_leading_run_inside_t():
    # 0 (T) -> 5 (T) keeps circulating (not returned), 5 -> 1 leaves, 1 -> 0 returns
    e = [(0, 5, 1, 100), (5, 1, 2, 80), (1, 0, 3, 80)]
    assert _trace(e, 0, 100, [0, 5]) == 80
    assert _trace(e, 0, 100, [0, 5], "maxflow") == 80


def test_greedy_same_ts_uses_row_order_maxflow_is_strict():
    # arrival and departure at the same ts: greedy walks (ts, row) order and moves it,
    # maxflow only uses money that arrived strictly before
    e = [(0, 1, 1, 100), (1, 2, 2, 100), (2, 9, 2, 100)]
    assert _trace(e, 0, 100, [9]) == 100
    assert _trace(e, 0, 100, [9], "maxflow") == 0


def test_maxflow_beats_greedy_and_bounds():
    # greedy sends 1's money the wrong way first (to 2, a dead end); maxflow routes it
    e = [(0, 1, 1, 100), (1, 2, 2, 100), (1, 9, 3, 100)]
    assert _trace(e, 0, 100, [9]) == 0
    assert _trace(e, 0, 100, [9], "maxflow") == 100
    assert _trace([(0, 9, 1, 500)], 0, 100, [9], "maxflow") == 100


def test_find_flow_back_maxflow_param():
    edges = [(0, 1, 1, 60), (1, 9, 2, 60), (0, 2, 1, 40), (2, 9, 3, 40)]
    idx = make_index(edges, n=10)
    p = FlowBackParams(window_ms=10, min_amount_ratio=0.0, tracing="maxflow")
    assert find_flow_back(idx, 0, 0, 100, np.array([9]), p).returned_amount == 100
    b = find_flow_back_batch(idx, [0], [0], [100], [0, 1], [9], p)
    assert b.returned_amount.tolist() == [100]


def test_params_validation():
    with pytest.raises(ValueError):
        FlowBackParams(tracing="magic")
    with pytest.raises(ValueError):
        FlowBackParams(max_hops=0)
    with pytest.raises(ValueError):
        find_flow_back(make_index([(0, 1, 1, 1)]), 5, 0, 1, np.array([1]), P)
