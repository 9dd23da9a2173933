"""Borrower-linked parties and accounts, with the chain that links each one.

The borrower side P of a loan is its borrowers plus every party reachable from them
through allowed relation types within ``depth`` steps. Relations are followed in both
directions. Besides the explicit relations table, parties sharing a phone number or an
address are linked (``shared_phone`` / ``shared_address``, derived from the parties
table). T, the linked accounts, are the accounts owned by P.

Each linked account carries its chain, e.g. ``person:1 -spouse-> person:2 -owns-> A7``,
as a list of steps::

    [{"party": "person:1"}, {"relation": "spouse", "party": "person:2"}, {"owns": "A7"}]

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
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

import polars as pl

from .schema import RELATION_TYPES

Chain = list[dict[str, str]]


def _norm_phone(s: str) -> str:
    return re.sub(r"\D", "", s)


def _norm_address(s: str) -> str:
    return " ".join(s.lower().split())


@dataclass
class PartyGraph:
    """Parties, their relations (both directions) and the accounts they own."""

    neighbors: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
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
        g = cls()
        rel = relations.select("party_a", "party_b", "relation").drop_nulls()
        for a, b, r in rel.sort("party_a", "party_b", "relation").iter_rows():
            if a == b:
                continue
            g.neighbors.setdefault(a, []).append((b, r))
            g.neighbors.setdefault(b, []).append((a, r))
        for lst in g.neighbors.values():
            lst.sort()
        for kind, col, norm in (
            ("shared_phone", "phone", _norm_phone),
            ("shared_address", "address", _norm_address),
        ):
            if col not in parties.columns:
                continue
            for pid, value in parties.select("party_id", col).drop_nulls().sort("party_id").iter_rows():
                v = norm(value)
                if not v:
                    continue
                g.attr_of.setdefault(pid, []).append((kind, v))
                g.members.setdefault((kind, v), []).append(pid)
        for aid, owner in accounts.select("account_id", "owner_id").drop_nulls().sort(
            "account_id"
        ).iter_rows():
            g.owned.setdefault(owner, []).append(aid)
            g.owner_of[aid] = owner
        return g

    def _steps(self, party: str, allowed: frozenset[str]) -> Iterable[tuple[str, str]]:
        for other, rel in self.neighbors.get(party, ()):
            if rel in allowed:
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
    ) -> dict[str, Chain]:
        """Parties within ``depth`` steps of the borrowers → the shortest chain to each.

        Breadth-first with sorted neighbours, so the chain chosen is deterministic.

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
            for other, rel in self._steps(party, allowed):
                if other not in chains:
                    chains[other] = [*chains[party], {"relation": rel, "party": other}]
                    queue.append((other, d + 1))
        return chains

    def linked_accounts(
        self,
        borrowers: Iterable[str],
        depth: int = 1,
        relation_types: Iterable[str] | None = None,
    ) -> dict[str, Chain]:
        """Accounts owned by the borrower side → the chain linking each to a borrower."""
        out: dict[str, Chain] = {}
        for party, chain in self.linked_parties(borrowers, depth, relation_types).items():
            for acct in self.owned.get(party, ()):
                if acct not in out:
                    out[acct] = [*chain, {"owns": acct}]
        return dict(sorted(out.items()))


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


def load_party_graph(store) -> PartyGraph:
    """The party graph of a :class:`flowgraph.store.Store`."""
    parties = store.scan("parties")
    cols = [c for c in ("party_id", "phone", "address") if c in parties.collect_schema().names()]
    return PartyGraph.from_frames(
        relations=store.read("relations", ["party_a", "party_b", "relation"]),
        parties=parties.select(cols).collect(),
        accounts=store.read("accounts", ["account_id", "owner_id"]),
    )
