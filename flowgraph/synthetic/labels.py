"""``labels.parquet``: one row per injected case, checked against the flow-back definition.

Columns: case_id, typology, loan_id, disbursement_id, tx_ids (the injected transactions),
expected_rule (``flow_back``, ``repay_with_loan``, ``prohibited_destination``,
``rapid_pass_through``, ``transfer_cycle``, null for negative controls), hops,
returned_amount (int64 minor units under greedy tracing, flow-back cases only), note.
"""

from __future__ import annotations

import polars as pl

from flowgraph.core.values import ratio_threshold
from flowgraph.synthetic.cases.kit import Case
from flowgraph.synthetic.cases.registry import EXPECTED_RULE
from flowgraph.synthetic.constants import MAX_HOPS, MIN_AMOUNT_RATIO, WINDOW_MS
from flowgraph.synthetic.world import World
from flowgraph.synthetic.writer import Ids

LABEL_SCHEMA = {
    "case_id": pl.Utf8,
    "typology": pl.Utf8,
    "loan_id": pl.Utf8,
    "disbursement_id": pl.Utf8,
    "tx_ids": pl.List(pl.Utf8),
    "expected_rule": pl.Utf8,
    "hops": pl.Int64,
    "returned_amount": pl.Int64,
    "note": pl.Utf8,
}


def flowback_paths(
    edges: list[tuple[int, str, str, str, int]],
    d: str,
    t0: int,
    a: int,
    linked: set[str],
    window_ms: int = WINDOW_MS,
    max_hops: int = MAX_HOPS,
    ratio: float = MIN_AMOUNT_RATIO,
    min_amount: int = 0,
) -> list[list[tuple[int, str, str, str, int]]]:
    """Brute-force flow-back paths (DESIGN.md conditions 1–8) over a small edge list.

    ``edges`` are ``(ts, key, src, dst, amount)``; ``linked`` is the set T of accounts of the
    borrower side. Used to compute the labels' ``returned_amount`` (and by tests).
    """
    thr = max(min_amount, ratio_threshold(ratio, a))
    out_edges: dict[str, list[tuple[int, str, str, str, int]]] = {}
    for e in sorted(edges):
        if e[4] >= thr and t0 < e[0] <= t0 + window_ms:
            out_edges.setdefault(e[2], []).append(e)
    paths: list[list[tuple[int, str, str, str, int]]] = []

    def dfs(u: str, t: int, path: list, seen: set[str], left: bool) -> None:
        if len(path) == max_hops:
            return
        for e in out_edges.get(u, ()):
            ts, _, _, v, _ = e
            if ts <= t:
                continue
            if v in seen and not (v == d and v in linked):
                continue
            if v in linked:
                if left:
                    paths.append([*path, e])
                elif v != d:
                    dfs(v, ts, [*path, e], seen | {v}, False)
            else:
                if v == d:
                    continue
                dfs(v, ts, [*path, e], seen | {v}, True)

    dfs(d, t0, [], {d}, d not in linked)
    return paths


def greedy_returned(paths: list[list[tuple]], d: str, a: int, linked: set[str]) -> int:
    """Greedy tracing over the union of the paths' edges (DESIGN.md)."""
    union = sorted({e for p in paths for e in p}, key=lambda e: (e[0], e[1]))
    bal: dict[str, int] = {d: a}
    returned = 0
    for _, _, u, v, amt in union:
        m = min(amt, bal.get(u, 0))
        bal[u] = bal.get(u, 0) - m
        if u not in linked and v in linked:
            returned += m
        else:
            bal[v] = bal.get(v, 0) + m
    return returned


# ------------------------------------------------------------------------------ the world


def labels_frame(w: World, cases: list[Case], ids: Ids, case_tx_ids: dict) -> pl.DataFrame:
    """The labels of ``cases``; raises AssertionError if a flow-back case has no path of its hops."""
    aid, lid = ids.account, ids.loan
    rows = []
    first_disb: dict[int, tuple] = {}
    for x in w.disb:
        first_disb.setdefault(x[0], x)
    for ci, c in enumerate(cases):
        tx_ids = [case_tx_ids[(ci, k)] for k in range(len(c.txs))]
        returned = None
        if EXPECTED_RULE[c.typology] == "flow_back":
            edges = [(t[0], tx_ids[k], aid[t[1]], aid[t[2]], t[3]) for k, t in enumerate(c.txs)]
            linked = {aid[i] for i in c.linked}
            paths = flowback_paths(edges, aid[c.d], c.t0, c.a, linked)
            if not paths or c.hops not in {len(p) for p in paths}:  # pragma: no cover - generator bug
                raise AssertionError(
                    f"injected case {c.case_id} has no flow-back path of {c.hops} hops"
                )
            returned = greedy_returned(paths, aid[c.d], c.a, linked)
        note = c.note
        if c.repaid_loan is not None:
            note += f" (repaid loan {lid[c.repaid_loan]})"
        disb = first_disb[c.loan]
        rows.append(
            {
                "case_id": c.case_id,
                "typology": c.typology,
                "loan_id": lid[c.loan],
                "disbursement_id": ids.disbursement(disb[0], disb[1], disb[3]),
                "tx_ids": tx_ids,
                "expected_rule": EXPECTED_RULE[c.typology],
                "hops": c.hops,
                "returned_amount": returned,
                "note": note,
            }
        )
    return pl.DataFrame(rows, schema=LABEL_SCHEMA)
