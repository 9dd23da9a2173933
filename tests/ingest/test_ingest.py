"""Ingest: validation, quarantine, dedupe, idempotence, atomicity."""

from __future__ import annotations

import csv
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowgraph.core.errors import IngestError
from flowgraph.core.values import parse_amount, parse_ts
from flowgraph.ingest.load import ingest_paths
from flowgraph.ingest.read import table_for_file
from flowgraph.store.embedded import Store

HEADER = ["tx_id", "ts", "src_account", "dst_account", "amount", "channel"]

# each defect: (column, bad value, words the reason must contain)
DEFECTS = [
    ("amount", "", "missing required value"),
    ("amount", "abc", "unparsable number"),
    ("amount", "1e5", "unparsable number"),
    ("amount", "1,000.00", "unparsable number"),
    ("amount", "-5.00", "negative amount"),
    ("amount", "1.234", "more than 2 decimals"),
    ("ts", "2024-13-01", "unparsable timestamp"),
    ("ts", "yesterday", "unparsable timestamp"),
    ("ts", "", "missing required value"),
    ("src_account", "", "missing required value"),
    ("dst_account", "  ", "missing required value"),
    ("amount", "NaN", "unparsable number"),
    ("amount", "inf", "unparsable number"),
    ("amount", "1.505", "more than 2 decimals"),
    ("amount", "١٢", "unparsable number"),
    ("ts", "1709251200", "epoch seconds are not read"),
    ("ts", "123456789012345", "15 digits"),
    ("ts", "2024-03-01T08:00:00+25:00", "outside ±14:00"),
    ("ts", "2024-03-01T08:00:00+99:99", "outside ±14:00"),
    ("ts", "20240230", "not a date YYYYMMDD"),
    ("ts", "2200-01-01", "outside 1900-01-01"),
]

good_amount = st.builds(
    lambda whole, frac: f"{whole}.{frac:02d}" if frac >= 0 else str(whole),
    st.integers(0, 10**12),
    st.integers(-1, 99),
)
good_ts = st.one_of(
    st.integers(10**10, 7_258_118_399_999).map(str),  # epoch ms: 11-13 digits, before 2200
    st.builds(
        lambda d, h, m, s, ms: f"2024-{1 + d // 28:02d}-{1 + d % 28:02d}T{h:02d}:{m:02d}:{s:02d}.{ms:03d}Z",
        st.integers(0, 335), st.integers(0, 23), st.integers(0, 59), st.integers(0, 59), st.integers(0, 999),
    ),
    st.builds(lambda d: f"2023-{1 + d // 28:02d}-{1 + d % 28:02d}", st.integers(0, 335)),
)


def write_csv(path: Path, rows: list[list[str]], header=HEADER, delimiter=",") -> None:
    with open(path, "w", newline="") as f:
        w = csv.writer(f, delimiter=delimiter)
        w.writerow(header)
        w.writerows(rows)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    n_good=st.integers(0, 30),
    bad=st.lists(st.tuples(st.sampled_from(range(len(DEFECTS))), st.integers(0, 10**6)), max_size=15),
    amounts=st.lists(good_amount, min_size=30, max_size=30),
    stamps=st.lists(good_ts, min_size=30, max_size=30),
    conflicts=st.integers(0, 3),
    seed=st.integers(0, 1000),
)
def test_bad_rows_quarantined_good_rows_loaded(tmp_path_factory, n_good, bad, amounts, stamps, conflicts, seed):
    tmp = tmp_path_factory.mktemp("ing")
    good = [[f"g{i}", stamps[i], f"A{i % 5}", f"B{i % 7}", amounts[i], "transfer"] for i in range(n_good)]
    bad_rows = []
    for j, (d, _salt) in enumerate(bad):
        col, value, _ = DEFECTS[d]
        row = [f"bad{j}", "2024-01-01T00:00:00Z", "X", "Y", "1.00", "transfer"]
        row[HEADER.index(col)] = value
        bad_rows.append((row, d))
    conflict_rows = [[r[0], r[1], r[2], r[3], str(parse_amount(r[4]) + 1) , "x"] for r in good[:conflicts]]
    rows = [("good", r) for r in good] + [("bad", r) for r in bad_rows]
    random.Random(seed).shuffle(rows)
    ordered = [r if kind == "good" else r[0] for kind, r in rows] + conflict_rows
    src = tmp / "transactions.csv"
    write_csv(src, ordered)
    store = Store.init(tmp / "store")
    report = ingest_paths(store, [src])
    t = report["tables"]["transactions"]
    n_conflicts = min(conflicts, n_good)
    assert t["loaded"] == n_good
    assert t["rejected"] == len(bad_rows) + n_conflicts
    assert t["loaded"] + t["rejected"] == len(ordered)
    loaded = store.read("transactions").sort("tx_id")
    assert sorted(loaded["tx_id"].to_list()) == sorted(r[0] for r in good)
    by_id = {r[0]: r for r in good}
    for rec in loaded.iter_rows(named=True):
        src_row = by_id[rec["tx_id"]]
        assert rec["amount"] == parse_amount(src_row[4])
        assert rec["ts"] == parse_ts(src_row[1])
    if t["rejected"]:
        q = pl.read_csv(report["quarantine"]["transactions"], infer_schema=False)
        assert q.height == t["rejected"]
        reasons = dict(zip(q["tx_id"].to_list(), q["reason"].to_list(), strict=True))
        for row, d in bad_rows:
            col, _, words = DEFECTS[d]
            assert f"column '{col}'" in reasons[row[0]] and words in reasons[row[0]]
            assert reasons[row[0]].startswith(f"{src} row ")
        for row in conflict_rows:
            assert "same key with different content" in q.filter(pl.col("amount") == row[4])["reason"][0]
    else:
        assert "transactions" not in report["quarantine"]


def test_reingest_is_idempotent(tmp_path):
    src = tmp_path / "transactions.csv"
    write_csv(src, [["t1", "2024-01-01", "a", "b", "10.00", ""], ["t2", "2024-01-02", "b", "a", "5", ""]])
    store = Store.init(tmp_path / "s")
    first = ingest_paths(store, [src])
    files_before = sorted(p.name for p in (tmp_path / "s" / "tables").rglob("*.parquet"))
    second = ingest_paths(store, [src])
    assert second["snapshot_id"] == first["snapshot_id"] and not second["changed"]
    assert second["tables"]["transactions"] == {"loaded": 0, "rejected": 0, "duplicates": 2}
    assert sorted(p.name for p in (tmp_path / "s" / "tables").rglob("*.parquet")) == files_before


def test_existing_row_wins_over_conflicting_new_row(tmp_path):
    a, b = tmp_path / "transactions.csv", tmp_path / "transactions_2.csv"
    write_csv(a, [["t1", "2024-01-01", "a", "b", "10.00", ""]])
    write_csv(b, [["t1", "2024-01-01", "a", "b", "11.00", ""], ["t9", "2024-01-01", "a", "b", "1", ""]])
    store = Store.init(tmp_path / "s")
    ingest_paths(store, [a])
    rep = ingest_paths(store, [b])
    assert rep["tables"]["transactions"]["loaded"] == 1
    q = pl.read_csv(rep["quarantine"]["transactions"], infer_schema=False)
    assert q["amount"].to_list() == ["11.00"]
    assert "already in the store" in q["reason"][0] and "tx_id='t1'" in q["reason"][0]
    assert store.read("transactions").filter(pl.col("tx_id") == "t1")["amount"][0] == 1000


def test_pipe_delimiter_parquet_and_extra_columns(tmp_path):
    p = tmp_path / "accounts.psv"
    write_csv(p, [["A1", "p1", "brokerage", "x"]], header=["account_id", "owner_id", "category", "nickname"], delimiter="|")
    pq = tmp_path / "parties.parquet"
    from datetime import datetime

    pl.DataFrame(
        {"party_id": ["p1"], "kind": ["Person"], "seen": [datetime(2024, 1, 1)]},
        schema_overrides={"seen": pl.Datetime("ms")},
    ).write_parquet(pq)
    store = Store.init(tmp_path / "s")
    rep = ingest_paths(store, [p, pq])
    assert rep["tables"]["accounts"]["loaded"] == 1 and rep["tables"]["parties"]["loaded"] == 1
    acc = store.read("accounts")
    assert acc["category"][0] == "brokerage" and acc["nickname"][0] == "x"
    parties = store.read("parties")
    assert parties["kind"][0] == "person" and parties["seen"][0] == "2024-01-01T00:00:00.000Z"


def test_missing_required_column_names_file_and_column(tmp_path):
    p = tmp_path / "loans.csv"
    write_csv(p, [["L1", "9"]], header=["loan_id", "amount"])
    store = Store.init(tmp_path / "s")
    before = store.snapshot_id
    with pytest.raises(IngestError, match=r"loans\.csv: missing required column\(s\) borrower_id"):
        ingest_paths(store, [p])
    assert store.snapshot_id == before


def test_table_recognised_from_file_name():
    assert table_for_file(Path("transactions.csv")) == "transactions"
    assert table_for_file(Path("account_2024.parquet")) == "accounts"
    assert table_for_file(Path("Loans.CSV")) == "loans"
    assert table_for_file(Path("labels.parquet")) is None


def test_failed_manifest_swap_leaves_previous_snapshot(tmp_path, monkeypatch):
    src = tmp_path / "transactions.csv"
    write_csv(src, [["t1", "2024-01-01", "a", "b", "1", ""]])
    store = Store.init(tmp_path / "s")
    ingest_paths(store, [src])
    before = (tmp_path / "s" / "manifest.json").read_bytes()
    write_csv(src, [["t2", "2024-01-01", "a", "b", "1", ""]])

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr("flowgraph.store.embedded.atomic_write_bytes", boom)
    with pytest.raises(OSError):
        ingest_paths(store, [src])
    assert (tmp_path / "s" / "manifest.json").read_bytes() == before
    assert store.read("transactions")["tx_id"].to_list() == ["t1"]


KILL_SCRIPT = """
import sys
from flowgraph.store.embedded import Store
from flowgraph.ingest.load import ingest_paths
ingest_paths(Store.init(sys.argv[1]), [sys.argv[2]])
"""


def test_kill_during_ingest_keeps_previous_snapshot(tmp_path):
    store_dir = tmp_path / "s"
    small = tmp_path / "transactions.csv"
    write_csv(small, [["t0", "2024-01-01", "a", "b", "1", ""]])
    store = Store.init(store_dir)
    ingest_paths(store, [small])
    old = store.snapshot_id
    big = tmp_path / "more" / "transactions.csv"
    big.parent.mkdir()
    n = 300_000
    pl.DataFrame(
        {
            "tx_id": [f"k{i:07d}" for i in range(n)],
            "ts": [str(1_700_000_000_000 + i) for i in range(n)],
            "src_account": [f"A{i % 997}" for i in range(n)],
            "dst_account": [f"B{i % 991}" for i in range(n)],
            "amount": [f"{i}.{i % 100:02d}" for i in range(n)],
        }
    ).write_csv(big)
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    rng = random.Random(7)
    outcomes = set()
    # kill points move later each round so that, however fast the machine, early rounds land
    # before the manifest swap and a later one may land after it
    for delay in (0.3, 0.7, 1.1, 1.6, 2.2, 3.0):
        proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(store_dir), str(big)], env=env)
        time.sleep(delay + rng.uniform(0.0, 0.2))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        snap = Store.open(store_dir).snapshot_id
        assert snap == old or Store.open(store_dir).status()["tables"]["transactions"]["rows"] == n + 1
        outcomes.add(snap == old)
        # every table file the manifest names exists and reads
        for table in ("transactions",):
            assert Store.open(store_dir).read(table).height in (1, n + 1)
        if snap != old:
            break
    rep = ingest_paths(Store.open(store_dir), [big])
    assert Store.open(store_dir).status()["tables"]["transactions"]["rows"] == n + 1
    assert rep["rejected"] == 0
    assert json.loads((store_dir / "manifest.json").read_text())["snapshot_id"] != old
    assert True in outcomes  # at least one kill landed before the swap


def test_input_column_named_reason_is_kept_in_quarantine(tmp_path):
    p = tmp_path / "classifications.csv"
    write_csv(p, [["L1", "2024-01-01", "normal", "manual", "ok"], ["L2", "2024-01-01", "great", "manual", "why"]],
              header=["loan_id", "as_of", "grade", "source", "reason"])
    store = Store.init(tmp_path / "s")
    rep = ingest_paths(store, [p])
    assert rep["tables"]["classifications"] == {"loaded": 1, "rejected": 1, "duplicates": 0}
    q = pl.read_csv(rep["quarantine"]["classifications"], infer_schema=False)
    assert q["input.reason"].to_list() == ["why"]
    assert "column 'grade': value 'great' not in allowed set" in q["reason"][0]
    assert store.read("classifications")["reason"].to_list() == ["ok"]


def test_table_from_the_header_when_the_name_does_not_say(tmp_path):
    """``new_transactions.csv`` holds transactions: its header says so. A header that fits
    two tables equally (disbursements and repayments without their ids) is an error naming
    both, and a folder's file that fits nothing is skipped as before."""
    new = tmp_path / "new_transactions.csv"
    write_csv(new, [["t1", "2024-01-01", "a", "b", "1.00", ""]])
    pq = tmp_path / "extract_2024.parquet"
    pl.DataFrame({"party_id": ["p1"], "kind": ["person"]}).write_parquet(pq)
    store = Store.init(tmp_path / "s")
    rep = ingest_paths(store, [new, pq])
    assert rep["tables"]["transactions"]["loaded"] == 1 and rep["tables"]["parties"]["loaded"] == 1
    both = tmp_path / "money_events.csv"
    both.write_text("loan_id,account_id,amount,ts\nL1,A1,1.00,2024-01-01\n")
    with pytest.raises(IngestError, match="fits disbursements and repayments equally"):
        ingest_paths(store, [both])
    assert ingest_paths(store, [both], table="repayments")["tables"]["repayments"]["loaded"] == 1
    folder = tmp_path / "drop"
    folder.mkdir()
    (folder / "notes.csv").write_text("a,b\n1,2\n")
    (folder / "today.csv").write_text("party_id,kind\np2,company\n")
    assert ingest_paths(store, [folder])["tables"] == {"parties": {"loaded": 1, "rejected": 0, "duplicates": 0}}
