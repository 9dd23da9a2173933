"""flowgraph command line: parse → call the library → render (rich for people, --json for machines).

Data goes to stdout, messages and progress to stderr. Exit codes: 0 ok, 1 failure, 2 usage.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.tree import Tree

from flowgraph import __version__
from flowgraph import access as acl
from flowgraph import audit as audit_log
from flowgraph.ingest import IngestError
from flowgraph.store import Store, StoreError
from flowgraph.values import format_ts

_SECRET_OPTS = ("password", "secret", "token")


def _command_path(group: typer.core.TyperGroup, args: list[str]) -> tuple[str | None, list[str]]:
    """('rules list', rest) for the sub-command the args select; None for help or no command."""
    if not args or args[0] not in group.commands:
        return None, args
    cmd, path, rest = group.commands[args[0]], [args[0]], args[1:]
    if isinstance(cmd, typer.core.TyperGroup):
        if rest and rest[0] in cmd.commands:
            path, rest = [*path, rest[0]], rest[1:]
        elif rest and not rest[0].startswith("-") and getattr(cmd, "default_command", None):
            path = [*path, cmd.default_command]
        else:
            return None, rest  # the group's help or a usage error
    return " ".join(path), rest


def _redact(argv: list[str]) -> list[str]:
    """Arguments for the audit log, with values of password/secret/token options hidden."""
    out, hide = [], False
    for a in argv:
        secret = a.startswith("--") and any(w in a.lower() for w in _SECRET_OPTS)
        out.append("***" if hide else (a.split("=", 1)[0] + "=***" if secret and "=" in a else a))
        hide = secret and "=" not in a
    return [re.sub(r"://[^/@\s]+@", "://***@", a) for a in out]  # credentials inside URIs


class _GuardedGroup(typer.core.TyperGroup):
    """The root group: every command passes here once, so access control, owner-only file
    permissions, the no-traceback rule and the audit line live in one place.

    `--help`, `--version` and bare groups are neither checked nor audited. The outcome is
    taken from how the command ended: normal return (ok), ``typer.Exit`` (ok or failed with
    its code), usage error (usage, 2), access denied (denied, 1), anything unexpected
    (error, 1, a one-line message instead of a traceback; FLOWGRAPH_DEBUG=1 re-raises).
    """

    def make_context(self, info_name, args, parent=None, **extra):
        argv = list(args)  # before parsing consumes them
        ctx = super().make_context(info_name, args, parent=parent, **extra)
        ctx.meta["flowgraph.argv"] = argv
        return ctx

    def invoke(self, ctx):
        settings.actor = None
        command, rest = _command_path(self, [*ctx._protected_args, *ctx.args])
        if command is None or "--help" in rest:
            return super().invoke(ctx)
        store = Store(ctx.params.get("store") or settings.store)
        flag = ctx.params.get("user")
        outcome, code, actor = "ok", 0, None
        old_umask = os.umask(0o077)  # store files, bundles and reports hold personal data
        try:
            try:
                actor = acl.resolve_actor(store, flag)
                settings.actor = actor
                acl.check(command, actor)
            except acl.AccessError as e:
                outcome = "denied"
                err.print(f"[red]error:[/red] {escape(str(e))}")
                raise typer.Exit(1) from None
            except StoreError as e:
                err.print(f"[red]error:[/red] {escape(str(e))}")
                raise typer.Exit(1) from None
            result = super().invoke(ctx)
        except typer.Exit as e:
            code = e.exit_code
            outcome = outcome if outcome == "denied" else "ok" if code == 0 else "failed"
            raise
        except typer.TyperException as e:  # click's usage and parameter errors
            code = e.exit_code
            outcome = "usage" if code == 2 else "failed"
            raise
        except (KeyboardInterrupt, typer.Abort):
            outcome, code = "interrupted", 130
            raise
        except BrokenPipeError:
            # the reader went away (`flowgraph alerts --json | head -1`): nothing failed on our
            # side; send what is still buffered to /dev/null so exiting does not fail again
            outcome, code = "ok", 0
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise typer.Exit(0) from None
        except OSError as e:  # disk full, permission denied...: the store keeps its previous state
            outcome, code = "failed", 1
            err.print(f"[red]error:[/red] {escape(str(e))}")
            raise typer.Exit(1) from None
        except Exception as e:
            outcome, code = "error", 1
            if os.environ.get("FLOWGRAPH_DEBUG"):
                raise
            err.print(f"[red]error:[/red] internal error: {type(e).__name__}: {escape(str(e))}"
                      " (FLOWGRAPH_DEBUG=1 shows the traceback; please report it)")
            raise typer.Exit(1) from None
        finally:
            os.umask(old_umask)
            logged = _audit(store, actor, flag, command, ctx.meta.get("flowgraph.argv", []), outcome, code)
        if not logged:
            raise typer.Exit(1)
        return result


def _audit(store: Store, actor, flag: str | None, command: str, argv: list[str], outcome: str, code: int) -> bool:
    """Append the command's audit line; False (with a message) when the log cannot be written."""
    if not store.manifest_path.exists():
        return True  # no store, no log: the command touched no store data
    try:
        snapshot = store.snapshot_id
    except StoreError:
        snapshot = None
    record = {
        "user": actor.user if actor else acl.acting_user(flag), "os_user": acl.os_login(),
        "role": actor.role if actor else None, "setup_mode": actor.setup_mode if actor else None,
        "command": command, "args": _redact(argv), "outcome": outcome, "exit_code": code,
        "snapshot_id": snapshot,
    }
    try:
        audit_log.append(store, record)
        return True
    except OSError as e:
        err.print(f"[red]error:[/red] cannot write the audit log {store.root / audit_log.LOG}: {escape(str(e))}")
        return False


app = typer.Typer(
    cls=_GuardedGroup,
    name="flowgraph",
    help="Detect loan fund flow-back (贷款资金回流) in time-ordered transfer graphs.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
)
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)  # paths in messages stay whole


class Settings:
    store: Path = Path(".flowgraph")
    json: bool = False
    actor: acl.Actor | None = None  # set by _GuardedGroup for the running command


settings = Settings()


class Scale(StrEnum):
    tiny = "tiny"
    small = "small"
    medium = "medium"
    large = "large"


class Tracing(StrEnum):
    greedy = "greedy"
    maxflow = "maxflow"


class Fail(Exception):
    """A failure reported to the user with exit code 1."""


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
    table = Table(title=title)
    for c in cols:
        table.add_column(c)
    for r in rows:
        table.add_row(*["" if r.get(c) is None else str(r.get(c)) for c in cols])
    out.print(table)


def say(msg: str) -> None:
    err.print(msg)


def open_store() -> Store:
    return Store.open(settings.store)


def run(fn, *args, **kwargs):
    """Call the library; domain errors become a message on stderr and exit code 1."""
    try:
        return fn(*args, **kwargs)
    except (StoreError, IngestError, Fail, FileNotFoundError, ValueError, KeyError) as e:
        msg = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
        err.print(f"[red]error:[/red] {escape(str(msg))}")  # messages quote user input: no markup
        raise typer.Exit(1) from None


def _version(value: bool) -> None:
    if value:
        out.print(f"flowgraph {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    store: Annotated[Path, typer.Option("--store", envvar="FLOWGRAPH_STORE", help="Store folder.")] = Path(".flowgraph"),
    json_: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True)] = False,
    user: Annotated[str | None, typer.Option("--user", envvar="FLOWGRAPH_USER", help="Acting user (default: the OS login); see `users`.")] = None,
) -> None:
    settings.store = store
    settings.json = json_


def shield(obj: Any, *ids: str) -> Any:
    """``obj`` with personal ids and attributes masked unless the acting role may see them
    (``ids``: ids typed by the user that the output repeats)."""
    actor = settings.actor
    if actor is None or actor.may("unmasked"):
        return obj
    return acl.mask_personal(obj, acl.known_ids(open_store()), ids)


JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output (JSON / JSON lines).")]


# ------------------------------------------------------------------ foundation
@app.command()
def init(json_: JsonOpt = False) -> None:
    """Create an empty store (idempotent)."""
    store = run(Store.init, settings.store)
    status = store.status()
    if want_json(json_):
        emit_json(status)
    else:
        say(f"store ready at {store.root} (snapshot {status['snapshot_id']})")


@app.command()
def schema(table: Annotated[str | None, typer.Argument(help="One table (default: all).")] = None, json_: JsonOpt = False) -> None:
    """Print the data contract: columns, types, required, allowed values, keys."""
    from flowgraph.schema import describe

    tables = run(describe, table)
    if want_json(json_):
        for t in tables:
            emit_json(t)
        return
    for t in tables:
        tab = Table(title=f"{t['table']}  (key: {', '.join(t['key'])})")
        for c in ("column", "kind", "dtype", "required", "allowed", "doc"):
            tab.add_column(c)
        for c in t["columns"]:
            tab.add_row(
                c["name"], c["kind"], c["dtype"], "yes" if c["required"] else "",
                ", ".join(c["allowed"] or []), c["doc"],
            )
        out.print(tab)


class InputFormat(StrEnum):
    contract = "contract"
    finbench = "finbench"


def _print_ingest(report: dict, as_json: bool) -> None:
    if as_json:
        emit_json(report)
        return
    rows = [{"table": t, **v} for t, v in sorted(report["tables"].items())]
    emit_rows(rows, False, title="ingest", columns=["table", "loaded", "rejected", "duplicates"])
    for table, path in report["quarantine"].items():
        say(f"[yellow]quarantined[/yellow] {report['tables'][table]['rejected']} {table} row(s) → {path}")
    say(f"snapshot {report['snapshot_id']}" + ("" if report["changed"] else " (unchanged)"))


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
    from flowgraph.ingest import ingest_frames, ingest_paths

    store = run(Store.init, settings.store)
    if repair:
        for table in run(store.drop_damaged):
            say(f"[yellow]repair:[/yellow] table {table} was damaged and starts empty; load all its sources now")
    progress = None if want_json(json_) else say
    if format_ is InputFormat.finbench:
        from flowgraph.finbench import read_finbench

        if len(paths) != 1:
            raise typer.BadParameter("--format finbench takes one snapshot folder")
        report = run(lambda: ingest_frames(store, read_finbench(paths[0]), progress))
    else:
        report = run(ingest_paths, store, paths, table, progress)
    _print_ingest(report, want_json(json_))
    if strict and report["rejected"]:
        say(f"[red]--strict: {report['rejected']} row(s) rejected[/red]")
        raise typer.Exit(1)


@app.command()
def status(
    verify: Annotated[bool, typer.Option("--verify", help="Re-hash every table file and compare the index with the tables; exit 1 on damage.")] = False,
    json_: JsonOpt = False,
) -> None:
    """Row counts per table and the data snapshot id."""
    st = run(lambda: open_store().status())
    if verify:
        res = run(lambda: open_store().verify())
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
    from flowgraph.generate import generate as gen

    summary = run(gen, out_dir, scale=scale.value, seed=seed)
    if want_json(json_):
        emit_json(summary)
    else:
        out.print_json(json.dumps(summary))
        say(f"wrote {out_dir}")


# ------------------------------------------------------------------ engine
@app.command()
def index(
    rebuild: Annotated[bool, typer.Option(help="Rebuild even if the index is current.")] = False,
    from_neo4j: Annotated[bool, typer.Option("--from-neo4j", help="Build it from the TRANSFER relationships in Neo4j (after `neo4j push` or an import of the store's export).")] = False,
    page_size: Annotated[int, typer.Option(min=1, help="With --from-neo4j: relationships per keyset page.")] = 50_000,
    neo4j_uri: NeoUri = None, neo4j_user: NeoUser = None, neo4j_password: NeoPassword = None,
    neo4j_database: NeoDatabase = None,
    json_: JsonOpt = False,
) -> None:
    """Build (or refresh) the CSR index of the store's transactions."""
    from flowgraph.graph import load_or_build_index

    store = run(open_store)
    if from_neo4j:
        from flowgraph.neo4j_store import index_store_from_source

        if not want_json(json_):
            say("building the index from Neo4j")
        with connect_neo4j(neo4j_uri, neo4j_user, neo4j_password, neo4j_database) as neo:
            meta = run_neo4j(index_store_from_source, store, neo, page_size)
    else:
        _, meta = run(load_or_build_index, store, rebuild, None if want_json(json_) else say)
    if want_json(json_):
        emit_json(meta)
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
    from flowgraph.links import chain_text, load_party_graph

    store = run(open_store)
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


def _trace_tree(rec: dict) -> Tree:
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


def _print_cypher(records: list[dict], as_json: bool) -> None:
    """One Cypher statement per loan (all its disbursements' paths), `;`-separated."""
    from flowgraph.neo4j_store import cypher_for_records

    by_loan: dict[str, list[dict]] = {}
    for rec in records:
        by_loan.setdefault(rec["loan_id"], []).append(rec)
    for loan_id, recs in by_loan.items():
        query = run(cypher_for_records, recs)
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
    from flowgraph.trace import options_from_pack, trace_loans
    from flowgraph.values import parse_amount

    if not all_ and not loan_ids:
        raise typer.BadParameter("give LOAN_ID... or --all")
    overrides = dict(
        window_days=window_days, max_hops=max_hops, min_amount_ratio=min_amount_ratio,
        min_amount=run(parse_amount, min_amount) if min_amount is not None else None,
        link_depth=link_depth, max_paths=max_paths,
        tracing=tracing.value if tracing else None,
    )
    opts = {mode: o.override(**overrides) for mode, o in options_from_pack(_load_pack(rules)).items()}
    store = run(open_store)
    records = shield(run(trace_loans, store, None if all_ else loan_ids, opts, threads=threads,
                         progress=None if want_json(json_) else say))
    if cypher:
        _print_cypher(records, want_json(json_))
        return
    if want_json(json_):
        for rec in records:
            emit_json(rec)
        return
    for rec in records:
        out.print(_trace_tree(rec))
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
    out_file: Annotated[Path | None, typer.Option("--out", help="Write the result here instead of stdout.")] = None,
) -> None:
    """Simple transfer cycles, in the CodeCraft result layout (count, then one cycle per line)."""
    from flowgraph.cycles_service import cycles_text

    if window_days is not None and not temporal:
        raise typer.BadParameter("--window-days needs --temporal")
    band = None
    if amount_ratio:
        try:
            lo, hi = (float(x) for x in amount_ratio.split(":"))
        except ValueError:
            raise typer.BadParameter("--amount-ratio must look like LO:HI, e.g. 0.2:3") from None
        band = (lo, hi)
    window_ms = int(window_days * 86_400_000) if window_days is not None else None
    text = run(
        cycles_text, None if edges else open_store(), edges,
        min_hops=min_hops, max_hops=max_hops, amount_ratio=band, temporal=temporal, window_ms=window_ms,
    )
    if edges is None:  # the store's accounts are personal data; an edge file's ids are the user's own
        text = "\n".join(shield(text.split("\n")))
    if out_file:
        from flowgraph.store import atomic_write_bytes

        atomic_write_bytes(out_file, text.encode())
        say(f"{text.splitlines()[0]} cycles → {out_file}")
    else:
        sys.stdout.write(text)


# ------------------------------------------------------------------ investigations
def _ts_opt(text: str | None, flag: str) -> int | None:
    from flowgraph.values import parse_ts

    if text is None:
        return None
    try:
        return parse_ts(text)
    except ValueError:
        raise typer.BadParameter(f"{flag}: not a timestamp or date: {text!r}") from None


@app.command()
def account(
    account_id: Annotated[str, typer.Argument()],
    top: Annotated[int, typer.Option(min=1, help="Counterparties listed.")] = 10,
    json_: JsonOpt = False,
) -> None:
    """One account: owner, linked parties, inflow/outflow by day, top counterparties, alerts."""
    from flowgraph.investigate import account_summary

    data = shield(run(account_summary, run(open_store), account_id, top), account_id)
    if want_json(json_):
        emit_json(data)
        return
    owner = data["owner"] or {}
    out.print(f"[bold]{data['account_id']}[/bold]  owner {owner.get('party_id', '?')} {owner.get('name') or ''}  "
              f"in {data['totals']['inflow']}  out {data['totals']['outflow']}  ({data['totals']['transactions']} transactions)")
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
    from flowgraph.investigate import paths_between
    from flowgraph.values import parse_amount

    data = shield(run(
        paths_between, run(open_store), src, dst, _ts_opt(since, "--since"), _ts_opt(until, "--until"),
        max_hops, run(parse_amount, min_amount) if min_amount else 0, max_paths,
    ), src, dst)
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
    from flowgraph.investigate import history as loan_history
    from flowgraph.values import DAY_MS, parse_amount

    start, end = _ts_opt(from_, "--from"), _ts_opt(to, "--to")
    rows = shield(run(
        loan_history, run(open_store), borrower=borrower, start=start,
        end=end + DAY_MS if end is not None else None,
        min_amount=run(parse_amount, min_amount) if min_amount else None, branch=branch,
    ), *([borrower] if borrower else []))
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
    from flowgraph.investigate import loan_picture

    data = shield(run(loan_picture, run(open_store), loan_id, _load_pack(rules), _parse_day(as_of, "--as-of")))
    if want_json(json_):
        emit_json(data)
        return
    ln, b = data["loan"], data["borrower"] or {}
    out.print(f"[bold]{loan_id}[/bold]  {ln['amount']}  {ln.get('product') or ''} / {ln.get('purpose') or ''}  "
              f"borrower {ln['borrower_id']} {b.get('name') or ''}  payment {ln.get('payment_mode') or 'self'}")
    for rec in data["disbursements"]:
        out.print(_trace_tree(rec))
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


# ------------------------------------------------------------------ rules, scoring, alerts
rules_app = typer.Typer(help="Rule packs: list, show, check.", no_args_is_help=True)
app.add_typer(rules_app, name="rules")
RulesOpt = Annotated[Path | None, typer.Option("--rules", help="Rule pack folder (default: the shipped pack).")]


class Level(StrEnum):
    high = "high"
    medium = "medium"
    low = "low"


def _load_pack(path: Path | None):
    from flowgraph.rulepack import RulePackError, load_pack

    try:
        return load_pack(path)
    except RulePackError as e:
        err.print(f"[red]error:[/red] {escape(str(e))}")
        raise typer.Exit(2) from None


@rules_app.command("list")
def rules_list(rules: RulesOpt = None, json_: JsonOpt = False) -> None:
    """The rules of a pack."""
    pack = _load_pack(rules)
    rows = [
        {"id": r.id, "name": r.name, "kind": r.kind, "version": r.version, "enabled": r.enabled,
         "payment_modes": ",".join(r.payment_modes)}
        for r in pack.rules
    ]
    emit_rows(rows, want_json(json_), title=f"rule pack {pack.id} {pack.version}  hash {pack.hash[:16]}")


@rules_app.command("show")
def rules_show(rule_id: Annotated[str, typer.Argument()], rules: RulesOpt = None, json_: JsonOpt = False) -> None:
    """One rule: parameters, score weights, levels, description."""
    pack = _load_pack(rules)
    rule = run(pack.rule, rule_id)
    data = rule.as_dict() | {"pack": pack.id, "pack_hash": pack.hash}
    data["params"] = {k: list(v) if isinstance(v, tuple) else v for k, v in data["params"].items()}
    if want_json(json_):
        emit_json(data)
        return
    out.print(f"[bold]{rule.id}[/bold] ({rule.name}, kind {rule.kind}, version {rule.version})")
    out.print(rule.description)
    emit_rows([{"param": k, "value": v} for k, v in data["params"].items()], False, title="params")
    emit_rows([{"feature": k, "weight": v} for k, v in rule.score.items()], False, title="score")
    out.print(f"levels: high ≥ {rule.levels['high']}, medium ≥ {rule.levels['medium']}, else low")


@rules_app.command("check")
def rules_check(path: Annotated[Path | None, typer.Argument(help="Pack folder (default: shipped).")] = None, json_: JsonOpt = False) -> None:
    """Validate a rule pack; exit 2 naming file, line and key when invalid."""
    pack = _load_pack(path)
    if want_json(json_):
        emit_json({"ok": True, "id": pack.id, "version": pack.version, "hash": pack.hash, "rules": [r.id for r in pack.rules]})
    else:
        say(f"[green]ok[/green] {pack.id} {pack.version}: {len(pack.rules)} rules, hash {pack.hash}")


def _parse_day(text: str | None, flag: str):
    from datetime import date

    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{flag} must be a date YYYY-MM-DD, got {text!r}") from None


@app.command()
def score(
    date_: Annotated[str | None, typer.Option("--date", help="Score as of this day (YYYY-MM-DD, UTC).")] = None,
    from_: Annotated[str | None, typer.Option("--from", help="First day of a range.")] = None,
    to: Annotated[str | None, typer.Option("--to", help="Last day of a range.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Every disbursement as of --date (default: the last day with data).")] = False,
    rules: RulesOpt = None,
    threads: Annotated[int | None, typer.Option(min=1)] = None,
    fail_on: Annotated[Level | None, typer.Option(help="Exit 1 when an alert of this level or above fired.")] = None,
    write_neo4j: Annotated[bool, typer.Option("--write-neo4j", help="Also write the alerts to Neo4j as (:Alert)-[:ON]->(:Loan) with path tx_ids and level.")] = False,
    neo4j_uri: NeoUri = None, neo4j_user: NeoUser = None, neo4j_password: NeoPassword = None,
    neo4j_database: NeoDatabase = None,
    json_: JsonOpt = False,
) -> None:
    """Score a day's disbursements (and those whose window is still open); write alerts."""
    from rich.progress import Progress

    from flowgraph.batch import days_between, last_data_day, score_days

    day, start, end = _parse_day(date_, "--date"), _parse_day(from_, "--from"), _parse_day(to, "--to")
    if day and (start or end):
        raise typer.BadParameter("give --date or --from/--to, not both")
    if all_ and (start or end):
        raise typer.BadParameter("--all scores as of one day: use it with --date or alone")
    if not day and not (start and end) and not all_:
        raise typer.BadParameter("give --date D, --from D1 --to D2, or --all")
    pack = _load_pack(rules)
    store = run(open_store)
    if all_ and not day:
        day = run(last_data_day, store)
    days = [day] if day else run(days_between, start, end)
    as_json = want_json(json_)
    # connect before scoring: a wrong URI or a server that is down fails in a second
    neo = connect_neo4j(neo4j_uri, neo4j_user, neo4j_password, neo4j_database) if write_neo4j else None
    if err.is_terminal and not as_json:
        with Progress(console=err, transient=True) as bar:
            task = bar.add_task("scoring", total=len(days))
            summary = run(score_days, store, days, pack, threads, None, lambda _d: bar.advance(task), all_)
    else:
        summary = run(score_days, store, days, pack, threads, None, None, all_)
    if neo is not None:
        from flowgraph.neo4j_store import alerts_of_days

        with neo:
            written = run_neo4j(neo.write_alerts, run(alerts_of_days, store, days))
        summary["neo4j"] = {"uri": neo.uri, "database": neo.database, "alerts_written": written}
        if not as_json:
            say(f"wrote {written} alert(s) to Neo4j at {neo.uri}")
    if as_json:
        emit_json(summary)
    else:
        emit_rows([{"rule": k, "alerts": v} for k, v in summary["by_rule"].items()], False,
                  title=f"{summary['alerts']} alert(s) over {summary['disbursements']} disbursement(s) in {summary['seconds']} s")
        say("levels: " + ", ".join(f"{k} {v}" for k, v in summary["by_level"].items()))
    if fail_on:
        order = ["high", "medium", "low"]
        worst = order[: order.index(fail_on.value) + 1]
        if any(summary["by_level"].get(lv, 0) for lv in worst):
            say(f"[red]--fail-on {fail_on.value}: alerts at that level or above[/red]")
            raise typer.Exit(1)


@app.command()
def alerts(
    date_: Annotated[str | None, typer.Option("--date", help="One as-of partition.")] = None,
    level: Annotated[Level | None, typer.Option()] = None,
    rule: Annotated[str | None, typer.Option(help="Rule id.")] = None,
    loan: Annotated[str | None, typer.Option(help="Loan id.")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="At most this many (highest scores first).")] = None,
    json_: JsonOpt = False,
) -> None:
    """Alerts written by `score` (latest as-of per alert unless --date)."""
    from flowgraph.batch import alert_json, read_alerts

    store = run(open_store)
    df = run(read_alerts, store, _parse_day(date_, "--date"), level.value if level else None, rule, loan)
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


@app.command()
def evaluate(
    data_dir: Annotated[Path, typer.Argument(help="Generated data folder with labels.parquet.")],
    rules: RulesOpt = None,
    threads: Annotated[int | None, typer.Option(min=1)] = None,
    json_: JsonOpt = False,
) -> None:
    """Score labelled data and print per-typology recall and per-rule precision."""
    from flowgraph.evaluate import evaluate as run_evaluation

    pack = _load_pack(rules)
    res = run(run_evaluation, data_dir, pack, None, threads)
    if want_json(json_):
        emit_json(res)
        return
    emit_rows(res["typologies"], False, title=f"{data_dir}: {res['disbursements']} disbursements, {res['alerts']} alerts as of {res['as_of']}")
    emit_rows(res["rules"], False, title="by rule kind")
    say(f"lowest recall {res['recall_min']}, flow-back alerts on negative controls: {res['flow_back_on_negatives']}")


# ------------------------------------------------------------------ demo
# ------------------------------------------------------------------ portfolio and classification
class GroupBy(StrEnum):
    month = "month"
    week = "week"
    branch = "branch"
    industry = "industry"
    region = "region"
    product = "product"
    grade = "grade"


@app.command()
def report(
    from_: Annotated[str | None, typer.Option("--from", help="First disbursement day (YYYY-MM-DD).")] = None,
    to: Annotated[str | None, typer.Option("--to", help="Last disbursement day (inclusive).")] = None,
    by: Annotated[GroupBy, typer.Option("--by", help="Group by period or loan attribute.")] = GroupBy.month,
    out_dir: Annotated[Path | None, typer.Option("--out", help="Write report.csv, report.xlsx, report.html (charts inline), report.json here.")] = None,
    json_: JsonOpt = False,
) -> None:
    """Portfolio statistics: disbursements, alerts by rule and level, loans with flow-back, returned share."""
    from flowgraph.report import report_data, write_report

    start, end = _parse_day(from_, "--from"), _parse_day(to, "--to")
    store = run(open_store)
    if out_dir is not None:
        written = run(write_report, store, out_dir, start, end, by.value)
        data = written["report"]
        if not want_json(json_):
            say(f"[green]wrote[/green] {', '.join(str(out_dir / f) for f in written['files'])}")
    else:
        data = run(report_data, store, start, end, by.value)
    if want_json(json_):
        emit_json(data)
        return
    rows = [*data["groups"], {by.value: "total", **data["totals"]}]
    emit_rows([{
        by.value: r[by.value], "disb.": r["disbursements"], "disbursed": r["disbursed_amount"], "loans": r["loans"],
        "alerts h/m/l": f"{r['alerts_high']}/{r['alerts_medium']}/{r['alerts_low']}",
        "flow-back loans": f"{r['loans_with_flow_back']} ({r['flow_back_loan_share']:.1%})",
        "returned": f"{r['returned_amount']} ({r['returned_share']:.1%})",
    } for r in rows], False, title=f"portfolio by {by.value}")
    rule_cols = sorted(c for c in data["totals"] if c.startswith("rule_"))
    if rule_cols:
        emit_rows([{by.value: r[by.value], **{c[5:]: r[c] for c in rule_cols}} for r in rows], False,
                  title="alerts by rule", columns=[by.value, *[c[5:] for c in rule_cols]])


@app.command()
def classify(
    as_of: Annotated[str, typer.Option("--as-of", help="Classification day (YYYY-MM-DD).")],
    apply_: Annotated[bool, typer.Option("--apply", help="Write the suggested changes as source=auto records.")] = False,
    rules: RulesOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Suggest five-level grade changes from the pack's classification rule (overdue days, alerts)."""
    from flowgraph.classify import action_counts, apply, suggest, suggestion_json

    day = _parse_day(as_of, "--as-of")
    pack = _load_pack(rules)
    store = run(open_store)
    sug = run(suggest, store, day, pack)
    result = run(apply, store, day, sug, pack) if apply_ else None
    rows = [suggestion_json(r) for r in sug.iter_rows(named=True)]
    if want_json(json_):
        for r in rows:
            emit_json(r)
        emit_json({"as_of": day.isoformat(), "suggestions": len(rows), "apply": apply_, **(result or action_counts(sug))})
        return
    emit_rows([{**r, "reasons": "\n".join(r["reasons"])} for r in rows], False,
              title=f"{len(rows)} suggestion(s) as of {day}",
              columns=["loan_id", "current_grade", "current_source", "current_as_of", "suggested_grade", "overdue_days", "action", "reasons"])
    if result:
        say(f"[green]wrote {result['written']} auto record(s)[/green]; already applied {result['applied']}, "
            f"kept manual {result['kept_manual']}")
    elif changes := action_counts(sug)["change"]:
        say(f"run with --apply to write {changes} change(s) as source=auto records")


@app.command()
def demo(json_: JsonOpt = False) -> None:
    """Ingest the bundled sample into a fresh store, index it, score it, show the top alerts."""
    from flowgraph.batch import alert_json, last_data_day, read_alerts, score_days
    from flowgraph.graph import load_or_build_index
    from flowgraph.ingest import ingest_paths
    from flowgraph.resources import samples_dir

    as_json = want_json(json_)
    explicit = "--store" in sys.argv or "FLOWGRAPH_STORE" in os.environ
    root = settings.store if explicit else Path(tempfile.mkdtemp(prefix="flowgraph-demo-")) / "store"
    store = run(Store.init, root)
    sample = samples_dir()
    report = run(ingest_paths, store, [sample], None, None if as_json else say)
    _, meta = run(load_or_build_index, store, False, None)
    pack = _load_pack(None)
    day = run(last_data_day, store)
    summary = run(score_days, store, [day], pack, None, None, None, True)
    alerts_df = read_alerts(store, day)
    top = [alert_json(r) for r in alerts_df.head(10).iter_rows(named=True)]
    result = {
        "store": str(root),
        "sample": str(sample),
        "snapshot_id": report["snapshot_id"],
        "tables": {t: v["loaded"] for t, v in report["tables"].items()},
        "rejected": report["rejected"],
        "index": {"accounts": meta["accounts"], "edges": meta["edges"]},
        "as_of": day.isoformat(),
        "score": summary,
        "top_alerts": [{k: a[k] for k in ("alert_id", "loan_id", "rule_id", "level", "score", "reasons")} for a in top],
    }
    if as_json:
        emit_json(result)
        return
    _print_ingest(report, False)
    say(f"index: {meta['accounts']} accounts, {meta['edges']} edges; rule pack {pack.id} {pack.version}")
    emit_rows(
        [{"level": a["level"], "score": a["score"], "rule": a["rule_id"], "loan": a["loan_id"], "reason": a["reasons"][0]} for a in top],
        False,
        title=f"{summary['alerts']} alert(s) on {summary['disbursements']} disbursement(s) as of {day} — top 10",
    )
    say("levels: " + ", ".join(f"{k} {v}" for k, v in summary["by_level"].items()))
    fb = next((a for a in top if a["rule_id"].startswith("flow_back")), None)
    if fb:
        say(f"next: flowgraph --store {root} trace {fb['loan_id']}")
        say(f"      flowgraph --store {root} evidence {fb['alert_id']} --out evidence-{fb['loan_id']}")
    say(f"      flowgraph --store {root} alerts --level high")
    say(f"      flowgraph --store {root} report --by month")


# ------------------------------------------------------------------ evidence
class _EvidenceGroup(typer.core.TyperGroup):
    """`evidence TARGET ...` runs `evidence write TARGET ...`; `evidence verify DIR` verifies."""

    default_command = "write"  # read by _command_path for access control and the audit log

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["write", *args]
        return super().parse_args(ctx, args)


evidence_app = typer.Typer(
    cls=_EvidenceGroup, no_args_is_help=True, pretty_exceptions_show_locals=False,
    help="Evidence bundle of an alert or loan (HTML, JSON, CSV, XLSX, GraphML + manifest); `evidence verify DIR` re-checks one.",
)
app.add_typer(evidence_app, name="evidence")


@evidence_app.command("write")
def evidence_write(
    target: Annotated[str, typer.Argument(help="Alert id (or a unique prefix of 8+ characters) or loan id.")],
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Bundle folder (replaced if it exists).")],
    rules: RulesOpt = None,
    unmasked: Annotated[bool, typer.Option("--unmasked", help="Keep account and party ids in clear (recorded in the manifest; needs the 'unmasked' permission).")] = False,
    json_: JsonOpt = False,
) -> None:
    """Write the evidence bundle of an alert or a loan (generated_by: the acting user, see --user)."""
    from flowgraph.evidence import write_evidence

    actor = settings.actor
    if unmasked and actor is not None and not actor.may("unmasked"):
        err.print(f"[red]error:[/red] access denied: user {escape(actor.user)!r} (role {actor.role}) may not write "
                  f"--unmasked evidence (held by {', '.join(acl.roles_with('unmasked'))})")
        raise typer.Exit(1)
    pack = _load_pack(rules)
    store = run(open_store)
    manifest = run(write_evidence, store, target, out_dir, pack=pack, unmasked=unmasked,
                   generated_by=actor.user if actor else acl.acting_user(None))
    if want_json(json_):
        emit_json({"bundle": str(out_dir), **manifest})
        return
    say(f"[green]wrote[/green] {out_dir}: {', '.join(manifest['files'])}, manifest.json"
        f" ({'UNMASKED' if unmasked else 'ids masked'}; snapshot {manifest['snapshot_id']})")


@evidence_app.command("verify")
def evidence_verify(
    bundle_dir: Annotated[Path, typer.Argument(help="Bundle folder written by `flowgraph evidence`.")],
    rules: RulesOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Re-hash a bundle's files and re-run its trace on the store; exit 1 on any problem."""
    from flowgraph.evidence import verify_evidence

    pack = _load_pack(rules) if rules else None
    store = run(open_store)
    res = run(verify_evidence, store, bundle_dir, pack)
    if want_json(json_):
        emit_json(res)
    else:
        for n in res["notes"]:
            say(f"note: {n}")
        for p in res["problems"]:
            say(f"[red]problem:[/red] {p}")
        say(f"[green]ok[/green] {bundle_dir}: files and re-run match" if res["ok"] else f"[red]{len(res['problems'])} problem(s)[/red] in {bundle_dir}")
    if not res["ok"]:
        raise typer.Exit(1)


# ------------------------------------------------------------------ users and audit
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
    store = run(open_store)
    actor = settings.actor
    entry = run(acl.add_user, store, name, role.value, actor.user if actor else acl.acting_user(None))
    users = run(acl.load_users, store)
    if want_json(json_):
        emit_json({"user": name, **entry, "setup_mode": acl.in_setup_mode(users)})
        return
    say(f"[green]user {escape(name)} is {role.value}[/green]")
    if acl.in_setup_mode(users):
        say("the store stays in setup mode (everyone acts as admin) until an admin is added")


@users_app.command("remove")
def users_remove(name: Annotated[str, typer.Argument()], json_: JsonOpt = False) -> None:
    """Remove a user (never the last admin)."""
    run(acl.remove_user, run(open_store), name)
    if want_json(json_):
        emit_json({"user": name, "removed": True})
    else:
        say(f"removed user {escape(name)}")


@users_app.command("list")
def users_list(json_: JsonOpt = False) -> None:
    """Users and their roles."""
    store = run(open_store)
    rows = run(acl.list_users, store)
    emit_rows(rows, want_json(json_), title="setup mode: no admin yet, everyone acts as admin"
              if acl.in_setup_mode(run(acl.load_users, store)) else f"{len(rows)} user(s)",
              columns=["user", "role", "added_by", "added_at"])


audit_app = typer.Typer(help="The tamper-evident audit log (one line per command).", no_args_is_help=True)
app.add_typer(audit_app, name="audit")


@audit_app.command("verify")
def audit_verify(
    head: Annotated[str | None, typer.Option("--head", help="A head hash printed earlier: the log must still contain it.")] = None,
    json_: JsonOpt = False,
) -> None:
    """Check the SHA-256 chain; exit 1 naming the first edited, deleted, inserted or moved line."""
    res = run(audit_log.verify, run(open_store), head)
    if want_json(json_):
        emit_json(res)
    elif res["ok"]:
        say(f"[green]ok[/green] {res['log']}: {res['lines']} line(s), head {res['head']}")
    else:
        say(f"[red]audit log damaged at line {res['line']}[/red]: {escape(res['reason'])} ({res['log']})")
    if not res["ok"]:
        raise typer.Exit(1)


@audit_app.command("show")
def audit_show(
    user: Annotated[str | None, typer.Option("--user", help="Only this user's commands.")] = None,
    since: Annotated[str | None, typer.Option("--since", help="From this time on (ISO-8601 date or timestamp, UTC).")] = None,
    command: Annotated[str | None, typer.Option("--command", help="Only commands starting with this, e.g. 'evidence'.")] = None,
    json_: JsonOpt = False,
) -> None:
    """Audit entries, oldest first."""
    if since is not None:
        _ts_opt(since, "--since")
    rows = run(audit_log.show, run(open_store), user, since, command)
    if want_json(json_):
        for r in rows:
            emit_json(r)
        return
    emit_rows([{**r, "args": " ".join(r.get("args") or [])} for r in rows], False, title=f"{len(rows)} audit entr{'y' if len(rows) == 1 else 'ies'}",
              columns=["seq", "time", "user", "role", "command", "args", "outcome", "exit_code"])


# ------------------------------------------------------------------ Neo4j
neo4j_app = typer.Typer(
    help="Neo4j 5 as a second home of the graph: init, push, export-import, status.",
    no_args_is_help=True, pretty_exceptions_show_locals=False,
)
app.add_typer(neo4j_app, name="neo4j")
NeoUri = Annotated[str | None, typer.Option(
    "--neo4j-uri", envvar="FLOWGRAPH_NEO4J_URI", show_envvar=True,
    help="Neo4j Bolt URI, e.g. bolt://localhost:7687.")]
NeoUser = Annotated[str | None, typer.Option(
    "--neo4j-user", envvar="FLOWGRAPH_NEO4J_USER", show_envvar=True, help="Neo4j user.")]
NeoPassword = Annotated[str | None, typer.Option(
    "--neo4j-password", envvar="FLOWGRAPH_NEO4J_PASSWORD", show_envvar=True,
    help="Neo4j password (prefer the environment variable: options show in `ps`).")]
NeoDatabase = Annotated[str | None, typer.Option(
    "--neo4j-database", envvar="FLOWGRAPH_NEO4J_DATABASE", show_envvar=True,
    help="Database name (default: the server's default database).")]


def run_neo4j(fn, *args, **kwargs):
    """`run` plus the Neo4j errors: bad or missing settings exit 2, server failures exit 1."""
    from rich.markup import escape

    from flowgraph.neo4j_store import Neo4jConfigError, Neo4jStoreError

    try:
        return run(fn, *args, **kwargs)
    except Neo4jConfigError as e:
        err.print(f"[red]error:[/red] {escape(str(e))}")
        raise typer.Exit(2) from None
    except (Neo4jStoreError, FileExistsError) as e:
        err.print(f"[red]error:[/red] {escape(str(e))}")
        raise typer.Exit(1) from None


def connect_neo4j(uri: str | None, user: str | None, password: str | None, database: str | None):
    """A checked Neo4j connection from the options (over the environment); exits 2 / 1."""
    from flowgraph.neo4j_store import Neo4jSettings, Neo4jStore

    def connect():
        neo = Neo4jStore.from_settings(Neo4jSettings.resolve(uri, user, password, database))
        try:
            neo.verify()  # one attempt: an unreachable server fails now, not after 30 s of retries
        except BaseException:
            neo.close()
            raise
        return neo

    return run_neo4j(connect)


@neo4j_app.command("init")
def neo4j_init(uri: NeoUri = None, user: NeoUser = None, password: NeoPassword = None,
               database: NeoDatabase = None, json_: JsonOpt = False) -> None:
    """Create the constraints and indexes (IF NOT EXISTS: safe to re-run)."""
    with connect_neo4j(uri, user, password, database) as neo:
        res = run_neo4j(neo.init_schema)
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

    store = run(open_store)
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

                res = run_neo4j(neo.push, store, batch_size, progress, restart)
        else:
            res = run_neo4j(neo.push, store, batch_size, None, restart)
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
    from flowgraph.neo4j_store import export_import

    store = run(open_store)
    as_json = want_json(json_)
    res = run_neo4j(export_import, store, out_dir, database, None if as_json else say, command_dir)
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
        res = run_neo4j(neo.status, store)
    if want_json(json_):
        emit_json(res)
        return
    emit_rows([{"key": k, "value": v} for k, v in res.items()], False, title="neo4j status")


def _main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    app()


__all__ = ["app", "format_ts"]
