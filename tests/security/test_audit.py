"""The audit log: chain, verify on every kind of tampering, show filters, CLI outcomes."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from flowgraph.cli import app
from flowgraph.security import audit
from flowgraph.store.embedded import Store

runner = CliRunner()


def invoke(store: Path, *args, user: str | None = None):
    head = ["--store", str(store)] + (["--user", user] if user else [])
    return runner.invoke(app, head + [str(a) for a in args])


def _log(store: Store) -> Path:
    return store.root / audit.LOG


def _filled(tmp_path: Path, n: int = 6) -> Store:
    s = Store.init(tmp_path / "s")
    for i in range(n):
        audit.append(s, {"user": f"u{i % 2}", "command": "status", "args": ["status", str(i)],
                         "outcome": "ok", "exit_code": 0, "snapshot_id": "x"})
    return s


def _lines(s: Store) -> list[bytes]:
    return _log(s).read_bytes().splitlines()


def _write(s: Store, lines: list[bytes]) -> None:
    _log(s).write_bytes(b"".join(x + b"\n" for x in lines))


# ------------------------------------------------------------------ verify
def test_untouched_log_verifies(tmp_path):
    s = _filled(tmp_path)
    res = audit.verify(s)
    assert res["ok"] and res["lines"] == 6 and res["head"] == json.loads(_lines(s)[-1])["hash"]
    assert audit.verify(s, head=json.loads(_lines(s)[2])["hash"])["ok"]


def test_edited_field_is_named(tmp_path):
    s = _filled(tmp_path)
    lines = _lines(s)
    e = json.loads(lines[3])
    e["user"] = "someone-else"
    lines[3] = json.dumps(e, sort_keys=True, ensure_ascii=False).encode()
    _write(s, lines)
    res = audit.verify(s)
    assert not res["ok"] and res["line"] == 4 and "hash" in res["reason"]


def test_reformatted_line_is_named(tmp_path):
    s = _filled(tmp_path)
    lines = _lines(s)
    lines[1] = json.dumps(json.loads(lines[1]), sort_keys=True, indent=None, separators=(",", ":")).encode()
    _write(s, lines)
    res = audit.verify(s)
    assert not res["ok"] and res["line"] == 2 and "form" in res["reason"]


def test_deleted_line_is_named(tmp_path):
    s = _filled(tmp_path)
    lines = _lines(s)
    del lines[2]
    _write(s, lines)
    res = audit.verify(s)
    assert not res["ok"] and res["line"] == 3 and "chain" in res["reason"]


def test_inserted_line_with_valid_hash_is_named(tmp_path):
    s = _filled(tmp_path)
    lines = _lines(s)
    forged = {"seq": 3, "time": "2026-01-01T00:00:00.000Z", "user": "mallory", "command": "trace",
              "args": [], "outcome": "ok", "exit_code": 0, "prev": json.loads(lines[1])["hash"]}
    forged["hash"] = audit.entry_hash(forged)
    lines.insert(2, json.dumps(forged, sort_keys=True).encode())
    _write(s, lines)
    res = audit.verify(s)
    assert not res["ok"] and res["line"] == 4  # the forged line chains; the old line 3 does not


def test_reordered_lines_are_named(tmp_path):
    s = _filled(tmp_path)
    lines = _lines(s)
    lines[1], lines[4] = lines[4], lines[1]
    _write(s, lines)
    res = audit.verify(s)
    assert not res["ok"] and res["line"] == 2


def test_truncated_tail_and_appended_lines_are_caught_by_the_head(tmp_path):
    s = _filled(tmp_path)
    lines = _lines(s)
    _write(s, lines[:-2])
    res = audit.verify(s)
    assert not res["ok"] and "deleted from the end" in res["reason"]
    _write(s, lines)
    assert audit.verify(s)["ok"]
    (s.root / audit.HEAD).unlink()
    assert "missing" in audit.verify(s)["reason"]


def test_rewritten_log_is_caught_only_with_a_kept_head(tmp_path):
    s = _filled(tmp_path)
    kept = audit.verify(s)["head"]
    _log(s).unlink()
    (s.root / audit.HEAD).unlink()
    for _ in range(3):
        audit.append(s, {"user": "mallory", "command": "status", "outcome": "ok"})
    assert audit.verify(s)["ok"]
    res = audit.verify(s, head=kept)
    assert not res["ok"] and "rewritten" in res["reason"]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_byte_edit_is_detected(tmp_path_factory, data):
    """Property: changing any single byte of any line (or dropping it) fails verification."""
    s = _filled(tmp_path_factory.mktemp("audit"), n=4)
    raw = bytearray(_log(s).read_bytes())
    pos = data.draw(st.integers(0, len(raw) - 2))  # not the final newline
    old = raw[pos]
    new = data.draw(st.one_of(st.none(), st.integers(0, 255).filter(lambda b: b != old)))
    if new is None:
        del raw[pos]
    else:
        raw[pos] = new
    _log(s).write_bytes(bytes(raw))
    assert not audit.verify(s)["ok"]


def _append_many(root: str, who: str, n: int) -> None:
    s = Store(root)
    for i in range(n):
        audit.append(s, {"user": who, "command": "status", "args": [str(i)], "outcome": "ok"})


def test_concurrent_appends_keep_one_chain(tmp_path):
    s = Store.init(tmp_path / "s")
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_append_many, args=(str(s.root), f"p{k}", 40)) for k in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    res = audit.verify(s)
    assert res["ok"] and res["lines"] == 120


# ------------------------------------------------------------------ through the CLI
def test_cli_records_every_outcome(tmp_path):
    s = tmp_path / "s"
    assert invoke(s, "init").exit_code == 0
    assert invoke(s, "status", "--json").exit_code == 0
    assert invoke(s, "trace", "NO-SUCH-LOAN", "--json").exit_code in (0, 1)
    assert invoke(s, "ingest", tmp_path / "missing.csv").exit_code == 1
    assert invoke(s, "score", "--date", "not-a-date").exit_code == 2
    assert invoke(s, "users", "add", "adm", "--role", "admin").exit_code == 0
    assert invoke(s, "status", user="stranger").exit_code == 1
    every = audit.show(Store(s))
    entries = [e for e in every if e["outcome"] != "started"]  # announced commands: started + outcome
    got = [(e["command"], e["outcome"], e["exit_code"]) for e in entries]
    assert got[0] == ("init", "ok", 0) and got[1] == ("status", "ok", 0)
    assert every[0]["outcome"] == "started" and every[1]["start"] == every[0]["seq"] == 1
    assert ("ingest", "failed", 1) in got
    assert ("score", "usage", 2) in got
    assert got[-1] == ("status", "denied", 1)
    assert all(e["snapshot_id"] == entries[0]["snapshot_id"] for e in entries)
    assert entries[1]["args"] == ["--store", str(s), "status", "--json"]
    assert entries[-1]["user"] == "stranger" and entries[-1]["role"] is None
    r = invoke(s, "audit", "verify", "--json", user="adm")
    assert r.exit_code == 0 and json.loads(r.stdout)["lines"] == len(every)


def test_cli_verify_fails_on_an_edit_and_names_the_line(tmp_path):
    s = tmp_path / "s"
    for _ in range(3):
        invoke(s, "init")
    log = s / audit.LOG
    log.write_text(log.read_text().replace('"outcome": "started"', '"outcome": "failed"', 1))
    r = invoke(s, "audit", "verify")
    assert r.exit_code == 1
    msg = " ".join(r.stderr.split())  # rich wraps long lines
    assert "damaged at line 1" in msg and "hash" in msg
    assert "Traceback" not in r.output


def test_cli_show_filters(tmp_path):
    s = tmp_path / "s"
    invoke(s, "init")
    invoke(s, "users", "add", "adm", "--role", "admin")
    invoke(s, "users", "add", "aud", "--role", "auditor", user="adm")
    invoke(s, "status", user="aud")
    r = invoke(s, "audit", "show", "--user", "aud", "--json", user="aud")
    assert r.exit_code == 0
    rows = [json.loads(x) for x in r.stdout.splitlines()]
    assert [x["command"] for x in rows] == ["status"]
    r = invoke(s, "audit", "show", "--since", "2999-01-01", "--json", user="aud")
    assert r.exit_code == 0 and r.stdout == ""
    r = invoke(s, "audit", "show", "--command", "users", "--json", user="aud")
    assert [(json.loads(x)["command"], json.loads(x)["outcome"]) for x in r.stdout.splitlines()] == [
        ("users add", "started"), ("users add", "ok")] * 2
    assert invoke(s, "audit", "show", "--since", "yesterday", user="aud").exit_code == 2
    assert invoke(s, "audit", "show", user="adm").exit_code == 0


def test_secret_option_values_are_redacted():
    from flowgraph.cli.app import _redact

    assert _redact(["neo4j", "push", "--password", "hunter2", "--user", "x"]) == [
        "neo4j", "push", "--password", "***", "--user", "x"]
    assert _redact(["--neo4j-password=hunter2", "a"]) == ["--neo4j-password=***", "a"]
    assert _redact(["--neo4j-uri", "bolt://neo:pw@host:7687"]) == ["--neo4j-uri", "bolt://***@host:7687"]


@pytest.mark.parametrize("cmd", [["audit", "show"], ["audit", "verify"]])
def test_audit_commands_need_their_permission(tmp_path, cmd):
    s = tmp_path / "s"
    invoke(s, "init")
    invoke(s, "users", "add", "adm", "--role", "admin")
    invoke(s, "users", "add", "ana", "--role", "analyst", user="adm")
    r = invoke(s, *cmd, user="ana")
    assert r.exit_code == 1 and "access denied" in r.stderr


# ------------------------------------------------------------------ head, intents, repairs
def _begin_and_die(root: str) -> None:
    audit.begin(Store(root), {"user": "killed", "command": "ingest", "args": []})
    os._exit(0)  # no finish: like a process killed while its command ran


def _append_one(root: str) -> None:
    audit.append(Store(root), {"user": "other", "command": "status", "outcome": "ok"})


def test_dead_intent_is_recorded_interrupted_and_a_live_one_is_not(tmp_path):
    s = _filled(tmp_path, n=2)
    ctx = mp.get_context("fork")
    live = audit.begin(s, {"user": "alive", "command": "score", "args": []})  # held by this process
    p = ctx.Process(target=_begin_and_die, args=(str(s.root),))
    p.start()
    p.join(60)
    q = ctx.Process(target=_append_one, args=(str(s.root),))  # another process appends
    q.start()
    q.join(60)
    assert (p.exitcode, q.exitcode) == (0, 0)
    entries = audit.show(s)
    dead_start = next(e for e in entries if e["user"] == "killed")
    recovered = [e for e in entries if e["outcome"] == "interrupted"]
    assert [(e["user"], e["start"]) for e in recovered] == [("killed", dead_start["seq"])]
    assert audit.verify(s)["notes"] == [f"entry {live.seq}: `score` by alive started and has no outcome"
                                        " line yet (still running, or killed: the next command records it as interrupted)"]
    done = audit.finish(live, {"user": "alive", "command": "score", "outcome": "ok", "exit_code": 0})
    assert done["start"] == live.seq and audit.verify(s)["notes"] == []
    assert not any((s.root / audit.OPEN).iterdir())


def test_a_head_written_before_the_head_held_the_line_still_works(tmp_path):
    s = _filled(tmp_path, n=3)
    last = json.loads(_lines(s)[-1])
    (s.root / audit.HEAD).write_text(json.dumps({"seq": last["seq"], "hash": last["hash"]}))
    assert audit.verify(s)["ok"]
    audit.append(s, {"user": "u", "command": "status", "outcome": "ok"})
    assert audit.verify(s)["ok"] and "line" in json.loads((s.root / audit.HEAD).read_text())


def test_partial_last_line_is_a_note_only_when_it_is_the_heads_line(tmp_path):
    s = _filled(tmp_path, n=3)
    raw = _log(s).read_bytes()
    last_len = len(_lines(s)[-1]) + 1
    _log(s).write_bytes(raw[: -last_len + 10])  # the head's line, cut after 10 bytes
    res = audit.verify(s)  # the head says the line was written: someone cut it
    assert not res["ok"] and "cut short and is not the line the head records" in res["reason"]
    head = json.loads((s.root / audit.HEAD).read_text())
    (s.root / audit.HEAD).write_text(json.dumps({**head, "state": "pending"}))  # what a crash leaves
    res = audit.verify(s)
    assert res["ok"] and "cut short" in res["notes"][0]
    _log(s).write_bytes(raw[:-last_len] + b'{"forged": 1')  # something else, cut
    res = audit.verify(s)
    assert not res["ok"] and "is not the line the head records" in res["reason"]
    with pytest.raises(audit.AuditError):
        audit.append(s, {"user": "u", "command": "status", "outcome": "ok"})


@pytest.mark.parametrize("cut", [1, 3])
def test_appending_never_moves_the_head_past_a_gap(tmp_path, cut):
    s = _filled(tmp_path, n=5)
    _write(s, _lines(s)[:-cut])
    before = _log(s).read_bytes()
    with pytest.raises(audit.AuditError, match="deleted from the end"):
        audit.append(s, {"user": "u", "command": "status", "outcome": "ok"})
    assert _log(s).read_bytes() == before
