"""Passwords (scrypt), sessions, lockout: the workbench's sign-in pieces."""

from __future__ import annotations

import json

import pytest

from flowgraph.core.errors import InvalidValue, NotFound
from flowgraph.store.embedded import Store
from flowgraph.web import auth


def test_hash_is_salted_scrypt_and_verifies():
    a, b = auth.hash_password("a long password"), auth.hash_password("a long password")
    assert a != b and a.split("$")[:4] == ["scrypt", str(auth.SCRYPT_N), "8", "1"]
    assert auth.verify_password("a long password", a) and auth.verify_password("a long password", b)
    assert not auth.verify_password("a long passwore", a)
    assert not auth.verify_password("x", "md5$abc") and not auth.verify_password("x", "garbage")


def test_set_password_only_for_known_users_and_stores_no_clear_text(tmp_path):
    from flowgraph.security import access

    store = Store.init(tmp_path / "s")
    access.add_user(store, "root", "admin", "t")
    with pytest.raises(NotFound):
        auth.set_password(store, "ghost", "long enough pw", "root")
    with pytest.raises(InvalidValue):
        auth.set_password(store, "root", "short", "root")
    auth.set_password(store, "root", "long enough pw", "root")
    text = (store.root / auth.PASSWORDS).read_text()
    assert "long enough pw" not in text and json.loads(text)["users"]["root"]["hash"].startswith("scrypt$")
    assert oct((store.root / auth.PASSWORDS).stat().st_mode & 0o777) == "0o600"
    assert auth.check_credentials(store, "root", "long enough pw").role == "admin"
    assert auth.check_credentials(store, "root", "wrong password") is None
    assert auth.check_credentials(store, "ghost", "long enough pw") is None
    access.add_user(store, "root2", "admin", "t")
    access.remove_user(store, "root")
    assert auth.check_credentials(store, "root", "long enough pw") is None  # removed user


def test_sessions_expire_and_end(monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(auth.time, "monotonic", lambda: clock[0])
    s = auth.Sessions(idle_s=10, absolute_s=25)
    token, sess = s.create("ana")
    assert s.get(token) is sess and s.get("other") is None and s.get(None) is None
    clock[0] += 9
    assert s.get(token) is sess  # refreshed
    clock[0] += 9
    assert s.get(token) is sess
    clock[0] += 9  # 27 s in all: past the absolute limit
    assert s.get(token) is None
    token, _ = s.create("ana")
    clock[0] += 11
    assert s.get(token) is None  # idle
    token, _ = s.create("ana")
    s.end(token)
    assert s.get(token) is None
    assert token not in repr(s._by_hash)  # only hashes of the cookie are kept


def test_lockout_after_failures(monkeypatch):
    clock = [0.0]
    monkeypatch.setattr(auth.time, "monotonic", lambda: clock[0])
    s = auth.Sessions()
    for _ in range(auth.MAX_FAILURES):
        assert not s.locked_out("ana")
        s.failed("ana")
    assert s.locked_out("ana") and not s.locked_out("rita")
    clock[0] += auth.FAILURE_WINDOW_S + 1
    assert not s.locked_out("ana")


def test_users_passwd_command(tmp_path):
    from typer.testing import CliRunner

    from flowgraph.cli import app

    runner = CliRunner()
    root = str(tmp_path / "s")
    assert runner.invoke(app, ["--store", root, "init"]).exit_code == 0
    assert runner.invoke(app, ["--store", root, "users", "add", "root", "--role", "admin"]).exit_code == 0
    assert runner.invoke(app, ["--store", root, "--user", "root", "users", "add", "ana", "--role", "analyst"]).exit_code == 0
    r = runner.invoke(app, ["--store", root, "--user", "root", "users", "passwd", "ana", "--password-stdin"], input="ana-secret-pw\n")
    assert r.exit_code == 0, r.output
    assert auth.check_credentials(Store.open(root), "ana", "ana-secret-pw").role == "analyst"
    r = runner.invoke(app, ["--store", root, "--user", "ana", "users", "passwd", "ana", "--password-stdin"], input="another-secret\n")
    assert r.exit_code == 1 and "access denied" in r.output  # admins set passwords
    log = (Store.open(root).root / "audit.jsonl").read_text()
    assert "ana-secret-pw" not in log
