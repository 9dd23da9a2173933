"""Trace loans: from the store's disbursements to flow-back records (plain dicts).

Joins the pieces: disbursements and borrowers (store) → borrower-linked accounts
(:mod:`flowgraph.graph.party_links`) → batch search on the index (:mod:`flowgraph.engine.flow_back`) →
one JSON-ready record per disbursement, amounts as decimal strings and times as
ISO-8601 UTC (the shape of ``flowgraph trace --json``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import polars as pl

from flowgraph.core.errors import NotFound
from flowgraph.core.values import format_amount, format_ts
from flowgraph.engine.csr import TemporalIndex
from flowgraph.engine.flow_back import find_flow_back_batch
from flowgraph.graph.hops import read_hops
from flowgraph.graph.party_links import chain_text, linked_targets, load_party_graph
from flowgraph.graph.store_index import AccountLookup, load_or_build_index
from flowgraph.rules.kinds.flow_back import TraceOptions
from flowgraph.store.embedded import Store


def select_disbursements(store: Store, loan_ids: Iterable[str] | None) -> pl.DataFrame:
    """Disbursements of the given loans (all when None) with borrower_id, in a stable order."""
    disb = store.read("disbursements")
    loans = store.read("loans", ["loan_id", "borrower_id", "payment_mode"])
    if loan_ids is not None:
        wanted = list(dict.fromkeys(loan_ids))
        known = set(loans["loan_id"].to_list()) | set(disb["loan_id"].to_list())
        unknown = [x for x in wanted if x not in known]
        if unknown:
            raise NotFound(f"unknown loan id(s): {', '.join(unknown)}")
        disb = disb.filter(pl.col("loan_id").is_in(wanted))
    return (
        disb.join(loans, on="loan_id", how="left")
        .with_columns(pl.col("payment_mode").fill_null("self"))
        .sort("loan_id", "ts", "disbursement_id")
    )


LOCAL_GRAPH_MAX = 1_000  # borrowers up to which a trace builds only their part of the party graph


def trace_loans(
    store: Store,
    loan_ids: Iterable[str] | None,
    options: TraceOptions | dict[str, TraceOptions] | None = None,
    threads: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[dict]:
    """Flow-back records for the disbursements of ``loan_ids`` (None = every loan).

    ``options`` may map payment mode (self / entrusted) → options, as a rule pack does.
    """
    options = options or TraceOptions.defaults()
    disb = select_disbursements(store, loan_ids)
    index, _ = load_or_build_index(store, progress=progress)
    lookup = AccountLookup(index.account_ids)
    borrowers = disb["borrower_id"].unique().drop_nulls().to_list()
    opts = [options] if isinstance(options, TraceOptions) else list(options.values())
    depth = max(o.link_depth for o in opts)
    # a few loans need only their borrowers' neighbourhood; many loans, the whole graph
    graph = load_party_graph(store, borrowers, depth) if len(borrowers) <= LOCAL_GRAPH_MAX else load_party_graph(store)
    if isinstance(options, TraceOptions):
        groups = [(disb, options)]
    else:
        groups = [(part, options[mode[0]]) for mode, part in disb.group_by("payment_mode", maintain_order=True)]
    searched = [_search_group(part, opts, index, lookup, graph, threads, progress) for part, opts in groups]
    # one read of just the transaction rows the paths use, for every group at once
    rows = np.concatenate([b.hop_rows for b, _ in searched]) if searched else np.zeros(0, np.int64)
    hop_of = read_hops(store, rows)
    records: list[dict] = []
    for (part, _), (batch, linked_of) in zip(groups, searched, strict=True):
        records += _records(part, batch, linked_of, hop_of)
    if len(groups) == 1:
        return records
    order = {d: i for i, d in enumerate(disb["disbursement_id"].to_list())}
    return sorted(records, key=lambda r: order[r["disbursement_id"]])


@dataclass(frozen=True)
class SearchInputs:
    """What the batch search needs for a set of disbursements (the arrays line up with
    ``disb``'s rows)."""

    disb: pl.DataFrame
    accounts: np.ndarray  # dense id of each disbursement's account
    t0s: np.ndarray
    amounts: np.ndarray
    target_indptr: np.ndarray  # CSR of the borrower-linked accounts per disbursement
    target_ids: np.ndarray
    linked_of: list[dict]  # linked account → chain, per disbursement


def _inputs(disb: pl.DataFrame, options: TraceOptions, lookup: AccountLookup, graph) -> SearchInputs:
    # the borrower side as it was at each disbursement: a relation counts from its since
    target_indptr, target_ids, linked_of = linked_targets(
        graph, lookup, disb["borrower_id"].to_list(), options.link_depth, options.relation_types,
        disb["ts"].to_list(),
    )
    return SearchInputs(
        disb, lookup.many(disb["account_id"].to_list()), disb["ts"].to_numpy().astype(np.int64),
        disb["amount"].to_numpy().astype(np.int64), target_indptr, target_ids, linked_of,
    )


def search_inputs(
    store: Store, options: TraceOptions | None = None, loan_ids: Iterable[str] | None = None, index=None
) -> tuple[TemporalIndex, SearchInputs]:
    """(index, inputs) exactly as :func:`trace_loans` builds them for one option set (for
    benchmarks and tools that call :func:`flowgraph.engine.flow_back.find_flow_back_batch`)."""
    options = options or TraceOptions.defaults()
    disb = select_disbursements(store, loan_ids)
    if index is None:
        index, _ = load_or_build_index(store)
    return index, _inputs(disb, options, AccountLookup(index.account_ids), load_party_graph(store))


def _search_group(disb, options, index, lookup, graph, threads, progress):
    """(batch result, linked accounts per disbursement) for one option set."""
    inp = _inputs(disb, options, lookup, graph)
    if progress:
        progress(f"searching {disb.height} disbursement(s)")
    batch = find_flow_back_batch(
        index, inp.accounts, inp.t0s, inp.amounts, inp.target_indptr, inp.target_ids, options.params,
        threads=threads,
    )
    return batch, inp.linked_of


def _records(disb: pl.DataFrame, batch, linked_of: list[dict], hop_of: dict[int, dict]) -> list[dict]:
    records = []
    for i, row in enumerate(disb.iter_rows(named=True)):
        paths = []
        ends: list[str] = []
        for p in range(batch.path_indptr[i], batch.path_indptr[i + 1]):
            hops = [hop_of[int(r)] for r in batch.hop_rows[batch.hop_indptr[p] : batch.hop_indptr[p + 1]]]
            paths.append({"hops": hops})
            if hops[-1]["dst"] not in ends:
                ends.append(hops[-1]["dst"])
        returned = int(batch.returned_amount[i])
        amount = int(row["amount"])
        first = int(batch.first_return_ts[i])
        records.append(
            {
                "loan_id": row["loan_id"],
                "disbursement_id": row["disbursement_id"],
                "borrower_id": row["borrower_id"],
                "account": row["account_id"],
                "ts": format_ts(row["ts"]),
                "amount": format_amount(amount),
                "linked_accounts": len(linked_of[i]),
                "paths": paths,
                "path_count": int(batch.path_count[i]),
                "returned_amount": format_amount(returned),
                "return_ratio": round(returned / amount, 6) if amount else 0.0,
                "first_return_ts": format_ts(first) if first >= 0 else None,
                "truncated": bool(batch.truncated[i]),
                "returned_to": [
                    {"account": a, "chain": chain_text(linked_of[i][a])} for a in ends if a in linked_of[i]
                ],
            }
        )
    return records
