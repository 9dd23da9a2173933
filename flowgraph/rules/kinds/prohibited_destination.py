"""Prohibited destination: the proceeds reach an account of a prohibited category.

Pattern it catches::

    L1 disburses 1 000 000.00 into A_d (day 0)
    A_d ─800 000.00 (day 1)→ A_supplier ─700 000.00 (day 3)→ A_broker [brokerage]
                                                          → fires: 2 hops, 70 %

Closest legitimate look-alikes: a home-purchase loan paying the developer (a real-estate
account): a category the loan's purpose allows (``allowed_by_purpose``) is not prohibited
for that loan; small card payments from ``d`` at a brokerage (below the per-hop floor of
10 % of the disbursement); the brokerage receiving money from the intermediary *before*
the proceeds reached the intermediary. Accounts on the pack's suppression list are never
destinations.

Categories come from the accounts table (``category``); the shipped pack prohibits
brokerage, real estate, lenders and crypto. The detector is the shared earliest-arrival
reach plus :mod:`flowgraph.engine.prohibited`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from flowgraph.core.errors import InvalidValue
from flowgraph.core.values import format_amount_grouped, ratio_threshold
from flowgraph.engine.hits import Disbursements, Hits, hop_thresholds, window_ms
from flowgraph.engine.reach_reference import earliest_arrivals, edges_by_src, simple_chains
from flowgraph.rules.findings import account_name, disbursements, hops_text, runner, when_text
from flowgraph.rules.model import Rule, check_common_params, param
from flowgraph.rules.scoring import GENERIC_FEATURES

NAME = "prohibited_destination"
FEATURES = GENERIC_FEATURES
CATEGORY_NAMES: tuple[str, ...] = ("brokerage", "real_estate", "lender", "crypto")


@dataclass(frozen=True)
class ProhibitedDestinationParams:
    """Parameters of :func:`detect_prohibited_destination`.

    Attributes
    ----------
    categories : tuple of str
        Account categories the proceeds must not reach.
    window_days : float
        The destination must be reached at most this long after the disbursement.
    max_hops : int
        Longest chain of transactions from ``d`` to the destination (>= 1).
    min_amount, min_amount_ratio : int, float
        Per-transaction floor ``max(min_amount, ratio_threshold(min_amount_ratio, a))``.
    allowed_by_purpose : dict of str to tuple of str
        Loan purpose → categories that purpose allows (a home-purchase loan may pay a
        real-estate account); the loan's purpose comes from ``loans.purpose``.
    include_disbursement_account : bool
        If true, a disbursement *into* an account of a prohibited category fires at 0 hops
        (``first_ts = t0``). Default false: ``d`` is never the destination.
    max_paths : int
        Example paths kept per disbursement.
    """

    categories: tuple[str, ...] = param(CATEGORY_NAMES, doc="prohibited account categories")
    window_days: float = param(30.0, 0, 3660, "days after disbursement the destination may be reached")
    max_hops: int = param(5, 1, 12, "transfers from the disbursement account to the destination")
    min_amount: int = param(0, 0, None, "every hop at least this (minor units)", type="money")
    min_amount_ratio: float = param(0.1, 0, 1, "every hop at least this share of the disbursed amount")
    allowed_by_purpose: dict[str, tuple[str, ...]] = param({"home purchase": ("real_estate",)}, doc="loan purpose → categories it allows", type="map")
    include_disbursement_account: bool = param(False, doc="a disbursement straight into a prohibited account fires")
    max_paths: int = param(10, 0, 10000, "example paths kept per disbursement")

    def __post_init__(self) -> None:
        check_common_params(self)
        if self.max_hops < 1:
            raise InvalidValue("max_hops must be >= 1")


Params = ProhibitedDestinationParams


def _prohibited_mask(account_category, category_names, categories, benign=None) -> tuple[np.ndarray, dict]:
    names = list(category_names)
    codes = {i: nm for i, nm in enumerate(names) if nm in set(categories)}
    cat = np.asarray(account_category).astype(np.int64)
    bad = np.isin(cat, np.fromiter(codes, np.int64, len(codes))) & (cat >= 0)
    if benign is not None:
        bad &= ~np.asarray(benign).astype(bool)
    return bad.astype(np.uint8), codes


def _by_purpose(purposes, n: int, params) -> dict[tuple[str, ...], list[int]]:
    """Disbursement positions grouped by the categories prohibited for their loan's purpose."""
    groups: dict[tuple[str, ...], list[int]] = {}
    purposes = [None] * n if purposes is None else list(purposes)
    for i, p in enumerate(purposes):
        allowed = set(params.allowed_by_purpose.get(p or "", ()))
        groups.setdefault(tuple(c for c in params.categories if c not in allowed), []).append(i)
    return groups


def detect_prohibited_destination(
    index,
    disb: Disbursements,
    account_category: np.ndarray,
    category_names: Sequence[str] = CATEGORY_NAMES,
    purposes: Sequence[str | None] | None = None,
    benign: np.ndarray | None = None,
    params: ProhibitedDestinationParams = ProhibitedDestinationParams(),
) -> Hits:
    """The proceeds reach an account of a prohibited category (brokerage, real estate, ...).

    Fires when a time-respecting chain of ``1..max_hops`` transactions from ``d`` (after
    ``t0``, strictly increasing timestamps, at most ``window`` after ``t0``, each amount
    ``>= max(min_amount, min_amount_ratio · a)``) ends at an account whose category is in
    ``params.categories`` that the disbursement's loan purpose (``purposes[i]``) does not
    allow (``allowed_by_purpose``) and that is not flagged in ``benign``; ``d`` itself only
    with ``include_disbursement_account``.

    Parameters
    ----------
    index : TemporalIndex
    disb : Disbursements
    account_category : ndarray of int (int8/int16/...), shape (n_accounts,)
        Category code per dense account, ``-1`` = none.
    category_names : sequence of str
        Code ``c`` means ``category_names[c]``; the codes of the names in
        ``params.categories`` are prohibited.
    params : ProhibitedDestinationParams

    Returns
    -------
    Hits
        ``first_ts`` = earliest arrival at a prohibited account, ``hops`` = fewest hops to
        any, ``amount`` = sum of the qualifying chain transactions from non-prohibited into
        prohibited accounts, capped at ``a`` (an upper bound of what reached them),
        ``metric`` = amount / a; ``detail``: ``account`` and ``category`` of the first one
        reached, ``accounts`` (how many prohibited accounts were reached, up to max_paths).

    Examples
    --------
    >>> from flowgraph.engine.csr import build_index
    >>> idx = build_index(np.array([0, 1], np.int32), np.array([1, 2], np.int32),
    ...                   np.array([10, 20]), np.array([900, 800]), np.array(["d", "x", "b"]))
    >>> h = detect_prohibited_destination(idx, Disbursements.of([0], [0], [1000]),
    ...                                   np.array([-1, -1, 0], np.int8))
    >>> h.fired.tolist(), h.hops.tolist(), h.detail[0]["category"], h.amount.tolist()
    ([True], [2], 'brokerage', [800])
    """
    from flowgraph.engine.prohibited import prohibited_worker  # numba: compiled on first use
    from flowgraph.engine.reach import run_batch

    cat = np.asarray(account_category)
    if cat.shape[0] != index.n_accounts:
        raise ValueError("account_category must have one code per account")
    parts = []
    for categories, pos in _by_purpose(purposes, len(disb), params).items():
        pos = np.asarray(pos, np.int64)
        sub = disb if len(pos) == len(disb) else disb.subset(pos)
        bad, codes = _prohibited_mask(cat, category_names, categories, benign)
        amt = np.asarray(sub.amount, np.int64)
        H = int(params.max_hops)
        hits, res = run_batch(prohibited_worker, index, sub, H, hop_thresholds(amt, params.min_amount, params.min_amount_ratio),
                              window_ms(params.window_days), int(params.max_paths), H,
                              (bad, bool(params.include_disbursement_account)))  # fmt: skip
        hits.set_share_metric(amt)
        for i in np.flatnonzero(hits.fired).tolist():
            v = int(res[i, 5])
            hits.detail[i] = {
                "account": v,
                "category": codes.get(int(cat[v]), str(int(cat[v]))),
                "accounts": int(res[i, 7]),
            }
        parts.append((pos, hits))
    return Hits.scatter(len(disb), parts)


def reference_prohibited_destination(index, disb, account_category, category_names=CATEGORY_NAMES,
                                     purposes=None, benign=None, params=ProhibitedDestinationParams()) -> Hits:  # fmt: skip
    """Pure-Python reference of :func:`detect_prohibited_destination`."""
    out = edges_by_src(index)
    names = list(category_names)
    cat = np.asarray(account_category).tolist()
    purposes = [None] * len(disb) if purposes is None else list(purposes)
    rows = []
    for d, t0, a, purpose in zip(np.asarray(disb.account).tolist(), np.asarray(disb.t0).tolist(),
                                 np.asarray(disb.amount).tolist(), purposes, strict=True):  # fmt: skip
        allowed = set(params.allowed_by_purpose.get(purpose or "", ()))
        bad = [0 <= c < len(names) and names[c] in params.categories and names[c] not in allowed
               and not (benign is not None and benign[v]) for v, c in enumerate(cat)]  # fmt: skip
        thr = max(params.min_amount, ratio_threshold(params.min_amount_ratio, a))
        tend = t0 + window_ms(params.window_days)
        if params.include_disbursement_account and bad[d]:
            rows.append((a, t0, 0))
            continue
        first = None
        min_h = None
        used = set()
        for v, arr, hops, _ in simple_chains(out, d, t0, tend, thr, params.max_hops):
            if hops == 0 or v == d or not bad[v]:
                continue
            first = arr if first is None else min(first, arr)
            min_h = hops if min_h is None else min(min_h, hops)
        # amount: transactions from a non-prohibited account u into a prohibited one,
        # u reached within max_hops - 1 hops before the transaction
        reach = earliest_arrivals(out, d, t0, tend, thr, params.max_hops - 1)
        for u, arr_u in reach.items():
            if bad[u]:
                continue
            for te, r, v, am in out[u]:
                if arr_u < te <= tend and am >= thr and bad[v] and v != d:
                    used.add(r)
        if first is None:
            rows.append(None)
            continue
        am = np.asarray(index.amount)[np.argsort(np.asarray(index.row))]
        total = min(a, sum(int(am[r]) for r in used))
        rows.append((total, first, min_h))
    return Hits.of_rows(rows)


# ------------------------------------------------------------------ in the nightly batch
def detector_args(ctx, index, rule: Rule, sel: pl.DataFrame, suppress: bool = True) -> tuple:
    """The detector's inputs from the store: the disbursements, each account's category,
    each loan's purpose, and the accounts of the pack's suppression list (when ``suppress``)."""
    disb, _ = disbursements(ctx, sel)
    return (index, disb, ctx.account_category, ctx.category_names, sel["purpose"].to_list(),
            ctx.benign(rule) if suppress else None)


def reason(ctx, rule: Rule, sel: pl.DataFrame, hits: Hits, i: int, disbursed: int, t0: int) -> str:
    """``'70% of the 1,000,000.00 disbursed reached a brokerage account (A_b) after 2 hops within 3 days'``."""
    d = hits.detail[i]
    return (f"{hits.metric[i]:.0%} of the {format_amount_grouped(disbursed)} disbursed reached a {d['category']} account "
            f"({account_name(ctx, d['account'])}) after {hops_text(int(hits.hops[i]))} {when_text(hits, i, t0)}")


alerts = runner(detect_prohibited_destination, detector_args, ProhibitedDestinationParams, reason)
detect = detect_prohibited_destination
reference = reference_prohibited_destination
