"""The Neo4j flows end to end against a live Neo4j 5 server, through the CLI.

Skipped unless FLOWGRAPH_NEO4J_URI, FLOWGRAPH_NEO4J_USER and FLOWGRAPH_NEO4J_PASSWORD are
set (FLOWGRAPH_NEO4J_DATABASE optional). The database is WIPED: it must be empty or hold
only data of an earlier run of these tests. For example::

    docker run -d --name fg-neo4j -p7474:7474 -p7687:7687 -e NEO4J_AUTH=neo4j/flowgraph-test neo4j:5
    FLOWGRAPH_NEO4J_URI=bolt://localhost:7687 FLOWGRAPH_NEO4J_USER=neo4j \\
    FLOWGRAPH_NEO4J_PASSWORD=flowgraph-test python -m pytest tests/test_neo4j_live.py tests/test_store_contract.py

What these prove beyond the offline tests: the statements run (not only parse) on the
server, the constraints exist, MERGE is idempotent under the real planner, the keyset
pages come back in tx_id order, and the trace query finds the relationships.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from typer.testing import CliRunner

from flowgraph.cli import app
from flowgraph.engine.csr import ARRAY_NAMES, load_index
from flowgraph.graph.store_index import build_store_index
from flowgraph.neo4j import cypher as cy
from tests.helpers import copy_store

NEO4J_VARS = ("FLOWGRAPH_NEO4J_URI", "FLOWGRAPH_NEO4J_USER", "FLOWGRAPH_NEO4J_PASSWORD")
TEST_MARK = "FlowgraphLiveTest"
CONTRACT_MARK = "FlowgraphContractTest"  # test_store_contract.py's; either may have run first
WIPE = "MATCH (n) CALL { WITH n DETACH DELETE n } IN TRANSACTIONS OF 10000 ROWS"
COUNTS = (
    "MATCH (n) WITH count(n) AS nodes "
    "OPTIONAL MATCH ()-[r]->() WITH nodes, count(r) AS rels "
    "OPTIONAL MATCH ()-[t:TRANSFER]->() RETURN nodes, rels, count(t) AS transfers"
)
runner = CliRunner()

pytestmark = pytest.mark.skipif(
    any(not os.environ.get(v) for v in NEO4J_VARS),
    reason="live Neo4j tests need FLOWGRAPH_NEO4J_URI, _USER and _PASSWORD (a throwaway Neo4j 5 server; "
    "see docs/neo4j.md)",
)


def invoke(*args):
    r = runner.invoke(app, [str(a) for a in args])
    assert "Traceback" not in r.output
    return r


@pytest.fixture(scope="module")
def neo():
    """A driver on an emptied database (refuses to wipe one holding other data)."""
    from flowgraph.neo4j.store import Neo4jSettings, Neo4jStore

    store = Neo4jStore.from_settings(Neo4jSettings.from_env())
    store.verify()
    db = store.database
    records, _, _ = store._driver.execute_query(
        f"OPTIONAL MATCH (m) WHERE m:{TEST_MARK} OR m:{CONTRACT_MARK} "
        "WITH count(m) AS marks MATCH (n) RETURN marks, count(n) AS n",
        database_=db,
    )
    if records and records[0]["n"] and not records[0]["marks"]:
        store.close()
        pytest.skip("the Neo4j database is not empty; the live suite wipes it, so it needs a throwaway one")
    with store._driver.session(database=db) as session:  # IN TRANSACTIONS needs auto-commit
        session.run(WIPE).consume()
    store._driver.execute_query(f"CREATE (:{TEST_MARK})", database_=db)
    yield store
    store.close()


def query(neo, statement: str, **params) -> list:
    records, _, _ = neo._driver.execute_query(statement, parameters_=params, database_=neo.database)
    return list(records)


@pytest.fixture(scope="module")
def store(tmp_path_factory, scored_sample):
    return copy_store(scored_sample, tmp_path_factory.mktemp("live") / "store")


def test_init_twice(neo):
    for _ in range(2):
        r = invoke("neo4j", "init", "--json")
        assert r.exit_code == 0, r.output
    names = {r["name"] for r in query(neo, "SHOW CONSTRAINTS YIELD name RETURN name")}
    assert {"party_id", "account_id", "loan_id", "alert_id", "transfer_tx_id"} <= names
    names = {r["name"] for r in query(neo, "SHOW INDEXES YIELD name RETURN name")}
    assert {"transfer_ts", "alert_rule_level"} <= names


def test_push_twice_counts_unchanged(neo, store):
    r = invoke("--store", store.root, "neo4j", "push", "--batch-size", "500", "--json")
    assert r.exit_code == 0, r.output
    first = json.loads(r.stdout)
    assert first["in_sync"], first
    before = query(neo, COUNTS)[0].data()
    assert before["transfers"] == store.status()["tables"]["transactions"]["rows"]
    r = invoke("--store", store.root, "neo4j", "push", "--batch-size", "500", "--restart", "--json")
    assert r.exit_code == 0, r.output
    assert query(neo, COUNTS)[0].data() == before  # everything sent again; MERGE: nothing new
    r = invoke("--store", store.root, "neo4j", "status", "--json")
    assert json.loads(r.stdout)["in_sync"] is True


def test_index_from_neo4j_equals_embedded(neo, store):
    r = invoke("--store", store.root, "index", "--from-neo4j", "--page-size", "997", "--json")
    assert r.exit_code == 0, r.output
    got, meta = load_index(store.index_dir)
    want, _ = build_store_index(store)
    assert meta["snapshot_id"] == store.snapshot_id
    np.testing.assert_array_equal(got.account_ids, want.account_ids)
    for name in ARRAY_NAMES:
        assert getattr(got, name).tobytes() == getattr(want, name).tobytes(), name


def test_score_write_neo4j_alert_count(neo, store):
    from flowgraph.rules.alerts import read_alerts

    r = invoke("--store", store.root, "score", "--all", "--write-neo4j", "--json")
    assert r.exit_code == 0, r.output
    n_store = read_alerts(store).height
    assert n_store > 0
    assert query(neo, "MATCH (a:Alert)-[:ON]->(:Loan) RETURN count(DISTINCT a) AS n")[0]["n"] == n_store
    assert query(neo, cy.COUNT_ALERTS)[0]["n"] == n_store


def test_trace_cypher_returns_the_paths(neo, store):
    r = invoke("--store", store.root, "trace", "--all", "--json")
    records = [json.loads(line) for line in r.stdout.splitlines()]
    loan = next(x["loan_id"] for x in records if x["paths"])
    want = sorted(tuple(h["tx_id"] for h in p["hops"]) for x in records if x["loan_id"] == loan for p in x["paths"])
    r = invoke("--store", store.root, "trace", loan, "--cypher", "--json")
    assert r.exit_code == 0, r.output
    cypher = json.loads(r.stdout)["cypher"]
    got = sorted(tuple(rel["tx_id"] for rel in rec["p"].relationships) for rec in query(neo, cypher))
    assert got == want
