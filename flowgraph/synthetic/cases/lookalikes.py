"""Look-alikes of the other rules: legitimate uses of a loan that resemble a rule's pattern.

Each is a negative control for one rule kind (``lookalike_of`` in the registry) that the
shipped pack must not flag as that kind:

``neg_entrusted_payee``      large_outflow: the borrower pays the loan's declared payee
                             (``loans.payee_account``) most of the loan the next day
``neg_known_supplier``       large_outflow: most of the loan goes, the next day, to a
                             supplier the borrower paid every month before the loan
``neg_supplier_payroll``     rapid_pass_through: the borrower pays its regular supplier,
                             which pays its staff's salaries within hours, as every month
``neg_routine_instalment``   repay_with_loan: the account the new loan lands in keeps paying
                             an older loan's monthly instalment, as before
``neg_home_purchase``        prohibited_destination: a home-purchase loan paid to the
                             developer's real-estate account (its declared payee)
``neg_split_unrelated``      split_disbursement: three unrelated borrowers with loans just
                             below the entrusted-payment threshold within a month
``neg_cycle_wrong_order``    transfer_cycle: three accounts that pay each other round,
                             but in an order in which no money can have gone round

>>> import numpy as np
>>> from flowgraph.synthetic.world import World
>>> kit = CaseKit(World(), np.random.Generator(np.random.PCG64(1)), inst_accounts=[])
>>> c = neg_known_supplier(kit)
>>> sum(1 for t in c.txs if t[2] == c.txs[-1][2]) >= 3
True
"""

from __future__ import annotations

import dataclasses

from flowgraph.core.values import DAY_MS, HOUR_MS
from flowgraph.synthetic.cases.kit import Case, CaseKit
from flowgraph.synthetic.cases.other_rules import SPLIT_THRESHOLD
from flowgraph.synthetic.constants import MINUTE_MS
from flowgraph.synthetic.loans import schedule
from flowgraph.synthetic.world import round_to


def _prior_payments(kit: CaseKit, src: int, dst: int, t0: int, n: int, memo: str) -> list:
    """``n`` monthly payments ``src → dst`` before ``t0`` (the last 10..20 days before it)."""
    last = t0 - int(kit.rng.integers(10, 20)) * DAY_MS
    return [(last - k * 30 * DAY_MS, src, dst, round_to(kit.rng.uniform(200_000, 4_000_000), 100), "transfer", memo)
            for k in range(n - 1, -1, -1)]  # fmt: skip


def neg_entrusted_payee(kit: CaseKit) -> Case:
    rng = kit.rng
    B, d = kit.borrower("company")
    S = kit.b.party("company")
    s = kit.b.account(S)
    li, t0, a = kit.new_loan(B, d)
    kit.w.loans[li] = dataclasses.replace(kit.w.loans[li], payee=s)
    t = t0 + int(rng.integers(2 * HOUR_MS, 40 * HOUR_MS))
    txs = [(t, d, s, round_to(a * rng.uniform(0.6, 1.0), 100), "transfer", "货款")]
    return Case(li, txs, None, "pays the loan's declared payee the next day", kit.owned_by({B}), d, a, t0)


def neg_known_supplier(kit: CaseKit) -> Case:
    rng = kit.rng
    B, d = kit.borrower("company")
    s = kit.fresh()
    li, t0, a = kit.new_loan(B, d, t0=kit.t0(130, 300))
    txs = _prior_payments(kit, d, s, t0, int(rng.integers(2, 5)), "货款")
    t = t0 + int(rng.integers(2 * HOUR_MS, 40 * HOUR_MS))
    txs.append((t, d, s, round_to(a * rng.uniform(0.6, 1.0), 100), "transfer", "货款"))
    return Case(li, txs, None, f"pays a supplier it paid {len(txs) - 1} times before", kit.owned_by({B}), d, a, t0)


def neg_supplier_payroll(kit: CaseKit) -> Case:
    rng = kit.rng
    B, d = kit.borrower("company")
    S = kit.b.party("company")
    s = kit.b.account(S)
    staff = [kit.b.account(kit.b.party("person")) for _ in range(int(rng.integers(4, 9)))]
    li, t0, a = kit.new_loan(B, d, t0=kit.t0(130, 300))
    txs = _prior_payments(kit, d, s, t0, 2, "货款")  # s is the borrower's regular supplier
    t_in = t0 + int(rng.integers(3 * HOUR_MS, 48 * HOUR_MS))
    x = round_to(a * rng.uniform(0.6, 0.9), 100)
    each = [round_to(x * 0.97 / len(staff) * rng.uniform(0.95, 1.05), 100) for _ in staff]
    for month in (2, 1):  # the same salaries in the two months before
        t_pay = t_in - month * 30 * DAY_MS
        txs += [(t_pay + k * MINUTE_MS, s, e, pay, "transfer", "工资") for k, (e, pay) in enumerate(zip(staff, each, strict=True))]
    txs.append((t_in, d, s, x, "transfer", "货款"))
    t_pay = t_in + int(rng.integers(HOUR_MS, 20 * HOUR_MS))
    txs += [(t_pay + k * MINUTE_MS, s, e, pay, "transfer", "工资") for k, (e, pay) in enumerate(zip(staff, each, strict=True))]
    txs.sort(key=lambda t: t[0])
    return Case(li, txs, None, f"regular supplier pays {len(staff)} salaries hours after being paid",
                kit.owned_by({B}), d, a, t0)  # fmt: skip


def neg_routine_instalment(kit: CaseKit) -> Case:
    rng = kit.rng
    B, d = kit.borrower("person")
    t_old = kit.t0(3, 120)
    a = kit.amount()
    old = kit.b.loan(B, round_to(a * rng.uniform(1.0, 2.0), 100_000), "self", t_old, d)
    kit.w.loans[old] = dataclasses.replace(kit.w.loans[old], months=12,
                                           maturity=t_old - t_old % DAY_MS + 12 * 30 * DAY_MS)  # fmt: skip
    schedule(kit.w, rng, old, d, t_old, may_default=False)
    # the new loan lands in the same account after at least two instalments of the old one,
    # within 30 days before the next one
    dues = kit.w.plans[old].dues
    k = int(rng.integers(2, min(6, len(dues) - 1)))
    t0 = dues[k] - int(rng.integers(2, 25)) * DAY_MS
    li, t0, a = kit.new_loan(B, d, t0=t0, amount=a)
    return Case(li, [], None, "the next instalment of an older loan, paid as every month", kit.owned_by({B}), d, a, t0)


def neg_home_purchase(kit: CaseKit) -> Case:
    rng = kit.rng
    B, d = kit.borrower("person")
    devs = [i for i in kit.inst if kit.w.a_cat[i] == "real_estate"]
    dev = devs[int(rng.integers(len(devs)))]
    li, t0, a = kit.new_loan(B, d)
    kit.w.loans[li] = dataclasses.replace(kit.w.loans[li], purpose="home purchase", product="mortgage", payee=dev)
    t = t0 + int(rng.integers(HOUR_MS, 5 * DAY_MS))
    txs = [(t, d, dev, round_to(a * rng.uniform(0.8, 1.0), 100), "transfer", "购房款")]
    return Case(li, txs, None, "home-purchase loan paid to the developer", kit.owned_by({B}), d, a, t0)


def neg_split_unrelated(kit: CaseKit) -> Case:
    rng = kit.rng
    t_first = kit.t0(3, 300)
    loans = []
    first = None
    for k in range(3):
        B, d = kit.borrower()
        amount = round_to(SPLIT_THRESHOLD * rng.uniform(0.82, 0.99), 100_000)
        li, t0, a = kit.new_loan(B, d, t0=t_first + k * int(rng.integers(2, 9)) * DAY_MS + k, amount=amount)
        loans.append(li)
        first = first or (B, d, t0, a)
    B, d, t0, a = first
    return Case(loans[0], [], None, "three unrelated borrowers just below the threshold in a month",
                kit.owned_by({B}), d, a, t0, more_loans=loans[1:])  # fmt: skip


def neg_cycle_wrong_order(kit: CaseKit) -> Case:
    rng = kit.rng
    B, d = kit.borrower()
    li, t0, a = kit.new_loan(B, d)
    c = [kit.fresh() for _ in range(3)]
    x = round_to(a * rng.uniform(0.3, 0.45), 100)
    t = kit.times(t0, 4, 4 * DAY_MS, 20 * DAY_MS, DAY_MS)
    # c1 → c2 and c2 → c0 happen before c0 is paid, c0 → c1 after: no money goes round
    txs = [(t[0], c[1], c[2], x, "transfer", "往来款"), (t[1], c[2], c[0], x, "transfer", "往来款"),
           (t[2], d, c[0], x, "transfer", "货款"), (t[3], c[0], c[1], x, "transfer", "往来款")]  # fmt: skip
    return Case(li, txs, None, "three accounts paying each other round, out of time order", kit.owned_by({B}), d, a, t0)
