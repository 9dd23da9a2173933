"""Evidence bundles: everything an auditor needs about one alert or loan, in one folder.

``write_evidence(store, target, out_dir, generated_by=...)`` writes::

    report.html     self-contained report (inline CSS and SVG, no script, no URL)
    evidence.json   trace records (``flowgraph trace --json``), alerts (``alerts --json``),
                    numbered paths, linked-party chains, rules and trace parameters
    hops.csv        one row per hop with its path number
    evidence.xlsx   sheets summary, paths, hops, accounts, links
    graph.graphml   accounts as nodes, transactions as edges (networkx MultiDiGraph)
    manifest.json   SHA-256 of every other file, rule pack, snapshot id, parameters,
                    generator and who generated it — written last

The folder is built beside ``out_dir`` and swapped into place, so a reader never sees a
half-written bundle. :func:`verify_evidence` re-hashes the files and re-runs the trace
with the manifest's parameters.

Privacy: account and party ids are masked in every file unless ``unmasked=True``
(recorded in the manifest), with the masks of :mod:`flowgraph.security.masking`.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import shutil
import tempfile
from datetime import UTC, datetime
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
from flowgraph.security.masking import KEEP_KEYS, MASK_RULE, apply_mask, known_ids, mask_map
from flowgraph.store.embedded import Store

BUNDLE_FORMAT = "flowgraph-evidence/1"
MANIFEST = "manifest.json"
FILES = ("report.html", "evidence.json", "hops.csv", "evidence.xlsx", "graph.graphml")
_TOKEN = re.compile(r"[A-Za-z0-9_]+")



def _identifiers(data: dict, known: set[str]) -> set[str]:
    """Account and party ids in the bundle data: the id fields plus any token of free
    text (reasons, disbursement ids) that is a known account or party id of the store."""
    found: set[str] = set()

    def path_ids(paths):
        for p in paths or []:
            for h in p["hops"]:
                found.update((h["src"], h["dst"]))

    for r in data["records"]:
        found.update(x for x in (r["account"], r["borrower_id"]) if x)
        found.update(x["account"] for x in r["returned_to"])
        path_ids(r["paths"])
    for a in data["alerts"]:
        found.update(x for x in (a["account"], a["borrower_id"]) if x)
        path_ids(a["paths"])
    for c in data["chains"]:
        found.add(c["account"])
        for step in c["steps"]:
            found.update(v for k, v in step.items() if k in ("party", "owns"))

    def scan(obj, key=None):
        if isinstance(obj, dict):
            for k, v in obj.items():
                scan(v, k)
        elif isinstance(obj, list):
            for v in obj:
                scan(v, key)
        elif isinstance(obj, str) and key not in KEEP_KEYS:
            found.update(t for t in _TOKEN.findall(obj) if t in known)

    scan({"records": data["records"], "alerts": data["alerts"]})
    return found


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
        linked = graph.linked_accounts([r["borrower_id"]], opts.link_depth, opts.relation_types)
        ends = [p["hops"][-1]["dst"] for p in paths if p["disbursement_id"] == r["disbursement_id"]]
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
    return {"payment_mode": mode, "records": records, "alerts": alert_rows, "paths": paths, "chains": chains, "rules": rules}


def _masked(data: dict, known: set[str]) -> tuple[dict, dict[str, str]]:
    mapping = mask_map(_identifiers(data, known))
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


def _xlsx(doc: dict, summary: dict, path: Path) -> None:
    import xlsxwriter

    hops = _hop_rows(doc)
    frames = {
        "summary": pl.DataFrame(
            {"field": list(summary), "value": [json.dumps(v) if isinstance(v, list | dict) else ("" if v is None else str(v)) for v in summary.values()]},
            schema={"field": pl.Utf8, "value": pl.Utf8},
        ),
        "paths": pl.DataFrame(
            [{"path": p["path"], "source": p["source"], "rule_id": p["rule_id"] or "", "disbursement_id": p["disbursement_id"],
              "hops": len(p["hops"]), "start": p["hops"][0]["src"], "end": p["hops"][-1]["dst"],
              "first_ts": p["hops"][0]["ts"], "last_ts": p["hops"][-1]["ts"],
              "last_amount": parse_amount(p["hops"][-1]["amount"]) / 100} for p in doc["paths"]],
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
    }
    with xlsxwriter.Workbook(str(path)) as wb:
        for name, df in frames.items():
            df.write_excel(wb, worksheet=name, float_precision=2, autofit=True, table_style="Table Style Light 9")


def _graphml(doc: dict, path: Path) -> None:
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
    nx.write_graphml(g, str(path))


def _manifest_hash(manifest: dict) -> str:
    """SHA-256 of the manifest's canonical JSON without this field (catches edits and
    damage to the manifest itself; it is a checksum, not a signature)."""
    body = {k: v for k, v in manifest.items() if k != "manifest_sha256"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()).hexdigest()


def _dumps(obj) -> bytes:
    return (json.dumps(obj, indent=2, ensure_ascii=False) + "\n").encode()


# ------------------------------------------------------------------ public API
def write_evidence(
    store: Store, target: str, out_dir: str | Path, *, pack: RulePack | None = None,
    unmasked: bool = False, generated_by: str,
) -> dict:
    """Write the evidence bundle of an alert id (or unique 8+ character prefix) or loan id.

    Parameters
    ----------
    store : Store
    target : str
        An alert id from the alerts partitions, or a loan id.
    out_dir : path
        The bundle folder; built beside it and swapped into place (replacing it).
    pack : RulePack, optional
        Rule pack giving the trace parameters (default: the shipped pack).
    unmasked : bool
        Keep account and party ids in clear (recorded in the manifest).
    generated_by : str
        Who generated the bundle (user or system name), recorded in the manifest.

    Returns
    -------
    dict
        The manifest.
    """
    pack = pack or load_pack()
    kind, loan_id, alerts = _resolve_target(store, target)
    options = options_from_pack(pack)
    snapshot = store.snapshot_id
    data = _gather(store, loan_id, alerts, options, pack)
    if not unmasked:
        data, _ = _masked(data, known_ids(store))
    target_id = alerts["alert_id"][0] if kind == "alert" else loan_id
    alert_ids = sorted(a["alert_id"] for a in data["alerts"])
    notes = []
    for h in sorted({a["ruleset_hash"] for a in data["alerts"]} - {pack.hash}):
        notes.append(f"an alert was scored with rule pack hash {h}, not {pack.hash}")
    doc = {
        "format": BUNDLE_FORMAT,
        "target": {"kind": kind, "id": target_id, "loan_id": loan_id, "alert_ids": alert_ids},
        "masked": not unmasked,
        "snapshot_id": snapshot,
        "ruleset": {"id": pack.id, "version": pack.version, "hash": pack.hash},
        "payment_mode": data["payment_mode"],
        "trace_options": _options_json(options),
        **{k: data[k] for k in ("records", "alerts", "paths", "chains", "rules")},
    }
    generated_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
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

    final = Path(out_dir)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.tmp-"))
    try:
        (tmp / "evidence.json").write_bytes(_dumps(doc))
        (tmp / "report.html").write_text(_render_html(doc, summary), encoding="utf-8")
        (tmp / "hops.csv").write_bytes(_csv(_hop_rows(doc), ["path", "hop", "source", "disbursement_id", "tx_id", "from", "to", "ts", "amount"]))
        _xlsx(doc, summary, tmp / "evidence.xlsx")
        _graphml(doc, tmp / "graph.graphml")
        manifest = {
            "format": BUNDLE_FORMAT,
            "files": {n: {"sha256": sha256_file(tmp / n), "bytes": (tmp / n).stat().st_size} for n in FILES},
            "target": doc["target"],
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
            "rerun": "flowgraph --store STORE evidence verify BUNDLE_DIR",
            "notes": notes,
        }
        manifest["manifest_sha256"] = _manifest_hash(manifest)
        (tmp / MANIFEST).write_bytes(_dumps(manifest))
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


def verify_evidence(store: Store, bundle_dir: str | Path, pack: RulePack | None = None) -> dict:
    """Check a bundle: file hashes against the manifest, then a re-run of the trace.

    Returns ``{"ok", "problems", "notes", ...}``; ``problems`` names every file that
    differs, is missing or is extra, and every path whose re-run differs. A different
    store snapshot is a problem when the results differ too, a note otherwise. ``pack``
    (optional) is only compared by hash: the re-run uses the manifest's parameters.
    """
    bundle = Path(bundle_dir)
    problems: list[str] = []
    notes: list[str] = []
    try:
        manifest = json.loads((bundle / MANIFEST).read_text())
        files = manifest["files"]
    except FileNotFoundError:
        return {"ok": False, "problems": [f"{MANIFEST}: missing"], "notes": []}
    except (ValueError, KeyError, TypeError) as e:
        return {"ok": False, "problems": [f"{MANIFEST}: unreadable ({e})"], "notes": []}
    if manifest.get("manifest_sha256") != _manifest_hash(manifest):
        problems.append(f"{MANIFEST}: content differs from its manifest_sha256")
    for name, entry in sorted(files.items()):
        p = bundle / name
        if not p.is_file():
            problems.append(f"{name}: missing")
        elif sha256_file(p) != entry.get("sha256"):
            problems.append(f"{name}: content differs from the manifest (sha256)")
    present = {p.name for p in bundle.iterdir()} - {MANIFEST}
    for name in sorted(present - set(files)):
        problems.append(f"{name}: extra file not in the manifest")

    try:
        old = json.loads((bundle / "evidence.json").read_text())
    except (OSError, ValueError) as e:
        problems.append(f"evidence.json: unreadable ({e.__class__.__name__}); results not compared")
        return {"ok": False, "problems": problems, "notes": notes}

    target = manifest["target"]
    loan_id = target["loan_id"]
    options = options_from_json(manifest["trace"]["options"])
    alerts = read_alerts(store).filter(pl.col("alert_id").is_in(target.get("alert_ids", [])))
    if pack is not None and pack.hash != manifest["ruleset"]["hash"]:
        notes.append(f"the given rule pack hash {pack.hash} differs from the bundle's {manifest['ruleset']['hash']}; the re-run uses the manifest's parameters")
    data = _gather(store, loan_id, alerts, options, None)
    if not manifest.get("unmasked"):
        data, _ = _masked(data, known_ids(store))
    differences = _compare(old, data)
    problems += differences
    snap = store.snapshot_id
    if snap != manifest.get("snapshot_id"):
        msg = f"store snapshot {snap} differs from the bundle's {manifest.get('snapshot_id')}"
        if differences:
            problems.append(msg + " and the results differ")
        else:
            notes.append(msg + "; the results are the same")
    return {
        "ok": not problems, "problems": problems, "notes": notes,
        "files_checked": len(files), "paths_checked": len(data["paths"]),
        "snapshot_id": snap, "bundle_snapshot_id": manifest.get("snapshot_id"),
    }


__all__ = ["write_evidence", "verify_evidence", "EvidenceError", "options_from_json"]
