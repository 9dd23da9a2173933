"""The background population: ordinary parties, accounts, relations and loans.

:func:`background_world` adds persons, companies (a few institutions whose accounts carry a
category such as ``brokerage``), their accounts and relations; :func:`ordinary_loans`
gives some background parties an ordinary loan (one to three tranches inside the data
year, an entrusted payment to a supplier for some companies) repaid as
:mod:`flowgraph.synthetic.loans` says (a loan in tranches from another account of the
borrower than the one the tranches go to), so that no ordinary loan looks like a
labelled case.

Relations make sense: family ties only between persons, at most one family tie per pair
and one spouse per person, a parent at least 16 years older than the child (otherwise
the tie is ``relative``), and no relation starts before both sides are born, or before
they are 18 for a spouse, legal representative, shareholder, investor or guarantor. A
spouse often moves in with the other (same address, so same region). About 2 % of the
accounts are dormant: never a party's first account or an institution's, and never used.

>>> import numpy as np
>>> w = World()
>>> inst = background_world(w, np.random.Generator(np.random.PCG64(0)), 200)
>>> len(inst) >= 8 and {w.a_cat[i] for i in inst} == {"brokerage", "real_estate", "lender", "crypto"}
True
"""

from __future__ import annotations

import math

import numpy as np

from flowgraph.core.values import DAY_MS, HOUR_MS
from flowgraph.synthetic.constants import (
    BACKGROUND_MAX,
    CASE_MAX_LOAN,
    DAYS,
    MIN_DISBURSEMENT,
    START_MS,
)
from flowgraph.synthetic.loans import schedule
from flowgraph.synthetic.vocabulary import (
    BRANCHES,
    CATEGORIES,
    CATEGORY_INDUSTRY,
    CATEGORY_NAME,
    GIVEN,
    REGIONS,
    SURNAMES,
    WORDS,
)
from flowgraph.synthetic.world import (
    PARENT_GAP_MS,
    Builder,
    World,
    round_to,
    unique_address,
    unique_phone,
)

FAMILY = ("spouse", "parent", "relative", "child", "other")


def background_world(w: World, rng: np.random.Generator, n_accounts: int) -> list[int]:
    """Background parties, accounts and relations. Returns institution (category) accounts."""
    b = Builder(w, rng)
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
    for i in range(n_pers):
        u = w.unique_counter
        w.unique_counter += 1
        city, code = REGIONS[int(regs[i])]
        birth = int(births[i]) * DAY_MS
        w.p_kind.append("person")
        w.p_name.append(SURNAMES[s_idx[i]] + GIVEN[g1[i]] + (GIVEN[g2[i]] if two[i] else ""))
        w.p_idnum.append(w.person_id_number(code, birth))
        w.p_phone.append(unique_phone(u))
        w.p_addr.append(unique_address(u, city))
        w.p_industry.append("")
        w.p_region.append(city)
        w.p_birth.append(birth)
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
                region=j % len(REGIONS),
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
    # dormant accounts: never an institution's account or a party's first account
    first_of = {accts[0] for accts in w.p_accounts.values()}
    for i in np.flatnonzero(rng.random(len(w.a_status)) < 0.02).tolist():
        if not w.a_cat[i] and i not in first_of:
            w.a_status[i] = "dormant"

    # relations
    def since(n):
        return START_MS - rng.integers(30, 5000, size=n) * DAY_MS

    n_fam = n_pers // 4
    a_ = rng.choice(persons, size=n_fam)
    b_ = rng.choice(persons, size=n_fam)
    fam = rng.choice(list(FAMILY), size=n_fam, p=[0.4, 0.25, 0.15, 0.1, 0.1])
    tied: set[tuple[int, int]] = set()
    married: set[int] = set()
    for x, y, r, s in zip(a_.tolist(), b_.tolist(), fam.tolist(), since(n_fam).tolist(), strict=True):
        pair = (min(x, y), max(x, y))
        if x == y or pair in tied or (r == "spouse" and (x in married or y in married)):
            continue
        if r in ("parent", "child"):
            older, younger = sorted((x, y), key=lambda p: w.p_birth[p])
            if w.p_birth[younger] - w.p_birth[older] < PARENT_GAP_MS:
                r = "relative"
            else:  # (parent, child, parent) or (child, parent, child)
                x, y = (older, younger) if r == "parent" else (younger, older)
        tied.add(pair)
        b.relate(x, y, r, s)
        if r == "spouse":
            married.update((x, y))
            if rng.random() < 0.7:
                b.share_address(y, x)
    nc = len(comps_arr)
    reps = rng.choice(persons, size=nc)
    for c, pp, s in zip(comps_arr.tolist(), reps.tolist(), since(nc).tolist(), strict=True):
        b.relate(pp, c, "legal_rep", s)
    n_sh = nc
    for x, c, s in zip(
        rng.choice(persons, size=n_sh).tolist(),
        rng.choice(comps_arr, size=n_sh).tolist(),
        since(n_sh).tolist(),
        strict=True,
    ):
        b.relate(x, c, "shareholder", s)
    n_cc = nc // 2
    kinds = rng.choice(["investor", "affiliate", "guarantor"], size=n_cc)
    for x, y, r, s in zip(
        rng.choice(comps_arr, size=n_cc).tolist(),
        rng.choice(comps_arr, size=n_cc).tolist(),
        kinds.tolist(),
        since(n_cc).tolist(),
        strict=True,
    ):
        if x != y:
            b.relate(x, y, r, s)
    n_g = n_pers // 50
    for x, y, s in zip(
        rng.choice(persons, size=n_g).tolist(),
        rng.choice(persons, size=n_g).tolist(),
        since(n_g).tolist(),
        strict=True,
    ):
        if x != y:
            b.relate(x, y, "guarantor", s)
    # some persons share a phone with a random other person (no relation row)
    for x, y in zip(
        rng.choice(persons, size=n_pers // 100 + 1),
        rng.choice(persons, size=n_pers // 100 + 1),
        strict=True,
    ):
        w.p_phone[int(y)] = w.p_phone[int(x)]
    return inst_accounts


def ordinary_loans(w: World, rng: np.random.Generator, n_loans: int, bg_parties: np.ndarray) -> list:
    """Loans of ``n_loans`` background parties (at most one each), with their repayments.

    Returns the ordinary spending of the companies' self-paid loans (transactions ``(ts,
    src, dst, amount, channel, memo)``): the benign look-alikes of the post-loan rules, in the
    background. A company pays most of its first tranche to one to three of its regular
    suppliers within days — suppliers it paid in each of the months before (when the loan
    comes late enough in the year for those months to be in it), or in pieces of at most
    45 % each (earlier loans). Suppliers are companies that repay no loan, and never pass
    large amounts on, so no path rule can run through them.
    """
    spend: list = []
    b = Builder(w, rng)
    first_acct = {o: accts[0] for o, accts in w.p_accounts.items()}
    borrowers = rng.choice(bg_parties, size=min(n_loans, len(bg_parties)), replace=False)
    # entrusted payments go to active company accounts of suppliers that repay no loan of
    # their own (no 0-hop repay-with-loan)
    bg = set(bg_parties.tolist())
    company_accounts = np.asarray(
        [i for i, o in enumerate(w.a_owner)
         if o in bg and w.p_kind[o] == "company" and not w.a_cat[i] and w.a_status[i] == "active"],
        dtype=np.int64,
    )  # fmt: skip
    company_accounts = company_accounts[
        ~np.isin(np.asarray(w.a_owner)[company_accounts], borrowers)
    ]
    for B in borrowers.tolist():
        kind = w.p_kind[B]
        d = first_acct[B]
        lo = math.log(MIN_DISBURSEMENT) if kind == "person" else math.log(MIN_DISBURSEMENT * 2)
        hi = math.log(MIN_DISBURSEMENT * 4) if kind == "person" else math.log(CASE_MAX_LOAN * 4)
        n_tr = int(rng.choice([1, 1, 1, 2, 3]))
        amount = round_to(math.exp(rng.uniform(lo, hi)), 100_000)
        amount = max(amount, MIN_DISBURSEMENT * n_tr)
        mode = "entrusted" if kind == "company" and rng.random() < 0.3 else "self"
        # tranches come 7..60 days apart: start early enough for all of them to fall in 2024
        last_day = min(330, DAYS - 1 - 61 * (n_tr - 1))
        t0 = START_MS + int(rng.integers(0, last_day)) * DAY_MS + int(rng.integers(HOUR_MS, 9 * HOUR_MS))
        acct = d
        if mode == "entrusted":
            acct = int(company_accounts[int(rng.integers(len(company_accounts)))])
        li = b.loan(B, amount, mode, t0, acct)
        t_last = t0
        if n_tr > 1:
            w.disb.pop()
            per = round_to(amount / n_tr, 100_000)
            for k in range(n_tr):
                amt = per if k < n_tr - 1 else amount - per * (n_tr - 1)
                w.disb.append((li, acct, amt, t_last))
                if k < n_tr - 1:
                    t_last += int(rng.integers(7, 60)) * DAY_MS + int(rng.integers(0, HOUR_MS))
        # instalments fall due from 45 days after the first tranche; while tranches still come
        # into d, they are paid from another account of the borrower (no 0-hop look-alike)
        payer = d
        if n_tr > 1 and mode == "self":
            others = [a for a in w.p_accounts[B][1:] if w.a_status[a] == "active"]
            payer = others[0] if others else b.account(B, case=False)
        schedule(w, rng, li, payer, t0)
        if kind == "company" and mode == "self":
            spend += _spending(w, rng, d, t0, w.disb[-n_tr][2], company_accounts)
    return spend


def _spending(w: World, rng: np.random.Generator, d: int, t0: int, a: int, suppliers: np.ndarray) -> list:
    """A company's ordinary spending of a tranche ``a`` paid into ``d`` at ``t0`` (see
    :func:`ordinary_loans`)."""
    pool = suppliers[np.asarray(w.a_owner)[suppliers] != w.a_owner[d]]
    n = int(rng.integers(1, 4))
    chosen = rng.choice(pool, size=n, replace=False).tolist()
    known = t0 - START_MS >= 100 * DAY_MS  # room for the months before in the data year
    shares = rng.dirichlet(np.ones(n)) * rng.uniform(0.5, 0.9)
    if not known:
        shares = np.minimum(shares, 0.45)
    txs = []
    for s, share in zip(chosen, shares.tolist(), strict=True):
        if known:
            for k in (2, 1):  # paid in each of the two months before
                t = t0 - k * 30 * DAY_MS - int(rng.integers(0, 5 * DAY_MS))
                txs.append((t, d, s, int(rng.integers(100_000, BACKGROUND_MAX)), "transfer", "货款"))
        t = t0 + int(rng.integers(2 * HOUR_MS, 5 * DAY_MS))
        txs.append((t, d, s, round_to(a * share, 100), "transfer", "货款"))
    return txs
