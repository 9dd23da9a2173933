"""Rule packs and scoring: rules list/show/check, score, evaluate (alerts: cli/workbench.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from flowgraph.cli.app import app
from flowgraph.cli.neo4j_options import NeoDatabase, NeoPassword, NeoUri, NeoUser, connect_neo4j
from flowgraph.cli.output import (
    JsonOpt,
    Level,
    RulesOpt,
    emit_json,
    emit_rows,
    err,
    open_store,
    out,
    parse_day,
    say,
    want_json,
)
from flowgraph.rules.model import LEVELS
from flowgraph.rules.pack import load_pack

rules_app = typer.Typer(help="Rule packs: list, show, check.", no_args_is_help=True)
app.add_typer(rules_app, name="rules")
@rules_app.command("list")
def rules_list(rules: RulesOpt = None, json_: JsonOpt = False) -> None:
    """The rules of a pack."""
    pack = load_pack(rules)
    rows = [
        {"id": r.id, "name": r.name, "kind": r.kind, "version": r.version, "enabled": r.enabled,
         "payment_modes": ",".join(r.payment_modes)}
        for r in pack.rules
    ]
    emit_rows(rows, want_json(json_), title=f"rule pack {pack.id} {pack.version}  hash {pack.hash[:16]}")


@rules_app.command("show")
def rules_show(rule_id: Annotated[str, typer.Argument()], rules: RulesOpt = None, json_: JsonOpt = False) -> None:
    """One rule: parameters, score weights, levels, description."""
    pack = load_pack(rules)
    rule = pack.rule(rule_id)
    data = rule.as_dict() | {"pack": pack.id, "pack_hash": pack.hash}
    data["params"] = {k: list(v) if isinstance(v, tuple) else v for k, v in data["params"].items()}
    if want_json(json_):
        emit_json(data)
        return
    out.print(f"[bold]{rule.id}[/bold] ({rule.name}, kind {rule.kind}, version {rule.version})")
    out.print(rule.description)
    emit_rows([{"param": k, "value": v} for k, v in data["params"].items()], False, title="params")
    emit_rows([{"feature": k, "weight": v} for k, v in rule.score.items()], False, title="score")
    out.print(f"levels: high ≥ {rule.levels['high']}, medium ≥ {rule.levels['medium']}, else low")


@rules_app.command("check")
def rules_check(path: Annotated[Path | None, typer.Argument(help="Pack folder (default: shipped).")] = None, json_: JsonOpt = False) -> None:
    """Validate a rule pack; exit 2 naming file, line and key when invalid."""
    pack = load_pack(path)
    if want_json(json_):
        emit_json({"ok": True, "id": pack.id, "version": pack.version, "hash": pack.hash, "rules": [r.id for r in pack.rules]})
    else:
        say(f"[green]ok[/green] {pack.id} {pack.version}: {len(pack.rules)} rules, hash {pack.hash}")


@app.command()
def score(
    date_: Annotated[str | None, typer.Option("--date", help="Score as of this day (YYYY-MM-DD, UTC).")] = None,
    from_: Annotated[str | None, typer.Option("--from", help="First day of a range.")] = None,
    to: Annotated[str | None, typer.Option("--to", help="Last day of a range.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Every disbursement as of --date (default: the last day with data).")] = False,
    rules: RulesOpt = None,
    threads: Annotated[int | None, typer.Option(min=1)] = None,
    fail_on: Annotated[Level | None, typer.Option(help="Exit 1 when an alert of this level or above fired.")] = None,
    write_neo4j: Annotated[bool, typer.Option("--write-neo4j", help="Also write the alerts to Neo4j as (:Alert)-[:ON]->(:Loan) with path tx_ids and level.")] = False,
    neo4j_uri: NeoUri = None, neo4j_user: NeoUser = None, neo4j_password: NeoPassword = None,
    neo4j_database: NeoDatabase = None,
    json_: JsonOpt = False,
) -> None:
    """Score a day's disbursements (and those whose window is still open); write alerts."""
    from rich.progress import Progress

    from flowgraph.rules.batch import days_between, last_data_day, score_days

    day, start, end = parse_day(date_, "--date"), parse_day(from_, "--from"), parse_day(to, "--to")
    if day and (start or end):
        raise typer.BadParameter("give --date or --from/--to, not both")
    if all_ and (start or end):
        raise typer.BadParameter("--all scores as of one day: use it with --date or alone")
    if not day and not (start and end) and not all_:
        raise typer.BadParameter("give --date D, --from D1 --to D2, or --all")
    pack = load_pack(rules)
    store = open_store()
    if all_ and not day:
        day = last_data_day(store)
    days = [day] if day else days_between(start, end)
    as_json = want_json(json_)
    # connect before scoring: a wrong URI or a server that is down fails in a second
    neo = connect_neo4j(neo4j_uri, neo4j_user, neo4j_password, neo4j_database) if write_neo4j else None
    if err.is_terminal and not as_json:
        with Progress(console=err, transient=True) as bar:
            task = bar.add_task("scoring", total=len(days))
            summary = score_days(store, days, pack, threads, None, lambda _d: bar.advance(task), all_)
    else:
        summary = score_days(store, days, pack, threads, None, None, all_)
    if neo is not None:
        with neo:
            synced = neo.sync_alerts(store, days)
        summary["neo4j"] = {"uri": neo.uri, "database": neo.database,
                            "alerts_written": synced["written"], "alerts_deleted": synced["deleted"]}
        if not as_json:
            say(f"wrote {synced['written']} alert(s) to Neo4j at {neo.uri}, deleted {synced['deleted']} "
                "that the re-score no longer raises")
    if as_json:
        emit_json(summary)
    else:
        emit_rows([{"rule": k, "alerts": v} for k, v in summary["by_rule"].items()], False,
                  title=f"{summary['alerts']} alert(s) over {summary['disbursements']} disbursement(s) in {summary['seconds']} s")
        say("levels: " + ", ".join(f"{k} {v}" for k, v in summary["by_level"].items()))
    if fail_on:
        # only alerts that are new, or whose level went up since their previous firing,
        # fail the run: a case already under review does not fail every night again
        from flowgraph.investigate.cases import fresh_alerts

        worst = LEVELS[: LEVELS.index(fail_on.value) + 1]
        fresh = fresh_alerts(store, days)
        hits = fresh.filter(fresh["level"].is_in(worst))
        if hits.height:
            say(f"[red]--fail-on {fail_on.value}: {hits.height} new or escalated alert(s) at that level or above[/red]")
            raise typer.Exit(1)


@app.command()
def evaluate(
    data_dir: Annotated[Path, typer.Argument(help="Generated data folder with labels.parquet.")],
    rules: RulesOpt = None,
    threads: Annotated[int | None, typer.Option(min=1)] = None,
    keep: Annotated[Path | None, typer.Option("--keep", metavar="DIR", help="Keep the evaluation's store in DIR (a new or empty folder); by default it is deleted.")] = None,
    json_: JsonOpt = False,
) -> None:
    """Score labelled data and print per-typology recall and per-rule precision."""
    from flowgraph.synthetic.evaluate import evaluate as run_evaluation

    if keep is not None and keep.exists() and (not keep.is_dir() or any(keep.iterdir())):
        raise typer.BadParameter(f"{keep} is not a new or empty folder", param_hint="--keep")
    pack = load_pack(rules)
    res = run_evaluation(data_dir, pack, keep, threads)
    if want_json(json_):
        emit_json(res)
        return
    emit_rows(res["typologies"], False, title=f"{data_dir}: {res['disbursements']} disbursements, {res['alerts']} alerts as of {res['as_of']}")
    emit_rows(res["rules"], False, title="by rule kind")
    say(f"lowest recall {res['recall_min']}, flow-back alerts on negative controls: {res['flow_back_on_negatives']}")
    if keep is not None:
        say(f"store kept in {keep}")


@rules_app.command("replay")
def rules_replay(
    pack_path: Annotated[Path, typer.Argument(metavar="PACK", help="The candidate rule pack folder.")],
    from_: Annotated[str, typer.Option("--from", help="First day (YYYY-MM-DD, UTC).")],
    to: Annotated[str, typer.Option("--to", help="Last day.")],
    rules: RulesOpt = None,
    threads: Annotated[int | None, typer.Option(min=1)] = None,
    json_: JsonOpt = False,
) -> None:
    """Score history with another pack, in memory, and print the difference per rule and level
    against the current pack (--rules, default the shipped one); stored alerts are not touched."""
    from flowgraph.rules.batch import days_between
    from flowgraph.rules.replay import replay

    candidate, current = load_pack(pack_path), load_pack(rules)
    days = days_between(parse_day(from_, "--from"), parse_day(to, "--to"))
    result = replay(open_store(), days, candidate, current, threads)
    if want_json(json_):
        emit_json(result)
        return
    t = result["totals"]
    emit_rows(result["by_rule"], False, title=f"replay {result['dates'][0]} .. {result['dates'][-1]}: "
              f"current {result['current']['pack']} vs candidate {result['candidate']['pack']}")  # fmt: skip
    say(f"{t['current']} alert(s) now, {t['candidate']} with the candidate: {t['added']} added, "
        f"{t['removed']} removed, {t['changed']} changed (level or score)")
