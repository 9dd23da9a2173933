"""What the workbench pages show, as plain data (no HTTP here): the alert queue with its
filters, the alert page (alert, case, flow-back paths, forward flow and the graph to draw),
loan, account and portfolio pages. Masking is applied by the caller (one place, by role).

>>> graph_elements({"account": "D", "ts": "2024-01-01T00:00:00.000Z", "params": {"window_days": 1.0},
...                 "edges": [{"tx_id": "T1", "src": "D", "dst": "X", "ts": "2024-01-01T06:00:00.000Z",
...                            "amount": "10.00", "hop": 1, "marks": []}],
...                 "accounts": [{"account": "D", "hop": 0, "borrower_side": True, "prohibited": False},
...                              {"account": "X", "hop": 1, "borrower_side": False, "prohibited": False}]},
...                [])["nodes"][1]["position"]
{'x': 170.0, 'y': 160.0}
"""

from __future__ import annotations

from datetime import date

from flowgraph.core.errors import NotFound
from flowgraph.core.values import format_ts, parse_ts
from flowgraph.investigate import cases
from flowgraph.store.embedded import Store

QUEUE_FILTERS = ("level", "rule", "branch", "status", "assignee", "since", "until", "firing")
QUEUE_LIMIT = 500
X_STEP, Y_STEP = 170.0, 120.0  # graph layout: column per arrival, row per hop (px)


# ------------------------------------------------------------------ queue
def queue(store: Store, filters: dict[str, str | None]) -> dict:
    """Alerts with their case status, filtered; plus the values each filter can take.

    ``filters``: level, rule, branch (of the loan), status (of the case), assignee
    (``-`` = unassigned), since / until (as-of day, inclusive), firing (new / repeat).
    """
    rows = cases.alerts_with_cases(store)
    loans = store.read("loans", ["loan_id", "branch"])
    branch_of = dict(zip(loans["loan_id"].to_list(), loans["branch"].to_list(), strict=True))
    for r in rows:
        r["branch"] = branch_of.get(r["loan_id"])
    options = {
        "level": ["high", "medium", "low"],
        "rule": sorted({r["rule_id"] for r in rows}),
        "branch": sorted({r["branch"] for r in rows if r["branch"]}),
        "status": list(cases.STATUSES),
        "assignee": sorted({r["assignee"] for r in rows if r["assignee"]}),
        "firing": ["new", "repeat"],
    }
    f = {k: (v or None) for k, v in filters.items() if k in QUEUE_FILTERS}
    for day in ("since", "until"):
        if f.get(day):
            try:
                date.fromisoformat(f[day])
            except ValueError:
                raise NotFound(f"{day}: not a date YYYY-MM-DD: {f[day]!r}") from None

    def keep(r: dict) -> bool:
        return (
            (not f.get("level") or r["level"] == f["level"])
            and (not f.get("rule") or r["rule_id"] == f["rule"])
            and (not f.get("branch") or r["branch"] == f["branch"])
            and (not f.get("status") or r["status"] == f["status"])
            and (not f.get("assignee") or (r["assignee"] or "-") == f["assignee"])
            and (not f.get("since") or r["as_of"] >= f["since"])
            and (not f.get("until") or r["as_of"] <= f["until"])
            and (not f.get("firing") or (r["repeat"] == (f["firing"] == "repeat")))
        )

    hits = [r for r in rows if keep(r)]
    return {"rows": hits[:QUEUE_LIMIT], "total": len(hits), "limit": QUEUE_LIMIT,
            "filters": {k: f.get(k) or "" for k in QUEUE_FILTERS}, "options": options}  # fmt: skip


# ------------------------------------------------------------------ alert page
def alert_page(store: Store, alert_id: str, pack=None) -> dict:
    """The alert with its case, the forward flow of its disbursement and the graph."""
    from flowgraph.investigate.flow import forward_flow_loans

    alert = cases.show_alert(store, alert_id)
    flow = None
    if alert.get("loan_id"):
        recs = forward_flow_loans(store, [alert["loan_id"]], pack)
        flow = next((r for r in recs if r["disbursement_id"] == alert["disbursement_id"]), None)
    graph = graph_elements(flow, alert.get("paths") or []) if flow else {"nodes": [], "edges": [], "t0": 0, "t1": 0}
    accounts = [n["data"]["account"] for n in graph["nodes"]]
    return {"alert": alert, "flow": flow, "graph": graph, "accounts": accounts}


def graph_elements(flow: dict, paths: list[dict]) -> dict:
    """Cytoscape elements drawn by time: accounts left to right in the order money first
    reached them (the disbursement account first), one row per hop; each label says when;
    edges carry ts (for the time slider), amount, hop and marks. Node ids are positions
    (``n0``…), never account ids: masked ids must not merge two accounts."""
    t0 = parse_ts(flow["ts"])
    alert_tx = {h["tx_id"] for p in paths for h in p["hops"]}
    edges = list(flow["edges"])
    known = {e["tx_id"] for e in edges}
    for p in paths:  # alert paths are in the forward flow; keep any that a cap cut away
        for h in p["hops"]:
            if h["tx_id"] not in known:
                edges.append(h | {"hop": None, "marks": ["flow_back"]})
                known.add(h["tx_id"])
    arrive = {flow["account"]: t0}
    for e in sorted(edges, key=lambda e: (e["ts"], e["tx_id"])):
        arrive.setdefault(e["dst"], parse_ts(e["ts"]))
        arrive.setdefault(e["src"], parse_ts(e["ts"]))
    t1 = max([t0 + 1, *(parse_ts(e["ts"]) for e in edges)])
    info = {a["account"]: a for a in flow.get("accounts", [])}
    order = sorted(arrive, key=lambda a: (arrive[a], a != flow["account"], a))
    node_id = {a: f"n{i}" for i, a in enumerate(order)}
    hop_of = {a: info.get(a, {}).get("hop") for a in order}
    nodes = []
    for i, a in enumerate(order):
        meta = info.get(a, {})
        classes = [c for c, on in (("origin", a == flow["account"]), ("borrower", meta.get("borrower_side")),
                                   ("prohibited", meta.get("prohibited"))) if on]  # fmt: skip
        hop = hop_of[a] if hop_of[a] is not None else max([0, *(h for h in hop_of.values() if h is not None)]) + 1
        nodes.append({
            "data": {"id": node_id[a], "account": a, "label": f"{a}\n{format_ts(arrive[a])[5:16].replace('T', ' ')}",
                     "arrive": arrive[a], "hop": meta.get("hop"), "category": meta.get("category") or "", "index": i},
            # left to right in order of arrival (evenly spaced, so a burst of transfers in
            # one hour stays readable next to a return weeks later); one row per hop
            "position": {"x": X_STEP * i, "y": Y_STEP * hop + (Y_STEP / 3) * (i % 2)},
            "classes": " ".join(classes),
        })
    out_edges = []
    for e in sorted(edges, key=lambda e: (e["ts"], e["tx_id"])):
        marks = set(e.get("marks") or [])
        if e["tx_id"] in alert_tx:
            marks.add("alert")
        out_edges.append({
            "data": {"id": f"e{len(out_edges)}", "source": node_id[e["src"]], "target": node_id[e["dst"]],
                     "tx_id": e["tx_id"], "ts": parse_ts(e["ts"]), "when": e["ts"], "amount": e["amount"],
                     "hop": e.get("hop"), "label": e["amount"]},
            "classes": " ".join(sorted(marks)),
        })
    return {"nodes": nodes, "edges": out_edges, "t0": t0, "t1": t1}


def account_at(page: dict, index: int) -> str:
    """The real account id of node ``index`` of an alert page's graph (for links from a
    masked graph: the browser never learns the id)."""
    try:
        return page["accounts"][index]
    except IndexError:
        raise NotFound(f"no account #{index} on this alert's graph") from None


# ------------------------------------------------------------------ dashboard
def dashboard(store: Store, start: date | None = None, end: date | None = None, by: str = "month") -> dict:
    """The portfolio report (as ``report --json``) with its charts as inline SVG."""
    from flowgraph.investigate.report import charts, report_data, select

    data = report_data(store, start, end, by)
    sel = select(store, start, end)
    svgs = charts(sel) if sel.disb.height else {}
    counts = {s: 0 for s in cases.STATUSES}
    ids = read_ids(store)
    for c in cases.cases_of(store, ids).values():
        counts[c["status"]] += 1
    return {"report": data, "charts": svgs, "case_counts": counts}


def read_ids(store: Store) -> list[str]:
    from flowgraph.rules.alerts import read_alerts

    return read_alerts(store).get_column("alert_id").to_list()


__all__ = ["queue", "alert_page", "graph_elements", "account_at", "dashboard"]
