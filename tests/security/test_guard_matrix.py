"""Every command × every role × every option order goes through the access check and the
audit log (issue #20 hole 1: `evidence --unmasked --out DIR L006` skipped the guard).

The command list comes from the app itself, so a new command is covered automatically.
Each command line carries an option no command knows, so nothing runs: the guard must
decide from click's own parse — denied for a role without the permission (and for an
unknown user) whatever the order, a usage error for one with it — and log either way.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import typer

from flowgraph.cli import app
from flowgraph.security import access
from flowgraph.security.audit import show, verify
from flowgraph.store.embedded import Store
from tests.helpers import fast_runner

runner = fast_runner()
USERS = {"reg": "regulator", "ana": "analyst", "rita": "risk_manager", "aud": "auditor", "root": "admin"}
UNKNOWN = "mallory"


def _leaves() -> list[list[str]]:
    out: list[list[str]] = []

    def walk(group, prefix):
        for name, cmd in group.commands.items():
            if isinstance(cmd, typer.core.TyperGroup):
                walk(cmd, [*prefix, name])
            else:
                out.append([*prefix, name])

    walk(typer.main.get_command(app), [])
    return out


LEAVES = _leaves()


def _seq(store: Path) -> int:
    import json

    return json.loads((store / "audit.head.json").read_text())["seq"]


def _since(store: Path, seq: int) -> list[dict]:
    """Entries after ``seq``, read from the end of the log."""
    import json

    n = _seq(store) - seq
    return [json.loads(x) for x in (store / "audit.jsonl").read_bytes().splitlines()[-n:]] if n > 0 else []


def _typed(path: list[str]) -> list[list[str]]:
    """How a user may type the command: `evidence write` is also plain `evidence`."""
    return [path, ["evidence"]] if path == ["evidence", "write"] else [path]


def _orders(store: Path, user: str, typed: list[str]) -> dict[str, tuple[list[str], dict]]:
    """name → (argv, env): global options in either order, the command's options before
    or after its arguments, and the global options misplaced after the command."""
    return {
        "store-user": (["--store", str(store), "--user", user, *typed, "--no-such-option", "X"], {}),
        "user-store": (["--user", user, "--store", str(store), *typed, "X", "--out", "o", "--no-such-option"], {}),
        "options-first": (["--user", user, *typed, "--unmasked", "--no-such-option", "--out", "o", "X"],
                          {"FLOWGRAPH_STORE": str(store)}),
        "globals-after": ([*typed, "--store", str(store), "X"], {"FLOWGRAPH_STORE": str(store), "FLOWGRAPH_USER": user}),
    }


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("matrix") / "store"
    assert runner.invoke(app, ["--store", str(root), "init"]).exit_code == 0
    for name, role in sorted(USERS.items(), key=lambda kv: kv[1] == "admin"):
        r = runner.invoke(app, ["--store", str(root), "--user", "root", "users", "add", name, "--role", role])
        assert r.exit_code == 0, r.output
    return root


def test_the_walk_covers_every_command():
    names = {" ".join(p) for p in LEAVES}
    assert {"evidence write", "evidence verify", "users add", "audit restart", "trace", "rules check"} <= names
    assert len(names) >= 30


@pytest.mark.parametrize("path", LEAVES, ids=lambda p: "-".join(p))
def test_command_by_role_by_option_order(store, path, monkeypatch, tmp_path):
    command = " ".join(path)
    monkeypatch.chdir(tmp_path)  # "o" and "X" would land here if anything ran
    for typed in _typed(path):
        for user in [*USERS, UNKNOWN]:
            role = USERS.get(user)
            for order, (argv, env) in _orders(store, user, typed).items():
                monkeypatch.delenv("FLOWGRAPH_STORE", raising=False)
                monkeypatch.delenv("FLOWGRAPH_USER", raising=False)
                for k, v in env.items():
                    monkeypatch.setenv(k, v)
                before = _seq(store)
                r = runner.invoke(app, argv)
                case = f"{command} as {user} ({role}), {order}: {argv}"
                assert "Traceback" not in r.output, case
                new = _since(store, before)
                if not access.needs_store(command):
                    assert r.exit_code == 2 and new == [], (case, r.output)
                    continue
                assert len(new) == 1, (case, new)
                entry = new[0]
                assert (entry["command"], entry["user"]) == (command, user), case
                if role is not None and access.allowed(role, command):
                    assert r.exit_code == 2 and entry["outcome"] == "usage", (case, r.output)
                    assert "access denied" not in r.stderr, case
                else:
                    assert r.exit_code == 1 and entry["outcome"] == "denied", (case, r.output)
                    assert "access denied" in r.stderr and r.stdout == "", case
                assert not any(tmp_path.iterdir()), case  # nothing ran, nothing was written
    assert verify(Store(store))["ok"]


def test_failure_to_parse_the_global_options_is_logged(store):
    before = len(show(Store(store)))
    r = runner.invoke(app, ["--store", str(store), "--user", "ana", "--no-such-global", "trace", "L001"])
    assert r.exit_code == 2
    new = show(Store(store))[before:]
    assert [(e["user"], e["role"], e["command"], e["outcome"]) for e in new] == [("ana", "analyst", None, "usage")]


def test_unknown_command_is_logged_as_usage(store):
    before = len(show(Store(store)))
    r = runner.invoke(app, ["--store", str(store), "--user", "ana", "no-such-command"])
    assert r.exit_code == 2
    new = show(Store(store))[before:]
    assert [(e["user"], e["command"], e["outcome"]) for e in new] == [("ana", None, "usage")]
    r = runner.invoke(app, ["--store", str(store), "--user", UNKNOWN, "no-such-command"])
    assert r.exit_code == 1 and "access denied" in r.stderr
