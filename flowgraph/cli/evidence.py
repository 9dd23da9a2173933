"""Evidence bundles: write and verify."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from flowgraph.cli.app import app
from flowgraph.cli.output import (
    JsonOpt,
    RulesOpt,
    emit_json,
    open_store,
    say,
    settings,
    want_json,
)
from flowgraph.rules.pack import load_pack
from flowgraph.security import access as acl


class _EvidenceGroup(typer.core.TyperGroup):
    """`evidence TARGET ...` runs `evidence write TARGET ...`; `evidence verify DIR` verifies."""

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
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Bundle folder: new, empty or a previous bundle (replaced), outside the store.")],
    rules: RulesOpt = None,
    unmasked: Annotated[bool, typer.Option("--unmasked", help="Keep account and party ids in clear (recorded in the manifest; needs the 'unmasked' permission).")] = False,
    json_: JsonOpt = False,
) -> None:
    """Write the evidence bundle of an alert or a loan (generated_by: the acting user, see --user)."""
    from flowgraph.evidence.bundle import write_evidence

    actor = settings.actor
    if unmasked:
        acl.require(actor, "unmasked", "write --unmasked evidence")
    pack = load_pack(rules)
    store = open_store()
    manifest = write_evidence(store, target, out_dir, pack=pack, unmasked=unmasked, generated_by=actor.user if actor else acl.acting_user(None))
    if want_json(json_):
        emit_json({"bundle": str(out_dir), **manifest})
        return
    say(f"[green]wrote[/green] {out_dir}: {', '.join(manifest['files'])}, manifest.json"
        f" ({'UNMASKED' if unmasked else 'ids masked'}; snapshot {manifest['snapshot_id']})")


@evidence_app.command("verify")
def evidence_verify(
    bundle_dir: Annotated[Path, typer.Argument(help="Bundle folder written by `flowgraph evidence`.")],
    rules: Annotated[Path | None, typer.Option("--rules", help="The rule pack the bundle was made with (default: the shipped pack).")] = None,
    json_: JsonOpt = False,
) -> None:
    """Regenerate a bundle from the snapshot it names and compare every file byte for byte; exit 1 unless verified."""
    from flowgraph.evidence.bundle import verify_evidence

    pack = load_pack(rules)
    store = open_store()
    res = verify_evidence(store, bundle_dir, pack)
    if want_json(json_):
        emit_json(res)
    else:
        for n in res["notes"]:
            say(f"note: {n}")
        for p in res["problems"]:
            say(f"[red]problem:[/red] {p}")
        if res["ok"]:
            say(f"[green]ok[/green] {bundle_dir}: every file regenerated from snapshot {res['snapshot_id']} is identical")
        elif res["status"] == "unverifiable":
            say(f"[yellow]not verified[/yellow] {bundle_dir}: see the note above")
        else:
            say(f"[red]{len(res['problems'])} problem(s)[/red] in {bundle_dir}")
    if not res["ok"]:
        raise typer.Exit(1)
