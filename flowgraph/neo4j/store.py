"""Neo4j 5 as a second home of the store's graph, behind one small store interface.

:class:`GraphSource` is what the index builder and the alert writer need from a store:
a snapshot id, the account universe, the transfers in ``tx_id`` order (columnar
batches), and a place to write alerts. Two implementations:

- :class:`EmbeddedSource` over :class:`flowgraph.store.embedded.Store` (the Parquet store);
- :class:`Neo4jStore`, a Neo4j 5 database reached with the official driver.

:class:`Neo4jStore` also pushes a store into Neo4j (``UNWIND $rows … MERGE`` batches in
managed transactions, resumable through ``<store>/neo4j_sync.json``), creates the
constraints, and :func:`export_import` writes ``neo4j-admin database import full`` CSV
files for the first bulk load. :func:`build_index_from_source` builds the CSR index from
any source, equal to :func:`flowgraph.graph.store_index.build_store_index` for the same data.

All Cypher text lives in :mod:`flowgraph.neo4j.cypher`. This module never imports typer
or rich; failures surface as :class:`Neo4jStoreError` (the CLI's exit code 1) or
:class:`Neo4jConfigError` (exit code 2).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Protocol, runtime_checkable
from urllib.parse import urlsplit

import polars as pl

from flowgraph.core.errors import (
    InvalidValue,
    Neo4jConfigError,
    Neo4jStoreError,
    Neo4jUnavailableError,
    UsageError,
)
from flowgraph.core.files import atomic_write_bytes, replace_directory
from flowgraph.core.schema import TABLES
from flowgraph.engine.csr import TemporalIndex, build_index
from flowgraph.graph.store_index import INDEX_FORMAT, account_universe
from flowgraph.neo4j import cypher as cy
from flowgraph.rules.alerts import ALERT_SCHEMA, partition_dir, read_alerts, write_partition
from flowgraph.store.embedded import Store

SYNC_FILE = "neo4j_sync.json"
SYNC_FORMAT = 1
DEFAULT_BATCH_SIZE = 5_000
DEFAULT_PAGE_SIZE = 50_000
TRANSFER_SCHEMA: dict[str, pl.DataType] = {
    "tx_id": pl.Utf8(),
    "src": pl.Utf8(),
    "dst": pl.Utf8(),
    "ts": pl.Int64(),
    "amount": pl.Int64(),
}
#: the tables ``neo4j push`` sends, in order (classifications are not in the graph model)
PUSH_TABLES: tuple[str, ...] = tuple(cy.PUSH_STATEMENTS)

ProgressFn = Callable[[str, int, int], None]





# ------------------------------------------------------------------ the interface
@runtime_checkable
class GraphSource(Protocol):
    """What the index builder and the alert writer need from a store.

    ``transfers`` yields polars frames with the columns of :data:`TRANSFER_SCHEMA`
    (``tx_id, src, dst, ts, amount``), ``tx_id`` strictly increasing across batches.
    ``account_ids`` yields sorted, distinct account ids (every account the graph knows,
    including endpoints of transfers, disbursements and repayments).
    """

    def snapshot_id(self) -> str: ...

    def account_ids(self, batch_size: int = DEFAULT_PAGE_SIZE) -> Iterator[pl.Series]: ...

    def transfers(self, batch_size: int = DEFAULT_PAGE_SIZE) -> Iterator[pl.DataFrame]: ...

    def write_alerts(self, alerts: pl.DataFrame) -> int: ...

    def alerts(self) -> pl.DataFrame: ...


def _alert_tx_ids(paths) -> tuple[list[str], list[int]]:
    """Flatten an alert's paths to (tx_ids in path order, hops per path)."""
    tx_ids: list[str] = []
    lengths: list[int] = []
    for p in paths or []:
        hops = p["hops"] or []
        tx_ids += [h["tx_id"] for h in hops]
        lengths.append(len(hops))
    return tx_ids, lengths


def _alert_summary(df: pl.DataFrame) -> pl.DataFrame:
    """The columns every source returns from ``alerts()``, sorted by alert_id."""
    rows = []
    for r in df.iter_rows(named=True):
        tx_ids, lengths = _alert_tx_ids(r.get("paths"))
        rows.append(
            {
                "alert_id": r["alert_id"], "loan_id": r["loan_id"], "rule_id": r["rule_id"],
                "level": r["level"], "score": r["score"], "tx_ids": tx_ids, "path_lengths": lengths,
            }
        )
    return pl.DataFrame(rows, schema=ALERT_SUMMARY_SCHEMA).sort("alert_id")


ALERT_SUMMARY_SCHEMA: dict[str, pl.DataType] = {
    "alert_id": pl.Utf8(),
    "loan_id": pl.Utf8(),
    "rule_id": pl.Utf8(),
    "level": pl.Utf8(),
    "score": pl.Float64(),
    "tx_ids": pl.List(pl.Utf8),
    "path_lengths": pl.List(pl.Int64),
}


class EmbeddedSource:
    """:class:`GraphSource` over the embedded Parquet store.

    Parameters
    ----------
    store : Store
        An open store.
    """

    def __init__(self, store: Store):
        self.store = store

    def snapshot_id(self) -> str:
        """The store manifest's snapshot id."""
        return self.store.snapshot_id

    def account_ids(self, batch_size: int = DEFAULT_PAGE_SIZE) -> Iterator[pl.Series]:
        """The account universe of :mod:`flowgraph.graph.store_index`, sorted, in batches."""
        ids = account_universe(self.store)
        for off in range(0, ids.len(), batch_size):
            yield ids.slice(off, batch_size)

    def transfers(self, batch_size: int = DEFAULT_PAGE_SIZE) -> Iterator[pl.DataFrame]:
        """The transactions table (already sorted by tx_id) in batches."""
        lf = self.store.scan("transactions").select(
            "tx_id", pl.col("src_account").alias("src"), pl.col("dst_account").alias("dst"),
            "ts", "amount",
        )
        n = self.store.status()["tables"]["transactions"]["rows"]
        for off in range(0, n, batch_size):
            yield lf.slice(off, batch_size).collect()

    def write_alerts(self, alerts: pl.DataFrame) -> int:
        """Merge alerts into their ``as_of`` date partitions by alert_id; return the count.

        A partition keeps its other alerts; an alert already there is replaced.
        """
        if alerts.is_empty():
            return 0
        for (as_of,), part in alerts.group_by("as_of", maintain_order=True):
            day = date.fromisoformat(as_of)
            old = read_alerts(self.store, day=day)
            merged = (
                pl.concat([old.select(list(ALERT_SCHEMA)), part.select(list(ALERT_SCHEMA))],
                          how="vertical_relaxed")
                .unique(subset=["alert_id"], keep="last", maintain_order=True)
                .sort(["score", "alert_id"], descending=[True, False])
            )
            mpath = partition_dir(self.store, day) / "_manifest.json"
            manifest = json.loads(mpath.read_text()) if mpath.exists() else {"as_of": as_of}
            manifest["alerts"] = merged.height
            write_partition(self.store, day, merged, manifest)
        return alerts.height

    def alerts(self) -> pl.DataFrame:
        """Latest alerts (one per alert_id), as :data:`ALERT_SUMMARY_SCHEMA`."""
        return _alert_summary(read_alerts(self.store))


# ------------------------------------------------------------------ index from a source
def build_index_from_source(
    source: GraphSource, page_size: int = DEFAULT_PAGE_SIZE
) -> tuple[TemporalIndex, dict]:
    """Build the CSR index by streaming a source's accounts and transfers.

    Parameters
    ----------
    source : GraphSource
        The embedded store adapter, a :class:`Neo4jStore`, or anything with that shape.
    page_size : int
        Rows per batch (per keyset page for Neo4j).

    Returns
    -------
    (TemporalIndex, dict)
        The index, identical to :func:`flowgraph.graph.store_index.build_store_index` on the same
        data, and its meta (snapshot id of the source, sizes, timings).

    Notes
    -----
    Dense account ids are the sorted union of the source's accounts and the transfers'
    endpoints; rows are transfers in ``tx_id`` order. The transfers are re-sorted by
    ``tx_id`` here with polars (O(E log E)), so a server whose string collation differs
    from byte order still gives the store's row numbers.
    """
    started = time.perf_counter()
    snapshot = source.snapshot_id()
    batches = list(source.transfers(page_size))
    tx = (
        pl.concat(batches) if batches else pl.DataFrame(schema=TRANSFER_SCHEMA)
    ).cast(TRANSFER_SCHEMA).sort("tx_id")
    if tx["tx_id"].n_unique() != tx.height:
        raise Neo4jStoreError("the source holds duplicate tx_ids; cannot build the index")
    incomplete = tx.filter(pl.any_horizontal(pl.all().is_null()))
    if incomplete.height:
        # a TRANSFER loaded by other means without ts or amount (or an endpoint without
        # account_id) cannot be placed in the time-sorted CSR
        raise Neo4jStoreError(
            f"{incomplete.height} transfer(s) lack tx_id, src, dst, ts or amount "
            f"(first: {incomplete.row(0, named=True)}); cannot build the index"
        )
    id_parts = list(source.account_ids(page_size))
    accounts = (
        pl.concat([*(s.cast(pl.Utf8).rename("a") for s in id_parts),
                   tx["src"].rename("a"), tx["dst"].rename("a")])
        .unique()
        .sort()
    )
    enum = pl.Enum(accounts.to_list()) if accounts.len() else pl.Enum([])
    enc = tx.select(
        pl.col("src").cast(enum).to_physical().cast(pl.Int32),
        pl.col("dst").cast(enum).to_physical().cast(pl.Int32),
    )
    encoded = time.perf_counter()
    index = build_index(
        enc["src"].to_numpy(), enc["dst"].to_numpy(), tx["ts"].to_numpy(),
        tx["amount"].to_numpy(), accounts.to_numpy().astype(str),
    )
    built = time.perf_counter()
    meta = {
        "format": INDEX_FORMAT,
        "snapshot_id": snapshot,
        "source": type(source).__name__,
        "accounts": int(index.n_accounts),
        "edges": int(index.n_edges),
        "encode_seconds": round(encoded - started, 3),
        "build_seconds": round(built - encoded, 3),
    }
    return index, meta


# ------------------------------------------------------------------ Neo4j
#: URI schemes of the Bolt transport (the driver's HTTP transport is a preview: not used)
URI_SCHEMES: tuple[str, ...] = ("bolt", "bolt+s", "bolt+ssc", "neo4j", "neo4j+s", "neo4j+ssc")
ENV_URI = "FLOWGRAPH_NEO4J_URI"
ENV_USER = "FLOWGRAPH_NEO4J_USER"
ENV_PASSWORD = "FLOWGRAPH_NEO4J_PASSWORD"
ENV_DATABASE = "FLOWGRAPH_NEO4J_DATABASE"


def redact_uri(uri: str) -> str:
    """``uri`` without user info, for messages (``bolt://u:pw@h:7687`` → ``bolt://h:7687``).

    >>> redact_uri("neo4j://neo4j:secret@db.example:7687")
    'neo4j://db.example:7687'
    """
    parts = urlsplit(uri)
    if not parts.scheme or not parts.netloc:
        return uri
    return f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}{parts.path}"


@dataclass(frozen=True)
class Neo4jSettings:
    """Connection settings: explicit values (CLI options) over ``FLOWGRAPH_NEO4J_*``.

    The password is left out of ``repr`` so that it never reaches a log or traceback.
    """

    uri: str
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    database: str | None = None

    @classmethod
    def resolve(
        cls,
        uri: str | None = None,
        user: str | None = None,
        password: str | None = None,
        database: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> Neo4jSettings:
        """Settings from the arguments, each falling back to its environment variable.

        Raises
        ------
        Neo4jConfigError
            No URI, a URI whose scheme is not a Bolt one, or a user without a password
            (or the reverse).
        """
        env = os.environ if env is None else env
        uri = uri or env.get(ENV_URI) or None
        user = user or env.get(ENV_USER) or None
        password = password or env.get(ENV_PASSWORD) or None
        database = database or env.get(ENV_DATABASE) or None
        if not uri:
            raise Neo4jConfigError(
                f"no Neo4j URI: set {ENV_URI} (e.g. bolt://localhost:7687) or pass --neo4j-uri"
            )
        scheme = urlsplit(uri).scheme
        if scheme not in URI_SCHEMES or not urlsplit(uri).netloc:
            raise Neo4jConfigError(
                f"bad Neo4j URI {redact_uri(uri)!r}: expected {' | '.join(URI_SCHEMES)}://host[:port]"
            )
        if bool(user) != bool(password):
            missing = ENV_PASSWORD if user else ENV_USER
            raise Neo4jConfigError(f"Neo4j user and password go together: set {missing} (or pass it)")
        return cls(uri, user, password, database)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Neo4jSettings:
        """Settings from ``FLOWGRAPH_NEO4J_URI/_USER/_PASSWORD/_DATABASE`` only."""
        return cls.resolve(env=env)


def _connection_errors() -> tuple[type[BaseException], ...]:
    from neo4j import exceptions as ex

    return (ex.ServiceUnavailable, ex.SessionExpired, ex.ConnectionAcquisitionTimeoutError)


def _driver_errors() -> tuple[type[BaseException], ...]:
    from neo4j import exceptions as ex

    return (ex.Neo4jError, ex.DriverError)


def _first_line(e: BaseException, limit: int = 300) -> str:
    """An exception's message on one line (driver messages run over several lines and
    put the reason, e.g. "Connection refused", on the second), at most ``limit`` chars."""
    text = " ".join(str(e).split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text or type(e).__name__


def _write_batch(tx, statement: str, rows: list[dict]) -> None:
    """Managed-transaction body: one UNWIND statement over one batch (retried by the driver)."""
    tx.run(statement, rows=rows).consume()


def store_fingerprint(store: Store) -> dict:
    """What a Neo4j graph holding exactly this store shows: transfer and account counts
    and the largest tx_id (the fingerprint :meth:`Neo4jStore.snapshot_id` compares).

    Notes
    -----
    Neo4j orders strings by code point, polars by UTF-8 bytes: the same order for every
    id except ones mixing characters above U+FFFF with U+E000-U+FFFF.
    """
    tx = store.scan("transactions").select(
        pl.len().alias("n"), pl.col("tx_id").max().alias("last")
    ).collect()
    return {"transfers": int(tx["n"][0]), "accounts": int(account_universe(store).len()),
            "last_tx_id": tx["last"][0]}


class Neo4jStore:
    """A Neo4j 5 database holding flowgraph's graph; a :class:`GraphSource`.

    Parameters
    ----------
    uri, user, password, database : str
        Connection settings (``database`` None = the server's default database);
        checked as :meth:`Neo4jSettings.resolve` does, without the environment.
    driver : neo4j.Driver, optional
        An existing driver (one per process; tests pass a fake). When given, the
        credentials are not used, ``uri`` only names the server in messages, and
        :meth:`close` leaves the driver open.
    page_size : int
        Rows per keyset page when reading.

    Notes
    -----
    The first operation checks the server with ``verify_connectivity`` (one attempt),
    because every managed transaction retries an unreachable server for about 30 s
    before failing; a wrong URI then fails at once, naming the URI.

    Examples
    --------
    >>> with Neo4jStore("bolt://localhost:7687", "neo4j", "pw") as neo:  # doctest: +SKIP
    ...     neo.init_schema()
    ...     neo.push(Store.open("store"))
    """

    def __init__(
        self,
        uri: str | None = None,
        user: str | None = None,
        password: str | None = None,
        database: str | None = None,
        *,
        driver: Any = None,
        page_size: int = DEFAULT_PAGE_SIZE,
    ):
        self.database = database
        self.page_size = page_size
        self._own_driver = driver is None
        self._verified = False
        if driver is None:
            settings = Neo4jSettings.resolve(uri, user, password, database, env={})
            from neo4j import GraphDatabase

            auth = (settings.user, settings.password) if settings.user else None
            try:
                driver = GraphDatabase.driver(settings.uri, auth=auth)
            except (ValueError, *_driver_errors()) as e:
                raise Neo4jConfigError(f"bad Neo4j URI {redact_uri(settings.uri)!r}: {_first_line(e)}") from e
        self.uri = redact_uri(uri or "neo4j://(given driver)")
        self._driver = driver

    @classmethod
    def from_settings(cls, settings: Neo4jSettings, **kw) -> Neo4jStore:
        """A store from :class:`Neo4jSettings`."""
        return cls(settings.uri, settings.user, settings.password, settings.database, **kw)

    # ------------------------------------------------------------ plumbing
    def close(self) -> None:
        """Close the driver (when this object created it)."""
        if self._own_driver:
            self._driver.close()

    def __enter__(self) -> Neo4jStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def target(self) -> str:
        """``uri/database`` (no credentials): what the push state file is keyed by."""
        return f"{self.uri}/{self.database or '<default>'}"

    @contextlib.contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        """Driver exceptions → this module's, naming the URI (never the credentials)."""
        try:
            yield
        except Neo4jStoreError:
            raise
        except _connection_errors() as e:
            raise Neo4jUnavailableError(
                f"{what}: cannot reach Neo4j at {self.uri} ({type(e).__name__}: {_first_line(e)})"
            ) from e
        except _driver_errors() as e:
            raise Neo4jStoreError(
                f"{what}: Neo4j at {self.target} failed ({type(e).__name__}: {_first_line(e)})"
            ) from e

    def _read(self, statement: str, **params) -> list:
        from neo4j import RoutingControl

        records, _, _ = self._driver.execute_query(
            statement, parameters_=params, routing_=RoutingControl.READ, database_=self.database
        )
        return list(records)

    def _write(self, statement: str, **params) -> None:
        from neo4j import RoutingControl

        self._driver.execute_query(
            statement, parameters_=params, routing_=RoutingControl.WRITE, database_=self.database
        )

    def verify(self) -> dict:
        """Check the server answers (one attempt, no retries); return ``{"uri", "database"}``.

        Raises
        ------
        Neo4jUnavailableError
            The server cannot be reached.
        Neo4jStoreError
            It answered with an error (e.g. wrong credentials).
        """
        with self._errors("connect"):
            self._driver.verify_connectivity()
        self._verified = True
        return {"uri": self.uri, "database": self.database}

    def _ensure_connected(self) -> None:
        if not self._verified:
            self.verify()

    # ------------------------------------------------------------ schema
    def init_schema(self) -> dict:
        """Create the constraints and indexes (``IF NOT EXISTS``: safe to re-run).

        Returns
        -------
        dict
            ``{"statements": n, "constraints": [...], "indexes": [...]}`` (names).
        """
        self._ensure_connected()
        with self._errors("neo4j init"):
            for statement in cy.SCHEMA_STATEMENTS:
                self._write(statement)
        names = [s.split()[2] for s in cy.SCHEMA_STATEMENTS]
        return {
            "uri": self.uri,
            "database": self.database,
            "statements": len(cy.SCHEMA_STATEMENTS),
            "constraints": [n for n, s in zip(names, cy.SCHEMA_STATEMENTS, strict=True) if "CONSTRAINT" in s],
            "indexes": [n for n, s in zip(names, cy.SCHEMA_STATEMENTS, strict=True) if " INDEX " in s],
        }

    # ------------------------------------------------------------ push
    def push(
        self,
        store: Store,
        batch_size: int = DEFAULT_BATCH_SIZE,
        progress: ProgressFn | None = None,
        restart: bool = False,
        ensure_schema: bool = True,
    ) -> dict:
        """Sync the store's tables into Neo4j; resumable, idempotent.

        Parameters
        ----------
        store : Store
            The embedded store to copy.
        batch_size : int
            Rows per ``UNWIND`` statement, each in its own managed transaction
            (``session.execute_write``: the driver retries transient errors).
        progress : callable, optional
            ``progress(table, rows_done, rows_total)`` once per table before its first
            batch and after each committed batch.
        restart : bool
            Ignore the recorded progress and send everything again.
        ensure_schema : bool
            Run :meth:`init_schema` first (``IF NOT EXISTS``, cheap): without the
            uniqueness constraints every MERGE scans all nodes of its label.

        Returns
        -------
        dict
            JSON summary: snapshot id, per-table rows / sent / skipped (already synced),
            batches, whether it resumed, whether the graph now matches the store
            (``in_sync``), seconds.

        Raises
        ------
        Neo4jUnavailableError
            The server went away; batches committed before stay recorded in
            ``<store>/neo4j_sync.json``, so re-running continues after them.

        Notes
        -----
        Every statement MERGEs on ids, so a batch sent twice (a crash between commit and
        recording) creates no duplicates. The cursor per table is a row offset in the
        table file, valid for one snapshot id and one target; a new snapshot starts over
        (MERGE keeps it correct, only slower). A completed push is repeated in full
        when the graph no longer shows the store's snapshot (wiped, restored, or written
        by someone else). The sync mark names the store's snapshot only when the graph's
        fingerprint equals the store's (:func:`store_fingerprint`); a graph holding more
        (e.g. transfers of another store) is reported with ``in_sync: false``.
        """
        if batch_size < 1:
            raise UsageError("batch_size must be at least 1")
        started = time.perf_counter()
        self._ensure_connected()
        schema = self.init_schema() if ensure_schema else None
        snapshot = store.snapshot_id
        state_path = store.root / SYNC_FILE
        state = None if restart else _read_state(state_path)
        resumed = bool(state and state.get("snapshot_id") == snapshot and state.get("target") == self.target)
        if resumed and state.get("complete") and self.snapshot_id() != snapshot:
            resumed = False  # that complete push is gone from the graph: send everything again
        if not resumed:
            state = {"format": SYNC_FORMAT, "snapshot_id": snapshot, "target": self.target,
                     "tables": {}, "complete": False}
            _write_state(state_path, state)
        rows_total = store.status()["tables"]
        summary_tables: dict[str, dict] = {}
        batches = 0
        try:
            with self._driver.session(database=self.database) as session:
                for table in PUSH_TABLES:
                    total = rows_total[table]["rows"]
                    done = min(int(state["tables"].get(table, {}).get("rows_done", 0)), total)
                    skipped = done
                    statement = cy.PUSH_STATEMENTS[table]
                    lf = store.scan(table)
                    if progress:
                        progress(table, done, total)
                    while done < total:
                        rows = lf.slice(done, batch_size).collect().to_dicts()
                        with self._errors(f"neo4j push: {table} rows {done + 1}-{done + len(rows)}"):
                            session.execute_write(_write_batch, statement, rows)
                        done += len(rows)
                        batches += 1
                        state["tables"][table] = {"rows_done": done, "rows": total}
                        _write_state(state_path, state)
                        if progress:
                            progress(table, done, total)
                    state["tables"][table] = {"rows_done": done, "rows": total}
                    summary_tables[table] = {"rows": total, "sent": total - skipped, "skipped": skipped}
        except Neo4jStoreError as e:
            raise type(e)(f"{e}; committed batches are recorded in {state_path}: "
                          "run the push again to resume") from e.__cause__
        expected = store_fingerprint(store)
        with self._errors("neo4j push: sync mark"):
            found = self._fingerprint()
            in_sync = found == expected
            self._write(cy.MARK_SYNCED, snapshot_id=snapshot if in_sync else None, **found)
        state["complete"] = True
        _write_state(state_path, state)
        return {
            "snapshot_id": snapshot,
            "target": self.target,
            "resumed": resumed,
            "batch_size": batch_size,
            "batches": batches,
            "tables": summary_tables,
            "not_pushed": [t for t in TABLES if t not in PUSH_TABLES],
            "in_sync": in_sync,
            "graph": found,
            "store": expected,
            "schema": schema,
            "state_file": str(state_path),
            "seconds": round(time.perf_counter() - started, 3),
        }

    # ------------------------------------------------------------ GraphSource
    def _fingerprint(self) -> dict:
        transfers = self._read(cy.COUNT_TRANSFERS)[0]["n"]
        accounts = self._read(cy.COUNT_ACCOUNTS)[0]["n"]
        last = self._read(cy.LAST_TX_ID)
        return {"transfers": int(transfers), "accounts": int(accounts),
                "last_tx_id": last[0]["tx_id"] if last else None}

    def snapshot_id(self) -> str:
        """The pushed store's snapshot id while the graph is unchanged since that push.

        Otherwise (imported by other means, or changed since) ``neo4j:`` plus a hash of
        the transfer count, account count and largest tx_id.
        """
        self._ensure_connected()
        with self._errors("neo4j snapshot id"):
            fp = self._fingerprint()
            mark = self._read(cy.READ_SYNC_MARK)
        if mark:
            m = mark[0]
            recorded = {"transfers": m["transfers"], "accounts": m["accounts"],
                        "last_tx_id": m["last_tx_id"]}
            if m["snapshot_id"] and recorded == fp:
                return str(m["snapshot_id"])
        digest = hashlib.sha256(json.dumps(fp, sort_keys=True).encode()).hexdigest()[:32]
        return f"neo4j:{digest}"

    def status(self, store: Store | None = None) -> dict:
        """Counts in the graph, its snapshot id and, given a store, whether they match."""
        snapshot = self.snapshot_id()
        with self._errors("neo4j status"):
            fp = self._fingerprint()
            alerts = self._read(cy.COUNT_ALERTS)[0]["n"]
        out = {"uri": self.uri, "database": self.database, "snapshot_id": snapshot,
               **fp, "alerts": int(alerts)}
        if store is not None:
            out["store_snapshot_id"] = store.snapshot_id
            out["in_sync"] = snapshot == store.snapshot_id
        return out

    def _pages(self, first: str, after: str, key: str, batch_size: int) -> Iterator[list]:
        """Keyset pages: ``first`` then ``after`` with the last key seen (never SKIP)."""
        if batch_size < 1:
            raise UsageError("batch_size must be at least 1")
        self._ensure_connected()
        last = None
        while True:
            with self._errors("neo4j read"):
                if last is None:
                    records = self._read(first, limit=batch_size)
                else:
                    records = self._read(after, limit=batch_size, after=last)
            if not records:
                return
            yield records
            if len(records) < batch_size:
                return
            last = records[-1][key]

    def account_ids(self, batch_size: int | None = None) -> Iterator[pl.Series]:
        """Every Account's id, sorted, in keyset pages."""
        for records in self._pages(cy.READ_ACCOUNTS_FIRST, cy.READ_ACCOUNTS_AFTER,
                                   "account_id", batch_size or self.page_size):
            yield pl.Series("account_id", [r["account_id"] for r in records], pl.Utf8)

    def transfers(self, batch_size: int | None = None) -> Iterator[pl.DataFrame]:
        """TRANSFER relationships ordered by tx_id, in keyset pages (never SKIP)."""
        for records in self._pages(cy.READ_TRANSFERS_FIRST, cy.READ_TRANSFERS_AFTER,
                                   "tx_id", batch_size or self.page_size):
            yield pl.DataFrame(
                {k: [r[k] for r in records] for k in TRANSFER_SCHEMA}, schema=TRANSFER_SCHEMA
            )

    def write_alerts(self, alerts: pl.DataFrame, batch_size: int = DEFAULT_BATCH_SIZE) -> int:
        """MERGE ``(:Alert {alert_id})-[:ON]->(:Loan)`` for each alert row.

        Scalar columns become properties; ``paths`` become ``tx_ids`` (every hop's
        tx_id, path after path) and ``path_lengths`` (hops per path), so the paths can
        be matched again (see :func:`cypher_for_trace`). Returns the rows written.
        """
        rows = alert_rows(alerts)
        if not rows:
            return 0
        self._ensure_connected()
        with self._driver.session(database=self.database) as session:
            for off in range(0, len(rows), batch_size):
                with self._errors(f"neo4j write alerts: rows {off + 1}-{min(off + batch_size, len(rows))}"):
                    session.execute_write(_write_batch, cy.WRITE_ALERTS, rows[off : off + batch_size])
        return len(rows)

    def alerts(self) -> pl.DataFrame:
        """The Alert nodes, as :data:`ALERT_SUMMARY_SCHEMA`."""
        self._ensure_connected()
        with self._errors("neo4j read alerts"):
            records = self._read(cy.READ_ALERTS)
        rows = [{k: r[k] for k in ALERT_SUMMARY_SCHEMA} for r in records]
        return pl.DataFrame(rows, schema=ALERT_SUMMARY_SCHEMA).sort("alert_id")


def alerts_of_days(store: Store, days: list[date]) -> pl.DataFrame:
    """The alerts of the given as-of partitions (what ``score`` just wrote), for write-back."""
    frames = [read_alerts(store, day=d) for d in days]
    frames = [f for f in frames if f.height]
    if not frames:
        return pl.DataFrame(schema=ALERT_SCHEMA)
    return pl.concat(frames, how="vertical_relaxed").sort("as_of", "alert_id")


def alert_rows(alerts: pl.DataFrame) -> list[dict]:
    """Alert frame (:data:`flowgraph.rules.alerts.ALERT_SCHEMA`) → ``$rows`` for WRITE_ALERTS.

    Each row is ``{"alert_id", "loan_id", "props": {...}}`` with only Neo4j property
    types (no nested lists or maps): ``paths`` is flattened to ``tx_ids`` and
    ``path_lengths``. Null values stay in ``props``: ``SET a += props`` then removes a
    property that an earlier run of the same alert had set (no stale values).
    """
    out = []
    for r in alerts.iter_rows(named=True):
        tx_ids, lengths = _alert_tx_ids(r.get("paths"))
        props = {k: v for k, v in r.items() if k != "paths"}
        props["tx_ids"] = tx_ids
        props["path_lengths"] = lengths
        out.append({"alert_id": r["alert_id"], "loan_id": r["loan_id"], "props": props})
    return out


def _read_state(path: Path) -> dict | None:
    try:
        state = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return state if state.get("format") == SYNC_FORMAT else None


def _write_state(path: Path, state: dict) -> None:
    atomic_write_bytes(path, (json.dumps(state, indent=2, sort_keys=True) + "\n").encode())


# ------------------------------------------------------------------ trace → Cypher
def cypher_string(value: str) -> str:
    """A Cypher string literal for ``value`` (single quotes, backslash escapes).

    >>> cypher_string("it's")
    "'it\\\\'s'"
    """
    escaped = (
        value.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n")
        .replace("\r", "\\r").replace("\t", "\\t")
    )
    return f"'{escaped}'"


def _path_matches(record: dict) -> list[str]:
    """``MATCH p = … RETURN p`` per path of a record (the disbursement edge when none)."""
    paths = record.get("paths") or []
    loan, disb = record.get("loan_id"), record.get("disbursement_id")
    parts = []
    for path in paths:
        hops = path["hops"] if isinstance(path, dict) else path
        pattern = "(:Account)" + "".join(
            f"-[:TRANSFER {{tx_id: {cypher_string(str(h['tx_id']))}}}]->(:Account)" for h in hops
        )
        parts.append(f"MATCH p = {pattern}\nRETURN p")
    if not parts:
        where = f" {{loan_id: {cypher_string(str(loan))}}}" if loan is not None else ""
        rel = f" {{disbursement_id: {cypher_string(str(disb))}}}" if disb is not None else ""
        parts.append(f"MATCH p = (:Loan{where})-[:DISBURSED_TO{rel}]->(:Account)\nRETURN p")
    return parts


def _comment(record: dict) -> str:
    text = (
        f"// flowgraph trace: loan {cypher_string(str(record.get('loan_id')))}, disbursement "
        f"{cypher_string(str(record.get('disbursement_id')))}, {len(record.get('paths') or [])} path(s)"
    )
    return text.replace("\n", " ").replace("\r", " ")  # a comment must stay on its line


def cypher_for_records(records: list[dict]) -> str:
    """One Cypher statement showing every flow-back path of several trace records.

    Parameters
    ----------
    records : list of dict
        Records of :func:`flowgraph.investigate.trace.trace_loans` (``paths`` → ``hops`` with
        ``tx_id``) or alert rows (same ``paths`` shape), e.g. a loan's disbursements.

    Returns
    -------
    str
        Paste into Neo4j Browser or Bloom: a comment line per record, then one
        ``MATCH p = …`` per path, each hop a ``TRANSFER`` relationship matched by its
        tx_id (served by the ``transfer_tx_id`` constraint's index), joined with
        ``UNION ALL``. A record without paths contributes its disbursement edge.
        One statement (no ``;``), so Bloom and Browser show everything in one result.

    Examples
    --------
    >>> print(cypher_for_records([{"loan_id": "L1", "disbursement_id": "D1",
    ...     "paths": [{"hops": [{"tx_id": "t1"}, {"tx_id": "t2"}]}]}]))
    // flowgraph trace: loan 'L1', disbursement 'D1', 1 path(s)
    MATCH p = (:Account)-[:TRANSFER {tx_id: 't1'}]->(:Account)-[:TRANSFER {tx_id: 't2'}]->(:Account)
    RETURN p
    """
    if not records:
        raise InvalidValue("no trace record to show")
    head = "\n".join(_comment(r) for r in records)
    parts = [m for r in records for m in _path_matches(r)]
    return head + "\n" + "\nUNION ALL\n".join(parts)


def cypher_for_trace(record: dict) -> str:
    """:func:`cypher_for_records` for one record (one disbursement or one alert)."""
    return cypher_for_records([record])


# ------------------------------------------------------------------ bulk import files
@dataclass(frozen=True)
class _ImportFile:
    name: str
    kind: str  # "nodes" or "relationships"
    label: str  # node label or relationship type
    frame: Callable[[Store], pl.LazyFrame]


_NEO4J_TYPE = {"str": "", "money": ":long", "ts": ":long", "float": ":double"}


def _props(table: str, skip: tuple[str, ...] = ()) -> list[pl.Expr]:
    """Property columns of a table renamed to ``name:type`` headers."""
    return [
        pl.col(c.name).alias(c.name + _NEO4J_TYPE[c.kind])
        for c in TABLES[table].columns if c.name not in skip
    ]


def _missing(store: Store, known: pl.LazyFrame, refs: list[pl.LazyFrame]) -> pl.LazyFrame:
    """Ids referenced by ``refs`` (column ``id``) but absent from ``known`` (column ``id``)."""
    return (
        pl.concat(refs).drop_nulls().unique()
        .join(known, on="id", how="anti").sort("id")
    )


def _party_refs(s: Store) -> list[pl.LazyFrame]:
    return [
        s.scan("accounts").select(pl.col("owner_id").alias("id")),
        s.scan("loans").select(pl.col("borrower_id").alias("id")),
        s.scan("relations").select(pl.col("party_a").alias("id")),
        s.scan("relations").select(pl.col("party_b").alias("id")),
    ]


def _loan_refs(s: Store) -> list[pl.LazyFrame]:
    return [s.scan(t).select(pl.col("loan_id").alias("id")) for t in ("disbursements", "repayments")]


def _account_refs(s: Store) -> list[pl.LazyFrame]:
    tx = s.scan("transactions")
    return [
        tx.select(pl.col("src_account").alias("id")), tx.select(pl.col("dst_account").alias("id")),
        s.scan("disbursements").select(pl.col("account_id").alias("id")),
        s.scan("repayments").select(pl.col("account_id").alias("id")),
    ]


IMPORT_FILES: tuple[_ImportFile, ...] = (
    _ImportFile("parties.csv", "nodes", "Party", lambda s: s.scan("parties").select(
        pl.col("party_id").alias("party_id:ID(Party)"), *_props("parties", ("party_id",)))),
    _ImportFile("parties_referenced.csv", "nodes", "Party", lambda s: _missing(
        s, s.scan("parties").select(pl.col("party_id").alias("id")), _party_refs(s)
    ).select(pl.col("id").alias("party_id:ID(Party)"))),
    _ImportFile("accounts.csv", "nodes", "Account", lambda s: s.scan("accounts").select(
        pl.col("account_id").alias("account_id:ID(Account)"), *_props("accounts", ("account_id",)))),
    _ImportFile("accounts_referenced.csv", "nodes", "Account", lambda s: _missing(
        s, s.scan("accounts").select(pl.col("account_id").alias("id")), _account_refs(s)
    ).select(pl.col("id").alias("account_id:ID(Account)"))),
    _ImportFile("loans.csv", "nodes", "Loan", lambda s: s.scan("loans").select(
        pl.col("loan_id").alias("loan_id:ID(Loan)"), *_props("loans", ("loan_id",)))),
    _ImportFile("loans_referenced.csv", "nodes", "Loan", lambda s: _missing(
        s, s.scan("loans").select(pl.col("loan_id").alias("id")), _loan_refs(s)
    ).select(pl.col("id").alias("loan_id:ID(Loan)"))),
    _ImportFile("owns.csv", "relationships", "OWNS", lambda s: s.scan("accounts").select(
        pl.col("owner_id").alias(":START_ID(Party)"), pl.col("account_id").alias(":END_ID(Account)"),
        pl.lit("OWNS").alias(":TYPE"))),
    _ImportFile("applied.csv", "relationships", "APPLIED", lambda s: s.scan("loans").select(
        pl.col("borrower_id").alias(":START_ID(Party)"), pl.col("loan_id").alias(":END_ID(Loan)"),
        pl.lit("APPLIED").alias(":TYPE"))),
    _ImportFile("related.csv", "relationships", "RELATED", lambda s: s.scan("relations").select(
        pl.col("party_a").alias(":START_ID(Party)"), pl.col("party_b").alias(":END_ID(Party)"),
        pl.lit("RELATED").alias(":TYPE"), pl.col("relation"), pl.col("since").alias("since:long"))),
    _ImportFile("transfers.csv", "relationships", "TRANSFER", lambda s: s.scan("transactions").select(
        pl.col("src_account").alias(":START_ID(Account)"), pl.col("dst_account").alias(":END_ID(Account)"),
        pl.lit("TRANSFER").alias(":TYPE"),
        *_props("transactions", ("src_account", "dst_account")))),
    _ImportFile("disbursed_to.csv", "relationships", "DISBURSED_TO", lambda s: s.scan("disbursements").select(
        pl.col("loan_id").alias(":START_ID(Loan)"), pl.col("account_id").alias(":END_ID(Account)"),
        pl.lit("DISBURSED_TO").alias(":TYPE"), *_props("disbursements", ("loan_id", "account_id")))),
    _ImportFile("repaid.csv", "relationships", "REPAID", lambda s: s.scan("repayments").select(
        pl.col("account_id").alias(":START_ID(Account)"), pl.col("loan_id").alias(":END_ID(Loan)"),
        pl.lit("REPAID").alias(":TYPE"), *_props("repayments", ("loan_id", "account_id")))),
)


def import_command(directory: Path, files: dict[str, int], database: str = "neo4j") -> str:
    """The ``neo4j-admin database import full`` command for the files of a directory."""
    # an absolute path as given (a container path such as /import must not be resolved here)
    directory = Path(directory) if Path(directory).is_absolute() else Path(directory).resolve()
    # no --overwrite-destination: replacing a database that holds data is the user's call
    args = [f"neo4j-admin database import full {database}",
            "--multiline-fields=true", "--id-type=string"]
    for f in IMPORT_FILES:
        if f.name in files:
            flag = "--nodes" if f.kind == "nodes" else "--relationships"
            # node labels on the command line; relationship types in the :TYPE column
            label = f"{f.label}=" if f.kind == "nodes" else ""
            args.append(f"{flag}={label}{directory / f.name}")
    args.append(f"--nodes=FlowgraphSync={directory / 'flowgraph_sync.csv'}")
    return " \\\n  ".join(args)


def export_import(
    store: Store,
    directory: str | os.PathLike,
    database: str = "neo4j",
    progress: Callable[[str], None] | None = None,
    command_dir: str | os.PathLike | None = None,
) -> dict:
    """Write ``neo4j-admin database import full`` CSV files for the whole store.

    Parameters
    ----------
    store : Store
        The store to export.
    directory : path
        Output folder (created or replaced; written aside, then renamed into place).
    database : str
        Database name used in the printed command.
    progress : callable, optional
        ``progress(message)`` per file.
    command_dir : path, optional
        The folder as ``neo4j-admin`` will see it (e.g. ``/import`` inside a container);
        default: ``directory`` itself.

    Returns
    -------
    dict
        ``{"directory", "files": {name: rows}, "command"}``; ``command`` is also in
        ``README.txt``.

    Notes
    -----
    Each file carries its own header (``party_id:ID(Party)``, ``:START_ID(Account)``,
    ``:END_ID(Account)``, ``:TYPE``, ``ts:long``, ``amount:long``, ``rate:double``);
    id spaces Party, Account and Loan keep equal ids of different kinds apart. Fields
    are quoted when needed (quotes doubled; commas and newlines kept, hence
    ``--multiline-fields=true``); a null is an empty unquoted field (no property), an
    empty string is ``""``. Files are written by polars' streaming ``sink_csv``.
    Ids referenced but absent from their table (an account only seen in transfers)
    go to ``*_referenced.csv`` so no relationship is dropped, as ``neo4j push`` does
    with MERGE. Run ``flowgraph neo4j init`` after the import (constraints after bulk
    loads). The FlowgraphSync node makes the imported graph report the store's
    snapshot id.
    """
    final = Path(directory)
    if final.exists() and (not final.is_dir() or (
            any(final.iterdir()) and not (final / "flowgraph_sync.csv").exists())):
        # the folder is replaced as a whole: never do that to something that is not an export
        raise FileExistsError(
            f"{final} exists and is not an earlier flowgraph export (no flowgraph_sync.csv); "
            "give a new or empty folder"
        )
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.tmp-"))
    files: dict[str, int] = {}
    try:
        for f in IMPORT_FILES:
            if progress:
                progress(f"writing {f.name}")
            frame = f.frame(store)
            frame.sink_csv(tmp / f.name, quote_style="necessary", include_header=True)
            # counted from the (Parquet) source, not by re-reading a CSV of 100M+ lines
            files[f.name] = frame.select(pl.len()).collect().item()
        fp = store_fingerprint(store)
        sync = pl.DataFrame({
            "key:ID(FlowgraphSync)": ["store"], "snapshot_id": [store.snapshot_id],
            "transfers:long": [fp["transfers"]], "accounts:long": [fp["accounts"]],
            "last_tx_id": [fp["last_tx_id"]],
        }, schema={"key:ID(FlowgraphSync)": pl.Utf8, "snapshot_id": pl.Utf8,
                   "transfers:long": pl.Int64, "accounts:long": pl.Int64, "last_tx_id": pl.Utf8})
        sync.write_csv(tmp / "flowgraph_sync.csv", quote_style="necessary")
        command = import_command(Path(command_dir) if command_dir else final, files, database)
        (tmp / "README.txt").write_text(
            "Bulk load of a flowgraph store into a new Neo4j 5 database (offline, "
            "neo4j-admin 5.x syntax).\n"
            f"Store snapshot: {store.snapshot_id}\n\n"
            f"Stop the database {database!r} (neo4j-admin writes its files), then run:\n\n"
            f"{command}\n\n"
            f"If {database!r} already exists (the default database of a new server does),\n"
            "add --overwrite-destination=true: it DELETES that database's content.\n"
            "The neo4j-admin process must be able to read this folder (it is owner-only:\n"
            "it holds personal data); with Docker, mount it and run the command inside.\n"
            "Then start Neo4j (`CREATE DATABASE` it if it is not the default one) and run\n"
            "`flowgraph neo4j init` to add the constraints and indexes.\n\n"
            "Files (rows, header excluded):\n"
            + "".join(f"  {n}\t{r}\n" for n, r in files.items())
            + "  flowgraph_sync.csv\t1\n"
        )
        replace_directory(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {"directory": str(final.resolve()), "snapshot_id": store.snapshot_id,
            "files": files, "command": command}


def save_source_index(source: GraphSource, directory: Path, page_size: int = DEFAULT_PAGE_SIZE) -> dict:
    """Build the index from ``source`` and persist it in ``directory``; return its meta.

    With ``directory`` = ``store.index_dir`` and a Neo4j graph that holds the pushed
    store unchanged, the meta's snapshot id equals the store's, so ``score`` and
    ``trace`` use this index as is.
    """
    from flowgraph.engine.csr import save_index

    index, meta = build_index_from_source(source, page_size)
    save_index(index, Path(directory), meta)
    return meta


def index_store_from_source(
    store: Store, source: GraphSource, page_size: int = DEFAULT_PAGE_SIZE
) -> dict:
    """Build the index from ``source`` (e.g. Neo4j) and install it as the store's index.

    ``score``, ``trace`` and the other engine commands then use it as is (same snapshot
    id), instead of rebuilding from the store's Parquet tables.

    Raises
    ------
    Neo4jStoreError
        The source holds a different graph than the store (another snapshot id), before
        or after reading it: the index's rows point into the store's transactions table,
        so an index of another graph would make scores and traces name wrong hops.
        Nothing is written then.
    """
    from flowgraph.engine.csr import save_index

    want = store.snapshot_id
    have = source.snapshot_id()
    if have != want:
        raise Neo4jStoreError(
            f"the graph holds snapshot {have}, the store {want}: run `flowgraph neo4j push` "
            "(or import the store's export) first; the index was not written"
        )
    index, meta = build_index_from_source(source, page_size)
    if meta["snapshot_id"] != want:
        raise Neo4jStoreError("the graph changed while it was read; the index was not written")
    with store.lock():
        save_index(index, store.index_dir, meta)
    return dict(meta, rebuilt=True)


__all__ = [
    "ALERT_SUMMARY_SCHEMA", "DEFAULT_BATCH_SIZE", "DEFAULT_PAGE_SIZE", "EmbeddedSource",
    "GraphSource", "IMPORT_FILES", "Neo4jConfigError", "Neo4jSettings", "Neo4jStore",
    "Neo4jStoreError", "Neo4jUnavailableError", "PUSH_TABLES", "SYNC_FILE", "TRANSFER_SCHEMA",
    "alert_rows", "alerts_of_days", "build_index_from_source", "cypher_for_records",
    "cypher_for_trace", "cypher_string", "export_import", "import_command", "redact_uri",
    "save_source_index", "store_fingerprint",
]

