"""The CLI driven through typer's runner: exit codes, stdout, stderr."""

from __future__ import annotations

import json

from conftest import FINBENCH
from typer.testing import CliRunner

from cli import app

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
