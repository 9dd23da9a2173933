"""Transfer-cycle finder: contest answers, brute-force agreement, edge cases."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowgraph.engine.cycles import (
    EdgeList,
    cycles_to_text,
    find_cycles,
    find_cycles_capped,
    find_cycles_in_edge_list,
    read_edge_list,
)
from flowgraph.engine.cycles_reference import simple_cycles_reference

DATA = Path(__file__).resolve().parents[3] / "shared" / "codecraft2020"
if not DATA.is_dir():  # the work tree may live elsewhere than beside shared/
    DATA = Path("/work/shared/codecraft2020")
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason="CodeCraft 2020 data not present")


# --------------------------------------------------------------------------- contest answers


@needs_data
@pytest.mark.parametrize(
    ("name", "kw"),
    [("FirstRound_std", {}), ("SecondRound_std", {"amount_ratio": (0.2, 3)})],
)
def test_codecraft_answers_byte_for_byte(name, kw):
    edges = read_edge_list(DATA / name / "test_data.txt")
    src, dst, labels = edges.to_dense()
    got = cycles_to_text(find_cycles(src, dst, edges.amount, **kw), labels)
    assert got == (DATA / name / "result.txt").read_text()


@needs_data
@pytest.mark.parametrize("name", ["FirstRound_3738", "FirstRound_38252", "FirstRound_58284"])
def test_codecraft_counts_match_dataset_names(name):
    edges = read_edge_list(DATA / name / "test_data.txt")
    assert len(find_cycles_in_edge_list(edges)) == int(name.split("_")[1])


@needs_data
def test_second_round_matches_reference():
    edges = read_edge_list(DATA / "SecondRound_std" / "test_data.txt")
    src, dst, _ = edges.to_dense()
    kw = {"amount_ratio": (0.2, 3)}
    assert find_cycles(src, dst, edges.amount, **kw) == simple_cycles_reference(
        src, dst, edges.amount, **kw
    )


# --------------------------------------------------------------------------- brute force


@st.composite
def multigraphs(draw):
    n = draw(st.integers(1, 10))
    m = draw(st.integers(0, 30))
    node = st.integers(0, n - 1)
    src = draw(st.lists(node, min_size=m, max_size=m))
    dst = draw(st.lists(node, min_size=m, max_size=m))
    amount = draw(st.lists(st.integers(0, 40), min_size=m, max_size=m))
    ts = draw(st.lists(st.integers(0, 12), min_size=m, max_size=m))
    min_hops = draw(st.integers(2, 6))
    max_hops = draw(st.integers(min_hops, 8))
    kw = {"min_hops": min_hops, "max_hops": max_hops}
    if draw(st.booleans()):
        lo = draw(st.sampled_from([0, 0.2, 0.5, 0.9, 1, 1.25]))
        hi = draw(st.sampled_from([1, 1.5, 2, 3, 10]))
        kw["amount_ratio"] = (min(lo, hi), max(lo, hi))
    if draw(st.booleans()):
        kw["temporal"] = True
        kw["window_ms"] = draw(st.one_of(st.none(), st.integers(0, 12)))
    return src, dst, amount, ts, kw


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(multigraphs(), st.sampled_from([1, 2]))
def test_matches_networkx_reference(case, n_threads):
    src, dst, amount, ts, kw = case
    want = simple_cycles_reference(src, dst, amount, ts, **kw)
    assert find_cycles(src, dst, amount, ts, n_threads=n_threads, **kw) == want


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(multigraphs(), st.integers(0, 12), st.sampled_from([1, 2]))
def test_capped_is_the_exact_prefix(case, limit, n_threads):
    """``--limit``: the first ``limit`` cycles of the full answer, ``truncated`` exactly
    when more exist, on any number of threads."""
    src, dst, amount, ts, kw = case
    want = simple_cycles_reference(src, dst, amount, ts, **kw)
    got, truncated = find_cycles_capped(src, dst, amount, ts, limit=limit, n_threads=n_threads, **kw)
    assert got == want[:limit] and truncated == (len(want) > limit)


def test_capped_stops_early_on_a_dense_graph():
    """A complete digraph on 40 vertices has ~10^10 cycles of 3..7 hops: the cap answers
    from the first batches of 3-cycles."""
    n = 40
    src, dst = zip(*[(u, v) for u in range(n) for v in range(n) if u != v], strict=True)
    got, truncated = find_cycles_capped(np.array(src), np.array(dst), limit=1000)
    assert truncated and len(got) == 1000 and got[0] == (0, 1, 2) and all(len(c) == 3 for c in got)
    assert got == sorted(got)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32), st.integers(20, 60))
def test_denser_graphs_match_reference(seed, n):
    rng = np.random.default_rng(seed)
    m = 3 * n
    src = rng.integers(0, n, m)
    dst = rng.integers(0, n, m)
    amount = rng.integers(1, 100, m)
    kw = {"min_hops": 3, "max_hops": 6, "amount_ratio": (0.2, 3)}
    assert find_cycles(src, dst, amount, **kw) == simple_cycles_reference(src, dst, amount, **kw)
    assert find_cycles(src, dst, max_hops=6) == simple_cycles_reference(src, dst, max_hops=6)


# --------------------------------------------------------------------------- semantics


def test_ratio_is_exact_at_the_boundary():
    src, dst = [0, 1, 2], [1, 2, 0]
    # 5 -> 1 sits on the lower bound (0.2 * 5 == 1), 1 -> 3 on the upper one
    assert find_cycles(src, dst, [5, 1, 3], amount_ratio=(0.2, 3)) == [(0, 1, 2)]
    assert find_cycles(src, dst, [5, 1, 3], amount_ratio=(0.2, 2.99)) == []
    assert find_cycles(src, dst, [500, 99, 297], amount_ratio=(0.2, 3)) == []
    # in floating point 0.14 * 50 == 7.000000000000001 > 7; exactly it is 7
    assert 0.14 * 50 > 7
    assert find_cycles(src, dst, [50, 7, 20], amount_ratio=(0.14, 10)) == [(0, 1, 2)]
    assert simple_cycles_reference(src, dst, [50, 7, 20], amount_ratio=(0.14, 10)) == [(0, 1, 2)]


def test_closing_pair_counts_for_ratio():
    # 10 -> 10 -> 10 fine, but with a 100 closing into 10: 10/100 < 0.2
    assert find_cycles([0, 1, 2], [1, 2, 0], [10, 10, 100], amount_ratio=(0.2, 3)) == []
    assert find_cycles([0, 1, 2], [1, 2, 0], [10, 10, 25], amount_ratio=(0.2, 3)) == [(0, 1, 2)]


def test_parallel_edges_any_choice_reported_once():
    src = [0, 0, 1, 1, 2]
    dst = [1, 1, 2, 2, 0]
    amount = [1, 20, 1000, 25, 30]
    assert find_cycles(src, dst, amount, amount_ratio=(0.5, 2)) == [(0, 1, 2)]
    assert find_cycles(src, dst) == [(0, 1, 2)]


def test_temporal_rotation_and_window():
    src, dst = [0, 1, 2], [1, 2, 0]
    # starts at the edge 1->2 (ts 1), then 2->0 (ts 2), then 0->1 (ts 3)
    assert find_cycles(src, dst, ts=[3, 1, 2], temporal=True) == [(0, 1, 2)]
    assert find_cycles(src, dst, ts=[3, 1, 2], temporal=True, window_ms=2) == [(0, 1, 2)]
    assert find_cycles(src, dst, ts=[3, 1, 2], temporal=True, window_ms=1) == []
    # ties are not increasing
    assert find_cycles(src, dst, ts=[1, 1, 2], temporal=True) == []
    # two descents: not time-respecting in any rotation
    assert find_cycles(src, dst, ts=[2, 1, 0], temporal=True) == []


def test_self_loops_and_two_cycles():
    src, dst = [0, 0, 1], [0, 1, 0]
    assert find_cycles(src, dst) == []
    assert find_cycles(src, dst, min_hops=2) == [(0, 1)]


def test_empty_and_bad_arguments():
    assert find_cycles([], []) == []
    with pytest.raises(ValueError):
        find_cycles([0], [1], min_hops=1)
    with pytest.raises(ValueError):
        find_cycles([0], [1], min_hops=4, max_hops=3)
    with pytest.raises(ValueError):
        find_cycles([0], [1], amount_ratio=(0.2, 3))
    with pytest.raises(ValueError):
        find_cycles([0], [1], temporal=True)
    with pytest.raises(ValueError):
        find_cycles([0], [1], ts=[1], window_ms=5)
    with pytest.raises(ValueError):
        find_cycles([0], [1], [1], amount_ratio=(3, 0.2))


def test_long_cycles_beyond_pruning_depth():
    n = 12
    src = list(range(n))
    dst = [(i + 1) % n for i in range(n)]
    assert find_cycles(src, dst, max_hops=12) == [tuple(range(n))]
    assert find_cycles(src, dst, max_hops=11) == []


# --------------------------------------------------------------------------- text and labels


def test_read_edge_list_decimals_and_ts(tmp_path):
    p = tmp_path / "e.txt"
    p.write_text("a,b,1.5,2024-01-01T00:00:00Z\nb,c,2.125,1704067200001\nc,a,3,2024-01-01\n")
    e = read_edge_list(p)
    assert e.amount_scale == 1000
    assert e.amount.tolist() == [1500, 2125, 3000]
    assert e.ts.tolist() == [1704067200000, 1704067200001, 1704067200000]
    assert find_cycles_in_edge_list(e) == [("a", "b", "c")]


def test_read_edge_list_rejects_garbage(tmp_path):
    p = tmp_path / "e.txt"
    p.write_text("1,2,10\n2,1,1e5\n")
    with pytest.raises(ValueError, match=":2:"):
        read_edge_list(p)


def test_labels_sorted_numerically_when_all_integers():
    e = EdgeList(
        np.array(["10", "9", "100"], dtype=object),
        np.array(["9", "100", "10"], dtype=object),
        np.array([1, 1, 1]),
    )
    assert e.labels() == ["9", "10", "100"]
    assert find_cycles_in_edge_list(e) == [("9", "100", "10")]
    src, dst, labels = e.to_dense()
    assert cycles_to_text(find_cycles(src, dst), labels) == "1\n9,100,10\n"



def test_cli_json_limit_and_truncated(tmp_path):
    """``cycles --json``: one object per cycle, then the summary; ``--limit`` caps the list
    shortest first and says whether more exist; the text layout counts what it lists."""
    import json

    from typer.testing import CliRunner

    from flowgraph.cli import app

    n = 12
    edges = tmp_path / "edges.txt"
    edges.write_text("".join(f"{u},{v},1\n" for u in range(n) for v in range(n) if u != v))
    runner = CliRunner()
    r = runner.invoke(app, ["cycles", "--edges", str(edges), "--limit", "5", "--json"])
    assert r.exit_code == 0, r.output
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    assert lines[-1] == {"count": 5, "truncated": True, "limit": 5}
    assert [x["accounts"] for x in lines[:-1]] == [["0", "1", "2"], ["0", "1", "3"], ["0", "1", "4"], ["0", "1", "5"], ["0", "1", "6"]]
    assert all(x["length"] == 3 for x in lines[:-1])
    r = runner.invoke(app, ["cycles", "--edges", str(edges), "--limit", "5"])
    assert r.exit_code == 0 and r.stdout.splitlines()[0] == "5" and len(r.stdout.splitlines()) == 6
    assert "more exist" in r.stderr
    r = runner.invoke(app, ["cycles", "--edges", str(edges), "--max-hops", "3", "--limit", "0", "--json"])
    assert json.loads(r.stdout.splitlines()[-1]) == {"count": n * (n - 1) * (n - 2) // 3, "truncated": False, "limit": None}
