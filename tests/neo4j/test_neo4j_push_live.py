"""`neo4j push` against the live server on a generated bank and on FinBench.

A push killed halfway (SIGKILL, no clean-up) resumes after its last recorded batch and
leaves no duplicate; a second push sends nothing; the graph then gives exactly the
embedded index (same digest). Server: tests/neo4j/conftest.py (wiped here).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from typer.testing import CliRunner

from flowgraph.cli import app
from flowgraph.neo4j.store import SYNC_FILE
from tests.helpers import ROOT, copy_store
from tests.neo4j.conftest import query, wipe

TRANSFERS = "MATCH ()-[t:TRANSFER]->() RETURN count(t) AS n, count(DISTINCT t.tx_id) AS ids"
DUPLICATE_NODES = (
    "MATCH (a:Account) WITH a.account_id AS id, count(*) AS c WHERE c > 1 RETURN count(id) AS n"
)
runner = CliRunner()


def invoke(*args):
    r = runner.invoke(app, [str(a) for a in args])
    assert "Traceback" not in r.output
    assert r.exit_code == 0, r.output
    return r


def digests(store) -> tuple[dict, dict]:
    """(embedded index --json, index --from-neo4j --json)."""
    want = json.loads(invoke("--store", store.root, "index", "--rebuild", "--json").stdout)
    got = json.loads(invoke("--store", store.root, "index", "--from-neo4j", "--json").stdout)
    return want, got


@pytest.fixture(scope="module")
def bank(tmp_path_factory):
    from flowgraph.ingest.load import ingest_paths
    from flowgraph.store.embedded import Store
    from flowgraph.synthetic.generate import generate

    root = tmp_path_factory.mktemp("push-bank")
    generate(root / "bank", "tiny", 5)
    store = Store.init(root / "store")
    ingest_paths(store, [root / "bank"])
    return store


def test_push_killed_halfway_resumes_without_duplicates(neo, bank):
    rows = bank.status()["tables"]
    n_tx = rows["transactions"]["rows"]
    state = bank.root / SYNC_FILE
    cmd = [sys.executable, "-c", "from flowgraph.cli import app; app()",
           "--store", str(bank.root), "neo4j", "push", "--batch-size", "200", "--json"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=os.environ.copy(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True)
    done = 0
    try:
        deadline = time.monotonic() + 120
        while done < 3000 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
            try:
                done = json.loads(state.read_text())["tables"].get("transactions", {}).get("rows_done", 0)
            except (OSError, ValueError, KeyError):
                pass
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)  # no clean-up, like a crash
        proc.wait(30)
    assert 3000 <= done < n_tx, (done, proc.returncode, proc.stderr.read().decode()[-2000:])
    recorded = json.loads(state.read_text())["tables"]["transactions"]["rows_done"]
    in_graph = query(neo, TRANSFERS)[0]
    assert in_graph["n"] == in_graph["ids"] >= recorded  # a batch may commit just before the kill

    res = json.loads(invoke("--store", bank.root, "neo4j", "push", "--batch-size", "1000", "--json").stdout)
    assert res["resumed"] and res["in_sync"], res
    assert res["tables"]["transactions"]["skipped"] == recorded
    assert res["tables"]["transactions"]["sent"] == n_tx - recorded
    assert res["tables"]["parties"]["sent"] == 0  # finished before the kill: not sent again
    in_graph = query(neo, TRANSFERS)[0]
    assert in_graph["n"] == in_graph["ids"] == n_tx
    assert query(neo, DUPLICATE_NODES)[0]["n"] == 0
    assert query(neo, "MATCH (a:Account) RETURN count(a) AS n")[0]["n"] == res["store"]["accounts"]

    again = json.loads(invoke("--store", bank.root, "neo4j", "push", "--json").stdout)
    assert again["batches"] == 0 and {t["sent"] for t in again["tables"].values()} == {0}

    want, got = digests(bank)
    assert (got["edges"], got["accounts"], got["digest"]) == (want["edges"], want["accounts"], want["digest"])


def test_finbench_push_gives_the_embedded_index(neo, finbench_store, tmp_path):
    store = copy_store(finbench_store, tmp_path / "fb")
    wipe(neo)
    res = json.loads(invoke("--store", store.root, "neo4j", "push", "--json").stdout)
    assert res["in_sync"], res
    n_tx = store.status()["tables"]["transactions"]["rows"]
    assert query(neo, TRANSFERS)[0].data() == {"n": n_tx, "ids": n_tx}
    status = json.loads(invoke("--store", store.root, "neo4j", "status", "--json").stdout)
    assert status["in_sync"] and status["snapshot_id"] == store.snapshot_id
    want, got = digests(store)
    assert (got["edges"], got["accounts"], got["digest"]) == (want["edges"], want["accounts"], want["digest"])
    assert got["edges"] == n_tx
