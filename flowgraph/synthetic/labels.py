"""``labels.parquet``: one row per injected case, checked against the flow-back definition.

Columns: case_id, typology, loan_id, disbursement_id, tx_ids (the injected transactions),
expected_rule (``flow_back``, ``repay_with_loan``, ``prohibited_destination``,
``rapid_pass_through``, ``transfer_cycle``, null for negative controls), hops,
returned_amount (int64 minor units under greedy tracing, flow-back cases only), note.
"""

from __future__ import annotations

import polars as pl

from flowgraph.engine.flow_back_reference import find_flow_back_reference
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


def returned_amount(c: Case) -> int:
    """Greedy returned amount of a flow-back case, over its own transactions.

    The case's transactions are the whole graph here: the background cannot be a hop of a
    path (see the package docstring), and cases do not share accounts. All flow-back paths
    are found by :func:`~flowgraph.engine.flow_back_reference.find_flow_back_reference` at
    the default rule parameters; the case must have one of its intended length.
    Transactions are passed in case order, which for equal times is also their ``tx_id``
    order, so the greedy walk's (ts, row) order is the contract's (ts, tx_id) order.

    >>> hop = 3_600_000
    >>> c = Case(loan=0, txs=[(hop, 0, 1, 900, "transfer", ""), (2 * hop, 1, 0, 800, "transfer", "")],
    ...          hops=2, note="", linked={0}, d=0, a=1000, t0=0)
    >>> returned_amount(c)
    800
    """
    src, dst, ts, amount = ([t[i] for t in c.txs] for i in (1, 2, 0, 3))
    res = find_flow_back_reference(
        src, dst, ts, amount, c.d, c.t0, c.a, c.linked,
        window_ms=WINDOW_MS, max_hops=MAX_HOPS, min_amount=0,
        min_amount_ratio=MIN_AMOUNT_RATIO, max_paths=1_000_000,
    )  # fmt: skip
    if res.truncated or c.hops not in {len(p) for p in res.paths}:  # pragma: no cover - bug
        raise AssertionError(f"injected case {c.case_id} has no flow-back path of {c.hops} hops")
    return res.returned_amount


def labels_frame(w: World, cases: list[Case], ids: Ids, case_tx_ids: dict) -> pl.DataFrame:
    """The labels of ``cases``; raises AssertionError if a flow-back case has no path of its hops."""
    lid = ids.loan
    rows = []
    first_disb: dict[int, tuple] = {}
    for x in w.disb:
        first_disb.setdefault(x[0], x)
    for ci, c in enumerate(cases):
        tx_ids = [case_tx_ids[(ci, k)] for k in range(len(c.txs))]
        returned = None
        if EXPECTED_RULE[c.typology] == "flow_back":
            returned = returned_amount(c)
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
