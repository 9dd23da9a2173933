"""Replay: score history with a candidate rule pack, in memory, and compare it with the current one.

``replay(store, days, candidate, current)`` scores each day twice — with the pack in use
(``current``) and with the one being tuned (``candidate``) — as ``flowgraph score --from
--to`` would, on one pinned snapshot, and writes nothing: the stored alerts, the run log
and the manifests stay as they are. The difference is per alert (as-of day, rule id,
disbursement):

``added``    the candidate raises it, the current pack does not;
``removed``  the current pack raises it, the candidate does not;
``changed``  both raise it, with another level or score.

counted per rule and level (the level the candidate gives, for removed ones the level they
had) — the above/below-the-line view rule tuners use.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable
from datetime import date

import polars as pl

from flowgraph.rules.batch import score_day
from flowgraph.rules.context import Context
from flowgraph.rules.model import LEVELS, RulePack
from flowgraph.store.embedded import Store

KEY = ("as_of", "rule_id", "disbursement_id")
COLUMNS = [*KEY, "loan_id", "kind", "level", "score"]


def replay(store: Store, days: list[date], candidate: RulePack, current: RulePack,
           threads: int | None = None, progress: Callable[[str], None] | None = None) -> dict:  # fmt: skip
    """Score ``days`` with both packs in memory; return the per-rule difference and every
    alert that differs (see the module docstring)."""
    with store.pinned() as snap:
        ctx_now = Context.load(snap, current, progress)
        ctx_new = dataclasses.replace(ctx_now, pack=candidate, tx=None, suppressed=Counter())
        before, after = [], []
        for day in days:
            before.append(score_day(ctx_now, day, threads, progress)[0].select(COLUMNS))
            after.append(score_day(ctx_new, day, threads, progress)[0].select(COLUMNS))
        snapshot = snap.snapshot_id
    return difference(pl.concat(before), pl.concat(after)) | {
        "dates": [days[0].isoformat(), days[-1].isoformat()] if days else [],
        "snapshot_id": snapshot,
        "current": {"pack": f"{current.id}@{current.version}", "hash": current.hash,
                    "suppressed": dict(sorted(ctx_now.suppressed.items()))},
        "candidate": {"pack": f"{candidate.id}@{candidate.version}", "hash": candidate.hash,
                      "suppressed": dict(sorted(ctx_new.suppressed.items()))},
    }  # fmt: skip


def difference(before: pl.DataFrame, after: pl.DataFrame) -> dict:
    """Per-rule, per-level counts and the differing alerts of two alert frames (``COLUMNS``).

    >>> row = lambda lv, s: {"as_of": "2024-01-02", "rule_id": "r", "disbursement_id": "D1",
    ...                      "loan_id": "L1", "kind": "k", "level": lv, "score": s}
    >>> d = difference(pl.DataFrame([row("low", 30.0)]), pl.DataFrame([row("high", 80.0)]))
    >>> [(r["rule_id"], r["level"], r["changed"]) for r in d["by_rule"] if r["changed"]], d["alerts"][0]["change"]
    ([('r', 'high', 1)], 'changed')
    """
    both = before.join(after, on=list(KEY), how="full", coalesce=True, suffix="_new")
    rows = []
    for r in both.sort(*KEY).iter_rows(named=True):
        if r["level"] is None:
            change = "added"
        elif r["level_new"] is None:
            change = "removed"
        elif (r["level"], r["score"]) != (r["level_new"], r["score_new"]):
            change = "changed"
        else:
            continue
        rows.append({
            "as_of": r["as_of"], "rule_id": r["rule_id"], "disbursement_id": r["disbursement_id"],
            "loan_id": r["loan_id"] or r["loan_id_new"], "change": change,
            "level_before": r["level"], "level_after": r["level_new"],
            "score_before": r["score"], "score_after": r["score_new"],
        })  # fmt: skip
    count: Counter = Counter()
    for a in rows:
        count[(a["rule_id"], a["level_after"] or a["level_before"], a["change"])] += 1
    rules = sorted(set(before["rule_id"].to_list()) | set(after["rule_id"].to_list()))
    by_rule = []
    for rule in rules:
        for lv in LEVELS:
            cur = before.filter((pl.col("rule_id") == rule) & (pl.col("level") == lv)).height
            new = after.filter((pl.col("rule_id") == rule) & (pl.col("level") == lv)).height
            row = {"rule_id": rule, "level": lv, "current": cur, "candidate": new,
                   **{c: count[(rule, lv, c)] for c in ("added", "removed", "changed")}}  # fmt: skip
            if cur or new or row["added"] or row["removed"] or row["changed"]:
                by_rule.append(row)
    totals = {c: sum(r[c] for r in by_rule) for c in ("current", "candidate", "added", "removed", "changed")}
    return {"by_rule": by_rule, "totals": totals, "alerts": rows}
