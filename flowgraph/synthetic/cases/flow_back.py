"""Flow-back case types: proceeds leave the borrower side and come back (expected rule ``flow_back``).

``fb_direct``       borrower account → 1..4 fresh intermediaries → a borrower account (2..5
                    hops; sometimes a leading hop to another own account first)
``fb_split_merge``  split to 2..4 intermediaries, merged at one account, back (3 or 4 hops)
``fb_entrusted``    entrusted payment to a fresh supplier, supplier → 0..4 intermediaries →
                    borrower (1..5 hops; the supplier account is the disbursement account)
``fb_related``      back to the account of a party related to the borrower by one relation
                    (explicit relation row, or a shared phone / address attribute)
``fb_partial``      only part of the proceeds returns (the rest goes to an outside sink)

>>> import numpy as np
>>> from flowgraph.synthetic.world import World
>>> kit = CaseKit(World(), np.random.Generator(np.random.PCG64(1)), inst_accounts=[])
>>> c = fb_direct(kit)
>>> c.txs[0][1] in c.linked and c.txs[-1][2] in c.linked, 2 <= c.hops <= 5
(True, True)
"""

from __future__ import annotations

import numpy as np

from flowgraph.core.values import DAY_MS, HOUR_MS
from flowgraph.synthetic.cases.kit import Case, CaseKit
from flowgraph.synthetic.constants import START_MS
from flowgraph.synthetic.world import PARENT_GAP_MS, round_to


def fb_direct(kit: CaseKit) -> Case:
    rng = kit.rng
    B, d = kit.borrower()
    hops = int(rng.integers(2, 6))
    li, t0, a = kit.new_loan(B, d)
    lead = hops >= 3 and rng.random() < 0.3
    end_other = rng.random() < 0.4
    d2 = kit.b.account(B) if (lead or end_other) else None
    ts = kit.times(t0, hops)
    txs = []
    x = a * rng.uniform(0.5, 1.0)
    start = d
    if lead:
        txs.append((ts[0], d, d2, round_to(x, 100), "transfer", "内部调拨"))
        start, ts = d2, ts[1:]
    end = d2 if (end_other and not lead) else d
    t2, _ = kit.chain(start, end, len(ts) - 1, x, ts, opened_before=t0)
    txs += t2
    note = f"{hops}-hop chain back to the borrower's {'own other' if end != d else 'disbursement'} account"
    if lead:
        note += " after a leading hop to another own account"
    return Case(li, txs, hops, note, kit.owned_by({B}), d, a, t0)


def fb_split_merge(kit: CaseKit) -> Case:
    rng = kit.rng
    B, d = kit.borrower()
    li, t0, a = kit.new_loan(B, d)
    k = int(rng.integers(2, 5))
    extra = rng.random() < 0.4  # merge account forwards once more before returning
    frac = rng.uniform(0.8, 1.0)
    parts = 0.12 + (frac - 0.12 * k) * rng.dirichlet(np.ones(k))
    ts_split = kit.times(t0, k, HOUR_MS, 3 * DAY_MS)
    mids = [kit.fresh(t0) for _ in range(k)]
    m = kit.fresh(t0)
    txs = []
    merged = 0
    ts_merge = kit.times(t0, k, 4 * DAY_MS, 10 * DAY_MS)
    for j in range(k):
        x = round_to(a * parts[j], 100)
        txs.append((ts_split[j], d, mids[j], x, "transfer", "货款"))
        y = round_to(x * rng.uniform(0.97, 1.0), 100)
        txs.append((ts_merge[j], mids[j], m, y, "transfer", "货款"))
        merged += y
    t_back = kit.times(t0, 2, 11 * DAY_MS, 28 * DAY_MS)
    back = round_to(merged * rng.uniform(0.95, 1.0), 100)
    if extra:
        n = kit.fresh(t0)
        txs.append((t_back[0], m, n, back, "transfer", "往来款"))
        back2 = round_to(back * rng.uniform(0.97, 1.0), 100)
        txs.append((t_back[1], n, d, back2, "transfer", "往来款"))
    else:
        txs.append((t_back[1], m, d, back, "transfer", "往来款"))
    hops = 4 if extra else 3
    return Case(
        li,
        txs,
        hops,
        f"split to {k} intermediaries, merged, returned ({hops} hops)",
        kit.owned_by({B}),
        d,
        a,
        t0,
    )


def fb_entrusted(kit: CaseKit) -> Case:
    rng = kit.rng
    B, dB = kit.borrower("company")
    S = kit.b.party("company")
    s = kit.b.account(S)
    hops = int(rng.integers(1, 6))
    li, t0, a = kit.new_loan(B, s, mode="entrusted")
    ts = kit.times(t0, hops)
    x = a * rng.uniform(0.6, 0.98)
    txs, _ = kit.chain(s, dB, hops - 1, x, ts, opened_before=t0, memo="退款")
    return Case(
        li,
        txs,
        hops,
        f"entrusted payment to supplier account, returned to borrower via {hops - 1} intermediaries",
        kit.owned_by({B}),
        s,
        a,
        t0,
    )


def fb_related(kit: CaseKit) -> Case:
    rng = kit.rng
    B, d = kit.borrower()
    kind = kit.w.p_kind[B]
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
        rel, birth = _family_birth(rng, rel, kit.w.p_birth[B])
        R = kit.b.party("person", birth=birth)
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
        R = kit.b.party("company" if rel in ("investor", "affiliate") else "person")
    since = START_MS - int(rng.integers(100, 3000)) * DAY_MS
    if rel == "shared_phone":
        kit.w.p_phone[R] = kit.w.p_phone[B]
    elif rel == "shared_address":
        kit.b.share_address(R, B)
    elif rel in ("legal_rep", "shareholder", "investor"):
        kit.b.relate(R, B, rel, since)
    else:
        kit.b.relate(B, R, rel, since)
    r = kit.b.account(R)
    hops = int(rng.integers(2, 6))
    li, t0, a = kit.new_loan(B, d)
    ts = kit.times(t0, hops)
    txs, _ = kit.chain(d, r, hops - 1, a * rng.uniform(0.5, 1.0), ts, opened_before=t0)
    return Case(
        li,
        txs,
        hops,
        f"returned to a party linked by {rel}",
        kit.owned_by({B, R}),
        d,
        a,
        t0,
    )


def fb_partial(kit: CaseKit) -> Case:
    rng = kit.rng
    B, d = kit.borrower()
    li, t0, a = kit.new_loan(B, d)
    hops = int(rng.integers(2, 6))
    ts = kit.times(t0, hops + 1)
    x1 = a * rng.uniform(0.4, 0.9)
    sink = kit.fresh()
    txs = (
        [(ts[0], d, sink, round_to(a - x1, 100), "transfer", "货款")] if rng.random() < 0.5 else []
    )
    keep = rng.uniform(0.3, 0.7)
    mids = [kit.fresh(t0) for _ in range(hops - 1)]
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
                    round_to(amt - fwd, 100),
                    "transfer",
                    "投资款",
                )
            )
            amt = fwd
        elif k:
            amt *= rng.uniform(0.95, 1.0)
        txs.append((ts[k + 1], nodes[k], nodes[k + 1], round_to(amt, 100), "transfer", "往来款"))
    return Case(
        li,
        txs,
        hops,
        "only part of the proceeds returns",
        kit.owned_by({B}),
        d,
        a,
        t0,
    )


# persons born in this range of days since 1970 (1920-09 .. 2002-11)
_OLDEST, _YOUNGEST = -18_000, 12_000


def _family_birth(rng: np.random.Generator, rel: str, birth_b: int) -> tuple[str, int | None]:
    """The relation and the related person's birth (ms) for borrower born ``birth_b``.

    For ``parent`` (the borrower is the parent) and ``child`` (the borrower is the child)
    the other is 16 to 40 years younger or older; when the borrower is too young to be a
    parent the tie becomes ``child``, too old to be a child ``parent``. Other relations:
    any birth (``None``: drawn by the builder).

    >>> rng = np.random.Generator(np.random.PCG64(0))
    >>> rel, birth = _family_birth(rng, "parent", 11_000 * DAY_MS)  # born 2000: too young
    >>> rel, (11_000 * DAY_MS - birth) // DAY_MS >= 16 * 366
    ('child', True)
    """
    if rel not in ("parent", "child"):
        return rel, None
    b = birth_b // DAY_MS
    gap_lo, gap_hi = PARENT_GAP_MS // DAY_MS + 1, 40 * 365
    if rel == "parent" and b + gap_lo > _YOUNGEST:
        rel = "child"
    elif rel == "child" and b - gap_lo < _OLDEST:
        rel = "parent"
    if rel == "parent":
        lo, hi = b + gap_lo, min(_YOUNGEST, b + gap_hi)
    else:
        lo, hi = max(_OLDEST, b - gap_hi), b - gap_lo
    return rel, int(rng.integers(lo, hi + 1)) * DAY_MS
