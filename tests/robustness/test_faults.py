"""Fault injection: damaged files are detected and repaired; failed writes leave the
previous state; concurrent writers lose nothing.

Write faults are injected at *every* write step of an ingest and of an index build in
turn (the k-th call of mkstemp / write_parquet / fsync / replace / unlink raises ENOSPC or
EACCES, or write_parquet leaves a half-written file), and after each the store must still
verify and a clean re-run must give the same snapshot as an undisturbed run.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from flowgraph.cli import app
from flowgraph.core.errors import StoreError
from flowgraph.core.resources import samples_dir
from flowgraph.graph.store_index import verify_store
from flowgraph.ingest.load import ingest_paths
from flowgraph.store.embedded import Store

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]
INJECTED = {"count": 0}  # faults injected in this module (reported by the last test)


def invoke(store: Path, *args):
    return runner.invoke(app, ["--store", str(store), *[str(a) for a in args]])


def _msg(r) -> str:
    return " ".join(r.stderr.split())  # rich wraps long messages


@pytest.fixture(scope="module")
def sample_files(tmp_path_factory) -> Path:
    """The sample bank plus a transactions file with one bad row (exercises quarantine)."""
    d = tmp_path_factory.mktemp("src")
    for f in samples_dir().glob("*.csv"):
        (d / f.name).write_bytes(f.read_bytes())
    (d / "transactions_extra.csv").write_text(
        "tx_id,ts,src_account,dst_account,amount\nX1,2024-02-01,A0001,A0002,5.00\nX2,bad,A0001,A0002,1\n")
    return d


@pytest.fixture()
def store(tmp_path, sample_files) -> Store:
    s = Store.init(tmp_path / "store")
    ingest_paths(s, [sample_files / "accounts.csv", sample_files / "transactions.csv"])
    return s


def _flip(path: Path, at: float = 0.5) -> None:
    data = bytearray(path.read_bytes())
    i = int(len(data) * at)
    data[i] ^= 0xFF
    path.write_bytes(bytes(data))


# ------------------------------------------------------------------ damaged files
def test_damaged_table_file_is_a_clear_error_and_reingest_repairs(store, sample_files):
    snap = store.snapshot_id
    path = store.table_path("transactions")
    _flip(path)
    r = invoke(store.root, "paths", "A0174", "A0437")
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert "table transactions is damaged" in _msg(r) and path.name in "".join(r.stderr.split())
    r = invoke(store.root, "status", "--verify")
    assert r.exit_code == 1 and "SHA-256 does not match" in _msg(r)
    r = invoke(store.root, "ingest", "--repair", sample_files / "transactions.csv")
    assert r.exit_code == 0, r.output
    assert "table transactions was damaged" in _msg(r)
    assert store.snapshot_id == snap  # same sources → same content-addressed file
    assert invoke(store.root, "status", "--verify").exit_code == 0


def test_missing_table_file_and_damaged_manifest(store):
    path = store.table_path("accounts")
    path.unlink()
    r = invoke(store.root, "account", "A0174")
    assert r.exit_code == 1 and "file missing" in _msg(r) and "--repair" in _msg(r)
    store.manifest_path.write_text("{ damaged")
    r = invoke(store.root, "status")
    assert r.exit_code == 1 and "damaged manifest" in _msg(r)


def test_swapped_table_file_with_right_name_is_caught(store):
    """A valid Parquet file put in place of another keeps the name but not the hash."""
    path = store.table_path("accounts")
    pl.read_parquet(path).head(3).write_parquet(path)
    with pytest.raises(StoreError, match="damaged"):
        store.read("accounts")


def test_damaged_index_is_detected_and_rebuild_repairs(store):
    assert invoke(store.root, "index").exit_code == 0
    assert invoke(store.root, "status", "--verify").exit_code == 0
    arr = store.index_dir / "dst.npy"
    _flip(arr, 0.9)  # in the data, past the .npy header
    r = invoke(store.root, "status", "--verify", "--json")
    assert r.exit_code == 1
    assert "dst.npy" in json.loads(r.stdout)["verify"]["problems"][0]
    assert invoke(store.root, "index", "--rebuild").exit_code == 0
    r = invoke(store.root, "status", "--verify", "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["verify"]["checked"]["index"] == "ok"


def test_damaged_index_meta_is_rebuilt_on_use(store):
    assert invoke(store.root, "index").exit_code == 0
    (store.index_dir / "meta.json").write_text("{ nope")
    r = invoke(store.root, "paths", "A0174", "A0437", "--json")
    assert r.exit_code == 0, r.output
    assert invoke(store.root, "status", "--verify").exit_code == 0


# ------------------------------------------------------------------ write faults
class Injector:
    """Raise at the k-th call of any wrapped write function (k = None: only count)."""

    def __init__(self, k: int | None, exc: OSError, partial: bool = False):
        self.k, self.exc, self.partial, self.calls = k, exc, partial, 0

    def wrap(self, fn, writes_to_arg: bool = False):
        def wrapper(*args, **kwargs):
            self.calls += 1
            if self.k is not None and self.calls == self.k:
                INJECTED["count"] += 1
                if self.partial and writes_to_arg:  # a half-written file, then the failure
                    fn(*args, **kwargs)
                    target = Path(args[1] if len(args) > 1 else kwargs["file"])
                    target.write_bytes(target.read_bytes()[: target.stat().st_size // 2])
                raise self.exc
            return fn(*args, **kwargs)

        return wrapper

    def install(self, mp: pytest.MonkeyPatch) -> None:
        mp.setattr(tempfile, "mkstemp", self.wrap(tempfile.mkstemp))
        mp.setattr(pl.DataFrame, "write_parquet", self.wrap(pl.DataFrame.write_parquet, True))
        for name in ("replace", "fsync", "unlink", "rmdir"):
            mp.setattr(os, name, self.wrap(getattr(os, name)))


def _state(store: Store) -> tuple[bytes, list[str]]:
    """The manifest bytes and the temp/aside files left in the store."""
    left = [str(p.relative_to(store.root)) for p in store.root.rglob("*")
            if p.name.endswith(".tmp") or ".tmp-" in p.name or ".old-" in p.name]
    return store.manifest_path.read_bytes(), left


FAULTS = [
    ("ENOSPC", OSError(errno.ENOSPC, "No space left on device"), False),
    ("EACCES", PermissionError(errno.EACCES, "Permission denied"), False),
    ("half-written", OSError(errno.ENOSPC, "No space left on device"), True),
]


@pytest.mark.parametrize("name,exc,partial", FAULTS, ids=[f[0] for f in FAULTS])
def test_ingest_fault_at_every_write_step_leaves_a_consistent_store(tmp_path, sample_files, name, exc, partial):
    sources = [sample_files / f for f in ("parties.csv", "loans.csv", "disbursements.csv", "transactions_extra.csv")]

    def fresh(tag: str) -> Store:
        s = Store.init(tmp_path / tag)
        ingest_paths(s, [sample_files / "accounts.csv", sample_files / "transactions.csv"])
        return s

    expected = ingest_paths(fresh("clean"), sources)["snapshot_id"]
    k, failures = 1, 0
    while True:
        s = fresh(f"k{k}")
        before, _ = _state(s)
        inj = Injector(k, exc, partial)
        with pytest.MonkeyPatch.context() as mp:
            inj.install(mp)
            try:
                ingest_paths(s, sources)
                done = True
            except OSError as e:
                assert e is exc
                done = False
        manifest, left = _state(s)
        assert left == [], (k, left)
        assert s.verify()["ok"], k
        if not done:
            failures += 1
            # the manifest swap is the commit point: before it the old snapshot, after it the new
            assert manifest == before or s.snapshot_id == expected, k
            assert ingest_paths(s, sources)["snapshot_id"] == expected
        if inj.calls < k:  # the ingest finished before reaching step k: every step was hit
            break
        k += 1
    assert failures >= 8  # mkstemp/write/fsync/replace of each table, the manifest, garbage


def test_index_build_fault_at_every_step_keeps_the_previous_index(store):
    from flowgraph.engine.csr import load_index
    from flowgraph.graph.store_index import load_or_build_index

    load_or_build_index(store)
    old = {p.name: p.read_bytes() for p in store.index_dir.iterdir()}
    k = 1
    while True:
        inj = Injector(k, OSError(errno.ENOSPC, "No space left on device"))
        with pytest.MonkeyPatch.context() as mp:
            inj.install(mp)
            try:
                load_or_build_index(store, rebuild=True)
            except OSError:
                pass
        load_index(store.index_dir)  # whatever happened, an index loads
        now = {p.name: p.read_bytes() for p in store.index_dir.iterdir()}
        assert now == old or now.keys() == old.keys(), k
        if inj.calls < k:
            break
        k += 1
    assert k > 5
    assert verify_store(store)["ok"]


def test_cli_disk_full_is_a_clear_error_and_changes_nothing(store, sample_files, monkeypatch):
    before = store.manifest_path.read_bytes()

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pl.DataFrame, "write_parquet", full)
    r = invoke(store.root, "ingest", sample_files / "loans.csv")
    assert r.exit_code == 1
    assert "No space left on device" in _msg(r) and "Traceback" not in r.output
    assert store.manifest_path.read_bytes() == before


def test_unwritable_audit_log_fails_the_command(store, monkeypatch):
    from flowgraph.security import audit

    def denied(*a, **k):
        raise PermissionError(errno.EACCES, "Permission denied", str(store.root / audit.LOG))

    monkeypatch.setattr(audit, "append", denied)
    r = invoke(store.root, "status")
    assert r.exit_code == 1 and "cannot write the audit log" in _msg(r)


# ------------------------------------------------------------------ concurrent writers
def test_lock_without_wait_fails_cleanly(store):
    with store.lock():
        with pytest.raises(StoreError, match="being written by another process"):
            with store.lock(wait=False):
                pass


def test_two_ingests_at_once_lose_nothing(tmp_path, sample_files):
    lines = (sample_files / "transactions.csv").read_text().splitlines()
    half = len(lines) // 2
    a, b = tmp_path / "tx_a.csv", tmp_path / "tx_b.csv"
    a.write_text("\n".join(lines[:half]) + "\n")
    b.write_text("\n".join([lines[0], *lines[half:]]) + "\n")
    store = tmp_path / "s"
    cmd = [sys.executable, str(ROOT / "cli.py"), "--store", str(store), "ingest", "--table", "transactions", "--json"]
    env = {**os.environ, "FLOWGRAPH_USER": "loader"}
    procs = [subprocess.Popen([*cmd, str(f)], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for f in (a, b)]
    outs = [p.communicate(timeout=240) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1].decode()[-500:] for o in outs]
    assert "Traceback" not in "".join(o[1].decode() for o in outs)
    s = Store(store)
    assert s.read("transactions").height == len(lines) - 1
    assert s.verify()["ok"]
    from flowgraph.security import audit

    res = audit.verify(s)
    assert res["ok"] and res["lines"] == 4  # each ingest: a `started` line, then its outcome
    assert sorted(e["outcome"] for e in audit.show(s)) == ["ok", "ok", "started", "started"]


def test_zz_report_fault_count(capsys):
    """Prints how many faults this module injected (run with -s to see it)."""
    with capsys.disabled():
        print(f"\n[faults] injected {INJECTED['count']} write faults")
    assert INJECTED["count"] > 0


def test_big_table_files_get_the_size_check_on_read(store, monkeypatch):
    """Above VERIFY_READ_MAX_BYTES a read checks the size only; `status --verify` hashes."""
    import flowgraph.store.embedded as store_mod

    monkeypatch.setattr(store_mod, "VERIFY_READ_MAX_BYTES", 0)
    monkeypatch.delenv("FLOWGRAPH_VERIFY_READS", raising=False)
    path = store.table_path("accounts")
    data = path.read_bytes()
    path.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))  # same size: not seen on read...
    assert not store.verify()["ok"]  # ...but by the full check
    monkeypatch.setenv("FLOWGRAPH_VERIFY_READS", "all")
    with pytest.raises(StoreError, match="damaged"):
        store.read("accounts")
    monkeypatch.delenv("FLOWGRAPH_VERIFY_READS")
    path.write_bytes(data[:-10])  # truncated: the size check catches it on read
    with pytest.raises(StoreError, match="bytes, the manifest says"):
        store.read("accounts")


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions (the injected EACCES sweep above covers it)")
def test_read_only_store_folder_is_a_clear_error(store, sample_files):
    """A real permission error (not injected): the tables folder made read-only."""
    before = store.manifest_path.read_bytes()
    folder = store.root / "tables"  # a new table needs a new folder in here
    folder.chmod(0o500)
    try:
        r = invoke(store.root, "ingest", sample_files / "parties.csv")
    finally:
        folder.chmod(0o700)
    assert r.exit_code == 1 and "Permission denied" in _msg(r) and "Traceback" not in r.output
    assert store.manifest_path.read_bytes() == before
    assert store.verify()["ok"]
