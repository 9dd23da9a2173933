"""TODO docstring."""

from __future__ import annotations

import polars as pl

from flowgraph.core.errors import NotFound
from flowgraph.core.values import format_amount
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



def account_summary(store: Store, account_id: str, top: int = 10) -> dict:
    """Owner, linked parties, daily inflow/outflow, top counterparties, alerts touching it.

    Raises ``KeyError`` when the account appears nowhere in the store.
    """
    acc = store.scan("accounts").filter(pl.col("account_id") == account_id).collect()
    tx = store.scan("transactions").filter(
        (pl.col("src_account") == account_id) | (pl.col("dst_account") == account_id)
    ).select("tx_id", "ts", "src_account", "dst_account", "amount").collect()
    if acc.height == 0 and tx.height == 0:
        raise NotFound(f"unknown account {account_id!r}")
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
        "owner": party_row(store, owner_id),
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
