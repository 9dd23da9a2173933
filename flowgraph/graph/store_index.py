"""The store's transaction graph as a persisted CSR index.

Accounts get dense int32 ids in sorted order of their external ids (accounts table ∪
transaction endpoints ∪ disbursement and repayment accounts). The index lives in
``<store>/index`` with the store's snapshot id in its meta file and is rebuilt
automatically when the snapshot changes.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import polars as pl

from flowgraph.engine.csr import ARRAY_NAMES, TemporalIndex, build_index, load_index, save_index
from flowgraph.store.embedded import Store

INDEX_FORMAT = 1


def account_universe(store: Store, endpoints: bool = True) -> pl.Series:
    """Sorted account ids: the accounts table, disbursement and repayment accounts, and
    (``endpoints``) every transaction's source and destination."""
    parts = [
        store.scan("accounts").select(pl.col("account_id").alias("a")),
        store.scan("disbursements").select(pl.col("account_id").alias("a")),
        store.scan("repayments").select(pl.col("account_id").alias("a")),
    ]
    if endpoints:
        tx = store.scan("transactions")
        parts += [tx.select(pl.col("src_account").alias("a")), tx.select(pl.col("dst_account").alias("a"))]
    return pl.concat(parts).unique().sort("a").collect()["a"]


def _encode_transactions(store: Store, accounts: pl.Series) -> pl.DataFrame:
    """src/dst as dense ids in ``accounts`` (null where an id is not in it), ts, amount."""
    enum = pl.Enum(accounts.to_list()) if accounts.len() else pl.Enum([])
    return (
        store.scan("transactions")
        .select(
            pl.col("src_account").cast(enum, strict=False).to_physical().cast(pl.Int32).alias("src"),
            pl.col("dst_account").cast(enum, strict=False).to_physical().cast(pl.Int32).alias("dst"),
            "ts",
            "amount",
        )
        .collect()
    )


def build_store_index(store: Store) -> tuple[TemporalIndex, dict]:
    """Build (not persist) the index of a store; the meta records timings and sizes.

    Dense ids follow the sorted account universe (see :func:`account_universe`). The
    universe is taken from the small tables first: when the accounts table names every
    transaction endpoint, as a bank's does, the unique + sort over all the transaction
    endpoint strings (a fifth of the build at 50M) is never paid; otherwise the whole
    universe is collected and the columns encoded again.
    """
    started = time.perf_counter()
    accounts = account_universe(store, endpoints=False)
    tx = _encode_transactions(store, accounts)
    if tx["src"].null_count() or tx["dst"].null_count():  # endpoints without an account row
        accounts = account_universe(store)
        tx = _encode_transactions(store, accounts)
    encoded = time.perf_counter()
    index = build_index(
        tx["src"].to_numpy(),
        tx["dst"].to_numpy(),
        tx["ts"].to_numpy(),
        tx["amount"].to_numpy(),
        accounts.to_numpy().astype(str),
    )
    built = time.perf_counter()
    meta = {
        "format": INDEX_FORMAT,
        "snapshot_id": store.snapshot_id,
        "accounts": int(index.n_accounts),
        "edges": int(index.n_edges),
        "encode_seconds": round(encoded - started, 3),
        "build_seconds": round(built - encoded, 3),
    }
    return index, meta


def load_or_build_index(
    store: Store, rebuild: bool = False, progress: Callable[[str], None] | None = None
) -> tuple[TemporalIndex, dict]:
    """The store's index, memory-mapped; rebuilt when missing, stale or ``rebuild``."""
    path = store.index_dir
    snapshot = store.snapshot_id
    if not rebuild and (path / "meta.json").exists():
        try:
            index, meta = load_index(path)
            if meta.get("snapshot_id") == snapshot and meta.get("format") == INDEX_FORMAT:
                meta = dict(meta, rebuilt=False)
                return index, meta
        except (OSError, ValueError, KeyError):
            pass  # damaged or old index: rebuild below
    if progress:
        progress("building index")
    with store.lock():
        index, meta = build_store_index(store)
        save_index(index, path, meta)
    index, meta = load_index(path)
    return index, dict(meta, rebuilt=True)


class AccountLookup:
    """External account id ↔ dense id, by binary search in the sorted id array."""

    def __init__(self, account_ids: np.ndarray):
        self.ids = account_ids

    def get(self, account: str) -> int:
        i = int(np.searchsorted(self.ids, account))
        if i < len(self.ids) and self.ids[i] == account:
            return i
        return -1

    def many(self, accounts: list[str]) -> np.ndarray:
        if not accounts:
            return np.zeros(0, dtype=np.int32)
        # no fixed width taken from the index: a longer query id must not be truncated
        arr = np.asarray(accounts, dtype=str)
        pos = np.searchsorted(self.ids, arr)
        pos = np.minimum(pos, max(len(self.ids) - 1, 0))
        ok = self.ids[pos] == arr if len(self.ids) else np.zeros(len(arr), bool)
        return np.where(ok, pos, -1).astype(np.int32)


def index_as_of(index: TemporalIndex, cutoff_ms: int) -> TemporalIndex:
    """The index without transactions at or after ``cutoff_ms`` (an as-of view).

    Every search kernel then sees exactly the data known at the cutoff, whatever its own
    window, so scoring a past date ignores transactions booked later. Each account's
    edges are time-sorted, so the kept edges keep their order and ``indptr`` is remapped
    through a running count. O(E); returns ``index`` itself when nothing is cut.

    >>> import numpy as np
    >>> from flowgraph.engine.csr import build_index
    >>> idx = build_index(np.array([0, 0, 1], np.int32), np.array([1, 1, 0], np.int32),
    ...                   np.array([5, 9, 7]), np.array([1, 2, 3]), np.array(["a", "b"]))
    >>> cut = index_as_of(idx, 8)
    >>> cut.indptr.tolist(), cut.ts.tolist(), cut.rindptr.tolist(), cut.rts.tolist()
    ([0, 1, 2], [5, 7], [0, 1, 2], [7, 5])
    """
    ts = np.asarray(index.ts)
    if not len(ts) or ts.max() < cutoff_ms:
        return index

    def side(indptr, ts, cols):
        keep = np.asarray(ts) < cutoff_ms
        running = np.concatenate([[0], np.cumsum(keep, dtype=np.int64)])
        return running[np.asarray(indptr)], [np.asarray(c)[keep] for c in cols]

    indptr, (dst, fts, amount, row) = side(index.indptr, index.ts, [index.dst, index.ts, index.amount, index.row])
    rindptr, (rsrc, rts, ramount, rrow) = side(
        index.rindptr, index.rts, [index.rsrc, index.rts, index.ramount, index.rrow]
    )
    return TemporalIndex(
        account_ids=index.account_ids, indptr=indptr, dst=dst, ts=fts, amount=amount, row=row,
        rindptr=rindptr, rsrc=rsrc, rts=rts, ramount=ramount, rrow=rrow,
    )


def verify_index(store: Store) -> str | None:
    """None when the persisted index equals a fresh build of the store, else what differs.

    Rebuilds the index in memory (O(E log E)); the fix for a problem is
    ``flowgraph index --rebuild``. A stale index (older snapshot) is not damage: the next
    command rebuilds it.
    """
    where = store.index_dir
    try:
        saved, meta = load_index(where)
    except (OSError, ValueError, KeyError) as e:
        return f"{where}: index unreadable ({e}); run `flowgraph index --rebuild`"
    if meta.get("snapshot_id") != store.snapshot_id:
        return None
    fresh, _ = build_store_index(store)
    for name in ("account_ids", *ARRAY_NAMES):
        a, b = np.asarray(getattr(saved, name)), np.asarray(getattr(fresh, name))
        if a.shape != b.shape or not np.array_equal(a, b):
            return f"{where}/{name}.npy: index array differs from the tables; run `flowgraph index --rebuild`"
    return None


def verify_store(store: Store, index: bool = True) -> dict:
    """:meth:`Store.verify` (every table file, the snapshot id) plus, with ``index``, that
    the persisted index equals one built afresh from the tables."""
    res = store.verify()
    if index and res["ok"] and (store.index_dir / "meta.json").exists():
        problem = verify_index(store)
        res["checked"]["index"] = "ok" if problem is None else "damaged"
        if problem:
            res["problems"].append(problem)
            res["ok"] = False
    return res
