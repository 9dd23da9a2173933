"""An in-memory stand-in for the Neo4j driver, for the offline Neo4j tests.

It understands exactly the statements of :mod:`flowgraph.neo4j.cypher` (matched by
text: any other statement fails the test), applies them to a small in-memory graph with
MERGE semantics, and records every call with its parameters. Failures can be injected
before a write transaction commits (the batch is lost) or after it (committed, but the
client never hears back), which are the two cases a resumable push must survive.

Nothing here parses Cypher; the statements themselves are syntax-checked by Neo4j's own
parser in ``test_neo4j_offline.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from neo4j.exceptions import ServiceUnavailable

from flowgraph.neo4j import cypher as cy


@dataclass
class Call:
    """One statement as the server saw it."""

    kind: str  # "query" (execute_query), "write" (managed write tx), "auto" (session.run)
    statement: str
    params: dict
    committed: bool = True


def _set_plus(props: dict, row: dict) -> None:
    """Cypher ``SET n += map``: a null value removes the property."""
    for k, v in row.items():
        if v is None:
            props.pop(k, None)
        else:
            props[k] = v


@dataclass
class FakeGraph:
    """Nodes by label and key; relationships by type and their MERGE key."""

    nodes: dict[str, dict[str, dict]] = field(default_factory=dict)
    owns: set = field(default_factory=set)
    applied: set = field(default_factory=set)
    related: dict = field(default_factory=dict)
    transfers: dict = field(default_factory=dict)  # (src, dst, tx_id) -> props
    disbursed: dict = field(default_factory=dict)  # (loan, account, disbursement_id) -> props
    repaid: dict = field(default_factory=dict)  # (account, loan, ts) -> props
    on: set = field(default_factory=set)  # (alert_id, loan_id)
    schema: list = field(default_factory=list)

    def merge(self, label: str, key: str, value: Any) -> dict:
        """MERGE (:label {key: value}); a null key is a Cypher error, as in Neo4j."""
        assert value is not None, f"MERGE ({label} {{{key}: null}}) fails in Neo4j"
        return self.nodes.setdefault(label, {}).setdefault(value, {key: value})

    def counts(self) -> dict:
        return {
            **{label: len(n) for label, n in sorted(self.nodes.items())},
            "OWNS": len(self.owns), "APPLIED": len(self.applied), "RELATED": len(self.related),
            "TRANSFER": len(self.transfers), "DISBURSED_TO": len(self.disbursed),
            "REPAID": len(self.repaid), "ON": len(self.on),
        }


def _push_parties(g: FakeGraph, row: dict) -> None:
    _set_plus(g.merge("Party", "party_id", row["party_id"]), row)


def _push_accounts(g: FakeGraph, row: dict) -> None:
    _set_plus(g.merge("Account", "account_id", row["account_id"]), row)
    g.merge("Party", "party_id", row["owner_id"])
    g.owns.add((row["owner_id"], row["account_id"]))


def _push_loans(g: FakeGraph, row: dict) -> None:
    _set_plus(g.merge("Loan", "loan_id", row["loan_id"]), row)
    g.merge("Party", "party_id", row["borrower_id"])
    g.applied.add((row["borrower_id"], row["loan_id"]))


def _push_relations(g: FakeGraph, row: dict) -> None:
    g.merge("Party", "party_id", row["party_a"])
    g.merge("Party", "party_id", row["party_b"])
    g.related.setdefault((row["party_a"], row["party_b"], row["relation"]), {})["since"] = row["since"]


def _push_transactions(g: FakeGraph, row: dict) -> None:
    g.merge("Account", "account_id", row["src_account"])
    g.merge("Account", "account_id", row["dst_account"])
    props = g.transfers.setdefault((row["src_account"], row["dst_account"], row["tx_id"]), {"tx_id": row["tx_id"]})
    _set_plus(props, {k: row.get(k) for k in ("ts", "amount", "currency", "channel", "memo")})


def _push_disbursements(g: FakeGraph, row: dict) -> None:
    g.merge("Loan", "loan_id", row["loan_id"])
    g.merge("Account", "account_id", row["account_id"])
    key = (row["loan_id"], row["account_id"], row["disbursement_id"])
    _set_plus(g.disbursed.setdefault(key, {}), {"ts": row["ts"], "amount": row["amount"]})


def _push_repayments(g: FakeGraph, row: dict) -> None:
    g.merge("Account", "account_id", row["account_id"])
    g.merge("Loan", "loan_id", row["loan_id"])
    key = (row["account_id"], row["loan_id"], row["repayment_id"])
    _set_plus(g.repaid.setdefault(key, {}), {"ts": row["ts"], "amount": row["amount"]})


def _write_alert(g: FakeGraph, row: dict) -> None:
    props = row["props"]
    assert all(not isinstance(v, dict) for v in props.values()), "maps are not Neo4j property values"
    assert all(
        not isinstance(v, list) or all(not isinstance(x, list | dict) for x in v) for v in props.values()
    ), "nested lists are not Neo4j property values"
    _set_plus(g.merge("Alert", "alert_id", row["alert_id"]), props)
    g.merge("Loan", "loan_id", row["loan_id"])
    g.on.add((row["alert_id"], row["loan_id"]))


def _delete_alert(g: FakeGraph, row: dict) -> None:
    g.nodes.get("Alert", {}).pop(row["alert_id"], None)
    g.on = {(a, loan) for a, loan in g.on if a != row["alert_id"]}


ROW_WRITERS: dict[str, Callable[[FakeGraph, dict], None]] = {
    cy.PUSH_STATEMENTS["parties"]: _push_parties,
    cy.PUSH_STATEMENTS["accounts"]: _push_accounts,
    cy.PUSH_STATEMENTS["loans"]: _push_loans,
    cy.PUSH_STATEMENTS["relations"]: _push_relations,
    cy.PUSH_STATEMENTS["transactions"]: _push_transactions,
    cy.PUSH_STATEMENTS["disbursements"]: _push_disbursements,
    cy.PUSH_STATEMENTS["repayments"]: _push_repayments,
    cy.WRITE_ALERTS: _write_alert,
    cy.DELETE_ALERTS: _delete_alert,
}
assert len(ROW_WRITERS) == len(cy.PUSH_STATEMENTS) + 2


class FakeDriver:
    """The slice of ``neo4j.Driver`` that :class:`flowgraph.neo4j.store.Neo4jStore` uses.

    ``fail`` (settable) is called as ``fail(call_number, statement, params)`` before each
    write transaction; it returns None, ``"before"`` (raise ServiceUnavailable, nothing
    committed) or ``"after"`` (commit, then raise: the acknowledgement was lost).
    ``down`` makes every call raise ServiceUnavailable.
    """

    def __init__(self) -> None:
        self.graph = FakeGraph()
        self.calls: list[Call] = []
        self.fail: Callable[[int, str, dict], str | None] | None = None
        self.down = False
        self.closed = 0
        self.write_number = 0

    # -- driver API
    def verify_connectivity(self) -> None:
        self._check_up()

    def close(self) -> None:
        self.closed += 1

    def session(self, database: str | None = None, **_kw) -> FakeSession:
        return FakeSession(self)

    def execute_query(self, query: str, parameters_: dict | None = None, routing_: Any = None,
                      database_: str | None = None, **kw):
        self._check_up()
        params = dict(parameters_ or {}, **kw)
        self.calls.append(Call("query", query, params))
        records = self._answer(query, params)
        return records, None, list(records[0]) if records else []

    # -- helpers for tests
    def committed_rows(self, statement: str) -> list[dict]:
        """Rows of every committed write of ``statement``, in order."""
        return [r for c in self.calls if c.kind == "write" and c.committed and c.statement == statement
                for r in c.params["rows"]]

    def writes(self, statement: str | None = None) -> list[Call]:
        return [c for c in self.calls if c.kind == "write" and (statement is None or c.statement == statement)]

    def queries(self, statement: str) -> list[Call]:
        return [c for c in self.calls if c.kind == "query" and c.statement == statement]

    def wipe(self) -> None:
        """``MATCH (n) DETACH DELETE n`` (the schema stays)."""
        self.graph = FakeGraph(schema=self.graph.schema)

    # -- internals
    def _check_up(self) -> None:
        if self.down:
            raise ServiceUnavailable("Couldn't connect to fake:7687 (Connection refused)")

    def _write_tx(self, statement: str, params: dict) -> None:
        self._check_up()
        assert statement in ROW_WRITERS, f"not a flowgraph write statement:\n{statement}"
        assert set(params) == {"rows"}, params.keys()
        self.write_number += 1
        mode = self.fail(self.write_number, statement, params) if self.fail else None
        call = Call("write", statement, params, committed=mode != "before")
        self.calls.append(call)
        if mode == "before":
            raise ServiceUnavailable("fake: connection lost before commit")
        for row in params["rows"]:
            ROW_WRITERS[statement](self.graph, row)
        if mode == "after":
            raise ServiceUnavailable("fake: connection lost after commit")

    def _answer(self, q: str, p: dict) -> list[dict]:
        g = self.graph
        if q in cy.SCHEMA_STATEMENTS:
            if q not in g.schema:
                g.schema.append(q)
            return []
        if q == cy.MARK_SYNCED:
            assert set(p) == {"snapshot_id", "transfers", "accounts", "last_tx_id"}, p
            m = g.merge("FlowgraphSync", "key", "store")
            m.update(p)
            return []
        if q == cy.READ_SYNC_MARK:
            m = g.nodes.get("FlowgraphSync", {}).get("store")
            return [{k: m.get(k) for k in ("snapshot_id", "transfers", "accounts", "last_tx_id")}] if m else []
        if q == cy.COUNT_TRANSFERS:
            return [{"n": len(g.transfers)}]
        if q == cy.COUNT_ACCOUNTS:
            return [{"n": len(g.nodes.get("Account", {}))}]
        if q == cy.COUNT_ALERTS:
            return [{"n": len(g.nodes.get("Alert", {}))}]
        if q == cy.LAST_TX_ID:
            ids = [k[2] for k in g.transfers]
            return [{"tx_id": max(ids)}] if ids else []
        if q in (cy.READ_ACCOUNTS_FIRST, cy.READ_ACCOUNTS_AFTER):
            ids = sorted(g.nodes.get("Account", {}))
            if q == cy.READ_ACCOUNTS_AFTER:
                ids = [i for i in ids if i > p["after"]]
            return [{"account_id": i} for i in ids[: p["limit"]]]
        if q in (cy.READ_TRANSFERS_FIRST, cy.READ_TRANSFERS_AFTER):
            rows = sorted(g.transfers.items(), key=lambda kv: kv[0][2])
            if q == cy.READ_TRANSFERS_AFTER:
                rows = [kv for kv in rows if kv[0][2] > p["after"]]
            return [{"tx_id": t, "src": s, "dst": d, "ts": props.get("ts"), "amount": props.get("amount")}
                    for (s, d, t), props in rows[: p["limit"]]]
        if q == cy.READ_ALERT_IDS_OF_DAYS:
            return [{"alert_id": a} for a, n in sorted(g.nodes.get("Alert", {}).items())
                    if n.get("as_of") in p["days"]]
        if q == cy.READ_ALERTS:
            loans = dict(g.on)
            return [{"alert_id": a, "loan_id": loans[a], "rule_id": n.get("rule_id"), "level": n.get("level"),
                     "score": n.get("score"), "tx_ids": n.get("tx_ids"), "path_lengths": n.get("path_lengths")}
                    for a, n in sorted(g.nodes.get("Alert", {}).items()) if a in loans]
        raise AssertionError(f"not a flowgraph statement:\n{q}")


class FakeSession:
    def __init__(self, driver: FakeDriver):
        self.driver = driver

    def __enter__(self) -> FakeSession:
        return self

    def __exit__(self, *exc) -> None:
        return None

    def execute_write(self, fn, *args, **kwargs):
        """Run ``fn(tx, ...)``; each ``tx.run`` is one write transaction of the fake."""
        return fn(FakeTx(self.driver), *args, **kwargs)


class FakeTx:
    def __init__(self, driver: FakeDriver):
        self.driver = driver

    def run(self, statement: str, parameters: dict | None = None, **kw) -> FakeResult:
        self.driver._write_tx(statement, dict(parameters or {}, **kw))
        return FakeResult()


class FakeResult:
    def consume(self) -> None:
        return None
