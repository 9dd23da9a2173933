"""Investigation queries for analysts: one account, paths between two accounts, loan history,
one loan's post-loan picture. Plain dicts out (JSON-ready: amounts as decimal strings,
times ISO-8601 UTC), so the CLI only renders them.
"""

from __future__ import annotations

from datetime import date

import polars as pl

from flowgraph.core.errors import NotFound
from flowgraph.core.values import format_amount, format_ts, money_sum
from flowgraph.graph.party_links import party_row
from flowgraph.investigate.trace import trace_loans
from flowgraph.rules.alerts import alert_json, read_alerts
from flowgraph.rules.kinds.flow_back import options_from_pack
from flowgraph.store.embedded import Store


def loan_rows(
    store: Store, borrower: str | None = None, start: int | None = None, end: int | None = None,
    min_amount: int | None = None, branch: str | None = None,
) -> pl.DataFrame:
    """Loans filtered by borrower, first-disbursement time [start, end), amount and branch."""
    loans = store.read("loans")
    first = store.scan("disbursements").group_by("loan_id").agg(
        pl.col("ts").min().alias("first_disbursed"), pl.len().alias("tranches"),
        money_sum(pl.col("amount")).alias("disbursed"),
    ).collect()
    df = loans.join(first, on="loan_id", how="left")
    if borrower:
        df = df.filter(pl.col("borrower_id") == borrower)
    if start is not None:
        df = df.filter(pl.col("first_disbursed") >= start)
    if end is not None:
        df = df.filter(pl.col("first_disbursed") < end)
    if min_amount is not None:
        df = df.filter(pl.col("amount") >= min_amount)
    if branch:
        df = df.filter(pl.col("branch") == branch)
    return df.sort("first_disbursed", "loan_id", nulls_last=True)


def history(store: Store, **filters) -> list[dict]:
    """Loans (see :func:`loan_rows`) with their disbursements, repayments and alerts."""
    loans = loan_rows(store, **filters)
    alerts = read_alerts(store)
    repaid = store.scan("repayments").group_by("loan_id").agg(
        money_sum(pl.col("amount")).alias("repaid"), pl.len().alias("repayments")
    ).collect()
    loans = loans.join(repaid, on="loan_id", how="left")
    by_loan: dict[str, list] = {}
    for r in alerts.select("loan_id", "rule_id", "level", "score").iter_rows(named=True):
        by_loan.setdefault(r["loan_id"], []).append(r)
    order = {"high": 0, "medium": 1, "low": 2}
    out = []
    for r in loans.iter_rows(named=True):
        al = sorted(by_loan.get(r["loan_id"], []), key=lambda a: (order[a["level"]], -a["score"], a["rule_id"]))
        out.append(
            {
                "loan_id": r["loan_id"], "borrower_id": r["borrower_id"], "amount": format_amount(r["amount"]),
                "branch": r.get("branch"), "payment_mode": r.get("payment_mode"),
                "first_disbursed": format_ts(r["first_disbursed"]) if r["first_disbursed"] is not None else None,
                "tranches": r["tranches"] or 0,
                "disbursed": format_amount(r["disbursed"] or 0),
                "repaid": format_amount(r["repaid"] or 0), "repayments": r["repayments"] or 0,
                "alerts": len(al), "worst_level": al[0]["level"] if al else None,
                "rules": sorted({a["rule_id"] for a in al}),
            }
        )
    return out


def loan_picture(store: Store, loan_id: str, pack=None, as_of: date | None = None) -> dict:
    """One loan: the loan, its borrower, disbursements with flow-back traces, repayments
    with the repayment status on ``as_of`` (default: the last day with data),
    classifications and alerts."""
    from flowgraph.rules.batch import last_data_day
    from flowgraph.rules.classification import schedule_params_of
    from flowgraph.rules.pack import load_pack
    from flowgraph.rules.repayment import status_json, store_repayment_status

    loans = store.scan("loans").filter(pl.col("loan_id") == loan_id).collect()
    if loans.height == 0:
        raise NotFound(f"unknown loan id {loan_id!r}")
    loan = loans.row(0, named=True)
    pack = pack or load_pack()
    traces = trace_loans(store, [loan_id], options_from_pack(pack))
    rep = store.scan("repayments").filter(pl.col("loan_id") == loan_id).sort("ts").collect()
    cls = store.scan("classifications").filter(pl.col("loan_id") == loan_id).sort("as_of").collect()
    alerts = read_alerts(store, loan=loan_id)
    as_of = as_of or last_data_day(store)
    status = store_repayment_status(store, as_of, schedule_params_of(pack), [loan_id])
    return {
        "loan": {**loan, "amount": format_amount(loan["amount"]),
                 "maturity_date": format_ts(loan["maturity_date"]) if loan.get("maturity_date") is not None else None},
        "borrower": party_row(store, loan["borrower_id"]),
        "disbursements": traces,
        "repayments": [
            {"account": r["account_id"], "ts": format_ts(r["ts"]), "amount": format_amount(r["amount"])}
            for r in rep.iter_rows(named=True)
        ],
        "repayment_status": status_json(status.row(0, named=True), as_of) if status.height else None,
        "classifications": [
            {**r, "as_of": format_ts(r["as_of"])} for r in cls.select("as_of", "grade", "source", "reason").iter_rows(named=True)
        ],
        "alerts": [alert_json(r) for r in alerts.iter_rows(named=True)],
    }
