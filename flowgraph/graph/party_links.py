"""Borrower-linked parties and accounts, with the chain that links each one.

The borrower side P of a loan is its borrowers plus every party reachable from them
through allowed relation types within ``depth`` steps. Relations are followed in both
directions. Besides the explicit relations table, parties sharing a phone number or an
address are linked (``shared_phone`` / ``shared_address``, derived from the parties
table). T, the linked accounts, are the accounts owned by P.

Each linked account carries its chain, e.g. ``person:1 -spouse-> person:2 -owns-> A7``,
as a list of steps::

    [{"party": "person:1"}, {"relation": "spouse", "party": "person:2"}, {"owns": "A7"}]

**Relations count only while they are valid.** Each relation edge holds a validity
interval ``[valid_from, valid_to)``: from its ``since`` (open when null) to its end (the
``until`` column when the relations table has one — versioned master data will fill it;
open otherwise). ``at=`` on :meth:`PartyGraph.linked_parties` /
:meth:`~PartyGraph.linked_accounts` keeps only the edges valid at that time;
:func:`linked_targets` takes one time per disbursement (its ``ts``), so a relation that
starts after a disbursement never links anything for it, and re-scoring a past day is
unchanged by relations added later. Derived links and ownership have no time.

>>> import polars as pl
>>> g = PartyGraph.from_frames(
...     relations=pl.DataFrame({"party_a": ["p1"], "party_b": ["p2"], "relation": ["spouse"]}),
...     parties=pl.DataFrame({"party_id": ["p1", "p2", "p3"], "phone": ["1", None, "1"]}),
...     accounts=pl.DataFrame({"account_id": ["a1", "a2", "a3"], "owner_id": ["p1", "p2", "p3"]}),
... )
>>> sorted(g.linked_accounts(["p1"], depth=1))
['a1', 'a2', 'a3']
>>> sorted(g.linked_accounts(["p1"], depth=1, relation_types=["spouse"]))
['a1', 'a2']
>>> sorted(g.linked_accounts(["p1"], depth=0))
['a1']
>>> g = PartyGraph.from_frames(
...     relations=pl.DataFrame({"party_a": ["p1"], "party_b": ["p2"], "relation": ["spouse"], "since": [100]}),
...     parties=pl.DataFrame({"party_id": ["p1", "p2"]}),
...     accounts=pl.DataFrame({"account_id": ["a1", "a2"], "owner_id": ["p1", "p2"]}),
... )
>>> sorted(g.linked_accounts(["p1"], 1, at=99)), sorted(g.linked_accounts(["p1"], 1, at=100))
(['a1'], ['a1', 'a2'])
"""

from __future__ import annotations

from bisect import bisect_right
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from flowgraph.core.schema import RELATION_TYPES
from flowgraph.graph.store_index import AccountLookup
from flowgraph.store.embedded import Store

Chain = list[dict[str, str]]
#: the open ends of a validity interval: a relation without ``since`` counts from always,
#: one without an end until forever
ALWAYS = -(2**63)
FOREVER = 2**63 - 1


def _phone_expr(col: pl.Expr) -> pl.Expr:
    """Digits only: ``+86 138-0000-0000`` and ``8613800000000`` are one phone."""
    return col.str.replace_all(r"\D", "")


def _address_expr(col: pl.Expr) -> pl.Expr:
    """Case and runs of white space do not make another address."""
    return col.str.to_lowercase().str.replace_all(r"\s+", " ").str.strip_chars(" ")


DERIVED = (("shared_phone", "phone", _phone_expr), ("shared_address", "address", _address_expr))


def _attributes(parties: pl.DataFrame) -> pl.DataFrame:
    """(party_id, kind, v): each party's normalised phone and address, shared_phone rows
    first, empty values dropped — what the derived links go through."""
    frames = [
        parties.select("party_id", pl.lit(kind).alias("kind"), norm(pl.col(col)).alias("v"))
        for kind, col, norm in DERIVED
        if col in parties.columns
    ]
    empty = pl.DataFrame(schema={"party_id": pl.Utf8, "kind": pl.Utf8, "v": pl.Utf8})
    return pl.concat(frames or [empty]).filter(pl.col("v").is_not_null() & (pl.col("v") != ""))


@dataclass
class PartyGraph:
    """Parties, their relations (both directions, each with its validity interval
    ``[valid_from, valid_to)`` in UTC ms) and the accounts they own."""

    neighbors: dict[str, list[tuple[str, str, int, int]]] = field(default_factory=dict)
    owned: dict[str, list[str]] = field(default_factory=dict)
    owner_of: dict[str, str] = field(default_factory=dict)
    # derived links go through a shared attribute value instead of all pairs, so a
    # phone shared by thousands of parties costs thousands, not millions, of entries
    attr_of: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    members: dict[tuple[str, str], list[str]] = field(default_factory=dict)

    @classmethod
    def from_frames(
        cls, relations: pl.DataFrame, parties: pl.DataFrame, accounts: pl.DataFrame
    ) -> PartyGraph:
        # built column-wise in polars, then handed to dicts in one go: a bank has millions
        # of parties and a Python loop over rows cost seconds on every trace
        g = cls()
        since = pl.col("since").cast(pl.Int64) if "since" in relations.columns else pl.lit(None, pl.Int64)
        until = pl.col("until").cast(pl.Int64) if "until" in relations.columns else pl.lit(None, pl.Int64)
        rel = (
            relations.select(
                "party_a", "party_b", "relation",
                since.fill_null(ALWAYS).alias("f"), until.fill_null(FOREVER).alias("t"),
            )
            .drop_nulls()
            .filter((pl.col("party_a") != pl.col("party_b")) & (pl.col("f") < pl.col("t")))
        )
        both = pl.concat([
            rel.select(pl.col("party_a").alias("p"), pl.col("party_b").alias("o"), pl.col("relation").alias("r"), "f", "t"),
            rel.select(pl.col("party_b").alias("p"), pl.col("party_a").alias("o"), pl.col("relation").alias("r"), "f", "t"),
        ])
        if both.height:
            grouped = both.sort("p", "o", "r", "f", "t").group_by("p", maintain_order=True).agg("o", "r", "f", "t")
            g.neighbors = {
                p: list(zip(o, r, f, t, strict=True))
                for p, o, r, f, t in zip(*(grouped[c].to_list() for c in ("p", "o", "r", "f", "t")), strict=True)
            }
        # shared_phone entries before shared_address ones, each list in party_id order
        attrs = _attributes(parties).drop_nulls("party_id").sort("party_id", maintain_order=True)
        members = attrs.group_by("kind", "v", maintain_order=True).agg("party_id")
        for kind, v, pids in zip(*(members[c].to_list() for c in ("kind", "v", "party_id")), strict=True):
            g.members[(kind, v)] = pids
        for pid, kind, v in zip(*(attrs[c].to_list() for c in ("party_id", "kind", "v")), strict=True):
            g.attr_of.setdefault(pid, []).append((kind, v))
        acc = accounts.select("account_id", "owner_id").drop_nulls().sort("account_id")
        owned = acc.group_by("owner_id", maintain_order=True).agg("account_id")
        g.owned = dict(zip(owned["owner_id"].to_list(), owned["account_id"].to_list(), strict=True))
        g.owner_of = dict(zip(acc["account_id"].to_list(), acc["owner_id"].to_list(), strict=True))
        return g

    def _steps(self, party: str, allowed: frozenset[str], at: int | None = None) -> Iterable[tuple[str, str]]:
        for other, rel, valid_from, valid_to in self.neighbors.get(party, ()):
            if rel in allowed and (at is None or valid_from <= at < valid_to):
                yield other, rel
        for kind, value in self.attr_of.get(party, ()):
            if kind in allowed:
                for other in self.members[(kind, value)]:
                    if other != party:
                        yield other, kind

    def linked_parties(
        self,
        borrowers: Iterable[str],
        depth: int = 1,
        relation_types: Iterable[str] | None = None,
        at: int | None = None,
    ) -> dict[str, Chain]:
        """Parties within ``depth`` steps of the borrowers → the shortest chain to each.

        Breadth-first with sorted neighbours, so the chain chosen is deterministic. With
        ``at`` (UTC ms), only relations valid at that time are followed.

        Notes
        -----
        O(parties + links) reached within ``depth`` steps.
        """
        allowed = frozenset(RELATION_TYPES if relation_types is None else relation_types)
        chains: dict[str, Chain] = {}
        queue: deque[tuple[str, int]] = deque()
        for b in sorted(set(borrowers)):
            chains[b] = [{"party": b}]
            queue.append((b, 0))
        while queue:
            party, d = queue.popleft()
            if d >= depth:
                continue
            for other, rel in self._steps(party, allowed, at):
                if other not in chains:
                    chains[other] = [*chains[party], {"relation": rel, "party": other}]
                    queue.append((other, d + 1))
        return chains

    def linked_accounts(
        self,
        borrowers: Iterable[str],
        depth: int = 1,
        relation_types: Iterable[str] | None = None,
        at: int | None = None,
    ) -> dict[str, Chain]:
        """Accounts owned by the borrower side (relations valid ``at``, when given) → the
        chain linking each to a borrower."""
        return dict(self.linked_account_map(borrowers, depth, relation_types, at).items())

    def linked_account_map(
        self,
        borrowers: Iterable[str],
        depth: int = 1,
        relation_types: Iterable[str] | None = None,
        at: int | None = None,
    ) -> LinkedAccounts:
        """:meth:`linked_accounts` as a read-only mapping that makes each chain when asked."""
        parties = self.linked_parties(borrowers, depth, relation_types, at)
        via: dict[str, str] = {}
        for party in parties:
            for acct in self.owned.get(party, ()):
                via.setdefault(acct, party)
        return LinkedAccounts(parties, dict(sorted(via.items())))

    def change_times(self, borrower: str, depth: int, relation_types: Iterable[str] | None = None) -> list[int]:
        """The sorted times at which the borrower's side can change: every finite end of
        the validity of a relation that a search from ``borrower`` up to ``depth`` steps,
        over all relations regardless of time, examines. Between two consecutive such
        times (``bisect_right`` gives the same position) the side is the same."""
        allowed = frozenset(RELATION_TYPES if relation_types is None else relation_types)
        seen = {borrower}
        frontier = [borrower]
        times: set[int] = set()
        for _ in range(depth):
            nxt = []
            for party in frontier:
                for _, rel, valid_from, valid_to in self.neighbors.get(party, ()):
                    if rel in allowed:
                        times.update(t for t in (valid_from, valid_to) if t not in (ALWAYS, FOREVER))
                for other, _ in self._steps(party, allowed):  # every link, whatever its time
                    if other not in seen:
                        seen.add(other)
                        nxt.append(other)
            frontier = nxt
        return sorted(times)


class LinkedAccounts(Mapping):
    """Linked account → its chain, in account order; a chain is made when asked (a batch
    needs the accounts of thousands of disbursements, the chains of the few that fire)."""

    def __init__(self, parties: dict[str, Chain], via: dict[str, str]):
        self._parties = parties  # party → chain from a borrower
        self._via = via  # account → the party whose ownership links it

    def __getitem__(self, acct: str) -> Chain:
        return [*self._parties[self._via[acct]], {"owns": acct}]

    def __iter__(self):
        return iter(self._via)

    def __len__(self) -> int:
        return len(self._via)


def chain_text(chain: Chain) -> str:
    """``person:1 -spouse-> person:2 -owns-> A7``"""
    parts = []
    for step in chain:
        if "relation" in step:
            parts.append(f"-{step['relation']}-> {step['party']}")
        elif "owns" in step:
            parts.append(f"-owns-> {step['owns']}")
        else:
            parts.append(step["party"])
    return " ".join(parts)


def _neighbourhood(relations: pl.DataFrame, attrs: pl.DataFrame, borrowers: list[str], depth: int) -> set[str]:
    """Parties within ``depth`` steps of the borrowers over every link type (a superset of
    what any rule's allowed types reach); ``attrs`` is :func:`_attributes` of all parties."""
    reached = set(borrowers)
    frontier = sorted(reached)
    for _ in range(depth):
        if not frontier:
            break
        via_rel = relations.filter(pl.col("party_a").is_in(frontier) | pl.col("party_b").is_in(frontier))
        shared = attrs.filter(pl.col("party_id").is_in(frontier)).select("kind", "v").unique()
        via_attr = attrs.join(shared, on=["kind", "v"])
        found = set(via_rel["party_a"].to_list()) | set(via_rel["party_b"].to_list()) | set(via_attr["party_id"].to_list())
        frontier = sorted(found - reached)
        reached |= found
    return reached


def load_party_graph(store, borrowers: Iterable[str] | None = None, depth: int | None = None) -> PartyGraph:
    """The party graph of a :class:`flowgraph.store.embedded.Store`.

    With ``borrowers`` and ``depth``, only the part within ``depth`` steps of them: the
    same :meth:`PartyGraph.linked_accounts` for those borrowers up to that depth, built
    in milliseconds instead of seconds when a trace needs a handful of loans.
    """
    parties = store.scan("parties")
    cols = [c for c in ("party_id", "phone", "address") if c in parties.collect_schema().names()]
    rel_cols = [c for c in ("party_a", "party_b", "relation", "since", "until") if c in store.scan("relations").collect_schema().names()]
    relations = store.read("relations", rel_cols).drop_nulls(["party_a", "party_b", "relation"])
    if "until" in relations.columns and relations.schema["until"] not in (pl.Int64, pl.Int32):
        relations = relations.drop("until")  # an untyped extra column: not a validity end
    parties = parties.select(cols).collect()
    accounts = store.read("accounts", ["account_id", "owner_id"])
    if borrowers is not None and depth is not None:
        keep = sorted(_neighbourhood(relations, _attributes(parties), [b for b in borrowers if b], depth))
        # every relation touching a reached party keeps the neighbour lists of the inner
        # parties complete; members of their phone/address values are all reached too
        relations = relations.filter(pl.col("party_a").is_in(keep) | pl.col("party_b").is_in(keep))
        parties = parties.filter(pl.col("party_id").is_in(keep))
        accounts = accounts.filter(pl.col("owner_id").is_in(keep))
    return PartyGraph.from_frames(relations=relations, parties=parties, accounts=accounts)


def linked_targets(
    graph, lookup: AccountLookup, borrowers: list[str], depth: int, relation_types, times=None,
) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """Borrower-linked accounts of each disbursement's borrower, with the relations valid
    at the disbursement's time (``times``, UTC ms, one per borrower; None: every relation).

    Returns (indptr, sorted dense ids, linked account → chain per disbursement).

    Notes
    -----
    Borrowers repeat a lot, so each is expanded once per stretch of time in which its side
    cannot change (:meth:`PartyGraph.change_times`): a relation's ``since`` is one filter
    on the edges during the expansion, never a rebuild of the graph, and a borrower whose
    relations all began before its loans is expanded once.
    """
    cache: dict[tuple[str, int], dict] = {}
    changes: dict[str, list[int]] = {}
    lists, linked_of = [], []
    times_l = None if times is None else [int(t) for t in times]
    for i, b in enumerate(borrowers):
        key = b or ""
        at = None if times_l is None else times_l[i]
        if key and at is not None:
            if key not in changes:
                changes[key] = graph.change_times(key, depth, relation_types)
            era = bisect_right(changes[key], at)
        else:
            era = -1
        if (key, era) not in cache:
            cache[(key, era)] = graph.linked_account_map([b], depth, relation_types, at) if b else {}
        linked = cache[(key, era)]
        linked_of.append(linked)
        dense = lookup.many(list(linked))
        lists.append(np.sort(dense[dense >= 0]).astype(np.int64))
    indptr = np.zeros(len(lists) + 1, np.int64)
    if lists:
        np.cumsum([len(x) for x in lists], out=indptr[1:])
    ids = np.concatenate(lists) if lists else np.zeros(0, np.int64)
    return indptr, ids, linked_of


def party_row(store: Store, party_id: str | None) -> dict | None:
    if not party_id:
        return None
    rows = store.scan("parties").filter(pl.col("party_id") == party_id).collect()
    return rows.row(0, named=True) if rows.height else {"party_id": party_id}
