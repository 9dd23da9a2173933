"""Background traffic: heavy-tailed transfers with a daily and weekly rhythm, made by the day range.

Seven kinds, each with its own senders, receivers, amounts and hours (Beijing time):
person-to-person transfers, card payments at merchants, supplier payments between
companies, salaries (10th and 25th of the month), bills to utilities, cash withdrawals and
small investments at institutions. Senders and receivers are drawn with Pareto weights,
so a few accounts are very busy. Every amount is below ``BACKGROUND_MAX``. Only active
accounts take part, never before they were opened (an account opened during the year —
a case's intermediary — is replaced by one open all year for earlier transactions), and
nobody pays themselves.

>>> import numpy as np
>>> from flowgraph.synthetic.background import background_world
>>> from flowgraph.synthetic.world import World
>>> w = World()
>>> _ = background_world(w, np.random.Generator(np.random.PCG64(0)), 300)
>>> src, dst, ts, amt, kind = Traffic(w, np.random.Generator(np.random.PCG64(1))).chunk(0, 7, 500)
>>> len(ts), bool((src != dst).all()), int(amt.max()) <= BACKGROUND_MAX
(500, True, True)
"""

from __future__ import annotations

import numpy as np

from flowgraph.core.values import DAY_MS, HOUR_MS
from flowgraph.synthetic.constants import BACKGROUND_MAX, DAYS, START_MS
from flowgraph.synthetic.world import World


class Traffic:
    """Vectorised background traffic generator, chunked by day ranges."""

    TYPES = ("p2p", "merchant", "supplier", "salary", "bill", "withdraw", "invest")
    SHARE = np.array([0.26, 0.34, 0.15, 0.09, 0.09, 0.05, 0.02])

    # (sender pool, receiver pool) of each kind
    POOLS = {
        "p2p": ("person", "person"),
        "merchant": ("person", "merchant"),
        "supplier": ("company", "company"),
        "salary": ("company", "person"),
        "bill": ("person", "utility"),
        "withdraw": ("person", "person"),
        "invest": ("person", "inst"),
    }

    def __init__(self, w: World, rng: np.random.Generator):
        self.rng = rng
        owner = np.asarray(w.a_owner)
        self.opened = np.asarray(w.a_opened, dtype=np.int64)
        is_person = np.asarray([k == "person" for k in w.p_kind])[owner]
        cat = np.asarray([c != "" for c in w.a_cat])
        active = np.asarray([s == "active" for s in w.a_status])
        ind = np.asarray(w.p_industry, dtype=object)[owner]
        self.person = np.flatnonzero(is_person & ~cat & active)
        comp = ~is_person & ~cat & active
        self.company = np.flatnonzero(comp)
        self.merchant = np.flatnonzero(comp & np.isin(ind, ["retail", "catering", "services"]))
        if len(self.merchant) == 0:
            self.merchant = self.company
        self.utility = np.flatnonzero(comp & (ind == "utilities"))
        if len(self.utility) == 0:
            self.utility = self.company[:2]
        self.inst = np.flatnonzero(cat & active)
        pools = {"person": self.person, "company": self.company, "merchant": self.merchant,
                 "utility": self.utility, "inst": self.inst}  # fmt: skip
        # accounts open all year, to stand in for one not yet opened
        self.early = {k: p[self.opened[p] <= START_MS] for k, p in pools.items()}
        assert all(len(p) >= 2 for p in self.early.values()), "too few accounts"
        case = np.asarray(w.a_case)

        def cdf(pool, alpha):
            wt = rng.pareto(alpha, size=len(pool)) + 1.0
            wt[case[pool]] *= 0.2  # case accounts: little background activity
            c = np.cumsum(wt)
            return c / c[-1]

        self.cdf = {
            "person_src": cdf(self.person, 1.3),
            "person_dst": cdf(self.person, 1.5),
            "company_src": cdf(self.company, 1.1),
            "company_dst": cdf(self.company, 1.1),
            "merchant": cdf(self.merchant, 1.0),
            "utility": cdf(self.utility, 1.2),
            "inst": cdf(self.inst, 1.5),
        }
        # each person account has an employer account (heavy-tailed payroll sizes)
        emp_cdf = cdf(self.company, 0.9)
        self.employer = self.company[
            np.searchsorted(emp_cdf, rng.random(len(self.person)), side="right").clip(
                0, len(self.company) - 1
            )
        ]
        # day weights: weekly rhythm
        dow = (np.arange(DAYS) + 0) % 7  # 2024-01-01 is a Monday → dow 0 = Monday
        self.day_w = np.where(dow < 5, 1.0, np.where(dow == 5, 0.65, 0.55))
        self.weekday = dow < 5
        dates = np.datetime64("2024-01-01") + np.arange(DAYS)
        self.dom = (dates - dates.astype("datetime64[M]").astype("datetime64[D]")).astype(
            np.int64
        ) + 1

    def open_at(self, acc: np.ndarray, ts: np.ndarray, pool: str) -> np.ndarray:
        """``acc``, with each account not yet opened at ``ts`` replaced by one open all year."""
        late = self.opened[acc] > ts
        if late.any():
            early = self.early[pool]
            acc = acc.copy()
            acc[late] = early[self.rng.integers(len(early), size=int(late.sum()))]
        return acc

    def distinct(self, s: np.ndarray, d: np.ndarray, pool: str) -> np.ndarray:
        """``d``, with each receiver equal to its sender replaced by another open account."""
        same = s == d
        early = self.early[pool]
        d[same] = early[(np.searchsorted(early, d[same]) + 1) % len(early)]
        return d

    def pick(self, pool: np.ndarray, key: str, n: int) -> np.ndarray:
        i = np.searchsorted(self.cdf[key], self.rng.random(n), side="right")
        return pool[np.minimum(i, len(pool) - 1)]

    def tod(self, n: int, kind: str) -> np.ndarray:
        """UTC time of day in ms, from a Beijing-local (UTC+8) hour profile."""
        rng = self.rng
        if kind == "supplier":
            h = rng.normal(np.where(rng.random(n) < 0.5, 10.5, 15.0), 1.3)
        elif kind == "merchant":
            h = rng.normal(rng.choice([12.3, 18.8, 15.0], size=n, p=[0.35, 0.45, 0.2]), 1.6)
        elif kind == "salary":
            h = rng.normal(9.5, 0.4, size=n)
        else:
            h = rng.normal(rng.choice([10.0, 20.5], size=n), 2.8)
        local = np.clip(h, 0.0, 23.999) * HOUR_MS
        return ((local.astype(np.int64) - 8 * HOUR_MS) % DAY_MS).astype(np.int64)

    def chunk(self, d0: int, d1: int, n: int):
        """n background transactions on days [d0, d1)."""
        rng = self.rng
        counts = rng.multinomial(n, self.SHARE)
        days = np.arange(d0, d1)
        srcs, dsts, tss, amts, types = [], [], [], [], []
        for t_i, (kind, k) in enumerate(zip(self.TYPES, counts, strict=True)):
            if k == 0:
                continue
            k = int(k)
            if kind == "salary":
                pay = days[np.isin(self.dom[days], [10, 25])]
                if len(pay) == 0:
                    pay = days
                dy = rng.choice(pay, size=k)
            else:
                wt = self.day_w[days].copy()
                if kind == "supplier":
                    wt = np.where(self.weekday[days], wt, 0.1)
                dy = rng.choice(days, size=k, p=wt / wt.sum())
            ts = START_MS + dy.astype(np.int64) * DAY_MS + self.tod(k, kind)
            if kind == "p2p" or kind == "withdraw":
                s = self.pick(self.person, "person_src", k)
                d = self.pick(self.person, "person_dst", k)
                if kind == "p2p":
                    a = np.exp(rng.normal(np.log(80_000), 1.2, size=k))
                    a = np.where(rng.random(k) < 0.5, np.round(a / 10_000) * 10_000, a)
                else:
                    a = rng.integers(1, 50, size=k) * 10_000.0
            elif kind == "merchant":
                s = self.pick(self.person, "person_src", k)
                d = self.pick(self.merchant, "merchant", k)
                a = np.exp(rng.normal(np.log(12_000), 1.1, size=k))
            elif kind == "supplier":
                s = self.pick(self.company, "company_src", k)
                d = self.pick(self.company, "company_dst", k)
                a = np.exp(rng.normal(np.log(1_200_000), 1.0, size=k))
            elif kind == "salary":
                j = np.searchsorted(self.cdf["person_dst"], rng.random(k), side="right").clip(
                    0, len(self.person) - 1
                )
                d = self.person[j]
                s = self.employer[j]
                a = np.exp(rng.normal(np.log(800_000), 0.5, size=k))
            elif kind == "bill":
                s = self.pick(self.person, "person_src", k)
                d = self.pick(self.utility, "utility", k)
                a = np.exp(rng.normal(np.log(20_000), 0.6, size=k))
            else:  # invest: small transfers to brokerage / crypto / ... accounts
                s = self.pick(self.person, "person_src", k)
                d = self.pick(self.inst, "inst", k)
                a = np.round(np.exp(rng.normal(np.log(500_000), 0.8, size=k)) / 10_000) * 10_000
            sp, dp = self.POOLS[kind]
            s, d = self.open_at(s, ts, sp), self.open_at(d, ts, dp)
            if sp == dp:
                d = self.distinct(s, d, dp)
            srcs.append(s)
            dsts.append(d)
            tss.append(ts)
            amts.append(np.clip(a, 1, BACKGROUND_MAX).astype(np.int64))
            types.append(np.full(k, t_i, dtype=np.int8))
        return (
            np.concatenate(srcs),
            np.concatenate(dsts),
            np.concatenate(tss),
            np.concatenate(amts),
            np.concatenate(types),
        )


CHANNEL = ["transfer", "card", "transfer", "transfer", "transfer", "withdraw", "transfer"]
MEMO = ["转账", "消费", "货款", "工资", "缴费", "取现", "理财"]
