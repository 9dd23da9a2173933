"""Investigation queries for analysts: one account, paths between two accounts, loan history,
one loan's post-loan picture. Plain dicts out (JSON-ready: amounts as decimal strings,
times ISO-8601 UTC), so the CLI only renders them.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl

from .batch import alert_json, read_alerts
from .flow_back import FlowBackParams, find_flow_back
from .graph import AccountLookup, load_or_build_index
from .links import chain_text, load_party_graph
from .store import Store
from .trace import options_from_pack, read_hops, trace_loans
from .values import format_amount, format_ts


def _party(store: Store, party_id: str | None) -> dict | None:
    if not party_id:
        return None
    rows = store.scan("parties").filter(pl.col("party_id") == party_id).collect()
    return rows.row(0, named=True) if rows.height else {"party_id": party_id}


def _alerts_touching_account(store: Store, account_id: str) -> list[dict]:
    """Alerts whose disbursement account or any path hop is the account."""
    out = []
    for r in read_alerts(store).iter_rows(named=True):
        hops = (h for p in r["paths"] or [] for h in p["hops"])
        if r["account"] == account_id or any(account_id in (h["src"], h["dst"]) for h in hops):
            out.append(alert_json(r))
    return out


def account_summary(store: Store, account_id: str, top: int = 10) -> dict:
    """Owner, linked parties, daily inflow/outflow, top counterparties, alerts touching it.

    Raises ``KeyError`` when the account appears nowhere in the store.
    """
    acc = store.scan("accounts").filter(pl.col("account_id") == account_id).collect()
    tx = store.scan("transactions").filter(
        (pl.col("src_account") == account_id) | (pl.col("dst_account") == account_id)
    ).select("tx_id", "ts", "src_account", "dst_account", "amount").collect()
    if acc.height == 0 and tx.height == 0:
        raise KeyError(f"unknown account {account_id!r}")
    owner_id = acc["owner_id"][0] if acc.height else None
    graph = load_party_graph(store, [owner_id], 1) if owner_id else None
    linked = graph.linked_parties([owner_id], 1) if graph else {}
    flows = (
        tx.with_columns(
            pl.from_epoch("ts", time_unit="ms").dt.date().cast(pl.Utf8).alias("day"),
            pl.when(pl.col("dst_account") == account_id).then(pl.col("amount")).otherwise(0).alias("inflow"),
            pl.when(pl.col("src_account") == account_id).then(pl.col("amount")).otherwise(0).alias("outflow"),
        )
        .group_by("day")
        .agg(pl.col("inflow").sum(), pl.col("outflow").sum(), pl.len().alias("transactions"))
        .sort("day")
    )
    counter = (
        tx.with_columns(
            pl.when(pl.col("src_account") == account_id)
            .then(pl.col("dst_account"))
            .otherwise(pl.col("src_account"))
            .alias("counterparty"),
            pl.when(pl.col("dst_account") == account_id).then(pl.col("amount")).otherwise(0).alias("received"),
            pl.when(pl.col("src_account") == account_id).then(pl.col("amount")).otherwise(0).alias("sent"),
        )
        .group_by("counterparty")
        .agg(pl.col("received").sum(), pl.col("sent").sum(), pl.len().alias("transactions"))
        .with_columns((pl.col("received") + pl.col("sent")).alias("total"))
        .sort(["total", "counterparty"], descending=[True, False])
        .head(top)
    )
    return {
        "account_id": account_id,
        "account": acc.row(0, named=True) if acc.height else None,
        "owner": _party(store, owner_id),
        "linked_parties": [
            {"party_id": p, "chain": chain_text(c)} for p, c in linked.items() if p != owner_id
        ],
        "totals": {
            "inflow": format_amount(int(flows["inflow"].sum() or 0)),
            "outflow": format_amount(int(flows["outflow"].sum() or 0)),
            "transactions": tx.height,
        },
        "by_day": [
            {"day": r["day"], "inflow": format_amount(r["inflow"]), "outflow": format_amount(r["outflow"]),
             "transactions": r["transactions"]}
            for r in flows.iter_rows(named=True)
        ],
        "top_counterparties": [
            {"account": r["counterparty"], "received": format_amount(r["received"]),
             "sent": format_amount(r["sent"]), "transactions": r["transactions"]}
            for r in counter.iter_rows(named=True)
        ],
        "alerts": _alerts_touching_account(store, account_id),
    }


def paths_between(
    store: Store, src: str, dst: str, since: int | None = None, until: int | None = None,
    max_hops: int = 5, min_amount: int = 0, max_paths: int = 100,
) -> dict:
    """Time-respecting paths from ``src`` to ``dst`` with the flow-back engine.

    With T = {dst}, d = src and no amount ratio, the flow-back conditions say exactly:
    transfers from ``src`` with strictly increasing times in [since, until], each at least
    ``min_amount``, no account twice, ending the first time they reach ``dst``.
    """
    if src == dst:
        raise ValueError("paths needs two different accounts")
    index, _ = load_or_build_index(store)
    lookup = AccountLookup(index.account_ids)
    s, d = lookup.get(src), lookup.get(dst)
    for name, i in ((src, s), (dst, d)):
        if i < 0:
            raise KeyError(f"unknown account {name!r}")
    ts = np.asarray(index.ts)
    lo = (int(since) if since is not None else int(ts.min(initial=0))) - 1
    hi = int(until) if until is not None else int(ts.max(initial=0))
    params = FlowBackParams(window_ms=max(0, hi - lo), max_hops=max_hops, min_amount=min_amount,
                            min_amount_ratio=0.0, max_paths=max_paths)
    res = find_flow_back(index, s, lo, 0, np.array([d], np.int64), params)
    rows = np.concatenate(res.paths) if res.paths else np.zeros(0, np.int64)
    hops = read_hops(store, rows)
    return {
        "src": src, "dst": dst,
        "since": format_ts(lo + 1), "until": format_ts(hi), "max_hops": max_hops,
        "path_count": res.path_count, "truncated": res.truncated,
        "paths": [{"hops": [hops[int(r)] for r in p]} for p in res.paths],
    }


def loan_rows(
    store: Store, borrower: str | None = None, start: int | None = None, end: int | None = None,
    min_amount: int | None = None, branch: str | None = None,
) -> pl.DataFrame:
    """Loans filtered by borrower, first-disbursement time [start, end), amount and branch."""
    loans = store.read("loans")
    first = store.scan("disbursements").group_by("loan_id").agg(
        pl.col("ts").min().alias("first_disbursed"), pl.len().alias("tranches"),
        pl.col("amount").sum().alias("disbursed"),
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
        pl.col("amount").sum().alias("repaid"), pl.len().alias("repayments")
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
    from .batch import last_data_day
    from .classify import schedule_params_of
    from .repayment import status_json, store_repayment_status
    from .rulepack import load_pack

    loans = store.scan("loans").filter(pl.col("loan_id") == loan_id).collect()
    if loans.height == 0:
        raise KeyError(f"unknown loan id {loan_id!r}")
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
        "borrower": _party(store, loan["borrower_id"]),
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
