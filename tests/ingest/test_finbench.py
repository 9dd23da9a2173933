"""FinBench SF0.01 import: row counts equal the files' rows."""

from __future__ import annotations

import polars as pl

from tests.helpers import FINBENCH


def rows(name: str) -> int:
    return pl.scan_csv(FINBENCH / name, separator="|", infer_schema=False, quote_char=None).select(pl.len()).collect().item()


def test_finbench_counts(finbench_store):
    tables = finbench_store.status()["tables"]
    assert tables["transactions"]["rows"] == rows("AccountTransferAccount.csv") + rows("AccountWithdrawAccount.csv") == 17314
    assert tables["disbursements"]["rows"] == rows("LoanDepositAccount.csv") == 2758
    assert tables["loans"]["rows"] == rows("Loan.csv") == 1376
    assert tables["accounts"]["rows"] == rows("Account.csv") == 2055
    assert tables["parties"]["rows"] == rows("Person.csv") + rows("Company.csv") == 1171
    assert tables["repayments"]["rows"] == rows("AccountRepayLoan.csv") == 2747
    assert tables["relations"]["rows"] == sum(
        rows(f) for f in ("PersonGuaranteePerson.csv", "CompanyGuaranteeCompany.csv", "PersonInvestCompany.csv", "CompanyInvestCompany.csv")
    )
    assert tables["classifications"]["rows"] == 0


def test_finbench_mapping(finbench_store):
    parties = finbench_store.read("parties")
    assert parties.filter(pl.col("party_id").str.starts_with("person:")).height == rows("Person.csv")
    assert set(parties["kind"].unique().to_list()) == {"person", "company"}
    loans = finbench_store.read("loans")
    assert loans["borrower_id"].null_count() == 0
    assert loans["borrower_id"].str.contains(r"^(person|company):\d+$").all()
    tx = finbench_store.read("transactions")
    assert set(tx["channel"].unique().to_list()) == {"transfer", "withdraw"}
    # 2020-08-29 15:28:58.647 UTC
    first = tx.filter(pl.col("tx_id") == "transfer:1")
    assert first["ts"][0] == 1598714938647 and first["amount"][0] == 385189185
    rel = finbench_store.read("relations")
    assert set(rel["relation"].unique().to_list()) == {"guarantor", "investor"}
    # no derived shared_phone/shared_address: FinBench parties carry no phone or address
    assert "phone" not in parties.columns or parties["phone"].null_count() == parties.height


def test_finbench_reingest_keeps_snapshot(finbench_store):
    from flowgraph.ingest.finbench import read_finbench
    from flowgraph.ingest.load import ingest_frames

    before = finbench_store.snapshot_id
    rep = ingest_frames(finbench_store, read_finbench(FINBENCH))
    assert not rep["changed"] and finbench_store.snapshot_id == before
