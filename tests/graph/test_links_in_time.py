"""A relation counts from its since: later relations never change an earlier day's alerts
or an earlier disbursement's trace."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from flowgraph.ingest.load import ingest_paths
from flowgraph.investigate.trace import trace_loans
from flowgraph.rules.batch import score_days
from flowgraph.rules.pack import load_pack
from flowgraph.store.embedded import Store

BANK = {
    "parties.csv": "party_id,kind\nP1,person\nP2,person\nP3,company\n",
    "accounts.csv": "account_id,owner_id\nA1,P1\nA2,P2\nA3,P3\n",
    "loans.csv": "loan_id,borrower_id,amount,payment_mode\nL1,P1,1000.00,self\n",
    "disbursements.csv": "loan_id,account_id,amount,ts\nL1,A1,1000.00,2024-03-01T01:00:00Z\n",
    # the proceeds go to P3's company account, then on to the borrower's spouse
    "transactions.csv": (
        "tx_id,ts,src_account,dst_account,amount\n"
        "t1,2024-03-02T00:00:00Z,A1,A3,900.00\nt2,2024-03-03T00:00:00Z,A3,A2,800.00\n"
    ),
    "relations.csv": "party_a,party_b,relation,since\nP1,P2,spouse,2020-01-01\n",
}


def _store(tmp: Path) -> Store:
    src = tmp / "bank"
    src.mkdir()
    for name, text in BANK.items():
        (src / name).write_text(text)
    store = Store.init(tmp / "store")
    ingest_paths(store, [src])
    return store


def test_later_relation_changes_neither_past_alerts_nor_past_traces(tmp_path):
    store = _store(tmp_path)
    day = date(2024, 3, 31)
    score_days(store, [day], load_pack())
    part = store.root / "alerts" / f"date={day}" / "alerts.parquet"
    before = part.read_bytes()
    trace_before = trace_loans(store, ["L1"])
    assert trace_before[0]["path_count"] == 1 and trace_before[0]["returned_to"][0]["account"] == "A2"

    # P3 becomes the borrower's legal representative in November: from then on A3 is on
    # the borrower's side, but not for a disbursement made in March
    later = tmp_path / "relations_nov.csv"
    later.write_text("party_a,party_b,relation,since\nP1,P3,legal_rep,2024-11-01\n")
    ingest_paths(store, [later])
    score_days(store, [day], load_pack())
    assert part.read_bytes() == before
    assert trace_loans(store, ["L1"]) == trace_before

    # the same relation dated before the disbursement does change the picture: A3 is then
    # linked and the money never left the borrower's side
    early = tmp_path / "relations_early.csv"
    early.write_text("party_a,party_b,relation,since\nP1,P3,affiliate,2024-02-01\n")
    ingest_paths(store, [early])
    assert trace_loans(store, ["L1"])[0]["path_count"] == 0
