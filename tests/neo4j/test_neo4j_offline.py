"""Neo4j support without a server: a fake driver (tests/fake_neo4j.py), the CLI runner,
the bulk-import files, and every Cypher statement checked by Neo4j's own parser.

The fake applies flowgraph's statements with MERGE semantics and records them, so these
tests see what would be sent, in which batches, and what a resumed push sends again.
What only a real server can show (planner, constraints, driver retries) is in
test_neo4j_live.py.
"""

from __future__ import annotations

import csv
import json
import math
import shutil
import subprocess
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from flowgraph.cli import app
from flowgraph.core.errors import Neo4jConfigError, Neo4jStoreError, Neo4jUnavailableError
from flowgraph.engine.csr import ARRAY_NAMES, load_index
from flowgraph.graph.store_index import build_store_index
from flowgraph.neo4j import cypher as cy
from flowgraph.neo4j.export import IMPORT_FILES, export_import
from flowgraph.neo4j.settings import Neo4jSettings, redact_uri
from flowgraph.neo4j.source import build_index_from_source, store_fingerprint
from flowgraph.neo4j.store import PUSH_TABLES, SYNC_FILE, Neo4jStore
from flowgraph.neo4j.trace_cypher import cypher_for_records
from flowgraph.store.embedded import Store
from tests.helpers import copy_store
from tests.helpers.fake_neo4j import FakeDriver
from tests.neo4j.test_store_contract import make_contract_store, sample_alerts

ROOT = Path(__file__).resolve().parents[2]
LINT = ROOT / "tools" / "cypher-lint"
NEO4J_ENV = ("FLOWGRAPH_NEO4J_URI", "FLOWGRAPH_NEO4J_USER", "FLOWGRAPH_NEO4J_PASSWORD", "FLOWGRAPH_NEO4J_DATABASE")
URI = "bolt://fake.example:7687"
runner = CliRunner()


def invoke(*args, env: dict | None = None):
    return runner.invoke(app, [str(a) for a in args], env=env)


def flat(text: str) -> str:
    """Messages as one line (rich wraps stderr at the console width)."""
    return " ".join(text.split())


@pytest.fixture
def contract_store(tmp_path) -> Store:
    return make_contract_store(tmp_path / "store")


@pytest.fixture
def fake(monkeypatch) -> FakeDriver:
    """A fake server behind ``neo4j.GraphDatabase.driver`` and the env vars pointing at it."""
    import neo4j

    driver = FakeDriver()
    monkeypatch.setattr(neo4j.GraphDatabase, "driver", lambda uri, auth=None, **kw: driver)
    monkeypatch.setenv("FLOWGRAPH_NEO4J_URI", URI)
    monkeypatch.setenv("FLOWGRAPH_NEO4J_USER", "neo4j")
    monkeypatch.setenv("FLOWGRAPH_NEO4J_PASSWORD", "s3cret-pw")
    monkeypatch.delenv("FLOWGRAPH_NEO4J_DATABASE", raising=False)
    return driver


def neo_of(driver: FakeDriver) -> Neo4jStore:
    return Neo4jStore(URI, driver=driver)


def expected_counts(store: Store) -> dict:
    """Node and relationship counts a graph holding exactly ``store`` has."""
    t = {name: store.read(name) for name in PUSH_TABLES}
    parties = set(t["parties"]["party_id"]) | set(t["accounts"]["owner_id"]) | set(t["loans"]["borrower_id"]) \
        | set(t["relations"]["party_a"]) | set(t["relations"]["party_b"])
    loans = set(t["loans"]["loan_id"]) | set(t["disbursements"]["loan_id"]) | set(t["repayments"]["loan_id"])
    return {
        "Account": store_fingerprint(store)["accounts"], "FlowgraphSync": 1, "Loan": len(loans),
        "Party": len(parties), "OWNS": t["accounts"].height, "APPLIED": t["loans"].height,
        "RELATED": t["relations"].height, "TRANSFER": t["transactions"].height,
        "DISBURSED_TO": t["disbursements"].height, "REPAID": t["repayments"].height, "ON": 0,
    }


# ------------------------------------------------------------------ settings
def test_settings_options_override_environment():
    env = {"FLOWGRAPH_NEO4J_URI": "bolt://env:7687", "FLOWGRAPH_NEO4J_USER": "u",
           "FLOWGRAPH_NEO4J_PASSWORD": "pw-secret", "FLOWGRAPH_NEO4J_DATABASE": "envdb"}
    s = Neo4jSettings.resolve(uri="neo4j+s://opt:7687", database="optdb", env=env)
    assert (s.uri, s.user, s.password, s.database) == ("neo4j+s://opt:7687", "u", "pw-secret", "optdb")
    assert "pw-secret" not in repr(s)
    assert Neo4jSettings.from_env(env).uri == "bolt://env:7687"


@pytest.mark.parametrize("env, words", [
    ({}, "FLOWGRAPH_NEO4J_URI"),
    ({"FLOWGRAPH_NEO4J_URI": "localhost:7687"}, "bad Neo4j URI"),
    ({"FLOWGRAPH_NEO4J_URI": "http://localhost:7474"}, "bad Neo4j URI"),
    ({"FLOWGRAPH_NEO4J_URI": "bolt://h", "FLOWGRAPH_NEO4J_USER": "neo4j"}, "FLOWGRAPH_NEO4J_PASSWORD"),
])
def test_settings_errors_are_config_errors(env, words):
    with pytest.raises(Neo4jConfigError, match=words):
        Neo4jSettings.from_env(env)


def test_messages_never_show_credentials():
    assert redact_uri("neo4j://neo4j:pw@db:7687") == "neo4j://db:7687"
    assert Neo4jStore("bolt://u:pw@db:7687", driver=FakeDriver()).uri == "bolt://db:7687"


# ------------------------------------------------------------------ push
@pytest.mark.parametrize("batch_size", [1, 2, 5000])
def test_push_sends_merge_batches_of_the_given_size(contract_store, batch_size):
    driver = FakeDriver()
    res = neo_of(driver).push(contract_store, batch_size=batch_size)
    rows = contract_store.status()["tables"]
    for table in PUSH_TABLES:
        writes = driver.writes(cy.PUSH_STATEMENTS[table])
        assert len(writes) == math.ceil(rows[table]["rows"] / batch_size), table
        assert all(0 < len(w.params["rows"]) <= batch_size for w in writes)
        assert all(w.statement.startswith("UNWIND $rows AS row\nMERGE") for w in writes)
        assert res["tables"][table] == {"rows": rows[table]["rows"], "sent": rows[table]["rows"], "skipped": 0}
    assert res["batches"] == sum(math.ceil(rows[t]["rows"] / batch_size) for t in PUSH_TABLES)
    assert res["in_sync"] and not res["resumed"] and res["not_pushed"] == ["classifications"]
    assert driver.graph.counts() == expected_counts(contract_store)
    assert len(driver.graph.schema) == len(cy.SCHEMA_STATEMENTS)  # push ensures the schema first
    # the pushed graph is the store: its snapshot id is the store's
    assert neo_of(driver).snapshot_id() == contract_store.snapshot_id
    tx = driver.graph.transfers[("a1", "a2", "t05")]
    assert tx == {"tx_id": "t05", "ts": 1704153600000, "amount": 90000, "channel": "transfer", "memo": 'say "hi"'}


@pytest.mark.parametrize("mode", ["before", "after"])
def test_push_resumes_after_a_failure_without_duplicates(contract_store, mode):
    """A connection lost before (or after) the 3rd transactions batch commits: the push
    fails with the URI and the state file in the message; the re-run sends only what was
    not recorded, and the graph ends equal to a clean push's."""
    driver = FakeDriver()
    tx_stmt = cy.PUSH_STATEMENTS["transactions"]
    seen = {"n": 0}

    def fail(_n, statement, _params):
        if statement == tx_stmt:
            seen["n"] += 1
            if seen["n"] == 3:
                return mode
        return None

    driver.fail = fail
    with pytest.raises(Neo4jUnavailableError) as info:
        neo_of(driver).push(contract_store, batch_size=2)
    msg = str(info.value)
    assert URI in msg and SYNC_FILE in msg and "resume" in msg and "transactions rows 5-6" in msg
    state = json.loads((contract_store.root / SYNC_FILE).read_text())
    assert state["tables"]["transactions"]["rows_done"] == 4 and not state["complete"]

    driver.fail = None
    res = neo_of(driver).push(contract_store, batch_size=2)
    assert res["resumed"] and res["in_sync"]
    assert res["tables"]["transactions"] == {"rows": 6, "sent": 2, "skipped": 4}
    assert res["tables"]["parties"] == {"rows": 2, "sent": 0, "skipped": 2}
    # each table's rows were sent exactly once, except the one batch whose fate was unknown
    for table in PUSH_TABLES:
        keys = [tuple(r.values()) for r in driver.committed_rows(cy.PUSH_STATEMENTS[table])]
        attempted = [tuple(r.values()) for w in driver.writes(cy.PUSH_STATEMENTS[table]) for r in w.params["rows"]]
        extra = 2 if table == "transactions" else 0
        assert len(attempted) == contract_store.status()["tables"][table]["rows"] + extra, table
        assert len(keys) == len(set(keys)) + (extra if mode == "after" else 0), table
    assert driver.graph.counts() == expected_counts(contract_store)  # MERGE: no duplicate anywhere


def test_second_push_sends_nothing_and_a_wiped_graph_is_sent_again(contract_store):
    driver = FakeDriver()
    neo_of(driver).push(contract_store, batch_size=3)
    before = driver.graph.counts()
    n_writes = len(driver.writes())
    again = neo_of(driver).push(contract_store, batch_size=3)
    assert again["resumed"] and again["batches"] == 0 and len(driver.writes()) == n_writes
    assert driver.graph.counts() == before
    driver.wipe()  # e.g. the database was recreated: the recorded progress is no longer true
    third = neo_of(driver).push(contract_store, batch_size=3)
    assert not third["resumed"] and third["batches"] > 0 and third["in_sync"]
    assert driver.graph.counts() == before


def test_push_into_a_graph_with_other_data_is_not_in_sync(contract_store):
    driver = FakeDriver()
    driver.graph.transfers[("zz1", "zz2", "zz-foreign")] = {"tx_id": "zz-foreign", "ts": 1, "amount": 1}
    res = neo_of(driver).push(contract_store)
    assert not res["in_sync"] and res["graph"]["transfers"] == res["store"]["transfers"] + 1
    assert neo_of(driver).snapshot_id().startswith("neo4j:")
    with pytest.raises(Neo4jStoreError, match="neo4j push"):
        from flowgraph.neo4j.source import index_store_from_source

        index_store_from_source(contract_store, neo_of(driver))


# ------------------------------------------------------------------ index from Neo4j
@pytest.fixture(scope="module")
def generated_store(tmp_path_factory) -> Store:
    from flowgraph.ingest.load import ingest_paths
    from flowgraph.synthetic.generate import generate

    base = tmp_path_factory.mktemp("generated")
    generate(base / "bank", scale="tiny", seed=5)
    store = Store.init(base / "store")
    ingest_paths(store, [base / "bank"])
    return store


def test_keyset_paging_builds_the_embedded_index_byte_for_byte(generated_store):
    driver = FakeDriver()
    neo = neo_of(driver)
    neo.push(generated_store, batch_size=5000)
    page = 3000
    got, meta = build_index_from_source(neo, page_size=page)
    want, want_meta = build_store_index(generated_store)
    assert got.account_ids.tolist() == want.account_ids.tolist()
    for name in ARRAY_NAMES:
        a, b = getattr(got, name), getattr(want, name)
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), name
    assert meta["snapshot_id"] == want_meta["snapshot_id"] == generated_store.snapshot_id
    # the pages: first, then `WHERE t.tx_id > $after ... ORDER BY tx_id LIMIT $limit` from the last key
    first, after = driver.queries(cy.READ_TRANSFERS_FIRST), driver.queries(cy.READ_TRANSFERS_AFTER)
    # a short page ends the walk; when the last page is full, one more (empty) page does
    assert len(first) == 1 and len(after) == want.n_edges // page
    assert all(c.params["limit"] == page for c in first + after)
    tx_ids = generated_store.read("transactions")["tx_id"].to_list()
    assert [c.params["after"] for c in after] == [tx_ids[page * (i + 1) - 1] for i in range(len(after))]
    assert "WHERE t.tx_id > $after" in cy.READ_TRANSFERS_AFTER and "SKIP" not in cy.READ_TRANSFERS_AFTER
    assert cy.READ_TRANSFERS_AFTER.rstrip().endswith("ORDER BY tx_id LIMIT $limit")


def test_index_from_neo4j_via_cli_is_used_by_the_engine(tmp_path, fake):
    store = make_contract_store(tmp_path / "s")
    neo_of(fake).push(store, batch_size=2)
    r = invoke("--store", store.root, "index", "--from-neo4j", "--page-size", "2", "--json")
    assert r.exit_code == 0, r.output
    meta = json.loads(r.stdout)
    assert meta["source"] == "Neo4jStore" and meta["snapshot_id"] == store.snapshot_id
    assert len(fake.queries(cy.READ_TRANSFERS_AFTER)) == 3  # 6 transfers in pages of 2
    index, _ = load_index(store.index_dir)
    want, _ = build_store_index(store)
    for name in ARRAY_NAMES:
        np.testing.assert_array_equal(getattr(index, name), getattr(want, name), err_msg=name)
    r = invoke("--store", store.root, "index", "--json")  # current: not rebuilt from the store
    assert r.exit_code == 0 and json.loads(r.stdout)["rebuilt"] is False
    fake.graph.transfers.popitem()  # the graph drifts from the store: refused, nothing written
    r = invoke("--store", store.root, "index", "--from-neo4j")
    assert r.exit_code == 1 and "neo4j push" in flat(r.stderr) and "Traceback" not in r.output


# ------------------------------------------------------------------ CLI and errors
def test_cli_without_configuration_exits_2(tmp_path, monkeypatch):
    for v in NEO4J_ENV:
        monkeypatch.delenv(v, raising=False)
    make_contract_store(tmp_path / "s")
    for args in (["neo4j", "init"], ["neo4j", "push"], ["neo4j", "status"], ["index", "--from-neo4j"],
                 ["score", "--all", "--write-neo4j"]):
        r = invoke("--store", tmp_path / "s", *args)
        assert r.exit_code == 2, (args, r.output)
        assert "FLOWGRAPH_NEO4J_URI" in flat(r.stderr) and "Traceback" not in r.output and r.stdout == ""


def test_cli_unreachable_server_exits_1_naming_the_uri(tmp_path, monkeypatch):
    """The real driver against a closed port: one connection attempt, no retry loop."""
    monkeypatch.setenv("FLOWGRAPH_NEO4J_URI", "bolt://127.0.0.1:9")
    monkeypatch.setenv("FLOWGRAPH_NEO4J_USER", "neo4j")
    monkeypatch.setenv("FLOWGRAPH_NEO4J_PASSWORD", "s3cret-pw")
    make_contract_store(tmp_path / "s")
    for args in (["neo4j", "init"], ["neo4j", "push", "--json"]):
        r = invoke("--store", tmp_path / "s", *args)
        assert r.exit_code == 1, r.output
        assert "cannot reach Neo4j at bolt://127.0.0.1:9" in flat(r.stderr) and "ServiceUnavailable" in flat(r.stderr)
        assert "Traceback" not in r.output and "s3cret-pw" not in r.output and r.stdout == ""


def test_cli_push_failure_then_resume(tmp_path, fake):
    store = make_contract_store(tmp_path / "s")
    fake.fail = lambda n, statement, params: "before" if statement == cy.PUSH_STATEMENTS["loans"] else None
    r = invoke("--store", store.root, "neo4j", "push", "--batch-size", "1", "--json")
    assert r.exit_code == 1 and r.stdout == ""
    assert "cannot reach Neo4j at bolt://fake.example:7687" in flat(r.stderr) and "resume" in flat(r.stderr)
    assert "Traceback" not in r.output and "s3cret-pw" not in r.output
    fake.fail = None
    r = invoke("--store", store.root, "neo4j", "push", "--batch-size", "1", "--json")
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    assert res["resumed"] and res["in_sync"] and res["tables"]["parties"]["skipped"] == 2
    assert fake.graph.counts() == expected_counts(store)
    r = invoke("--store", store.root, "neo4j", "status", "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["in_sync"] is True
    r = invoke("--store", store.root, "neo4j", "init", "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["constraints"][:4] == ["party_id", "account_id", "loan_id", "alert_id"]
    assert fake.closed >= 4  # every command closed its driver


def test_write_alerts_flattens_paths_to_tx_ids(contract_store):
    driver = FakeDriver()
    neo = neo_of(driver)
    assert neo.write_alerts(sample_alerts(), batch_size=1) == 2
    assert neo.write_alerts(sample_alerts()) == 2
    assert len(driver.writes(cy.WRITE_ALERTS)) == 3
    node = driver.graph.nodes["Alert"]["al1"]
    assert node["tx_ids"] == ["t05", "t04", "t06"] and node["path_lengths"] == [2, 1]
    assert node["level"] == "high" and "paths" not in node
    assert driver.graph.on == {("al1", "L1"), ("al2", "L1")}
    # a re-scored alert whose value became null loses the old property (no stale value)
    rescored = sample_alerts().with_columns(first_return_ts=pl.lit(None, pl.Int64))
    neo.write_alerts(rescored)
    assert "first_return_ts" not in driver.graph.nodes["Alert"]["al1"]


def test_score_write_neo4j_writes_the_runs_alerts(tmp_path, fake, scored_sample):
    from flowgraph.rules.alerts import read_alerts
    from flowgraph.rules.batch import last_data_day

    store = copy_store(scored_sample, tmp_path / "s")
    day = last_data_day(store)
    r = invoke("--store", store.root, "score", "--all", "--write-neo4j", "--json")
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    alerts = read_alerts(store, day=day)
    assert summary["neo4j"]["alerts_written"] == alerts.height == summary["alerts"] > 0
    nodes = fake.graph.nodes["Alert"]
    assert set(nodes) == set(alerts["alert_id"])
    for row in alerts.iter_rows(named=True):
        n = nodes[row["alert_id"]]
        assert n["level"] == row["level"] and (row["loan_id"] == next(lo for a, lo in fake.graph.on if a == row["alert_id"]))
        assert n["tx_ids"] == [h["tx_id"] for p in row["paths"] for h in p["hops"]]


def test_score_write_neo4j_checks_the_server_before_scoring(tmp_path, fake, scored_sample):
    store = copy_store(scored_sample, tmp_path / "s")
    shutil.rmtree(store.root / "alerts")
    fake.down = True
    r = invoke("--store", store.root, "score", "--all", "--write-neo4j")
    assert r.exit_code == 1 and "cannot reach Neo4j" in flat(r.stderr)
    assert not (store.root / "alerts").exists()  # nothing scored half-way


# ------------------------------------------------------------------ trace --cypher
@pytest.fixture(scope="module")
def traced(tmp_path_factory, scored_sample):
    store = copy_store(scored_sample, tmp_path_factory.mktemp("traced") / "s")
    r = invoke("--store", store.root, "trace", "--all", "--json")
    assert r.exit_code == 0, r.output
    records = [json.loads(line) for line in r.stdout.splitlines()]
    return store, records


def test_trace_cypher_names_every_path_tx_id(traced):
    store, records = traced
    loan = next(r["loan_id"] for r in records if len(r["paths"]) >= 2)
    want = {h["tx_id"] for r in records if r["loan_id"] == loan for p in r["paths"] for h in p["hops"]}
    r = invoke("--store", store.root, "trace", loan, "--cypher")
    assert r.exit_code == 0, r.output
    text = r.stdout
    assert text.count(";") == 1 and text.rstrip().endswith(";")
    for tx in want:
        assert f"tx_id: '{tx}'" in text
    n_paths = sum(len(x["paths"]) for x in records if x["loan_id"] == loan)
    assert text.count("MATCH p = ") == n_paths and text.count("UNION ALL") == n_paths - 1
    r = invoke("--store", store.root, "trace", loan, "--cypher", "--json")
    row = json.loads(r.stdout)
    assert set(row["tx_ids"]) == want and row["cypher"] + ";\n\n" == text


def test_cypher_quotes_hostile_ids():
    q = cypher_for_records([{"loan_id": "L'1\n// x", "disbursement_id": "D\\1",
                             "paths": [{"hops": [{"tx_id": "t'1"}, {"tx_id": "t\\2"}]}]}])
    assert "{tx_id: 't\\'1'}" in q and "{tx_id: 't\\\\2'}" in q
    assert q.splitlines()[0].startswith("// ") and q.splitlines()[1].startswith("MATCH")
    with pytest.raises(ValueError):
        cypher_for_records([])


# ------------------------------------------------------------------ export-import
def _read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


HEADERS = {
    "parties.csv": ["party_id:ID(Party)", "kind", "name", "id_number", "phone", "address", "industry", "region"],
    "accounts.csv": ["account_id:ID(Account)", "owner_id", "opened_at:long", "kind", "category", "branch", "status"],
    "transfers.csv": [":START_ID(Account)", ":END_ID(Account)", ":TYPE", "tx_id", "ts:long", "amount:long",
                      "currency", "channel", "memo"],
    "disbursed_to.csv": [":START_ID(Loan)", ":END_ID(Account)", ":TYPE", "disbursement_id", "amount:long", "ts:long"],
    "owns.csv": [":START_ID(Party)", ":END_ID(Account)", ":TYPE"],
    "related.csv": [":START_ID(Party)", ":END_ID(Party)", ":TYPE", "relation", "since:long"],
    "repaid.csv": [":START_ID(Account)", ":END_ID(Loan)", ":TYPE", "repayment_id", "amount:long", "ts:long"],
    "parties_referenced.csv": ["party_id:ID(Party)"],
}


@pytest.fixture(scope="module")
def finbench_export(tmp_path_factory, finbench_store):
    out = tmp_path_factory.mktemp("export") / "neo4j-import"
    r = invoke("--store", finbench_store.root, "neo4j", "export-import", out)
    assert r.exit_code == 0, r.output
    return finbench_store, out, r


def test_export_import_counts_and_headers_on_finbench(finbench_export):
    store, out, _ = finbench_export
    rows = {t: v["rows"] for t, v in store.status()["tables"].items()}
    counts = {}
    for f in IMPORT_FILES:
        header, body = _read_csv(out / f.name)
        counts[f.name] = len(body)
        if f.name in HEADERS:
            assert header == HEADERS[f.name], f.name
        if f.kind == "relationships":
            assert {r[header.index(":TYPE")] for r in body} <= {f.label}
    assert counts["transfers.csv"] == rows["transactions"] > 0
    assert counts["accounts.csv"] == rows["accounts"] and counts["parties.csv"] == rows["parties"]
    assert counts["loans.csv"] == rows["loans"] and counts["disbursed_to.csv"] == rows["disbursements"]
    assert counts["repaid.csv"] == rows["repayments"] and counts["related.csv"] == rows["relations"]
    assert counts["owns.csv"] == rows["accounts"] and counts["applied.csv"] == rows["loans"]
    assert counts["accounts.csv"] + counts["accounts_referenced.csv"] == store_fingerprint(store)["accounts"]
    # typed columns hold integers, as neo4j-admin will parse them
    header, body = _read_csv(out / "transfers.csv")
    for col in ("ts:long", "amount:long"):
        assert all(r[header.index(col)].lstrip("-").isdigit() for r in body)


def test_export_import_every_relationship_end_is_a_node(finbench_export):
    """What neo4j-admin checks: no relationship points at an id missing from its id space."""
    _, out, _ = finbench_export
    ids: dict[str, set] = {}
    for f in IMPORT_FILES:
        if f.kind == "nodes":
            header, body = _read_csv(out / f.name)
            space = header[0].split("(")[1].rstrip(")")
            assert not ids.get(space, set()) & {r[0] for r in body}, f"duplicate ids in {space}"
            ids.setdefault(space, set()).update(r[0] for r in body)
    for f in IMPORT_FILES:
        if f.kind == "relationships":
            header, body = _read_csv(out / f.name)
            for col in (0, 1):
                space = header[col].split("(")[1].rstrip(")")
                missing = {r[col] for r in body} - ids[space]
                assert not missing, (f.name, header[col], sorted(missing)[:3])


def test_export_import_prints_the_command(finbench_export):
    _, out, r = finbench_export
    command = r.stdout.strip()
    assert command.startswith("neo4j-admin database import full neo4j")
    assert "--overwrite-destination" not in command and "--multiline-fields=true" in command
    for f in IMPORT_FILES:
        flag = "--nodes=" + (f"{f.label}=" if f.kind == "nodes" else "") if f.kind == "nodes" else "--relationships="
        assert f"{flag}{out.resolve() / f.name}" in command, f.name
    assert f"--nodes=FlowgraphSync={out.resolve() / 'flowgraph_sync.csv'}" in command
    assert command in (out / "README.txt").read_text()
    header, body = _read_csv(out / "flowgraph_sync.csv")
    assert header == ["key:ID(FlowgraphSync)", "snapshot_id", "transfers:long", "accounts:long", "last_tx_id"]


def test_export_import_quotes_text_fields(tmp_path, contract_store):
    res = export_import(contract_store, tmp_path / "x")
    assert res["files"]["transfers.csv"] == 6 and res["files"]["accounts_referenced.csv"] == 1
    header, body = _read_csv(tmp_path / "x" / "transfers.csv")
    memo = {r[header.index("tx_id")]: r[header.index("memo")] for r in body}
    assert memo == {"t01": "a,b", "t02": "", "t03": "line1\nline2", "t04": "", "t05": 'say "hi"', "t06": "ok"}
    raw = (tmp_path / "x" / "transfers.csv").read_text()
    assert '"say ""hi"""' in raw and '"a,b"' in raw and '"line1\nline2"' in raw
    header, body = _read_csv(tmp_path / "x" / "parties.csv")
    assert {r[header.index("name")] for r in body} == {'Ann "A" Lee', "Co, Ltd\nline2"}
    polars_back = pl.read_csv(tmp_path / "x" / "parties.csv", infer_schema=False)
    assert sorted(polars_back["name"].to_list()) == ['Ann "A" Lee', "Co, Ltd\nline2"]


def test_export_import_never_replaces_a_foreign_folder(tmp_path, contract_store):
    precious = tmp_path / "home"
    precious.mkdir()
    (precious / "thesis.txt").write_text("keep me")
    r = invoke("--store", contract_store.root, "neo4j", "export-import", precious)
    assert r.exit_code == 1 and "not an earlier flowgraph export" in flat(r.stderr)
    assert (precious / "thesis.txt").read_text() == "keep me"
    export_import(contract_store, tmp_path / "again")
    export_import(contract_store, tmp_path / "again")  # an earlier export is replaced
    assert sorted(p.name for p in (tmp_path / "again").iterdir()) == sorted(
        [f.name for f in IMPORT_FILES] + ["flowgraph_sync.csv", "README.txt"])


# ------------------------------------------------------------------ Cypher syntax (Neo4j's parser)
def lint(items: list[dict]) -> dict[str, dict]:
    """Run tools/cypher-lint on ``items``; skip when node or its npm package is missing."""
    if shutil.which("node") is None:
        pytest.skip("node is not installed: the Cypher syntax check needs Node.js 18+")
    if not (LINT / "node_modules" / "@neo4j-cypher" / "language-support").exists():
        pytest.skip("tools/cypher-lint/node_modules is missing: run `npm ci --prefix tools/cypher-lint`")
    proc = subprocess.run(["node", str(LINT / "lint.mjs")], input=json.dumps(items), capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["cypherVersion"] and "5" in result["cypherVersion"]
    return {r["id"]: r for r in result["results"]}


def test_every_statement_parses_as_cypher_5():
    stmts = cy.all_statements()
    trace = cypher_for_records([
        {"loan_id": "L'1", "disbursement_id": "D1", "paths": [{"hops": [{"tx_id": "t'1"}, {"tx_id": "t\\2"}]},
                                                             {"hops": [{"tx_id": "t3"}]}]},
        {"loan_id": "L'1", "disbursement_id": "D2", "paths": []},
    ])
    items = [{"id": k, "query": q, "parameters": p} for k, (q, p) in stmts.items()]
    # the benchmarks' flow-back Cypher (the Neo4j peer) as well
    from benchmarks.neo4j_peer import VARIANTS

    items += [{"id": f"peer[{name}]", "query": q % {"hops": 5}, "parameters": {"rows": []}}
              for name, q in VARIANTS.items()]
    items += [{"id": "trace", "query": trace, "parameters": {}},
              {"id": "broken", "query": cy.PUSH_STATEMENTS["parties"].replace("MERGE (p:Party", "MERGE (p:Party {"),
               "parameters": {"rows": []}},
              {"id": "unknown-param", "query": "RETURN $nope AS x", "parameters": {}}]
    res = lint(items)
    # writes: push per table, WRITE_ALERTS, DELETE_ALERTS; then the reads
    assert len(stmts) == len(cy.SCHEMA_STATEMENTS) + len(cy.PUSH_STATEMENTS) + 2 + len(cy.READ_PARAMETERS)
    bad = {k: v["errors"] + v["warnings"] for k, v in res.items()
           if (v["errors"] or v["warnings"]) and k not in ("broken", "unknown-param")}
    assert not bad, bad  # deprecations count too: they break on the next major version
    assert res["broken"]["errors"] and res["broken"]["errors"][0]["line"] == 2
    assert res["unknown-param"]["errors"]  # the parameters given are checked, too
