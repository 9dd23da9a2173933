"""The embedded store: one Parquet file per table plus a manifest.

Layout of a store folder::

    manifest.json                  tables → file, rows, sha256; snapshot_id
    tables/<table>/<sha256>.parquet content-addressed, sorted by the table key
    quarantine/<ingest-id>/<table>.csv
    warnings/<ingest-id>.csv       rows loaded with a warning (flowgraph.ingest.checks)
    ingests.jsonl                  one line per ingest
    index/                         the CSR index (flowgraph.graph)
    alerts/date=D/                 alert partitions (flowgraph.rules.alerts)
    config.json, audit.jsonl, audit.head.json   users and the audit log (flowgraph.security)
    pins/<pid>-<n>.json            table files a running reader has pinned (see below)

Writes never touch a file the current manifest points to: new table files are written
aside (temp name, then rename), then the manifest is replaced atomically, then files no
manifest references are removed. A crash at any point leaves the previous snapshot; what
a killed writer leaves behind (temp files, a folder swap cut in the middle) is removed or
rolled back by the next writer as soon as it holds the store's lock (:meth:`Store.lock`).

Besides the tables the manifest records, hash-bound to nothing but kept across every
rewrite: ``setup_completed`` (when the store got its first admin — from then on a missing
user table is an error, never setup mode) and ``audit`` (the audit entry of the command
that wrote this manifest: :data:`CHANGE_REF`, set by whoever runs the command).

Snapshots: a long reader (``score``) pins one snapshot with :meth:`Store.pinned`: the
manifest is read once, and the returned :class:`PinnedStore` answers every read from that
manifest, so the whole run sees one snapshot while ingests go on. The pin is a small file
listing the snapshot's table files; the garbage collection after a manifest swap keeps
every file a live pin lists (a pin left by a process that died is dropped). Pinning and
collecting take a short lock of their own (``.pins.lock``), never the writer lock, so a
reader never waits for an ingest, and a pin is either seen by the collector or made after
the swap (and then lists only files of the new manifest).

Integrity: a table file is named after, and recorded in the manifest with, the SHA-256 of
its bytes. The first time a process reads a table file its hash is checked (then cached by
the file's inode, size and mtime), so a damaged or swapped file is a :class:`StoreError`
naming the file instead of wrong answers; :meth:`Store.verify` checks everything,
including that the index matches the tables. Files are created owner-only (0600 / 0700).

>>> import tempfile
>>> s = Store.init(tempfile.mkdtemp())
>>> s.status()["tables"]["transactions"]
{'rows': 0}
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextvars import ContextVar
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from flowgraph.core.errors import StoreError
from flowgraph.core.files import atomic_write_bytes, fault_point, sha256_file
from flowgraph.core.schema import TABLE_NAMES, TABLES

MANIFEST = "manifest.json"
FORMAT_VERSION = 1
_OWN_KEYS = ("format", "snapshot_id", "tables")  # what _write_manifest computes; other keys carry over

#: ``{"seq": N, "hash": H}`` of the audit entry that announced the running command (set by
#: the CLI guard or the API before a command that may change the store): every manifest
#: written meanwhile records it, so the change points at its audit line.
CHANGE_REF: ContextVar[dict | None] = ContextVar("flowgraph_change_ref", default=None)

# what killed writers leave: temp files of atomic writes and of table files, and the two
# halves of a folder swap (flowgraph.core.files.replace_directory)
_TEMP_FILE = re.compile(r"^\.(manifest\.json|config\.json|ingests\.jsonl|runs\.jsonl)\..+\.tmp$")
_SWAP_DIR = re.compile(r"^\.(?P<name>.+)\.(?P<kind>tmp|old)-[A-Za-z0-9_]+$")



# (path, inode, size, mtime_ns) of table files whose hash was checked in this process
_VERIFIED: set[tuple[str, int, int, int]] = set()
# Table files up to this size are hashed on first read (measured: a 6 MB, 500k-transaction
# file hashes in 0.05 s against 0.23 s to read it); bigger ones get the size check only
# on read and the full hash in `flowgraph status --verify`, unless FLOWGRAPH_VERIFY_READS=all.
VERIFY_READ_MAX_BYTES = 256 << 20


def snapshot_id_of(tables: dict[str, dict]) -> str:
    """Snapshot id: a hash over every table's content hash (empty tables included)."""
    h = hashlib.sha256()
    for name in TABLE_NAMES:
        h.update(f"{name}={tables.get(name, {}).get('sha256', '')}\n".encode())
    return h.hexdigest()[:32]


class Store:
    """A folder holding the tables; see the module docstring for its layout."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    # ---------------------------------------------------------------- lifecycle
    @classmethod
    def init(cls, root: str | os.PathLike) -> Store:
        store = cls(root)
        store.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(store.root, 0o700)  # also when the folder existed: it will hold personal data
        if not store.manifest_path.exists():
            store._write_manifest({})
        return store

    @classmethod
    def open(cls, root: str | os.PathLike) -> Store:
        store = cls(root)
        if not store.manifest_path.exists():
            raise StoreError(
                f"no flowgraph store at {store.root} (run `flowgraph init` or pass --store)"
            )
        return store

    @property
    def manifest_path(self) -> Path:
        return self.root / MANIFEST

    @property
    def index_dir(self) -> Path:
        return self.root / "index"

    def manifest(self) -> dict:
        try:
            return json.loads(self.manifest_path.read_text())
        except FileNotFoundError as e:
            raise StoreError(f"no flowgraph store at {self.root}") from e
        except json.JSONDecodeError as e:
            raise StoreError(f"{self.manifest_path}: damaged manifest ({e})") from e

    def _write_manifest(self, tables: dict[str, dict], previous: dict | None = None) -> dict:
        """Swap in a new manifest for ``tables``, keeping ``previous``'s other fields."""
        manifest = {k: v for k, v in (previous or {}).items() if k not in _OWN_KEYS}
        manifest.update({
            "format": FORMAT_VERSION,
            "snapshot_id": snapshot_id_of(tables),
            "tables": {n: tables[n] for n in TABLE_NAMES if n in tables},
        })
        ref = CHANGE_REF.get()
        if ref is not None:
            manifest["audit"] = dict(ref)
        atomic_write_bytes(
            self.manifest_path, (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
        )
        fault_point("manifest-swapped")
        return manifest

    # ---------------------------------------------------------------- setup mode
    def setup_completed(self) -> dict | None:
        """``{"at", "admin"}`` once the store has had an admin, else None (setup mode allowed)."""
        if not self.manifest_path.exists():
            return None
        done = self.manifest().get("setup_completed")
        return done if isinstance(done, dict) else None

    def record_setup_completed(self, admin: str, now: datetime | None = None) -> None:
        """Record, in the manifest, that the store has an admin (idempotent; under the lock).

        Deleting or emptying the user table can then no longer reopen setup mode.
        """
        with self.lock():
            manifest = self.manifest()
            if isinstance(manifest.get("setup_completed"), dict):
                return
            at = (now or datetime.now(UTC)).isoformat(timespec="seconds").replace("+00:00", "Z")
            manifest["setup_completed"] = {"at": at, "admin": admin}
            self._write_manifest(manifest["tables"], manifest)

    def touch_manifest(self) -> dict:
        """Rewrite the manifest unchanged but for :data:`CHANGE_REF` (under the lock)."""
        with self.lock():
            manifest = self.manifest()
            return self._write_manifest(manifest["tables"], manifest)

    @contextlib.contextmanager
    def lock(self, wait: bool = True) -> Iterator[None]:
        """Exclusive writer lock; a second writer waits (or fails with wait=False).

        Every writer of the store holds it while it writes, so whoever takes it next knows
        that temp files and half-swapped folders found then belong to a writer that died:
        :meth:`clean_leftovers` removes them (or rolls the swap back) first.
        """
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.root / ".lock", os.O_WRONLY | os.O_CREAT, 0o600)
        with os.fdopen(fd, "w") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError as e:
                raise StoreError(f"{self.root} is being written by another process") from e
            try:
                self.clean_leftovers()
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def clean_leftovers(self) -> list[str]:
        """Remove what killed writers left; returns what was done. Call under :meth:`lock`.

        - temp table files (``tables/<t>/.*.parquet.tmp``) and temp manifests, user tables
          and logs (``.manifest.json.*.tmp``...);
        - folder swaps cut in the middle (index, alert partitions): when the folder itself
          is missing, its previous version (``.NAME.old-*``) is put back — the state before
          the interrupted write, which that writer had not finished; then every ``.NAME.tmp-*``
          and ``.NAME.old-*`` is removed.

        >>> import tempfile
        >>> s = Store.init(tempfile.mkdtemp())
        >>> (s.root / "tables" / "loans").mkdir(parents=True)
        >>> _ = (s.root / "tables" / "loans" / ".x.parquet.tmp").write_bytes(b"half")
        >>> s.clean_leftovers()
        ['removed tables/loans/.x.parquet.tmp']
        """
        done: list[str] = []
        if not self.root.is_dir():
            return done
        tables = self.root / "tables"
        temps = [p for p in tables.glob("*/.*.parquet.tmp")] if tables.is_dir() else []
        temps += [p for p in self.root.iterdir() if _TEMP_FILE.match(p.name)]
        for p in sorted(temps):
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
                done.append(f"removed {p.relative_to(self.root)}")
        for folder in (self.root, self.root / "alerts"):
            done += _repair_swaps(folder, self.root)
        return done

    def interrupted_swaps(self, folder: Path) -> list[str]:
        """Names of folders in ``folder`` that are missing because a swap was cut in the
        middle (their previous version still lies aside); readers report them instead of
        showing nothing, the next writer puts them back."""
        if not folder.is_dir():
            return []
        out = set()
        for p in folder.iterdir():
            m = _SWAP_DIR.match(p.name)
            if m and m["kind"] == "old" and not (folder / m["name"]).exists():
                out.add(m["name"])
        return sorted(out)

    # ---------------------------------------------------------------- reading
    @property
    def snapshot_id(self) -> str:
        return self.manifest()["snapshot_id"]

    def table_path(self, table: str) -> Path | None:
        entry = self.manifest()["tables"].get(table)
        return self.root / entry["file"] if entry else None

    def scan(self, table: str) -> pl.LazyFrame:
        """Lazy frame of a table (an empty typed frame when nothing was loaded)."""
        if table not in TABLES:
            raise KeyError(f"unknown table {table!r}")
        path = self.table_path(table)
        if path is None:
            return TABLES[table].empty().lazy()
        if not path.exists():
            raise StoreError(f"{path}: table {table} file missing; re-load its source files with `flowgraph ingest --repair`")
        self._check_file(table, path)
        return pl.scan_parquet(path)

    def _check_file(self, table: str, path: Path) -> None:
        """Check a table file's SHA-256 against the manifest once per process and file.

        Costs one sequential read of the file (about 1 GB/s), paid once per CLI call;
        the cache key includes the inode, size and mtime, so a file replaced or edited
        after the check is checked again.
        """
        st = path.stat()
        key = (str(path.resolve()), st.st_ino, st.st_size, st.st_mtime_ns)
        if key in _VERIFIED:
            return
        entry = self.manifest()["tables"][table]
        if "bytes" in entry and st.st_size != entry["bytes"]:
            raise StoreError(
                f"{path}: table {table} is damaged ({st.st_size} bytes, the manifest says"
                f" {entry['bytes']}); restore the file, or re-load the table's source files with"
                " `flowgraph ingest --repair`"
            )
        if st.st_size > VERIFY_READ_MAX_BYTES and os.environ.get("FLOWGRAPH_VERIFY_READS") != "all":
            _VERIFIED.add(key)
            return
        digest = sha256_file(path)
        if digest != entry.get("sha256"):
            raise StoreError(
                f"{path}: table {table} is damaged (SHA-256 {digest[:16]}… does not match the"
                f" manifest's {str(entry.get('sha256'))[:16]}…); restore the file, or re-load the"
                " table's source files with `flowgraph ingest --repair`"
            )
        _VERIFIED.add(key)

    def read(self, table: str, columns: list[str] | None = None) -> pl.DataFrame:
        lf = self.scan(table)
        if columns:
            lf = lf.select(columns)
        return lf.collect()

    def verify(self) -> dict:
        """Check every table file (exists, SHA-256, row count) and the snapshot id.

        Returns ``{"ok", "problems": [...], "checked": {...}}``; never raises for damage.
        :func:`flowgraph.graph.store_index.verify_store` adds the index check.
        """
        problems: list[str] = []
        checked: dict[str, str] = {}
        manifest = self.manifest()
        for table, entry in manifest["tables"].items():
            path = self.root / entry["file"]
            if not path.exists():
                problems.append(f"{path}: table {table} file missing")
                continue
            digest = sha256_file(path)
            if digest != entry.get("sha256"):
                problems.append(f"{path}: table {table} SHA-256 does not match the manifest")
                continue
            try:
                rows = pl.scan_parquet(path).select(pl.len()).collect().item()
            except Exception as e:  # any reader error means a damaged file
                problems.append(f"{path}: table {table} unreadable ({type(e).__name__}: {e})")
                continue
            if rows != entry.get("rows"):
                problems.append(f"{path}: table {table} has {rows} rows, the manifest says {entry.get('rows')}")
                continue
            checked[table] = "ok"
        if snapshot_id_of(manifest["tables"]) != manifest.get("snapshot_id"):
            problems.append(f"{self.manifest_path}: snapshot id does not match the table hashes")
        return {"ok": not problems, "problems": problems, "checked": checked}

    def drop_damaged(self) -> list[str]:
        """Forget tables whose file is missing or does not match its hash; returns them.

        The repair step before re-ingesting a damaged table's sources (``flowgraph ingest
        --repair``): the table starts empty and the ingest loads it again; identical
        sources give the identical content-addressed file and snapshot id as before.
        """
        with self.lock():
            manifest = self.manifest()
            tables = dict(manifest["tables"])
            damaged = []
            for table, entry in manifest["tables"].items():
                path = self.root / entry["file"]
                if not path.exists() or sha256_file(path) != entry.get("sha256"):
                    damaged.append(table)
                    del tables[table]
            if damaged:
                self._write_manifest(tables, manifest)
        return damaged

    def status(self) -> dict:
        m = self.manifest()
        return {
            "store": str(self.root),
            "snapshot_id": m["snapshot_id"],
            "tables": {n: {"rows": m["tables"].get(n, {}).get("rows", 0)} for n in TABLE_NAMES},
        }

    # ---------------------------------------------------------------- writing
    def write_tables(self, frames: dict[str, pl.DataFrame]) -> dict:
        """Replace the given tables with new content in one atomic manifest swap.

        Call under :meth:`lock`. Frames must already be merged, deduplicated and sorted.
        """
        manifest = self.manifest()
        tables = dict(manifest["tables"])
        for name, df in frames.items():
            folder = self.root / "tables" / name
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=".", suffix=".parquet.tmp")
            os.close(fd)
            try:
                # zstd level 1: on 10M transactions as small as the default level (128 MB)
                # for about 2/3 of the CPU time (benchmarks/RESULTS.md section 1)
                df.write_parquet(tmp, compression="zstd", compression_level=1, statistics=True)
                digest = sha256_file(Path(tmp))
                final = folder / f"{digest}.parquet"
                os.replace(tmp, final)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
                raise
            tables[name] = {
                "file": str(final.relative_to(self.root)),
                "rows": df.height,
                "sha256": digest,
                "bytes": final.stat().st_size,
            }
        new_manifest = self._write_manifest(tables, manifest)
        self._collect_garbage(new_manifest)
        return new_manifest

    def _collect_garbage(self, manifest: dict) -> None:
        keep = {self.root / e["file"] for e in manifest["tables"].values()}
        base = self.root / "tables"
        if not base.exists():
            return
        with self._pins_lock():
            keep |= {self.root / f for f in self._live_pins()}
            for path in base.glob("*/*.parquet"):
                if path not in keep:
                    with contextlib.suppress(FileNotFoundError):
                        path.unlink()

    # ---------------------------------------------------------------- pinning
    @contextlib.contextmanager
    def _pins_lock(self) -> Iterator[None]:
        fd = os.open(self.root / ".pins.lock", os.O_WRONLY | os.O_CREAT, 0o600)
        with os.fdopen(fd, "w") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def _live_pins(self) -> set[str]:
        """Table files listed by the pins of running processes (call under the pins lock)."""
        files: set[str] = set()
        for pin in (self.root / "pins").glob("*.json"):
            try:
                record = json.loads(pin.read_text())
                os.kill(int(record["pid"]), 0)  # raises when that process is gone
            except ProcessLookupError:
                with contextlib.suppress(FileNotFoundError):
                    pin.unlink()
                continue
            except (OSError, ValueError, KeyError):
                continue  # being written, or unreadable: keep what it may list
            files.update(record.get("files", []))
        return files

    @contextlib.contextmanager
    def pinned(self) -> Iterator[PinnedStore]:
        """This store frozen at its current snapshot for the ``with`` block (see the
        module docstring): reads answer from one manifest, its table files stay."""
        with self._pins_lock():
            manifest = self.manifest()
            folder = self.root / "pins"
            folder.mkdir(mode=0o700, exist_ok=True)
            fd, name = tempfile.mkstemp(dir=folder, prefix=f"{os.getpid()}-", suffix=".json")
            with os.fdopen(fd, "w") as f:
                json.dump({"pid": os.getpid(), "snapshot_id": manifest["snapshot_id"],
                           "files": [e["file"] for e in manifest["tables"].values()]}, f)
        try:
            yield PinnedStore(self.root, manifest)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name)

    def append_log(self, name: str, record: dict) -> None:
        """Append one JSON line to a log in the store (created owner-only)."""
        fd = os.open(self.root / name, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as f:
            f.write(json.dumps(record, sort_keys=True) + "\n")


def _repair_swaps(folder: Path, root: Path) -> list[str]:
    """Put back folders whose swap was cut in the middle, then drop the swap leftovers."""
    done: list[str] = []
    if not folder.is_dir():
        return done
    leftovers = sorted(p for p in folder.iterdir() if p.is_dir() and _SWAP_DIR.match(p.name))
    for p in leftovers:
        m = _SWAP_DIR.match(p.name)
        final = folder / m["name"]
        if m["kind"] == "old" and not final.exists():
            os.replace(p, final)
            done.append(f"restored {final.relative_to(root)} (its replacement was interrupted)")
    for p in leftovers:
        if p.exists():
            shutil.rmtree(p, ignore_errors=True)
            done.append(f"removed {p.relative_to(root)}")
    return done


class PinnedStore(Store):
    """A :class:`Store` that reads one snapshot: the manifest it was made with
    (:meth:`Store.pinned`). Writing tables through it is refused."""

    def __init__(self, root: str | os.PathLike, manifest: dict):
        super().__init__(root)
        self._pinned = manifest

    def manifest(self) -> dict:
        return self._pinned

    def write_tables(self, frames: dict[str, pl.DataFrame]) -> dict:
        raise StoreError("a pinned snapshot is read-only; write through the store itself")
