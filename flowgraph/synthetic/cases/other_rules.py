"""Case types for the other rules: each one is expected to fire the rule of its name.

``repay_with_loan``  the chain ends at a third party's account that repays the same loan or
                     an older loan of the borrower inside the window (repayment row included)
``prohibited_destination`` the chain ends at an account of category brokerage / real_estate
                     / lender / crypto
``rapid_pass_through`` an intermediary forwards ≥ 90 % of what it received within hours
``transfer_cycle``   proceeds feed a cycle of 3..6 large transfers among non-borrower
                     accounts with increasing timestamps (``hops`` is the cycle length)
``large_outflow``    most of the loan to a never-paid counterparty within three days
``split_disbursement`` three linked borrowers just below the entrusted-payment threshold
                     within a month (every loan of the case is labelled)

>>> import numpy as np
>>> from flowgraph.synthetic.world import World
>>> kit = CaseKit(World(), np.random.Generator(np.random.PCG64(1)), inst_accounts=[])
>>> c = transfer_cycle(kit)
>>> cyc = c.txs[1:]
>>> len(cyc) == c.hops and cyc[0][1] == cyc[-1][2]
True
"""

from __future__ import annotations

import numpy as np

from flowgraph.core.values import DAY_MS, HOUR_MS
from flowgraph.synthetic.cases.kit import Case, CaseKit
from flowgraph.synthetic.constants import MINUTE_MS
from flowgraph.synthetic.loans import schedule
from flowgraph.synthetic.world import round_to

SPLIT_THRESHOLD = 500_000_000  # the split_disbursement rule's default threshold (5 000 000.00)


def repay_with_loan(kit: CaseKit) -> Case:
    rng = kit.rng
    B, d = kit.borrower()
    other = rng.random() < 0.5
    t0 = kit.t0(95, 300) if other else None
    # a loan a third party repays part of keeps being paid (see flowgraph.synthetic.loans)
    li, t0, a = kit.new_loan(B, d, t0=t0, may_default=other)
    Q = kit.b.party("company")
    r = kit.b.account(Q)
    hops = int(rng.integers(1, 5))
    ts = kit.times(t0, hops + 1, HOUR_MS, 27 * DAY_MS)
    txs, _ = kit.chain(d, r, hops - 1, a * rng.uniform(0.5, 1.0), ts[:-1], opened_before=t0)
    pay = round_to(txs[-1][3] * rng.uniform(0.8, 1.0), 100)
    if other:
        d0 = kit.b.account(B)
        t_old = t0 - int(rng.integers(60, 90)) * DAY_MS
        # at least twice the third party's repayment, which so stays within what is owed
        amount = max(kit.amount(), -(-2 * pay // 100_000) * 100_000)
        old = kit.b.loan(B, amount, "self", t_old, d0)
        schedule(kit.w, rng, old, d0, t_old, may_default=False)
        target, what = old, "an older loan of the borrower"
    else:
        target, what = li, "the same loan"
    kit.w.repay.append((target, r, pay, ts[-1]))
    return Case(
        li,
        txs,
        hops,
        f"proceeds reach a repayment of {what} from a third-party account",
        kit.owned_by({B}),
        d,
        a,
        t0,
        repaid_loan=target,
    )


def prohibited_destination(kit: CaseKit) -> Case:
    rng = kit.rng
    B, d = kit.borrower()
    li, t0, a = kit.new_loan(B, d)
    dest = kit.inst[int(rng.integers(len(kit.inst)))]
    hops = int(rng.integers(1, 5))
    ts = kit.times(t0, hops)
    txs, _ = kit.chain(
        d, dest, hops - 1, a * rng.uniform(0.3, 1.0), ts, opened_before=t0, memo="投资"
    )
    cat = kit.w.a_cat[dest]
    return Case(
        li,
        txs,
        hops,
        f"proceeds reach a {cat} account",
        kit.owned_by({B}),
        d,
        a,
        t0,
    )


def rapid_pass_through(kit: CaseKit) -> Case:
    rng = kit.rng
    B, d = kit.borrower()
    li, t0, a = kit.new_loan(B, d)
    m = kit.fresh(t0)
    t_in = kit.times(t0, 1, HOUR_MS, 10 * DAY_MS)[0]
    x = round_to(a * rng.uniform(0.5, 1.0), 100)
    txs = [(t_in, d, m, x, "transfer", "货款")]
    pieces = int(rng.integers(1, 3))
    share = rng.uniform(0.91, 0.995)
    fr = 0.3 + (1 - 0.3 * pieces) * rng.dirichlet(np.ones(pieces)) if pieces > 1 else [1.0]
    outs = kit.times(t_in, pieces, 20 * MINUTE_MS, 4 * HOUR_MS, 5 * MINUTE_MS)
    for j in range(pieces):
        txs.append(
            (outs[j], m, kit.fresh(), round_to(x * share * fr[j], 100), "transfer", "往来款")
        )
    fwd = sum(t[3] for t in txs[1:])
    return Case(
        li,
        txs,
        2,
        f"intermediary forwards {fwd / x:.1%} of what it received within {(outs[-1] - t_in) / HOUR_MS:.1f} h",
        kit.owned_by({B}),
        d,
        a,
        t0,
    )


def transfer_cycle(kit: CaseKit) -> Case:
    rng = kit.rng
    B, d = kit.borrower()
    li, t0, a = kit.new_loan(B, d)
    L = int(rng.integers(3, 7))
    cyc = [kit.fresh(t0) for _ in range(L)]
    ts = kit.times(t0, L + 1)
    x = a * rng.uniform(0.5, 1.0)
    txs = [(ts[0], d, cyc[0], round_to(x, 100), "transfer", "货款")]
    for k in range(L):
        x *= rng.uniform(0.96, 0.995)
        txs.append((ts[k + 1], cyc[k], cyc[(k + 1) % L], round_to(x, 100), "transfer", "往来款"))
    return Case(
        li,
        txs,
        L,
        f"cycle of {L} large transfers fed by the proceeds",
        kit.owned_by({B}),
        d,
        a,
        t0,
    )


def large_outflow(kit: CaseKit) -> Case:
    """Most of the loan leaves in one transfer, within three days, to an account the
    borrower never paid before (which keeps it)."""
    rng = kit.rng
    B, d = kit.borrower()
    li, t0, a = kit.new_loan(B, d)
    x = kit.fresh(t0)
    t = t0 + int(rng.integers(HOUR_MS, 70 * HOUR_MS))
    share = rng.uniform(0.55, 0.98)
    txs = [(t, d, x, round_to(a * share, 100), "transfer", "往来款")]
    return Case(li, txs, 1, f"{share:.0%} of the loan to a new counterparty within {(t - t0) / HOUR_MS:.0f} h",
                kit.owned_by({B}), d, a, t0)  # fmt: skip


def split_disbursement(kit: CaseKit) -> Case:
    """Three linked borrowers (a company, its legal representative, an affiliate) take loans
    just below the entrusted-payment threshold within a month (化整为零)."""
    rng = kit.rng
    C, dc = kit.borrower("company")
    P, dp = kit.borrower("person")
    A, da = kit.borrower("company")
    t_first = kit.t0(3, 300)
    kit.b.relate(P, C, "legal_rep", t_first - 400 * DAY_MS)
    kit.b.relate(C, A, "affiliate", t_first - 400 * DAY_MS)
    loans = []
    for k, (B, d) in enumerate(((C, dc), (P, dp), (A, da))):
        amount = round_to(SPLIT_THRESHOLD * rng.uniform(0.82, 0.99), 100_000)
        li, t0, a = kit.new_loan(B, d, t0=t_first + k * int(rng.integers(2, 9)) * DAY_MS + k, amount=amount)
        loans.append((li, t0, a))
    li, t0, a = loans[0]
    return Case(li, [], None, "three linked borrowers just below the threshold within a month",
                kit.owned_by({C}), dc, a, t0, more_loans=[x[0] for x in loans[1:]])  # fmt: skip
