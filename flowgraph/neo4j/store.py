"""Neo4j 5 as a second home of the store's graph: :class:`Neo4jStore`.

:class:`Neo4jStore` is a :class:`flowgraph.neo4j.source.GraphSource` over a Neo4j 5
database reached with the official driver. It creates the constraints, pushes a store
into Neo4j (``UNWIND $rows … MERGE`` batches in managed transactions, resumable through
``<store>/neo4j_sync.json``), reads the graph back in keyset pages, reports its status,
and keeps the ``Alert`` nodes equal to the store's latest alerts. The bulk path is
:mod:`flowgraph.neo4j.export`, the trace query :mod:`flowgraph.neo4j.trace_cypher`.

All Cypher text lives in :mod:`flowgraph.neo4j.cypher`. This module never imports typer
or rich; failures surface as :class:`Neo4jStoreError` (the CLI's exit code 1) or
:class:`Neo4jConfigError` (exit code 2).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl

from flowgraph.core.errors import (
    Neo4jConfigError,
    Neo4jStoreError,
    Neo4jUnavailableError,
    UsageError,
)
from flowgraph.core.files import atomic_write_bytes
from flowgraph.core.schema import TABLES
from flowgraph.neo4j import cypher as cy
from flowgraph.neo4j.settings import Neo4jSettings, redact_uri
from flowgraph.neo4j.source import (
    ALERT_SUMMARY_SCHEMA,
    DEFAULT_PAGE_SIZE,
    TRANSFER_SCHEMA,
    alert_tx_ids,
    store_fingerprint,
)
from flowgraph.rules.alerts import ALERT_SCHEMA, read_alerts
from flowgraph.store.embedded import Store

SYNC_FILE = "neo4j_sync.json"
SYNC_FORMAT = 1
DEFAULT_BATCH_SIZE = 5_000
#: the tables ``neo4j push`` sends, in order (classifications are not in the graph model)
PUSH_TABLES: tuple[str, ...] = tuple(cy.PUSH_STATEMENTS)

ProgressFn = Callable[[str, int, int], None]


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
                # flowgraph's statements are fixed (and linted): the server's notifications
                # (e.g. "label Alert does not exist" on a fresh graph) only reach the user as
                # stray log warnings on stderr, so the server is asked not to send them
                driver = GraphDatabase.driver(settings.uri, auth=auth, notifications_min_severity="OFF")
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
        be matched again (see :func:`flowgraph.neo4j.trace_cypher.cypher_for_trace`). Returns the rows written.
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

    def sync_alerts(self, store: Store, days: list[date], batch_size: int = DEFAULT_BATCH_SIZE) -> dict:
        """Make the Alert nodes touched by a scoring run equal to the store's alerts.

        ``score`` has just replaced the as-of partitions of ``days``. Every alert_id in
        those partitions, and every Alert node whose ``as_of`` is one of those days, gets
        the store's latest version of that alert (what ``flowgraph alerts`` shows); an
        Alert node whose alert no partition holds any more (it vanished on the re-score)
        is deleted with its ``ON`` relationship.

        Returns
        -------
        dict
            ``{"written": n, "deleted": m}``.
        """
        self._ensure_connected()
        latest = read_alerts(store)  # latest as_of per alert_id, over every partition
        scored = set(alerts_of_days(store, days)["alert_id"].to_list())
        day_keys = sorted({d.isoformat() for d in days})
        with self._errors("neo4j read alerts"):
            seen = {r["alert_id"] for r in self._read(cy.READ_ALERT_IDS_OF_DAYS, days=day_keys)}
        wanted = scored | seen
        rows = latest.filter(pl.col("alert_id").is_in(sorted(wanted)))
        written = self.write_alerts(rows, batch_size)
        gone = sorted(wanted - set(rows["alert_id"].to_list()))
        with self._driver.session(database=self.database) as session:
            for off in range(0, len(gone), batch_size):
                chunk = [{"alert_id": a} for a in gone[off : off + batch_size]]
                with self._errors(f"neo4j delete alerts: rows {off + 1}-{off + len(chunk)}"):
                    session.execute_write(_write_batch, cy.DELETE_ALERTS, chunk)
        return {"written": written, "deleted": len(gone)}

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
        tx_ids, lengths = alert_tx_ids(r.get("paths"))
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


__all__ = [
    "DEFAULT_BATCH_SIZE", "Neo4jStore", "PUSH_TABLES", "SYNC_FILE", "alert_rows", "alerts_of_days",
]
