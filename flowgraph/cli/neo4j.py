"""Neo4j commands and the connection options other commands share."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from flowgraph.cli.app import app
from flowgraph.cli.neo4j_options import NeoDatabase, NeoPassword, NeoUri, NeoUser, connect_neo4j
from flowgraph.cli.output import (
    JsonOpt,
    emit_json,
    emit_rows,
    err,
    open_store,
    say,
    settings,
    want_json,
)
from flowgraph.store.embedded import Store
from flowgraph.store.outputs import check_output_dir

neo4j_app = typer.Typer(
    help="Neo4j 5 as a second home of the graph: init, push, export-import, status.",
    no_args_is_help=True, pretty_exceptions_show_locals=False,
)
app.add_typer(neo4j_app, name="neo4j")


@neo4j_app.command("init")
def neo4j_init(uri: NeoUri = None, user: NeoUser = None, password: NeoPassword = None,
               database: NeoDatabase = None, json_: JsonOpt = False) -> None:
    """Create the constraints and indexes (IF NOT EXISTS: safe to re-run)."""
    with connect_neo4j(uri, user, password, database) as neo:
        res = neo.init_schema()
    if want_json(json_):
        emit_json(res)
    else:
        say(f"[green]ok[/green] {res['uri']}: constraints {', '.join(res['constraints'])}; "
            f"indexes {', '.join(res['indexes'])}")


@neo4j_app.command("push")
def neo4j_push(
    batch_size: Annotated[int, typer.Option(min=1, help="Rows per UNWIND … MERGE transaction.")] = 5000,
    restart: Annotated[bool, typer.Option(help="Ignore the saved progress and send everything again.")] = False,
    uri: NeoUri = None, user: NeoUser = None, password: NeoPassword = None, database: NeoDatabase = None,
    json_: JsonOpt = False,
) -> None:
    """Sync the store into Neo4j (MERGE batches; re-run after a failure to resume)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    store = open_store()
    as_json = want_json(json_)
    with connect_neo4j(uri, user, password, database) as neo:
        if err.is_terminal and not as_json:
            tasks: dict[str, Any] = {}
            with Progress(TextColumn("{task.description:<14}"), BarColumn(), MofNCompleteColumn(),
                          TimeRemainingColumn(), console=err) as bar:
                def progress(table: str, done: int, total: int) -> None:
                    if table not in tasks:
                        tasks[table] = bar.add_task(table, total=total)
                    bar.update(tasks[table], completed=done)

                res = neo.push(store, batch_size, progress, restart)
        else:
            res = neo.push(store, batch_size, None, restart)
    if as_json:
        emit_json(res)
        return
    emit_rows([{"table": t, **v} for t, v in res["tables"].items()], False,
              title=f"pushed to {res['target']} in {res['seconds']} s" + (" (resumed)" if res["resumed"] else ""),
              columns=["table", "rows", "sent", "skipped"])
    if res["in_sync"]:
        say(f"[green]in sync[/green]: the graph holds store snapshot {res['snapshot_id']}")
    else:
        say(f"[yellow]not in sync[/yellow]: the graph holds {res['graph']} but the store {res['store']} "
            "(data from elsewhere?); `index --from-neo4j` will refuse it")


@neo4j_app.command("export-import")
def neo4j_export_import(
    out_dir: Annotated[Path, typer.Argument(help="Folder for the CSV files (new, empty, or an earlier export).")],
    database: Annotated[str, typer.Option("--database", help="Database name in the printed command.")] = "neo4j",
    command_dir: Annotated[str | None, typer.Option("--command-dir", help="The folder as neo4j-admin sees it, e.g. /import in a container (default: OUT_DIR).")] = None,
    json_: JsonOpt = False,
) -> None:
    """Write node/relationship CSV files and the `neo4j-admin database import full` command."""
    from flowgraph.neo4j.export import export_import

    store = open_store()
    # the store rules here; export_import itself refuses a folder that is not an earlier export
    check_output_dir(out_dir, "Neo4j export", lambda p: True, [store.root], option="OUT_DIR")
    as_json = want_json(json_)
    res = export_import(store, out_dir, database, None if as_json else say, command_dir)
    if as_json:
        emit_json(res)
        return
    table = Table(title=res["directory"])
    table.add_column("file")
    table.add_column("rows", justify="right")
    for name, rows in res["files"].items():
        table.add_row(name, str(rows))
    err.print(table)  # stdout gets only the command, so `... > import.sh` works
    say("import command (also in README.txt):")
    sys.stdout.write(res["command"] + "\n")


@neo4j_app.command("status")
def neo4j_status(uri: NeoUri = None, user: NeoUser = None, password: NeoPassword = None,
                 database: NeoDatabase = None, json_: JsonOpt = False) -> None:
    """Counts in the graph, its snapshot id, and whether it matches the store."""
    store = Store(settings.store) if Store(settings.store).manifest_path.exists() else None
    with connect_neo4j(uri, user, password, database) as neo:
        res = neo.status(store)
    if want_json(json_):
        emit_json(res)
        return
    emit_rows([{"key": k, "value": v} for k, v in res.items()], False, title="neo4j status")
