"""What a data team would otherwise write for the flow-back rule: networkx and DuckDB.

Both peers answer the question of DESIGN.md ("Core rule: flow-back", conditions 1-8) for
one disbursement ``(d, t0, a)`` and its borrower-linked accounts ``T``, on the raw
transactions table (external string ids, no index, none of the engine's pruning):

- :func:`nx_flow_back`: filter the table to the window and the amount floor (polars),
  build a ``networkx.MultiDiGraph`` of those edges, depth-first search from ``d`` with
  increasing timestamps, at most ``max_hops`` edges, no repeated account, stopping at
  the first account of ``T`` once the path has left the borrower side.
- :func:`duckdb_flow_back`: the same as one ``WITH RECURSIVE`` query over a DuckDB table,
  the path carried as a list, for many disbursements at once.

A path is the list of its tx ids in hop order. :func:`greedy_returned` is the greedy
tracing of DESIGN.md over the union of the paths' edges, in plain Python.
"""

from __future__ import annotations

import time

import networkx as nx
import polars as pl

from flowgraph.engine.flow_back_reference import greedy_returned as reference_greedy_returned


def canonical(paths) -> list[tuple[str, ...]]:
    """Paths as a sorted list of tx-id tuples (hop order kept inside each path)."""
    return sorted(tuple(p) for p in paths)


def greedy_returned(paths, edges: dict, d: str, a: int, targets: set) -> int:
    """Greedy tracing (DESIGN.md) over the union of the paths' edges, in (ts, tx_id) order.

    ``edges`` maps tx_id → (src, dst, ts, amount); the walk is
    :func:`flowgraph.engine.flow_back_reference.greedy_returned`.
    """
    union = {e for p in paths for e in p}
    src, dst, ts, amount = ({e: edges[e][k] for e in union} for k in range(4))
    return reference_greedy_returned(union, src, dst, ts, amount, d, a, targets)


# --------------------------------------------------------------------------- networkx
def nx_flow_back(tx: pl.DataFrame, d: str, t0: int, a: int, targets: set, *, window_ms: int,
                 max_hops: int, threshold: int) -> dict:  # fmt: skip
    """Flow-back paths of one disbursement with polars + networkx.

    ``tx`` has columns tx_id, src_account, dst_account, ts, amount. Returns
    ``{"paths", "returned", "edges", "filter_s", "build_s", "search_s", "trace_s"}``.
    """
    t = time.perf_counter()
    w = tx.filter(
        (pl.col("ts") > t0) & (pl.col("ts") <= t0 + window_ms) & (pl.col("amount") >= threshold)
    )
    t_filter = time.perf_counter()
    g = nx.MultiDiGraph()
    g.add_edges_from(
        (s, v, k, {"ts": ts, "amount": am})
        for k, s, v, ts, am in w.select("tx_id", "src_account", "dst_account", "ts", "amount").iter_rows()
    )
    t_build = time.perf_counter()
    paths: list[list[str]] = []
    if d in g:
        # stack of (account, last ts, tx ids, accounts on path, left the borrower side)
        stack = [(d, t0, [], [d], d not in targets)]
        while stack:
            u, last, txs, accts, left = stack.pop()
            if len(txs) == max_hops:
                continue
            for _, v, k, data in g.out_edges(u, keys=True, data=True):
                if data["ts"] <= last:
                    continue
                in_t = v in targets
                if v in accts and not (v == d and in_t and left):
                    continue  # no repeated account, except a return to d
                if in_t and left:
                    paths.append(txs + [k])  # reached T after leaving: the path ends here
                    continue
                stack.append((v, data["ts"], txs + [k], accts + [v], left or not in_t))
    t_search = time.perf_counter()
    edges = {k: (s, v, data["ts"], data["amount"]) for s, v, k, data in g.edges(keys=True, data=True)}
    returned = greedy_returned(paths, edges, d, a, targets)
    return {
        "paths": paths,
        "returned": returned,
        "edges": w.height,
        "filter_s": t_filter - t,
        "build_s": t_build - t_filter,
        "search_s": t_search - t_build,
        "trace_s": time.perf_counter() - t_search,
    }


# --------------------------------------------------------------------------- DuckDB
FLOW_BACK_SQL = """
WITH RECURSIVE {cand}walk(disb_id, d, tend, thr, cur, last_ts, hops, accts, txs, left_t, fin) AS (
    SELECT s.disb_id, s.d, s.tend, s.thr, s.d, s.t0, 0,
           [s.d], []::VARCHAR[], lk.account IS NULL, false
    FROM sample s LEFT JOIN linked lk ON lk.disb_id = s.disb_id AND lk.account = s.d
  UNION ALL
    SELECT w.disb_id, w.d, w.tend, w.thr, t.dst_account, t.ts, w.hops + 1,
           list_append(w.accts, t.dst_account), list_append(w.txs, t.tx_id),
           w.left_t OR lk.account IS NULL,
           lk.account IS NOT NULL AND w.left_t
    FROM walk w
    JOIN {edges} t ON t.src_account = w.cur
             AND t.ts > w.last_ts AND t.ts <= w.tend AND t.amount >= w.thr
    LEFT JOIN linked lk ON lk.disb_id = w.disb_id AND lk.account = t.dst_account
    WHERE NOT w.fin AND w.hops < $max_hops
      AND (NOT list_contains(w.accts, t.dst_account)
           OR (t.dst_account = w.d AND lk.account IS NOT NULL AND w.left_t))
)
SELECT disb_id, txs FROM walk WHERE fin
"""
# ``prefilter``: first keep the transactions inside the sample's overall time range and
# above its smallest amount floor (a materialized CTE), then walk those only.
PREFILTER_CTE = """cand AS MATERIALIZED (
    SELECT * FROM tx WHERE ts > $lo AND ts <= $hi AND amount >= $thr_min
), """
# Read as the rule: a step follows a transfer leaving the current account, later than the
# previous one, inside the window and above the amount floor (conditions 1, 2, 4), while
# fewer than max_hops were taken (3); it never revisits an account, except d as the last
# one (5); ``left_t`` says some account so far is outside T, and a path is finished
# (``fin``) when it enters T after leaving (6, 7); finished paths are not extended (8).


def duckdb_connect(tx_parquet: str, memory_limit: str = "6GB", threads: int = 2):
    """A DuckDB connection with table ``tx`` loaded from the store's transactions Parquet."""
    import duckdb

    con = duckdb.connect()
    con.execute(f"SET memory_limit = '{memory_limit}'")
    con.execute(f"SET threads = {int(threads)}")
    con.execute(
        "CREATE TABLE tx AS SELECT tx_id, src_account, dst_account, ts, amount "
        "FROM read_parquet(?)",
        [tx_parquet],
    )
    return con


def duckdb_flow_back(con, rows: list[dict], *, window_ms: int, max_hops: int,
                     prefilter: bool = False) -> dict:  # fmt: skip
    """Flow-back paths of many disbursements with one recursive query.

    ``rows``: dicts with disb_id, d, t0, a, threshold, targets (iterable of account ids).
    ``prefilter``: walk only the transactions inside the rows' overall window and above
    their smallest amount floor (what one writes for a single disbursement).
    Returns ``{disb_id: [paths]}`` (every disbursement of ``rows`` present).
    """
    sample = pl.DataFrame(
        {
            "disb_id": [r["disb_id"] for r in rows],
            "d": [r["d"] for r in rows],
            "t0": [int(r["t0"]) for r in rows],
            "tend": [int(r["t0"]) + int(window_ms) for r in rows],
            "thr": [int(r["threshold"]) for r in rows],
        },
        schema={"disb_id": pl.Utf8, "d": pl.Utf8, "t0": pl.Int64, "tend": pl.Int64, "thr": pl.Int64},
    )
    linked = pl.DataFrame(
        {
            "disb_id": [r["disb_id"] for r in rows for _ in r["targets"]],
            "account": [x for r in rows for x in r["targets"]],
        },
        schema={"disb_id": pl.Utf8, "account": pl.Utf8},
    )
    con.register("sample", sample.to_arrow())
    con.register("linked", linked.to_arrow())
    params = {"max_hops": int(max_hops)}
    if prefilter and rows:
        sql = FLOW_BACK_SQL.format(cand=PREFILTER_CTE, edges="cand")
        params.update(lo=min(int(r["t0"]) for r in rows), hi=max(int(r["t0"]) for r in rows) + int(window_ms),
                      thr_min=min(int(r["threshold"]) for r in rows))  # fmt: skip
    else:
        sql = FLOW_BACK_SQL.format(cand="", edges="tx")
    try:
        res = con.execute(sql, params).fetchall()
    finally:
        con.unregister("sample")
        con.unregister("linked")
    out: dict = {r["disb_id"]: [] for r in rows}
    for disb_id, txs in res:
        out[disb_id].append(list(txs))
    return out


def edges_of(tx, tx_ids) -> dict:
    """tx_id → (src, dst, ts, amount) for the given ids (to trace a peer's paths).

    ``tx``: a polars DataFrame of transactions, or a DuckDB connection with table ``tx``.
    """
    ids = sorted(set(tx_ids))
    if not ids:
        return {}
    if isinstance(tx, pl.DataFrame):
        sub = tx.filter(pl.col("tx_id").is_in(ids)).select("tx_id", "src_account", "dst_account", "ts", "amount")
        rows = sub.iter_rows()
    else:
        tx.register("wanted", pl.DataFrame({"tx_id": ids}).to_arrow())
        try:
            rows = tx.execute("SELECT tx_id, src_account, dst_account, ts, amount FROM tx "
                              "JOIN wanted USING (tx_id)").fetchall()  # fmt: skip
        finally:
            tx.unregister("wanted")
    return {k: (s, v, ts, am) for k, s, v, ts, am in rows}
