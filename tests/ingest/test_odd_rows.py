"""Every odd row of issue 21 ingested into one small bank, then every command run on it.

Each odd row either loads as exactly the value written or is quarantined with its reason;
no loaded row may stop a command: each exits 0, or 1 with a clear message — never an
internal error.
"""

from __future__ import annotations

import decimal
import json
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl
import pytest
from typer.testing import CliRunner

from flowgraph.cli import app

HUGE = "9999999999999999.99"
BASE = {
    "parties.csv": "party_id,kind,name,phone,region\nP1,person,张三,13800000001,北京\nP2,person,李四,,北京\nP3,company,某某有限公司,,上海\n",
    "accounts.csv": "account_id,owner_id,category\nA1,P1,\nA2,P2,\nA3,P3,\nA4,P3,brokerage\nAH,P3,\n",
    "loans.csv": (
        "loan_id,borrower_id,amount,payment_mode,maturity_date,rate,region\n"
        "L1,P1,1000.00,self,2025-03-01,0.05,北京\nL2,P3,500.00,entrusted,2025-06-01,0.04,上海\n"
    ),
    "disbursements.csv": "loan_id,account_id,amount,ts\nL1,A1,1000.00,2024-03-01T01:00:00Z\nL2,A3,500.00,2024-04-01T01:00:00Z\n",
    "transactions.csv": (
        "tx_id,ts,src_account,dst_account,amount\n"
        "t1,2024-03-02T00:00:00Z,A1,A3,900.00\nt2,2024-03-03T00:00:00Z,A3,A2,800.00\n"
        "t3,2024-04-02T00:00:00Z,A3,A4,400.00\nt4,2024-04-03T00:00:00Z,A4,A1,300.00\nt5,2024-04-04T00:00:00Z,A1,A3,200.00\n"
    ),
    "relations.csv": "party_a,party_b,relation,since\nP1,P2,spouse,2020-01-01\n",
    "repayments.csv": "loan_id,account_id,amount,ts\nL1,A1,100.00,2024-04-01T00:00:00Z\n",
    "classifications.csv": "loan_id,as_of,grade,source\nL1,2024-03-31,normal,manual\n",
}
# one file per odd case; (file, content, loaded rows, quarantined rows)
ODD = [
    ("transactions_fullwidth.csv", "tx_id,ts,src_account,dst_account,amount\no1,2024-03-05,A1,A2,０５\no2,２０２４－０３－０５,A1,A2,1.2３\n", 2, 0),
    ("transactions_offsets.csv", "tx_id,ts,src_account,dst_account,amount\no3,2024-03-05T08:00:00+99:99,A1,A2,1\no4,2024-03-05T08:00:00+25:00,A1,A2,1\no5,2024-03-05T08:00:00+14:00,A1,A2,1\n", 1, 2),
    ("transactions_compact.csv", "tx_id,ts,src_account,dst_account,amount\no6,20240301,A1,A2,1\n", 1, 0),
    ("transactions_epoch.csv", "tx_id,ts,src_account,dst_account,amount\no7,1709251200,A1,A2,1\no8,123456789012345,A1,A2,1\no9,1709251200000,A1,A2,1\n", 1, 2),
    ("transactions_huge.csv", "tx_id,ts,src_account,dst_account,amount\n" + "".join(f"h{i},2024-05-01T00:00:{i:02d}Z,A3,AH,{HUGE}\n" for i in range(12)), 12, 0),
    ("transactions_too_huge.csv", "tx_id,ts,src_account,dst_account,amount\no10,2024-05-02,A3,AH,92233720368547758.07\no11,2024-05-02,A3,AH,1e308\n", 0, 2),
    ("transactions_unknown.csv", "tx_id,ts,src_account,dst_account,amount\no12,2024-03-06,Z1,Z2,5\no13,2024-03-06,A1,A1,5\no14,2024-03-06,A1,外部账户１,5\n", 3, 0),
    ("transactions_extreme_time.csv", "tx_id,ts,src_account,dst_account,amount\no15,1900-01-01,A1,A2,1\no16,2199-12-31T23:59:59.999Z,A2,A1,1\no17,1969-07-20T20:17:40Z,A1,A2,0\n", 3, 0),
    ("transactions_nan.csv", "tx_id,ts,src_account,dst_account,amount\no18,2024-03-07,A1,A2,NaN\no19,2024-03-07,A1,A2,inf\no20,2024-03-07,A1,A2,-0.01\n", 0, 3),
    ("disbursements_odd.csv", (
        "loan_id,account_id,amount,ts\nL999,A1,5.00,2024-03-10\nL1,Z9,5.00,2024-03-11\nL1,A1,0.00,2024-03-12\n"
        f"L2,A3,{HUGE},2024-05-01\nL2,A3,{HUGE},2024-05-02\nL1,A1,1.00,1900-01-01\n"
    ), 6, 0),
    ("disbursements_huge.csv", "loan_id,account_id,amount,ts\n" + "".join(f"L2,A3,{HUGE},2024-06-{i + 1:02d}\n" for i in range(10)), 10, 0),
    ("loans_odd.csv", (
        "loan_id,borrower_id,amount,rate,maturity_date\nL3,P404,10.00,0.1,\nL4,P1,10.00,nan,\nL5,P1,10.00,inf,\n"
        "L6,P1,10.00,-3,\nL7,P1,10.00,1e308,\nL8,P1,0.00,,2199-12-31\n"
    ), 2, 4),
    ("relations_odd.csv", "party_a,party_b,relation,since\nP1,P1,spouse,2020-01-01\nP1,P404,parent,2020-01-01\nP1,P3,legal_rep,2024-11-01\n", 3, 0),
    ("repayments_odd.csv", "loan_id,account_id,amount,ts\nL1,A1,100.00,2024-05-01T10:00:00Z\nL1,A1,100.00,2024-05-01T10:00:00Z\nL998,A1,1.00,2024-05-01\n", 3, 0),
    ("classifications_odd.csv", "loan_id,as_of,grade\nL5,2024-03-31,loss\n", 1, 0),
    ("repayments_huge.csv", "loan_id,account_id,amount,ts\n" + "".join(f"L2,AH,{HUGE},2024-07-{i + 1:02d}\n" for i in range(12)), 12, 0),
]


def _parquet_tz(folder: Path) -> Path:
    """08:00 in Shanghai, written time-zone aware: it is 00:00Z."""
    path = folder / "transactions_tz.parquet"
    pl.DataFrame({
        "tx_id": ["pq1"], "ts": pl.Series([datetime(2024, 3, 8, 8, 0, tzinfo=ZoneInfo("Asia/Shanghai"))]).dt.convert_time_zone("Asia/Shanghai"),
        "src_account": ["A1"], "dst_account": ["A2"],
        "amount": pl.Series([decimal.Decimal("2.5000")], dtype=pl.Decimal(18, 4)),
    }).write_parquet(path)
    return path


runner = CliRunner()


def invoke(store, *args):
    return runner.invoke(app, ["--store", str(store), *[str(a) for a in args]])


@pytest.fixture(scope="module")
def odd_store(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("odd")
    base = tmp / "base"
    base.mkdir()
    for name, text in BASE.items():
        (base / name).write_text(text, encoding="utf-8")
    odd = tmp / "odd"
    odd.mkdir()
    for name, text, _, _ in ODD:
        (odd / name).write_text(text, encoding="utf-8")
    store = tmp / "store"
    r = invoke(store, "ingest", base, "--json")
    assert r.exit_code == 0, r.output
    reports = {}
    for name, *_ in ODD:
        r = invoke(store, "ingest", odd / name, "--json")
        assert r.exit_code == 0, r.output
        reports[name] = json.loads(r.stdout)
    r = invoke(store, "ingest", _parquet_tz(odd), "--json")
    assert r.exit_code == 0, r.output
    reports["transactions_tz.parquet"] = json.loads(r.stdout)
    return store, reports


def test_each_odd_row_loads_exactly_or_is_quarantined(odd_store):
    store, reports = odd_store
    for name, _, loaded, rejected in ODD:
        rep = reports[name]
        assert (rep["loaded"], rep["rejected"]) == (loaded, rejected), (name, rep)
    from flowgraph.store.embedded import Store

    s = Store.open(store)
    tx = {r["tx_id"]: r for r in s.read("transactions").iter_rows(named=True)}
    assert tx["o1"]["amount"] == 500 and tx["o2"]["amount"] == 123 and tx["o2"]["ts"] == 1709596800000
    assert tx["o5"]["ts"] == 1709575200000  # 08:00+14:00 = 18:00Z the day before
    assert tx["o6"]["ts"] == 1709251200000  # 20240301 is a date, not epoch ms
    assert tx["o9"]["ts"] == 1709251200000
    assert tx["pq1"]["ts"] == 1709856000000 and tx["pq1"]["amount"] == 250  # 2024-03-08T00:00Z
    assert tx["o17"]["ts"] == -14182940000
    assert all(tx[f"h{i}"]["amount"] == 999999999999999999 for i in range(12))
    loans = s.read("loans")
    assert sorted(loans["loan_id"].to_list()) == ["L1", "L2", "L3", "L8"]
    assert len(s.read("repayments")) == 16  # both same-millisecond repayments kept
    assert reports["disbursements_odd.csv"]["warnings"] == {
        "disbursements.account_id": 1, "disbursements.loan_id": 1, "disbursements.over_loan_amount": 2,
    }
    assert reports["transactions_unknown.csv"]["warnings"] == {
        "transactions.self_transfer": 1, "transactions.src_account/dst_account": 1,
    }


COMMANDS = [
    ("score", "--all"),
    ("score", "--date", "2024-05-01"),
    ("score", "--from", "2024-02-28", "--to", "2024-03-12"),
    ("trace", "--all"),
    ("trace", "L999"),
    ("trace", "L1", "L2"),
    ("report",),
    ("report", "--by", "region"),
    ("report", "--by", "grade"),
    ("report", "--by", "week"),
    ("account", "AH"),
    ("account", "A1"),
    ("account", "Z9"),
    ("account", "外部账户１"),
    ("loan", "L1"),
    ("loan", "L2"),
    ("loan", "L8"),
    ("history",),
    ("history", "--borrower", "P1"),
    ("cycles", "--limit", "50"),
    ("cycles", "--temporal", "--limit", "50"),
    ("alerts",),
    ("classify", "--as-of", "2024-06-30"),
    ("links", "P1", "--depth", "2"),
    ("paths", "A1", "A2"),
    ("status", "--verify"),
]


@pytest.mark.parametrize("args", COMMANDS, ids=[" ".join(c) for c in COMMANDS])
def test_every_command_runs_after_the_odd_rows(odd_store, args):
    store, _ = odd_store
    for as_json in (False, True):
        r = invoke(store, *args, *(["--json"] if as_json else []))
        assert "internal error" not in r.output, r.output
        assert r.exit_code == 0, r.output


def test_money_totals_are_exact_at_the_bounds(odd_store):
    """Twelve amounts of 9,999,999,999,999,999.99: totals are exact, never wrapped."""
    store, _ = odd_store
    r = invoke(store, "account", "AH", "--json")
    data = json.loads(r.stdout)
    assert data["totals"]["inflow"] == "119999999999999999.88"
    r = invoke(store, "report", "--by", "month", "--json")
    data = json.loads(r.stdout)
    may = next(g for g in data["groups"] if g["month"] == "2024-05")
    june = next(g for g in data["groups"] if g["month"] == "2024-06")
    assert may["disbursed_amount"] == "19999999999999999.98"
    assert june["disbursed_amount"] == "99999999999999999.90"
    total = decimal.Decimal(data["totals"]["disbursed_amount"])
    assert total == sum(decimal.Decimal(g["disbursed_amount"]) for g in data["groups"])
    assert total > decimal.Decimal("119999999999999999")
    # repayments: the loan's status and the history sum them exactly too
    r = invoke(store, "loan", "L2", "--as-of", "2024-12-31", "--json")
    assert json.loads(r.stdout)["repayment_status"]["repaid_amount"] == "119999999999999999.88"
    r = invoke(store, "history", "--borrower", "P3", "--json")
    assert json.loads(r.stdout.splitlines()[0])["repaid"] == "119999999999999999.88"


def test_evidence_for_alerts_and_loans(odd_store, tmp_path):
    store, _ = odd_store
    assert invoke(store, "score", "--all").exit_code == 0  # on its own, not by test order
    r = invoke(store, "alerts", "--json")
    assert r.exit_code == 0, r.output
    alerts = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
    assert any(a["kind"] == "flow_back" for a in alerts), "the small bank has a flow-back to the spouse's account"
    # every alert with at least one hop per path, and loan L2 (its alerts are such)
    targets = [a["alert_id"] for a in alerts if all(p["hops"] for p in a["paths"])] + ["L2"]
    for target in targets:
        r = invoke(store, "evidence", target, "--out", tmp_path / target)
        assert "internal error" not in r.output, r.output
        assert r.exit_code == 0, r.output


def test_evidence_for_a_loan_repaid_from_its_disbursement_account(odd_store, tmp_path):
    store, _ = odd_store
    r = invoke(store, "evidence", "L1", "--out", tmp_path / "L1")
    assert "internal error" not in r.output and r.exit_code == 0, r.output
