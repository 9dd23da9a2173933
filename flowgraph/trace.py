"""Trace loans: from the store's disbursements to flow-back records (plain dicts).

Joins the pieces: disbursements and borrowers (store) → borrower-linked accounts
(:mod:`flowgraph.links`) → batch search on the index (:mod:`flowgraph.flow_back`) →
one JSON-ready record per disbursement, amounts as decimal strings and times as
ISO-8601 UTC (the shape of ``flowgraph trace --json``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from .flow_back import FlowBackParams, find_flow_back_batch
from .graph import AccountLookup, load_or_build_index
from .index import TemporalIndex
from .links import chain_text, load_party_graph
from .schema import RELATION_TYPES, TABLES
from .store import Store
from .values import DAY_MS, format_amount, format_ts


@dataclass(frozen=True)
class FlowBackRuleParams:
    """The flow-back parameters as a rule pack writes them (``[params]`` of a flow_back rule)."""

    window_days: float = field(default=30.0, metadata={"min": 0, "max": 3660, "doc": "days after disbursement a return may take"})
    max_hops: int = field(default=5, metadata={"min": 1, "max": 12, "doc": "transfers on a path"})
    min_amount: int = field(default=0, metadata={"type": "money", "min": 0, "doc": "every hop at least this (decimal string)"})
    min_amount_ratio: float = field(default=0.1, metadata={"min": 0, "max": 1, "doc": "every hop at least this share of the disbursed amount"})
    link_depth: int = field(default=1, metadata={"min": 0, "max": 6, "doc": "relation steps from the borrowers"})
    relation_types: tuple[str, ...] = field(default=RELATION_TYPES, metadata={"choices": RELATION_TYPES, "doc": "relations that link parties"})
    max_paths: int = field(default=100, metadata={"min": 1, "max": 100000, "doc": "paths listed per disbursement"})
    tracing: str = field(default="greedy", metadata={"choices": ("greedy", "maxflow"), "doc": "returned-amount rule"})


@dataclass(frozen=True)
class TraceOptions:
    """Flow-back parameters plus who counts as the borrower side."""

    params: FlowBackParams = FlowBackParams()
    link_depth: int = 1
    relation_types: tuple[str, ...] = RELATION_TYPES

    @classmethod
    def defaults(cls) -> TraceOptions:
        """DESIGN.md defaults: 30 days, 5 hops, ratio 0.1, depth 1, every relation type."""
        return cls()

    def override(self, **kw) -> TraceOptions:
        """Replace the parameters given (None = keep)."""
        kw = {k: v for k, v in kw.items() if v is not None}
        p = {}
        if "window_days" in kw:
            p["window_ms"] = int(round(kw.pop("window_days") * DAY_MS))
        for name in ("max_hops", "min_amount", "min_amount_ratio", "max_paths", "tracing"):
            if name in kw:
                p[name] = kw.pop(name)
        params = dataclasses.replace(self.params, **p)
        return dataclasses.replace(self, params=params, **kw)

    @classmethod
    def from_rule_params(cls, params: dict) -> TraceOptions:
        """Options from a flow_back rule's validated ``params``."""
        p = FlowBackRuleParams(**params)
        return cls().override(
            window_days=p.window_days, max_hops=p.max_hops, min_amount=p.min_amount,
            min_amount_ratio=p.min_amount_ratio, max_paths=p.max_paths, tracing=p.tracing,
            link_depth=p.link_depth, relation_types=tuple(p.relation_types),
        )

    def as_dict(self) -> dict:
        p = dataclasses.asdict(self.params)
        return {**p, "link_depth": self.link_depth, "relation_types": list(self.relation_types)}


def options_from_pack(pack) -> dict[str, TraceOptions]:
    """Payment mode → the options of the pack's flow_back rule for that mode.

    A mode no enabled flow_back rule covers gets DESIGN.md's defaults.
    """
    out = {}
    for mode in ("self", "entrusted"):
        rule = next((r for r in pack.of_kind("flow_back") if mode in r.payment_modes), None)
        out[mode] = TraceOptions.from_rule_params(rule.params) if rule else TraceOptions.defaults()
    return out


def select_disbursements(store: Store, loan_ids: Iterable[str] | None) -> pl.DataFrame:
    """Disbursements of the given loans (all when None) with borrower_id, in a stable order."""
    disb = store.read("disbursements")
    loans = store.read("loans", ["loan_id", "borrower_id", "payment_mode"])
    if loan_ids is not None:
        wanted = list(dict.fromkeys(loan_ids))
        known = set(loans["loan_id"].to_list()) | set(disb["loan_id"].to_list())
        unknown = [x for x in wanted if x not in known]
        if unknown:
            raise ValueError(f"unknown loan id(s): {', '.join(unknown)}")
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


def read_rows(store: Store, table: str, rows: np.ndarray, columns: list[str]) -> pl.DataFrame:
    """The given rows (positions in the table) of some columns, plus ``__row``, in row order.

    Reads only the Parquet row groups that hold them: a trace touches a few hundred
    transactions of a table that may hold hundreds of millions.
    """
    import pyarrow.parquet as pq

    rows = np.unique(np.asarray(rows, dtype=np.int64))
    path = store.table_path(table)
    if path is None or not len(rows):
        return TABLES[table].empty().select(columns).with_columns(pl.Series("__row", rows, pl.Int64))
    lf = store.scan(table)  # through the store: its checks on the table file apply
    pf = pq.ParquetFile(path)
    sizes = np.array([pf.metadata.row_group(g).num_rows for g in range(pf.num_row_groups)], np.int64)
    ends = np.cumsum(sizes)
    if rows[-1] >= ends[-1] or rows[0] < 0:
        raise IndexError(f"{path}: row {int(rows[-1])} out of range ({int(ends[-1])} rows); rebuild the index")
    groups = np.unique(np.searchsorted(ends, rows, side="right"))
    if 4 * len(groups) > len(sizes):
        # most of the file anyway: polars' parallel reader with the filter streamed beats
        # decoding whole row groups through pyarrow
        wanted = pl.Series("__row", rows, pl.Int64).implode()
        return (
            lf.select(columns).with_row_index("__row").filter(pl.col("__row").is_in(wanted))
            .with_columns(pl.col("__row").cast(pl.Int64)).collect()
        )
    part = pl.from_arrow(pf.read_row_groups(groups.tolist(), columns=columns))
    first = np.concatenate([[0], np.cumsum(sizes[groups])[:-1]])  # where each group starts in `part`
    g_of = np.searchsorted(ends, rows, side="right")
    local = first[np.searchsorted(groups, g_of)] + (rows - (ends[g_of] - sizes[g_of]))
    return part[local].with_columns(pl.Series("__row", rows, pl.Int64))


def linked_targets(
    graph, lookup: AccountLookup, borrowers: list[str], depth: int, relation_types
) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """Borrower-linked accounts of each disbursement's borrower.

    Returns (indptr, sorted dense ids, linked account → chain per disbursement); borrowers
    repeat a lot, so each is expanded once.
    """
    cache: dict[str, dict] = {}
    lists, linked_of = [], []
    for b in borrowers:
        key = b or ""
        if key not in cache:
            cache[key] = graph.linked_accounts([b], depth, relation_types) if b else {}
        linked_of.append(cache[key])
        dense = lookup.many(list(cache[key]))
        lists.append(np.sort(dense[dense >= 0]).astype(np.int64))
    indptr = np.zeros(len(lists) + 1, np.int64)
    if lists:
        np.cumsum([len(x) for x in lists], out=indptr[1:])
    ids = np.concatenate(lists) if lists else np.zeros(0, np.int64)
    return indptr, ids, linked_of


HOP_COLUMNS = ["tx_id", "src_account", "dst_account", "ts", "amount"]


def hop_records(tx: pl.DataFrame, rows: np.ndarray) -> dict[int, dict]:
    """Transaction row → ``{tx_id, src, dst, ts, amount}`` (ints) for the given rows.

    ``tx`` is the whole transactions table, or the output of :func:`read_rows` for (at
    least) these rows.
    """
    rows = np.unique(np.asarray(rows, dtype=np.int64))
    if not len(rows):
        return {}
    if "__row" in tx.columns:
        pos = np.searchsorted(tx["__row"].to_numpy(), rows)
        sub = tx.select(HOP_COLUMNS)[pos]
    else:
        sub = tx.select(HOP_COLUMNS)[rows]
    return {
        int(r): {"tx_id": t, "src": s, "dst": d, "ts": ts, "amount": a}
        for r, (t, s, d, ts, a) in zip(rows.tolist(), sub.iter_rows(), strict=True)
    }


def hop_json(hop: dict) -> dict:
    """A hop record with its amount as a decimal string and ts as ISO-8601 UTC."""
    return hop | {"ts": format_ts(hop["ts"]), "amount": format_amount(hop["amount"])}


def read_hops(store: Store, rows: np.ndarray) -> dict[int, dict]:
    """Transaction row → JSON hop, reading only those rows of the store."""
    rows = np.asarray(rows, dtype=np.int64)
    return {r: hop_json(h) for r, h in hop_records(read_rows(store, "transactions", rows, HOP_COLUMNS), rows).items()}


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
    target_indptr, target_ids, linked_of = linked_targets(
        graph, lookup, disb["borrower_id"].to_list(), options.link_depth, options.relation_types
    )
    return SearchInputs(
        disb, lookup.many(disb["account_id"].to_list()), disb["ts"].to_numpy().astype(np.int64),
        disb["amount"].to_numpy().astype(np.int64), target_indptr, target_ids, linked_of,
    )


def search_inputs(
    store: Store, options: TraceOptions | None = None, loan_ids: Iterable[str] | None = None, index=None
) -> tuple[TemporalIndex, SearchInputs]:
    """(index, inputs) exactly as :func:`trace_loans` builds them for one option set (for
    benchmarks and tools that call :func:`flowgraph.flow_back.find_flow_back_batch`)."""
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
