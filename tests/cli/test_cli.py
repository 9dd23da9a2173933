"""The CLI driven through typer's runner: exit codes, stdout, stderr."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from flowgraph.cli import app
from tests.helpers import FINBENCH

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_status_json_lists_every_table(tmp_path):
    store = tmp_path / "s"
    r = invoke("--store", store, "init")
    assert r.exit_code == 0, r.output
    r = invoke("--store", store, "status", "--json")
    assert r.exit_code == 0
    data = json.loads(r.stdout)
    assert set(data["tables"]) == {
        "transactions", "accounts", "parties", "relations", "loans", "disbursements", "repayments", "classifications"
    }
    assert all(v == {"rows": 0} for v in data["tables"].values())


def test_status_without_store_fails_cleanly(tmp_path):
    r = invoke("--store", tmp_path / "missing", "status")
    assert r.exit_code == 1
    assert "no flowgraph store" in r.stderr


def test_ingest_json_and_strict(tmp_path):
    src = tmp_path / "transactions.csv"
    src.write_text("tx_id|ts|src_account|dst_account|amount\nt1|2024-01-01|a|b|1.00\nt2|2024-01-01|a|b|1.001\n")
    store = tmp_path / "s"
    r = invoke("--store", store, "ingest", src, "--json")
    assert r.exit_code == 0, r.output
    rep = json.loads(r.stdout)
    assert rep["tables"]["transactions"] == {"loaded": 1, "rejected": 1, "duplicates": 0}
    r = invoke("--store", store, "ingest", src, "--strict")
    assert r.exit_code == 1
    assert "rejected" in r.stderr


def test_unknown_file_table_is_an_error(tmp_path):
    src = tmp_path / "stuff.csv"
    src.write_text("a,b\n1,2\n")
    r = invoke("--store", tmp_path / "s", "ingest", src)
    assert r.exit_code == 1 and "--table" in r.stderr


def test_bad_usage_exits_2(tmp_path):
    r = invoke("--store", tmp_path / "s", "ingest")
    assert r.exit_code == 2
    r = invoke("no-such-command")
    assert r.exit_code == 2


def test_schema_command():
    r = invoke("schema", "transactions", "--json")
    assert r.exit_code == 0
    t = json.loads(r.stdout)
    assert t["key"] == ["tx_id"]
    assert {c["name"] for c in t["columns"] if c["required"]} == {"tx_id", "ts", "src_account", "dst_account", "amount"}
    r = invoke("schema")
    assert r.exit_code == 0 and "classifications" in r.stdout
    r = invoke("schema", "nope")
    assert r.exit_code == 1


def test_finbench_ingest_via_cli(tmp_path):
    if not FINBENCH.exists():
        import pytest

        pytest.skip("no FinBench data")
    store = tmp_path / "s"
    r = invoke("--store", store, "ingest", "--format", "finbench", FINBENCH)
    assert r.exit_code == 0, r.output
    r = invoke("--store", store, "status", "--json")
    t = json.loads(r.stdout)["tables"]
    assert (t["transactions"]["rows"], t["disbursements"]["rows"], t["loans"]["rows"]) == (17314, 2758, 1376)
    assert (t["accounts"]["rows"], t["parties"]["rows"], t["repayments"]["rows"]) == (2055, 1171, 2747)


def _sample_store(tmp_path):
    from flowgraph.core.resources import samples_dir

    store = tmp_path / "s"
    r = invoke("--store", store, "ingest", samples_dir(), "--json")
    assert r.exit_code == 0, r.output
    return store


def test_index_built_once_and_rebuilt_on_new_data(tmp_path):
    store = _sample_store(tmp_path)
    r = invoke("--store", store, "index", "--json")
    meta = json.loads(r.stdout)
    assert r.exit_code == 0 and meta["rebuilt"] and meta["edges"] == 20000
    r = invoke("--store", store, "index", "--json")
    assert json.loads(r.stdout)["rebuilt"] is False
    extra = tmp_path / "transactions_new.csv"
    extra.write_text("tx_id,ts,src_account,dst_account,amount\nZ1,2024-05-01,A0001,A0002,1.00\n")
    invoke("--store", store, "ingest", extra)
    meta = json.loads(invoke("--store", store, "index", "--json").stdout)
    assert meta["rebuilt"] and meta["edges"] == 20001
    assert json.loads(invoke("--store", store, "index", "--rebuild", "--json").stdout)["rebuilt"]


def test_links_tree_and_json(tmp_path):

    store = _sample_store(tmp_path)
    from flowgraph.store.embedded import Store

    relations = Store.open(store).read("relations")
    party = relations["party_a"][0]
    other = relations["party_b"][0]
    r = invoke("--store", store, "links", party, "--json")
    assert r.exit_code == 0
    data = json.loads(r.stdout)
    ids = {p["party_id"] for p in data["parties"]}
    assert party in ids and other in ids
    chain = next(p["chain"] for p in data["parties"] if p["party_id"] == other)
    assert chain[0] == {"party": party} and chain[-1]["party"] == other
    assert all(a["chain"][-1] == {"owns": a["account_id"]} for a in data["accounts"])
    r0 = json.loads(invoke("--store", store, "links", party, "--depth", "0", "--json").stdout)
    assert [p["party_id"] for p in r0["parties"]] == [party]
    r = invoke("--store", store, "links", party)
    assert r.exit_code == 0 and party in r.stdout


def test_cycles_codecraft_layout(tmp_path):
    from tests.helpers import CODECRAFT

    if not CODECRAFT.exists():
        import pytest

        pytest.skip("no CodeCraft data")
    for name, extra in (("FirstRound_std", []), ("SecondRound_std", ["--amount-ratio", "0.2:3"])):
        out = tmp_path / f"{name}.txt"
        r = invoke("cycles", "--edges", CODECRAFT / name / "test_data.txt", "--out", out, *extra)
        assert r.exit_code == 0, r.output
        assert out.read_text().split() == (CODECRAFT / name / "result.txt").read_text().split()
    r = invoke("cycles", "--edges", CODECRAFT / "FirstRound_std" / "test_data.txt", "--amount-ratio", "bad")
    assert r.exit_code == 2


def test_cycles_on_store(tmp_path):
    store = _sample_store(tmp_path)
    r = invoke("--store", store, "cycles", "--temporal", "--window-days", "30", "--max-hops", "6")
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert int(lines[0]) == len(lines) - 1 >= 4  # the sample injects 4 transfer cycles
