"""Labelled synthetic bank data for flowgraph (``flowgraph generate``).

``generate(out_dir, scale, seed)`` writes one CSV per contract table
(``transactions.csv``, ``accounts.csv``, ``parties.csv``, ``relations.csv``, ``loans.csv``,
``disbursements.csv``, ``repayments.csv``, ``classifications.csv``; columns exactly
``TABLES[t].column_names``, amounts as decimal strings with two places, timestamps as
ISO-8601 UTC with milliseconds and ``Z``) plus ``labels.parquet`` describing every injected
case. Output is byte-identical for the same ``(scale, seed)``: all randomness comes from
``numpy.random.Generator(PCG64)`` streams derived from the seed, nothing depends on wall
clock time or hash-randomised iteration order.

The data covers 2024-01-01 .. 2024-12-31 UTC: persons and companies with relations and some
shared phones / addresses, accounts (a few of category ``brokerage``, ``real_estate``,
``lender``, ``crypto``), heavy-tailed background traffic with a daily and weekly rhythm
(salaries, supplier payments, card payments at merchants, bills, person-to-person transfers,
withdrawals, small investments), ordinary loans with tranches, repayments and five-level
classifications, and injected labelled cases (see ``TYPOLOGIES``).

Background invariant
--------------------
Every background transaction is smaller than ``BACKGROUND_MAX`` (50 000.00 CNY) and every
disbursement is at least ``MIN_DISBURSEMENT`` (2 000 000.00 CNY), so
``BACKGROUND_MAX * 4 <= MIN_DISBURSEMENT * 0.1``: no background transfer can be a hop of a
path at the default rule parameters (window 30 days, max 5 hops, every hop amount at least
10 % of the disbursed amount, link depth 1, all relation types), whatever the topology of
the background graph. Only injected case transactions are that large, each case lives on
its own loan with a fresh borrower and fresh intermediary accounts (fresh parties with
unique phone numbers and addresses, no relations except the intended one), so cases do not
interact. Ordinary (non-case) loans have a single borrower each, and their first repayment
is more than 30 days after their last tranche. Case loans have a single tranche.

Cases (one loan each; ``hops`` is the intended path length)
----------------------------------------------------------
``fb_direct``       borrower account → 1..4 fresh intermediaries → a borrower account (2..5
                    hops; sometimes a leading hop to another own account first)
``fb_split_merge``  split to 2..4 intermediaries, merged at one account, back (3 or 4 hops)
``fb_entrusted``    entrusted payment to a fresh supplier, supplier → 0..4 intermediaries →
                    borrower (1..5 hops; the supplier account is the disbursement account)
``fb_related``      back to the account of a party related to the borrower by one relation
                    (explicit relation row, or a shared phone / address attribute)
``fb_partial``      only part of the proceeds returns (the rest goes to an outside sink)
``repay_with_loan`` the chain ends at a third party's account that repays the same loan or an
                    older loan of the borrower inside the window (repayment row included)
``prohibited_destination`` the chain ends at an account of category brokerage / real_estate
                    / lender / crypto
``rapid_pass_through`` an intermediary forwards ≥ 90 % of what it received within hours
``transfer_cycle``  proceeds feed a cycle of 3..6 large transfers among non-borrower accounts
                    with increasing timestamps (``hops`` is the cycle length)
``neg_late_return`` like ``fb_direct`` but the return happens 35..60 days after disbursement
``neg_unlinked_lookalike`` returns to a party with a similar name but no link to the borrower
``neg_own_accounts`` money moves only among the borrower's own accounts
``neg_round_amount`` round amounts to an own account and back; never left the borrower side

``labels.parquet`` columns: case_id, typology, loan_id, disbursement_id, tx_ids (list of the
injected transactions), expected_rule (``flow_back``, ``repay_with_loan``,
``prohibited_destination``, ``rapid_pass_through``, ``transfer_cycle``, null for negative
controls), hops, returned_amount (int64 minor units under greedy tracing, flow-back cases
only), note. ``disbursement_id`` is always explicit: ``<loan_id>:<account_id>:<ts_ms>``.

Relations are written in one direction only (e.g. ``(person, company, legal_rep)``,
``(parent, child, parent)``); consumers must treat them as undirected links.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from flowgraph.core.errors import UsageError
from flowgraph.core.schema import GRADES, TABLES
from flowgraph.core.values import DAY_MS, HOUR_MS, ratio_threshold

__all__ = [
    "BACKGROUND_MAX",
    "MIN_DISBURSEMENT",
    "SCALES",
    "TYPOLOGIES",
    "Scale",
    "flowback_paths",
    "generate",
    "greedy_returned",
]

START_MS = 1_704_067_200_000  # 2024-01-01T00:00:00.000Z
DAYS = 366  # 2024 is a leap year; data ends before 2025-01-01T00:00:00.000Z
END_MS = START_MS + DAYS * DAY_MS
MINUTE_MS = 60_000

BACKGROUND_MAX = 5_000_000 - 1  # minor units: every background amount is < 50 000.00
MIN_DISBURSEMENT = 200_000_000  # minor units: 2 000 000.00
CASE_MAX_LOAN = 5_000_000_000  # 50 000 000.00

# default rule parameters the labels are built for
WINDOW_MS = 30 * DAY_MS
MAX_HOPS = 5
MIN_AMOUNT_RATIO = 0.1

assert BACKGROUND_MAX * 4 <= MIN_DISBURSEMENT * MIN_AMOUNT_RATIO

TYPOLOGIES: tuple[str, ...] = (
    "fb_direct",
    "fb_split_merge",
    "fb_entrusted",
    "fb_related",
    "fb_partial",
    "repay_with_loan",
    "prohibited_destination",
    "rapid_pass_through",
    "transfer_cycle",
    "neg_late_return",
    "neg_unlinked_lookalike",
    "neg_own_accounts",
    "neg_round_amount",
)
EXPECTED_RULE: dict[str, str | None] = {
    "fb_direct": "flow_back",
    "fb_split_merge": "flow_back",
    "fb_entrusted": "flow_back",
    "fb_related": "flow_back",
    "fb_partial": "flow_back",
    "repay_with_loan": "repay_with_loan",
    "prohibited_destination": "prohibited_destination",
    "rapid_pass_through": "rapid_pass_through",
    "transfer_cycle": "transfer_cycle",
    "neg_late_return": None,
    "neg_unlinked_lookalike": None,
    "neg_own_accounts": None,
    "neg_round_amount": None,
}
CATEGORIES: tuple[str, ...] = ("brokerage", "real_estate", "lender", "crypto")


@dataclass(frozen=True)
class Scale:
    accounts: int
    transactions: int
    cases_per_typology: int
    chunk_rows: int = 1_000_000


SCALES: dict[str, Scale] = {
    "tiny": Scale(1_000, 20_000, 4),
    "small": Scale(20_000, 500_000, 12),
    "medium": Scale(200_000, 10_000_000, 40),
    "large": Scale(1_000_000, 50_000_000, 100),
}

# ---------------------------------------------------------------------------- vocabulary

SURNAMES = list(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)
GIVEN = list(
    "伟芳娜敏静丽强磊军洋勇艳杰涛明超秀霞平刚桂英华玉兰萍红建文辉力燕鹏斌宇浩凯晨欣怡婷雪琳峰波宁鑫琴佳颖琪萌涵博然子轩梓诚俊雅思嘉晓东海宏志国庆春"
)
# similar-looking / -sounding replacement characters for look-alike names
LOOKALIKE = dict(
    zip("伟芳娜敏静丽强磊军洋勇艳杰涛明超", "玮方那民晶莉墙垒君阳永燕洁滔鸣朝", strict=True)
)
REGIONS = [
    ("北京", "110101"),
    ("上海", "310101"),
    ("广州", "440103"),
    ("深圳", "440303"),
    ("杭州", "330102"),
    ("南京", "320102"),
    ("成都", "510104"),
    ("武汉", "420102"),
    ("西安", "610102"),
    ("重庆", "500101"),
]
DISTRICTS = [
    "东城区",
    "西城区",
    "朝阳区",
    "海淀区",
    "南山区",
    "福田区",
    "天河区",
    "越秀区",
    "江干区",
    "鼓楼区",
]
ROADS = [
    "人民路",
    "解放路",
    "中山路",
    "建设路",
    "和平路",
    "新华路",
    "胜利路",
    "长江路",
    "黄河路",
    "光明路",
    "友谊路",
    "科技路",
]
INDUSTRIES = [
    "manufacturing",
    "wholesale",
    "retail",
    "catering",
    "construction",
    "technology",
    "logistics",
    "agriculture",
    "utilities",
    "services",
]
INDUSTRY_CN = {
    "manufacturing": "制造",
    "wholesale": "贸易",
    "retail": "商贸",
    "catering": "餐饮",
    "construction": "建设工程",
    "technology": "科技",
    "logistics": "物流",
    "agriculture": "农业",
    "utilities": "公用事业",
    "services": "服务",
    "finance": "金融",
    "real_estate": "置业",
}
CATEGORY_INDUSTRY = {
    "brokerage": "finance",
    "real_estate": "real_estate",
    "lender": "finance",
    "crypto": "technology",
}
CATEGORY_NAME = {
    "brokerage": "证券",
    "real_estate": "房地产开发",
    "lender": "小额贷款",
    "crypto": "数字资产",
}
WORDS = list("华信达通盛恒泰鑫源宏丰瑞祥隆昌兴安康利美嘉和宇航金")
PRODUCTS = {
    "person": ["personal_business", "consumer", "mortgage"],
    "company": ["working_capital", "fixed_asset", "trade_finance"],
}
PURPOSES = [
    "purchase raw materials",
    "equipment",
    "working capital",
    "inventory",
    "renovation",
    "expansion",
    "trade settlement",
]
BRANCHES = [f"BR{i:03d}" for i in range(1, 41)]
GRADE_REASON = {
    "normal": "",
    "special_mention": "payment delayed",
    "substandard": "overdue 90+ days",
    "doubtful": "overdue 180+ days",
    "loss": "borrower insolvent",
}


# ------------------------------------------------------------------------- tracing helpers


def flowback_paths(
    edges: list[tuple[int, str, str, str, int]],
    d: str,
    t0: int,
    a: int,
    linked: set[str],
    window_ms: int = WINDOW_MS,
    max_hops: int = MAX_HOPS,
    ratio: float = MIN_AMOUNT_RATIO,
    min_amount: int = 0,
) -> list[list[tuple[int, str, str, str, int]]]:
    """Brute-force flow-back paths (DESIGN.md conditions 1–8) over a small edge list.

    ``edges`` are ``(ts, key, src, dst, amount)``; ``linked`` is the set T of accounts of the
    borrower side. Used to compute the labels' ``returned_amount`` (and by tests).
    """
    thr = max(min_amount, ratio_threshold(ratio, a))
    out_edges: dict[str, list[tuple[int, str, str, str, int]]] = {}
    for e in sorted(edges):
        if e[4] >= thr and t0 < e[0] <= t0 + window_ms:
            out_edges.setdefault(e[2], []).append(e)
    paths: list[list[tuple[int, str, str, str, int]]] = []

    def dfs(u: str, t: int, path: list, seen: set[str], left: bool) -> None:
        if len(path) == max_hops:
            return
        for e in out_edges.get(u, ()):
            ts, _, _, v, _ = e
            if ts <= t:
                continue
            if v in seen and not (v == d and v in linked):
                continue
            if v in linked:
                if left:
                    paths.append([*path, e])
                elif v != d:
                    dfs(v, ts, [*path, e], seen | {v}, False)
            else:
                if v == d:
                    continue
                dfs(v, ts, [*path, e], seen | {v}, True)

    dfs(d, t0, [], {d}, d not in linked)
    return paths


def greedy_returned(paths: list[list[tuple]], d: str, a: int, linked: set[str]) -> int:
    """Greedy tracing over the union of the paths' edges (DESIGN.md)."""
    union = sorted({e for p in paths for e in p}, key=lambda e: (e[0], e[1]))
    bal: dict[str, int] = {d: a}
    returned = 0
    for _, _, u, v, amt in union:
        m = min(amt, bal.get(u, 0))
        bal[u] = bal.get(u, 0) - m
        if u not in linked and v in linked:
            returned += m
        else:
            bal[v] = bal.get(v, 0) + m
    return returned


# ------------------------------------------------------------------------------ the world


@dataclass
class _World:
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


def _affine(i: int, mod: int, mul: int, add: int) -> int:
    return (i * mul + add) % mod


def _unique_phone(i: int) -> str:
    prefixes = ("138", "139", "186", "150", "151", "188", "135", "177")
    return prefixes[i % len(prefixes)] + f"{_affine(i, 10**8, 48_271_211, 12_345_677):08d}"


def _unique_address(i: int, city: str) -> str:
    j = _affine(i, 10**7, 7_654_321, 1_234_567)
    return f"{city}{DISTRICTS[j % 10]}{ROADS[(j // 10) % 12]}{j // 120 + 1}号"


def _id_number(region_code: str, birth_ms: int, seq: int) -> str:
    import datetime as _dt

    b = _dt.datetime(1970, 1, 1) + _dt.timedelta(milliseconds=birth_ms)
    body = f"{region_code}{b:%Y%m%d}{seq % 1000:03d}"
    w = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    s = sum(int(c) * k for c, k in zip(body, w, strict=True))
    return body + "10X98765432"[s % 11]


def _company_code(i: int) -> str:
    return f"91{_affine(i, 10**16, 982_451_653, 3_141_592_653):016d}"


class _Builder:
    def __init__(self, world: _World, rng: np.random.Generator):
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
            idnum = _id_number(code, birth, u)
            ind = industry or ""
        else:
            ind = industry or INDUSTRIES[int(rng.integers(len(INDUSTRIES)))]
            if name is None:
                name = self.company_name(city, ind)
            idnum = _company_code(u)
        w.p_kind.append(kind)
        w.p_name.append(name)
        w.p_idnum.append(idnum)
        w.p_phone.append(_unique_phone(u))
        w.p_addr.append(_unique_address(u, city))
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
        for q_end in _QUARTER_ENDS:
            if q_end <= t_last:
                continue
            if grade < 4 and rng.random() < 0.05:
                grade += 1
            g = GRADES[grade]
            w.classif.append((li, q_end, g, "manual", GRADE_REASON[g]))


_QUARTER_ENDS = [
    START_MS + d * DAY_MS for d in (90, 181, 273, 365)
]  # Mar 31, Jun 30, Sep 30, Dec 31


# ------------------------------------------------------------------------- case injection


@dataclass
class _Case:
    case_id: str
    typology: str
    loan: int
    txs: list[tuple[int, int, int, int, str, str]]  # ts, src, dst, amount, channel, memo
    hops: int | None
    note: str
    linked: set[int]  # accounts of the borrower side (T), for greedy tracing
    d: int  # disbursement account
    a: int
    t0: int
    repaid_loan: int | None = None  # repay_with_loan: the loan whose repayment is reached


def _cents(x: float) -> int:
    return int(round(x))


def _round_to(x: float, unit: int) -> int:
    return max(unit, int(x // unit) * unit)


class _Cases:
    def __init__(self, world: _World, rng: np.random.Generator, inst_accounts: list[int]):
        self.b = _Builder(world, rng)
        self.w = world
        self.rng = rng
        self.inst = inst_accounts  # background category accounts (brokerage etc.)
        self.cases: list[_Case] = []

    # helpers --------------------------------------------------------------------------
    def amount(self) -> int:
        # log-uniform 2M..50M CNY, in whole yuan * 1000
        lo, hi = math.log(MIN_DISBURSEMENT), math.log(CASE_MAX_LOAN)
        return _round_to(math.exp(self.rng.uniform(lo, hi)), 100_000)

    def t0(self, lo_day: int = 3, hi_day: int = 300) -> int:
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
        kind = kind or ("company" if self.rng.random() < 0.6 else "person")
        p = self.b.party(kind)
        acct = self.b.account(p)
        return p, acct

    def fresh(self, opened_before: int | None = None) -> int:
        kind = "company" if self.rng.random() < 0.5 else "person"
        p = self.b.party(kind)
        opened = None
        if opened_before is not None and self.rng.random() < 0.5:
            opened = opened_before - int(self.rng.integers(5, 90)) * DAY_MS
        return self.b.account(p, opened=opened)

    def owned_by(self, parties: set[int]) -> set[int]:
        return {i for p in parties for i in self.w.p_accounts.get(p, ())}

    def new_loan(
        self,
        borrower: int,
        acct: int,
        mode: str = "self",
        t0: int | None = None,
        amount: int | None = None,
    ):
        t0 = self.t0() if t0 is None else t0
        a = self.amount() if amount is None else amount
        li = self.b.loan(borrower, a, mode, t0, acct)
        ln = self.w.loans[li]
        # repayments from the borrower's first account, > window after disbursement
        bacct = acct if mode == "self" else self.w_first_account(borrower)
        self.b.schedule(li, bacct, t0 + 30 * DAY_MS, a, ln[9], ln[8])
        return li, t0, a

    def w_first_account(self, party: int) -> int:
        return self.w.p_accounts[party][0]

    def add(self, typ: str, li: int, txs, hops, note, linked, d, a, t0) -> _Case:
        c = _Case(
            f"{typ}-{sum(1 for x in self.cases if x.typology == typ) + 1:03d}",
            typ,
            li,
            txs,
            hops,
            note,
            linked,
            d,
            a,
            t0,
        )
        self.cases.append(c)
        return c

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
    ):
        """start → n_mid fresh accounts → end; returns (txs, mids)."""
        mids = [self.fresh(opened_before) for _ in range(n_mid)]
        nodes = [start, *mids, end]
        txs = []
        amt = x
        for k in range(len(nodes) - 1):
            if k:
                amt = amt * self.rng.uniform(*decay)
            txs.append((times[k], nodes[k], nodes[k + 1], _round_to(amt, 100), "transfer", memo))
        return txs, mids

    # typologies ------------------------------------------------------------------------
    def fb_direct(self):
        rng = self.rng
        B, d = self.borrower()
        hops = int(rng.integers(2, 6))
        li, t0, a = self.new_loan(B, d)
        lead = hops >= 3 and rng.random() < 0.3
        end_other = rng.random() < 0.4
        d2 = self.b.account(B) if (lead or end_other) else None
        ts = self.times(t0, hops)
        txs = []
        x = a * rng.uniform(0.5, 1.0)
        start = d
        if lead:
            txs.append((ts[0], d, d2, _round_to(x, 100), "transfer", "内部调拨"))
            start, ts = d2, ts[1:]
        end = d2 if (end_other and not lead) else d
        t2, _ = self.chain(start, end, len(ts) - 1, x, ts, opened_before=t0)
        txs += t2
        note = f"{hops}-hop chain back to the borrower's {'own other' if end != d else 'disbursement'} account"
        if lead:
            note += " after a leading hop to another own account"
        self.add("fb_direct", li, txs, hops, note, self.owned_by({B}), d, a, t0)

    def fb_split_merge(self):
        rng = self.rng
        B, d = self.borrower()
        li, t0, a = self.new_loan(B, d)
        k = int(rng.integers(2, 5))
        extra = rng.random() < 0.4  # merge account forwards once more before returning
        frac = rng.uniform(0.8, 1.0)
        parts = 0.12 + (frac - 0.12 * k) * rng.dirichlet(np.ones(k))
        ts_split = self.times(t0, k, HOUR_MS, 3 * DAY_MS)
        mids = [self.fresh(t0) for _ in range(k)]
        m = self.fresh(t0)
        txs = []
        merged = 0
        ts_merge = self.times(t0, k, 4 * DAY_MS, 10 * DAY_MS)
        for j in range(k):
            x = _round_to(a * parts[j], 100)
            txs.append((ts_split[j], d, mids[j], x, "transfer", "货款"))
            y = _round_to(x * rng.uniform(0.97, 1.0), 100)
            txs.append((ts_merge[j], mids[j], m, y, "transfer", "货款"))
            merged += y
        t_back = self.times(t0, 2, 11 * DAY_MS, 28 * DAY_MS)
        back = _round_to(merged * rng.uniform(0.95, 1.0), 100)
        if extra:
            n = self.fresh(t0)
            txs.append((t_back[0], m, n, back, "transfer", "往来款"))
            back2 = _round_to(back * rng.uniform(0.97, 1.0), 100)
            txs.append((t_back[1], n, d, back2, "transfer", "往来款"))
        else:
            txs.append((t_back[1], m, d, back, "transfer", "往来款"))
        hops = 4 if extra else 3
        self.add(
            "fb_split_merge",
            li,
            txs,
            hops,
            f"split to {k} intermediaries, merged, returned ({hops} hops)",
            self.owned_by({B}),
            d,
            a,
            t0,
        )

    def fb_entrusted(self):
        rng = self.rng
        B, dB = self.borrower("company")
        S = self.b.party("company")
        s = self.b.account(S)
        hops = int(rng.integers(1, 6))
        li, t0, a = self.new_loan(B, s, mode="entrusted")
        ts = self.times(t0, hops)
        x = a * rng.uniform(0.6, 0.98)
        txs, _ = self.chain(s, dB, hops - 1, x, ts, opened_before=t0, memo="退款")
        self.add(
            "fb_entrusted",
            li,
            txs,
            hops,
            f"entrusted payment to supplier account, returned to borrower via {hops - 1} intermediaries",
            self.owned_by({B}),
            s,
            a,
            t0,
        )

    def fb_related(self):
        rng = self.rng
        B, d = self.borrower()
        kind = self.w.p_kind[B]
        if kind == "person":
            rel = str(
                rng.choice(
                    [
                        "spouse",
                        "parent",
                        "child",
                        "relative",
                        "guarantor",
                        "other",
                        "shared_phone",
                        "shared_address",
                    ]
                )
            )
            R = self.b.party("person")
        else:
            rel = str(
                rng.choice(
                    [
                        "legal_rep",
                        "shareholder",
                        "investor",
                        "guarantor",
                        "affiliate",
                        "shared_phone",
                    ]
                )
            )
            R = self.b.party("company" if rel in ("investor", "affiliate") else "person")
        since = START_MS - int(rng.integers(100, 3000)) * DAY_MS
        if rel == "shared_phone":
            self.w.p_phone[R] = self.w.p_phone[B]
        elif rel == "shared_address":
            self.w.p_addr[R] = self.w.p_addr[B]
        elif rel in ("legal_rep", "shareholder", "investor"):
            self.w.rel.append((R, B, rel, since))
        else:
            self.w.rel.append((B, R, rel, since))
        r = self.b.account(R)
        hops = int(rng.integers(2, 6))
        li, t0, a = self.new_loan(B, d)
        ts = self.times(t0, hops)
        txs, _ = self.chain(d, r, hops - 1, a * rng.uniform(0.5, 1.0), ts, opened_before=t0)
        self.add(
            "fb_related",
            li,
            txs,
            hops,
            f"returned to a party linked by {rel}",
            self.owned_by({B, R}),
            d,
            a,
            t0,
        )

    def fb_partial(self):
        rng = self.rng
        B, d = self.borrower()
        li, t0, a = self.new_loan(B, d)
        hops = int(rng.integers(2, 6))
        ts = self.times(t0, hops + 1)
        x1 = a * rng.uniform(0.4, 0.9)
        sink = self.fresh()
        txs = (
            [(ts[0], d, sink, _round_to(a - x1, 100), "transfer", "货款")]
            if rng.random() < 0.5
            else []
        )
        keep = rng.uniform(0.3, 0.7)
        mids = [self.fresh(t0) for _ in range(hops - 1)]
        nodes = [d, *mids, d]
        amt = x1
        for k in range(hops):
            if k == 1:  # the first intermediary keeps part and parks the rest outside
                fwd = max(amt * keep, 0.15 * a)
                txs.append(
                    (
                        ts[k + 1] - HOUR_MS // 2,
                        nodes[1],
                        sink,
                        _round_to(amt - fwd, 100),
                        "transfer",
                        "投资款",
                    )
                )
                amt = fwd
            elif k:
                amt *= rng.uniform(0.95, 1.0)
            txs.append(
                (ts[k + 1], nodes[k], nodes[k + 1], _round_to(amt, 100), "transfer", "往来款")
            )
        self.add(
            "fb_partial",
            li,
            txs,
            hops,
            "only part of the proceeds returns",
            self.owned_by({B}),
            d,
            a,
            t0,
        )

    def repay_with_loan(self):
        rng = self.rng
        B, d = self.borrower()
        other = rng.random() < 0.5
        t0 = self.t0(95, 300) if other else None
        li, t0, a = self.new_loan(B, d, t0=t0)
        Q = self.b.party("company")
        r = self.b.account(Q)
        hops = int(rng.integers(1, 5))
        ts = self.times(t0, hops + 1, HOUR_MS, 27 * DAY_MS)
        txs, _ = self.chain(d, r, hops - 1, a * rng.uniform(0.5, 1.0), ts[:-1], opened_before=t0)
        got = txs[-1][3]
        if other:
            d0 = self.b.account(B)
            t_old = t0 - int(rng.integers(60, 90)) * DAY_MS
            old = self.b.loan(B, self.amount(), "self", t_old, d0)
            ln = self.w.loans[old]
            self.b.schedule(old, d0, t_old, ln[1], ln[9], ln[8])
            target, what = old, "an older loan of the borrower"
        else:
            target, what = li, "the same loan"
        pay = _round_to(got * rng.uniform(0.8, 1.0), 100)
        self.w.repay.append((target, r, pay, ts[-1]))
        c = self.add(
            "repay_with_loan",
            li,
            txs,
            hops,
            f"proceeds reach a repayment of {what} from a third-party account",
            self.owned_by({B}),
            d,
            a,
            t0,
        )
        c.repaid_loan = target

    def prohibited_destination(self):
        rng = self.rng
        B, d = self.borrower()
        li, t0, a = self.new_loan(B, d)
        dest = self.inst[int(rng.integers(len(self.inst)))]
        hops = int(rng.integers(1, 5))
        ts = self.times(t0, hops)
        txs, _ = self.chain(
            d, dest, hops - 1, a * rng.uniform(0.3, 1.0), ts, opened_before=t0, memo="投资"
        )
        cat = self.w.a_cat[dest]
        self.add(
            "prohibited_destination",
            li,
            txs,
            hops,
            f"proceeds reach a {cat} account",
            self.owned_by({B}),
            d,
            a,
            t0,
        )

    def rapid_pass_through(self):
        rng = self.rng
        B, d = self.borrower()
        li, t0, a = self.new_loan(B, d)
        m = self.fresh(t0)
        t_in = self.times(t0, 1, HOUR_MS, 10 * DAY_MS)[0]
        x = _round_to(a * rng.uniform(0.5, 1.0), 100)
        txs = [(t_in, d, m, x, "transfer", "货款")]
        pieces = int(rng.integers(1, 3))
        share = rng.uniform(0.91, 0.995)
        fr = 0.3 + (1 - 0.3 * pieces) * rng.dirichlet(np.ones(pieces)) if pieces > 1 else [1.0]
        outs = self.times(t_in, pieces, 20 * MINUTE_MS, 4 * HOUR_MS, 5 * MINUTE_MS)
        for j in range(pieces):
            txs.append(
                (outs[j], m, self.fresh(), _round_to(x * share * fr[j], 100), "transfer", "往来款")
            )
        fwd = sum(t[3] for t in txs[1:])
        self.add(
            "rapid_pass_through",
            li,
            txs,
            2,
            f"intermediary forwards {fwd / x:.1%} of what it received within {(outs[-1] - t_in) / HOUR_MS:.1f} h",
            self.owned_by({B}),
            d,
            a,
            t0,
        )

    def transfer_cycle(self):
        rng = self.rng
        B, d = self.borrower()
        li, t0, a = self.new_loan(B, d)
        L = int(rng.integers(3, 7))
        cyc = [self.fresh(t0) for _ in range(L)]
        ts = self.times(t0, L + 1)
        x = a * rng.uniform(0.5, 1.0)
        txs = [(ts[0], d, cyc[0], _round_to(x, 100), "transfer", "货款")]
        for k in range(L):
            x *= rng.uniform(0.96, 0.995)
            txs.append(
                (ts[k + 1], cyc[k], cyc[(k + 1) % L], _round_to(x, 100), "transfer", "往来款")
            )
        self.add(
            "transfer_cycle",
            li,
            txs,
            L,
            f"cycle of {L} large transfers fed by the proceeds",
            self.owned_by({B}),
            d,
            a,
            t0,
        )

    def neg_late_return(self):
        rng = self.rng
        B, d = self.borrower()
        li, t0, a = self.new_loan(B, d, t0=self.t0(3, 300))
        hops = int(rng.integers(2, 6))
        ts = self.times(t0, hops - 1, HOUR_MS, 25 * DAY_MS)
        ts.append(t0 + int(rng.integers(35 * DAY_MS, 60 * DAY_MS)))
        txs, _ = self.chain(d, d, hops - 1, a * rng.uniform(0.5, 1.0), ts, opened_before=t0)
        days = (ts[-1] - t0) / DAY_MS
        self.add(
            "neg_late_return",
            li,
            txs,
            None,
            f"returns after the window, on day {days:.1f}",
            self.owned_by({B}),
            d,
            a,
            t0,
        )

    def neg_unlinked_lookalike(self):
        rng = self.rng
        B, d = self.borrower()
        name = self.w.p_name[B]
        kind = self.w.p_kind[B]
        if kind == "person":
            chars = list(name)
            pos = next((i for i in range(len(chars) - 1, 0, -1) if chars[i] in LOOKALIKE), None)
            if pos is None:
                chars.append(GIVEN[int(rng.integers(len(GIVEN)))])
            else:
                chars[pos] = LOOKALIKE[chars[pos]]
            look = "".join(chars)
        else:
            look = name.replace(
                "有限公司", "（" + REGIONS[int(rng.integers(len(REGIONS)))][0] + "）有限公司"
            )
        Z = self.b.party(kind, name=look)
        z = self.b.account(Z)
        li, t0, a = self.new_loan(B, d)
        hops = int(rng.integers(2, 6))
        ts = self.times(t0, hops)
        txs, _ = self.chain(d, z, hops - 1, a * rng.uniform(0.5, 1.0), ts, opened_before=t0)
        self.add(
            "neg_unlinked_lookalike",
            li,
            txs,
            None,
            f"returns to {look!r}, unrelated look-alike of {name!r}",
            self.owned_by({B}),
            d,
            a,
            t0,
        )

    def neg_own_accounts(self):
        rng = self.rng
        B, d = self.borrower()
        own = [self.b.account(B) for _ in range(int(rng.integers(1, 4)))]
        li, t0, a = self.new_loan(B, d)
        nodes = [d, *own] + ([d] if rng.random() < 0.5 else [])
        ts = self.times(t0, len(nodes) - 1)
        x = a * rng.uniform(0.5, 1.0)
        txs = []
        for k in range(len(nodes) - 1):
            txs.append((ts[k], nodes[k], nodes[k + 1], _round_to(x, 100), "transfer", "内部调拨"))
            x *= rng.uniform(0.9, 1.0)
        self.add(
            "neg_own_accounts",
            li,
            txs,
            None,
            f"moves among {len(own) + 1} own accounts only",
            self.owned_by({B}),
            d,
            a,
            t0,
        )

    def neg_round_amount(self):
        rng = self.rng
        B, d = self.borrower()
        li, t0, a = self.new_loan(B, d)
        d2 = self.b.account(B)
        unit = 100_000_000 if a >= 400_000_000 else 50_000_000  # 1 000 000.00 or 500 000.00
        n = int(rng.integers(1, 4))
        ts = self.times(t0, 2 * n)
        txs = []
        f = rng.uniform(0.5, 1.0)
        for k in range(n):
            amt = max(-(-a // (10 * unit)) * unit, int(a * f / n) // unit * unit)
            txs.append((ts[k], d, d2, amt, "transfer", "整额转存"))
            txs.append((ts[n + k], d2, d, amt, "transfer", "整额转回"))
        self.add(
            "neg_round_amount",
            li,
            txs,
            None,
            f"{n} round transfer(s) to an own account and back, never left",
            self.owned_by({B}),
            d,
            a,
            t0,
        )


# ------------------------------------------------------------------------------ background


def _background_world(w: _World, rng: np.random.Generator, n_accounts: int) -> list[int]:
    """Background parties, accounts and relations. Returns institution (category) accounts."""
    b = _Builder(w, rng)
    n_parties = max(20, int(n_accounts / 1.35))
    n_comp = max(10, int(n_parties * 0.15))
    n_pers = n_parties - n_comp
    n_inst = max(8, n_comp // 60)

    # persons — vectorised names
    s_idx = rng.integers(len(SURNAMES), size=n_pers)
    g1 = rng.integers(len(GIVEN), size=n_pers)
    g2 = rng.integers(len(GIVEN), size=n_pers)
    two = rng.random(n_pers) < 0.7
    regs = rng.integers(len(REGIONS), size=n_pers)
    births = rng.integers(-15_000, 12_000, size=n_pers)
    base = len(w.p_kind)
    import datetime as _dt

    epoch = _dt.date(1970, 1, 1)
    for i in range(n_pers):
        u = w.unique_counter
        w.unique_counter += 1
        city, code = REGIONS[int(regs[i])]
        nm = SURNAMES[s_idx[i]] + GIVEN[g1[i]] + (GIVEN[g2[i]] if two[i] else "")
        bd = epoch + _dt.timedelta(days=int(births[i]))
        body = f"{code}{bd:%Y%m%d}{u % 1000:03d}"
        s = sum(
            int(c) * k
            for c, k in zip(
                body, (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2), strict=True
            )
        )
        w.p_kind.append("person")
        w.p_name.append(nm)
        w.p_idnum.append(body + "10X98765432"[s % 11])
        w.p_phone.append(_unique_phone(u))
        w.p_addr.append(_unique_address(u, city))
        w.p_industry.append("")
        w.p_region.append(city)
        w.p_case.append(False)
    persons = np.arange(base, base + n_pers)
    # companies: a few institutions with category accounts, utilities, merchants, others
    comps = []
    inst_accounts = []
    for j in range(n_comp):
        if j < n_inst:
            cat = CATEGORIES[j % 4]
            ind = CATEGORY_INDUSTRY[cat]
            city = REGIONS[j % len(REGIONS)][0]
            p = b.party(
                "company",
                name=f"{city}{WORDS[j % len(WORDS)]}{WORDS[(j * 7 + 3) % len(WORDS)]}"
                f"{CATEGORY_NAME[cat]}有限公司",
                case=False,
                industry=ind,
            )
            inst_accounts.append(b.account(p, category=cat, case=False))
        else:
            p = b.party(
                "company",
                case=False,
                industry="utilities" if j < n_inst + max(2, n_comp // 100) else None,
            )
        comps.append(p)
    comps_arr = np.array(comps)
    # accounts: persons 1 + geometric extras, companies 1..3
    n_per = np.concatenate(
        [
            np.minimum(rng.geometric(0.75, size=n_pers), 5),
            rng.integers(1, 4, size=len(comps) - n_inst),
        ]
    )
    owners = np.repeat(np.concatenate([persons, comps_arr[n_inst:]]), n_per)
    n_new = len(owners)
    opened = (
        START_MS - rng.integers(30, 4000, size=n_new) * DAY_MS + rng.integers(0, DAY_MS, size=n_new)
    )
    branch = rng.integers(len(BRANCHES), size=n_new)
    first = len(w.a_owner)
    w.a_owner.extend(owners.tolist())
    w.a_opened.extend(opened.tolist())
    w.a_kind.extend(
        "personal" if w.p_kind[o] == "person" else "corporate" for o in w.a_owner[first:]
    )
    w.a_cat.extend([""] * n_new)
    w.a_branch.extend(BRANCHES[k] for k in branch.tolist())
    w.a_status.extend(["active"] * n_new)
    w.a_case.extend([False] * n_new)
    for i, o in enumerate(owners.tolist(), start=first):
        w.p_accounts.setdefault(o, []).append(i)
    # dormant accounts
    for i in np.flatnonzero(rng.random(len(w.a_status)) < 0.02):
        w.a_status[int(i)] = "dormant"

    # relations
    def since(n):
        return START_MS - rng.integers(30, 5000, size=n) * DAY_MS

    n_fam = n_pers // 4
    a_ = rng.choice(persons, size=n_fam)
    b_ = rng.choice(persons, size=n_fam)
    fam = rng.choice(
        ["spouse", "parent", "relative", "child", "other"],
        size=n_fam,
        p=[0.4, 0.25, 0.15, 0.1, 0.1],
    )
    for x, y, r, s in zip(a_, b_, fam, since(n_fam), strict=True):
        if x != y:
            w.rel.append((int(x), int(y), str(r), int(s)))
            if r == "spouse" and rng.random() < 0.7:
                w.p_addr[int(y)] = w.p_addr[int(x)]
    nc = len(comps_arr)
    reps = rng.choice(persons, size=nc)
    for c, pp, s in zip(comps_arr, reps, since(nc), strict=True):
        w.rel.append((int(pp), int(c), "legal_rep", int(s)))
    n_sh = nc
    for x, c, s in zip(
        rng.choice(persons, size=n_sh), rng.choice(comps_arr, size=n_sh), since(n_sh), strict=True
    ):
        w.rel.append((int(x), int(c), "shareholder", int(s)))
    n_cc = nc // 2
    kinds = rng.choice(["investor", "affiliate", "guarantor"], size=n_cc)
    for x, y, r, s in zip(
        rng.choice(comps_arr, size=n_cc),
        rng.choice(comps_arr, size=n_cc),
        kinds,
        since(n_cc),
        strict=True,
    ):
        if x != y:
            w.rel.append((int(x), int(y), str(r), int(s)))
    n_g = n_pers // 50
    for x, y, s in zip(
        rng.choice(persons, size=n_g), rng.choice(persons, size=n_g), since(n_g), strict=True
    ):
        if x != y:
            w.rel.append((int(x), int(y), "guarantor", int(s)))
    # some persons share a phone with a random other person (no relation row)
    for x, y in zip(
        rng.choice(persons, size=n_pers // 100 + 1),
        rng.choice(persons, size=n_pers // 100 + 1),
        strict=True,
    ):
        w.p_phone[int(y)] = w.p_phone[int(x)]
    return inst_accounts


def _ordinary_loans(
    w: _World,
    rng: np.random.Generator,
    n_loans: int,
    bg_parties: np.ndarray,
    company_accounts: np.ndarray,
) -> None:
    b = _Builder(w, rng)
    first_acct: dict[int, int] = {}
    for i, o in enumerate(w.a_owner):
        first_acct.setdefault(o, i)
    borrowers = rng.choice(bg_parties, size=min(n_loans, len(bg_parties)), replace=False)
    # entrusted payments go to suppliers that repay no loan of their own (no 0-hop repay-with-loan)
    company_accounts = company_accounts[
        ~np.isin(np.asarray(w.a_owner)[company_accounts], borrowers)
    ]
    for B in borrowers:
        B = int(B)
        kind = w.p_kind[B]
        d = first_acct[B]
        lo = math.log(MIN_DISBURSEMENT) if kind == "person" else math.log(MIN_DISBURSEMENT * 2)
        hi = math.log(MIN_DISBURSEMENT * 4) if kind == "person" else math.log(CASE_MAX_LOAN * 4)
        n_tr = int(rng.choice([1, 1, 1, 2, 3]))
        amount = _round_to(math.exp(rng.uniform(lo, hi)), 100_000)
        amount = max(amount, MIN_DISBURSEMENT * n_tr)
        mode = "entrusted" if kind == "company" and rng.random() < 0.3 else "self"
        t0 = START_MS + int(rng.integers(0, 330)) * DAY_MS + int(rng.integers(HOUR_MS, 9 * HOUR_MS))
        acct = d
        if mode == "entrusted":
            acct = int(company_accounts[int(rng.integers(len(company_accounts)))])
            if w.a_owner[acct] == B:
                mode, acct = "self", d
        li = b.loan(B, amount, mode, t0, acct)
        t_last = t0
        if n_tr > 1:
            w.disb.pop()
            per = _round_to(amount / n_tr, 100_000)
            for k in range(n_tr):
                amt = per if k < n_tr - 1 else amount - per * (n_tr - 1)
                w.disb.append((li, acct, amt, t_last))
                if k < n_tr - 1:
                    t_last += int(rng.integers(7, 60)) * DAY_MS + int(rng.integers(0, HOUR_MS))
        ln = w.loans[li]
        b.schedule(li, d, t_last, amount, ln[9], ln[8])


# --------------------------------------------------------------------------- transactions


class _Traffic:
    """Vectorised background traffic generator, chunked by day ranges."""

    TYPES = ("p2p", "merchant", "supplier", "salary", "bill", "withdraw", "invest")
    SHARE = np.array([0.26, 0.34, 0.15, 0.09, 0.09, 0.05, 0.02])

    def __init__(self, w: _World, rng: np.random.Generator):
        self.rng = rng
        owner = np.asarray(w.a_owner)
        is_person = np.asarray([k == "person" for k in w.p_kind])[owner]
        cat = np.asarray([c != "" for c in w.a_cat])
        ind = np.asarray(w.p_industry, dtype=object)[owner]
        self.person = np.flatnonzero(is_person & ~cat)
        comp = ~is_person & ~cat
        self.company = np.flatnonzero(comp)
        self.merchant = np.flatnonzero(comp & np.isin(ind, ["retail", "catering", "services"]))
        if len(self.merchant) == 0:
            self.merchant = self.company
        self.utility = np.flatnonzero(comp & (ind == "utilities"))
        if len(self.utility) == 0:
            self.utility = self.company[:2]
        self.inst = np.flatnonzero(cat)
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
                same = s == d
                d[same] = self.person[
                    (np.searchsorted(self.person, d[same]) + 1) % len(self.person)
                ]
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
                same = s == d
                d[same] = self.company[
                    (np.searchsorted(self.company, d[same]) + 1) % len(self.company)
                ]
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


# ------------------------------------------------------------------------------- writing


def _amount_expr(col: str) -> pl.Expr:
    return pl.format("{}.{}", pl.col(col) // 100, (pl.col(col) % 100).cast(pl.Utf8).str.zfill(2))


def _ts_expr(col: str) -> pl.Expr:
    return (
        pl.when(pl.col(col).is_null())
        .then(pl.lit(None, pl.Utf8))
        .otherwise(pl.from_epoch(pl.col(col), time_unit="ms").dt.strftime("%Y-%m-%dT%H:%M:%S%.3fZ"))
    )


def _format(table: str, df: pl.DataFrame) -> pl.DataFrame:
    """Turn int64 money / ts columns into text and order columns as the contract says."""
    t = TABLES[table]
    exprs = []
    for c in t.columns:
        if c.kind == "money":
            exprs.append(_amount_expr(c.name).alias(c.name))
        elif c.kind == "ts":
            exprs.append(_ts_expr(c.name).alias(c.name))
        else:
            exprs.append(pl.col(c.name))
    return df.select(exprs)


def _write(out_dir: Path, table: str, df: pl.DataFrame) -> int:
    _format(table, df).write_csv(out_dir / f"{table}.csv")
    return df.height


def _ids(prefix: str, n: int, rng: np.random.Generator, width: int) -> list[str]:
    perm = rng.permutation(n) + 1
    return [f"{prefix}{int(k):0{width}d}" for k in perm]


# ------------------------------------------------------------------------------- generate


def generate(
    out_dir: Path,
    scale: str = "tiny",
    seed: int = 0,
    progress: Callable[[str, int, int], None] | None = None,
) -> dict:
    """Write a labelled synthetic bank into ``out_dir``; return row counts.

    ``progress(step, done, total)`` is called as work proceeds (``step`` is e.g.
    ``"entities"``, ``"transactions"``, ``"labels"``; ``done``/``total`` count units of that
    step). Returns ``{"scale", "seed", "tables": {table: rows}, "typologies": {typology:
    cases}, "labels": cases}``.
    """
    if scale not in SCALES:
        raise UsageError(f"unknown scale {scale!r}; scales: {', '.join(SCALES)}")
    sc = SCALES[scale]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    def report(step: str, done: int, total: int) -> None:
        if progress is not None:
            progress(step, done, total)

    ss = np.random.SeedSequence(seed)
    r_world, r_cases, r_loans, r_tx, r_ids = (
        np.random.Generator(np.random.PCG64(s)) for s in ss.spawn(5)
    )

    # entities -------------------------------------------------------------------------
    report("entities", 0, 4)
    n_cases = sc.cases_per_typology * len(TYPOLOGIES)
    w = _World()
    inst = _background_world(w, r_world, max(200, sc.accounts - 6 * n_cases))
    n_bg_parties = len(w.p_kind)
    n_bg_accounts = len(w.a_owner)
    report("entities", 1, 4)
    cases = _Cases(w, r_cases, inst)
    for _ in range(sc.cases_per_typology):
        for typ in TYPOLOGIES:
            getattr(cases, typ)()
    report("entities", 2, 4)
    bg = np.arange(n_bg_parties)
    inst_owners = {w.a_owner[i] for i in inst}
    bg = bg[~np.isin(bg, list(inst_owners))]
    comp_accts = np.asarray(
        [i for i in range(n_bg_accounts) if w.p_kind[w.a_owner[i]] == "company" and not w.a_cat[i]]
    )
    _ordinary_loans(w, r_loans, max(10, n_bg_parties // 25), bg, comp_accts)
    report("entities", 3, 4)

    # ids ------------------------------------------------------------------------------
    n_p, n_a, n_l = len(w.p_kind), len(w.a_owner), len(w.loans)
    pw, aw, lw = len(str(n_p)) + 1, len(str(n_a)) + 1, len(str(n_l)) + 1
    pid = _ids("P", n_p, r_ids, pw)
    aid = _ids("A", n_a, r_ids, aw)
    lid = _ids("L", n_l, r_ids, lw)

    counts: dict[str, int] = {}
    counts["parties"] = _write(
        out_dir,
        "parties",
        pl.DataFrame(
            {
                "party_id": pid,
                "kind": w.p_kind,
                "name": w.p_name,
                "id_number": w.p_idnum,
                "phone": w.p_phone,
                "address": w.p_addr,
                "industry": w.p_industry,
                "region": w.p_region,
            }
        )
        .with_columns(pl.col("industry").replace("", None))
        .sort("party_id"),
    )
    counts["accounts"] = _write(
        out_dir,
        "accounts",
        pl.DataFrame(
            {
                "account_id": aid,
                "owner_id": [pid[o] for o in w.a_owner],
                "opened_at": w.a_opened,
                "kind": w.a_kind,
                "category": w.a_cat,
                "branch": w.a_branch,
                "status": w.a_status,
            },
            schema_overrides={"opened_at": pl.Int64},
        )
        .with_columns(pl.col("category").replace("", None))
        .sort("account_id"),
    )
    rel = (
        pl.DataFrame(
            {
                "party_a": [pid[r[0]] for r in w.rel],
                "party_b": [pid[r[1]] for r in w.rel],
                "relation": [r[2] for r in w.rel],
                "since": [r[3] for r in w.rel],
            },
            schema_overrides={"since": pl.Int64},
        )
        .unique(["party_a", "party_b", "relation"], keep="first", maintain_order=True)
        .sort(["party_a", "party_b", "relation"])
    )
    counts["relations"] = _write(out_dir, "relations", rel)
    L = w.loans
    counts["loans"] = _write(
        out_dir,
        "loans",
        pl.DataFrame(
            {
                "loan_id": lid,
                "borrower_id": [pid[x[0]] for x in L],
                "amount": [x[1] for x in L],
                "product": [x[2] for x in L],
                "purpose": [x[3] for x in L],
                "branch": [x[4] for x in L],
                "industry": [x[5] for x in L],
                "region": [x[6] for x in L],
                "payment_mode": [x[7] for x in L],
                "maturity_date": [x[8] for x in L],
                "rate": [x[9] for x in L],
            },
            schema_overrides={"amount": pl.Int64, "maturity_date": pl.Int64},
        ).sort("loan_id"),
    )

    def disb_id(li: int, acct: int, ts: int) -> str:
        return f"{lid[li]}:{aid[acct]}:{ts}"

    counts["disbursements"] = _write(
        out_dir,
        "disbursements",
        pl.DataFrame(
            {
                "disbursement_id": [disb_id(x[0], x[1], x[3]) for x in w.disb],
                "loan_id": [lid[x[0]] for x in w.disb],
                "account_id": [aid[x[1]] for x in w.disb],
                "amount": [x[2] for x in w.disb],
                "ts": [x[3] for x in w.disb],
            },
            schema_overrides={"amount": pl.Int64, "ts": pl.Int64},
        ).sort(["loan_id", "ts"]),
    )
    counts["repayments"] = _write(
        out_dir,
        "repayments",
        pl.DataFrame(
            {
                "loan_id": [lid[x[0]] for x in w.repay],
                "account_id": [aid[x[1]] for x in w.repay],
                "amount": [x[2] for x in w.repay],
                "ts": [x[3] for x in w.repay],
            },
            schema_overrides={"amount": pl.Int64, "ts": pl.Int64},
        ).sort(["loan_id", "ts", "account_id"]),
    )
    counts["classifications"] = _write(
        out_dir,
        "classifications",
        pl.DataFrame(
            {
                "loan_id": [lid[x[0]] for x in w.classif],
                "as_of": [x[1] for x in w.classif],
                "grade": [x[2] for x in w.classif],
                "source": [x[3] for x in w.classif],
                "reason": [x[4] or None for x in w.classif],
            },
            schema_overrides={"as_of": pl.Int64, "reason": pl.Utf8},
        ).sort(["loan_id", "as_of"]),
    )
    report("entities", 4, 4)

    # transactions ---------------------------------------------------------------------
    case_tx = [(t[0], ci, k, t) for ci, c in enumerate(cases.cases) for k, t in enumerate(c.txs)]
    case_tx.sort(key=lambda x: (x[0], x[1], x[2]))
    c_ts = np.asarray([x[0] for x in case_tx], dtype=np.int64)
    n_bg_tx = max(0, sc.transactions - len(case_tx))
    n_chunks = max(1, math.ceil(sc.transactions / sc.chunk_rows))
    bounds = np.linspace(0, DAYS, n_chunks + 1).round().astype(int)
    traffic = _Traffic(w, r_tx)
    day_w = traffic.day_w
    tot_w = day_w.sum()
    aid_s = pl.Series(aid)
    case_ids: dict[tuple[int, int], str] = {}
    tx_width = max(9, len(str(sc.transactions * 2)))
    next_id = 1
    written = 0
    path = out_dir / "transactions.csv"
    with open(path, "wb") as fh:
        for k in range(n_chunks):
            d0, d1 = int(bounds[k]), int(bounds[k + 1])
            lo_n = round(n_bg_tx * day_w[:d0].sum() / tot_w)
            hi_n = round(n_bg_tx * day_w[:d1].sum() / tot_w)
            src, dst, ts, amt, typ = traffic.chunk(d0, d1, hi_n - lo_n)
            lo_ms, hi_ms = START_MS + d0 * DAY_MS, START_MS + d1 * DAY_MS
            if k == n_chunks - 1:
                hi_ms = max(hi_ms, int(c_ts.max()) + 1 if len(c_ts) else hi_ms)
            sel = np.flatnonzero((c_ts >= lo_ms) & (c_ts < hi_ms))
            cs = [case_tx[i] for i in sel]
            n_bg = len(ts)
            all_ts = np.concatenate([ts, np.asarray([x[0] for x in cs], dtype=np.int64)])
            all_src = np.concatenate([src, np.asarray([x[3][1] for x in cs], dtype=np.int64)])
            all_dst = np.concatenate([dst, np.asarray([x[3][2] for x in cs], dtype=np.int64)])
            all_amt = np.concatenate([amt, np.asarray([x[3][3] for x in cs], dtype=np.int64)])
            order = np.argsort(all_ts, kind="stable")
            n = len(order)
            ids = np.arange(next_id, next_id + n)
            pos = np.empty(n, dtype=np.int64)
            pos[order] = np.arange(n)
            for j, x in enumerate(cs):
                case_ids[(x[1], x[2])] = f"T{ids[pos[n_bg + j]]:0{tx_width}d}"
            chan = np.empty(n, dtype=object)
            memo = np.empty(n, dtype=object)
            chan[:n_bg] = np.asarray(CHANNEL, dtype=object)[typ]
            memo[:n_bg] = np.asarray(MEMO, dtype=object)[typ]
            for j, x in enumerate(cs):
                chan[n_bg + j] = x[3][4]
                memo[n_bg + j] = x[3][5]
            df = pl.DataFrame(
                {
                    "seq": ids,
                    "ts": all_ts[order],
                    "src_account": aid_s.gather(all_src[order]),
                    "dst_account": aid_s.gather(all_dst[order]),
                    "amount": all_amt[order],
                    "channel": pl.Series(chan[order], dtype=pl.Utf8),
                    "memo": pl.Series(memo[order], dtype=pl.Utf8),
                }
            ).with_columns(
                tx_id=pl.format("T{}", pl.col("seq").cast(pl.Utf8).str.zfill(tx_width)),
                currency=pl.lit("CNY"),
            )
            _format("transactions", df).write_csv(fh, include_header=(k == 0))
            next_id += n
            written += n
            del df, src, dst, ts, amt, typ
            report("transactions", k + 1, n_chunks)
    counts["transactions"] = written

    # labels ---------------------------------------------------------------------------
    rows = []
    first_disb: dict[int, tuple] = {}
    for x in w.disb:
        first_disb.setdefault(x[0], x)
    for ci, c in enumerate(cases.cases):
        tx_ids = [case_ids[(ci, k)] for k in range(len(c.txs))]
        returned = None
        if EXPECTED_RULE[c.typology] == "flow_back":
            edges = [(t[0], tx_ids[k], aid[t[1]], aid[t[2]], t[3]) for k, t in enumerate(c.txs)]
            linked = {aid[i] for i in c.linked}
            paths = flowback_paths(edges, aid[c.d], c.t0, c.a, linked)
            if not paths or c.hops not in {
                len(p) for p in paths
            }:  # pragma: no cover - generator bug
                raise AssertionError(
                    f"injected case {c.case_id} has no flow-back path of {c.hops} hops"
                )
            returned = greedy_returned(paths, aid[c.d], c.a, linked)
        note = c.note
        if c.repaid_loan is not None:
            note += f" (repaid loan {lid[c.repaid_loan]})"
        disb = first_disb[c.loan]
        rows.append(
            {
                "case_id": c.case_id,
                "typology": c.typology,
                "loan_id": lid[c.loan],
                "disbursement_id": disb_id(disb[0], disb[1], disb[3]),
                "tx_ids": tx_ids,
                "expected_rule": EXPECTED_RULE[c.typology],
                "hops": c.hops,
                "returned_amount": returned,
                "note": note,
            }
        )
    labels = pl.DataFrame(
        rows,
        schema={
            "case_id": pl.Utf8,
            "typology": pl.Utf8,
            "loan_id": pl.Utf8,
            "disbursement_id": pl.Utf8,
            "tx_ids": pl.List(pl.Utf8),
            "expected_rule": pl.Utf8,
            "hops": pl.Int64,
            "returned_amount": pl.Int64,
            "note": pl.Utf8,
        },
    )
    labels.write_parquet(out_dir / "labels.parquet", statistics=False)
    report("labels", 1, 1)
    typ_counts = {t: int(sum(1 for c in cases.cases if c.typology == t)) for t in TYPOLOGIES}
    return {
        "scale": scale,
        "seed": seed,
        "tables": {t: counts[t] for t in TABLES},
        "typologies": typ_counts,
        "labels": labels.height,
    }
