"""``labels.parquet``: one row per injected case loan, checked against the flow-back definition.

Columns: case_id, typology, loan_id, disbursement_id, tx_ids (the injected transactions),
expected_rule (the rule kind that must fire, null for negative controls), lookalike_of
(for a negative control: the rule kind it imitates, which must stay silent), also_rules
(other rule kinds whose pattern the case's own transactions show, by the shipped pack's
definitions: :func:`also_shows`; an alert of these on the case is correct), hops,
returned_amount (int64 minor units under greedy tracing, flow-back cases only), note. A
case with several loans (split_disbursement) has one row per loan, ids ``<case_id>/<k>``.
"""

from __future__ import annotations

import polars as pl

from flowgraph.core.values import DAY_MS, HOUR_MS
from flowgraph.engine.flow_back_reference import find_flow_back_reference
from flowgraph.synthetic.cases.kit import Case
from flowgraph.synthetic.cases.registry import EXPECTED_RULE, LOOKALIKE_OF
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
    "lookalike_of": pl.Utf8,
    "also_rules": pl.List(pl.Utf8),
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


PROHIBITED = {"brokerage", "real_estate", "lender", "crypto"}
ALLOWED_BY_PURPOSE = {"home purchase": {"real_estate"}}


def _known(txs, u: int, v: int, t: int) -> bool:
    """``u`` paid ``v`` at least twice in the 180 days before ``t`` (among the case's transactions)."""
    return sum(1 for x in txs if x[1] == u and x[2] == v and t - 180 * DAY_MS <= x[0] < t) >= 2


def also_shows(w: World, c: Case) -> set[str]:
    """The rule kinds whose pattern the case's own transactions show, by the definitions of
    the shipped pack (docs/rules.md) at its parameters: a case built for one typology may
    honestly show another (a flow-back chain whose first hop is most of the loan the next
    morning is also a large outflow to a new counterparty). Only what the case built is
    looked at — its accounts are fresh, so the background cannot add to it (see the package
    docstring)."""
    txs = sorted(c.txs, key=lambda x: x[0])
    loan = w.loans[c.loan]
    thr = -(-c.a // 10)  # every hop at least 10 % of the disbursed amount
    end = c.t0 + WINDOW_MS
    out: set[str] = set()
    for ts, src, dst, amt, _, _ in txs:
        if (src == c.d and dst not in c.linked and dst != loan.payee and c.t0 < ts <= c.t0 + 72 * HOUR_MS
                and 2 * amt >= c.a and not _known(txs, c.d, dst, c.t0)):  # fmt: skip
            out.add("large_outflow")
    # earliest arrival over chains of at most MAX_HOPS hops, each at least thr
    arrive = {c.d: (c.t0, 0)}
    for ts, src, dst, amt, _, _ in txs:
        if src in arrive and arrive[src][0] < ts <= end and amt >= thr and arrive[src][1] < MAX_HOPS:
            if dst not in arrive or ts < arrive[dst][0]:
                arrive[dst] = (ts, arrive[src][1] + 1)
            fwd = sum(x[3] for x in txs if x[1] == dst and ts < x[0] <= ts + 24 * HOUR_MS and not _known(txs, dst, x[2], ts))
            if dst != c.d and dst not in c.linked and 10 * fwd >= 9 * amt:
                out.add("rapid_pass_through")
    allowed = ALLOWED_BY_PURPOSE.get(loan.purpose, set())
    if any(w.a_cat[v] in PROHIBITED - allowed for v in arrive if v != c.d):
        out.add("prohibited_destination")
    return out


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
        also = sorted(also_shows(w, c) - {EXPECTED_RULE[c.typology]})
        if LOOKALIKE_OF[c.typology] in also:  # pragma: no cover - a look-alike built wrong
            raise AssertionError(f"look-alike {c.case_id} shows the pattern of {LOOKALIKE_OF[c.typology]}")
        for k, li in enumerate([c.loan, *c.more_loans]):
            disb = first_disb[li]
            rows.append(
                {
                    "case_id": c.case_id if k == 0 else f"{c.case_id}/{k + 1}",
                    "typology": c.typology,
                    "loan_id": lid[li],
                    "disbursement_id": ids.disbursement(disb[0], disb[1], disb[3]),
                    "tx_ids": tx_ids if k == 0 else [],
                    "expected_rule": EXPECTED_RULE[c.typology],
                    "lookalike_of": LOOKALIKE_OF[c.typology],
                    "also_rules": also if k == 0 else [],
                    "hops": c.hops,
                    "returned_amount": returned,
                    "note": note,
                }
            )
    return pl.DataFrame(rows, schema=LABEL_SCHEMA)
