"""Negative controls: look-alikes of flow-back that no rule of the default pack may flag as such.

``neg_late_return``        like ``fb_direct`` but the return happens 35..60 days after
                           disbursement (outside the 30-day window)
``neg_unlinked_lookalike`` returns to a party with a similar name but no link to the borrower
``neg_own_accounts``       money moves only among the borrower's own accounts
``neg_round_amount``       round amounts to an own account and back; never left the borrower side

>>> import numpy as np
>>> from flowgraph.synthetic.world import World
>>> kit = CaseKit(World(), np.random.Generator(np.random.PCG64(1)), inst_accounts=[])
>>> c = neg_own_accounts(kit)
>>> all(t[1] in c.linked and t[2] in c.linked for t in c.txs), c.hops
(True, None)
"""

from __future__ import annotations

from flowgraph.core.values import DAY_MS, HOUR_MS
from flowgraph.synthetic.cases.kit import Case, CaseKit
from flowgraph.synthetic.vocabulary import GIVEN, LOOKALIKE, REGIONS
from flowgraph.synthetic.world import round_to


def neg_late_return(kit: CaseKit) -> Case:
    rng = kit.rng
    B, d = kit.borrower()
    li, t0, a = kit.new_loan(B, d, t0=kit.t0(3, 300))
    hops = int(rng.integers(2, 6))
    ts = kit.times(t0, hops - 1, HOUR_MS, 25 * DAY_MS)
    ts.append(t0 + int(rng.integers(35 * DAY_MS, 60 * DAY_MS)))
    txs, _ = kit.chain(d, d, hops - 1, a * rng.uniform(0.5, 1.0), ts, opened_before=t0)
    days = (ts[-1] - t0) / DAY_MS
    return Case(
        li,
        txs,
        None,
        f"returns after the window, on day {days:.1f}",
        kit.owned_by({B}),
        d,
        a,
        t0,
    )


def neg_unlinked_lookalike(kit: CaseKit) -> Case:
    rng = kit.rng
    B, d = kit.borrower()
    name = kit.w.p_name[B]
    kind = kit.w.p_kind[B]
    if kind == "person":
        chars = list(name)
        pos = next((i for i in range(len(chars) - 1, 0, -1) if chars[i] in LOOKALIKE), None)
        if pos is None:
            chars.append(GIVEN[int(rng.integers(len(GIVEN)))])
        else:
            chars[pos] = LOOKALIKE[chars[pos]]
        look = "".join(chars)
        region = None
    else:  # a "branch" in another city, located there
        region = int(rng.integers(len(REGIONS)))
        look = name.replace("有限公司", "（" + REGIONS[region][0] + "）有限公司")
    Z = kit.b.party(kind, name=look, region=region)
    z = kit.b.account(Z)
    li, t0, a = kit.new_loan(B, d)
    hops = int(rng.integers(2, 6))
    ts = kit.times(t0, hops)
    txs, _ = kit.chain(d, z, hops - 1, a * rng.uniform(0.5, 1.0), ts, opened_before=t0)
    return Case(
        li,
        txs,
        None,
        f"returns to {look!r}, unrelated look-alike of {name!r}",
        kit.owned_by({B}),
        d,
        a,
        t0,
    )


def neg_own_accounts(kit: CaseKit) -> Case:
    rng = kit.rng
    B, d = kit.borrower()
    own = [kit.b.account(B) for _ in range(int(rng.integers(1, 4)))]
    li, t0, a = kit.new_loan(B, d)
    nodes = [d, *own] + ([d] if rng.random() < 0.5 else [])
    ts = kit.times(t0, len(nodes) - 1)
    x = a * rng.uniform(0.5, 1.0)
    txs = []
    for k in range(len(nodes) - 1):
        txs.append((ts[k], nodes[k], nodes[k + 1], round_to(x, 100), "transfer", "内部调拨"))
        x *= rng.uniform(0.9, 1.0)
    return Case(
        li,
        txs,
        None,
        f"moves among {len(own) + 1} own accounts only",
        kit.owned_by({B}),
        d,
        a,
        t0,
    )


def neg_round_amount(kit: CaseKit) -> Case:
    rng = kit.rng
    B, d = kit.borrower()
    li, t0, a = kit.new_loan(B, d)
    d2 = kit.b.account(B)
    unit = 100_000_000 if a >= 400_000_000 else 50_000_000  # 1 000 000.00 or 500 000.00
    n = int(rng.integers(1, 4))
    ts = kit.times(t0, 2 * n)
    txs = []
    f = rng.uniform(0.5, 1.0)
    for k in range(n):
        amt = max(-(-a // (10 * unit)) * unit, int(a * f / n) // unit * unit)
        txs.append((ts[k], d, d2, amt, "transfer", "整额转存"))
        txs.append((ts[n + k], d2, d, amt, "transfer", "整额转回"))
    return Case(
        li,
        txs,
        None,
        f"{n} round transfer(s) to an own account and back, never left",
        kit.owned_by({B}),
        d,
        a,
        t0,
    )
