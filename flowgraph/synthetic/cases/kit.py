"""What every case type builds with: the :class:`Case` it returns and the :class:`CaseKit` helpers.

A case type is a function ``make(kit) -> Case`` (see :mod:`flowgraph.synthetic.cases.registry`).
It draws everything from ``kit.rng``, adds the parties, accounts, loan and repayments it
needs to ``kit.w`` through the kit's helpers, and returns the injected transactions. Every
case lives on its own loan with a fresh borrower and fresh intermediaries, so cases do
not interact with each other or with the background.

>>> import numpy as np
>>> from flowgraph.synthetic.world import World
>>> kit = CaseKit(World(), np.random.Generator(np.random.PCG64(0)), inst_accounts=[])
>>> ts = kit.times(1_000, 3)
>>> ts == sorted(ts) and min(b - a for a, b in zip(ts, ts[1:])) >= 3_600_000
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from flowgraph.core.values import DAY_MS, HOUR_MS
from flowgraph.synthetic.constants import CASE_MAX_LOAN, MIN_DISBURSEMENT, START_MS
from flowgraph.synthetic.loans import schedule
from flowgraph.synthetic.world import Builder, World, round_to

# one injected transaction: (ts, src account, dst account, amount, channel, memo)
Tx = tuple[int, int, int, int, str, str]


@dataclass
class Case:
    """One injected case; ``typology`` and ``case_id`` are filled in by the registry."""

    loan: int
    txs: list[Tx]
    hops: int | None  # the intended path length (cycle length for transfer_cycle)
    note: str
    linked: set[int]  # accounts of the borrower side (T), for greedy tracing
    d: int  # disbursement account
    a: int  # disbursed amount
    t0: int  # disbursement time
    repaid_loan: int | None = None  # repay_with_loan: the loan whose repayment is reached
    more_loans: list[int] = field(default_factory=list)  # further loans of the case (split_disbursement)
    typology: str = ""
    case_id: str = ""


class CaseKit:
    """Helpers shared by the case types: amounts, times, fresh parties, loans and chains."""

    def __init__(self, world: World, rng: np.random.Generator, inst_accounts: list[int]):
        self.b = Builder(world, rng)
        self.w = world
        self.rng = rng
        self.inst = inst_accounts  # background category accounts (brokerage etc.)

    def amount(self) -> int:
        """A loan amount, log-uniform in 2M..50M CNY, in whole thousands of yuan."""
        lo, hi = math.log(MIN_DISBURSEMENT), math.log(CASE_MAX_LOAN)
        return round_to(math.exp(self.rng.uniform(lo, hi)), 100_000)

    def t0(self, lo_day: int = 3, hi_day: int = 300) -> int:
        """A disbursement time on day ``lo_day .. hi_day - 1`` of the year, 01:00–09:00 UTC."""
        day = int(self.rng.integers(lo_day, hi_day))
        return START_MS + day * DAY_MS + int(self.rng.integers(1 * HOUR_MS, 9 * HOUR_MS))

    def times(
        self, t0: int, n: int, lo: int = HOUR_MS, hi: int = 28 * DAY_MS, min_gap: int = HOUR_MS
    ) -> list[int]:
        """n strictly increasing times in (t0+lo, t0+hi] with gaps ≥ min_gap."""
        span = hi - lo - (n - 1) * min_gap
        pts = np.sort(self.rng.integers(0, span, size=n))
        return [t0 + lo + int(p) + k * min_gap + 1 for k, p in enumerate(pts)]

    def borrower(self, kind: str | None = None) -> tuple[int, int]:
        """A fresh borrower party and its first account."""
        kind = kind or ("company" if self.rng.random() < 0.6 else "person")
        p = self.b.party(kind)
        acct = self.b.account(p)
        return p, acct

    def fresh(self, opened_before: int | None = None) -> int:
        """An account of a fresh party (an intermediary), sometimes opened shortly before."""
        kind = "company" if self.rng.random() < 0.5 else "person"
        p = self.b.party(kind)
        opened = None
        if opened_before is not None and self.rng.random() < 0.5:
            opened = opened_before - int(self.rng.integers(5, 90)) * DAY_MS
        return self.b.account(p, opened=opened)

    def owned_by(self, parties: set[int]) -> set[int]:
        """Every account of ``parties`` (so far)."""
        return {i for p in parties for i in self.w.p_accounts.get(p, ())}

    def first_account(self, party: int) -> int:
        return self.w.p_accounts[party][0]

    def new_loan(
        self,
        borrower: int,
        acct: int,
        mode: str = "self",
        t0: int | None = None,
        amount: int | None = None,
        may_default: bool = True,
    ) -> tuple[int, int, int]:
        """A single-tranche loan paid into ``acct``, with its repayment schedule.

        Returns ``(loan, t0, amount)``. Repayments come from the borrower's first account,
        from 45 days after the disbursement on (:func:`flowgraph.synthetic.loans.schedule`).
        """
        t0 = self.t0() if t0 is None else t0
        a = self.amount() if amount is None else amount
        li = self.b.loan(borrower, a, mode, t0, acct)
        bacct = acct if mode == "self" else self.first_account(borrower)
        schedule(self.w, self.rng, li, bacct, t0, may_default)
        return li, t0, a

    def chain(
        self,
        start: int,
        end: int,
        n_mid: int,
        x: float,
        times: list[int],
        decay=(0.9, 1.0),
        opened_before: int | None = None,
        memo: str = "转账",
    ) -> tuple[list[Tx], list[int]]:
        """start → n_mid fresh accounts → end; returns (txs, mids)."""
        mids = [self.fresh(opened_before) for _ in range(n_mid)]
        nodes = [start, *mids, end]
        txs = []
        amt = x
        for k in range(len(nodes) - 1):
            if k:
                amt = amt * self.rng.uniform(*decay)
            txs.append((times[k], nodes[k], nodes[k + 1], round_to(amt, 100), "transfer", memo))
        return txs, mids
