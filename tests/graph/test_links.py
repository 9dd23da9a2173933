"""The party graph built column-wise equals one built row by row, straight from the
definition (relations both ways, shared phone / address after normalisation, owners);
relations count only while valid, and the per-disbursement time filter equals a graph
rebuilt for each disbursement from the relations valid then."""

from __future__ import annotations

import re

import numpy as np
import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from flowgraph.graph.party_links import ALWAYS, FOREVER, PartyGraph, linked_targets
from flowgraph.graph.store_index import AccountLookup

PARTIES = [f"p{i}" for i in range(8)]
RELS = ["spouse", "parent", "guarantor", "affiliate"]
# Python's str.split() also splits on \x1c-\x1f, which are not Unicode White_Space; the
# contract's addresses never hold those control characters, so they are left out here
TEXT = st.text(alphabet=st.sampled_from(list("12 -+aAbB\t\u3000北京路号")), max_size=8)


def _norm_phone(s: str) -> str:
    return re.sub(r"\D", "", s)


def _norm_address(s: str) -> str:
    return " ".join(s.lower().split())


def reference(relations: pl.DataFrame, parties: pl.DataFrame, accounts: pl.DataFrame) -> PartyGraph:
    g = PartyGraph()
    for a, b, r in relations.drop_nulls().sort("party_a", "party_b", "relation").iter_rows():
        if a != b:
            g.neighbors.setdefault(a, []).append((b, r, ALWAYS, FOREVER))
            g.neighbors.setdefault(b, []).append((a, r, ALWAYS, FOREVER))
    for lst in g.neighbors.values():
        lst.sort()
    for kind, col, norm in (("shared_phone", "phone", _norm_phone), ("shared_address", "address", _norm_address)):
        for pid, value in parties.select("party_id", col).drop_nulls().sort("party_id").iter_rows():
            v = norm(value)
            if v:
                g.attr_of.setdefault(pid, []).append((kind, v))
                g.members.setdefault((kind, v), []).append(pid)
    for aid, owner in accounts.drop_nulls().sort("account_id").iter_rows():
        g.owned.setdefault(owner, []).append(aid)
        g.owner_of[aid] = owner
    return g


@settings(max_examples=150, deadline=None)
@given(
    rels=st.lists(st.tuples(st.sampled_from(PARTIES), st.sampled_from(PARTIES), st.sampled_from(RELS)), max_size=15),
    attrs=st.lists(st.tuples(st.sampled_from(PARTIES), st.none() | TEXT, st.none() | TEXT), max_size=8, unique_by=lambda x: x[0]),
    owners=st.lists(st.sampled_from(PARTIES), max_size=10),
)
def test_from_frames_equals_row_by_row_reference(rels, attrs, owners):
    relations = pl.DataFrame(rels, schema={"party_a": pl.Utf8, "party_b": pl.Utf8, "relation": pl.Utf8}, orient="row")
    parties = pl.DataFrame(attrs, schema={"party_id": pl.Utf8, "phone": pl.Utf8, "address": pl.Utf8}, orient="row")
    accounts = pl.DataFrame({"account_id": [f"a{i:02d}" for i in range(len(owners))], "owner_id": owners},
                            schema={"account_id": pl.Utf8, "owner_id": pl.Utf8})
    got, want = PartyGraph.from_frames(relations, parties, accounts), reference(relations, parties, accounts)
    assert got.neighbors == want.neighbors
    assert got.attr_of == want.attr_of
    assert got.members == want.members
    assert got.owned == want.owned and got.owner_of == want.owner_of
    for p in PARTIES:
        assert got.linked_accounts([p], depth=2) == want.linked_accounts([p], depth=2)


class FrameStore:
    """The two Store methods load_party_graph uses, over in-memory frames."""

    def __init__(self, **frames: pl.DataFrame):
        self.frames = frames

    def scan(self, table: str) -> pl.LazyFrame:
        return self.frames[table].lazy()

    def read(self, table: str, columns: list[str] | None = None) -> pl.DataFrame:
        return self.frames[table].select(columns) if columns else self.frames[table]


@settings(max_examples=150, deadline=None)
@given(
    rels=st.lists(st.tuples(st.sampled_from(PARTIES), st.sampled_from(PARTIES), st.sampled_from(RELS)), max_size=14),
    attrs=st.lists(st.tuples(st.sampled_from(PARTIES), st.none() | st.sampled_from(["1", "2", " 1"]),
                             st.none() | st.sampled_from(["x", "X ", "y"])), max_size=8, unique_by=lambda x: x[0]),
    owners=st.lists(st.sampled_from(PARTIES), max_size=10),
    borrowers=st.lists(st.sampled_from(PARTIES), min_size=1, max_size=3),
    depth=st.integers(0, 3),
    types=st.none() | st.lists(st.sampled_from([*RELS, "shared_phone", "shared_address"]), min_size=1),
)
def test_neighbourhood_graph_links_like_the_whole_graph(rels, attrs, owners, borrowers, depth, types):
    from flowgraph.graph.party_links import load_party_graph

    store = FrameStore(
        relations=pl.DataFrame(rels, schema={"party_a": pl.Utf8, "party_b": pl.Utf8, "relation": pl.Utf8}, orient="row"),
        parties=pl.DataFrame(attrs, schema={"party_id": pl.Utf8, "phone": pl.Utf8, "address": pl.Utf8}, orient="row"),
        accounts=pl.DataFrame({"account_id": [f"a{i:02d}" for i in range(len(owners))], "owner_id": owners},
                              schema={"account_id": pl.Utf8, "owner_id": pl.Utf8}),
    )
    whole = load_party_graph(store)
    part = load_party_graph(store, borrowers, depth)
    for d in range(depth + 1):
        assert part.linked_accounts(borrowers, d, types) == whole.linked_accounts(borrowers, d, types)


TIMES = [None, 0, 10, 20, 30]


@settings(max_examples=200, deadline=None)
@given(
    rels=st.lists(st.tuples(st.sampled_from(PARTIES), st.sampled_from(PARTIES), st.sampled_from(RELS),
                            st.sampled_from(TIMES), st.sampled_from(TIMES)), max_size=14,
                  unique_by=lambda r: r[:3]),
    phones=st.lists(st.tuples(st.sampled_from(PARTIES), st.sampled_from(["1", "2"])), max_size=4, unique_by=lambda x: x[0]),
    owners=st.lists(st.sampled_from(PARTIES), max_size=10),
    disb=st.lists(st.tuples(st.sampled_from(PARTIES), st.integers(-5, 35)), min_size=1, max_size=12),
    depth=st.integers(0, 3),
    types=st.none() | st.lists(st.sampled_from([*RELS, "shared_phone"]), min_size=1),
)
def test_time_filter_equals_a_graph_rebuilt_per_disbursement(rels, phones, owners, disb, depth, types):
    """The reference keeps, for each disbursement, only the relations valid at its time
    (since <= t < until) and builds a whole new graph from them."""
    schema = {"party_a": pl.Utf8, "party_b": pl.Utf8, "relation": pl.Utf8, "since": pl.Int64, "until": pl.Int64}
    relations = pl.DataFrame(rels, schema=schema, orient="row")
    parties = pl.DataFrame(phones, schema={"party_id": pl.Utf8, "phone": pl.Utf8}, orient="row")
    accounts = pl.DataFrame({"account_id": [f"a{i:02d}" for i in range(len(owners))], "owner_id": owners},
                            schema={"account_id": pl.Utf8, "owner_id": pl.Utf8})
    graph = PartyGraph.from_frames(relations, parties, accounts)
    lookup = AccountLookup(np.array(sorted(accounts["account_id"].to_list())))
    borrowers = [b for b, _ in disb]
    times = [t for _, t in disb]
    indptr, ids, linked_of = linked_targets(graph, lookup, borrowers, depth, types, times)
    for i, (b, t) in enumerate(disb):
        valid = relations.filter(
            (pl.col("since").is_null() | (pl.col("since") <= t)) & (pl.col("until").is_null() | (t < pl.col("until")))
        ).select("party_a", "party_b", "relation")
        want = PartyGraph.from_frames(valid, parties, accounts).linked_accounts([b], depth, types)
        assert linked_of[i] == want
        assert lookup.ids[ids[indptr[i]:indptr[i + 1]]].tolist() == sorted(want)
