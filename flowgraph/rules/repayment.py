"""Repayment status: how many days a loan is past due on a given day.

The contract has no instalment table, so the schedule is derived from the loan: the
principal (``loans.amount``) falls due from the first disbursement on, either

- ``installment``: in equal parts every ``period_days``, the first ``first_due_days``
  after the first disbursement and the last on the maturity date; or
- ``bullet``: all at once on the maturity date.

Repayments pay the oldest instalment first. On day D (the whole day counts) the first
unpaid instalment is the first whose cumulative principal exceeds what was repaid up to
the end of D; ``days_past_due`` is the number of whole days from its due day to D, and
``overdue_days`` is the same figure once it exceeds the contract's grace period (0 before).
Interest is not scheduled: repayment rows do not split principal from interest, so every
repaid amount counts against principal. A loan without a maturity date has no schedule
(status ``no_schedule``) and is never overdue.

>>> import polars as pl
>>> from datetime import date
>>> from flowgraph.core.values import DAY_MS
>>> loans = pl.DataFrame({"loan_id": ["L1"], "amount": [300_00], "maturity_date": [90 * DAY_MS]})
>>> disb = pl.DataFrame({"loan_id": ["L1"], "ts": [0]})
>>> paid = pl.DataFrame({"loan_id": ["L1"], "ts": [31 * DAY_MS], "amount": [100_00]})
>>> st = repayment_status(loans, disb, paid, date(1970, 3, 20), ScheduleParams(grace_days=0))
>>> st.select("due_amount", "repaid_amount", "days_past_due", "overdue_days").row(0)
(20000, 10000, 18, 18)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import polars as pl

from flowgraph.core.errors import InvalidValue
from flowgraph.core.values import DAY_MS, day_start_ms, format_amount, format_ts, money_sum

SCHEDULES = ("installment", "bullet")

STATUS_SCHEMA: dict[str, pl.DataType] = {
    "loan_id": pl.Utf8(),
    "status": pl.Utf8(),
    "schedule": pl.Utf8(),
    "first_disbursed_ts": pl.Int64(),
    "maturity_ts": pl.Int64(),
    "principal": pl.Int64(),
    "due_amount": pl.Int64(),
    "repaid_amount": pl.Int128(),  # an exact sum: many large repayments may pass int64
    "arrears": pl.Int64(),
    "first_unpaid_due_ts": pl.Int64(),
    "next_due_ts": pl.Int64(),
    "days_past_due": pl.Int64(),
    "overdue_days": pl.Int64(),
}


@dataclass(frozen=True)
class ScheduleParams:
    """How the principal falls due (the classification rule carries these as parameters)."""

    schedule: str = field(default="installment", metadata={"choices": SCHEDULES, "doc": "installment: equal parts every period_days; bullet: all at maturity"})
    period_days: int = field(default=30, metadata={"min": 1, "max": 366, "doc": "days between instalments"})
    first_due_days: int = field(default=30, metadata={"min": 0, "max": 3660, "doc": "days from the first disbursement to the first instalment"})
    grace_days: int = field(default=15, metadata={"min": 0, "max": 365, "doc": "days past due before a loan counts as overdue"})


def _due_rows(loans: pl.DataFrame, p: ScheduleParams) -> pl.DataFrame:
    """(loan_id, due_ts, cum_due) for every instalment of every scheduled loan."""
    if p.schedule == "bullet":
        return loans.select("loan_id", pl.col("maturity_ts").alias("due_ts"), pl.col("principal").alias("cum_due"))
    first = pl.col("first_disbursed_ts") + p.first_due_days * DAY_MS
    # number of instalments: the regular dates strictly before maturity, plus maturity itself
    before = ((pl.col("maturity_ts") - first - 1) // (p.period_days * DAY_MS) + 1).clip(lower_bound=0)
    n = (before + 1).alias("n")
    rows = loans.with_columns(n).with_columns(pl.int_ranges(1, pl.col("n") + 1).alias("k")).explode("k")
    k = pl.col("k").cast(pl.Int64)
    regular = first + (k - 1) * p.period_days * DAY_MS
    return rows.select(
        "loan_id",
        pl.when(k == pl.col("n")).then(pl.col("maturity_ts")).otherwise(regular).alias("due_ts"),
        # cumulative principal in integer minor units; the last instalment takes the remainder
        (pl.col("principal") * k // pl.col("n")).alias("cum_due"),
    )


def repayment_status(
    loans: pl.DataFrame,
    disbursements: pl.DataFrame,
    repayments: pl.DataFrame,
    as_of: date,
    params: ScheduleParams | None = None,
) -> pl.DataFrame:
    """One row per loan disbursed by the end of ``as_of`` (columns of ``STATUS_SCHEMA``).

    ``loans`` needs loan_id, amount, maturity_date (ms or null); ``disbursements`` loan_id
    and ts; ``repayments`` loan_id, ts and amount. Amounts are int64 minor units.
    """
    p = params or ScheduleParams()
    if p.schedule not in SCHEDULES:
        raise InvalidValue(f"schedule must be one of {', '.join(SCHEDULES)}, not {p.schedule!r}")
    day0 = day_start_ms(as_of)
    end = day0 + DAY_MS
    first = (
        disbursements.filter(pl.col("ts") < end).group_by("loan_id").agg(pl.col("ts").min().alias("first_disbursed_ts"))
    )
    base = loans.select(
        "loan_id", pl.col("amount").alias("principal"), pl.col("maturity_date").cast(pl.Int64).alias("maturity_ts")
    ).join(first, on="loan_id", how="inner")
    repaid = (
        repayments.filter(pl.col("ts") < end).group_by("loan_id").agg(money_sum(pl.col("amount")).alias("repaid_amount"))
    )
    base = base.join(repaid, on="loan_id", how="left").with_columns(pl.col("repaid_amount").fill_null(0).cast(pl.Int128))
    scheduled = base.filter(pl.col("maturity_ts").is_not_null())
    dues = _due_rows(scheduled, p).join(scheduled.select("loan_id", "repaid_amount"), on="loan_id")
    per_loan = dues.group_by("loan_id").agg(
        pl.col("cum_due").filter(pl.col("due_ts") < end).max().fill_null(0).alias("due_amount"),
        pl.col("due_ts").filter(pl.col("cum_due") > pl.col("repaid_amount")).min().alias("first_unpaid_due_ts"),
        pl.col("due_ts").filter(pl.col("due_ts") >= end).min().alias("next_due_ts"),
    )
    unpaid_day = pl.col("first_unpaid_due_ts") - pl.col("first_unpaid_due_ts") % DAY_MS
    past = (
        pl.when(pl.col("first_unpaid_due_ts") < end).then((day0 - unpaid_day) // DAY_MS).otherwise(0).fill_null(0)
    )
    out = (
        base.join(per_loan, on="loan_id", how="left")
        .with_columns(
            pl.when(pl.col("maturity_ts").is_null()).then(pl.lit("no_schedule"))
            .when(pl.col("repaid_amount") >= pl.col("principal")).then(pl.lit("repaid"))
            .otherwise(pl.lit("open")).alias("status"),
            pl.when(pl.col("maturity_ts").is_null()).then(None).otherwise(pl.lit(p.schedule)).alias("schedule"),
            pl.col("due_amount").fill_null(0),
            past.alias("days_past_due"),
        )
        .with_columns(
            (pl.col("due_amount") - pl.col("repaid_amount")).clip(lower_bound=0).alias("arrears"),
            pl.when(pl.col("days_past_due") > p.grace_days).then(pl.col("days_past_due")).otherwise(0).alias("overdue_days"),
        )
    )
    return out.select([pl.col(c).cast(t) for c, t in STATUS_SCHEMA.items()]).sort("loan_id")


def status_json(row: dict, as_of: date) -> dict:
    """A status row as JSON: amounts as decimal strings, times ISO-8601."""
    out: dict = {"as_of": as_of.isoformat()}
    for k, v in row.items():
        if k.endswith("_ts"):
            out[k] = format_ts(v) if v is not None else None
        elif k in ("principal", "due_amount", "repaid_amount", "arrears"):
            out[k] = format_amount(v)
        else:
            out[k] = v
    return out


def store_repayment_status(store, as_of: date, params: ScheduleParams | None = None, loan_ids: list[str] | None = None) -> pl.DataFrame:
    """:func:`repayment_status` over a store's tables (optionally a few loans only)."""
    def scan(table: str, cols: list[str]) -> pl.DataFrame:
        lf = store.scan(table).select(cols)
        if loan_ids is not None:
            lf = lf.filter(pl.col("loan_id").is_in(loan_ids))
        return lf.collect()

    return repayment_status(
        scan("loans", ["loan_id", "amount", "maturity_date"]),
        scan("disbursements", ["loan_id", "ts"]),
        scan("repayments", ["loan_id", "ts", "amount"]),
        as_of,
        params,
    )
