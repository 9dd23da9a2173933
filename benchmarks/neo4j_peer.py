"""Neo4j 5 as a peer: the flow-back rule as the Cypher a Neo4j user would write.

The question is DESIGN.md's ("Core rule: flow-back", conditions 1-8) for disbursements
``(d, t0, a)`` with their borrower-linked accounts ``T`` (given, as to the other peers), on
the graph ``flowgraph neo4j push`` writes: ``(:Account)-[:TRANSFER {tx_id, ts, amount}]->
(:Account)``. Two spellings:

- :data:`FLOW_BACK_QPP`: a quantified path pattern (Neo4j 5.9+) whose per-hop predicate
  (inside the window, above the amount floor) the planner applies while expanding;
- :data:`FLOW_BACK_VARLEN`: the older variable-length pattern ``-[r:TRANSFER*1..h]->``
  with ``all(...)`` filters.

Both then keep the paths whose hops are strictly time-ordered (condition 2), that end in
``T`` (6) after leaving it (7), where ``T`` accounts appear only as a leading run from ``d``
and at the end (8), and that repeat no account except ``d`` as the last one (5). Cypher
5 has no predicate across consecutive QPP iterations (``allReduce`` arrives with Cypher 25)
nor an ACYCLIC match mode, so conditions 2, 5, 7 and 8 are list predicates on the whole
path: the anti-patterns of a per-path filter after expansion (every window path up to ``h``
hops is built first) are the cost of this peer, which the engine's search avoids by pruning
as it goes. Relationship uniqueness is Cypher's own; it never matters here because
strictly increasing times never repeat a transfer.

A path is the list of its tx ids in hop order, as for the other peers.
"""

from __future__ import annotations

import time

#: the per-path conditions shared by both spellings (``r``: the hop list, ``ns``: the nodes)
_PATH_FILTER = """
WITH row, r, ns, [n IN ns | n.account_id IN row.T] AS inT
WHERE all(i IN range(1, size(r) - 1) WHERE r[i - 1].ts < r[i].ts)
  AND NOT all(x IN inT[..-1] WHERE x)
  AND all(i IN range(1, size(ns) - 2) WHERE NOT inT[i] OR all(x IN inT[..i] WHERE x))
  AND all(i IN range(1, size(ns) - 1) WHERE NOT ns[i] IN ns[..i]
          OR (i = size(ns) - 1 AND ns[i] = ns[0] AND NOT ns[i] IN ns[1..i]))
RETURN row.disb_id AS disb_id, [t IN r | t.tx_id] AS txs"""

#: quantified path pattern: the hop predicate is applied during the expansion
FLOW_BACK_QPP = """UNWIND $rows AS row
MATCH (d:Account {account_id: row.d})
MATCH p = (d) (()-[r:TRANSFER]->() WHERE row.t0 < r.ts <= row.tend AND r.amount >= row.thr){1,%(hops)d}
          (x:Account WHERE x.account_id IN row.T)
WITH row, r, nodes(p) AS ns""" + _PATH_FILTER

#: variable-length pattern with all(...) filters
FLOW_BACK_VARLEN = """UNWIND $rows AS row
MATCH (d:Account {account_id: row.d})
MATCH p = (d)-[r:TRANSFER*1..%(hops)d]->(x:Account)
WHERE all(t IN r WHERE row.t0 < t.ts <= row.tend AND t.amount >= row.thr)
  AND x.account_id IN row.T
WITH row, r, nodes(p) AS ns""" + _PATH_FILTER

VARIANTS = {"qpp": FLOW_BACK_QPP, "varlen": FLOW_BACK_VARLEN}


def cypher_rows(rows: list[dict], window_ms: int) -> list[dict]:
    """The peers' sample rows (disb_id, d, t0, threshold, targets) as ``$rows``."""
    return [{"disb_id": r["disb_id"], "d": r["d"], "t0": int(r["t0"]), "tend": int(r["t0"]) + int(window_ms),
             "thr": int(r["threshold"]), "T": list(r["targets"])} for r in rows]  # fmt: skip


def neo4j_flow_back(driver, rows: list[dict], *, window_ms: int, max_hops: int, variant: str = "qpp",
                    database: str | None = None, timeout: float | None = None) -> dict:  # fmt: skip
    """Flow-back paths of ``rows`` in one Cypher statement; ``{disb_id: [paths]}``.

    ``driver``: an open ``neo4j.Driver``. Every disbursement of ``rows`` is present.
    ``timeout``: seconds; the server terminates the transaction after that
    (``neo4j.exceptions.ClientError`` ``...TransactionTimedOut``).
    """
    from neo4j import Query

    statement = Query(VARIANTS[variant] % {"hops": int(max_hops)}, timeout=timeout)
    records, _, _ = driver.execute_query(statement, rows=cypher_rows(rows, window_ms), database_=database)
    out: dict = {r["disb_id"]: [] for r in rows}
    for rec in records:
        out[rec["disb_id"]].append(list(rec["txs"]))
    return out


def timed_flow_back(driver, rows, **kw) -> tuple[dict, float]:
    """(:func:`neo4j_flow_back` answer, seconds)."""
    t = time.perf_counter()
    res = neo4j_flow_back(driver, rows, **kw)
    return res, time.perf_counter() - t


def edges_from_neo4j(driver, tx_ids, database: str | None = None) -> dict:
    """tx_id → (src, dst, ts, amount) read back from the graph (to trace the peer's paths)."""
    ids = sorted(set(tx_ids))
    if not ids:
        return {}
    records, _, _ = driver.execute_query(
        "UNWIND $ids AS id MATCH (s:Account)-[t:TRANSFER {tx_id: id}]->(d:Account) "
        "RETURN t.tx_id AS tx_id, s.account_id AS src, d.account_id AS dst, t.ts AS ts, t.amount AS amount",
        ids=ids, database_=database,
    )
    return {r["tx_id"]: (r["src"], r["dst"], r["ts"], r["amount"]) for r in records}
