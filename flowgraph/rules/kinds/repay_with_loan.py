"""Repay with loan (以贷还贷): the proceeds reach an account that repays a loan.

Pattern it catches::

    L2 disburses 1 000 000.00 into A_d (day 0)
    A_d ─800 000.00 (day 1)→ A_m ─700 000.00 (day 2)→ A_x
    A_x repays loan L1: 600 000.00 (day 20)              → fires: 2 hops, 60 %

Closest legitimate look-alike: a borrower who keeps paying an older loan's instalments
from the account the new loan lands in (often the salary account) — a routine instalment:
the same account had already repaid that loan at least ``routine_after`` times before the
disbursement, and this repayment is not larger than ``routine_factor`` × the one before;
the borrower repays from the disbursement account 45 days later (outside the 30-day
window); or the repaying account paid *before* the proceeds reached it (the money cannot
have come from this loan). Repayments from accounts on the pack's suppression list (the
bank's own collection accounts) do not count.

The detector is the shared earliest-arrival reach (:mod:`flowgraph.engine.reach`) plus
the repayment kernel (:mod:`flowgraph.engine.repay`); the reference enumerates every
simple chain (:mod:`flowgraph.engine.reach_reference`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from flowgraph.core.errors import InvalidValue
from flowgraph.core.values import format_amount_grouped, ratio_threshold
from flowgraph.engine.hits import Disbursements, Hits, hop_thresholds, window_ms
from flowgraph.engine.reach_reference import edges_by_src, simple_chains
from flowgraph.rules.findings import account_name, disbursements, hops_text, runner, when_text
from flowgraph.rules.model import Rule, check_common_params, param
from flowgraph.rules.scoring import GENERIC_FEATURES

NAME = "repay_with_loan"
FEATURES = GENERIC_FEATURES


@dataclass(frozen=True)
class RepayWithLoanParams:
    """Parameters of :func:`detect_repay_with_loan` (以贷还贷).

    Attributes
    ----------
    window_days : float
        The repayment must happen at most this long after the disbursement.
    max_hops : int
        Longest chain of transactions from ``d`` to the repaying account (0 = only ``d``
        repaying itself counts).
    min_amount : int
        Absolute floor per transaction, minor units.
    min_amount_ratio : float
        Every transaction of the chain moves at least this share of the disbursed amount.
    min_repay_ratio : float
        The repayment is at least this share of the disbursed amount.
    routine_after, routine_factor : int, float
        A repayment is a routine instalment (it does not count) when its account had repaid
        the same loan at least ``routine_after`` times before the disbursement and it is at
        most ``routine_factor`` × that account's previous repayment of the loan
        (``routine_after = 0``: no repayment is routine).
    max_paths : int
        Example paths kept per disbursement.
    """

    window_days: float = param(30.0, 0, 3660, "days after disbursement the repayment may happen")
    max_hops: int = param(5, 0, 12, "transfers from the disbursement account to the repaying account")
    min_amount: int = param(0, 0, None, "every hop at least this (minor units)", type="money")
    min_amount_ratio: float = param(0.1, 0, 1, "every hop at least this share of the disbursed amount")
    min_repay_ratio: float = param(0.05, 0, 1, "repayment at least this share of the disbursed amount")
    routine_after: int = param(2, 0, 1000, "earlier repayments of the loan by the account that make an instalment routine (0: none)")
    routine_factor: float = param(1.5, 1, 1000, "a routine instalment is at most this times the previous one")
    max_paths: int = param(10, 0, 10000, "example paths kept per disbursement")

    def __post_init__(self) -> None:
        check_common_params(self)
        if self.max_hops < 0:
            raise InvalidValue("max_hops must be >= 0")


Params = RepayWithLoanParams


def detect_repay_with_loan(
    index,
    disb: Disbursements,
    repay_account: np.ndarray,
    repay_ts: np.ndarray,
    repay_amount: np.ndarray,
    repay_loan_row: np.ndarray,
    params: RepayWithLoanParams = RepayWithLoanParams(),
) -> Hits:
    """以贷还贷: the proceeds reach a loan repayment (of the same or another loan).

    Fires when a time-respecting chain of ``0..max_hops`` transactions (after ``t0``,
    strictly increasing timestamps, each ``>= max(min_amount, min_amount_ratio · a)``)
    leads from ``d`` to an account ``x`` that makes a repayment at ``ts_r`` with
    ``arrival < ts_r <= t0 + window`` (0 hops: ``x = d`` and ``t0 < ts_r``),
    ``amount_r >= ratio_threshold(min_repay_ratio, a)``, and that is not a routine
    instalment at ``t0`` (:func:`routine_since`).

    Parameters
    ----------
    index : TemporalIndex
    disb : Disbursements
    repay_account, repay_ts, repay_amount, repay_loan_row : ndarray, shape (R,)
        Repayments: paying account (dense id), time (UTC ms), amount (minor units) and the
        row of the repaid loan (any int64 the caller understands).
    params : RepayWithLoanParams

    Returns
    -------
    Hits
        ``amount`` = the first qualifying repayment's amount, ``metric`` = amount / a,
        ``first_ts`` its time, ``hops`` fewest transactions to any qualifying repayment;
        ``detail``: ``account`` (dense id of the repaying account), ``repaid_loan_row``,
        ``repayment`` (index into the repayment arrays), ``accounts`` (how many repaying
        accounts were reached). Evidence: the earliest-arrival chain to each repaying
        account (empty array for ``d`` itself), by repayment time.

    Examples
    --------
    >>> from flowgraph.engine.csr import build_index
    >>> idx = build_index(np.array([0], np.int32), np.array([1], np.int32), np.array([10]),
    ...                   np.array([900]), np.array(["d", "x"]))
    >>> disb = Disbursements.of([0], [0], [1000])
    >>> h = detect_repay_with_loan(idx, disb, np.array([1]), np.array([20]),
    ...                            np.array([500]), np.array([7]))
    >>> h.fired.tolist(), h.hops.tolist(), h.detail[0]["repaid_loan_row"]
    ([True], [1], 7)
    """
    from flowgraph.engine.reach import run_batch  # numba: compiled on first use
    from flowgraph.engine.repay import repay_worker

    n = index.n_accounts
    ra = np.ascontiguousarray(repay_account, np.int64)
    rt = np.ascontiguousarray(repay_ts, np.int64)
    ram = np.ascontiguousarray(repay_amount, np.int64)
    rl = np.ascontiguousarray(repay_loan_row, np.int64)
    if not (ra.shape == rt.shape == ram.shape == rl.shape):
        raise ValueError("repayment arrays must have the same length")
    if ra.size and (ra.min() < 0 or ra.max() >= n):
        raise ValueError("repayment account id out of range")
    order = np.lexsort((np.arange(ra.shape[0]), rt, ra))
    rp_indptr = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(ra, minlength=n), out=rp_indptr[1:])
    amt = np.asarray(disb.amount, np.int64)
    H = int(params.max_hops)
    routine = routine_since(ra, rt, ram, rl, params.routine_after, params.routine_factor)
    extra = (rp_indptr, rt[order].copy(), ram[order].copy(), order.astype(np.int64),
             hop_thresholds(amt, 0, params.min_repay_ratio), routine[order].copy())  # fmt: skip
    hits, res = run_batch(repay_worker, index, disb, H, hop_thresholds(amt, params.min_amount, params.min_amount_ratio),
                          window_ms(params.window_days), int(params.max_paths), max(H, 1), extra)  # fmt: skip
    hits.set_share_metric(amt)
    for i in np.flatnonzero(hits.fired).tolist():
        j = int(res[i, 5])
        hits.detail[i] = {
            "account": int(res[i, 6]),
            "repaid_loan_row": int(rl[j]),
            "repayment": j,
            "accounts": int(res[i, 7]),
        }
    return hits


NEVER = np.int64(2**62)  # routine_since of a repayment that is never routine


def routine_since(account, ts, amount, loan_row, after: int, factor: float) -> np.ndarray:
    """Per repayment, the time from which it is a routine instalment: the ts of the
    ``after``-th earlier repayment of the same loan by the same account, when its amount is
    at most ``factor`` × the previous one's (else, with fewer earlier repayments, for an
    unknown loan ``loan_row < 0`` or ``after = 0``: never). Earlier = (ts, input order).

    >>> routine_since(np.array([1, 1, 1, 1]), np.array([10, 20, 30, 40]), np.array([5, 5, 5, 50]),
    ...               np.array([0, 0, 0, 0]), 2, 1.5).tolist() == [NEVER, NEVER, 10, NEVER]
    True
    """
    n = len(account)
    out = np.full(n, NEVER, np.int64)
    if after <= 0 or n == 0:
        return out
    order = np.lexsort((np.arange(n), ts, loan_row, account)).tolist()
    acc, lr, t, am = (np.asarray(x).tolist() for x in (account, loan_row, ts, amount))
    for k, j in enumerate(order):
        if lr[j] < 0 or k < after:
            continue
        first, prev = order[k - after], order[k - 1]
        if acc[first] == acc[j] and lr[first] == lr[j] and am[j] <= factor * am[prev]:
            out[j] = t[first]
    return out


def reference_repay_with_loan(index, disb, repay_account, repay_ts, repay_amount, repay_loan_row,
                              params=RepayWithLoanParams()) -> Hits:  # fmt: skip
    """Pure-Python reference of :func:`detect_repay_with_loan` (fired, amount, first_ts, hops)."""
    out = edges_by_src(index)
    reps = sorted(zip(np.asarray(repay_ts).tolist(), range(len(repay_ts)),
                      np.asarray(repay_account).tolist(), np.asarray(repay_amount).tolist(), strict=True))  # fmt: skip
    acc, rts, ram, rlr = (np.asarray(x).tolist() for x in (repay_account, repay_ts, repay_amount, repay_loan_row))

    def routine(j, t0):  # straight from the definition: earlier repayments of the same loan by the account
        if params.routine_after <= 0 or rlr[j] < 0:
            return False
        earlier = sorted((rts[k], k) for k in range(len(acc))
                         if acc[k] == acc[j] and rlr[k] == rlr[j] and (rts[k], k) < (rts[j], j))  # fmt: skip
        if len(earlier) < params.routine_after:
            return False
        return earlier[-params.routine_after][0] < t0 and ram[j] <= params.routine_factor * ram[earlier[-1][1]]

    rows = []
    for d, t0, a in zip(np.asarray(disb.account).tolist(), np.asarray(disb.t0).tolist(),
                        np.asarray(disb.amount).tolist(), strict=True):  # fmt: skip
        thr = max(params.min_amount, ratio_threshold(params.min_amount_ratio, a))
        rthr = ratio_threshold(params.min_repay_ratio, a)
        tend = t0 + window_ms(params.window_days)
        best = None
        min_h = None
        for v, arr, hops, _ in simple_chains(out, d, t0, tend, thr, params.max_hops):
            for tr, j, x, am in reps:
                if x == v and arr < tr <= tend and am >= rthr and not routine(j, t0):
                    if best is None or (tr, j) < best[:2]:
                        best = (tr, j, am)
                    min_h = hops if min_h is None else min(min_h, hops)
                    break
        rows.append(None if best is None else (best[2], best[0], min_h))
    return Hits.of_rows(rows)


# ------------------------------------------------------------------ in the nightly batch
def detector_args(ctx, index, rule: Rule, sel: pl.DataFrame, suppress: bool = True) -> tuple:
    """The detector's inputs from the store: the disbursements and every repayment (but
    those made from accounts on the pack's suppression list, when ``suppress``)."""
    disb, _ = disbursements(ctx, sel)
    rp = ctx.repayments
    acc = ctx.lookup.many(rp["account_id"].to_list()).astype(np.int64)
    keep = np.ones(acc.shape[0], bool)
    benign = ctx.benign(rule) if suppress else None
    if benign is not None:
        keep = ~(benign[np.maximum(acc, 0)].astype(bool) & (acc >= 0))
    return (
        index, disb, acc[keep], rp["ts"].to_numpy().astype(np.int64)[keep],
        rp["amount"].to_numpy().astype(np.int64)[keep], rp["loan_row"].to_numpy().astype(np.int64)[keep],
    )


def reason(ctx, rule: Rule, sel: pl.DataFrame, hits: Hits, i: int, disbursed: int, t0: int) -> str:
    """``'600,000.00 (60% of the 1,000,000.00 disbursed) repaid loan L1 from A_x after 2 hops within 20 days'``."""
    d = hits.detail[i]
    amt = int(hits.amount[i])
    loan = ctx.loan_ids[d["repaid_loan_row"]] if "repaid_loan_row" in d else "?"
    same = " (the same loan)" if loan == sel["loan_id"][i] else ""
    where = "the disbursement account" if hits.hops[i] == 0 else f"{account_name(ctx, d['account'])} after {hops_text(int(hits.hops[i]))}"
    return (f"{format_amount_grouped(amt)} ({hits.metric[i]:.0%} of the {format_amount_grouped(disbursed)} disbursed) "
            f"repaid loan {loan}{same} from {where} {when_text(hits, i, t0)}")


alerts = runner(detect_repay_with_loan, detector_args, RepayWithLoanParams, reason)
detect = detect_repay_with_loan
reference = reference_repay_with_loan
