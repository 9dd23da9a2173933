"""One account for an analyst: owner, linked parties, money in and out, counterparties, alerts.

Inflow counts transfers in **and loan disbursements credited to the account** (marked:
``disbursed`` in the totals and per day, counterparty ``kind: "loan"``), so an account
that received a loan shows it. Every total is summed exactly (Int128, see
:func:`flowgraph.core.values.money_sum`) and written as a decimal string: twelve amounts of
9,999,999,999,999,999.99 add up to 119,999,999,999,999,999.88, never to a wrapped
negative number.
"""

from __future__ import annotations

import polars as pl

from flowgraph.core.errors import NotFound
from flowgraph.core.values import format_amount, money_sum
from flowgraph.graph.party_links import chain_text, load_party_graph, party_row
from flowgraph.rules.alerts import alert_json, read_alerts
from flowgraph.store.embedded import Store


def _alerts_touching_account(store: Store, account_id: str) -> list[dict]:
    """Alerts whose disbursement account or any path hop is the account."""
    out = []
    for r in read_alerts(store).iter_rows(named=True):
        hops = (h for p in r["paths"] or [] for h in p["hops"])
        if r["account"] == account_id or any(account_id in (h["src"], h["dst"]) for h in hops):
            out.append(alert_json(r))
    return out


def _movements(store: Store, account_id: str) -> pl.DataFrame:
    """Every movement of the account: (day, counterparty, kind, inflow, outflow, disbursed,
    is_tx), one row per transfer and per disbursement credited to it."""
    zero = pl.lit(0, pl.Int64)
    tx = (
        store.scan("transactions")
        .filter((pl.col("src_account") == account_id) | (pl.col("dst_account") == account_id))
        .select(
            "ts",
            pl.when(pl.col("src_account") == account_id).then(pl.col("dst_account")).otherwise(pl.col("src_account")).alias("counterparty"),
            pl.lit("account").alias("kind"),
            # a self-transfer is both in and out
            pl.when(pl.col("dst_account") == account_id).then(pl.col("amount")).otherwise(zero).alias("inflow"),
            pl.when(pl.col("src_account") == account_id).then(pl.col("amount")).otherwise(zero).alias("outflow"),
            zero.alias("disbursed"),
            pl.lit(True).alias("is_tx"),
        )
    )
    disb = (
        store.scan("disbursements")
        .filter(pl.col("account_id") == account_id)
        .select(
            "ts", pl.col("loan_id").alias("counterparty"), pl.lit("loan").alias("kind"),
            pl.col("amount").alias("inflow"), zero.alias("outflow"), pl.col("amount").alias("disbursed"),
            pl.lit(False).alias("is_tx"),
        )
    )
    day = pl.from_epoch("ts", time_unit="ms").dt.date().cast(pl.Utf8).alias("day")
    return pl.concat([tx, disb]).with_columns(day).collect()


def account_summary(store: Store, account_id: str, top: int = 10) -> dict:
    """Owner, linked parties, daily inflow/outflow, top counterparties, alerts touching it.

    Raises :class:`~flowgraph.core.errors.NotFound` when the account appears nowhere in
    the store (accounts, transactions, disbursements).
    """
    acc = store.scan("accounts").filter(pl.col("account_id") == account_id).collect()
    moves = _movements(store, account_id)
    if acc.height == 0 and moves.height == 0:
        raise NotFound(f"unknown account {account_id!r}")
    owner_id = acc["owner_id"][0] if acc.height else None
    graph = load_party_graph(store, [owner_id], 1) if owner_id else None
    linked = graph.linked_parties([owner_id], 1) if graph else {}
    sums = [money_sum(pl.col(c)).alias(c) for c in ("inflow", "outflow", "disbursed")]
    flows = moves.group_by("day").agg(*sums, pl.col("is_tx").sum().alias("transactions")).sort("day")
    totals = moves.select(*sums)
    counter = (
        moves.group_by("counterparty", "kind")
        .agg(money_sum(pl.col("inflow")).alias("received"), money_sum(pl.col("outflow")).alias("sent"), pl.len().alias("n"))
        .with_columns((pl.col("received") + pl.col("sent")).alias("total"))
        .sort(["total", "counterparty"], descending=[True, False])
        .head(top)
    )
    n_tx = int(moves["is_tx"].sum())
    return {
        "account_id": account_id,
        "account": acc.row(0, named=True) if acc.height else None,
        "owner": party_row(store, owner_id),
        "linked_parties": [
            {"party_id": p, "chain": chain_text(c)} for p, c in linked.items() if p != owner_id
        ],
        "totals": {
            "inflow": format_amount(totals["inflow"][0] or 0),
            "outflow": format_amount(totals["outflow"][0] or 0),
            # the part of the inflow that came from loan disbursements
            "disbursed": format_amount(totals["disbursed"][0] or 0),
            "transactions": n_tx,
            "disbursements": moves.height - n_tx,
        },
        "by_day": [
            {"day": r["day"], "inflow": format_amount(r["inflow"]), "outflow": format_amount(r["outflow"]),
             "disbursed": format_amount(r["disbursed"]), "transactions": r["transactions"]}
            for r in flows.iter_rows(named=True)
        ],
        "top_counterparties": [
            # a loan's disbursement credits show as counterparty kind "loan"; "transactions"
            # counts the movements (transfers, or disbursements of that loan)
            {"account": r["counterparty"] if r["kind"] == "account" else None,
             "loan": r["counterparty"] if r["kind"] == "loan" else None, "kind": r["kind"],
             "received": format_amount(r["received"]), "sent": format_amount(r["sent"]), "transactions": r["n"]}
            for r in counter.iter_rows(named=True)
        ],
        "alerts": _alerts_touching_account(store, account_id),
    }
