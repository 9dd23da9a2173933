"""Foundation commands: init, schema, ingest, status, generate."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from flowgraph.cli.app import app
from flowgraph.cli.output import (
    JsonOpt,
    emit_json,
    emit_rows,
    open_store,
    out,
    print_ingest,
    say,
    settings,
    want_json,
)
from flowgraph.store.embedded import Store
from flowgraph.store.outputs import check_output_dir


class Scale(StrEnum):
    tiny = "tiny"
    small = "small"
    medium = "medium"
    large = "large"


@app.command()
def init(json_: JsonOpt = False) -> None:
    """Create an empty store (idempotent)."""
    store = Store.init(settings.store)
    status = store.status()
    if want_json(json_):
        emit_json(status)
    else:
        say(f"store ready at {store.root} (snapshot {status['snapshot_id']})")


@app.command()
def schema(table: Annotated[str | None, typer.Argument(help="One table (default: all).")] = None, json_: JsonOpt = False) -> None:
    """Print the data contract: columns, types, required, allowed values, keys."""
    from flowgraph.core.schema import VALUE_RULES, describe

    tables = describe(table)
    if want_json(json_):
        for t in tables:
            emit_json(t)
        if table is None:
            emit_json({"value_rules": VALUE_RULES})
        return
    for t in tables:
        tab = Table(title=f"{t['table']}  (unique: {t['unique']})")
        for c in ("column", "kind", "dtype", "required", "allowed", "doc"):
            tab.add_column(c)
        for c in t["columns"]:
            allowed = ", ".join(c["allowed"] or []) or (f"[{c['bounds'][0]:g}, {c['bounds'][1]:g}]" if c["bounds"] else "")
            tab.add_row(c["name"], c["kind"], c["dtype"], "yes" if c["required"] else "", allowed, c["doc"])
        out.print(tab)
        for r in t["references"]:
            out.print(f"  warns when {r['when']}: {', '.join(r['columns'])} → {r['target']} ({r['doc']})")
        for c in t["checks"]:
            out.print(f"  warns: {c['check']} ({c['doc']})")
    if table is None:
        rules = Table(title="how values are read (a row breaking a rule is quarantined with the reason)", show_lines=True)
        rules.add_column("kind")
        rules.add_column("rule")
        for kind, text in VALUE_RULES.items():
            rules.add_row(kind, text)
        out.print(rules)


class InputFormat(StrEnum):
    contract = "contract"
    finbench = "finbench"


@app.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders (CSV with , or |, Parquet).")],
    table: Annotated[str | None, typer.Option(help="Table of the given files (default: from the file name).")] = None,
    format_: Annotated[InputFormat, typer.Option("--format", help="contract or finbench (a FinBench snapshot folder).")] = InputFormat.contract,
    strict: Annotated[bool, typer.Option(help="Exit 1 when any row is rejected.")] = False,
    repair: Annotated[bool, typer.Option(help="First forget tables whose files are damaged (hash mismatch), then load: re-ingest their sources to repair.")] = False,
    json_: JsonOpt = False,
) -> None:
    """Validate and load files; bad rows go to <store>/quarantine with a reason."""
    from flowgraph.ingest.load import ingest_frames, ingest_paths

    store = Store.init(settings.store)
    if repair:
        for table in store.drop_damaged():
            say(f"[yellow]repair:[/yellow] table {table} was damaged and starts empty; load all its sources now")
    progress = None if want_json(json_) else say
    if format_ is InputFormat.finbench:
        from flowgraph.ingest.finbench import read_finbench

        if len(paths) != 1:
            raise typer.BadParameter("--format finbench takes one snapshot folder")
        report = ingest_frames(store, read_finbench(paths[0]), progress)
    else:
        report = ingest_paths(store, paths, table, progress)
    print_ingest(report, want_json(json_))
    if strict and report["rejected"]:
        say(f"[red]--strict: {report['rejected']} row(s) rejected[/red]")
        raise typer.Exit(1)


@app.command()
def status(
    verify: Annotated[bool, typer.Option("--verify", help="Re-hash every table file and compare the index with the tables; exit 1 on damage.")] = False,
    json_: JsonOpt = False,
) -> None:
    """Row counts per table and the data snapshot id."""
    st = open_store().status()
    if verify:
        from flowgraph.graph.store_index import verify_store

        res = verify_store(open_store())
        for p in res["problems"]:
            say(f"[red]damaged:[/red] {escape(p)}")
        if want_json(json_):
            emit_json({"snapshot_id": st["snapshot_id"], "tables": st["tables"], "verify": res})
        else:
            say(f"[green]verified[/green] {', '.join(res['checked']) or 'empty store'}" if res["ok"] else "repair: re-ingest damaged tables into a fresh store, `flowgraph index --rebuild` for the index")
        if not res["ok"]:
            raise typer.Exit(1)
        if want_json(json_):
            return
    if want_json(json_):
        emit_json({"snapshot_id": st["snapshot_id"], "tables": st["tables"]})
        return
    emit_rows([{"table": t, "rows": v["rows"]} for t, v in st["tables"].items()], False, title=f"{st['store']}  snapshot {st['snapshot_id']}")


@app.command()
def generate(
    out_dir: Annotated[Path, typer.Argument(help="Folder to write the CSV files and labels.parquet into.")],
    scale: Annotated[Scale, typer.Option(help="tiny ≈ 20k tx, small ≈ 500k, medium ≈ 10M, large ≈ 50M.")] = Scale.tiny,
    seed: Annotated[int, typer.Option(help="Random seed; same seed → same files.")] = 0,
    json_: JsonOpt = False,
) -> None:
    """Write a synthetic bank with labelled flow-back cases and negative controls."""
    from flowgraph.synthetic.generate import generate as gen

    check_output_dir(out_dir, "generated bank", lambda p: (p / "labels.parquet").exists(), [settings.store], option="OUT_DIR")
    summary = gen(out_dir, scale=scale.value, seed=seed)
    if want_json(json_):
        emit_json(summary)
    else:
        out.print_json(json.dumps(summary))
        say(f"wrote {out_dir}")
