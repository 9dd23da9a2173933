"""Every Cypher statement flowgraph sends to Neo4j 5, as plain text.

Kept in one module so the tests can hand all of them to Neo4j's own Cypher parser
(``tools/cypher-lint``) and so a reviewer sees the whole database footprint at once.
Write statements take one parameter, ``$rows`` (a list of maps, one per table row);
read statements take the parameters named in :data:`READ_PARAMETERS`.

Graph model (ids are strings, money int minor units, times epoch ms, all ``long``)::

    (:Party {party_id, kind, ...})-[:OWNS]->(:Account {account_id, ...})
    (:Account)-[:TRANSFER {tx_id, ts, amount, currency, channel, memo}]->(:Account)
    (:Party)-[:APPLIED]->(:Loan {loan_id, amount, ...})
    (:Loan)-[:DISBURSED_TO {disbursement_id, ts, amount}]->(:Account)
    (:Account)-[:REPAID {repayment_id, ts, amount}]->(:Loan)
    (:Party)-[:RELATED {relation, since}]->(:Party)
    (:Alert {alert_id, rule_id, level, score, tx_ids, ...})-[:ON]->(:Loan)
    (:FlowgraphSync {key: 'store', snapshot_id, transfers, accounts, last_tx_id})
"""

from __future__ import annotations

#: ``neo4j init``: uniqueness constraints (each backed by a range index) and indexes.
#: Relationship property uniqueness constraints need Neo4j 5.7 or later.
SCHEMA_STATEMENTS: tuple[str, ...] = (
    "CREATE CONSTRAINT party_id IF NOT EXISTS FOR (n:Party) REQUIRE n.party_id IS UNIQUE",
    "CREATE CONSTRAINT account_id IF NOT EXISTS FOR (n:Account) REQUIRE n.account_id IS UNIQUE",
    "CREATE CONSTRAINT loan_id IF NOT EXISTS FOR (n:Loan) REQUIRE n.loan_id IS UNIQUE",
    "CREATE CONSTRAINT alert_id IF NOT EXISTS FOR (n:Alert) REQUIRE n.alert_id IS UNIQUE",
    "CREATE CONSTRAINT flowgraph_sync_key IF NOT EXISTS FOR (n:FlowgraphSync) REQUIRE n.key IS UNIQUE",
    "CREATE CONSTRAINT transfer_tx_id IF NOT EXISTS FOR ()-[r:TRANSFER]-() REQUIRE r.tx_id IS UNIQUE",
    "CREATE CONSTRAINT disbursement_id IF NOT EXISTS "
    "FOR ()-[r:DISBURSED_TO]-() REQUIRE r.disbursement_id IS UNIQUE",
    "CREATE INDEX transfer_ts IF NOT EXISTS FOR ()-[r:TRANSFER]-() ON (r.ts)",
    "CREATE INDEX alert_rule_level IF NOT EXISTS FOR (n:Alert) ON (n.rule_id, n.level)",
)

#: ``neo4j push``: one ``UNWIND $rows ... MERGE`` statement per store table, in push order
#: (nodes before the relationships that need them; MERGE still creates a missing endpoint,
#: as the embedded index counts every account a transaction names).
#: ``classifications`` has no place in the graph model and is not pushed.
PUSH_STATEMENTS: dict[str, str] = {
    "parties": (
        "UNWIND $rows AS row\n"
        "MERGE (p:Party {party_id: row.party_id})\n"
        "SET p += row"
    ),
    "accounts": (
        "UNWIND $rows AS row\n"
        "MERGE (a:Account {account_id: row.account_id})\n"
        "SET a += row\n"
        "WITH a, row\n"
        "MERGE (p:Party {party_id: row.owner_id})\n"
        "MERGE (p)-[:OWNS]->(a)"
    ),
    "loans": (
        "UNWIND $rows AS row\n"
        "MERGE (l:Loan {loan_id: row.loan_id})\n"
        "SET l += row\n"
        "WITH l, row\n"
        "MERGE (p:Party {party_id: row.borrower_id})\n"
        "MERGE (p)-[:APPLIED]->(l)"
    ),
    "relations": (
        "UNWIND $rows AS row\n"
        "MERGE (a:Party {party_id: row.party_a})\n"
        "MERGE (b:Party {party_id: row.party_b})\n"
        "MERGE (a)-[r:RELATED {relation: row.relation}]->(b)\n"
        "SET r.since = row.since"
    ),
    "transactions": (
        "UNWIND $rows AS row\n"
        "MERGE (s:Account {account_id: row.src_account})\n"
        "MERGE (d:Account {account_id: row.dst_account})\n"
        "MERGE (s)-[t:TRANSFER {tx_id: row.tx_id}]->(d)\n"
        "SET t.ts = row.ts, t.amount = row.amount, t.currency = row.currency,\n"
        "    t.channel = row.channel, t.memo = row.memo"
    ),
    "disbursements": (
        "UNWIND $rows AS row\n"
        "MERGE (l:Loan {loan_id: row.loan_id})\n"
        "MERGE (a:Account {account_id: row.account_id})\n"
        "MERGE (l)-[d:DISBURSED_TO {disbursement_id: row.disbursement_id}]->(a)\n"
        "SET d.ts = row.ts, d.amount = row.amount"
    ),
    "repayments": (
        "UNWIND $rows AS row\n"
        "MERGE (a:Account {account_id: row.account_id})\n"
        "MERGE (l:Loan {loan_id: row.loan_id})\n"
        "MERGE (a)-[r:REPAID {repayment_id: row.repayment_id}]->(l)\n"
        "SET r.ts = row.ts, r.amount = row.amount"
    ),
}

#: Written last by a completed push: which store snapshot the graph holds, and a
#: fingerprint to notice later changes made by other writers.
MARK_SYNCED = (
    "MERGE (m:FlowgraphSync {key: 'store'})\n"
    "SET m.snapshot_id = $snapshot_id, m.transfers = $transfers, m.accounts = $accounts,\n"
    "    m.last_tx_id = $last_tx_id"
)

#: ``write_alerts``: one Alert node per alert_id, linked to its loan.
WRITE_ALERTS = (
    "UNWIND $rows AS row\n"
    "MERGE (a:Alert {alert_id: row.alert_id})\n"
    "SET a += row.props\n"
    "WITH a, row\n"
    "MERGE (l:Loan {loan_id: row.loan_id})\n"
    "MERGE (a)-[:ON]->(l)"
)

#: ``sync_alerts``: remove Alert nodes whose alert vanished from the store on a re-score.
DELETE_ALERTS = (
    "UNWIND $rows AS row\n"
    "MATCH (a:Alert {alert_id: row.alert_id})\n"
    "DETACH DELETE a"
)
#: ``sync_alerts``: the Alert nodes of the scored as-of days (``as_of`` is 'YYYY-MM-DD').
READ_ALERT_IDS_OF_DAYS = (
    "MATCH (a:Alert) WHERE a.as_of IN $days\n"
    "RETURN a.alert_id AS alert_id"
)

READ_SYNC_MARK = (
    "MATCH (m:FlowgraphSync {key: 'store'})\n"
    "RETURN m.snapshot_id AS snapshot_id, m.transfers AS transfers, m.accounts AS accounts,\n"
    "       m.last_tx_id AS last_tx_id"
)

#: A cheap fingerprint (count stores and the tx_id index), to notice other writers.
COUNT_TRANSFERS = "MATCH ()-[t:TRANSFER]->() RETURN count(t) AS n"
COUNT_ACCOUNTS = "MATCH (a:Account) RETURN count(a) AS n"
COUNT_ALERTS = "MATCH (a:Alert) RETURN count(a) AS n"
LAST_TX_ID = (
    "MATCH ()-[t:TRANSFER]->() WHERE t.tx_id IS NOT NULL\n"
    "RETURN t.tx_id AS tx_id ORDER BY tx_id DESC LIMIT 1"
)

#: Keyset pagination (never SKIP): the first page, then pages after the last key seen.
#: Both are served by the range indexes behind the uniqueness constraints.
READ_ACCOUNTS_FIRST = (
    "MATCH (a:Account) WHERE a.account_id IS NOT NULL\n"
    "RETURN a.account_id AS account_id ORDER BY account_id LIMIT $limit"
)
READ_ACCOUNTS_AFTER = (
    "MATCH (a:Account) WHERE a.account_id > $after\n"
    "RETURN a.account_id AS account_id ORDER BY account_id LIMIT $limit"
)
READ_TRANSFERS_FIRST = (
    "MATCH (s:Account)-[t:TRANSFER]->(d:Account) WHERE t.tx_id IS NOT NULL\n"
    "RETURN t.tx_id AS tx_id, s.account_id AS src, d.account_id AS dst, t.ts AS ts,\n"
    "       t.amount AS amount\n"
    "ORDER BY tx_id LIMIT $limit"
)
READ_TRANSFERS_AFTER = (
    "MATCH (s:Account)-[t:TRANSFER]->(d:Account) WHERE t.tx_id > $after\n"
    "RETURN t.tx_id AS tx_id, s.account_id AS src, d.account_id AS dst, t.ts AS ts,\n"
    "       t.amount AS amount\n"
    "ORDER BY tx_id LIMIT $limit"
)
READ_ALERTS = (
    "MATCH (a:Alert)-[:ON]->(l:Loan)\n"
    "RETURN a.alert_id AS alert_id, l.loan_id AS loan_id, a.rule_id AS rule_id,\n"
    "       a.level AS level, a.score AS score, a.tx_ids AS tx_ids, a.path_lengths AS path_lengths\n"
    "ORDER BY alert_id"
)
PING = "RETURN 1 AS ok"

#: parameter shapes of the read/bookkeeping statements (used by the lint tests).
READ_PARAMETERS: dict[str, dict] = {
    "MARK_SYNCED": {"snapshot_id": "s", "transfers": 0, "accounts": 0, "last_tx_id": "t"},
    "READ_SYNC_MARK": {},
    "COUNT_TRANSFERS": {},
    "COUNT_ACCOUNTS": {},
    "COUNT_ALERTS": {},
    "LAST_TX_ID": {},
    "READ_ACCOUNTS_FIRST": {"limit": 1},
    "READ_ACCOUNTS_AFTER": {"limit": 1, "after": "a"},
    "READ_TRANSFERS_FIRST": {"limit": 1},
    "READ_TRANSFERS_AFTER": {"limit": 1, "after": "t"},
    "READ_ALERTS": {},
    "READ_ALERT_IDS_OF_DAYS": {"days": ["2024-01-01"]},
    "PING": {},
}


def all_statements() -> dict[str, tuple[str, dict | None]]:
    """Name → (statement, example parameters) for every fixed statement of this module."""
    out: dict[str, tuple[str, dict | None]] = {}
    for i, s in enumerate(SCHEMA_STATEMENTS):
        out[f"schema[{i}]"] = (s, {})
    for table, s in PUSH_STATEMENTS.items():
        out[f"push[{table}]"] = (s, {"rows": []})
    out["WRITE_ALERTS"] = (WRITE_ALERTS, {"rows": []})
    out["DELETE_ALERTS"] = (DELETE_ALERTS, {"rows": []})
    g = globals()
    for name, params in READ_PARAMETERS.items():
        out[name] = (g[name], params)
    return out
