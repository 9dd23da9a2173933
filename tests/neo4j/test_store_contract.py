"""One contract, two stores: the embedded Parquet store and Neo4j (flowgraph.neo4j).

Always runs against the embedded store and against Neo4jStore over the in-memory fake
driver of tests/helpers/fake_neo4j.py, and against the live server of
tests/neo4j/conftest.py (FLOWGRAPH_NEO4J_URI / _USER / _PASSWORD; skipped without them,
failing when CI is set). That database is wiped, so use a throwaway server.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from flowgraph.engine.csr import ARRAY_NAMES
from flowgraph.graph.store_index import build_store_index
from flowgraph.ingest.load import ingest_frames
from flowgraph.neo4j.source import (
    ALERT_SUMMARY_SCHEMA,
    TRANSFER_SCHEMA,
    EmbeddedSource,
    GraphSource,
    build_index_from_source,
)
from flowgraph.rules.alerts import ALERT_SCHEMA
from flowgraph.store.embedded import Store


def contract_frames() -> list[tuple[str, str, pl.LazyFrame]]:
    """A tiny world: two parties, four accounts (one only named by a transfer), a loan."""
    def lf(d):
        return pl.LazyFrame(d, schema={k: pl.Utf8 for k in d})

    return [
        ("parties.csv", "parties", lf({"party_id": ["p1", "p2"], "kind": ["person", "company"],
                                       "name": ['Ann "A" Lee', "Co, Ltd\nline2"]})),
        ("accounts.csv", "accounts", lf({"account_id": ["a1", "a2", "a3"], "owner_id": ["p1", "p2", "p1"],
                                         "category": ["", "brokerage", None]})),
        ("relations.csv", "relations", lf({"party_a": ["p1"], "party_b": ["p2"], "relation": ["shareholder"],
                                           "since": ["2023-01-01T00:00:00"]})),
        ("loans.csv", "loans", lf({"loan_id": ["L1"], "borrower_id": ["p1"], "amount": ["1000.00"],
                                   "payment_mode": ["self"]})),
        ("disb.csv", "disbursements", lf({"loan_id": ["L1"], "account_id": ["a1"], "amount": ["1000.00"],
                                          "ts": ["2024-01-01T00:00:00"]})),
        ("repay.csv", "repayments", lf({"loan_id": ["L1"], "account_id": ["a3"], "amount": ["10.00"],
                                        "ts": ["2024-03-01T00:00:00"]})),
        ("tx.csv", "transactions", lf({
            "tx_id": ["t05", "t01", "t03", "t02", "t04", "t06"],
            "ts": ["2024-01-02T00:00:00", "2024-01-02T01:00:00", "2024-01-03T00:00:00",
                   "2024-01-03T00:00:00", "2024-01-04T00:00:00", "2024-01-05T00:00:00"],
            "src_account": ["a1", "a2", "x9", "a1", "a2", "a1"],
            "dst_account": ["a2", "x9", "a1", "x9", "a3", "a2"],
            "amount": ["900.00", "800.00", "700.00", "5.00", "600.00", "1.00"],
            "channel": ["transfer"] * 6,
            "memo": ['say "hi"', "a,b", "line1\nline2", "", None, "ok"],
        })),
    ]


def make_contract_store(root) -> Store:
    store = Store.init(root)
    ingest_frames(store, contract_frames())
    return store


def sample_alerts() -> pl.DataFrame:
    hop = {"src": "a1", "dst": "a2", "ts": 1, "amount": 1}
    rows = [
        {"alert_id": "al1", "loan_id": "L1", "disbursement_id": "d", "borrower_id": "p1",
         "account": "a1", "disbursed_amount": 100000, "disbursed_ts": 0, "rule_id": "FB-001",
         "rule_name": "flow_back.self", "kind": "flow_back", "rule_version": "1",
         "ruleset_id": "default@1", "ruleset_hash": "h", "score": 0.9, "level": "high",
         "returned_amount": 60000, "return_ratio": 0.6, "first_return_ts": 5, "path_count": 2,
         "min_hops": 1, "truncated": False,
         "paths": [{"hops": [hop | {"tx_id": "t05"}, hop | {"tx_id": "t04"}]}, {"hops": [hop | {"tx_id": "t06"}]}],
         "reasons": ["returned 60%"], "as_of": "2024-01-31", "scored_at": 1},
    ]
    rows.append(rows[0] | {"alert_id": "al2", "rule_id": "FB-002", "level": "low", "score": 0.2,
                           "paths": [], "reasons": []})
    return pl.DataFrame(rows, schema=ALERT_SCHEMA)


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Store:
    return make_contract_store(tmp_path_factory.mktemp("contract") / "store")


def _neo4j_source(request, store: Store):
    """The live server (tests/neo4j/conftest.py), emptied, holding ``store``."""
    from tests.neo4j.conftest import wipe

    neo = request.getfixturevalue("live_neo")
    wipe(neo)
    neo.init_schema()
    neo.push(store, batch_size=2, restart=True)
    return neo


@pytest.fixture(scope="module", params=["embedded", "neo4j-fake", "neo4j"])
def source(request, store) -> GraphSource:
    if request.param == "embedded":
        yield EmbeddedSource(store)
        return
    if request.param == "neo4j-fake":
        # Neo4jStore's own logic (paging, sync mark, alert flattening) over the in-memory
        # fake driver of tests/fake_neo4j.py: always runs, no server needed
        from flowgraph.neo4j.store import Neo4jStore
        from tests.helpers.fake_neo4j import FakeDriver

        neo = Neo4jStore("bolt://fake:7687", driver=FakeDriver())
        neo.push(store, batch_size=2, restart=True)
        yield neo
        return
    yield _neo4j_source(request, store)


def test_is_a_graph_source(source):
    assert isinstance(source, GraphSource)


def test_snapshot_id_is_stable_and_names_the_store(source, store):
    a, b = source.snapshot_id(), source.snapshot_id()
    assert a and a == b
    assert a == store.snapshot_id  # Neo4j: unchanged since push → the store's snapshot


@pytest.mark.parametrize("batch_size", [1, 4, 1000])
def test_transfers_are_ordered_batches(source, store, batch_size):
    batches = list(source.transfers(batch_size))
    assert all(b.schema == pl.Schema(TRANSFER_SCHEMA) for b in batches)
    assert all(0 < b.height <= batch_size for b in batches)
    got = pl.concat(batches)
    assert got["tx_id"].to_list() == sorted(got["tx_id"].to_list())
    assert got["tx_id"].n_unique() == got.height
    want = store.read("transactions").select(
        "tx_id", pl.col("src_account").alias("src"), pl.col("dst_account").alias("dst"), "ts", "amount"
    )
    assert got.equals(want)


def test_account_ids_cover_the_universe(source, store):
    ids = pl.concat(list(source.account_ids(2))).to_list()
    assert ids == sorted(set(ids))
    index, _ = build_store_index(store)
    assert ids == index.account_ids.tolist()
    assert "x9" in ids  # named only by transfers


def test_index_from_source_equals_store_index(source, store):
    want, want_meta = build_store_index(store)
    got, meta = build_index_from_source(source, page_size=2)
    np.testing.assert_array_equal(got.account_ids, want.account_ids)
    for name in ARRAY_NAMES:
        np.testing.assert_array_equal(getattr(got, name), getattr(want, name), err_msg=name)
    assert meta["snapshot_id"] == want_meta["snapshot_id"]
    assert (meta["accounts"], meta["edges"]) == (want_meta["accounts"], want_meta["edges"])


def test_write_alerts_round_trip_and_idempotent(source):
    alerts = sample_alerts()
    assert source.write_alerts(alerts) == 2
    assert source.write_alerts(alerts) == 2  # MERGE on alert_id: still two
    got = source.alerts().filter(pl.col("alert_id").is_in(["al1", "al2"]))
    assert got.schema == pl.Schema(ALERT_SUMMARY_SCHEMA)
    assert got["alert_id"].to_list() == ["al1", "al2"]
    row = got.row(0, named=True)
    assert (row["loan_id"], row["rule_id"], row["level"], row["score"]) == ("L1", "FB-001", "high", 0.9)
    assert row["tx_ids"] == ["t05", "t04", "t06"] and row["path_lengths"] == [2, 1]
    assert got.row(1, named=True)["tx_ids"] == []
