"""The benchmarks' Neo4j peer (flow-back written in Cypher) answers exactly what the engine
does, for every disbursement of a generated bank, in both spellings (quantified path
pattern, variable-length with all(...)). Live server: tests/neo4j/conftest.py (wiped here).
"""

from __future__ import annotations

import pytest

from benchmarks.neo4j_peer import VARIANTS, edges_from_neo4j, neo4j_flow_back
from benchmarks.peers import canonical, greedy_returned
from flowgraph.core.values import DAY_MS
from flowgraph.engine.flow_back import FlowBackParams, find_flow_back_batch
from flowgraph.ingest.load import ingest_paths
from flowgraph.investigate.trace import search_inputs
from flowgraph.store.embedded import Store
from flowgraph.synthetic.generate import generate


@pytest.fixture(scope="module")
def bank(tmp_path_factory, neo):
    root = tmp_path_factory.mktemp("cypher-peer")
    generate(root / "bank", "tiny", 3)
    store = Store.init(root / "store")
    ingest_paths(store, [root / "bank"])
    neo.push(store, batch_size=5000)
    index, inp = search_inputs(store)
    tx_ids = store.read("transactions", ["tx_id"])["tx_id"].to_numpy()
    return store, index, inp, tx_ids


@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize("hops,days", [(5, 30), (3, 7)])
def test_cypher_peer_equals_engine(neo, bank, variant, hops, days):
    store, index, inp, tx_ids = bank
    params = FlowBackParams(window_ms=days * DAY_MS, max_hops=hops, max_paths=100_000)
    b = find_flow_back_batch(index, inp.accounts, inp.t0s, inp.amounts, inp.target_indptr, inp.target_ids, params)
    assert (b.path_count > 0).sum() >= (5 if days >= 30 else 1)  # flow-back cases to compare
    rows = [{"disb_id": r["disbursement_id"], "d": r["account_id"], "t0": r["ts"], "a": r["amount"],
             "threshold": params.threshold(r["amount"]), "targets": sorted(inp.linked_of[i])}
            for i, r in enumerate(inp.disb.iter_rows(named=True))]  # fmt: skip
    got = neo4j_flow_back(neo._driver, rows, window_ms=params.window_ms, max_hops=hops, variant=variant,
                          database=neo.database)  # fmt: skip
    edges = edges_from_neo4j(neo._driver, {e for ps in got.values() for p in ps for e in p}, neo.database)
    for i, r in enumerate(rows):
        want = canonical([tx_ids[p].tolist() for p in b.result(i).paths])
        assert canonical(got[r["disb_id"]]) == want, r["disb_id"]
        returned = greedy_returned(got[r["disb_id"]], edges, r["d"], r["a"], set(r["targets"]))
        assert returned == b.returned_amount[i], r["disb_id"]
