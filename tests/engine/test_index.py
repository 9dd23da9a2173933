"""Temporal CSR index: ordering, reverse consistency, persistence."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flowgraph.engine.csr import TemporalIndex, build_index, load_index, save_index


def random_edges(rng, n, m, tmax):
    return (
        rng.integers(0, n, m).astype(np.int32),
        rng.integers(0, n, m).astype(np.int32),
        rng.integers(0, tmax, m).astype(np.int64),
        rng.integers(1, 1000, m).astype(np.int64),
    )


def check_index(idx: TemporalIndex, src, dst, ts, amount):
    n, m = idx.n_accounts, idx.n_edges
    assert m == len(src) and idx.indptr[0] == 0 and idx.indptr[-1] == m
    # forward: every row exactly once, columns consistent, sorted by (src, ts, row)
    assert sorted(idx.row.tolist()) == list(range(m))
    fsrc = idx.edge_src()
    assert np.array_equal(fsrc, src[idx.row])
    assert np.array_equal(idx.dst, dst[idx.row])
    assert np.array_equal(idx.ts, ts[idx.row])
    assert np.array_equal(idx.amount, amount[idx.row])
    key = list(zip(fsrc.tolist(), idx.ts.tolist(), idx.row.tolist(), strict=True))
    assert key == sorted(key)
    # reverse: the same edge set sorted by (dst, ts, row)
    assert sorted(idx.rrow.tolist()) == list(range(m))
    rdst = np.repeat(np.arange(n), np.diff(idx.rindptr))
    assert np.array_equal(rdst, dst[idx.rrow])
    assert np.array_equal(idx.rsrc, src[idx.rrow])
    assert np.array_equal(idx.rts, ts[idx.rrow])
    assert np.array_equal(idx.ramount, amount[idx.rrow])
    rkey = list(zip(rdst.tolist(), idx.rts.tolist(), idx.rrow.tolist(), strict=True))
    assert rkey == sorted(rkey)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 30), st.integers(0, 300), st.integers(1, 50), st.integers(0, 2**32))
def test_csr_sorted_and_reverse_consistent(n, m, tmax, seed):
    rng = np.random.default_rng(seed)
    src, dst, ts, amount = random_edges(rng, n, m, tmax)
    idx = build_index(src, dst, ts, amount, np.array([f"acc{i}" for i in range(n)]))
    check_index(idx, src, dst, ts, amount)
    assert idx.dst.dtype == np.int32 and idx.indptr.dtype == np.int64
    assert idx.rsrc.dtype == np.int32 and idx.row.dtype == np.int64


def test_large_segments_and_ties():
    # a hub account with many unsorted edges exercises the merge-sort branch; ties keep row order
    rng = np.random.default_rng(1)
    m = 5000
    src = np.zeros(m, np.int32)
    dst = rng.integers(0, 3, m).astype(np.int32)
    ts = rng.integers(0, 20, m).astype(np.int64)
    amount = np.arange(m, dtype=np.int64)
    idx = build_index(src, dst, ts, amount, np.array(["h", "x", "y"]))
    check_index(idx, src, dst, ts, amount)


def test_save_load_round_trip(tmp_path):
    rng = np.random.default_rng(7)
    src, dst, ts, amount = random_edges(rng, 50, 2000, 10**9)
    ids = np.array([f"ACCOUNT-{i:05d}" for i in range(50)], dtype=object)
    idx = build_index(src, dst, ts, amount, ids)
    save_index(idx, tmp_path / "idx", {"snapshot": "abc"})
    back, meta = load_index(tmp_path / "idx")
    assert meta["snapshot"] == "abc" and meta["n_edges"] == 2000 and meta["n_accounts"] == 50
    for name in ("indptr", "dst", "ts", "amount", "row", "rindptr", "rsrc", "rts", "ramount", "rrow"):
        a, b = getattr(idx, name), getattr(back, name)
        assert np.array_equal(a, b) and a.dtype == b.dtype, name
        assert isinstance(b, np.memmap), name  # memory-mapped, not read into memory
    assert back.account_ids.tolist() == ids.tolist()
    assert isinstance(back.account_ids, np.memmap)


def test_save_replaces_atomically(tmp_path, monkeypatch):
    small = build_index(np.array([0], np.int32), np.array([1], np.int32), np.array([1]),
                        np.array([5]), np.array(["a", "b"]))  # fmt: skip
    save_index(small, tmp_path / "idx", {"v": 1})
    bigger = build_index(np.array([0, 1], np.int32), np.array([1, 0], np.int32),
                         np.array([1, 2]), np.array([5, 6]), np.array(["a", "b"]))  # fmt: skip
    save_index(bigger, tmp_path / "idx", {"v": 2})
    back, meta = load_index(tmp_path / "idx")
    assert meta["v"] == 2 and back.n_edges == 2
    # a crash while writing leaves the previous index in place and no temp dirs behind
    import flowgraph.engine.csr as mod

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(mod.np, "save", boom)
    try:
        save_index(small, tmp_path / "idx", {"v": 3})
    except OSError:
        pass
    monkeypatch.undo()
    back, meta = load_index(tmp_path / "idx")
    assert meta["v"] == 2 and back.n_edges == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["idx"]


def test_empty_and_isolated_accounts():
    idx = build_index(np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0), np.zeros(0),
                      np.array(["a", "b", "c"]))  # fmt: skip
    assert idx.n_accounts == 3 and idx.n_edges == 0 and idx.indptr.tolist() == [0, 0, 0, 0]


@pytest.mark.parametrize("time_ordered", [False, True])
def test_parallel_build_equals_lexsort(time_ordered):
    # above PARALLEL_MIN_EDGES, so the chunked parallel counting sort runs (when numba has
    # more than one thread); many ties in ts check that row order breaks them
    rng = np.random.default_rng(3)
    n, m = 1000, 250_000
    src, dst, ts, amount = random_edges(rng, n, m, 5_000)
    if time_ordered:
        ts = np.sort(ts)
    idx = build_index(src, dst, ts, amount, np.array([f"a{i:04d}" for i in range(n)]))
    rows = np.arange(m)
    assert np.array_equal(idx.row, np.lexsort((rows, ts, src)))
    assert np.array_equal(idx.rrow, np.lexsort((rows, ts, dst)))
    assert np.array_equal(idx.indptr, np.concatenate([[0], np.cumsum(np.bincount(src, minlength=n))]))
    assert np.array_equal(idx.rindptr, np.concatenate([[0], np.cumsum(np.bincount(dst, minlength=n))]))
    assert np.array_equal(idx.dst, dst[idx.row]) and np.array_equal(idx.rsrc, src[idx.rrow])
    assert np.array_equal(idx.ts, ts[idx.row]) and np.array_equal(idx.ramount, amount[idx.rrow])


@pytest.mark.parametrize("accounts_cover", ["all", "some", "none"])
def test_store_index_ids_follow_theaccount_universe(tmp_path, accounts_cover):
    """Dense ids are positions in the sorted universe whether or not the accounts table
    names every transaction endpoint (the fast path and its fallback give one answer)."""
    import polars as pl

    from flowgraph.graph.store_index import account_universe, build_store_index
    from flowgraph.ingest.load import ingest_frames
    from flowgraph.store.embedded import Store

    rng = np.random.default_rng(5)
    names = [f"A{i:03d}" for i in rng.permutation(60)]
    n = 400
    src = [names[i] for i in rng.integers(0, 60, n)]
    dst = [names[i] for i in rng.integers(0, 60, n)]
    tx = pl.DataFrame({"tx_id": [f"t{i:04d}" for i in range(n)], "ts": [str(1_000 + int(x)) for x in rng.integers(0, 10**6, n)],
                       "src_account": src, "dst_account": dst, "amount": [f"{int(x)}.00" for x in rng.integers(1, 10**4, n)]})
    listed = {"all": names + ["Z_only_in_accounts"], "some": names[:30], "none": []}[accounts_cover]
    sources = [("tx.csv", "transactions", tx.lazy())]
    if listed:
        sources.append(("acc.csv", "accounts", pl.DataFrame({"account_id": listed, "owner_id": ["p"] * len(listed)}).lazy()))
    store = Store.init(tmp_path / "s")
    ingest_frames(store, sources)
    index, _ = build_store_index(store)
    universe = account_universe(store).to_list()
    assert index.account_ids.tolist() == universe
    stored = store.read("transactions")
    rows = np.asarray(index.row)
    ids = index.account_ids
    assert ids[index.edge_src()].tolist() == stored["src_account"].to_numpy()[rows].tolist()
    assert ids[np.asarray(index.dst)].tolist() == stored["dst_account"].to_numpy()[rows].tolist()
