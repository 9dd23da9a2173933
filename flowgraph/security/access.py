"""Roles, users and permissions (masking: :mod:`flowgraph.security.masking`).

The whole policy is the two tables below, declared once: :data:`ROLES` (role → the
permissions it holds) and :data:`COMMANDS` (CLI command path → the permission it needs).
``docs/security.md`` shows the same matrix and a test keeps the two in step.

Users live in ``<store>/config.json`` (written atomically, owner-only)::

    {"users": {"alice": {"role": "admin", "added_by": "root", "added_at": "..."}}}

A store that has never had an admin is in **setup mode**: everyone acts as admin, so that
the first admin can be added. From then on a user missing from the table is denied, and
the manifest records that the store has had an admin (``setup_completed``), so a user
table deleted, emptied or stripped of its admins is an error telling how to recover —
never setup mode again.

Commands that read and write no store data (:data:`STORELESS`: the data contract, rule
packs, synthetic data, the demo in its own new store) need no user of the store.

The acting user is ``--user``, else ``FLOWGRAPH_USER``, else the OS login. These are
*claims*, not authentication: the store folder is readable by its owner only, so the OS
account is the real boundary and the roles are a policy layer for the people and jobs that
share it (see docs/security.md).

>>> allowed("regulator", "trace"), allowed("analyst", "trace"), allowed("admin", "users add")
(False, True, True)
>>> permission_for("evidence write"), permission_for("neo4j push")
('evidence', 'configure')
>>> needs_store("rules check"), needs_store("rules"), needs_store("trace")
(False, True, True)

For a server (or any caller without the CLI): :func:`authorize` resolves the acting user
and checks the command in one call; :func:`current_user` is who the running command acts
for (set with :func:`acting_as`).
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import re
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime

from flowgraph.core.errors import AccessError, InvalidValue, NotFound, StoreError
from flowgraph.core.files import atomic_write_bytes
from flowgraph.store.embedded import Store

CONFIG = "config.json"

#: permission → what it allows (shown in docs/security.md)
PERMISSIONS: dict[str, str] = {
    "aggregate": "counts and statistics without personal data: status, report",
    "investigate": "look at single loans, accounts, paths, alerts (ids masked unless 'unmasked')",
    "evidence": "write and re-verify evidence bundles",
    "score": "run the scoring batch (writes alerts)",
    "classify": "suggest and apply five-level loan grades",
    "ingest": "create a store and load data into it",
    "configure": "manage users; Neo4j synchronisation",
    "users.read": "list users and roles",
    "audit.read": "read the audit log",
    "audit.verify": "check the audit log's hash chain (no content shown)",
    "review": "first review of an alert's case, assignment and notes",
    "review.approve": "second review of an alert's case (four eyes: never the first reviewer)",
    "unmasked": "see account and party ids, names, id numbers, phones and addresses in clear",
}

#: role → permissions. Regulators see aggregates only; auditors read and export evidence
#: (in clear) and read the audit log; analysts investigate with masked personal data; risk
#: managers also score and classify; admins ingest and configure.
ROLES: dict[str, frozenset[str]] = {
    "regulator": frozenset({"aggregate", "audit.verify"}),
    "analyst": frozenset({"aggregate", "investigate", "evidence", "review"}),
    "risk_manager": frozenset({"aggregate", "investigate", "evidence", "score", "classify", "unmasked", "audit.verify", "review", "review.approve"}),
    "auditor": frozenset({"aggregate", "investigate", "evidence", "users.read", "audit.read", "audit.verify", "unmasked"}),
    "admin": frozenset(PERMISSIONS),
}

#: command path (as typed, sub-commands joined by a space) → permission it needs. A group
#: name alone (``neo4j``) covers all its sub-commands that are not listed themselves.
#: A command missing here needs ``configure`` (deny by default).
COMMANDS: dict[str, str] = {
    "init": "ingest",
    "ingest": "ingest",
    "status": "aggregate",
    "report": "aggregate",
    "index": "investigate",
    "links": "investigate",
    "trace": "investigate",
    "paths": "investigate",
    "cycles": "investigate",
    "account": "investigate",
    "history": "investigate",
    "loan": "investigate",
    "alerts": "investigate",
    "flow": "investigate",
    "alerts review": "review",
    "alerts assign": "review",
    "alerts note": "review",
    "score": "score",
    "rules replay": "score",
    "classify": "classify",
    "evidence": "evidence",
    "audit show": "audit.read",
    "audit verify": "audit.verify",
    "audit restart": "configure",
    "users list": "users.read",
    "users add": "configure",
    "users remove": "configure",
    "users passwd": "configure",
    "neo4j": "configure",
    "neo4j status": "aggregate",
}
DEFAULT_PERMISSION = "configure"

#: Commands that read and write no store data: no user of the store is needed, nothing is
#: checked against its user table and nothing is written to its audit log (there may be no
#: store at all). ``demo`` builds a new store of its own and refuses an existing one.
STORELESS: frozenset[str] = frozenset({
    "schema", "generate", "demo", "evaluate", "rules list", "rules show", "rules check",
})

#: Commands that may change the store or write its data out: the audit log gets a
#: ``started`` line *before* they run (and their manifest writes point at it), then the
#: outcome line — so a change can never exist without its audit line, even after kill -9.
ANNOUNCED: frozenset[str] = frozenset({
    "init", "ingest", "index", "score", "classify", "users add", "users remove", "users passwd", "neo4j",
    "evidence write", "report", "alerts review", "alerts assign", "alerts note",
})

_NAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")



@dataclass(frozen=True)
class Actor:
    """Who is acting: the claimed name, the OS login, the role, and whether in setup mode."""

    user: str
    os_user: str
    role: str
    setup_mode: bool

    @property
    def permissions(self) -> frozenset[str]:
        return ROLES[self.role]

    def may(self, permission: str) -> bool:
        return permission in self.permissions


# ------------------------------------------------------------------ the policy
def permission_for(command: str) -> str:
    """Permission a command path needs (longest listed prefix wins)."""
    parts = command.split()
    for n in range(len(parts), 0, -1):
        hit = COMMANDS.get(" ".join(parts[:n]))
        if hit:
            return hit
    return DEFAULT_PERMISSION


def allowed(role: str, command: str) -> bool:
    return permission_for(command) in ROLES[role]


def needs_store(command: str) -> bool:
    """False for the :data:`STORELESS` commands (no store user, no audit line)."""
    return command not in STORELESS


def announced(command: str) -> bool:
    """True for commands whose ``started`` audit line is written before they run."""
    parts = command.split()
    return any(" ".join(parts[:n]) in ANNOUNCED for n in range(len(parts), 0, -1))


def roles_with(permission: str) -> list[str]:
    return [r for r, perms in ROLES.items() if permission in perms]


# ------------------------------------------------------------------ users
def os_login() -> str:
    """The OS login name (``uid:N`` when the system has no name for the uid)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid:{os.getuid()}"


def acting_user(flag: str | None) -> str:
    """``--user``, else ``FLOWGRAPH_USER``, else the OS login."""
    return flag or os.environ.get("FLOWGRAPH_USER") or os_login()


def load_users(store: Store) -> dict[str, dict]:
    """The store's user table (empty when the store or its config does not exist)."""
    path = store.root / CONFIG
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        # a damaged user table must not silently reopen setup mode
        raise StoreError(f"{path}: damaged user configuration ({e}); restore it from a backup") from None
    users = data.get("users") if isinstance(data, dict) else None
    if not isinstance(users, dict) or not all(
        isinstance(v, dict) and v.get("role") in ROLES for v in users.values()
    ):
        raise StoreError(f"{path}: damaged user configuration (expected users → role); restore it from a backup")
    return users


def _save_users(store: Store, users: dict[str, dict]) -> None:
    body = {"users": dict(sorted(users.items()))}
    atomic_write_bytes(store.root / CONFIG, (json.dumps(body, indent=2, sort_keys=True) + "\n").encode())


def in_setup_mode(users: dict[str, dict]) -> bool:
    return not any(u["role"] == "admin" for u in users.values())


RECOVERY = (
    "restore {config} from a backup, or (as the OS account owning the store) write it by hand"
    ' with at least one admin: {{"users": {{"NAME": {{"role": "admin"}}}}}} — see docs/security.md,'
    ' "Recovering the user table"'
)


def resolve_actor(store: Store | None, flag: str | None) -> Actor:
    """The acting user and role for a store (``None`` or a store not created yet: setup mode).

    Raises :class:`AccessError` for a user missing from the table, :class:`StoreError` for a
    damaged table, and for a missing or admin-less table of a store that has had an admin.
    """
    user = acting_user(flag)
    if store is None or not store.manifest_path.exists():
        return Actor(user, os_login(), "admin", True)
    users = load_users(store)
    done = store.setup_completed()
    if in_setup_mode(users):
        if done is not None:
            path = store.root / CONFIG
            what = "is missing" if not path.exists() else "has no users" if not users else "lists no admin"
            raise StoreError(
                f"{path} {what}, but this store has had an admin since {done.get('at')} "
                f"({done.get('admin')}), so it does not go back to setup mode: " + RECOVERY.format(config=path)
            )
        return Actor(user, os_login(), "admin", True)
    if done is None:  # a store made before setup_completed was recorded: record it now
        with contextlib.suppress(OSError):
            store.record_setup_completed(_admins(users)[0])
    entry = users.get(user)
    if entry is None:
        raise AccessError(
            f"access denied: unknown user {user!r} for store {store.root if store else '?'}"
            " (an admin adds users with `flowgraph users add NAME --role ROLE`)"
        )
    return Actor(user, os_login(), entry["role"], False)


def check(command: str, actor: Actor) -> None:
    """Raise :class:`AccessError` unless ``actor`` may run ``command``."""
    need = permission_for(command)
    if not actor.may(need):
        raise AccessError(
            f"access denied: user {actor.user!r} (role {actor.role}) may not run `{command}`"
            f" (needs permission '{need}', held by {', '.join(roles_with(need))})"
        )


def require(actor: Actor | None, permission: str, what: str) -> None:
    """Raise :class:`AccessError` unless ``actor`` holds ``permission`` (for what a command
    does beyond its own permission, e.g. ``--unmasked``). No actor: denied.

    >>> require(Actor("ana", "svc", "analyst", False), "unmasked", "write --unmasked evidence")
    Traceback (most recent call last):
    ...
    flowgraph.core.errors.AccessError: access denied: user 'ana' (role analyst) may not write --unmasked evidence (needs permission 'unmasked', held by risk_manager, auditor, admin)
    """
    if actor is None or not actor.may(permission):
        who = f"user {actor.user!r} (role {actor.role})" if actor else "an unchecked caller"
        raise AccessError(f"access denied: {who} may not {what} (needs permission '{permission}',"
                          f" held by {', '.join(roles_with(permission))})")


def authorize(store: Store, user: str | None, command: str) -> Actor:
    """Resolve the acting user of ``store`` and check that they may run ``command``.

    The one call a server makes per request (``user``: the authenticated name; ``None``
    falls back to ``FLOWGRAPH_USER`` / the OS login like the CLI). Raises
    :class:`AccessError` (denied or unknown user) or :class:`StoreError`.
    """
    actor = resolve_actor(store, user)
    check(command, actor)
    return actor


_CURRENT: ContextVar[Actor | None] = ContextVar("flowgraph_actor", default=None)


@contextlib.contextmanager
def acting_as(actor: Actor | None) -> Iterator[None]:
    """Run a block on behalf of ``actor`` (:func:`current_user` returns its name)."""
    token = _CURRENT.set(actor)
    try:
        yield
    finally:
        _CURRENT.reset(token)


def current_actor() -> Actor | None:
    return _CURRENT.get()


def current_user() -> str:
    """Who the running command acts for: the checked actor, else ``FLOWGRAPH_USER`` / the OS login.

    >>> with acting_as(Actor("alice", "svc", "analyst", False)):
    ...     current_user()
    'alice'
    """
    actor = _CURRENT.get()
    return actor.user if actor is not None else acting_user(None)


def add_user(store: Store, name: str, role: str, added_by: str, now: datetime | None = None) -> dict:
    """Add or change a user; returns the new entry."""
    if not _NAME.match(name):
        raise InvalidValue(f"user name {name!r}: use 1-64 letters, digits, '_', '.', '@' or '-'")
    if role not in ROLES:
        raise InvalidValue(f"unknown role {role!r} (roles: {', '.join(ROLES)})")
    with store.lock():
        users = load_users(store)
        old = users.get(name)
        if old and old["role"] == "admin" and role != "admin" and _admins(users) == [name]:
            raise InvalidValue(f"{name!r} is the last admin; add another admin first")
        entry = {"role": role, "added_by": added_by,
                 "added_at": (now or datetime.now(UTC)).isoformat(timespec="seconds").replace("+00:00", "Z")}
        users[name] = entry
        _save_users(store, users)
    if role == "admin":  # after the user table: a crash in between is repaired by resolve_actor
        store.record_setup_completed(name, now)
    return entry


def remove_user(store: Store, name: str) -> None:
    with store.lock():
        users = load_users(store)
        if name not in users:
            raise NotFound(f"no user {name!r}")
        if users[name]["role"] == "admin" and _admins(users) == [name]:
            # removing the last admin would put the store back into setup mode: open to all
            raise InvalidValue(f"{name!r} is the last admin; add another admin first")
        del users[name]
        _save_users(store, users)


def _admins(users: dict[str, dict]) -> list[str]:
    return sorted(n for n, u in users.items() if u["role"] == "admin")


def list_users(store: Store) -> list[dict]:
    return [{"user": n, **u} for n, u in sorted(load_users(store).items())]


__all__ = [
    "ROLES", "PERMISSIONS", "COMMANDS", "STORELESS", "ANNOUNCED", "Actor", "AccessError",
    "permission_for", "allowed", "needs_store", "announced", "acting_user", "resolve_actor",
    "check", "require", "authorize", "acting_as", "current_actor", "current_user", "add_user",
    "remove_user", "list_users", "load_users", "in_setup_mode",
]
