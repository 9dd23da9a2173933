"""An ingest racing a score: the day's alerts are computed from one snapshot and labelled
with that snapshot's id, whichever of the two finishes first."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from flowgraph.ingest.load import ingest_paths
from flowgraph.rules.batch import score_days
from flowgraph.rules.pack import load_pack
from flowgraph.store.embedded import Store

DAY = date(2024, 3, 31)
BANK = {
    "parties.csv": "party_id,kind\nP1,person\nP2,person\nP3,company\n",
    "accounts.csv": "account_id,owner_id\nA1,P1\nA2,P2\nA3,P3\n",
    "loans.csv": "loan_id,borrower_id,amount,payment_mode\nL1,P1,1000.00,self\n",
    "disbursements.csv": "loan_id,account_id,amount,ts\nL1,A1,1000.00,2024-03-01T01:00:00Z\n",
    "transactions.csv": (
        "tx_id,ts,src_account,dst_account,amount\n"
        "t1,2024-03-02T00:00:00Z,A1,A3,900.00\nt2,2024-03-03T00:00:00Z,A3,A2,800.00\n"
    ),
    "relations.csv": "party_a,party_b,relation,since\nP1,P2,spouse,2020-01-01\n",
}
# booked late, within the day's window: a second return, so the day's flow-back alert changes
LATE = "tx_id,ts,src_account,dst_account,amount\nt3,2024-03-04T00:00:00Z,A3,A1,100.00\n"


@pytest.fixture(scope="module")
def bank(tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("race")
    src = tmp / "bank"
    src.mkdir()
    for name, text in BANK.items():
        (src / name).write_text(text)
    (tmp / "late").mkdir()
    late = tmp / "late" / "transactions.csv"
    late.write_text(LATE)
    base = Store.init(tmp / "base")
    ingest_paths(base, [src])
    expected = {}
    for name, extra in (("before", []), ("after", [late])):
        s = Store(shutil.copytree(base.root, tmp / name))
        if extra:
            ingest_paths(s, extra)
        score_days(s, [DAY], load_pack())
        expected[s.snapshot_id] = _alerts(s)
    assert len(expected) == 2 and len(set(map(str, expected.values()))) == 2  # the late row matters
    return {"base": base.root, "late": late, "expected": expected, "tmp": tmp}


def _alerts(store: Store) -> list[dict]:
    part = store.root / "alerts" / f"date={DAY}"
    return pl.read_parquet(part / "alerts.parquet").drop("scored_at").to_dicts()


def _label(store: Store) -> str:
    return json.loads((store.root / "alerts" / f"date={DAY}" / "_manifest.json").read_text())["snapshot_id"]


def test_ingest_during_a_score_changes_neither_its_data_nor_its_label(bank, tmp_path):
    """The ingest runs at a fixed point inside the score (its first progress message,
    after the disbursements are read, before the transactions of the paths are): the
    score still reads and labels the snapshot it began with, whose files the ingest's
    clean-up leaves in place."""
    store = Store(shutil.copytree(bank["base"], tmp_path / "s"))
    first = store.snapshot_id
    raced = []

    def progress(_msg: str) -> None:
        if not raced:
            raced.append(ingest_paths(Store(store.root), [bank["late"]]))

    score_days(store, [DAY], load_pack(), progress=progress)
    assert raced and raced[0]["changed"] and store.snapshot_id != first
    assert _label(store) == first
    assert _alerts(store) == bank["expected"][first]
    run = json.loads((store.root / "runs.jsonl").read_text().splitlines()[-1])
    assert run["snapshot_id"] == first
    assert not list((store.root / "pins").glob("*.json"))  # the pin is gone
    # a re-score now reads and labels the new snapshot
    raced_snapshot = store.snapshot_id
    score_days(store, [DAY], load_pack())
    assert _label(store) == raced_snapshot and _alerts(store) == bank["expected"][raced_snapshot]
    # the files only the old snapshot used are collected by the next write
    (tmp_path / "accounts.csv").write_text("account_id,owner_id\nA9,P3\n")
    ingest_paths(store, [tmp_path / "accounts.csv"])
    files = {p.relative_to(store.root).as_posix() for p in (store.root / "tables").rglob("*.parquet")}
    assert files == {e["file"] for e in store.manifest()["tables"].values()}


SCORE = "import sys; from flowgraph.cli import app; sys.argv = ['flowgraph', *sys.argv[1:]]; app()"


@pytest.mark.parametrize("delay", [0.0, 3.5])  # the ingest before or while the score runs
def test_score_and_ingest_in_two_processes(bank, tmp_path, delay):
    """Real processes, the ingest started at different moments of the score: whatever the
    timing, the partition's label names the snapshot its alerts were computed from."""
    store = Store(shutil.copytree(bank["base"], tmp_path / "s"))
    score = subprocess.Popen([sys.executable, "-c", SCORE, "--store", str(store.root), "score", "--date", str(DAY)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=Path(__file__).resolve().parents[2])
    time.sleep(delay)
    ingest_paths(Store(store.root), [bank["late"]])
    _, err = score.communicate(timeout=300)
    assert score.returncode == 0, err.decode()
    label = _label(store)
    assert label in bank["expected"]
    assert _alerts(store) == bank["expected"][label]
