"""The graph-source interface and the index built from any source.

:class:`GraphSource` is what the index builder and the alert writer need from a store:
a snapshot id, the account universe, the transfers in ``tx_id`` order (columnar
batches), and a place to write alerts. Two implementations: :class:`EmbeddedSource`
here, over :class:`flowgraph.store.embedded.Store` (the Parquet store), and
:class:`flowgraph.neo4j.store.Neo4jStore`. :func:`build_index_from_source` builds the CSR
index from any source, equal to :func:`flowgraph.graph.store_index.build_store_index`
for the same data.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Protocol, runtime_checkable

import polars as pl

from flowgraph.core.errors import Neo4jStoreError
from flowgraph.engine.csr import TemporalIndex, build_index
from flowgraph.graph.store_index import INDEX_FORMAT, account_universe
from flowgraph.rules.alerts import ALERT_SCHEMA, partition_dir, read_alerts, write_partition
from flowgraph.store.embedded import Store

DEFAULT_PAGE_SIZE = 50_000
TRANSFER_SCHEMA: dict[str, pl.DataType] = {
    "tx_id": pl.Utf8(),
    "src": pl.Utf8(),
    "dst": pl.Utf8(),
    "ts": pl.Int64(),
    "amount": pl.Int64(),
}


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


def alert_tx_ids(paths) -> tuple[list[str], list[int]]:
    """Flatten an alert's paths to (tx_ids in path order, hops per path)."""
    tx_ids: list[str] = []
    lengths: list[int] = []
    for p in paths or []:
        hops = p["hops"] or []
        tx_ids += [h["tx_id"] for h in hops]
        lengths.append(len(hops))
    return tx_ids, lengths


def alert_summary(df: pl.DataFrame) -> pl.DataFrame:
    """The columns every source returns from ``alerts()``, sorted by alert_id."""
    rows = []
    for r in df.iter_rows(named=True):
        tx_ids, lengths = alert_tx_ids(r.get("paths"))
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
        return alert_summary(read_alerts(self.store))


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
    "ALERT_SUMMARY_SCHEMA", "DEFAULT_PAGE_SIZE", "EmbeddedSource", "GraphSource", "TRANSFER_SCHEMA",
    "alert_tx_ids", "build_index_from_source", "index_store_from_source", "save_source_index",
    "store_fingerprint",
]
