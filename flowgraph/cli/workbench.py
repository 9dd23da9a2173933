"""The analyst's workbench on the command line: forward flow (`flow`) and alerts with their
cases (`alerts` list/show/review/assign/note)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer
from rich.markup import escape
from rich.tree import Tree

from flowgraph.cli.admin import users_app
from flowgraph.cli.app import app
from flowgraph.cli.output import (
    JsonOpt,
    Level,
    RulesOpt,
    emit_json,
    emit_rows,
    open_store,
    out,
    parse_day,
    say,
    settings,
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


# ------------------------------------------------------------------ alerts and their cases
class _AlertsGroup(typer.core.TyperGroup):
    """`alerts [OPTIONS]` lists alerts (as `alerts list`); `alerts show|review|assign|note`."""

    default_command = "list"  # read by _command_path for access control and the audit line
    default_on_empty = True

    def parse_args(self, ctx, args):
        if not args or (args[0] not in self.commands and args[0] not in ("--help", "-h")):
            args = ["list", *args]
        return super().parse_args(ctx, args)


alerts_app = typer.Typer(
    cls=_AlertsGroup, pretty_exceptions_show_locals=False,
    help="Alerts written by `score` and their cases: list (default), show, review, assign, note.",
)
app.add_typer(alerts_app, name="alerts")


class Decision(StrEnum):
    confirm = "confirm"
    dismiss = "dismiss"


AlertArg = Annotated[str, typer.Argument(help="Alert id (or a unique prefix of 8+ characters).")]


@alerts_app.command("list")
def alerts_list(
    date_: Annotated[str | None, typer.Option("--date", help="One as-of partition.")] = None,
    level: Annotated[Level | None, typer.Option()] = None,
    rule: Annotated[str | None, typer.Option(help="Rule id.")] = None,
    loan: Annotated[str | None, typer.Option(help="Loan id.")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="At most this many (highest scores first).")] = None,
    json_: JsonOpt = False,
) -> None:
    """Alerts written by `score` (latest as-of per alert unless --date)."""
    from flowgraph.rules.alerts import alert_json, read_alerts

    store = open_store()
    df = read_alerts(store, parse_day(date_, "--date"), level.value if level else None, rule, loan)
    if limit:
        df = df.head(limit)
    rows = shield([alert_json(r) for r in df.iter_rows(named=True)])
    if want_json(json_):
        for r in rows:
            emit_json(r)
        return
    emit_rows(
        [{"alert": r["alert_id"][:12], "level": r["level"], "score": r["score"], "rule": r["rule_id"],
          "loan": r["loan_id"], "as_of": r["as_of"], "reason": "; ".join(r["reasons"])} for r in rows],
        False, title=f"{len(rows)} alert(s)",
    )


def _actor() -> tuple[str, str]:
    from flowgraph.security import access as acl

    actor = settings.actor
    return (actor.user, actor.role) if actor else (acl.acting_user(None), "admin")


def _print_case(data: dict) -> None:
    case = data["case"]
    out.print(f"[bold]{escape(data['alert_id'])}[/bold]  {data['level']} {data['score']}  rule {escape(data['rule_id'])}  "
              f"loan {escape(str(data['loan_id']))}  as of {data['as_of']}{'  (repeat, first ' + data['first_seen'] + ')' if data['repeat'] else ''}")
    for r in data["reasons"]:
        out.print(f"  {escape(r)}")
    out.print(f"case: [bold]{case['status']}[/bold]  assignee {escape(str(case['assignee'] or '-'))}  round {case['round']}")
    for r in case["reviews"]:
        out.print(f"  review ({r['stage']}, round {r['round']}) {r['time']} {escape(r['user'])} ({r['role']}): "
                  f"{r['decision']} — {escape(r['reason'])}")
    for n in case["notes"]:
        out.print(f"  note {n['time']} {escape(n['user'])}: {escape(n['text'])}")


@alerts_app.command("show")
def alerts_show(alert_id: AlertArg, json_: JsonOpt = False) -> None:
    """One alert (its latest firing) with its case: status, assignee, reviews, notes, history."""
    from flowgraph.investigate.cases import show_alert

    data = shield(show_alert(open_store(), alert_id), alert_id)
    if want_json(json_):
        emit_json(data)
        return
    _print_case(data)


def _after(case: dict, alert_id: str, as_json: bool, what: str) -> None:
    from flowgraph.investigate.cases import public_case

    if as_json:
        emit_json({"alert_id": case["alert_id"], "case": public_case(case)})
    else:
        say(f"alert {escape(case['alert_id'])}: {what}; case {case['status']}")


@alerts_app.command("review")
def alerts_review(
    alert_id: AlertArg,
    decision: Annotated[Decision, typer.Option(help="confirm or dismiss.")],
    reason: Annotated[str, typer.Option(help="Why (kept in the case history).")],
    json_: JsonOpt = False,
) -> None:
    """Review an alert: the first review sets it pending_second_review; the second, by
    another user with 'review.approve', confirms or dismisses it (a disagreement sends it
    back to new)."""
    from flowgraph.investigate.cases import review

    user, role = _actor()
    case = review(open_store(), alert_id, user, role, decision.value, reason)
    _after(case, alert_id, want_json(json_), f"{decision.value} by {user}")


@alerts_app.command("assign")
def alerts_assign(alert_id: AlertArg, user_name: Annotated[str, typer.Argument(metavar="USER", help="A user of the store.")], json_: JsonOpt = False) -> None:
    """Assign an alert's case to a user."""
    from flowgraph.investigate.cases import assign

    user, role = _actor()
    case = assign(open_store(), alert_id, user_name, user, role)
    _after(case, alert_id, want_json(json_), f"assigned to {user_name}")


@alerts_app.command("note")
def alerts_note(alert_id: AlertArg, text: Annotated[str, typer.Argument(help="The note.")], json_: JsonOpt = False) -> None:
    """Add a note to an alert's case."""
    from flowgraph.investigate.cases import note

    user, role = _actor()
    case = note(open_store(), alert_id, text, user, role)
    _after(case, alert_id, want_json(json_), "note added")


# ------------------------------------------------------------------ workbench passwords
@users_app.command("passwd")
def users_passwd(
    name: Annotated[str, typer.Argument(help="A user of the store (see `users add`).")],
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from the first line of standard input (for scripts).")] = False,
    json_: JsonOpt = False,
) -> None:
    """Set a user's password for the browser workbench (`flowgraph serve`), stored as an
    scrypt hash in <store>/passwords.json."""
    import sys

    from flowgraph.web.auth import set_password

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt(f"new password for {name}", hide_input=True, confirmation_prompt=True, err=True)
    user, _ = _actor()
    set_password(open_store(), name, password, user)
    if want_json(json_):
        emit_json({"user": name, "password_set": True})
    else:
        say(f"password set for {escape(name)}")
