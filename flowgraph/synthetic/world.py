"""The world: parties, accounts, relations and loans as parallel lists, and the builder that adds them.

Indices into the lists are internal ids; :mod:`flowgraph.synthetic.writer` turns them into
``P…``/``A…``/``L…`` ids. Phones, addresses and company codes come from affine maps that
are one-to-one for any realistic number of parties, so every party gets its own unless a
phone or address is shared on purpose.

>>> import numpy as np
>>> w = World()
>>> b = Builder(w, np.random.Generator(np.random.PCG64(0)))
>>> p = b.party("person")
>>> a = b.account(p)
>>> w.p_kind[p], w.a_kind[a], w.p_accounts[p]
('person', 'personal', [0])
>>> unique_phone(0) != unique_phone(1)
True
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from flowgraph.core.schema import GRADES
from flowgraph.core.values import DAY_MS, HOUR_MS
from flowgraph.synthetic.constants import END_MS, QUARTER_ENDS, START_MS
from flowgraph.synthetic.vocabulary import (
    BRANCHES,
    DISTRICTS,
    GIVEN,
    GRADE_REASON,
    INDUSTRIES,
    INDUSTRY_CN,
    PRODUCTS,
    PURPOSES,
    REGIONS,
    ROADS,
    SURNAMES,
    WORDS,
)


@dataclass
class World:
    """Parties and accounts as parallel Python lists (indices are internal ids)."""

    p_kind: list[str] = field(default_factory=list)
    p_name: list[str] = field(default_factory=list)
    p_idnum: list[str] = field(default_factory=list)
    p_phone: list[str] = field(default_factory=list)
    p_addr: list[str] = field(default_factory=list)
    p_industry: list[str] = field(default_factory=list)
    p_region: list[str] = field(default_factory=list)
    p_case: list[bool] = field(default_factory=list)
    a_owner: list[int] = field(default_factory=list)
    a_opened: list[int] = field(default_factory=list)
    a_kind: list[str] = field(default_factory=list)
    a_cat: list[str] = field(default_factory=list)
    a_branch: list[str] = field(default_factory=list)
    a_status: list[str] = field(default_factory=list)
    a_case: list[bool] = field(default_factory=list)
    rel: list[tuple[int, int, str, int]] = field(default_factory=list)
    # loans: (borrower, amount, product, purpose, branch, industry, region, mode, maturity, rate)
    loans: list[tuple] = field(default_factory=list)
    disb: list[tuple[int, int, int, int]] = field(default_factory=list)  # loan, account, amount, ts
    # repayments: (loan, account, amount, ts)
    repay: list[tuple[int, int, int, int]] = field(default_factory=list)
    classif: list[tuple[int, int, str, str, str]] = field(default_factory=list)
    unique_counter: int = 0  # for unique phones / addresses / id numbers
    p_accounts: dict[int, list[int]] = field(default_factory=dict)


def affine(i: int, mod: int, mul: int, add: int) -> int:
    return (i * mul + add) % mod


def unique_phone(i: int) -> str:
    prefixes = ("138", "139", "186", "150", "151", "188", "135", "177")
    return prefixes[i % len(prefixes)] + f"{affine(i, 10**8, 48_271_211, 12_345_677):08d}"


def unique_address(i: int, city: str) -> str:
    j = affine(i, 10**7, 7_654_321, 1_234_567)
    return f"{city}{DISTRICTS[j % 10]}{ROADS[(j // 10) % 12]}{j // 120 + 1}号"


def id_number(region_code: str, birth_ms: int, seq: int) -> str:
    import datetime as _dt

    b = _dt.datetime(1970, 1, 1) + _dt.timedelta(milliseconds=birth_ms)
    body = f"{region_code}{b:%Y%m%d}{seq % 1000:03d}"
    w = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    s = sum(int(c) * k for c, k in zip(body, w, strict=True))
    return body + "10X98765432"[s % 11]


def company_code(i: int) -> str:
    return f"91{affine(i, 10**16, 982_451_653, 3_141_592_653):016d}"


class Builder:
    def __init__(self, world: World, rng: np.random.Generator):
        self.w = world
        self.rng = rng

    # -- entities
    def party(
        self,
        kind: str,
        name: str | None = None,
        case: bool = True,
        region: int | None = None,
        industry: str | None = None,
    ) -> int:
        w, rng = self.w, self.rng
        i = len(w.p_kind)
        u = w.unique_counter
        w.unique_counter += 1
        r = int(rng.integers(len(REGIONS))) if region is None else region
        city, code = REGIONS[r]
        if kind == "person":
            if name is None:
                name = SURNAMES[int(rng.integers(len(SURNAMES)))] + "".join(
                    GIVEN[int(k)] for k in rng.integers(len(GIVEN), size=int(rng.integers(1, 3)))
                )
            birth = int(rng.integers(-15_000, 12_000)) * DAY_MS
            idnum = id_number(code, birth, u)
            ind = industry or ""
        else:
            ind = industry or INDUSTRIES[int(rng.integers(len(INDUSTRIES)))]
            if name is None:
                name = self.company_name(city, ind)
            idnum = company_code(u)
        w.p_kind.append(kind)
        w.p_name.append(name)
        w.p_idnum.append(idnum)
        w.p_phone.append(unique_phone(u))
        w.p_addr.append(unique_address(u, city))
        w.p_industry.append(ind)
        w.p_region.append(city)
        w.p_case.append(case)
        return i

    def company_name(self, city: str, ind: str) -> str:
        a, b = self.rng.integers(len(WORDS), size=2)
        return f"{city}{WORDS[int(a)]}{WORDS[int(b)]}{INDUSTRY_CN[ind]}有限公司"

    def account(
        self, owner: int, opened: int | None = None, category: str = "", case: bool = True
    ) -> int:
        w, rng = self.w, self.rng
        i = len(w.a_owner)
        if opened is None:
            opened = START_MS - int(rng.integers(30, 4000)) * DAY_MS + int(rng.integers(0, DAY_MS))
        w.a_owner.append(owner)
        w.a_opened.append(opened)
        w.a_kind.append("personal" if w.p_kind[owner] == "person" else "corporate")
        w.a_cat.append(category)
        w.a_branch.append(BRANCHES[int(rng.integers(len(BRANCHES)))])
        w.a_status.append("active")
        w.a_case.append(case)
        w.p_accounts.setdefault(owner, []).append(i)
        return i

    def loan(self, borrower: int, amount: int, mode: str, t0: int, acct: int) -> int:
        w, rng = self.w, self.rng
        li = len(w.loans)
        kind = w.p_kind[borrower]
        months = int(rng.choice([12, 24, 36]))
        rate = round(float(rng.uniform(0.03, 0.065)), 4)
        w.loans.append(
            (
                borrower,
                amount,
                PRODUCTS[kind][int(rng.integers(3))],
                PURPOSES[int(rng.integers(len(PURPOSES)))],
                BRANCHES[int(rng.integers(len(BRANCHES)))],
                w.p_industry[borrower] or "personal",
                w.p_region[borrower],
                mode,
                t0 - t0 % DAY_MS + months * 30 * DAY_MS,
                rate,
            )
        )
        w.disb.append((li, acct, amount, t0))
        return li

    def schedule(
        self, li: int, acct: int, t_last: int, amount: int, rate: float, maturity: int
    ) -> None:
        """Monthly repayments starting 45 days after the last tranche, plus classifications."""
        w, rng = self.w, self.rng
        months = max(1, (maturity - t_last) // (30 * DAY_MS))
        inst = amount // months + int(amount * rate / 12)
        t = t_last + 45 * DAY_MS
        t = t - t % DAY_MS + 2 * HOUR_MS + int(rng.integers(0, HOUR_MS))
        while t < END_MS and t < maturity:
            w.repay.append((li, acct, inst, t))
            t += 30 * DAY_MS
        grade = int(rng.choice(5, p=[0.85, 0.08, 0.04, 0.02, 0.01]))
        for q_end in QUARTER_ENDS:
            if q_end <= t_last:
                continue
            if grade < 4 and rng.random() < 0.05:
                grade += 1
            g = GRADES[grade]
            w.classif.append((li, q_end, g, "manual", GRADE_REASON[g]))


def round_to(x: float, unit: int) -> int:
    """``x`` rounded down to a multiple of ``unit``, at least ``unit``.

    >>> round_to(1_234_567.8, 100), round_to(5, 100)
    (1234500, 100)
    """
    return max(unit, int(x // unit) * unit)
