"""The root command: parse → call the library → render (rich for people, --json for machines).

Data goes to stdout, messages and progress to stderr. Exit codes: 0 ok, 1 failure, 2 usage.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from flowgraph import __version__
from flowgraph.cli.output import err, out, settings
from flowgraph.core.errors import AccessError, FlowgraphError, StoreError
from flowgraph.security import access as acl
from flowgraph.security import audit as audit_log
from flowgraph.store.embedded import Store

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
            except AccessError as e:
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
        except FlowgraphError as e:  # the one place where library errors become exit codes
            outcome, code = ("usage" if e.exit_code == 2 else "failed"), e.exit_code
            err.print(f"[red]error:[/red] {escape(str(e))}")  # messages quote user input: no markup
            raise typer.Exit(code) from None
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
