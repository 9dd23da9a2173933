"""Evidence bundles: everything an auditor needs about one alert or loan, in one folder.

``write_evidence(store, target, out_dir, generated_by=...)`` writes::

    report.html     self-contained report (inline CSS and SVG, no script, no URL)
    evidence.json   trace records (``flowgraph trace --json``), alerts (``alerts --json``),
                    numbered paths, linked-party chains, rules and trace parameters, and
                    the forward flow records (``flowgraph flow --json``)
    hops.csv        one row per hop with its path number
    flow.csv        the forward flow (资金流向) of each disbursement: one row per transfer
                    with its fewest hop and marks (``flowgraph flow --json``'s edges)
    evidence.xlsx   sheets summary, paths, hops, accounts, links, forward flow
    graph.graphml   accounts as nodes, transactions as edges (networkx MultiDiGraph)
    manifest.json   SHA-256 of every other file, rule pack, snapshot id, parameters,
                    generator and who generated it — written last

The folder is built beside ``out_dir`` and swapped into place, so a reader never sees a
half-written bundle; ``out_dir`` must be new, empty or a previous bundle, and outside any
store. Every file is a deterministic function of the store snapshot and what the manifest
records (target, alert partitions, trace options, rule pack hash, masking, who and when —
the XLSX creation time is ``generated_at``), so :func:`verify_evidence` regenerates the
whole bundle and compares it byte for byte: a file edited and re-hashed is caught by name.

Privacy: account and party ids are masked in every file unless ``unmasked=True``
(recorded in the manifest), with the masks of :mod:`flowgraph.security.masking`.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import shutil
import tempfile
from datetime import UTC, date, datetime
from pathlib import Path

import networkx as nx
import polars as pl

from flowgraph import __version__
from flowgraph.core.errors import EvidenceError
from flowgraph.core.files import replace_directory, sha256_file
from flowgraph.core.values import format_amount_grouped, parse_amount, parse_ts
from flowgraph.engine.flow_back import FlowBackParams
from flowgraph.graph.party_links import chain_text, load_party_graph
from flowgraph.investigate.trace import trace_loans
from flowgraph.rules.alerts import alert_json, read_alerts
from flowgraph.rules.kinds.flow_back import TraceOptions, options_from_pack
from flowgraph.rules.model import RulePack
from flowgraph.rules.pack import load_pack
from flowgraph.security.masking import (
    MASK_RULE,
    apply_mask,
    id_mapping,
    known_ids,
    transaction_endpoints,
)
from flowgraph.store.embedded import Store
from flowgraph.store.outputs import check_output_dir

BUNDLE_FORMAT = "flowgraph-evidence/2"  # 2: forward flow (flow.csv, evidence.json, xlsx, html)
FLOW_MAX_EDGES = 10_000  # forward-flow transfers kept per disbursement in a bundle (fewest hops first)
MANIFEST = "manifest.json"
FILES = ("report.html", "evidence.json", "hops.csv", "flow.csv", "evidence.xlsx", "graph.graphml")



def _resolve_target(store: Store, target: str) -> tuple[str, str, pl.DataFrame]:
    """(kind, loan_id, alerts) for an alert id (or a unique prefix of 8+ characters) or a loan id."""
    alerts = read_alerts(store)
    hit = alerts.filter(pl.col("alert_id") == target)
    if hit.height == 0 and len(target) >= 8:
        hit = alerts.filter(pl.col("alert_id").str.starts_with(target))
        if hit.height > 1:
            raise EvidenceError(f"alert id prefix {target!r} is ambiguous ({hit.height} alerts)")
    if hit.height == 1:
        return "alert", hit["loan_id"][0], hit
    loans = store.read("loans", ["loan_id"])["loan_id"].to_list()
    if target in loans:
        return "loan", target, alerts.filter(pl.col("loan_id") == target)
    raise EvidenceError(f"{target!r} is neither an alert id nor a loan id of the store")


def _options_json(options: dict[str, TraceOptions]) -> dict:
    return {mode: o.as_dict() for mode, o in options.items()}


def options_from_json(d: dict) -> dict[str, TraceOptions]:
    """Inverse of the manifest's ``trace.options``: payment mode → :class:`TraceOptions`."""
    out = {}
    for mode, o in d.items():
        o = dict(o)
        depth = o.pop("link_depth")
        types = tuple(o.pop("relation_types"))
        out[mode] = TraceOptions(params=FlowBackParams(**o), link_depth=depth, relation_types=types)
    return out


def _rule_json(rule) -> dict:
    d = rule.as_dict()
    d.pop("path", None)  # a local file path says nothing to a third party
    d["payment_modes"] = list(d["payment_modes"])
    d["params"] = {k: list(v) if isinstance(v, tuple) else v for k, v in d["params"].items()}
    return d


def _gather(
    store: Store, loan_id: str, alerts: pl.DataFrame, options: dict[str, TraceOptions],
    pack: RulePack | None,
) -> dict:
    """The unmasked bundle data (records, alerts, numbered paths, chains, rules)."""
    loans = store.read("loans", ["loan_id", "payment_mode"]).filter(pl.col("loan_id") == loan_id)
    mode = (loans["payment_mode"][0] if loans.height else None) or "self"
    records = trace_loans(store, [loan_id], options)
    alert_rows = [alert_json(r) for r in alerts.sort("rule_id", "alert_id").iter_rows(named=True)]
    opts = options[mode]
    graph = load_party_graph(store, [r["borrower_id"] for r in records], opts.link_depth)

    paths: list[dict] = []
    seen: set[tuple] = set()
    for r in records:
        for p in r["paths"]:
            key = tuple(h["tx_id"] for h in p["hops"])
            seen.add(key)
            paths.append({"path": len(paths) + 1, "source": "trace", "disbursement_id": r["disbursement_id"], "rule_id": None, "hops": p["hops"]})
    for a in alert_rows:
        for p in a["paths"]:
            key = tuple(h["tx_id"] for h in p["hops"])
            if key in seen:
                continue
            seen.add(key)
            paths.append({"path": len(paths) + 1, "source": "alert", "disbursement_id": a["disbursement_id"], "rule_id": a["rule_id"], "hops": p["hops"]})

    chains: list[dict] = []
    done: set[str] = set()
    for r in records:
        if not r["borrower_id"]:
            continue
        # the chain as it stood at the disbursement: relations valid then, as the trace used
        linked = graph.linked_accounts([r["borrower_id"]], opts.link_depth, opts.relation_types, at=parse_ts(r["ts"]))
        # a path without hops (a repayment straight from the disbursement account) ends nowhere new
        ends = [p["hops"][-1]["dst"] for p in paths if p["disbursement_id"] == r["disbursement_id"] and p["hops"]]
        for acct in dict.fromkeys(ends):
            if acct in linked and acct not in done:
                done.add(acct)
                chains.append({"account": acct, "borrower_id": r["borrower_id"], "steps": linked[acct], "text": chain_text(linked[acct])})

    rules = []
    if pack is not None:
        wanted = [a["rule_id"] for a in alert_rows] + [
            r.id for r in pack.of_kind("flow_back") if mode in r.payment_modes
        ]
        for rid in dict.fromkeys(wanted):
            try:
                rules.append(_rule_json(pack.rule(rid)))
            except KeyError:
                pass
    from flowgraph.investigate.flow import forward_flow_loans

    flows = forward_flow_loans(store, [loan_id], pack, options=options, max_edges=FLOW_MAX_EDGES)
    return {"payment_mode": mode, "records": records, "alerts": alert_rows, "paths": paths, "chains": chains,
            "rules": rules, "forward_flow": flows}


def _path_ends(hops: list[dict]) -> dict:
    """First and last hop of a path for the paths sheet (empty for a path without hops)."""
    if not hops:
        return {"start": None, "end": None, "first_ts": None, "last_ts": None, "last_amount": None}
    return {"start": hops[0]["src"], "end": hops[-1]["dst"], "first_ts": hops[0]["ts"],
            "last_ts": hops[-1]["ts"], "last_amount": parse_amount(hops[-1]["amount"]) / 100}


def _masked(data: dict, known: set[str], store: Store) -> tuple[dict, dict[str, str]]:
    """The bundle data with every account and party id masked (one mapping for all files)."""
    mapping = id_mapping(data, known, (), lambda words: transaction_endpoints(store, words))
    return apply_mask(data, mapping), mapping


# ------------------------------------------------------------------ rendering
def _amount(text: str | None) -> str:
    return "" if text is None else format_amount_grouped(parse_amount(text))


def _short_ts(text: str | None) -> str:
    return "" if not text else text[:16].replace("T", " ")


PALETTE = ("#c0392b", "#2471a3", "#1e8449", "#b9770e", "#7d3c98", "#148f77", "#a04000", "#2e4053")


def _layout(data: dict) -> dict:
    """Lanes (one per account) and columns (one per transfer, in time order) for the SVG."""
    rec = data["records"][0] if data["records"] else None
    hops: dict[str, dict] = {}
    for p in data["paths"]:
        for h in p["hops"]:
            e = hops.setdefault(h["tx_id"], {**h, "paths": []})
            e["paths"].append(p["path"])
    events = sorted(hops.values(), key=lambda h: (parse_ts(h["ts"]), h["tx_id"]))
    ends = {c["account"] for c in data["chains"]}
    lanes: list[str] = []
    start_accounts = [r["account"] for r in data["records"]] + [a["account"] for a in data["alerts"]]
    for a in start_accounts:
        if a and a not in lanes:
            lanes.append(a)
    for h in events:
        for a in (h["src"], h["dst"]):
            if a not in lanes:
                lanes.append(a)
    # accounts where money came back go last, so the eye ends on them
    starts = set(start_accounts)
    lanes = [a for a in lanes if a not in ends or a in starts] + [a for a in lanes if a in ends and a not in starts]
    left, top, col_w, lane_h = 190, 70, 150, 70
    x0 = left + 40
    lane_y = {a: top + i * lane_h for i, a in enumerate(lanes)}
    cols = []
    x = x0
    prev_w = col_w - 22
    for h in events:
        paths = ", ".join(f"P{n}" for n in h["paths"])
        label_w = max(128, round(6.2 * (len(h["tx_id"]) + 3 + len(paths)) + 12))
        x += max(col_w, prev_w + 22)
        prev_w = label_w
        y1, y2 = lane_y[h["src"]], lane_y[h["dst"]]
        down = y2 >= y1
        color = PALETTE[(h["paths"][0] - 1) % len(PALETTE)]
        cols.append({
            "x": x, "y1": y1 + (6 if down else -6), "y2": y2 - (8 if down else -8),
            "ymid": (y1 + y2) / 2, "color": color,
            "amount": _amount(h["amount"]), "when": _short_ts(h["ts"]), "tx_id": h["tx_id"],
            "paths": paths, "label_w": label_w,
        })
    last_x = {a: x0 for a in lanes}
    first_x = {a: (x0 if a in start_accounts else None) for a in lanes}
    for c, h in zip(cols, events, strict=True):
        for a in (h["src"], h["dst"]):
            last_x[a] = max(last_x[a], c["x"])
            first_x[a] = c["x"] if first_x[a] is None else min(first_x[a], c["x"])
    roles = {}
    for a in lanes:
        if a in ends:
            roles[a] = "returned"
        elif a in starts:
            roles[a] = "disbursed"
        else:
            roles[a] = "intermediate"
    tags = {a: " · ".join(t for t, on in (("disbursed", a in starts), ("returned", a in ends)) if on) for a in lanes}
    width = (x + prev_w + 30) if events else x0 + 2 * col_w
    height = top + max(len(lanes), 1) * lane_h + 40
    return {
        "width": width, "height": height, "left": left, "x0": x0,
        "lanes": [
            {"account": a, "y": lane_y[a], "x1": first_x[a] or x0, "x2": last_x[a], "role": roles[a], "tag": tags[a]}
            for a in lanes
        ],
        "cols": cols,
        "disbursement": None if rec is None else {
            "x": x0, "y": lane_y.get(rec["account"], top), "amount": _amount(rec["amount"]),
            "when": _short_ts(rec["ts"]),
        },
        "legend": [
            {"path": p["path"], "color": PALETTE[(p["path"] - 1) % len(PALETTE)], "hops": len(p["hops"]),
             "source": p["source"] if p["source"] == "trace" else f"alert {p['rule_id']}"}
            for p in data["paths"]
        ],
    }


def _render_html(doc: dict, summary: dict) -> str:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
    )
    env.filters["amount"] = _amount
    env.filters["short_ts"] = _short_ts
    return env.get_template("report.html.j2").render(doc=doc, summary=summary, layout=_layout(doc))


def _hop_rows(doc: dict) -> list[dict]:
    return [
        {"path": p["path"], "hop": i, "source": p["source"], "disbursement_id": p["disbursement_id"],
         "tx_id": h["tx_id"], "from": h["src"], "to": h["dst"], "ts": h["ts"], "amount": h["amount"]}
        for p in doc["paths"] for i, h in enumerate(p["hops"], 1)
    ]


FLOW_COLUMNS = ["disbursement_id", "hop", "tx_id", "from", "to", "ts", "amount", "marks"]


def _flow_rows(doc: dict) -> list[dict]:
    return [
        {"disbursement_id": f["disbursement_id"], "hop": e["hop"], "tx_id": e["tx_id"], "from": e["src"],
         "to": e["dst"], "ts": e["ts"], "amount": e["amount"], "marks": ";".join(e["marks"])}
        for f in doc["forward_flow"] for e in f["edges"]
    ]


def _csv(rows: list[dict], columns: list[str]) -> bytes:
    buf = io.StringIO()
    w = csv.DictWriter(buf, columns, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue().encode()


def _account_rows(doc: dict) -> list[dict]:
    chains = {c["account"]: c["text"] for c in doc["chains"]}
    acc: dict[str, dict] = {}
    for row in _hop_rows(doc):
        amt = parse_amount(row["amount"])
        for a in (row["from"], row["to"]):
            e = acc.setdefault(a, {"account": a, "first_seen": row["ts"], "last_seen": row["ts"], "in": 0, "out": 0})
            e["first_seen"], e["last_seen"] = min(e["first_seen"], row["ts"]), max(e["last_seen"], row["ts"])
        acc[row["from"]]["out"] += amt
        acc[row["to"]]["in"] += amt
    disbursed = {r["account"] for r in doc["records"]}
    rows = []
    for a, e in acc.items():
        role = "returned" if a in chains else "disbursed" if a in disbursed else "intermediate"
        rows.append({
            "account": a, "role": role, "first_seen": e["first_seen"], "last_seen": e["last_seen"],
            "received": e["in"] / 100, "sent": e["out"] / 100, "chain": chains.get(a, ""),
        })
    return sorted(rows, key=lambda r: (r["first_seen"], r["account"]))


def _xlsx(doc: dict, summary: dict) -> bytes:
    """The workbook's bytes: a function of ``doc`` and ``summary`` only (its creation time
    is the bundle's ``generated_at``), so a bundle can be regenerated byte for byte."""
    import xlsxwriter

    hops = _hop_rows(doc)
    frames = {
        "summary": pl.DataFrame(
            {"field": list(summary), "value": [json.dumps(v) if isinstance(v, list | dict) else ("" if v is None else str(v)) for v in summary.values()]},
            schema={"field": pl.Utf8, "value": pl.Utf8},
        ),
        "paths": pl.DataFrame(
            [{"path": p["path"], "source": p["source"], "rule_id": p["rule_id"] or "", "disbursement_id": p["disbursement_id"],
              "hops": len(p["hops"]), **_path_ends(p["hops"])} for p in doc["paths"]],
            schema={"path": pl.Int64, "source": pl.Utf8, "rule_id": pl.Utf8, "disbursement_id": pl.Utf8, "hops": pl.Int64,
                    "start": pl.Utf8, "end": pl.Utf8, "first_ts": pl.Utf8, "last_ts": pl.Utf8, "last_amount": pl.Float64},
        ),
        "hops": pl.DataFrame(
            [{**h, "amount": parse_amount(h["amount"]) / 100} for h in hops],
            schema={"path": pl.Int64, "hop": pl.Int64, "source": pl.Utf8, "disbursement_id": pl.Utf8, "tx_id": pl.Utf8,
                    "from": pl.Utf8, "to": pl.Utf8, "ts": pl.Utf8, "amount": pl.Float64},
        ),
        "accounts": pl.DataFrame(
            _account_rows(doc),
            schema={"account": pl.Utf8, "role": pl.Utf8, "first_seen": pl.Utf8, "last_seen": pl.Utf8,
                    "received": pl.Float64, "sent": pl.Float64, "chain": pl.Utf8},
        ),
        "links": pl.DataFrame(
            [{"account": c["account"], "borrower_id": c["borrower_id"], "step": i,
              "relation": s.get("relation") or ("owns" if "owns" in s else "borrower"),
              "party_or_account": s.get("party") or s.get("owns"), "chain": c["text"]}
             for c in doc["chains"] for i, s in enumerate(c["steps"])],
            schema={"account": pl.Utf8, "borrower_id": pl.Utf8, "step": pl.Int64, "relation": pl.Utf8,
                    "party_or_account": pl.Utf8, "chain": pl.Utf8},
        ),
        "forward flow": pl.DataFrame(
            [{**r, "amount": parse_amount(r["amount"]) / 100} for r in _flow_rows(doc)],
            schema={"disbursement_id": pl.Utf8, "hop": pl.Int64, "tx_id": pl.Utf8, "from": pl.Utf8, "to": pl.Utf8,
                    "ts": pl.Utf8, "amount": pl.Float64, "marks": pl.Utf8},
        ),
    }
    buf = io.BytesIO()
    with xlsxwriter.Workbook(buf, {"in_memory": True}) as wb:
        wb.set_properties({"created": datetime.fromisoformat(summary["generated_at"].replace("Z", "+00:00")),
                           "title": f"flowgraph evidence {summary['target']}"})
        for name, df in frames.items():
            df.write_excel(wb, worksheet=name, float_precision=2, autofit=True, table_style="Table Style Light 9")
    return buf.getvalue()


def _graphml(doc: dict) -> bytes:
    g = nx.MultiDiGraph(loan_id=doc["target"]["loan_id"], target=doc["target"]["id"], snapshot_id=doc["snapshot_id"])
    roles = {r["account"]: r["role"] for r in _account_rows(doc)}
    for a, role in roles.items():
        g.add_node(a, label=a, role=role)
    for p in doc["paths"]:
        for i, h in enumerate(p["hops"], 1):
            if g.has_edge(h["src"], h["dst"], key=h["tx_id"]):
                d = g.edges[h["src"], h["dst"], h["tx_id"]]
                d["paths"] += f",{p['path']}"
                continue
            g.add_edge(h["src"], h["dst"], key=h["tx_id"], tx_id=h["tx_id"], ts=h["ts"],
                       ts_ms=parse_ts(h["ts"]), amount=h["amount"],
                       amount_value=parse_amount(h["amount"]) / 100, paths=str(p["path"]), hop=i)
    buf = io.BytesIO()
    nx.write_graphml(g, buf)
    return buf.getvalue()


def _manifest_hash(manifest: dict) -> str:
    """SHA-256 of the manifest's canonical JSON without this field (catches edits and
    damage to the manifest itself; it is a checksum, not a signature)."""
    body = {k: v for k, v in manifest.items() if k != "manifest_sha256"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()).hexdigest()


def _dumps(obj) -> bytes:
    return (json.dumps(obj, indent=2, ensure_ascii=False) + "\n").encode()


# ------------------------------------------------------------------ building a bundle
def is_bundle(folder: Path) -> bool:
    """True when ``folder`` holds an evidence bundle's manifest (what ``--out`` may replace)."""
    try:
        m = json.loads((Path(folder) / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(m, dict) and m.get("format") == BUNDLE_FORMAT


def _now_ms() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _build(
    store: Store, kind: str, target_id: str, loan_id: str, alerts: pl.DataFrame,
    options: dict[str, TraceOptions], pack: RulePack, unmasked: bool, generated_by: str,
    generated_at: str,
) -> tuple[dict[str, bytes], dict]:
    """Every file of the bundle as bytes, and the manifest: a function of the store's
    snapshot, the alerts, the options, the pack and the four recorded values only."""
    snapshot = store.snapshot_id
    data = _gather(store, loan_id, alerts, options, pack)
    if not unmasked:
        data, _ = _masked(data, known_ids(store), store)
    alert_ids = sorted(a["alert_id"] for a in data["alerts"])
    notes = [f"an alert was scored with rule pack hash {h}, not {pack.hash}"
             for h in sorted({a["ruleset_hash"] for a in data["alerts"]} - {pack.hash})]
    doc = {
        "format": BUNDLE_FORMAT,
        "target": {"kind": kind, "id": target_id, "loan_id": loan_id, "alert_ids": alert_ids},
        "masked": not unmasked,
        "snapshot_id": snapshot,
        "ruleset": {"id": pack.id, "version": pack.version, "hash": pack.hash},
        "payment_mode": data["payment_mode"],
        "trace_options": _options_json(options),
        **{k: data[k] for k in ("records", "alerts", "paths", "chains", "rules", "forward_flow")},
    }
    summary = {
        "target": target_id, "target_kind": kind, "loan_id": loan_id,
        "borrower_id": data["records"][0]["borrower_id"] if data["records"] else None,
        "payment_mode": data["payment_mode"], "alerts": alert_ids,
        "paths": len(data["paths"]), "hops": sum(len(p["hops"]) for p in data["paths"]),
        "returned_amount": data["records"][0]["returned_amount"] if data["records"] else None,
        "ruleset": f"{pack.id}@{pack.version}", "ruleset_hash": pack.hash, "snapshot_id": snapshot,
        "masked": not unmasked, "generated_by": generated_by, "generated_at": generated_at,
        "flowgraph_version": __version__,
    }
    files = {
        "report.html": _render_html(doc, summary).encode("utf-8"),
        "evidence.json": _dumps(doc),
        "hops.csv": _csv(_hop_rows(doc), ["path", "hop", "source", "disbursement_id", "tx_id", "from", "to", "ts", "amount"]),
        "flow.csv": _csv(_flow_rows(doc), FLOW_COLUMNS),
        "evidence.xlsx": _xlsx(doc, summary),
        "graph.graphml": _graphml(doc),
    }
    manifest = {
        "format": BUNDLE_FORMAT,
        "files": {n: {"sha256": hashlib.sha256(files[n]).hexdigest(), "bytes": len(files[n])} for n in FILES},
        "target": doc["target"],
        # the alert partitions the bundle was made from (a later re-score may move an
        # alert's latest as_of; verify reads these)
        "alerts": {r["alert_id"]: r["as_of"] for r in alerts.iter_rows(named=True)},
        "ruleset": doc["ruleset"],
        "snapshot_id": snapshot,
        "generator": {"name": "flowgraph", "version": __version__},
        "generated_by": generated_by,
        "generated_at": generated_at,
        "unmasked": unmasked,
        "masking": None if unmasked else MASK_RULE,
        "trace": {
            "function": "flowgraph.investigate.trace.trace_loans",
            "loan_ids": [loan_id],
            "payment_mode": data["payment_mode"],
            "options": doc["trace_options"],
            "data": "every transaction of the snapshot (not cut at an alert's as_of)",
        },
        "forward_flow": {
            "function": "flowgraph.investigate.flow.forward_flow_loans",
            "options": "the trace options above (window, hops, amount floor per payment mode)",
            "max_edges": FLOW_MAX_EDGES,
        },
        "rerun": "flowgraph --store STORE evidence verify BUNDLE_DIR",
        "notes": notes,
    }
    manifest["manifest_sha256"] = _manifest_hash(manifest)
    files[MANIFEST] = _dumps(manifest)
    return files, manifest


# ------------------------------------------------------------------ public API
def write_evidence(
    store: Store, target: str, out_dir: str | Path, *, pack: RulePack | None = None,
    unmasked: bool = False, generated_by: str, generated_at: str | None = None,
) -> dict:
    """Write the evidence bundle of an alert id (or unique 8+ character prefix) or loan id.

    Parameters
    ----------
    store : Store
    target : str
        An alert id from the alerts partitions, or a loan id.
    out_dir : path
        The bundle folder; built beside it and swapped into place (replacing it). It must
        be new, empty or a previous bundle, and outside any store
        (:func:`flowgraph.store.outputs.check_output_dir`).
    pack : RulePack, optional
        Rule pack giving the trace parameters (default: the shipped pack).
    unmasked : bool
        Keep account and party ids in clear (recorded in the manifest). The caller checks
        the permission (:func:`flowgraph.security.access.require`).
    generated_by : str
        Who generated the bundle (user or system name), recorded in the manifest.
    generated_at : str, optional
        The time recorded (default: now, UTC, ISO-8601 with milliseconds).

    Returns
    -------
    dict
        The manifest.

    Notes
    -----
    Every file is a deterministic function of the store's snapshot and what the manifest
    records, so :func:`verify_evidence` regenerates them and compares bytes.
    """
    final = check_output_dir(out_dir, "evidence bundle", is_bundle, [store.root])
    pack = pack or load_pack()
    kind, loan_id, alerts = _resolve_target(store, target)
    target_id = alerts["alert_id"][0] if kind == "alert" else loan_id
    files, manifest = _build(store, kind, target_id, loan_id, alerts, options_from_pack(pack), pack,
                             unmasked, generated_by, generated_at or _now_ms())
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.tmp-"))
    try:
        for name, data in files.items():
            (tmp / name).write_bytes(data)
        replace_directory(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest


def _path_key(p: dict) -> list[tuple]:
    return [(h["tx_id"], h["src"], h["dst"], h["ts"], h["amount"]) for h in p["hops"]]


def _compare(old: dict, new: dict) -> list[str]:
    """Differences between the bundle's evidence.json and a fresh run (same masking)."""
    problems = []
    old_recs = {r["disbursement_id"]: r for r in old.get("records", [])}
    new_recs = {r["disbursement_id"]: r for r in new["records"]}
    for d in sorted(old_recs.keys() | new_recs.keys()):
        o, n = old_recs.get(d), new_recs.get(d)
        if o is None or n is None:
            problems.append(f"disbursement {d}: {'not in the bundle' if o is None else 'no longer traced'}")
            continue
        op, np_ = o.get("paths", []), n["paths"]
        for i in range(max(len(op), len(np_))):
            if i >= len(op):
                problems.append(f"disbursement {d} path {i + 1}: new in the re-run ({' '.join(h['tx_id'] for h in np_[i]['hops'])})")
            elif i >= len(np_):
                problems.append(f"disbursement {d} path {i + 1}: missing from the re-run ({' '.join(h['tx_id'] for h in op[i]['hops'])})")
            elif _path_key(op[i]) != _path_key(np_[i]):
                problems.append(
                    f"disbursement {d} path {i + 1}: differs (bundle {' '.join(h['tx_id'] for h in op[i]['hops'])};"
                    f" re-run {' '.join(h['tx_id'] for h in np_[i]['hops'])})"
                )
        for k in ("returned_amount", "path_count", "return_ratio", "first_return_ts", "returned_to"):
            if o.get(k) != n.get(k):
                problems.append(f"disbursement {d}: {k} differs (bundle {o.get(k)!r}, re-run {n.get(k)!r})")
    old_alerts = {a["alert_id"]: a for a in old.get("alerts", [])}
    new_alerts = {a["alert_id"]: a for a in new["alerts"]}
    for aid in sorted(old_alerts.keys() | new_alerts.keys()):
        o, n = old_alerts.get(aid), new_alerts.get(aid)
        if o is None or n is None:
            problems.append(f"alert {aid}: {'not in the bundle' if o is None else 'no longer in the store'}")
            continue
        for k in ("score", "level", "returned_amount", "reasons"):
            if o.get(k) != n.get(k):
                problems.append(f"alert {aid}: {k} differs (bundle {o.get(k)!r}, store {n.get(k)!r})")
        if [_path_key(p) for p in o.get("paths", [])] != [_path_key(p) for p in n["paths"]]:
            problems.append(f"alert {aid}: paths differ")
    old_paths = {p["path"]: p for p in old.get("paths", [])}
    for p in new["paths"]:
        o = old_paths.get(p["path"])
        if o is None or _path_key(o) != _path_key(p):
            problems.append(f"path #{p['path']}: differs from the re-run")
    for n in sorted(set(old_paths) - {p["path"] for p in new["paths"]}):
        problems.append(f"path #{n}: missing from the re-run")
    if old.get("chains") != new["chains"]:
        problems.append("linked-party chains differ")
    return problems


def _bundle_alerts(store: Store, manifest: dict) -> tuple[pl.DataFrame | None, str | None]:
    """The alert rows the bundle was made from (from the partitions its manifest names),
    or (None, why) when the store no longer holds them."""
    recorded = manifest.get("alerts")
    ids = manifest["target"].get("alert_ids", [])
    if not isinstance(recorded, dict):  # a bundle written before partitions were recorded
        return read_alerts(store).filter(pl.col("alert_id").is_in(ids)), None
    frames = []
    for day in sorted(set(recorded.values())):
        want = sorted(a for a, d in recorded.items() if d == day)
        try:
            part = read_alerts(store, date.fromisoformat(day)).filter(pl.col("alert_id").is_in(want))
        except ValueError:
            return None, f"the manifest names an alert partition {day!r} that is not a date"
        if part.height != len(want):
            missing = sorted(set(want) - set(part["alert_id"].to_list()))
            return None, f"alert(s) {', '.join(missing)} of the partition date={day} are not in the store any more"
        frames.append(part)
    return (pl.concat(frames, how="vertical_relaxed") if frames else read_alerts(store).head(0)), None


def verify_evidence(store: Store, bundle_dir: str | Path, pack: RulePack | None = None) -> dict:
    """Check a bundle by regenerating every file from the snapshot it names.

    1. Each file against the manifest's SHA-256, and the manifest's own hash (quick, but
       whoever edits a file can re-hash it).
    2. When the store still holds the bundle's snapshot (and ``pack``, default the shipped
       one, has the bundle's rule-pack hash): every file — manifest included — is built
       again from that snapshot with the manifest's parameters, target, alerts, masking,
       ``generated_by`` and ``generated_at``, and compared byte for byte. A file edited and
       re-hashed fails here, by name; for ``evidence.json`` the differing paths and alerts
       are listed too.
    3. Otherwise the bundle cannot be re-verified: ``status`` is ``unverifiable`` and a
       note says why ("snapshot X is not available") — not a tamper alarm.

    Returns ``{"ok", "status" ("verified" | "differs" | "unverifiable"), "problems",
    "notes", ...}``; ``problems`` names every file that differs, is missing or is extra.
    """
    bundle = Path(bundle_dir)
    problems: list[str] = []
    notes: list[str] = []

    def result(status: str, **extra) -> dict:
        status = "differs" if problems else status
        return {"ok": status == "verified", "status": status, "problems": problems, "notes": notes, **extra}

    try:
        manifest = json.loads((bundle / MANIFEST).read_text(encoding="utf-8"))
        files = manifest["files"]
        target = manifest["target"]
        if not isinstance(files, dict) or not isinstance(target, dict):
            raise TypeError("files and target must be objects")
    except FileNotFoundError:
        problems.append(f"{MANIFEST}: missing")
        return result("differs")
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as e:
        problems.append(f"{MANIFEST}: unreadable ({e})")
        return result("differs")
    if manifest.get("manifest_sha256") != _manifest_hash(manifest):
        problems.append(f"{MANIFEST}: content differs from its manifest_sha256")
    for name, entry in sorted(files.items()):
        p = bundle / name
        if not p.is_file():
            problems.append(f"{name}: missing")
        elif not isinstance(entry, dict) or sha256_file(p) != entry.get("sha256"):
            problems.append(f"{name}: content differs from the manifest (sha256)")
    present = {p.name for p in bundle.iterdir()} - {MANIFEST}
    for name in sorted(present - set(files)):
        problems.append(f"{name}: extra file not in the manifest")

    snap, want = store.snapshot_id, manifest.get("snapshot_id")
    info = {"files_checked": len(files), "snapshot_id": snap, "bundle_snapshot_id": want}
    if snap != want:
        notes.append(f"cannot re-verify: snapshot {want} is not available (the store holds {snap});"
                     " only the file hashes were checked")
        return result("unverifiable", **info)
    pack = pack or load_pack()
    want_pack = (manifest.get("ruleset") or {}).get("hash")
    if pack.hash != want_pack:
        notes.append(f"cannot re-verify: rule pack {want_pack} is not available (given {pack.hash});"
                     " pass the pack the bundle was made with as --rules")
        return result("unverifiable", **info)
    alerts, why = _bundle_alerts(store, manifest)
    if alerts is None:
        notes.append(f"cannot re-verify: {why}")
        return result("unverifiable", **info)
    try:
        options = options_from_json(manifest["trace"]["options"])
        fresh, _ = _build(store, target["kind"], target["id"], target["loan_id"], alerts, options, pack,
                          bool(manifest.get("unmasked")), manifest["generated_by"], manifest["generated_at"])
    except (KeyError, TypeError, ValueError) as e:
        problems.append(f"{MANIFEST}: cannot rebuild the bundle from it ({type(e).__name__}: {e})")
        return result("differs", **info)
    for name in [*FILES, MANIFEST]:
        p = bundle / name
        if p.is_file() and p.read_bytes() != fresh[name]:
            problems.append(f"{name}: differs from the bundle regenerated from snapshot {snap}"
                            " (edited after it was written)")
            if name == "evidence.json":
                try:
                    old = json.loads(p.read_text(encoding="utf-8"))
                    problems.extend(f"evidence.json: {d}" for d in _compare(old, json.loads(fresh[name])))
                except (ValueError, UnicodeDecodeError, KeyError, TypeError, AttributeError):
                    pass
    return result("verified", **info, files_regenerated=len(FILES) + 1)


__all__ = ["write_evidence", "verify_evidence", "is_bundle", "EvidenceError", "options_from_json"]
