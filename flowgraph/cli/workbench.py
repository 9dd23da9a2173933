"""The analyst's workbench on the command line: forward flow (`flow`)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.tree import Tree

from flowgraph.cli.app import app
from flowgraph.cli.output import (
    JsonOpt,
    RulesOpt,
    emit_json,
    open_store,
    out,
    say,
    shield,
    want_json,
)
from flowgraph.rules.pack import load_pack

_MARK_STYLE = {"return": "bold red", "flow_back": "red", "borrower_side": "yellow", "prohibited": "magenta"}


def flow_tree(rec: dict) -> Tree:
    """A forward-flow record for people: the disbursement, then the transfers hop by hop."""
    p = rec["params"]
    tree = Tree(
        f"[bold]{escape(rec['loan_id'])}[/bold] / {escape(rec['disbursement_id'])}: {rec['amount']} to "
        f"{escape(rec['account'])} at {rec['ts']}  [dim](≤ {p['max_hops']} hops, {p['window_days']:g} days, "
        f"each ≥ {p['threshold']})[/dim]"
    )
    if not rec["edges"]:
        tree.add("[green]no transfer of the proceeds within the parameters[/green]")
        return tree
    tree.add(f"{rec['edge_count']} transfer(s) to {len(rec['accounts']) - 1} account(s)"
             f"{' (truncated)' if rec['truncated'] else ''}; {rec['flow_back_paths']} flow-back path(s)")
    by_hop: dict[int, list[dict]] = {}
    for e in rec["edges"]:
        by_hop.setdefault(e["hop"], []).append(e)
    for hop in sorted(by_hop):
        branch = tree.add(f"hop {hop}: {len(by_hop[hop])} transfer(s)")
        for e in by_hop[hop]:
            marks = " ".join(f"[{_MARK_STYLE.get(m, 'bold')}]{m}[/]" for m in e["marks"])
            branch.add(f"{e['ts']}  {escape(e['src'])} → {escape(e['dst'])}  {e['amount']}  "
                       f"[dim]{escape(e['tx_id'])}[/dim] {marks}")
    return tree


@app.command()
def flow(
    loan_ids: Annotated[list[str], typer.Argument(help="Loan ids.")],
    window_days: Annotated[float | None, typer.Option(min=0, help="Days after each disbursement (default: the loan's flow-back rule).")] = None,
    max_hops: Annotated[int | None, typer.Option(min=1, max=16, help="Transfers per chain (default: the rule's).")] = None,
    min_amount_ratio: Annotated[float | None, typer.Option(min=0.0, help="Every transfer at least this share of the disbursement.")] = None,
    min_amount: Annotated[str | None, typer.Option(help="Every transfer at least this amount, decimal (e.g. 1000.00).")] = None,
    max_edges: Annotated[int, typer.Option(min=1, help="Transfers listed per disbursement, fewest hops first.")] = 100_000,
    rules: RulesOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Forward flow (资金流向): where each disbursement's money went, hop by hop.

    A transfer is in the flow when a time-increasing chain of transfers from the
    disbursement account reaches it within the window and hop limit, every transfer above
    the amount floor; `hop` is the fewest transfers to it (docs/rules.md). Parameters come
    from the loan's flow-back rule (per payment mode); the flags override them. Marks:
    borrower_side, prohibited, flow_back, return.
    """
    from flowgraph.core.values import parse_amount
    from flowgraph.investigate.flow import forward_flow_loans

    overrides = dict(window_days=window_days, max_hops=max_hops, min_amount_ratio=min_amount_ratio,
                     min_amount=parse_amount(min_amount) if min_amount is not None else None)  # fmt: skip
    records = shield(forward_flow_loans(open_store(), loan_ids, load_pack(rules), overrides, max_edges), *loan_ids)
    if want_json(json_):
        for rec in records:
            emit_json(rec)
        return
    for rec in records:
        out.print(flow_tree(rec))
    say(f"{len(records)} disbursement(s), {sum(r['edge_count'] for r in records)} transfer(s) in their forward flow")
