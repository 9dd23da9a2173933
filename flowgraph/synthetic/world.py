"""The world: parties, accounts, relations and loans as parallel lists, and the builder that adds them.

Indices into the lists are internal ids; :mod:`flowgraph.synthetic.writer` turns them into
``P…``/``A…``/``L…`` ids. The builder keeps the world consistent as it grows:

- a party lives in one city: its region, its address (``<city><district of that city>
  <road><n>号``) and a company's name all name the same city; a party that takes over
  someone's address (:meth:`Builder.share_address`) moves to that city;
- phones, addresses and company codes come from affine maps that are one-to-one for any
  realistic number of parties, so every party gets its own unless one is shared on
  purpose; a national id number is ``<region code><birth date><sequence><check>`` with a
  sequence counted per (region code, birth date), so id numbers never collide;
- a person's birth date is kept (:attr:`World.p_birth`) so that relations can start only
  once both sides are born (adults, for the relations that need one).

>>> import numpy as np
>>> w = World()
>>> b = Builder(w, np.random.Generator(np.random.PCG64(0)))
>>> p = b.party("person")
>>> a = b.account(p)
>>> w.p_kind[p], w.a_kind[a], w.p_accounts[p]
('person', 'personal', [0])
>>> w.p_addr[p].startswith(w.p_region[p])
True
>>> unique_phone(0) != unique_phone(1)
True
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np

from flowgraph.core.values import DAY_MS
from flowgraph.synthetic.constants import START_MS
from flowgraph.synthetic.vocabulary import (
    BRANCHES,
    DISTRICTS,
    GIVEN,
    INDUSTRIES,
    INDUSTRY_CN,
    PRODUCTS,
    PURPOSES,
    REGIONS,
    ROADS,
    SURNAMES,
    WORDS,
)

EPOCH = dt.date(1970, 1, 1)
# relations a person can only have from 18 on
ADULT_RELATIONS = frozenset({"spouse", "legal_rep", "shareholder", "investor", "guarantor"})
PARENT_GAP_MS = 16 * 366 * DAY_MS  # a parent is at least 16 years older than the child


@dataclass(frozen=True)
class Loan:
    borrower: int
    amount: int
    product: str
    purpose: str
    branch: str
    industry: str
    region: str
    mode: str  # payment mode: self / entrusted
    maturity: int  # ms
    rate: float
    months: int  # term
    payee: int | None = None  # declared payee account (loans.payee_account)


@dataclass(frozen=True)
class Plan:
    """A loan's repayment plan: instalments due at ``dues`` from ``account``, adding up to ``owed``."""

    account: int
    dues: tuple[int, ...]  # ms, 30 days apart, all before maturity
    instalment: int
    owed: int  # principal plus simple interest over the term
    may_default: bool


@dataclass
class World:
    """Parties, accounts, loans and their events as parallel Python lists (indices are ids)."""

    p_kind: list[str] = field(default_factory=list)
    p_name: list[str] = field(default_factory=list)
    p_idnum: list[str] = field(default_factory=list)
    p_phone: list[str] = field(default_factory=list)
    p_addr: list[str] = field(default_factory=list)
    p_industry: list[str] = field(default_factory=list)
    p_region: list[str] = field(default_factory=list)
    p_birth: list[int | None] = field(default_factory=list)  # ms at 00:00 UTC; None: company
    p_case: list[bool] = field(default_factory=list)
    a_owner: list[int] = field(default_factory=list)
    a_opened: list[int] = field(default_factory=list)
    a_kind: list[str] = field(default_factory=list)
    a_cat: list[str] = field(default_factory=list)
    a_branch: list[str] = field(default_factory=list)
    a_status: list[str] = field(default_factory=list)
    a_case: list[bool] = field(default_factory=list)
    rel: list[tuple[int, int, str, int]] = field(default_factory=list)  # a, b, relation, since
    loans: list[Loan] = field(default_factory=list)
    disb: list[tuple[int, int, int, int]] = field(default_factory=list)  # loan, account, amount, ts
    repay: list[tuple[int, int, int, int]] = field(default_factory=list)  # loan, account, amount, ts
    classif: list[tuple[int, int, str, str, str]] = field(default_factory=list)  # loan, as_of, grade, source, reason
    plans: dict[int, Plan] = field(default_factory=dict)  # loan → repayment plan
    unique_counter: int = 0  # for unique phones / addresses / company codes
    id_seq: dict[tuple[str, int], int] = field(default_factory=dict)  # (region code, birth) → used
    p_accounts: dict[int, list[int]] = field(default_factory=dict)

    def person_id_number(self, region_code: str, birth_ms: int) -> str:
        """The next free national id number for this region code and birth date."""
        key = (region_code, birth_ms)
        seq = self.id_seq.get(key, 0)
        if seq >= 1000:  # pragma: no cover - needs 1000 people born on one day in one place
            raise AssertionError(f"more than 1000 id numbers for {key}")
        self.id_seq[key] = seq + 1
        return id_number(region_code, birth_ms, seq)


def affine(i: int, mod: int, mul: int, add: int) -> int:
    """``(i * mul + add) % mod``: one-to-one on ``0 .. mod-1`` when ``mul`` is prime to ``mod``."""
    return (i * mul + add) % mod


def unique_phone(i: int) -> str:
    """The ``i``-th phone number (distinct for distinct ``i`` below 10**8)."""
    prefixes = ("138", "139", "186", "150", "151", "188", "135", "177")
    return prefixes[i % len(prefixes)] + f"{affine(i, 10**8, 48_271_211, 12_345_677):08d}"


def unique_address(i: int, city: str) -> str:
    """The ``i``-th address in ``city`` (distinct for distinct ``i`` below 10**7).

    >>> unique_address(0, "深圳")
    '深圳罗湖区解放路20577号'
    """
    j = affine(i, 10**7, 7_654_321, 1_234_567)
    districts = DISTRICTS[city]
    n = len(districts)
    return f"{city}{districts[j % n]}{ROADS[(j // n) % len(ROADS)]}{j // (n * len(ROADS)) + 1}号"


def birth_date(birth_ms: int) -> dt.date:
    return EPOCH + dt.timedelta(days=birth_ms // DAY_MS)


def id_number(region_code: str, birth_ms: int, seq: int) -> str:
    """A national id number: region code, birth date, 3-digit sequence, check character.

    >>> id_number("110101", 0, 7)
    '110101197001010075'
    """
    body = f"{region_code}{birth_date(birth_ms):%Y%m%d}{seq % 1000:03d}"
    w = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    s = sum(int(c) * k for c, k in zip(body, w, strict=True))
    return body + "10X98765432"[s % 11]


def company_code(i: int) -> str:
    """The ``i``-th unified social credit code (distinct for distinct ``i``)."""
    return f"91{affine(i, 10**16, 982_451_653, 3_141_592_653):016d}"


def years_after(ms: int, years: int) -> int:
    """The same calendar day ``years`` later (29 February → 1 March), in ms.

    >>> years_after(0, 18) == 18 * 365 * DAY_MS + 4 * DAY_MS
    True
    """
    d = birth_date(ms)
    try:
        later = d.replace(year=d.year + years)
    except ValueError:  # 29 February
        later = dt.date(d.year + years, 3, 1)
    return (later - EPOCH).days * DAY_MS


def adult_from(w: World, *parties: int) -> int:
    """The first moment every person among ``parties`` is 18 (companies: no limit)."""
    births = [w.p_birth[p] for p in parties if w.p_birth[p] is not None]
    return max((years_after(b, 18) for b in births), default=-(2**62))


def born_by(w: World, *parties: int) -> int:
    """The first moment every person among ``parties`` is born (companies: no limit)."""
    return max((b for p in parties if (b := w.p_birth[p]) is not None), default=-(2**62))


def round_to(x: float, unit: int) -> int:
    """``x`` rounded down to a multiple of ``unit``, at least ``unit``.

    >>> round_to(1_234_567.8, 100), round_to(5, 100)
    (1234500, 100)
    """
    return max(unit, int(x // unit) * unit)


class Builder:
    """Adds parties, accounts and loans to a world, drawing what is not given from ``rng``."""

    def __init__(self, world: World, rng: np.random.Generator):
        self.w = world
        self.rng = rng

    def party(
        self,
        kind: str,
        name: str | None = None,
        case: bool = True,
        region: int | None = None,
        industry: str | None = None,
        birth: int | None = None,
    ) -> int:
        """A new person or company in region ``region`` (an index of REGIONS; drawn if None)."""
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
            if birth is None:
                birth = int(rng.integers(-15_000, 12_000)) * DAY_MS
            idnum = w.person_id_number(code, birth)
            ind = industry or ""
        else:
            ind = industry or INDUSTRIES[int(rng.integers(len(INDUSTRIES)))]
            if name is None:
                name = self.company_name(city, ind)
            idnum = company_code(u)
            birth = None
        w.p_kind.append(kind)
        w.p_name.append(name)
        w.p_idnum.append(idnum)
        w.p_phone.append(unique_phone(u))
        w.p_addr.append(unique_address(u, city))
        w.p_industry.append(ind)
        w.p_region.append(city)
        w.p_birth.append(birth)
        w.p_case.append(case)
        return i

    def company_name(self, city: str, ind: str) -> str:
        a, b = self.rng.integers(len(WORDS), size=2)
        return f"{city}{WORDS[int(a)]}{WORDS[int(b)]}{INDUSTRY_CN[ind]}有限公司"

    def share_address(self, mover: int, host: int) -> None:
        """``mover`` moves in with ``host``: same address, so same region (a person only)."""
        w = self.w
        w.p_addr[mover] = w.p_addr[host]
        w.p_region[mover] = w.p_region[host]

    def relate(self, a: int, b: int, relation: str, since: int) -> None:
        """Relation row ``(a, b, relation)``, starting no earlier than both can have it."""
        w = self.w
        start = adult_from(w, a, b) if relation in ADULT_RELATIONS else born_by(w, a, b)
        w.rel.append((a, b, relation, max(since, start)))

    def account(
        self, owner: int, opened: int | None = None, category: str = "", case: bool = True
    ) -> int:
        """A new active account of ``owner``, opened ``opened`` (drawn before 2024 if None)."""
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
        """A loan of ``borrower`` paid out in full into ``acct`` at ``t0`` (one disbursement).

        Its region and industry are the borrower's; it matures 12, 24 or 36 months of 30
        days after the disbursement day.
        """
        w, rng = self.w, self.rng
        li = len(w.loans)
        kind = w.p_kind[borrower]
        months = int(rng.choice([12, 24, 36]))
        rate = round(float(rng.uniform(0.03, 0.065)), 4)
        w.loans.append(
            Loan(
                borrower=borrower,
                amount=amount,
                product=PRODUCTS[kind][int(rng.integers(3))],
                purpose=PURPOSES[int(rng.integers(len(PURPOSES)))],
                branch=BRANCHES[int(rng.integers(len(BRANCHES)))],
                industry=w.p_industry[borrower] or "personal",
                region=w.p_region[borrower],
                mode=mode,
                maturity=t0 - t0 % DAY_MS + months * 30 * DAY_MS,
                rate=rate,
                months=months,
                payee=acct if mode == "entrusted" else None,  # entrusted: paid to the declared payee
            )
        )
        w.disb.append((li, acct, amount, t0))
        return li
