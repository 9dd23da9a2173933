"""`neo4j export-import` files loaded by Neo4j's own `neo4j-admin database import full`.

The printed command runs as it is through ``tools/neo4j/neo4j-admin`` (Neo4j 5.26's
``org.neo4j.cli.AdminTool`` from Maven Central) into a fresh Neo4j home; a second server
(``tools/neo4j/server --home``) then serves that database, and ``index --from-neo4j`` on it
gives exactly the embedded index. Needs Java 17 and Maven (skipped without, failing when CI
is set), not the shared server.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import threading

import pytest
from typer.testing import CliRunner

from flowgraph.cli import app
from tests.helpers import copy_store
from tests.neo4j.conftest import neo4j_tools

PASSWORD = "admin-import-test"
runner = CliRunner()


def invoke(*args):
    r = runner.invoke(app, [str(a) for a in args])
    assert "Traceback" not in r.output
    assert r.exit_code == 0, r.output
    return r


def first_line(proc: subprocess.Popen, timeout: float) -> str:
    """The first stdout line of ``proc`` ('' if it exits or ``timeout`` passes first)."""
    box: list[str] = []
    reader = threading.Thread(target=lambda: box.append(proc.stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    return box[0].strip() if box else ""


@pytest.fixture(scope="module")
def imported(finbench_store, tmp_path_factory):
    """(store, export result, Bolt URI of a server on the imported database)."""
    tools = neo4j_tools()
    root = tmp_path_factory.mktemp("admin-import")
    store = copy_store(finbench_store, root / "store")
    res = json.loads(invoke("--store", store.root, "neo4j", "export-import", root / "csv", "--json").stdout)
    args = shlex.split(res["command"].replace("\\\n", " "))
    assert args[:5] == ["neo4j-admin", "database", "import", "full", "neo4j"]
    env = {**os.environ, "FLOWGRAPH_NEO4J_PASSWORD": PASSWORD}
    # cwd: neo4j-admin writes its import.report (bad entries) into the working directory
    done = subprocess.run([tools / "neo4j-admin", "--home", root / "home", *args[1:]], env=env, cwd=root,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "IMPORT DONE" in done.stdout
    server = subprocess.Popen([tools / "server", "--home", root / "home"], env=env, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        uri = first_line(server, 300)
        if not uri.startswith("bolt://"):
            server.kill()
            pytest.fail(f"tools/neo4j/server --home printed {uri!r}: {server.stderr.read()[-3000:]}")
        yield store, res, done.stdout, uri
    finally:
        server.stdin.close()  # the server stops when its stdin closes
        try:
            server.wait(60)
        except subprocess.TimeoutExpired:
            server.kill()


def test_admin_import_loads_every_row(imported):
    from flowgraph.neo4j.store import Neo4jStore

    store, res, log, uri = imported
    nodes = sum(n for f, n in res["files"].items() if f.removesuffix(".csv").split("_")[0] in ("parties", "accounts", "loans")) + 1
    rels = sum(n for f, n in res["files"].items()
               if f in ("owns.csv", "applied.csv", "related.csv", "transfers.csv", "disbursed_to.csv", "repaid.csv"))
    assert f"{nodes} nodes" in log and f"{rels} relationships" in log  # nothing dropped or skipped
    with Neo4jStore(uri, "neo4j", PASSWORD) as neo:
        status = neo.status(store)
    assert status["in_sync"] and status["snapshot_id"] == store.snapshot_id
    assert status["transfers"] == store.status()["tables"]["transactions"]["rows"]


def test_index_from_the_imported_graph_equals_the_embedded_index(imported):
    store, _, _, uri = imported
    want = json.loads(invoke("--store", store.root, "index", "--rebuild", "--json").stdout)
    got = json.loads(invoke("--store", store.root, "index", "--from-neo4j", "--neo4j-uri", uri,
                            "--neo4j-user", "neo4j", "--neo4j-password", PASSWORD, "--json").stdout)
    assert (got["edges"], got["accounts"], got["digest"]) == (want["edges"], want["accounts"], want["digest"])
