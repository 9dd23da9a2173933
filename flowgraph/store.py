"""The embedded store: one Parquet file per table plus a manifest.

Layout of a store folder::

    manifest.json                  tables → file, rows, sha256; snapshot_id
    tables/<table>/<sha256>.parquet content-addressed, sorted by the table key
    quarantine/<ingest-id>/<table>.csv
    ingests.jsonl                  one line per ingest
    index/                         the CSR index (flowgraph.graph)

Writes never touch a file the current manifest points to: new table files are written
aside (temp name, then rename), then the manifest is replaced atomically, then files no
manifest references are removed. A crash at any point leaves the previous snapshot.

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
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import polars as pl

from .schema import TABLE_NAMES, TABLES

MANIFEST = "manifest.json"
FORMAT_VERSION = 1


class StoreError(Exception):
    """A store that is missing, locked or damaged."""


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temp file in the same folder, fsync, rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def replace_directory(tmp: Path, final: Path) -> None:
    """Put a finished folder ``tmp`` in the place of ``final`` (created or replaced).

    The old folder is renamed aside first and removed after, so ``final`` is always
    either the old or the new content, never a mix. ``tmp`` must be on the same disk.
    """
    old = None
    if final.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{final.name}.old-", dir=final.parent))
        os.rmdir(old)
        os.replace(final, old)
    os.replace(tmp, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


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
        store.root.mkdir(parents=True, exist_ok=True)
        os.chmod(store.root, 0o700)
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

    def _write_manifest(self, tables: dict[str, dict]) -> dict:
        manifest = {
            "format": FORMAT_VERSION,
            "snapshot_id": snapshot_id_of(tables),
            "tables": {n: tables[n] for n in TABLE_NAMES if n in tables},
        }
        atomic_write_bytes(
            self.manifest_path, (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
        )
        return manifest

    @contextlib.contextmanager
    def lock(self, wait: bool = True) -> Iterator[None]:
        """Exclusive writer lock; a second writer waits (or fails with wait=False)."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "w") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError as e:
                raise StoreError(f"{self.root} is being written by another process") from e
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

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
            raise StoreError(f"{path}: table file missing; re-ingest to repair")
        return pl.scan_parquet(path)

    def read(self, table: str, columns: list[str] | None = None) -> pl.DataFrame:
        lf = self.scan(table)
        if columns:
            lf = lf.select(columns)
        return lf.collect()

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
            folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=".", suffix=".parquet.tmp")
            os.close(fd)
            try:
                df.write_parquet(tmp, compression="zstd", statistics=True)
                digest = _sha256_file(Path(tmp))
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
            }
        new_manifest = self._write_manifest(tables)
        self._collect_garbage(new_manifest)
        return new_manifest

    def _collect_garbage(self, manifest: dict) -> None:
        keep = {self.root / e["file"] for e in manifest["tables"].values()}
        base = self.root / "tables"
        if not base.exists():
            return
        for path in base.glob("*/*.parquet"):
            if path not in keep:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()

    def append_log(self, name: str, record: dict) -> None:
        with open(self.root / name, "a") as f:
            f.write(json.dumps(record, sort_keys=True) + "\n")
