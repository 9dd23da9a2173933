"""Event keys (two real events in one millisecond are both kept) and the checks across
tables (warnings, counted; pending until the referenced table arrives)."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from flowgraph.core.schema import CHECKS, REFERENCES
from flowgraph.ingest.load import ingest_paths
from flowgraph.store.embedded import Store


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_same_millisecond_repayments_are_both_kept_and_reingest_changes_nothing(tmp_path):
    rep = _write(tmp_path / "repayments.csv", (
        "loan_id,account_id,amount,ts\n"
        "L1,A1,100.00,2024-05-01T10:00:00.000Z\n"
        "L1,A1,100.00,2024-05-01T10:00:00.000Z\n"  # a second, real repayment in the same ms
        "L1,A1,250.00,2024-05-01T10:00:00.000Z\n"
        "L1,A1,100.00,2024-06-01T10:00:00.000Z\n"
    ))
    store = Store.init(tmp_path / "s")
    first = ingest_paths(store, [rep])
    assert first["tables"]["repayments"] == {"loaded": 4, "rejected": 0, "duplicates": 0}
    got = store.read("repayments").sort("repayment_id")
    assert got["repayment_id"].to_list() == [
        "L1:A1:1714557600000:100.00", "L1:A1:1714557600000:100.00#2", "L1:A1:1714557600000:250.00",
        "L1:A1:1717236000000:100.00",
    ]
    assert got["amount"].to_list() == [10000, 10000, 25000, 10000]
    assert got["amount"].sum() == 55000

    # the same file again, and a re-ordered copy of it: nothing changes
    assert ingest_paths(store, [rep])["changed"] is False
    lines = rep.read_text().splitlines()
    shuffled = _write(tmp_path / "repayments_again.csv", "\n".join([lines[0], lines[3], lines[4], lines[2], lines[1]]) + "\n")
    again = ingest_paths(store, [shuffled])
    assert not again["changed"] and again["tables"]["repayments"] == {"loaded": 0, "rejected": 0, "duplicates": 4}

    # a later file holding one more repayment in that millisecond adds exactly that one
    # (a row added never renumbers the others)
    more = _write(tmp_path / "repayments_more.csv", "\n".join([*lines, "L1,A1,100.00,2024-05-01T10:00:00.000Z"]) + "\n")
    assert ingest_paths(store, [more])["tables"]["repayments"]["loaded"] == 1
    assert store.read("repayments")["amount"].sum() == 65000


def test_same_millisecond_disbursements_are_both_kept(tmp_path):
    d = _write(tmp_path / "disbursements.csv", (
        "loan_id,account_id,amount,ts\nL1,A1,5.00,2024-05-01\nL1,A1,5.00,2024-05-01\nL2,A1,7.00,2024-05-01\n"
    ))
    store = Store.init(tmp_path / "s")
    ingest_paths(store, [d])
    assert sorted(store.read("disbursements")["disbursement_id"].to_list()) == [
        "L1:A1:1714521600000:5.00", "L1:A1:1714521600000:5.00#2", "L2:A1:1714521600000:7.00",
    ]


def _bank(tmp: Path) -> dict[str, Path]:
    return {
        "parties": _write(tmp / "parties.csv", "party_id,kind\np1,person\np2,person\n"),
        "accounts": _write(tmp / "accounts.csv", "account_id,owner_id\nA1,p1\nA2,p2\nA3,p9\n"),
        "loans": _write(tmp / "loans.csv", "loan_id,borrower_id,amount\nL1,p1,100.00\nL2,p7,100.00\n"),
        "disbursements": _write(tmp / "disbursements.csv", (
            "loan_id,account_id,amount,ts\nL1,A1,60.00,2024-01-01\nL1,A1,60.00,2024-01-02\n"
            "L999,A1,5.00,2024-01-01\nL2,X9,1.00,2024-01-01\n"
        )),
        "repayments": _write(tmp / "repayments.csv", "loan_id,account_id,amount,ts\nL1,A1,1.00,2024-02-01\nL998,A1,1.00,2024-02-01\n"),
        "relations": _write(tmp / "relations.csv", (
            "party_a,party_b,relation,since\np1,p2,spouse,2020-01-01\np1,p1,spouse,2020-01-01\np1,p5,parent,2020-01-01\n"
        )),
        "transactions": _write(tmp / "transactions.csv", (
            "tx_id,ts,src_account,dst_account,amount\nt1,2024-01-03,A1,A2,1.00\nt2,2024-01-03,A1,Z1,1.00\n"
            "t3,2024-01-03,Z1,Z2,1.00\nt4,2024-01-03,A1,A1,1.00\n"
        )),
        "classifications": _write(tmp / "classifications.csv", "loan_id,as_of,grade\nL1,2024-03-01,normal\nL5,2024-03-01,loss\n"),
    }


EXPECTED = {
    "transactions.src_account/dst_account": 1,  # t3: both sides unknown (t2's Z1 alone is a counterparty)
    "transactions.self_transfer": 1,  # t4
    "accounts.owner_id": 1,  # A3 of p9
    "loans.borrower_id": 1,  # L2 of p7
    "disbursements.loan_id": 1,  # L999
    "disbursements.account_id": 1,  # X9
    "disbursements.over_loan_amount": 1,  # L1: 120.00 of 100.00
    "repayments.loan_id": 1,  # L998
    "relations.party_a/party_b": 1,  # p5
    "relations.self_relation": 1,  # p1 → p1
    "classifications.loan_id": 1,  # L5
}


def test_every_check_warns_once_in_one_ingest(tmp_path):
    files = _bank(tmp_path)
    store = Store.init(tmp_path / "s")
    rep = ingest_paths(store, list(files.values()))
    assert rep["rejected"] == 0 and rep["loaded"] == sum(len(p.read_text().splitlines()) - 1 for p in files.values())
    assert rep["warnings"] == EXPECTED and rep["checks_pending"] == []
    assert set(EXPECTED) == {r.name for r in REFERENCES} | set(CHECKS)  # every check is exercised
    w = pl.read_csv(rep["warnings_file"], infer_schema=False)
    assert w.height == sum(EXPECTED.values())
    row = w.filter(pl.col("check") == "disbursements.loan_id").row(0, named=True)
    assert row["source_file"] == str(files["disbursements"]) and row["row"] == "3" and "loan_id='L999'" in row["reason"]


def test_checks_wait_for_their_table_then_run_once(tmp_path):
    """Tables arriving in separate ingests, references before what they refer to: the
    checks are pending, then run on every stored row when the table arrives."""
    files = _bank(tmp_path)
    store = Store.init(tmp_path / "s")
    warnings: dict[str, int] = {}
    pending_seen = set()
    for table in ("transactions", "disbursements", "repayments", "classifications", "relations", "loans",
                  "accounts", "parties"):
        rep = ingest_paths(store, [files[table]])
        pending_seen |= set(rep["checks_pending"])
        for k, v in rep["warnings"].items():
            warnings[k] = warnings.get(k, 0) + v
    assert warnings == EXPECTED
    assert "disbursements.loan_id" in pending_seen and "transactions.src_account/dst_account" in pending_seen
    # nothing is pending any more, and a re-ingest warns about nothing (nothing is inserted)
    rep = ingest_paths(store, [files["transactions"]])
    assert rep["warnings"] == {} and rep["checks_pending"] == []
