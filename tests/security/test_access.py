"""Roles, users, setup mode, denial, masking and owner-only files, through the CLI."""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flowgraph.cli import app
from flowgraph.security import access, masking
from flowgraph.security.audit import show
from flowgraph.store.embedded import Store

runner = CliRunner()
DOCS = Path(__file__).resolve().parents[2] / "docs" / "security.md"


def invoke(store: Path, *args, user: str | None = None):
    head = ["--store", str(store)] + (["--user", user] if user else [])
    return runner.invoke(app, head + [str(a) for a in args])


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> Path:
    """The bundled sample with users of every role (admin added last ends setup mode)."""
    from flowgraph.core.resources import samples_dir
    from flowgraph.ingest.load import ingest_paths

    root = tmp_path_factory.mktemp("access") / "store"
    ingest_paths(Store.init(root), [samples_dir()])
    for name, role in [("ana", "analyst"), ("rita", "risk_manager"), ("aud", "auditor"),
                       ("reg", "regulator"), ("root", "admin")]:
        r = invoke(root, "users", "add", name, "--role", role, user="root")
        assert r.exit_code == 0, r.output
    return root


# ------------------------------------------------------------------ policy tables
def test_every_cli_command_has_an_explicit_permission():
    """A new command must be placed in the matrix on purpose (else it is admin-only)."""
    import typer

    group = typer.main.get_command(app)
    missing = []
    for name, cmd in group.commands.items():
        subs = [f"{name} {s}" for s in cmd.commands] if isinstance(cmd, typer.core.TyperGroup) else [name]
        missing += [p for p in subs if p not in access.STORELESS
                    and not any(" ".join(p.split()[:n]) in access.COMMANDS for n in (1, 2))]
    assert missing == []
    assert not access.STORELESS & set(access.COMMANDS)  # a command is one or the other


def test_docs_matrix_matches_the_role_table():
    """docs/security.md shows ROLES exactly: one row per permission, a ✓ per role holding it."""
    text = DOCS.read_text(encoding="utf-8")
    header = next(line for line in text.splitlines() if line.startswith("| permission |"))
    roles = [c.strip() for c in header.strip("|").split("|")[1:-1]]  # last column: commands
    assert roles == list(access.ROLES)
    rows = {}
    for line in text.splitlines():
        m = re.match(r"\| `([a-z.]+)` \|(.*)\|\s*$", line)
        if m and m.group(1) in access.PERMISSIONS:
            rows[m.group(1)] = [c.strip() == "✓" for c in m.group(2).split("|")[: len(roles)]]
    assert set(rows) == set(access.PERMISSIONS)
    for perm, marks in rows.items():
        assert marks == [perm in access.ROLES[r] for r in roles], perm


def test_regulator_may_not_trace_or_export_evidence():
    assert not access.allowed("regulator", "trace")
    assert not access.allowed("regulator", "evidence write")
    assert not access.allowed("regulator", "evidence verify")
    assert access.allowed("regulator", "status") and access.allowed("regulator", "report")
    assert access.permission_for("no-such-command") == "configure"


# ------------------------------------------------------------------ setup mode and users
def test_new_store_is_in_setup_mode_until_the_first_admin(tmp_path):
    s = tmp_path / "s"
    assert invoke(s, "init", user="anyone").exit_code == 0
    assert invoke(s, "users", "add", "ana", "--role", "analyst", user="anyone").exit_code == 0
    r = invoke(s, "users", "add", "bob", "--role", "admin", user="someone-else")  # still setup mode
    assert r.exit_code == 0, r.output
    r = invoke(s, "status", user="someone-else")
    assert r.exit_code == 1
    assert "access denied: unknown user 'someone-else'" in r.stderr
    assert invoke(s, "status", user="bob").exit_code == 0
    r = invoke(s, "users", "add", "eve", "--role", "admin", user="ana")
    assert r.exit_code == 1 and "role analyst" in r.stderr and "configure" in r.stderr


def test_acting_user_from_env_and_flag(tmp_path, monkeypatch):
    s = tmp_path / "s"
    invoke(s, "init")
    invoke(s, "users", "add", "adm", "--role", "admin")
    invoke(s, "users", "add", "reg", "--role", "regulator", user="adm")
    monkeypatch.setenv("FLOWGRAPH_USER", "reg")
    assert invoke(s, "users", "list").exit_code == 1  # regulators do not see the user table
    assert invoke(s, "users", "list", user="adm").exit_code == 0  # the flag wins over the env
    entries = show(Store(s))
    assert [(e["user"], e["command"], e["outcome"]) for e in entries[-2:]] == [
        ("reg", "users list", "denied"), ("adm", "users list", "ok")]


def test_last_admin_cannot_be_removed_or_demoted(tmp_path):
    s = tmp_path / "s"
    invoke(s, "init")
    invoke(s, "users", "add", "adm", "--role", "admin")
    r = invoke(s, "users", "remove", "adm", user="adm")
    assert r.exit_code == 1 and "last admin" in r.stderr
    r = invoke(s, "users", "add", "adm", "--role", "analyst", user="adm")
    assert r.exit_code == 1 and "last admin" in r.stderr
    assert invoke(s, "users", "add", "x", "--role", "bogus", user="adm").exit_code == 2


@pytest.mark.parametrize("damage", ["delete", "empty", "demote", "analysts only"])
def test_setup_mode_never_reopens_once_the_store_had_an_admin(tmp_path, damage):
    """Issue #20 hole 7: deleting config.json, emptying its users or demoting every admin
    by hand is an error saying how to recover — not setup mode where everyone is admin."""
    s = tmp_path / "s"
    invoke(s, "init")
    invoke(s, "users", "add", "adm", "--role", "admin")
    invoke(s, "users", "add", "ana", "--role", "analyst", user="adm")
    assert json.loads((s / "manifest.json").read_text())["setup_completed"]["admin"] == "adm"
    cfg = s / access.CONFIG
    users = json.loads(cfg.read_text())["users"]
    if damage == "delete":
        cfg.unlink()
    elif damage == "empty":
        cfg.write_text(json.dumps({"users": {}}))
    elif damage == "demote":
        users["adm"]["role"] = "analyst"
        cfg.write_text(json.dumps({"users": users}))
    else:
        cfg.write_text(json.dumps({"users": {"ana": users["ana"]}}))
    n = len(show(Store(s)))
    for who in ("mallory", "adm", "ana"):
        r = invoke(s, "users", "add", "mallory", "--role", "admin", user=who)
        assert r.exit_code == 1, r.output
        msg = " ".join(r.stderr.split())
        assert "does not go back to setup mode" in msg and "restore" in msg and "Recovering the user table" in msg
    assert "mallory" not in json.loads(cfg.read_text()).get("users", {}) if cfg.exists() else True
    assert [e["outcome"] for e in show(Store(s))[n:]] == ["failed"] * 3
    # the documented recovery: write the table by hand with an admin
    cfg.write_text(json.dumps({"users": {"adm": {"role": "admin"}}}))
    assert invoke(s, "users", "list", user="adm").exit_code == 0
    assert invoke(s, "status", user="mallory").exit_code == 1


def test_setup_mode_recorded_for_a_store_made_before_the_flag(tmp_path):
    """A store whose manifest predates `setup_completed` gets it the first time a command
    sees an admin in the user table; then deleting the table no longer reopens setup mode."""
    s = tmp_path / "s"
    invoke(s, "init")
    invoke(s, "users", "add", "adm", "--role", "admin")
    m = json.loads((s / "manifest.json").read_text())
    del m["setup_completed"]
    (s / "manifest.json").write_text(json.dumps(m))
    assert invoke(s, "status", user="adm").exit_code == 0
    assert json.loads((s / "manifest.json").read_text())["setup_completed"]["admin"] == "adm"
    (s / access.CONFIG).unlink()
    assert invoke(s, "status", user="anyone").exit_code == 1


def test_storeless_commands_need_no_store_user(tmp_path, monkeypatch):
    """Issue #21: `rules check DIR` (and the other commands that read no store data) run for
    a user the store does not know, and write nothing to its audit log."""
    from flowgraph.core.resources import rules_dir

    s = tmp_path / "s"
    invoke(s, "init")
    invoke(s, "users", "add", "adm", "--role", "admin")
    monkeypatch.setenv("FLOWGRAPH_STORE", str(s))
    n = len(show(Store(s)))
    for args in (["rules", "check", str(rules_dir() / "default")], ["rules", "list", "--json"], ["schema", "loans", "--json"],
                 ["rules", "show", "flow_back_self"]):
        r = runner.invoke(app, ["--user", "stranger", *args])
        assert r.exit_code == 0, (args, r.output)
    assert runner.invoke(app, ["--user", "stranger", "status"]).exit_code == 1  # a store command
    assert [e["command"] for e in show(Store(s))[n:]] == ["status"]


def test_damaged_user_table_does_not_reopen_setup_mode(tmp_path):
    s = tmp_path / "s"
    invoke(s, "init")
    invoke(s, "users", "add", "adm", "--role", "admin")
    (s / access.CONFIG).write_text("{not json")
    r = invoke(s, "status", user="anyone")
    assert r.exit_code == 1 and "damaged user configuration" in r.stderr
    assert "Traceback" not in r.output


def test_help_and_version_are_neither_denied_nor_audited(tmp_path):
    s = tmp_path / "s"
    invoke(s, "init")
    invoke(s, "users", "add", "adm", "--role", "admin")
    n = len(show(Store(s)))
    for args in (["trace", "--help"], ["--version"], ["rules"], ["evidence", "--help"], ["--help"]):
        r = invoke(s, *args, user="stranger")
        assert r.exit_code in (0, 2), (args, r.output)
        assert "access denied" not in r.output
    assert len(show(Store(s))) == n


# ------------------------------------------------------------------ what each role may do
@pytest.mark.parametrize("args", [["trace", "L001"], ["evidence", "L001", "--out", "{tmp}/b"],
                                  ["evidence", "verify", "{tmp}/b"], ["account", "A0174"], ["alerts"]])
def test_regulator_is_denied_investigation_and_evidence(sample, tmp_path, args):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    r = invoke(sample, *args, user="reg")
    assert r.exit_code == 1
    assert "access denied" in r.stderr and "role regulator" in r.stderr
    assert r.stdout == ""
    assert not (tmp_path / "b").exists()
    last = show(Store(sample))[-1]
    assert (last["user"], last["outcome"], last["exit_code"]) == ("reg", "denied", 1)


def test_regulator_sees_aggregates(sample):
    r = invoke(sample, "status", "--json", user="reg")
    assert r.exit_code == 0 and json.loads(r.stdout)["tables"]["loans"]["rows"] > 0
    assert invoke(sample, "report", "--json", user="reg").exit_code == 0


def test_analyst_sees_masked_ids_and_auditor_clear(sample):
    known = masking.known_ids(Store(sample))
    r = invoke(sample, "trace", "L001", "--json", user="ana")
    assert r.exit_code == 0, r.output
    masked = json.loads(r.stdout)
    r = invoke(sample, "trace", "L001", "--json", user="aud")
    clear = json.loads(r.stdout)
    assert clear["account"] in known and clear["borrower_id"] in known
    assert masked["account"] not in known and "*" in masked["account"]
    assert masked["loan_id"] == clear["loan_id"] == "L001"
    hops_clear = [h for p in clear["paths"] for h in p["hops"]]
    hops_masked = [h for p in masked["paths"] for h in p["hops"]]
    assert hops_clear and [h["tx_id"] for h in hops_masked] == [h["tx_id"] for h in hops_clear]
    assert all(h["src"] not in known and h["dst"] not in known for h in hops_masked)
    # nothing of the store's ids anywhere in the analyst's output, rich or JSON
    rich = invoke(sample, "trace", "L001", user="ana").stdout
    tokens = set(re.findall(r"[A-Za-z0-9_:]+", rich + json.dumps(masked)))
    assert not tokens & known


@pytest.mark.parametrize("args", [["account", "A0174", "--json"], ["loan", "L001", "--json"],
                                  ["links", "P0665", "--depth", "2", "--json"], ["history", "--json"],
                                  ["paths", "A0174", "A0437", "--json"]])
def test_personal_data_commands_mask_for_analysts(sample, args):
    known = masking.known_ids(Store(sample))
    r = invoke(sample, *args, user="ana")
    assert r.exit_code == 0, r.output
    tokens = set(re.findall(r"[A-Za-z0-9_:]+", r.stdout))
    assert not tokens & known, sorted(tokens & known)[:5]
    clear = invoke(sample, *args, user="rita")
    assert set(re.findall(r"[A-Za-z0-9_:]+", clear.stdout)) & known
    parties = Store(sample).read("parties", ["name", "phone"])
    assert not any(n in r.stdout for n in parties["name"].drop_nulls().to_list()[:50])


def test_unmasked_evidence_needs_the_permission(sample, tmp_path):
    r = invoke(sample, "evidence", "L001", "--out", tmp_path / "a", "--unmasked", user="ana")
    assert r.exit_code == 1 and "--unmasked" in r.stderr and not (tmp_path / "a").exists()
    r = invoke(sample, "evidence", "L001", "--out", tmp_path / "b", user="ana")
    assert r.exit_code == 0, r.output
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert manifest["generated_by"] == "ana" and manifest["unmasked"] is False
    r = invoke(sample, "evidence", "L001", "--out", tmp_path / "c", "--unmasked", user="aud")
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "c" / "manifest.json").read_text())["generated_by"] == "aud"


def test_store_files_are_owner_only(tmp_path):
    from flowgraph.core.resources import samples_dir

    s = tmp_path / "s"
    r = runner.invoke(app, ["--store", str(s), "ingest", str(samples_dir())])
    assert r.exit_code == 0, r.output
    assert runner.invoke(app, ["--store", str(s), "index"]).exit_code == 0
    paths = [s, *s.rglob("*")]
    assert len(paths) > 10
    loose = [str(p) for p in paths if stat.S_IMODE(p.stat().st_mode) & 0o077]
    assert loose == []
