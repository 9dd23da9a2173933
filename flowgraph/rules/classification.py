"""Five-level classification (正常 / 关注 / 次级 / 可疑 / 损失): suggestions from rules, applied
as auditable ``source=auto`` records.

A classification rule in the rule pack (kind ``classification``) sets floors: an alert of
the configured kinds and levels puts a loan at least at ``alert_grade``; being overdue by
more than N days puts it at least at special_mention / substandard / doubtful / loss
(thresholds of the 2023 CBIRC risk-classification measures by default: overdue → special
mention, > 90 days → substandard, > 270 → doubtful, > 360 → loss).

Suggestions only ever raise a grade: the loan's current grade is its latest record on or
before the as-of day (any source), and a change is suggested when a floor lies above it.
Applying writes one record per changed loan at (loan_id, as_of) with ``source=auto`` and
the reasons; an existing manual record at that key is never overwritten (the suggestion
is reported as ``kept_manual``), and applying twice changes nothing the second time.

>>> from flowgraph.rules.classification import grade_max
>>> grade_max("normal", "substandard", "special_mention")
'substandard'
"""

from __future__ import annotations

from datetime import date

import polars as pl

from flowgraph.core.errors import FlowgraphError, RulePackError
from flowgraph.core.schema import GRADES, TABLES
from flowgraph.core.values import DAY_MS, day_start_ms, format_amount_grouped, format_date
from flowgraph.rules.alerts import read_alerts
from flowgraph.rules.kinds.classification import ClassificationParams
from flowgraph.rules.model import RulePack
from flowgraph.rules.repayment import ScheduleParams, store_repayment_status
from flowgraph.store.embedded import Store

SUGGESTION_SCHEMA: dict[str, pl.DataType] = {
    "loan_id": pl.Utf8(),
    "current_grade": pl.Utf8(),
    "current_source": pl.Utf8(),
    "current_as_of": pl.Int64(),
    "suggested_grade": pl.Utf8(),
    "overdue_days": pl.Int64(),
    "reasons": pl.List(pl.Utf8()),
    "action": pl.Utf8(),
}


def grade_rank(grade: str | None) -> int:
    return GRADES.index(grade) if grade in GRADES else -1


def grade_max(*grades: str | None) -> str | None:
    """The most severe of the grades (None when all are None)."""
    known = [g for g in grades if g in GRADES]
    return max(known, key=GRADES.index) if known else None


def classification_rule(pack: RulePack):
    rules = pack.of_kind("classification")
    if not rules:
        raise RulePackError(f"rule pack {pack.id} has no enabled rule of kind 'classification'")
    if len(rules) > 1:
        raise RulePackError(f"rule pack {pack.id} has {len(rules)} classification rules; keep one enabled")
    return rules[0]


def schedule_params_of(pack: RulePack | None) -> ScheduleParams:
    """The repayment schedule of the pack's classification rule (defaults without one)."""
    rules = pack.of_kind("classification") if pack else []
    return ClassificationParams(**rules[0].params).schedule_params() if rules else ScheduleParams()


def current_grades(store: Store, as_of: date) -> pl.DataFrame:
    """Latest record per loan on or before the as-of day: loan_id, grade, source, as_of."""
    end = day_start_ms(as_of) + DAY_MS
    return (
        store.scan("classifications")
        .filter(pl.col("as_of") < end)
        .sort("loan_id", "as_of")
        .group_by("loan_id")
        .agg(pl.col("grade").last(), pl.col("source").last(), pl.col("as_of").last())
        .collect()
    )


def _alert_reasons(store: Store, as_of: date, p: ClassificationParams) -> dict[str, list[str]]:
    end = day_start_ms(as_of) + DAY_MS
    alerts = read_alerts(store, until=as_of).filter(
        pl.col("kind").is_in(list(p.alert_kinds))
        & pl.col("level").is_in(list(p.alert_levels))
        & (pl.col("disbursed_ts") >= end - p.alert_lookback_days * DAY_MS)
    )
    out: dict[str, list[str]] = {}
    for a in alerts.sort("loan_id", "rule_id", "alert_id").iter_rows(named=True):
        text = a["reasons"][0] if a["reasons"] else a["rule_id"]
        out.setdefault(a["loan_id"], []).append(
            f"{a['level']} {a['rule_id']} alert {a['alert_id'][:12]} (score {a['score']:.1f}): {text} → at least {p.alert_grade}"
        )
    return out


def suggest(store: Store, as_of: date, pack: RulePack) -> pl.DataFrame:
    """Suggested grade changes on ``as_of`` (columns of ``SUGGESTION_SCHEMA``).

    ``action`` is ``change`` (would be written), ``applied`` (an auto record with that
    grade is already there) or ``kept_manual`` (a manual record on that day wins).
    """
    rule = classification_rule(pack)
    p = ClassificationParams(**rule.params)
    status = store_repayment_status(store, as_of, p.schedule_params())
    alert_reasons = _alert_reasons(store, as_of, p)
    current = {r["loan_id"]: r for r in current_grades(store, as_of).iter_rows(named=True)}
    day0 = day_start_ms(as_of)
    rows = []
    for s in status.iter_rows(named=True):
        loan = s["loan_id"]
        floor, reasons = None, []
        for days, grade in p.overdue_floors():
            if s["overdue_days"] > days:
                floor = grade
                reasons.append(
                    f"overdue {s['overdue_days']} days (> {days}) with {format_amount_grouped(s['arrears'])} in arrears → at least {grade}"
                )
                break
        if loan in alert_reasons:
            floor = grade_max(floor, p.alert_grade)
            reasons.extend(alert_reasons[loan])
        cur = current.get(loan)
        cur_grade = cur["grade"] if cur else None
        if floor is None or grade_rank(floor) <= grade_rank(cur_grade):
            if not (cur and cur["as_of"] == day0 and cur["source"] == "auto"):
                continue
            action = "applied"  # the auto record of a previous apply already holds the floor
        elif cur and cur["as_of"] == day0 and cur["source"] != "auto":
            action = "kept_manual"
        else:
            action = "change"
        rows.append({
            "loan_id": loan,
            "current_grade": cur_grade,
            "current_source": cur["source"] if cur else None,
            "current_as_of": cur["as_of"] if cur else None,
            "suggested_grade": grade_max(floor, cur_grade) if action == "applied" else floor,
            "overdue_days": s["overdue_days"],
            "reasons": reasons,
            "action": action,
        })
    return pl.DataFrame(rows, schema=SUGGESTION_SCHEMA) if rows else pl.DataFrame(schema=SUGGESTION_SCHEMA)


ACTIONS = ("change", "applied", "kept_manual")


def action_counts(suggestions: pl.DataFrame, written: int = 0) -> dict:
    """``{"written": N, "change": N, "applied": N, "kept_manual": N}`` of a suggestion frame."""
    return {"written": written, **{a: int((suggestions["action"] == a).sum()) for a in ACTIONS}}


def apply(store: Store, as_of: date, suggestions: pl.DataFrame, pack: RulePack) -> dict:
    """Write the ``change`` suggestions as ``source=auto`` records (one atomic swap).

    An auto record already at (loan, as_of) is replaced (rules may have become stricter);
    a manual one never is. Returns counts by action.
    """
    day0 = day_start_ms(as_of)
    todo = suggestions.filter(pl.col("action") == "change")
    if todo.height == 0:
        return action_counts(suggestions)
    tag = f"auto (rule pack {pack.id} {pack.hash[:12]})"
    new = todo.select(
        "loan_id",
        pl.lit(day0, pl.Int64).alias("as_of"),
        pl.col("suggested_grade").alias("grade"),
        pl.lit("auto").alias("source"),
        (pl.lit(tag + ": ") + pl.col("reasons").list.join("; ")).alias("reason"),
    )
    schema = TABLES["classifications"]
    with store.lock():
        existing = store.read("classifications")
        # a manual record at the key was filtered out by suggest(); recheck under the lock
        clash = existing.join(new.select("loan_id", "as_of"), on=["loan_id", "as_of"], how="semi")
        if clash.filter(pl.col("source") != "auto").height:
            raise FlowgraphError("a manual classification appeared while classifying; run classify again")
        kept = existing.join(new.select("loan_id", "as_of"), on=["loan_id", "as_of"], how="anti")
        merged = pl.concat([kept, new.cast({c: existing.schema[c] for c in new.columns})], how="diagonal_relaxed")
        merged = merged.select(existing.columns).sort(list(schema.key))
        store.write_tables({"classifications": merged})
    return action_counts(suggestions, todo.height)


def suggestion_json(row: dict) -> dict:
    return {
        **row,
        "current_as_of": format_date(row["current_as_of"]) if row["current_as_of"] is not None else None,
    }
