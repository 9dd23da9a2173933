"""The root command: parse → call the library → render (rich for people, --json for machines).

Data goes to stdout, messages and progress to stderr. Exit codes: 0 ok, 1 failure, 2 usage.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from flowgraph import __version__
from flowgraph.cli.output import err, out, settings
from flowgraph.core.errors import AccessError, AuditError, FlowgraphError, StoreError
from flowgraph.security import access as acl
from flowgraph.security import audit as audit_log
from flowgraph.store.embedded import CHANGE_REF, Store

try:  # recent typer vendors click; its usage errors are click's
    from typer._click import exceptions as _click_errors
except ImportError:  # pragma: no cover - older typer on top of click
    from click import exceptions as _click_errors
UsageError = _click_errors.UsageError
# a bare group's help (click >= 8.2); older click prints it and exits 0 instead
NoArgsIsHelpError = getattr(_click_errors, "NoArgsIsHelpError", type("NoArgsIsHelpError", (Exception,), {}))

_SECRET_OPTS = ("password", "secret", "token")


def _redact(argv: list[str]) -> list[str]:
    """Arguments for the audit log, with values of password/secret/token options hidden."""
    out, hide = [], False
    for a in argv:
        secret = a.startswith("--") and any(w in a.lower() for w in _SECRET_OPTS)
        out.append("***" if hide else (a.split("=", 1)[0] + "=***" if secret and "=" in a else a))
        hide = secret and "=" not in a
    return [re.sub(r"://[^/@\s]+@", "://***@", a) for a in out]  # credentials inside URIs


class _Parsed:
    """The command line as click parsed it: the contexts from the root to the command, the
    command path (``["users", "add"]``), whether it names a command (not only a group), and
    the usage error that stopped the parse, if any."""

    def __init__(self, root) -> None:
        self.chain = [root]
        self.path: list[str] = []
        self.decided = False
        self.error: UsageError | None = None

    @property
    def command(self) -> str | None:
        return " ".join(self.path) if self.decided else None


def _parse(ctx) -> _Parsed:
    """Resolve the command with click's own parser, level by level (the same parse that
    runs it, so the order of options cannot change which command is checked). A bare
    group's help (NoArgsIsHelpError) and ``--help`` (Exit 0) propagate unchecked: they
    show no data."""
    parsed = _Parsed(ctx)
    cur = ctx
    args = [*cur._protected_args, *cur.args]
    cur._protected_args, cur.args = [], []
    try:
        while True:
            if not args:
                cur.fail("Missing command.")
            name, cmd, args = cur.command.resolve_command(cur, args)
            parsed.path.append(name)
            cur.invoked_subcommand = name
            parsed.decided = not isinstance(cmd, typer.core.TyperGroup)
            sub = cmd.make_context(name, args, parent=cur)
            parsed.chain.append(sub)
            if parsed.decided:
                return parsed
            args = [*sub._protected_args, *sub.args]
            sub._protected_args, sub.args = [], []
            cur = sub
    except NoArgsIsHelpError:
        raise
    except UsageError as e:
        parsed.error = e
        return parsed


def _run(chain: list) -> object:
    """Invoke the parsed chain as click would: each group's callback, then the command."""
    with contextlib.ExitStack() as stack:
        for c in chain:
            stack.enter_context(c)
        for c in chain[:-1]:
            if c.command.callback is not None:
                c.invoke(c.command.callback, **c.params)
        return chain[-1].command.invoke(chain[-1])


#: commands that read or repair the audit log itself: they run on a damaged log
_AUDIT_ITSELF = frozenset({"audit verify", "audit show", "audit restart"})
#: commands that create the store they write to (their `started` line goes into it)
_CREATES_STORE = frozenset({"init", "ingest"})


class _GuardedGroup(typer.core.TyperGroup):
    """The root group: every command passes here once, so parsing, access control,
    owner-only file permissions, the no-traceback rule and the audit line live in one place.

    One parse (:func:`_parse`) decides the command whatever the order of the options. Then,
    for every command that uses a store (all but :data:`flowgraph.security.access.STORELESS`):
    the acting user is resolved and checked — also when the parse failed, so a denied user
    gets "denied" whatever they typed; the audit log's end is checked (a tampered log stops
    the command); a command that may change the store is announced by a ``started`` audit
    line before it runs; and the outcome is logged: normal return (ok), ``typer.Exit`` (ok
    or failed with its code), usage error (usage, 2), access denied (denied, 1), anything
    unexpected (error, 1, a one-line message instead of a traceback; FLOWGRAPH_DEBUG=1
    re-raises). A failure to parse the global options themselves is logged too. ``--help``,
    ``--version`` and bare groups are neither checked nor logged: they show no data.
    """

    def make_context(self, info_name, args, parent=None, **extra):
        argv = list(args)  # before parsing consumes them
        try:
            ctx = super().make_context(info_name, args, parent=parent, **extra)
        except NoArgsIsHelpError:
            raise
        except UsageError:
            self._audit_unparsed(info_name, argv)
            raise
        ctx.meta["flowgraph.argv"] = argv
        return ctx

    def _audit_unparsed(self, info_name, argv: list[str]) -> None:
        """Log a command line whose global options did not parse (to the store it names)."""
        try:
            probe = super().make_context(info_name, list(argv), resilient_parsing=True)
            root, flag = probe.params.get("store"), probe.params.get("user")
        except Exception:  # the probe is best effort: fall back to the environment
            root, flag = None, None
        store = Store(root or os.environ.get("FLOWGRAPH_STORE") or ".flowgraph")
        try:
            actor = acl.resolve_actor(store, flag)
        except FlowgraphError:
            actor = None
        _audit(store, actor, flag, None, argv, "usage", 2)

    def invoke(self, ctx):
        settings.actor = None
        parsed = _parse(ctx)
        command = parsed.command
        store = Store(ctx.params.get("store") or settings.store)
        flag = ctx.params.get("user")
        argv = ctx.meta.get("flowgraph.argv", [])
        # a command that reads no store data: no store user, no audit line (docs/security.md)
        storeless = command is not None and not acl.needs_store(command)
        outcome, code, actor, intent, log_ok, ref = "ok", 0, None, None, not storeless, None
        old_umask = os.umask(0o077)  # store files, bundles and reports hold personal data
        try:
            if storeless:
                if parsed.error is not None:
                    raise parsed.error
                return _run(parsed.chain)
            try:
                actor = acl.resolve_actor(store, flag)
                settings.actor = actor
                if command is not None:
                    acl.check(command, actor)
            except AccessError as e:
                outcome = "denied"
                err.print(f"[red]error:[/red] {escape(str(e))}")
                raise typer.Exit(1) from None
            except StoreError as e:
                err.print(f"[red]error:[/red] {escape(str(e))}")
                raise typer.Exit(1) from None
            if parsed.error is not None:
                raise parsed.error
            if command not in _AUDIT_ITSELF:
                try:
                    audit_log.check(store)
                    if acl.announced(command) and (store.manifest_path.exists() or command in _CREATES_STORE):
                        intent = audit_log.begin(store, _record(store, actor, flag, command, argv))
                        ref = CHANGE_REF.set(intent.ref)
                except AuditError as e:
                    log_ok = False
                    err.print(f"[red]error:[/red] {escape(str(e))}; the command was not run"
                              " (`flowgraph audit verify` names the damage; docs/security.md says how to recover)")
                    raise typer.Exit(1) from None
            with acl.acting_as(actor):
                result = _run(parsed.chain)
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
        except AccessError as e:  # a permission checked inside the command (e.g. --unmasked)
            outcome, code = "denied", 1
            err.print(f"[red]error:[/red] {escape(str(e))}")
            raise typer.Exit(1) from None
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
            if ref is not None:
                CHANGE_REF.reset(ref)
            logged = log_ok and _audit(store, actor, flag, command, argv, outcome, code, intent)
        if not logged:
            raise typer.Exit(1)
        return result


def _record(store: Store, actor, flag: str | None, command: str | None, argv: list[str]) -> dict:
    try:
        snapshot = store.snapshot_id if store.manifest_path.exists() else None
    except StoreError:
        snapshot = None
    return {
        "user": actor.user if actor else acl.acting_user(flag), "os_user": acl.os_login(),
        "role": actor.role if actor else None, "setup_mode": actor.setup_mode if actor else None,
        "command": command, "args": _redact(argv), "snapshot_id": snapshot,
    }


def _audit(store: Store, actor, flag: str | None, command: str | None, argv: list[str], outcome: str,
           code: int, intent: audit_log.Intent | None = None) -> bool:
    """Append the command's outcome line; False (with a message) when the log cannot be written."""
    if intent is None and not store.manifest_path.exists():
        return True  # no store, no log: the command touched no store data
    record = {**_record(store, actor, flag, command, argv), "outcome": outcome, "exit_code": code}
    try:
        if intent is not None:
            audit_log.finish(intent, record)
        else:
            audit_log.append(store, record)
        return True
    except (OSError, AuditError) as e:
        if intent is not None:
            intent.close()  # the next command records it as interrupted
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

def _version(ctx: typer.Context, value: bool) -> None:
    if value and not ctx.resilient_parsing:
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
