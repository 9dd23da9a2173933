"""The nightly batch: score the disbursements of a day against a rule pack, write alerts.

``score_days(store, [D], pack)`` scores, as of the end of day D (UTC), every disbursement
made on D and every earlier one whose rule window is still open on D. Only data up to the
end of D are used (the index is cut at the end of D: :func:`flowgraph.graph.store_index.index_as_of`), so re-running a
date gives the same alerts even after later data arrived. Alerts of D go to
``<store>/alerts/date=D/alerts.parquet`` with a ``_manifest.json`` written last; the
partition is built in a temp folder and renamed into place, replacing any earlier run
with identical content.
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from collections.abc import Callable
from datetime import date, timedelta

import polars as pl

from flowgraph import __version__
from flowgraph.core.errors import FlowgraphError, UsageError
from flowgraph.core.values import DAY_MS, HOUR_MS, day_start_ms, format_ts
from flowgraph.engine.scratch import set_threads
from flowgraph.graph.store_index import index_as_of
from flowgraph.rules.alerts import ALERT_SCHEMA, alert_id_of, write_partition
from flowgraph.rules.context import Context
from flowgraph.rules.kinds import KINDS
from flowgraph.rules.model import LEVELS, Rule, RulePack
from flowgraph.security.access import current_user
from flowgraph.store.embedded import Store


def rule_window_ms(rule: Rule) -> int:
    p = rule.params
    if "window_days" in p:
        return int(round(float(p["window_days"]) * DAY_MS))
    if "within_hours" in p:
        return int(round(float(p["within_hours"]) * HOUR_MS))
    return 30 * DAY_MS


def select_disbursements(ctx: Context, rule: Rule, day: date, every: bool = False) -> pl.DataFrame:
    """Disbursements a rule looks at on ``day``: made that day or with the window still
    open (``every``: all made up to that day, for backfills)."""
    start = day_start_ms(day)
    end = start + DAY_MS
    w = rule_window_ms(rule)
    opened = pl.lit(True) if every else pl.col("ts") + w >= start
    which = (pl.col("ts") < end) & opened & pl.col("payment_mode").is_in(list(rule.payment_modes))
    only = getattr(KINDS[rule.kind], "SELECTION", None)  # the kind's own condition, if any
    return ctx.disb.filter(which if only is None else which & only)


def last_data_day(store: Store) -> date:
    """The day of the latest transaction or disbursement (for ``score --all``)."""
    latest = max(
        store.scan("transactions").select(pl.col("ts").max()).collect().item() or 0,
        store.scan("disbursements").select(pl.col("ts").max()).collect().item() or 0,
    )
    if not latest:
        raise FlowgraphError("the store holds no transactions or disbursements to score")
    return date.fromisoformat(format_ts(latest)[:10])


def score_day(
    ctx: Context, day: date, threads: int | None = None, progress: Callable[[str], None] | None = None,
    every: bool = False,
) -> tuple[pl.DataFrame, int]:
    """Alerts of one day (not written) and the number of disbursements considered.

    The hits the pack's suppression list silenced are added to ``ctx.suppressed``."""
    as_of = day.isoformat()
    cutoff = day_start_ms(day) + DAY_MS
    index = index_as_of(ctx.index, cutoff)  # nothing booked after the as-of day is seen
    set_threads(threads)
    found: list[dict] = []
    considered: set[str] = set()
    for rule in ctx.pack.rules:
        alerts = KINDS[rule.kind].alerts
        if not rule.enabled or alerts is None:  # e.g. classification: run by `classify`
            continue
        sel = select_disbursements(ctx, rule, day, every)
        considered.update(sel["disbursement_id"].to_list())
        if sel.height == 0:
            continue
        if progress:
            progress(f"{as_of}: {rule.id} on {sel.height} disbursement(s)")
        found.extend(alerts(ctx, index, rule, sel))
    rows = [_alert_row(ctx, f, as_of, cutoff) for f in found]
    df = pl.DataFrame(rows, schema=ALERT_SCHEMA) if rows else pl.DataFrame(schema=ALERT_SCHEMA)
    return df.sort("rule_id", "disbursement_id"), len(considered)


def _alert_row(ctx: Context, f: dict, as_of: str, cutoff: int) -> dict:
    d, rule = f["disb"], f["rule"]
    return {
        "alert_id": alert_id_of(rule.id, d["disbursement_id"]),
        "loan_id": d["loan_id"],
        "disbursement_id": d["disbursement_id"],
        "borrower_id": d["borrower_id"],
        "account": d["account_id"],
        "disbursed_amount": d["amount"],
        "disbursed_ts": d["ts"],
        "rule_id": rule.id,
        "rule_name": rule.name,
        "kind": rule.kind,
        "rule_version": rule.version,
        "ruleset_id": f"{ctx.pack.id}@{ctx.pack.version}",
        "ruleset_hash": ctx.pack.hash,
        "score": f["score"],
        "level": rule.level_of(f["score"]),
        "returned_amount": f.get("returned_amount"),
        "return_ratio": f.get("return_ratio"),
        "first_return_ts": f.get("first_return_ts"),
        "path_count": f.get("path_count", len(f.get("paths", []))),
        "min_hops": f.get("min_hops"),
        "truncated": f.get("truncated", False),
        "paths": f.get("paths", []),
        "reasons": f["reasons"],
        "as_of": as_of,
        # the logical scoring time (end of the as-of day), not the wall clock: re-runs of a
        # date are byte-identical; the wall clock of each run is in runs.jsonl
        "scored_at": cutoff - 1,
    }


def days_between(start: date, end: date) -> list[date]:
    if end < start:
        raise UsageError(f"--to {end} is before --from {start}")
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def score_days(
    store: Store,
    days: list[date],
    pack: RulePack,
    threads: int | None = None,
    progress: Callable[[str], None] | None = None,
    on_day: Callable[[date], None] | None = None,
    every: bool = False,
) -> dict:
    """Score each day, write its partition, append a line to ``runs.jsonl``; return a summary.

    ``every``: score every disbursement made up to the day, not only those still in
    their window (a backfill; ``flowgraph score --all``).

    The whole run reads one snapshot: the store is pinned first
    (:meth:`flowgraph.store.embedded.Store.pinned`), every table is read from that
    snapshot's files and every partition and the run's line are labelled with its id, even
    while an ingest swaps in a newer one.
    """
    with store.pinned() as snapshot:
        return _score_days(snapshot, days, pack, threads, progress, on_day, every)


def _score_days(
    store: Store,
    days: list[date],
    pack: RulePack,
    threads: int | None,
    progress: Callable[[str], None] | None,
    on_day: Callable[[date], None] | None,
    every: bool,
) -> dict:
    """:func:`score_days` on a pinned store."""
    started = time.time()
    ctx = Context.load(store, pack, progress)
    by_rule: Counter = Counter()
    by_level: Counter = Counter()
    n_disb = n_alerts = 0
    partitions = []
    suppressed: Counter = Counter()
    for day in days:
        before = Counter(ctx.suppressed)
        alerts, considered = score_day(ctx, day, threads, progress, every)
        day_suppressed = {k: v - before.get(k, 0) for k, v in sorted(ctx.suppressed.items())}
        suppressed.update(day_suppressed)
        manifest = {
            "as_of": day.isoformat(),
            "mode": "all" if every else "open-window",
            "snapshot_id": store.snapshot_id,
            "ruleset_id": f"{pack.id}@{pack.version}",
            "ruleset_hash": pack.hash,
            "flowgraph_version": __version__,
            "disbursements": considered,
            "alerts": alerts.height,
            "by_rule": dict(sorted(Counter(alerts["rule_id"].to_list()).items())),
            "by_level": {lv: int((alerts["level"] == lv).sum()) for lv in LEVELS},
            # hits of rules the pack's suppression list applies to, silenced by it (never lost)
            "suppressed": day_suppressed,
        }
        partitions.append(str(write_partition(store, day, alerts, manifest)))
        n_disb += considered
        n_alerts += alerts.height
        by_rule.update(alerts["rule_id"].to_list())
        by_level.update(alerts["level"].to_list())
        if on_day:
            on_day(day)
    summary = {
        "disbursements": n_disb,
        "alerts": n_alerts,
        "by_rule": dict(sorted(by_rule.items())),
        "by_level": {lv: by_level.get(lv, 0) for lv in LEVELS},
        "suppressed": dict(sorted(suppressed.items())),
        "seconds": round(time.time() - started, 3),
    }
    with contextlib.suppress(OSError):
        store.append_log(
            "runs.jsonl",
            {
                "started_at": format_ts(int(started * 1000)),
                "dates": [d.isoformat() for d in days],
                "snapshot_id": store.snapshot_id,
                "ruleset_hash": pack.hash,
                "user": current_user(),  # the acting (checked) user, not the OS login
                "partitions": partitions,
                **summary,
            },
        )
    return summary


