"""Engine commands: index, links, trace, cycles."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.tree import Tree

from flowgraph.cli.app import app
from flowgraph.cli.neo4j_options import NeoDatabase, NeoPassword, NeoUri, NeoUser, connect_neo4j
from flowgraph.cli.output import (
    JsonOpt,
    RulesOpt,
    emit_json,
    open_store,
    out,
    say,
    settings,
    shield,
    trace_tree,
    want_json,
)
from flowgraph.core.files import atomic_write_bytes
from flowgraph.core.values import DAY_MS
from flowgraph.rules.pack import load_pack
from flowgraph.store.outputs import check_output_file


class Tracing(StrEnum):
    greedy = "greedy"
    maxflow = "maxflow"


@app.command()
def index(
    rebuild: Annotated[bool, typer.Option(help="Rebuild even if the index is current.")] = False,
    from_neo4j: Annotated[bool, typer.Option("--from-neo4j", help="Build it from the TRANSFER relationships in Neo4j (after `neo4j push` or an import of the store's export).")] = False,
    page_size: Annotated[int, typer.Option(min=1, help="With --from-neo4j: relationships per keyset page.")] = 50_000,
    neo4j_uri: NeoUri = None, neo4j_user: NeoUser = None, neo4j_password: NeoPassword = None,
    neo4j_database: NeoDatabase = None,
    json_: JsonOpt = False,
) -> None:
    """Build (or refresh) the CSR index of the store's transactions.

    With --json: the index meta plus ``edges``, ``accounts`` and ``digest`` (SHA-256 of the
    installed index's account ids and arrays), so two indexes can be compared by anyone.
    """
    from flowgraph.engine.csr import index_digest, load_index
    from flowgraph.graph.store_index import load_or_build_index

    store = open_store()
    if from_neo4j:
        from flowgraph.neo4j.source import index_store_from_source

        if not want_json(json_):
            say("building the index from Neo4j")
        with connect_neo4j(neo4j_uri, neo4j_user, neo4j_password, neo4j_database) as neo:
            meta = index_store_from_source(store, neo, page_size)
    else:
        _, meta = load_or_build_index(store, rebuild, None if want_json(json_) else say)
    if want_json(json_):
        installed, _ = load_index(store.index_dir)
        emit_json({**meta, "edges": int(installed.n_edges), "accounts": int(installed.n_accounts),
                   "digest": index_digest(installed)})
    else:
        state = "built" if meta.get("rebuilt") else "current"
        say(f"index {state}: {meta['accounts']} accounts, {meta['edges']} edges (snapshot {meta['snapshot_id']})")


@app.command()
def links(
    party_id: Annotated[str, typer.Argument(help="A party id, e.g. person:29.")],
    depth: Annotated[int, typer.Option(min=0, help="Relation steps to follow.")] = 1,
    json_: JsonOpt = False,
) -> None:
    """Parties and accounts linked to a party, with the chain that links each."""
    from flowgraph.graph.party_links import chain_text, load_party_graph

    store = open_store()
    graph = load_party_graph(store)
    doc = shield({
        "party_id": party_id, "depth": depth,
        "parties": [{"party_id": p, "chain": c} for p, c in graph.linked_parties([party_id], depth).items()],
        "accounts": [{"account_id": a, "chain": c} for a, c in graph.linked_accounts([party_id], depth).items()],
    }, party_id)
    if want_json(json_):
        emit_json(doc)
        return
    party_id = doc["party_id"]
    parties = {p["party_id"]: p["chain"] for p in doc["parties"]}
    accounts = {a["account_id"]: a["chain"] for a in doc["accounts"]}
    tree = Tree(f"[bold]{party_id}[/bold]")
    nodes = {party_id: tree}
    for p, chain in sorted(parties.items(), key=lambda kv: (len(kv[1]), kv[0])):
        if p == party_id:
            continue
        parent = nodes.get(chain[-2]["party"], tree)
        nodes[p] = parent.add(f"{chain[-1]['relation']} → [bold]{p}[/bold]")
    for a, chain in accounts.items():
        nodes.get(chain[-2]["party"], tree).add(f"owns [cyan]{a}[/cyan]")
    out.print(tree)
    say(f"{len(parties) - 1} linked parties, {len(accounts)} accounts; e.g. {chain_text(next(iter(accounts.values())))}" if accounts else "no accounts linked")


def _print_cypher(records: list[dict], as_json: bool) -> None:
    """One Cypher statement per loan (all its disbursements' paths), `;`-separated."""
    from flowgraph.neo4j.trace_cypher import cypher_for_records

    by_loan: dict[str, list[dict]] = {}
    for rec in records:
        by_loan.setdefault(rec["loan_id"], []).append(rec)
    for loan_id, recs in by_loan.items():
        query = cypher_for_records(recs)
        if as_json:
            emit_json({"loan_id": loan_id, "disbursements": [r["disbursement_id"] for r in recs],
                       "path_count": sum(len(r["paths"]) for r in recs),
                       "tx_ids": sorted({h["tx_id"] for r in recs for p in r["paths"] for h in p["hops"]}),
                       "cypher": query})
        else:
            sys.stdout.write(query + ";\n\n")


@app.command()
def trace(
    loan_ids: Annotated[list[str] | None, typer.Argument(help="Loan ids.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Every disbursement in the store.")] = False,
    window_days: Annotated[float | None, typer.Option(min=0)] = None,
    max_hops: Annotated[int | None, typer.Option(min=1, max=16)] = None,
    min_amount_ratio: Annotated[float | None, typer.Option(min=0.0)] = None,
    min_amount: Annotated[str | None, typer.Option(help="Minimum hop amount, decimal (e.g. 1000.00).")] = None,
    link_depth: Annotated[int | None, typer.Option(min=0)] = None,
    max_paths: Annotated[int | None, typer.Option(min=1)] = None,
    tracing: Annotated[Tracing | None, typer.Option(help="greedy (default) or maxflow.")] = None,
    threads: Annotated[int | None, typer.Option(min=1, help="Threads for batch search.")] = None,
    rules: RulesOpt = None,
    cypher: Annotated[bool, typer.Option("--cypher", help="Print, per loan, a Cypher query showing exactly its paths in Neo4j Browser or Bloom.")] = False,
    json_: JsonOpt = False,
) -> None:
    """Flow-back paths of loans' disbursements back to borrower-linked accounts.

    Parameters come from the rule pack's flow_back rules (per payment mode); the flags
    override them.
    """
    from flowgraph.core.values import parse_amount
    from flowgraph.investigate.trace import trace_loans
    from flowgraph.rules.kinds.flow_back import options_from_pack

    if not all_ and not loan_ids:
        raise typer.BadParameter("give LOAN_ID... or --all")
    overrides = dict(
        window_days=window_days, max_hops=max_hops, min_amount_ratio=min_amount_ratio,
        min_amount=parse_amount(min_amount) if min_amount is not None else None,
        link_depth=link_depth, max_paths=max_paths,
        tracing=tracing.value if tracing else None,
    )
    opts = {mode: o.override(**overrides) for mode, o in options_from_pack(load_pack(rules)).items()}
    store = open_store()
    records = shield(trace_loans(store, None if all_ else loan_ids, opts, threads=threads, progress=None if want_json(json_) else say))
    if cypher:
        _print_cypher(records, want_json(json_))
        return
    if want_json(json_):
        for rec in records:
            emit_json(rec)
        return
    for rec in records:
        out.print(trace_tree(rec))
    hits = sum(1 for r in records if r["paths"])
    say(f"{len(records)} disbursement(s), {hits} with flow-back")


@app.command()
def cycles(
    edges: Annotated[Path | None, typer.Option(help="Plain from,to,amount[,ts] edge list without header (default: the store).")] = None,
    min_hops: Annotated[int, typer.Option(min=2)] = 3,
    max_hops: Annotated[int, typer.Option(min=2, max=12)] = 7,
    amount_ratio: Annotated[str | None, typer.Option(help="LO:HI band for consecutive amounts y/x, e.g. 0.2:3.")] = None,
    temporal: Annotated[bool, typer.Option(help="Only cycles whose transfers increase in time.")] = False,
    window_days: Annotated[float | None, typer.Option(min=0, help="With --temporal: max span of a cycle.")] = None,
    limit: Annotated[int, typer.Option(min=0, help="List at most this many cycles, shortest first (0: all).")] = 1000,
    out_file: Annotated[Path | None, typer.Option("--out", help="Write the result here instead of stdout.")] = None,
    json_: JsonOpt = False,
) -> None:
    """Simple transfer cycles, shortest first, in the CodeCraft result layout (count, then one
    cycle per line), or JSON lines with --json: one {"length", "accounts"} per cycle, then
    {"count", "truncated", "limit"}. At most --limit cycles (default 1000) are listed;
    "truncated" says when more exist.
    """
    from flowgraph.investigate.cycles import cycles_text, list_cycles

    if window_days is not None and not temporal:
        raise typer.BadParameter("--window-days needs --temporal")
    band = None
    if amount_ratio:
        try:
            lo, hi = (float(x) for x in amount_ratio.split(":"))
        except ValueError:
            raise typer.BadParameter("--amount-ratio must look like LO:HI, e.g. 0.2:3") from None
        band = (lo, hi)
    window_ms = int(window_days * DAY_MS) if window_days is not None else None
    if out_file:
        check_output_file(out_file, [settings.store])
    result = list_cycles(None if edges else open_store(), edges, limit, min_hops=min_hops, max_hops=max_hops,
                         amount_ratio=band, temporal=temporal, window_ms=window_ms)
    if edges is None:  # the store's accounts are personal data; an edge file's ids are the user's own
        result["cycles"] = shield(result["cycles"])
    if want_json(json_):
        import json

        lines = [json.dumps({"length": len(c), "accounts": c}, ensure_ascii=False) for c in result["cycles"]]
        summary = {k: result[k] for k in ("count", "truncated", "limit")}
        text = "\n".join([*lines, json.dumps(summary)]) + "\n"
    else:
        text = cycles_text(result)
    note = f"; more exist (--limit {limit} reached; --limit 0 lists all)" if result["truncated"] else ""
    if out_file:
        atomic_write_bytes(out_file, text.encode())
        say(f"{result['count']} cycles → {out_file}{note}")
    else:
        sys.stdout.write(text)
        if note and not want_json(json_):
            say(f"{result['count']} cycles listed{note}")
