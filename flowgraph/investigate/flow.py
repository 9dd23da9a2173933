"""Forward flow of loans (资金流向): where each disbursement's money went, from the store.

Joins the pieces: the loan's disbursements (store) → the parameters of the loan's
flow-back rule for its payment mode (rule pack; flags override) → the forward-flow search
on the index (:mod:`flowgraph.engine.forward_flow`) → one JSON-ready record per
disbursement (the shape of ``flowgraph flow --json``)::

    {"loan_id", "disbursement_id", "borrower_id", "account", "ts", "amount",
     "params": {...}, "edge_count", "truncated",
     "edges": [{"tx_id", "src", "dst", "ts", "amount", "hop", "marks"}],
     "accounts": [{"account", "hop", "category", "borrower_side", "prohibited", "chain"}]}

``edges`` are ordered by (ts, tx_id); ``hop`` is the fewest transfers at which the
transfer is reached. ``marks`` of an edge name what its destination is or what the edge
does: ``borrower_side`` (an account of the borrower side of the loan's flow-back rule),
``prohibited`` (an account category of the pack's prohibited_destination rules),
``flow_back`` (the edge lies on a flow-back path of the disbursement) and ``return`` (the
last hop of such a path: the money came back). ``accounts`` lists every account reached,
the disbursement account first (hop 0).
"""

from __future__ import annotations

from collections.abc import Iterable

import polars as pl

from flowgraph.core.values import DAY_MS, format_amount, format_ts
from flowgraph.engine.forward_flow import ForwardFlowParams, find_forward_flow_many
from flowgraph.graph.hops import read_hops
from flowgraph.graph.party_links import chain_text, load_party_graph
from flowgraph.graph.store_index import AccountLookup, load_or_build_index
from flowgraph.investigate.trace import select_disbursements, trace_loans
from flowgraph.rules.kinds.flow_back import TraceOptions, options_from_pack
from flowgraph.store.embedded import Store

MAX_EDGES = 100_000  # transfers listed per disbursement (fewest hops first) unless asked


def prohibited_categories(pack) -> list[str]:
    """Account categories named by the pack's enabled prohibited_destination rules."""
    cats: set[str] = set()
    for rule in pack.of_kind("prohibited_destination") if pack is not None else []:
        cats.update(rule.params.get("categories", ()))
    return sorted(cats)


def flow_params(options: TraceOptions, max_edges: int = MAX_EDGES) -> ForwardFlowParams:
    """The forward-flow parameters of a flow-back rule's options (window, hops, floor)."""
    p = options.params
    return ForwardFlowParams(window_ms=p.window_ms, max_hops=p.max_hops, min_amount=p.min_amount,
                             min_amount_ratio=p.min_amount_ratio, max_edges=max_edges)  # fmt: skip


def forward_flow_loans(
    store: Store,
    loan_ids: Iterable[str],
    pack=None,
    overrides: dict | None = None,
    max_edges: int = MAX_EDGES,
    options: dict[str, TraceOptions] | None = None,
) -> list[dict]:
    """Forward-flow records for every disbursement of ``loan_ids``.

    Parameters
    ----------
    store : Store
    loan_ids : iterable of str
        Unknown ids are a :class:`~flowgraph.core.errors.NotFound`.
    pack : RulePack or None
        Rule pack giving the parameters per payment mode (the loan's flow_back rule) and
        the prohibited categories; ``None`` = DESIGN.md defaults and no prohibited marks.
    overrides : dict, optional
        ``window_days``, ``max_hops``, ``min_amount`` (minor units), ``min_amount_ratio``
        replacing the rule's values (None = keep).
    max_edges : int
        Transfers kept per disbursement (fewest hops first); ``truncated`` says when more
        were reachable.
    options : dict, optional
        Payment mode → :class:`TraceOptions` to use instead of the pack's flow-back rules
        (an evidence bundle passes the options it records).
    """
    loan_ids = list(dict.fromkeys(loan_ids))
    disb = select_disbursements(store, loan_ids)
    if options is not None:
        by_mode = dict(options)
    elif pack is not None:
        by_mode = options_from_pack(pack)
    else:
        by_mode = {m: TraceOptions.defaults() for m in ("self", "entrusted")}
    by_mode = {m: o.override(**(overrides or {})) for m, o in by_mode.items()}
    index, _ = load_or_build_index(store)
    lookup = AccountLookup(index.account_ids)
    # flow-back paths of the same disbursements with the same parameters: marks flow_back / return
    traced = {r["disbursement_id"]: r for r in trace_loans(store, loan_ids, by_mode)} if disb.height else {}
    modes = disb["payment_mode"].to_list()
    results = [None] * disb.height
    for mode in dict.fromkeys(modes):
        pos = [i for i, m in enumerate(modes) if m == mode]
        part = disb[pos]
        res = find_forward_flow_many(
            index, lookup.many(part["account_id"].to_list()), part["ts"].to_list(),
            part["amount"].to_list(), flow_params(by_mode.get(mode, TraceOptions.defaults()), max_edges),
        )
        for i, r in zip(pos, res, strict=True):
            results[i] = r
    rows = [int(x) for r in results for x in r.rows.tolist()]
    hop_of = read_hops(store, rows) if rows else {}
    borrowers = disb["borrower_id"].drop_nulls().unique().to_list()
    depth = max((o.link_depth for o in by_mode.values()), default=1)
    graph = load_party_graph(store, borrowers, depth) if borrowers else None
    reached = {hop_of[x]["dst"] for x in rows} | set(disb["account_id"].to_list())
    category = _categories(store, reached)
    banned = set(prohibited_categories(pack))
    records = []
    for i, row in enumerate(disb.iter_rows(named=True)):
        opts = by_mode.get(row["payment_mode"], TraceOptions.defaults())
        # the borrower side as the flow-back rule sees it: relations valid at the disbursement
        linked = (graph.linked_accounts([row["borrower_id"]], opts.link_depth, opts.relation_types, at=int(row["ts"]))
                  if graph and row["borrower_id"] else {})  # fmt: skip
        records.append(_record(row, results[i], hop_of, linked, category, banned, traced.get(row["disbursement_id"]), opts, max_edges))
    return records


def _categories(store: Store, accounts: set[str]) -> dict[str, str | None]:
    acc = store.read("accounts", ["account_id", "category"])
    acc = acc.filter(pl.col("account_id").is_in(sorted(accounts)))
    return dict(zip(acc["account_id"].to_list(), acc["category"].to_list(), strict=True))


def _record(row, res, hop_of, linked, category, banned, traced, opts, max_edges) -> dict:
    on_path: set[str] = set()
    returns: set[str] = set()
    for path in (traced or {}).get("paths", []):
        on_path.update(h["tx_id"] for h in path["hops"])
        returns.add(path["hops"][-1]["tx_id"])
    d = row["account_id"]
    first_hop = {d: 0}
    edges = []
    for r, hop in zip(res.rows.tolist(), res.hops.tolist(), strict=True):
        h = hop_of[int(r)]
        dst = h["dst"]
        first_hop[dst] = min(first_hop.get(dst, hop), hop)
        marks = []
        if dst in linked:
            marks.append("borrower_side")
        if category.get(dst) in banned:
            marks.append("prohibited")
        if h["tx_id"] in on_path:
            marks.append("flow_back")
        if h["tx_id"] in returns:
            marks.append("return")
        edges.append({"tx_id": h["tx_id"], "src": h["src"], "dst": dst, "ts": h["ts"],
                      "amount": h["amount"], "hop": int(hop), "marks": marks})  # fmt: skip
    edges.sort(key=lambda e: (e["ts"], e["tx_id"]))
    p = opts.params
    params = flow_params(opts, max_edges)
    accounts = [
        {"account": a, "hop": first_hop[a], "category": category.get(a),
         "borrower_side": a in linked, "prohibited": category.get(a) in banned,
         "chain": chain_text(linked[a]) if a in linked else None}  # fmt: skip
        for a in sorted(first_hop, key=lambda a: (first_hop[a], a))
    ]
    return {
        "loan_id": row["loan_id"],
        "disbursement_id": row["disbursement_id"],
        "borrower_id": row["borrower_id"],
        "payment_mode": row["payment_mode"],
        "account": d,
        "ts": format_ts(row["ts"]),
        "amount": format_amount(row["amount"]),
        "params": {
            "window_days": p.window_ms / DAY_MS, "max_hops": p.max_hops,
            "min_amount": format_amount(p.min_amount), "min_amount_ratio": p.min_amount_ratio,
            "threshold": format_amount(params.threshold(row["amount"])), "max_edges": max_edges,
        },
        "edge_count": len(edges),
        "truncated": bool(res.truncated),
        "flow_back_paths": (traced or {}).get("path_count", 0),
        "edges": edges,
        "accounts": accounts,
    }
