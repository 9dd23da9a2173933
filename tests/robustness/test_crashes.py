"""Crashes and full disks at the worst moments (issue #20 holes 5 and 8).

The kills are real: the command runs in a subprocess with ``FLOWGRAPH_FAULT_INJECT`` naming
a :func:`flowgraph.core.files.fault_point`, where the process sends itself SIGKILL (what
``kill -9`` does), deterministically and without timing guesses. A full disk is simulated
by making the audit log's write put half the bytes down and fail with ENOSPC, as a real
full disk does.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from flowgraph.cli import app
from flowgraph.core.files import FAULT_ENV
from flowgraph.security import audit
from flowgraph.store.embedded import Store
from tests.helpers import ROOT, copy_store, fast_runner

runner = fast_runner()
SAMPLE = ROOT / "data" / "samples"


def invoke(store: Path, *args, user: str = "root"):
    return runner.invoke(app, ["--store", str(store), "--user", user, *[str(a) for a in args]])


def killed_at(point: str, store: Path, *args, user: str = "root") -> subprocess.CompletedProcess:
    """Run a command in a subprocess that kills itself (SIGKILL) at ``point``."""
    env = {**os.environ, FAULT_ENV: point}
    cmd = [sys.executable, str(ROOT / "cli.py"), "--store", str(store), "--user", user, *[str(a) for a in args]]
    res = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, timeout=300)
    assert res.returncode == -signal.SIGKILL, (res.returncode, res.stderr.decode()[-800:])
    return res


@pytest.fixture
def store(tmp_path) -> Path:
    s = tmp_path / "s"
    assert invoke(s, "init").exit_code == 0
    assert invoke(s, "users", "add", "root", "--role", "admin").exit_code == 0
    assert invoke(s, "ingest", SAMPLE / "accounts.csv").exit_code == 0
    return s


def _log(s: Path) -> list[dict]:
    return [json.loads(x) for x in (s / audit.LOG).read_bytes().splitlines()]


# ------------------------------------------------------------------ kill -9 after the manifest swap
def test_kill_right_after_the_manifest_swap_leaves_the_change_with_its_audit_line(store):
    before = Store(store).snapshot_id
    killed_at("manifest-swapped", store, "ingest", SAMPLE / "transactions.csv", user="root")
    s = Store(store)
    assert s.snapshot_id != before and s.read("transactions").height == 20000  # the change happened
    started = _log(store)[-1]
    assert (started["command"], started["outcome"], started["user"]) == ("ingest", "started", "root")
    assert s.manifest()["audit"] == {"seq": started["seq"], "hash": started["hash"]}  # the change names it
    res = audit.verify(s)
    assert res["ok"] and any("started and has no outcome line yet" in n for n in res["notes"])
    # the next command finds the dead intent and records it before its own line
    assert invoke(store, "status", "--json", user="root").exit_code == 0
    interrupted, status = _log(store)[-2:]
    assert (interrupted["outcome"], interrupted["start"], interrupted["user"]) == ("interrupted", started["seq"], "root")
    assert interrupted["command"] == "ingest" and interrupted["snapshot_id"] == s.snapshot_id
    assert status["command"] == "status"
    res = audit.verify(s)
    assert res["ok"] and res["notes"] == []
    assert not any((store / audit.OPEN).iterdir())


def test_kill_between_the_audit_head_and_its_line_is_completed_not_glued(store):
    n = len(_log(store))
    killed_at("audit-head-written", store, "status")
    assert len(_log(store)) == n  # the line never reached the log; the head holds it
    res = audit.verify(Store(store))
    assert res["ok"] and any("cut short by a crash or a full disk" in x for x in res["notes"]), res
    pending = json.loads((store / audit.HEAD).read_text())["line"]
    assert invoke(store, "status").exit_code == 0
    lines = (store / audit.LOG).read_bytes().splitlines()
    assert lines[n].decode() == pending  # completed exactly as intended
    assert "cut short" in json.loads(lines[n + 1])["repaired"]
    assert audit.verify(Store(store))["ok"]


def test_kill_before_an_announced_command_ran_is_recorded_as_not_run(store):
    """The started line of an ingest was cut (the head holds it) before the ingest ran."""
    before = Store(store).snapshot_id
    killed_at("audit-head-written", store, "ingest", SAMPLE / "transactions.csv")
    assert Store(store).snapshot_id == before
    assert invoke(store, "status").exit_code == 0
    started, closed, status = _log(store)[-3:]
    assert (started["outcome"], closed["outcome"], closed["start"]) == ("started", "interrupted", started["seq"])
    assert "before the command ran" in closed["recovered"]
    res = audit.verify(Store(store))
    assert res["ok"] and res["notes"] == []


# ------------------------------------------------------------------ full disk during an audit append
def _full_disk(monkeypatch, truncate_too: bool = False) -> None:
    """The next audit line gets half its bytes written, then ENOSPC (and, with
    ``truncate_too``, taking them back fails as well: the state a crash would leave)."""
    real_write = audit._write_all

    def half(fd, data):
        os.write(fd, data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(audit, "_write_all", half)
    if truncate_too:
        def no_truncate(fd, size):
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(audit.os, "ftruncate", no_truncate)
    return real_write


@pytest.mark.parametrize("truncate_too", [False, True], ids=["partial-taken-back", "partial-left"])
def test_full_disk_during_an_audit_append_is_repaired_not_glued(store, monkeypatch, truncate_too):
    n = len(_log(store))
    _full_disk(monkeypatch, truncate_too)
    r = invoke(store, "status", "--json")
    assert r.exit_code == 1 and "No space left on device" in " ".join(r.stderr.split())
    raw = (store / audit.LOG).read_bytes()
    assert raw.endswith(b"\n") != truncate_too  # a partial line is there only when it could not be taken back
    res = audit.verify(Store(store))
    assert res["ok"] and any("full disk" in x for x in res["notes"])  # distinct from tampering
    monkeypatch.undo()  # space was freed
    assert invoke(store, "status", "--json").exit_code == 0
    entries = _log(store)  # every line parses: nothing was glued
    assert len(entries) == n + 2 and entries[n]["command"] == "status" and "repaired" in entries[n + 1]
    assert audit.verify(Store(store))["ok"]


def test_full_disk_while_writing_the_head_changes_nothing(store, monkeypatch):
    before = (store / audit.LOG).read_bytes(), (store / audit.HEAD).read_bytes()

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(audit, "atomic_write_bytes", full)
    r = invoke(store, "ingest", SAMPLE / "loans.csv")
    assert r.exit_code == 1 and "No space left on device" in " ".join(r.stderr.split())
    assert ((store / audit.LOG).read_bytes(), (store / audit.HEAD).read_bytes()) == before
    assert Store(store).read("loans").height == 0  # the announced command did not run
    monkeypatch.undo()
    assert audit.verify(Store(store))["ok"]


# ------------------------------------------------------------------ half-swapped folders, leftovers
def test_kill_in_the_middle_of_an_alerts_swap_never_shows_no_alerts(scored_sample, tmp_path):
    s = copy_store(scored_sample, tmp_path / "s")
    assert invoke(s.root, "users", "add", "root", "--role", "admin").exit_code == 0
    r = invoke(s.root, "alerts", "--json")
    before = sorted(r.stdout.splitlines())
    day = json.loads(before[0])["as_of"]
    killed_at("folder-moved-aside", s.root, "score", "--date", day, "--all")
    alerts = s.root / "alerts"
    assert not (alerts / f"date={day}").exists() and any(p.name.startswith(f".date={day}.old-") for p in alerts.iterdir())
    r = invoke(s.root, "alerts", "--json", user="root")  # a reader: waits for the lock, puts the partition back
    assert r.exit_code == 0 and sorted(r.stdout.splitlines()) == before
    assert sorted(p.name for p in alerts.iterdir()) == [f"date={day}"]


def test_leftovers_of_killed_runs_are_removed_by_the_next_writer(store):
    s = Store(store)
    assert invoke(store, "index").exit_code == 0
    killed_at("folder-moved-aside", store, "index", "--rebuild")  # the index is half swapped
    assert not (store / "index").exists()
    made = [store / "tables" / "accounts" / ".tmpab12cd.parquet.tmp", store / ".manifest.json.x1y2.tmp",
            store / ".config.json.q9.tmp", store / "alerts" / ".date=2024-01-01.tmp-zz9"]
    for p in made:
        p.parent.mkdir(parents=True, exist_ok=True)
        if p.name.endswith(".tmp"):
            p.write_bytes(b"half")
        else:
            p.mkdir()
    assert invoke(store, "ingest", SAMPLE / "loans.csv").exit_code == 0  # a writer: takes the lock
    assert not any(p.exists() for p in made)
    assert (store / "index" / "meta.json").exists()  # the previous index was put back
    assert not [p.name for p in store.iterdir() if p.name.startswith(".index.")]
    assert s.verify()["ok"] and audit.verify(s)["ok"]
