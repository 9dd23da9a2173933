"""Users, roles and the audit log."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer
from rich.markup import escape

from flowgraph.cli.app import app
from flowgraph.cli.output import (
    JsonOpt,
    emit_json,
    emit_rows,
    open_store,
    parse_ts_option,
    say,
    settings,
    want_json,
)
from flowgraph.security import access as acl
from flowgraph.security import audit as audit_log


class Role(StrEnum):
    analyst = "analyst"
    risk_manager = "risk_manager"
    auditor = "auditor"
    regulator = "regulator"
    admin = "admin"


users_app = typer.Typer(help="Users and roles of the store (see docs/security.md).", no_args_is_help=True)
app.add_typer(users_app, name="users")


@users_app.command("add")
def users_add(
    name: Annotated[str, typer.Argument(help="User name as given by --user, FLOWGRAPH_USER or the OS login.")],
    role: Annotated[Role, typer.Option("--role", help="analyst, risk_manager, auditor, regulator or admin.")],
    json_: JsonOpt = False,
) -> None:
    """Add a user (or change a user's role). The first admin ends setup mode."""
    store = open_store()
    actor = settings.actor
    entry = acl.add_user(store, name, role.value, actor.user if actor else acl.acting_user(None))
    users = acl.load_users(store)
    if want_json(json_):
        emit_json({"user": name, **entry, "setup_mode": acl.in_setup_mode(users)})
        return
    say(f"[green]user {escape(name)} is {role.value}[/green]")
    if acl.in_setup_mode(users):
        say("the store stays in setup mode (everyone acts as admin) until an admin is added")


@users_app.command("remove")
def users_remove(name: Annotated[str, typer.Argument()], json_: JsonOpt = False) -> None:
    """Remove a user (never the last admin)."""
    acl.remove_user(open_store(), name)
    if want_json(json_):
        emit_json({"user": name, "removed": True})
    else:
        say(f"removed user {escape(name)}")


@users_app.command("list")
def users_list(json_: JsonOpt = False) -> None:
    """Users and their roles."""
    store = open_store()
    rows = acl.list_users(store)
    emit_rows(rows, want_json(json_), title="setup mode: no admin yet, everyone acts as admin"
              if acl.in_setup_mode(acl.load_users(store)) else f"{len(rows)} user(s)",
              columns=["user", "role", "added_by", "added_at"])


audit_app = typer.Typer(help="The tamper-evident audit log (one line per command).", no_args_is_help=True)
app.add_typer(audit_app, name="audit")


@audit_app.command("verify")
def audit_verify(
    head: Annotated[str | None, typer.Option("--head", help="A head hash printed earlier: the log must still contain it.")] = None,
    json_: JsonOpt = False,
) -> None:
    """Check the SHA-256 chain; exit 1 naming the first edited, deleted, inserted or moved line."""
    res = audit_log.verify(open_store(), head)
    if want_json(json_):
        emit_json(res)
    else:
        for n in res["notes"]:
            say(f"note: {escape(n)}")
        if res["ok"]:
            say(f"[green]ok[/green] {res['log']}: {res['lines']} line(s), head {res['head']}")
            say("keep this head hash outside the store (ticket, job log) and check it later with --head")
        else:
            say(f"[red]audit log damaged at line {res['line']}[/red]: {escape(res['reason'])} ({res['log']})")
    if not res["ok"]:
        raise typer.Exit(1)


@audit_app.command("restart")
def audit_restart(json_: JsonOpt = False) -> None:
    """Archive a damaged audit log under audit-archive/ and start a new chain naming it (admin)."""
    store = open_store()
    actor = settings.actor
    entry = audit_log.restart(store, {
        "user": actor.user if actor else acl.acting_user(None), "os_user": acl.os_login(),
        "role": actor.role if actor else None, "setup_mode": actor.setup_mode if actor else None,
        "command": "audit restart", "args": [], "snapshot_id": store.snapshot_id,
    })
    if want_json(json_):
        emit_json(entry)
        return
    r = entry["restart"]
    say(f"archived the damaged log to {store.root / r['archived']} ({escape(r['problem'])});"
        f" new chain starts at seq 1, head {entry['hash']}")


@audit_app.command("show")
def audit_show(
    user: Annotated[str | None, typer.Option("--user", help="Only this user's commands.")] = None,
    since: Annotated[str | None, typer.Option("--since", help="From this time on (ISO-8601 date or timestamp, UTC).")] = None,
    command: Annotated[str | None, typer.Option("--command", help="Only commands starting with this, e.g. 'evidence'.")] = None,
    json_: JsonOpt = False,
) -> None:
    """Audit entries, oldest first."""
    if since is not None:
        parse_ts_option(since, "--since")
    rows = audit_log.show(open_store(), user, since, command)
    if want_json(json_):
        for r in rows:
            emit_json(r)
        return
    emit_rows([{**r, "args": " ".join(r.get("args") or [])} for r in rows], False, title=f"{len(rows)} audit entr{'y' if len(rows) == 1 else 'ies'}",
              columns=["seq", "time", "user", "role", "command", "args", "outcome", "exit_code"])
