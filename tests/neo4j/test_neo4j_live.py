"""The Neo4j commands of docs/neo4j.md end to end against the live Neo4j 5 server, through
the CLI, on the bundled scored sample: init, push (twice: nothing sent again), status (every
role), index --from-neo4j (the embedded index's digest), score --write-neo4j (alerts that
vanish on a re-score are deleted), trace --cypher (the query returns the engine's paths).

The server comes from tests/neo4j/conftest.py (skipped without FLOWGRAPH_NEO4J_*, failing
when CI is set); its database is wiped. What these prove beyond the offline tests: the
statements run (not only parse) on the server, the constraints exist, MERGE is idempotent
under the real planner, the keyset pages come back in tx_id order, and the trace query
finds the relationships.
"""

from __future__ import annotations

import json
import shutil

import pytest
from typer.testing import CliRunner

from flowgraph.cli import app
from flowgraph.neo4j import cypher as cy
from tests.helpers import ROOT, copy_store
from tests.neo4j.conftest import query

COUNTS = (
    "MATCH (n) WITH count(n) AS nodes "
    "OPTIONAL MATCH ()-[r]->() WITH nodes, count(r) AS rels "
    "OPTIONAL MATCH ()-[t:TRANSFER]->() RETURN nodes, rels, count(t) AS transfers, "
    "count(DISTINCT t.tx_id) AS tx_ids"
)
ALERT_NODES = "MATCH (a:Alert)-[:ON]->(l:Loan) RETURN a.alert_id AS id, a.rule_id AS rule, a.level AS level, " \
              "a.score AS score, a.as_of AS as_of, l.loan_id AS loan"
runner = CliRunner()


def invoke(*args, ok: bool = True):
    r = runner.invoke(app, [str(a) for a in args])
    assert "Traceback" not in r.output
    if ok:
        assert r.exit_code == 0, r.output
    return r


@pytest.fixture(scope="module")
def store(tmp_path_factory, scored_sample):
    return copy_store(scored_sample, tmp_path_factory.mktemp("live") / "store")


def test_init_twice(neo):
    for _ in range(2):
        r = invoke("neo4j", "init", "--json")
        assert json.loads(r.stdout)["statements"] == len(cy.SCHEMA_STATEMENTS)
    names = {r["name"] for r in query(neo, "SHOW CONSTRAINTS YIELD name RETURN name")}
    assert {"party_id", "account_id", "loan_id", "alert_id", "flowgraph_sync_key", "transfer_tx_id",
            "disbursement_id"} <= names
    names = {r["name"] for r in query(neo, "SHOW INDEXES YIELD name RETURN name")}
    assert {"transfer_ts", "alert_rule_level"} <= names


def test_push_then_a_second_push_sends_nothing(neo, store):
    first = json.loads(invoke("--store", store.root, "neo4j", "push", "--batch-size", "500", "--json").stdout)
    assert first["in_sync"], first
    assert first["graph"] == first["store"]
    rows = store.status()["tables"]
    assert all(t["sent"] == rows[name]["rows"] for name, t in first["tables"].items())
    before = query(neo, COUNTS)[0].data()
    assert before["transfers"] == before["tx_ids"] == rows["transactions"]["rows"]

    again = json.loads(invoke("--store", store.root, "neo4j", "push", "--json").stdout)
    assert again["resumed"] and again["batches"] == 0 and again["in_sync"]
    assert {t["sent"] for t in again["tables"].values()} == {0}
    assert query(neo, COUNTS)[0].data() == before

    # --restart sends everything again: MERGE creates nothing new
    r = invoke("--store", store.root, "neo4j", "push", "--batch-size", "500", "--restart", "--json")
    assert json.loads(r.stdout)["batches"] > 0
    assert query(neo, COUNTS)[0].data() == before


def test_status_in_sync_and_readable_by_every_role(neo, store, tmp_path):
    doc = json.loads(invoke("--store", store.root, "neo4j", "status", "--json").stdout)
    assert doc["in_sync"] is True and doc["snapshot_id"] == store.snapshot_id
    assert doc["transfers"] == store.status()["tables"]["transactions"]["rows"]
    assert doc["transfers"] == query(neo, cy.COUNT_TRANSFERS)[0]["n"]
    assert doc["accounts"] == query(neo, cy.COUNT_ACCOUNTS)[0]["n"]

    roles = copy_store(store, tmp_path / "roles")
    invoke("--store", roles.root, "users", "add", "adm", "--role", "admin")
    for role in ("regulator", "analyst", "risk_manager", "auditor"):
        invoke("--store", roles.root, "--user", "adm", "users", "add", role, "--role", role)
        r = invoke("--store", roles.root, "--user", role, "neo4j", "status", "--json")
        assert json.loads(r.stdout)["in_sync"] is True, role
        r = invoke("--store", roles.root, "--user", role, "neo4j", "push", ok=False)
        assert r.exit_code == 1 and "configure" in r.stderr, role  # writing stays admin-only


def test_index_from_neo4j_has_the_embedded_digest(neo, store):
    want = json.loads(invoke("--store", store.root, "index", "--rebuild", "--json").stdout)
    got = json.loads(invoke("--store", store.root, "index", "--from-neo4j", "--page-size", "997",
                            "--json").stdout)
    assert got["source"] == "Neo4jStore"
    assert (got["edges"], got["accounts"], got["digest"]) == (want["edges"], want["accounts"], want["digest"])
    assert len(got["digest"]) == 64
    assert query(neo, "MATCH ()-[t:TRANSFER]->() RETURN count(t) AS n")[0]["n"] == got["edges"]
    # the installed index (built from Neo4j) is the one `index` now reports as current
    again = json.loads(invoke("--store", store.root, "index", "--json").stdout)
    assert again["rebuilt"] is False and again["digest"] == want["digest"]


def test_score_write_neo4j_then_vanished_alerts_are_deleted(neo, store, tmp_path):
    from flowgraph.rules.alerts import read_alerts

    def alert_nodes():
        return {r["id"]: r.data() for r in query(neo, ALERT_NODES)}

    def latest():
        return {r["alert_id"]: r for r in read_alerts(store).iter_rows(named=True)}

    doc = json.loads(invoke("--store", store.root, "score", "--all", "--write-neo4j", "--json").stdout)
    before = latest()
    assert before and doc["neo4j"]["alerts_deleted"] == 0
    nodes = alert_nodes()
    assert set(nodes) == set(before)
    for a, n in nodes.items():
        s = before[a]
        assert (n["rule"], n["level"], n["score"], n["as_of"], n["loan"]) == (
            s["rule_id"], s["level"], s["score"], s["as_of"], s["loan_id"]), a

    # the same day re-scored with a narrower pack: its large-outflow and rapid
    # pass-through alerts vanish from the partition, so from Neo4j as well
    pack = tmp_path / "pack"
    shutil.copytree(ROOT / "rules" / "default", pack)
    dropped = {"large_outflow", "rapid_pass_through"}
    for rule in dropped:
        (pack / f"{rule}.toml").unlink()
    doc = json.loads(invoke("--store", store.root, "score", "--all", "--rules", pack, "--write-neo4j",
                            "--json").stdout)
    after = latest()
    gone = set(before) - set(after)
    assert gone and {before[a]["rule_id"] for a in gone} <= dropped
    assert doc["neo4j"]["alerts_deleted"] == len(gone)
    assert set(alert_nodes()) == set(after)
    assert query(neo, cy.COUNT_ALERTS)[0]["n"] == len(after)
    assert query(neo, "MATCH (a:Alert) WHERE NOT (a)-[:ON]->(:Loan) RETURN count(a) AS n")[0]["n"] == 0


def test_trace_cypher_returns_the_engine_paths(neo, store):
    records = [json.loads(line) for line in invoke("--store", store.root, "trace", "--all", "--json")
               .stdout.splitlines()]
    loans = sorted({x["loan_id"] for x in records if x["paths"]})
    assert loans
    for loan in loans[:12]:
        want = sorted(tuple(h["tx_id"] for h in p["hops"]) for x in records if x["loan_id"] == loan
                      for p in x["paths"])
        cypher = json.loads(invoke("--store", store.root, "trace", loan, "--cypher", "--json").stdout)["cypher"]
        got = sorted(tuple(rel["tx_id"] for rel in rec["p"].relationships) for rec in query(neo, cypher))
        assert got == want, loan
