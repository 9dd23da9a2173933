"""Portfolio report, five-level classification and the demo."""

from __future__ import annotations

import tempfile
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from flowgraph.cli.app import app
from flowgraph.cli.output import (
    JsonOpt,
    RulesOpt,
    emit_json,
    emit_rows,
    open_store,
    parse_day,
    print_ingest,
    say,
    want_json,
)
from flowgraph.core.errors import UsageError
from flowgraph.rules.pack import load_pack
from flowgraph.store.embedded import Store
from flowgraph.store.outputs import check_output_dir, check_report_dir, is_store


class GroupBy(StrEnum):
    month = "month"
    week = "week"
    branch = "branch"
    industry = "industry"
    region = "region"
    product = "product"
    grade = "grade"


@app.command()
def report(
    from_: Annotated[str | None, typer.Option("--from", help="First disbursement day (YYYY-MM-DD).")] = None,
    to: Annotated[str | None, typer.Option("--to", help="Last disbursement day (inclusive).")] = None,
    by: Annotated[GroupBy, typer.Option("--by", help="Group by period or loan attribute.")] = GroupBy.month,
    out_dir: Annotated[Path | None, typer.Option("--out", help="Write report.csv, report.xlsx, report.html (charts inline), report.json here: a new or empty folder, or a previous report's, outside the store.")] = None,
    json_: JsonOpt = False,
) -> None:
    """Portfolio statistics: disbursements, alerts by rule and level, loans with flow-back, returned share."""
    from flowgraph.investigate.report import report_data, write_report

    start, end = parse_day(from_, "--from"), parse_day(to, "--to")
    store = open_store()
    if out_dir is not None:
        check_report_dir(out_dir, [store.root])
        written = write_report(store, out_dir, start, end, by.value)
        data = written["report"]
        if not want_json(json_):
            say(f"[green]wrote[/green] {', '.join(str(out_dir / f) for f in written['files'])}")
    else:
        data = report_data(store, start, end, by.value)
    if want_json(json_):
        emit_json(data)
        return
    rows = [*data["groups"], {by.value: "total", **data["totals"]}]
    emit_rows([{
        by.value: r[by.value], "disb.": r["disbursements"], "disbursed": r["disbursed_amount"], "loans": r["loans"],
        "alerts h/m/l": f"{r['alerts_high']}/{r['alerts_medium']}/{r['alerts_low']}",
        "flow-back loans": f"{r['loans_with_flow_back']} ({r['flow_back_loan_share']:.1%})",
        "returned": f"{r['returned_amount']} ({r['returned_share']:.1%})",
    } for r in rows], False, title=f"portfolio by {by.value}")
    rule_cols = sorted(c for c in data["totals"] if c.startswith("rule_"))
    if rule_cols:
        emit_rows([{by.value: r[by.value], **{c[5:]: r[c] for c in rule_cols}} for r in rows], False,
                  title="alerts by rule", columns=[by.value, *[c[5:] for c in rule_cols]])
    if any(d["confirmed"] + d["dismissed"] + d["pending_second_review"] for d in data["dispositions"].values()):
        emit_rows([{"rule": k, **{s: d[s] for s in ("alerts", "new", "pending_second_review", "confirmed", "dismissed")},
                    "precision": "–" if d["precision"] is None else f"{d['precision']:.1%}"}
                   for k, d in data["dispositions"].items()], False, title="dispositions by rule (measured precision)")


@app.command()
def classify(
    as_of: Annotated[str, typer.Option("--as-of", help="Classification day (YYYY-MM-DD).")],
    apply_: Annotated[bool, typer.Option("--apply", help="Write the suggested changes as source=auto records.")] = False,
    rules: RulesOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Suggest five-level grade changes from the pack's classification rule (overdue days, alerts)."""
    from flowgraph.rules.classification import action_counts, apply, suggest, suggestion_json

    day = parse_day(as_of, "--as-of")
    pack = load_pack(rules)
    store = open_store()
    sug = suggest(store, day, pack)
    result = apply(store, day, sug, pack) if apply_ else None
    rows = [suggestion_json(r) for r in sug.iter_rows(named=True)]
    if want_json(json_):
        for r in rows:
            emit_json(r)
        emit_json({"as_of": day.isoformat(), "suggestions": len(rows), "apply": apply_, **(result or action_counts(sug))})
        return
    emit_rows([{**r, "reasons": "\n".join(r["reasons"])} for r in rows], False,
              title=f"{len(rows)} suggestion(s) as of {day}",
              columns=["loan_id", "current_grade", "current_source", "current_as_of", "suggested_grade", "overdue_days", "action", "reasons"])
    if result:
        say(f"[green]wrote {result['written']} auto record(s)[/green]; already applied {result['applied']}, "
            f"kept manual {result['kept_manual']}")
    elif changes := action_counts(sug)["change"]:
        say(f"run with --apply to write {changes} change(s) as source=auto records")


def _demo_root(ctx: typer.Context) -> Path:
    """A new store for the demo: a temp folder, or --store / FLOWGRAPH_STORE when given and
    not an existing store or a non-empty folder (the demo never writes into real data)."""
    root_ctx = ctx.find_root()
    source = root_ctx.get_parameter_source("store")
    given = source is not None and source.name in ("COMMANDLINE", "ENVIRONMENT")
    if not given:
        return Path(tempfile.mkdtemp(prefix="flowgraph-demo-")) / "store"
    root = Path(root_ctx.params["store"])
    where = "--store" if source.name == "COMMANDLINE" else "FLOWGRAPH_STORE"
    if is_store(root) or (root.exists() and (not root.is_dir() or any(root.iterdir()))):
        what = "an existing flowgraph store" if is_store(root) else "an existing file or non-empty folder"
        raise UsageError(f"the demo builds a new store of its own, but {where} points at {what} ({root});"
                         f" give a new folder{' or unset FLOWGRAPH_STORE' if where == 'FLOWGRAPH_STORE' else ''}")
    return check_output_dir(root, "demo store", lambda p: False, option=where)  # not inside another store


@app.command()
def demo(ctx: typer.Context, json_: JsonOpt = False) -> None:
    """Ingest the bundled sample into a new store of its own, index it, score it, show the top alerts.

    The store is a temp folder, or --store / FLOWGRAPH_STORE when they name a new or empty
    folder; an existing store is refused (the demo never mixes its sample into real data).
    """
    from flowgraph.core.resources import samples_dir
    from flowgraph.graph.store_index import load_or_build_index
    from flowgraph.ingest.load import ingest_paths
    from flowgraph.rules.alerts import alert_json, read_alerts
    from flowgraph.rules.batch import last_data_day, score_days

    as_json = want_json(json_)
    root = _demo_root(ctx)
    store = Store.init(root)
    sample = samples_dir()
    report = ingest_paths(store, [sample], None, None if as_json else say)
    _, meta = load_or_build_index(store, False, None)
    pack = load_pack(None)
    day = last_data_day(store)
    summary = score_days(store, [day], pack, None, None, None, True)
    alerts_df = read_alerts(store, day)
    top = [alert_json(r) for r in alerts_df.head(10).iter_rows(named=True)]
    result = {
        "store": str(root),
        "sample": str(sample),
        "snapshot_id": report["snapshot_id"],
        "tables": {t: v["loaded"] for t, v in report["tables"].items()},
        "rejected": report["rejected"],
        "index": {"accounts": meta["accounts"], "edges": meta["edges"]},
        "as_of": day.isoformat(),
        "score": summary,
        "top_alerts": [{k: a[k] for k in ("alert_id", "loan_id", "rule_id", "level", "score", "reasons")} for a in top],
    }
    if as_json:
        emit_json(result)
        return
    print_ingest(report, False)
    say(f"index: {meta['accounts']} accounts, {meta['edges']} edges; rule pack {pack.id} {pack.version}")
    emit_rows(
        [{"level": a["level"], "score": a["score"], "rule": a["rule_id"], "loan": a["loan_id"], "reason": a["reasons"][0]} for a in top],
        False,
        title=f"{summary['alerts']} alert(s) on {summary['disbursements']} disbursement(s) as of {day} — top 10",
    )
    say("levels: " + ", ".join(f"{k} {v}" for k, v in summary["by_level"].items()))
    fb = next((a for a in top if a["rule_id"].startswith("flow_back")), None)
    if fb:
        say(f"next: flowgraph --store {root} trace {fb['loan_id']}")
        say(f"      flowgraph --store {root} evidence {fb['alert_id']} --out evidence-{fb['loan_id']}")
    say(f"      flowgraph --store {root} alerts --level high")
    say(f"      flowgraph --store {root} report --by month")
