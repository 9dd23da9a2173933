"""The life of a loan after its disbursement: repayments, settlement and quarterly grades.

Every loan is repaid from one account in instalments 30 days apart, the first 45 days
after its first disbursement, the last before maturity. The instalments add up to what
is owed: the principal plus simple interest at the loan's rate over its term (days from
the disbursement day to maturity, ACT/360, rounded down to a minor unit). Some borrowers
stop paying from one instalment of the data year on (:data:`DEFAULT_SHARE` of the loans
that may default). Rows after the end of the data year are not written. (A repayment
from the disbursement account within a rule window after a disbursement into it would be
a 0-hop repay-with-loan: single-tranche loans repay 45 days after it; the caller of
:func:`schedule` pays loans with later tranches from another account.)

Once every case is in (a ``repay_with_loan`` case adds a third party's repayment, a
prepayment of that loan), :func:`settle_and_grade` drops the instalments a loan no longer
needs (nobody repays more than is owed) and writes one manual grade per quarter end
after the loan's first disbursement. The grade is the one the product's own rules give
from the repayments: days overdue as :func:`flowgraph.rules.repayment.repayment_status`
counts them, graded by the overdue floors of the default classification rule
(:class:`flowgraph.rules.classification.ClassificationParams`). A performing borrower is
never overdue there (it pays more than the derived instalment, within the grace period),
so ``flowgraph classify`` on generated data raises grades for alerts only.

>>> grade_for(0), grade_for(1), grade_for(91), grade_for(400)
('normal', 'special_mention', 'substandard', 'loss')
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

from flowgraph.core.values import DAY_MS, HOUR_MS
from flowgraph.rules.classification import ClassificationParams
from flowgraph.rules.repayment import repayment_status
from flowgraph.synthetic.constants import END_MS, QUARTER_ENDS
from flowgraph.synthetic.world import Plan, World

FIRST_DUE_DAYS = 45
PERIOD_DAYS = 30
DEFAULT_SHARE = 0.1
GRADING = ClassificationParams()  # the default classification rule's schedule and floors


def grade_for(overdue_days: int) -> str:
    """The grade of a loan overdue this many days (the default rule's floors)."""
    return next((g for days, g in GRADING.overdue_floors() if overdue_days > days), "normal")


def owed(w: World, li: int) -> int:
    """Principal plus simple interest over the loan's term (ACT/360), in minor units."""
    ln = w.loans[li]
    return ln.amount + int(ln.amount * ln.rate * ln.months * 30 / 360)


def schedule(
    w: World, rng: np.random.Generator, li: int, account: int, t_first: int, may_default: bool = True
) -> None:
    """Plan loan ``li``'s instalments from ``account`` and write those that are paid.

    ``t_first`` is the time of the loan's first disbursement. A loan that ``may_default``
    stops being paid from a random instalment of the data year on, with probability
    :data:`DEFAULT_SHARE`.
    """
    maturity = w.loans[li].maturity
    t = t_first + FIRST_DUE_DAYS * DAY_MS
    t = t - t % DAY_MS + 2 * HOUR_MS + int(rng.integers(0, HOUR_MS))
    dues = []
    while t < maturity:
        dues.append(t)
        t += PERIOD_DAYS * DAY_MS
    assert dues, f"loan {li}: no instalment before maturity"
    total = owed(w, li)
    inst = -(-total // len(dues))
    stop = len(dues)
    in_year = sum(t < END_MS for t in dues)
    if may_default and in_year and rng.random() < DEFAULT_SHARE:
        stop = int(rng.integers(0, in_year))
    w.plans[li] = Plan(account, tuple(dues), inst, total, may_default)
    paid = 0
    for t in dues[:stop]:
        if t >= END_MS:
            break
        x = min(inst, total - paid)
        w.repay.append((li, account, x, t))
        paid += x


def settle_and_grade(w: World) -> None:
    """Drop instalments beyond what is owed, then grade every loan at each quarter end."""
    kept = []
    for li, rows in _by_loan(w.repay).items():
        plan = w.plans[li]
        paid = 0
        for r in sorted(rows, key=lambda r: (r[3], r[1])):
            x = min(r[2], plan.owed - paid)
            if x < r[2]:  # only the loan's own instalments ever give way
                assert r[1] == plan.account and r[3] in plan.dues, f"loan {li}: {r} over-repays"
            if x > 0:
                kept.append((r[0], r[1], x, r[3]))
                paid += x
    w.repay = kept
    loans = pl.DataFrame(
        {"loan_id": range(len(w.loans)), "amount": [x.amount for x in w.loans],
         "maturity_date": [x.maturity for x in w.loans]},
        schema={"loan_id": pl.Int64, "amount": pl.Int64, "maturity_date": pl.Int64},
    )  # fmt: skip
    disb = pl.DataFrame([(x[0], x[3]) for x in w.disb], schema=["loan_id", "ts"], orient="row")
    repaid = pl.DataFrame(
        [(x[0], x[3], x[2]) for x in kept], schema={"loan_id": pl.Int64, "ts": pl.Int64,
                                                   "amount": pl.Int64}, orient="row",
    )  # fmt: skip
    first = disb.group_by("loan_id").agg(pl.col("ts").min())
    for q in QUARTER_ENDS:
        day = dt.datetime.fromtimestamp(q / 1000, dt.UTC).date()
        graded = set(first.filter(pl.col("ts") < q)["loan_id"].to_list())
        status = repayment_status(loans, disb, repaid, day, GRADING.schedule_params())
        for loan_id, overdue in status.select("loan_id", "overdue_days").rows():
            li = int(loan_id)
            if li in graded:
                g = grade_for(overdue)
                w.classif.append((li, q, g, "manual", "" if g == "normal" else f"overdue {overdue} days"))


def _by_loan(rows: list[tuple[int, int, int, int]]) -> dict[int, list[tuple[int, int, int, int]]]:
    out: dict[int, list[tuple[int, int, int, int]]] = {}
    for r in rows:
        out.setdefault(r[0], []).append(r)
    return out
