"""The live Neo4j server of the Neo4j tests: one server, shared by every module.

The server is named by ``FLOWGRAPH_NEO4J_URI``, ``_USER`` and ``_PASSWORD``
(``.ci/run`` starts ``tools/neo4j/server`` and sets them). Without them a live test is
skipped with the reason, except when ``CI`` is set: then it fails, because CI must run
every Neo4j test against the real server.

Every live module starts from an emptied database (:func:`wipe`). The tests refuse to wipe
a database holding data they did not create: it must be empty or carry the
``FlowgraphTest`` mark node that :func:`wipe` leaves.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.helpers import ROOT

NEO4J_VARS = ("FLOWGRAPH_NEO4J_URI", "FLOWGRAPH_NEO4J_USER", "FLOWGRAPH_NEO4J_PASSWORD")
MARK = "FlowgraphTest"
#: relationships first, then nodes, in small transactions: a DETACH DELETE of 10,000 busy
#: accounts at once exceeds the transaction memory pool of a 1 GB heap. ``CALL (x) {…}``:
#: the variable scope clause of Neo4j 5.23+ (``CALL { WITH x …}`` is deprecated).
WIPE = (
    "MATCH ()-[r]->() CALL (r) { DELETE r } IN TRANSACTIONS OF 20000 ROWS",
    "MATCH (n) CALL (n) { DELETE n } IN TRANSACTIONS OF 20000 ROWS",
)
TOOLS = ROOT / "tools" / "neo4j"


def need(reason: str) -> None:
    """Skip with ``reason``, or fail when CI is set (no Neo4j test may be skipped there)."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set: the Neo4j tests must run; .ci/run starts tools/neo4j/server)",
                    pytrace=False)
    pytest.skip(reason)


def live_settings():
    """The server's settings from the environment, or skip/fail (see :func:`need`)."""
    missing = [v for v in NEO4J_VARS if not os.environ.get(v)]
    if missing:
        need(f"live Neo4j tests need {', '.join(missing)}: start tools/neo4j/server (see docs/neo4j.md)")
    from flowgraph.neo4j.settings import Neo4jSettings

    return Neo4jSettings.from_env()


def wipe(neo) -> None:
    """Empty the database (schema kept) and leave the mark node; refuse foreign data."""
    records, _, _ = neo._driver.execute_query(
        f"OPTIONAL MATCH (m:{MARK}) WITH count(m) AS marks MATCH (n) RETURN marks, count(n) AS n",
        database_=neo.database,
    )
    if records and records[0]["n"] and not records[0]["marks"]:
        need("the Neo4j database is not empty; the live tests wipe it, so they need a throwaway one")
    # CALL {…} IN TRANSACTIONS needs an implicit (auto-commit) transaction: session.run
    with neo._driver.session(database=neo.database) as session:
        for statement in WIPE:
            session.run(statement).consume()
    neo._driver.execute_query(f"CREATE (:{MARK})", database_=neo.database)


def query(neo, statement: str, **params) -> list:
    """Run one statement on the live database; the records."""
    records, _, _ = neo._driver.execute_query(statement, parameters_=params, database_=neo.database)
    return list(records)


@pytest.fixture(scope="session")
def live_neo():
    """A :class:`Neo4jStore` on the live server (connection checked once per session)."""
    from flowgraph.neo4j.store import Neo4jStore

    neo = Neo4jStore.from_settings(live_settings())
    neo.verify()  # the variables name a server: unreachable is a failure, never a skip
    yield neo
    neo.close()


@pytest.fixture(scope="module")
def neo(live_neo):
    """The live store on an emptied database, for one test module."""
    wipe(live_neo)
    return live_neo


def neo4j_tools() -> Path:
    """``tools/neo4j`` when java, javac and mvn are there (else skip, or fail in CI)."""
    missing = [t for t in ("java", "javac", "mvn") if shutil.which(t) is None]
    if missing:
        need(f"tools/neo4j needs {', '.join(missing)} (Java 17 and Maven)")
    return TOOLS
