"""Investigation commands: account, paths, history, loan."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.tree import Tree

from flowgraph.cli.app import app
from flowgraph.cli.output import (
    JsonOpt,
    RulesOpt,
    emit_json,
    emit_rows,
    open_store,
    out,
    parse_day,
    parse_ts_option,
    shield,
    trace_tree,
    want_json,
)
from flowgraph.rules.pack import load_pack


@app.command()
def account(
    account_id: Annotated[str, typer.Argument()],
    top: Annotated[int, typer.Option(min=1, help="Counterparties listed.")] = 10,
    json_: JsonOpt = False,
) -> None:
    """One account: owner, linked parties, inflow/outflow by day, top counterparties, alerts."""
    from flowgraph.investigate.account import account_summary

    data = shield(account_summary(open_store(), account_id, top), account_id)
    if want_json(json_):
        emit_json(data)
        return
    owner = data["owner"] or {}
    out.print(f"[bold]{data['account_id']}[/bold]  owner {owner.get('party_id', '?')} {owner.get('name') or ''}  "
              f"in {data['totals']['inflow']} (of which disbursed {data['totals']['disbursed']})  out {data['totals']['outflow']}"
              f"  ({data['totals']['transactions']} transactions, {data['totals']['disbursements']} disbursements)")
    for p in data["linked_parties"]:
        out.print(f"  linked: {p['chain']}")
    emit_rows(data["by_day"], False, title="by day")
    emit_rows(data["top_counterparties"], False, title="top counterparties")
    emit_rows([{"alert": a["alert_id"][:12], "level": a["level"], "rule": a["rule_id"], "loan": a["loan_id"],
                "reason": a["reasons"][0]} for a in data["alerts"]], False, title=f"{len(data['alerts'])} alert(s) touching it")


@app.command()
def paths(
    src: Annotated[str, typer.Argument(help="From account.")],
    dst: Annotated[str, typer.Argument(help="To account.")],
    since: Annotated[str | None, typer.Option(help="Earliest transfer time (ISO-8601 or epoch ms).")] = None,
    until: Annotated[str | None, typer.Option(help="Latest transfer time.")] = None,
    max_hops: Annotated[int, typer.Option(min=1, max=12)] = 5,
    min_amount: Annotated[str | None, typer.Option(help="Every transfer at least this (decimal).")] = None,
    max_paths: Annotated[int, typer.Option(min=1)] = 100,
    json_: JsonOpt = False,
) -> None:
    """Time-respecting transfer paths between two accounts (the flow-back engine)."""
    from flowgraph.core.values import parse_amount
    from flowgraph.investigate.paths import paths_between

    data = shield(paths_between(open_store(), src, dst, parse_ts_option(since, "--since"), parse_ts_option(until, "--until"), max_hops, parse_amount(min_amount) if min_amount else 0, max_paths), src, dst)
    if want_json(json_):
        emit_json(data)
        return
    tree = Tree(f"[bold]{data['src']}[/bold] → [bold]{data['dst']}[/bold]: {data['path_count']} path(s)"
                + (" (truncated)" if data["truncated"] else ""))
    for i, path in enumerate(data["paths"], 1):
        branch = tree.add(f"path {i}: {len(path['hops'])} hop(s)")
        for h in path["hops"]:
            branch.add(f"{h['ts']}  {h['src']} → {h['dst']}  {h['amount']}  [dim]{h['tx_id']}[/dim]")
    out.print(tree)


@app.command()
def history(
    borrower: Annotated[str | None, typer.Option(help="Borrower party id.")] = None,
    from_: Annotated[str | None, typer.Option("--from", help="First disbursement on or after this day.")] = None,
    to: Annotated[str | None, typer.Option("--to", help="... and on or before this day.")] = None,
    min_amount: Annotated[str | None, typer.Option(help="Loan amount at least (decimal).")] = None,
    branch: Annotated[str | None, typer.Option()] = None,
    json_: JsonOpt = False,
) -> None:
    """Loans with their disbursements, repayments and alerts, by borrower, time, amount, branch."""
    from flowgraph.core.values import DAY_MS, parse_amount
    from flowgraph.investigate.loans import history as loan_history

    start, end = parse_ts_option(from_, "--from"), parse_ts_option(to, "--to")
    rows = shield(loan_history(open_store(), borrower=borrower, start=start, end=end + DAY_MS if end is not None else None, min_amount=parse_amount(min_amount) if min_amount else None, branch=branch), *([borrower] if borrower else []))
    emit_rows(
        [{**r, "rules": ",".join(r["rules"])} for r in rows] if not want_json(json_) else rows, want_json(json_),
        title=f"{len(rows)} loan(s)",
        columns=["loan_id", "borrower_id", "amount", "branch", "first_disbursed", "tranches", "repaid", "alerts", "worst_level", "rules"],
    )


@app.command()
def loan(
    loan_id: Annotated[str, typer.Argument()],
    as_of: Annotated[str | None, typer.Option("--as-of", help="Repayment status on this day (default: the last day with data).")] = None,
    rules: RulesOpt = None,
    json_: JsonOpt = False,
) -> None:
    """One loan's post-loan picture: borrower, disbursements and flow-back, repayments, grades, alerts."""
    from flowgraph.investigate.loans import loan_picture

    data = shield(loan_picture(open_store(), loan_id, load_pack(rules), parse_day(as_of, "--as-of")))
    if want_json(json_):
        emit_json(data)
        return
    ln, b = data["loan"], data["borrower"] or {}
    out.print(f"[bold]{loan_id}[/bold]  {ln['amount']}  {ln.get('product') or ''} / {ln.get('purpose') or ''}  "
              f"borrower {ln['borrower_id']} {b.get('name') or ''}  payment {ln.get('payment_mode') or 'self'}")
    for rec in data["disbursements"]:
        out.print(trace_tree(rec))
    emit_rows(data["repayments"], False, title=f"{len(data['repayments'])} repayment(s)")
    st = data["repayment_status"]
    if st:
        late = f"[red]{st['overdue_days']} days overdue[/red]" if st["overdue_days"] else f"{st['days_past_due']} days past due (within grace)" if st["days_past_due"] else "up to date"
        out.print(f"repayment status on {st['as_of']} ({st['schedule'] or 'no schedule'}): {st['status']}, {late}; "
                  f"due {st['due_amount']}, repaid {st['repaid_amount']}, arrears {st['arrears']}"
                  + (f"; next due {st['next_due_ts'][:10]}" if st["next_due_ts"] else ""))
    emit_rows(data["classifications"], False, title="classification history")
    emit_rows([{"level": a["level"], "score": a["score"], "rule": a["rule_id"], "as_of": a["as_of"], "reason": a["reasons"][0]}
               for a in data["alerts"]], False, title=f"{len(data['alerts'])} alert(s)")
