"""The one output layer of the CLI: JSON or rich for people, messages to stderr, errors to exit codes."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from flowgraph.rules.model import LEVELS
from flowgraph.security import access as acl
from flowgraph.security import masking
from flowgraph.store.embedded import Store

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)  # paths in messages stay whole


class Settings:
    store: Path = Path(".flowgraph")
    json: bool = False
    actor: acl.Actor | None = None  # set by _GuardedGroup for the running command


settings = Settings()




# ------------------------------------------------------------------ shared helpers
def want_json(flag: bool) -> bool:
    return flag or settings.json


def emit_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False, sort_keys=False) + "\n")


def emit_rows(rows: list[dict], as_json: bool, title: str | None = None, columns: list[str] | None = None) -> None:
    """The one listing helper: JSON lines or a rich table."""
    if as_json:
        for r in rows:
            emit_json(r)
        return
    cols = columns or (list(rows[0]) if rows else [])
    # cells and titles are data (user input, ids, paths): never read as rich markup
    table = Table(title=Text(title) if title is not None else None)
    for c in cols:
        table.add_column(Text(c))
    for r in rows:
        table.add_row(*[Text("" if r.get(c) is None else str(r.get(c))) for c in cols])
    out.print(table)


def say(msg: str) -> None:
    err.print(msg)


def open_store() -> Store:
    return Store.open(settings.store)




def shield(obj: Any, *ids: str) -> Any:
    """``obj`` with personal ids and attributes masked unless the acting role may see them
    (``ids``: ids typed by the user that the output repeats)."""
    return masking.mask_for(settings.actor, obj, open_store(), ids)


JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output (JSON / JSON lines).")]


RulesOpt = Annotated[Path | None, typer.Option("--rules", help="Rule pack folder (default: the shipped pack).")]


Level = StrEnum("Level", {lv: lv for lv in LEVELS})  # alert levels as a choice




def parse_day(text: str | None, flag: str):
    from datetime import date

    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{flag} must be a date YYYY-MM-DD, got {text!r}") from None


def parse_ts_option(text: str | None, flag: str) -> int | None:
    from flowgraph.core.values import parse_ts

    if text is None:
        return None
    try:
        return parse_ts(text)
    except ValueError:
        raise typer.BadParameter(f"{flag}: not a timestamp or date: {text!r}") from None


def trace_tree(rec: dict) -> Tree:
    head = (
        f"[bold]{rec['loan_id']}[/bold] / {rec['disbursement_id']}: {rec['amount']}"
        f" to {rec['account']} at {rec['ts']}"
    )
    tree = Tree(head)
    if not rec["paths"]:
        tree.add("[green]no flow-back path[/green]")
        return tree
    tree.add(
        f"[red]returned {rec['returned_amount']} ({rec['return_ratio']:.1%})[/red], "
        f"{rec['path_count']} path(s){' (truncated)' if rec['truncated'] else ''}, "
        f"{rec['linked_accounts']} linked accounts"
    )
    for i, path in enumerate(rec["paths"], 1):
        branch = tree.add(f"path {i}: {len(path['hops'])} hop(s)")
        for h in path["hops"]:
            branch.add(f"{h['ts']}  {h['src']} → {h['dst']}  {h['amount']}  [dim]{h['tx_id']}[/dim]")
    return tree


def print_ingest(report: dict, as_json: bool) -> None:
    if as_json:
        emit_json(report)
        return
    rows = [{"table": t, **v} for t, v in sorted(report["tables"].items())]
    emit_rows(rows, False, title="ingest", columns=["table", "loaded", "rejected", "duplicates"])
    for table, path in report["quarantine"].items():
        say(f"[yellow]quarantined[/yellow] {report['tables'][table]['rejected']} {table} row(s) → {path}")
    if report.get("warnings"):
        counts = ", ".join(f"{check} {n}" for check, n in report["warnings"].items())
        say(f"[yellow]loaded with warnings[/yellow] ({counts}) → {report['warnings_file']}")
    if report.get("checks_pending"):
        say(f"checks waiting for their table: {', '.join(report['checks_pending'])}")
    say(f"snapshot {report['snapshot_id']}" + ("" if report["changed"] else " (unchanged)"))
