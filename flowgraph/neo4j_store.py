"""Neo4j 5 as a second home of the store's graph, behind one small store interface.

:class:`GraphSource` is what the index builder and the alert writer need from a store:
a snapshot id, the account universe, the transfers in ``tx_id`` order (columnar
batches), and a place to write alerts. Two implementations:

- :class:`EmbeddedSource` over :class:`flowgraph.store.Store` (the Parquet store);
- :class:`Neo4jStore`, a Neo4j 5 database reached with the official driver.

:class:`Neo4jStore` also pushes a store into Neo4j (``UNWIND $rows … MERGE`` batches in
managed transactions, resumable through ``<store>/neo4j_sync.json``), creates the
constraints, and :func:`export_import` writes ``neo4j-admin database import full`` CSV
files for the first bulk load. :func:`build_index_from_source` builds the CSR index from
any source, equal to :func:`flowgraph.graph.build_store_index` for the same data.

All Cypher text lives in :mod:`flowgraph.neo4j_cypher`. This module never imports typer
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
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import polars as pl

from . import neo4j_cypher as cy
from .batch import ALERT_SCHEMA, partition_dir, read_alerts, write_partition
from .graph import INDEX_FORMAT, _account_universe
from .index import TemporalIndex, build_index
from .schema import TABLES
from .store import Store, atomic_write_bytes, replace_directory

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


class Neo4jStoreError(Exception):
    """Neo4j could not do what was asked (server down, auth, a failed statement)."""


class Neo4jUnavailableError(Neo4jStoreError):
    """The server cannot be reached (or stopped answering); nothing more was synced."""


class Neo4jConfigError(Neo4jStoreError):
    """Connection settings are missing or malformed (a usage error)."""


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
        """The account universe of :mod:`flowgraph.graph`, sorted, in batches."""
        ids = _account_universe(self.store)
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
        The index, identical to :func:`flowgraph.graph.build_store_index` on the same
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
@dataclass(frozen=True)
class Neo4jSettings:
    """Connection settings (the CLI fills them from ``FLOWGRAPH_NEO4J_*``)."""

    uri: str
    user: str | None = None
    password: str | None = None
    database: str | None = None

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Neo4jSettings:
        """Settings from ``FLOWGRAPH_NEO4J_URI/_USER/_PASSWORD/_DATABASE``.

        Raises
        ------
        Neo4jConfigError
            When ``FLOWGRAPH_NEO4J_URI`` is unset.
        """
        env = os.environ if env is None else env
        uri = env.get("FLOWGRAPH_NEO4J_URI")
        if not uri:
            raise Neo4jConfigError("FLOWGRAPH_NEO4J_URI is not set (e.g. bolt://localhost:7687)")
        return cls(uri, env.get("FLOWGRAPH_NEO4J_USER"), env.get("FLOWGRAPH_NEO4J_PASSWORD"),
                   env.get("FLOWGRAPH_NEO4J_DATABASE") or None)


def _connection_errors() -> tuple[type[BaseException], ...]:
    from neo4j import exceptions as ex

    return (ex.ServiceUnavailable, ex.SessionExpired, ex.ConnectionAcquisitionTimeoutError)


def _driver_errors() -> tuple[type[BaseException], ...]:
    from neo4j import exceptions as ex

    return (ex.Neo4jError, ex.DriverError)


@contextlib.contextmanager
def _neo4j_errors(what: str) -> Iterator[None]:
    """Turn driver exceptions into this module's (no credentials in the message)."""
    try:
        yield
    except Neo4jStoreError:
        raise
    except _connection_errors() as e:
        raise Neo4jUnavailableError(f"{what}: Neo4j is unavailable ({type(e).__name__}: {e})") from e
    except _driver_errors() as e:
        raise Neo4jStoreError(f"{what}: {type(e).__name__}: {e}") from e


def _write_batch(tx, statement: str, rows: list[dict]) -> None:
    """Managed-transaction body: one UNWIND statement over one batch (retried by the driver)."""
    tx.run(statement, rows=rows).consume()


class Neo4jStore:
    """A Neo4j 5 database holding flowgraph's graph; a :class:`GraphSource`.

    Parameters
    ----------
    uri, user, password, database : str
        Connection settings (``database`` None = the server's default database).
    driver : neo4j.Driver, optional
        An existing driver (one per process; tests pass a fake). When given, ``uri``
        and the credentials are not used and :meth:`close` leaves the driver open.
    page_size : int
        Rows per keyset page when reading.

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
        if driver is None:
            if not uri:
                raise Neo4jConfigError("no Neo4j URI given (set FLOWGRAPH_NEO4J_URI)")
            from neo4j import GraphDatabase

            auth = (user, password or "") if user else None
            try:
                driver = GraphDatabase.driver(uri, auth=auth)
            except (ValueError, *_driver_errors()) as e:
                raise Neo4jConfigError(f"bad Neo4j URI {uri!r}: {e}") from e
        self.uri = uri or getattr(driver, "uri", "neo4j")
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

    def _read(self, statement: str, **params) -> list:
        from neo4j import RoutingControl

        records, _, _ = self._driver.execute_query(
            statement, parameters_=params, routing_=RoutingControl.READ, database_=self.database
        )
        return list(records)

    def _write_rows(self, statement: str, rows: list[dict]) -> None:
        with self._driver.session(database=self.database) as session:
            session.execute_write(_write_batch, statement, rows)

    def verify(self) -> dict:
        """Check the server answers; return ``{"uri", "database"}``.

        Raises
        ------
        Neo4jUnavailableError
            The server cannot be reached.
        """
        with _neo4j_errors("connect"):
            self._read(cy.PING)
        return {"uri": self.uri, "database": self.database}

    # ------------------------------------------------------------ schema
    def init_schema(self) -> dict:
        """Create the constraints and indexes (``IF NOT EXISTS``: safe to re-run).

        Returns
        -------
        dict
            ``{"statements": n, "constraints": [...], "indexes": [...]}`` (names).
        """
        from neo4j import RoutingControl

        with _neo4j_errors("neo4j init"):
            for statement in cy.SCHEMA_STATEMENTS:
                self._driver.execute_query(
                    statement, routing_=RoutingControl.WRITE, database_=self.database
                )
        names = [s.split()[2] for s in cy.SCHEMA_STATEMENTS]
        return {
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
            ``progress(table, rows_done, rows_total)`` after each committed batch.
        restart : bool
            Ignore the recorded progress and send everything again.

        Returns
        -------
        dict
            JSON summary: snapshot id, per-table rows sent / skipped (already synced),
            batches, seconds, whether it resumed.

        Raises
        ------
        Neo4jUnavailableError
            The server went away; batches committed before stay recorded in
            ``<store>/neo4j_sync.json``, so re-running continues after them.

        Notes
        -----
        Every statement MERGEs on ids, so a batch sent twice (a crash between commit and
        recording) creates no duplicates. The cursor per table is a row offset in the
        table file, valid for one snapshot id; a new snapshot starts over (MERGE keeps
        it correct, only slower).
        """
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        started = time.perf_counter()
        snapshot = store.snapshot_id
        target = self._target()
        state_path = store.root / SYNC_FILE
        state = None if restart else _read_state(state_path)
        resumed = bool(state and state.get("snapshot_id") == snapshot and state.get("target") == target)
        if not resumed:
            state = {"format": SYNC_FORMAT, "snapshot_id": snapshot, "target": target,
                     "tables": {}, "complete": False}
        rows_total = store.status()["tables"]
        summary_tables: dict[str, dict] = {}
        batches = 0
        for table in PUSH_TABLES:
            total = rows_total[table]["rows"]
            done = int(state["tables"].get(table, {}).get("rows_done", 0))
            skipped = min(done, total)
            statement = cy.PUSH_STATEMENTS[table]
            lf = store.scan(table)
            with _neo4j_errors(f"neo4j push ({table})"):
                while done < total:
                    rows = lf.slice(done, batch_size).collect().to_dicts()
                    self._write_rows(statement, rows)
                    done += len(rows)
                    batches += 1
                    state["tables"][table] = {"rows_done": done, "rows": total}
                    _write_state(state_path, state)
                    if progress:
                        progress(table, done, total)
            state["tables"][table] = {"rows_done": done, "rows": total}
            summary_tables[table] = {"rows": total, "sent": total - skipped, "skipped": skipped}
        with _neo4j_errors("neo4j push (mark)"):
            mark = self._fingerprint()
            self._driver.execute_query(
                cy.MARK_SYNCED,
                parameters_={"snapshot_id": snapshot, **mark},
                database_=self.database,
            )
        state["complete"] = True
        _write_state(state_path, state)
        return {
            "snapshot_id": snapshot,
            "target": target,
            "resumed": resumed,
            "batch_size": batch_size,
            "batches": batches,
            "tables": summary_tables,
            "not_pushed": [t for t in TABLES if t not in PUSH_TABLES],
            "state_file": str(state_path),
            "seconds": round(time.perf_counter() - started, 3),
        }

    def _target(self) -> str:
        return f"{self.uri}/{self.database or '<default>'}"

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
        with _neo4j_errors("neo4j snapshot id"):
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

    def _pages(self, first: str, after: str, key: str, batch_size: int) -> Iterator[list]:
        last = None
        while True:
            with _neo4j_errors("neo4j read"):
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
        with _neo4j_errors("neo4j write alerts"):
            for off in range(0, len(rows), batch_size):
                self._write_rows(cy.WRITE_ALERTS, rows[off : off + batch_size])
        return len(rows)

    def alerts(self) -> pl.DataFrame:
        """The Alert nodes, as :data:`ALERT_SUMMARY_SCHEMA`."""
        with _neo4j_errors("neo4j read alerts"):
            records = self._read(cy.READ_ALERTS)
        rows = [{k: r[k] for k in ALERT_SUMMARY_SCHEMA} for r in records]
        return pl.DataFrame(rows, schema=ALERT_SUMMARY_SCHEMA).sort("alert_id")


def alert_rows(alerts: pl.DataFrame) -> list[dict]:
    """Alert frame (:data:`flowgraph.batch.ALERT_SCHEMA`) → ``$rows`` for WRITE_ALERTS.

    Each row is ``{"alert_id", "loan_id", "props": {...}}`` with only Neo4j property
    types (no nested lists or maps): ``paths`` is flattened to ``tx_ids`` and
    ``path_lengths``; null values are left out.
    """
    out = []
    for r in alerts.iter_rows(named=True):
        tx_ids, lengths = _alert_tx_ids(r.get("paths"))
        props = {k: v for k, v in r.items() if k != "paths" and v is not None}
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


def cypher_for_trace(record: dict) -> str:
    """A Cypher query showing exactly a trace record's flow-back paths.

    Parameters
    ----------
    record : dict
        One record of :func:`flowgraph.trace.trace_loans` (``paths`` → ``hops`` with
        ``tx_id``) or an alert row (same ``paths`` shape).

    Returns
    -------
    str
        Paste into Neo4j Browser or Bloom: one ``MATCH p = …`` per path, each hop a
        ``TRANSFER`` relationship matched by its tx_id (served by the ``transfer_tx_id``
        constraint's index), joined with ``UNION ALL``. A record without paths gives
        the disbursement edge instead.

    Examples
    --------
    >>> print(cypher_for_trace({"loan_id": "L1", "disbursement_id": "D1",
    ...     "paths": [{"hops": [{"tx_id": "t1"}, {"tx_id": "t2"}]}]}))
    // flowgraph trace: loan 'L1', disbursement 'D1', 1 path(s)
    MATCH p = (:Account)-[:TRANSFER {tx_id: 't1'}]->(:Account)-[:TRANSFER {tx_id: 't2'}]->(:Account)
    RETURN p
    """
    paths = record.get("paths") or []
    loan, disb = record.get("loan_id"), record.get("disbursement_id")
    head = (
        f"// flowgraph trace: loan {cypher_string(str(loan))}, disbursement "
        f"{cypher_string(str(disb))}, {len(paths)} path(s)"
    ).replace("\n", " ")
    parts = []
    for path in paths:
        hops = path["hops"] if isinstance(path, dict) else path
        pattern = "(:Account)" + "".join(
            f"-[:TRANSFER {{tx_id: {cypher_string(str(h['tx_id']))}}}]->(:Account)" for h in hops
        )
        parts.append(f"MATCH p = {pattern}\nRETURN p")
    if not parts:
        where = [f"loan_id: {cypher_string(str(loan))}"] if loan is not None else []
        rel = f" {{disbursement_id: {cypher_string(str(disb))}}}" if disb is not None else ""
        parts.append(f"MATCH p = (:Loan {{{', '.join(where)}}})-[:DISBURSED_TO{rel}]->(:Account)\nRETURN p")
    return head + "\n" + "\nUNION ALL\n".join(parts)


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
    directory = Path(directory).resolve()
    args = [f"neo4j-admin database import full {database}", "--overwrite-destination=true",
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
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.tmp-"))
    files: dict[str, int] = {}
    try:
        for f in IMPORT_FILES:
            if progress:
                progress(f"writing {f.name}")
            path = tmp / f.name
            f.frame(store).sink_csv(path, quote_style="necessary", include_header=True)
            files[f.name] = pl.scan_csv(path, infer_schema=False).select(pl.len()).collect().item()
        universe = _account_universe(store)
        tx = store.scan("transactions").select("tx_id").sort("tx_id", descending=True).head(1).collect()
        sync = pl.DataFrame({
            "key:ID(FlowgraphSync)": ["store"], "snapshot_id": [store.snapshot_id],
            "transfers:long": [store.status()["tables"]["transactions"]["rows"]],
            "accounts:long": [universe.len()],
            "last_tx_id": [tx["tx_id"][0] if tx.height else None],
        })
        sync.write_csv(tmp / "flowgraph_sync.csv", quote_style="necessary")
        command = import_command(final, files, database)
        (tmp / "README.txt").write_text(
            "Bulk load of a flowgraph store into an empty Neo4j 5 database (offline, "
            "neo4j-admin 5.19+ syntax).\n"
            f"Store snapshot: {store.snapshot_id}\n\n"
            "Stop the database (or the DBMS), then run:\n\n"
            f"{command}\n\n"
            "then start Neo4j, `CREATE DATABASE` it if it is not the default one, and run\n"
            "`flowgraph neo4j init` to add the constraints and indexes.\n"
            "Files (rows, header excluded):\n"
            + "".join(f"  {n}\t{r}\n" for n, r in files.items())
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
    from .index import save_index

    index, meta = build_index_from_source(source, page_size)
    save_index(index, Path(directory), meta)
    return meta


__all__ = [
    "ALERT_SUMMARY_SCHEMA", "DEFAULT_BATCH_SIZE", "DEFAULT_PAGE_SIZE", "EmbeddedSource",
    "GraphSource", "IMPORT_FILES", "Neo4jConfigError", "Neo4jSettings", "Neo4jStore",
    "Neo4jStoreError", "Neo4jUnavailableError", "PUSH_TABLES", "SYNC_FILE", "TRANSFER_SCHEMA",
    "alert_rows", "build_index_from_source", "cypher_for_trace", "cypher_string",
    "export_import", "import_command", "save_source_index",
]

