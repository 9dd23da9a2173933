"""TODO docstring."""

from __future__ import annotations

import numpy as np
import polars as pl

from flowgraph.core.errors import StoreError
from flowgraph.core.schema import TABLES
from flowgraph.core.values import format_amount, format_ts
from flowgraph.store.embedded import Store


def read_rows(store: Store, table: str, rows: np.ndarray, columns: list[str]) -> pl.DataFrame:
    """The given rows (positions in the table) of some columns, plus ``__row``, in row order.

    Reads only the Parquet row groups that hold them: a trace touches a few hundred
    transactions of a table that may hold hundreds of millions.
    """
    import pyarrow.parquet as pq

    rows = np.unique(np.asarray(rows, dtype=np.int64))
    path = store.table_path(table)
    if path is None or not len(rows):
        return TABLES[table].empty().select(columns).with_columns(pl.Series("__row", rows, pl.Int64))
    lf = store.scan(table)  # through the store: its checks on the table file apply
    pf = pq.ParquetFile(path)
    sizes = np.array([pf.metadata.row_group(g).num_rows for g in range(pf.num_row_groups)], np.int64)
    ends = np.cumsum(sizes)
    if rows[-1] >= ends[-1] or rows[0] < 0:
        raise StoreError(f"{path}: row {int(rows[-1])} out of range ({int(ends[-1])} rows); rebuild the index")
    groups = np.unique(np.searchsorted(ends, rows, side="right"))
    if 4 * len(groups) > len(sizes):
        # most of the file anyway: polars' parallel reader with the filter streamed beats
        # decoding whole row groups through pyarrow
        wanted = pl.Series("__row", rows, pl.Int64).implode()
        return (
            lf.select(columns).with_row_index("__row").filter(pl.col("__row").is_in(wanted))
            .with_columns(pl.col("__row").cast(pl.Int64)).collect()
        )
    part = pl.from_arrow(pf.read_row_groups(groups.tolist(), columns=columns))
    first = np.concatenate([[0], np.cumsum(sizes[groups])[:-1]])  # where each group starts in `part`
    g_of = np.searchsorted(ends, rows, side="right")
    local = first[np.searchsorted(groups, g_of)] + (rows - (ends[g_of] - sizes[g_of]))
    return part[local].with_columns(pl.Series("__row", rows, pl.Int64))



HOP_COLUMNS = ["tx_id", "src_account", "dst_account", "ts", "amount"]



def hop_records(tx: pl.DataFrame, rows: np.ndarray) -> dict[int, dict]:
    """Transaction row → ``{tx_id, src, dst, ts, amount}`` (ints) for the given rows.

    ``tx`` is the whole transactions table, or the output of :func:`read_rows` for (at
    least) these rows.
    """
    rows = np.unique(np.asarray(rows, dtype=np.int64))
    if not len(rows):
        return {}
    if "__row" in tx.columns:
        pos = np.searchsorted(tx["__row"].to_numpy(), rows)
        sub = tx.select(HOP_COLUMNS)[pos]
    else:
        sub = tx.select(HOP_COLUMNS)[rows]
    return {
        int(r): {"tx_id": t, "src": s, "dst": d, "ts": ts, "amount": a}
        for r, (t, s, d, ts, a) in zip(rows.tolist(), sub.iter_rows(), strict=True)
    }



def hop_json(hop: dict) -> dict:
    """A hop record with its amount as a decimal string and ts as ISO-8601 UTC."""
    return hop | {"ts": format_ts(hop["ts"]), "amount": format_amount(hop["amount"])}



def read_hops(store: Store, rows: np.ndarray) -> dict[int, dict]:
    """Transaction row → JSON hop, reading only those rows of the store."""
    rows = np.asarray(rows, dtype=np.int64)
    return {r: hop_json(h) for r, h in hop_records(read_rows(store, "transactions", rows, HOP_COLUMNS), rows).items()}
