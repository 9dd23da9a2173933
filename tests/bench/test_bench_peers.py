"""The benchmark peers (networkx, DuckDB recursive SQL) answer exactly what the engine does."""

from __future__ import annotations

import pytest

from benchmarks.peers import (
    canonical,
    duckdb_connect,
    duckdb_flow_back,
    edges_of,
    greedy_returned,
    nx_flow_back,
)
from flowgraph.core.values import DAY_MS
from flowgraph.engine.flow_back import FlowBackParams, find_flow_back_batch
from flowgraph.ingest.load import ingest_paths
from flowgraph.investigate.trace import search_inputs
from flowgraph.store.embedded import Store
from flowgraph.synthetic.generate import generate


@pytest.fixture(scope="module")
def bank(tmp_path_factory):
    root = tmp_path_factory.mktemp("peers")
    generate(root / "bank", "tiny", 3)
    store = Store.init(root / "store")
    ingest_paths(store, [root / "bank"])
    index, inp = search_inputs(store)
    tx = store.read("transactions", ["tx_id", "src_account", "dst_account", "ts", "amount"])
    return store, index, inp, tx


def _engine(bank, params):
    store, index, inp, tx = bank
    b = find_flow_back_batch(index, inp.accounts, inp.t0s, inp.amounts, inp.target_indptr, inp.target_ids, params)
    ids = tx["tx_id"].to_numpy()
    paths = [canonical([ids[p].tolist() for p in b.result(i).paths]) for i in range(len(b))]
    return b, paths


@pytest.mark.parametrize("hops,days", [(5, 30), (4, 7)])
def test_networkx_peer_equals_engine(bank, hops, days):
    store, index, inp, tx = bank
    disb, linked_of = inp.disb, inp.linked_of
    params = FlowBackParams(window_ms=days * DAY_MS, max_hops=hops, max_paths=100_000)
    b, want = _engine(bank, params)
    assert (b.path_count > 0).sum() >= (5 if days >= 30 else 1)  # flow-back cases to compare
    for i, row in enumerate(disb.iter_rows(named=True)):
        r = nx_flow_back(tx, row["account_id"], row["ts"], row["amount"], set(linked_of[i]),
                         window_ms=params.window_ms, max_hops=hops,
                         threshold=params.threshold(row["amount"]))  # fmt: skip
        assert canonical(r["paths"]) == want[i], row["disbursement_id"]
        assert r["returned"] == b.returned_amount[i], row["disbursement_id"]


@pytest.mark.parametrize("hops,days,prefilter", [(5, 30, False), (3, 90, True)])
def test_duckdb_peer_equals_engine(bank, hops, days, prefilter):
    pytest.importorskip("duckdb")
    store, index, inp, tx = bank
    disb, linked_of = inp.disb, inp.linked_of
    params = FlowBackParams(window_ms=days * DAY_MS, max_hops=hops, max_paths=100_000)
    b, want = _engine(bank, params)
    rows = [
        {"disb_id": r["disbursement_id"], "d": r["account_id"], "t0": r["ts"], "a": r["amount"],
         "threshold": params.threshold(r["amount"]), "targets": sorted(linked_of[i])}
        for i, r in enumerate(disb.iter_rows(named=True))
    ]  # fmt: skip
    con = duckdb_connect(str(store.table_path("transactions")), "1GB", 1)
    if prefilter:  # one disbursement per query, as for a single lookup
        got = {}
        for r in rows:
            got.update(duckdb_flow_back(con, [r], window_ms=params.window_ms, max_hops=hops, prefilter=True))
    else:
        got = duckdb_flow_back(con, rows, window_ms=params.window_ms, max_hops=hops)
    con.close()
    edges = edges_of(tx, [e for ps in got.values() for p in ps for e in p])
    for i, r in enumerate(rows):
        assert canonical(got[r["disb_id"]]) == want[i], r["disb_id"]
        assert greedy_returned(got[r["disb_id"]], edges, r["d"], r["a"], set(r["targets"])) == b.returned_amount[i]
