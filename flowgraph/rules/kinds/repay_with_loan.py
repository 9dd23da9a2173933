"""Repay with loan (以贷还贷): the proceeds reach an account that repays a loan.

Pattern it catches::

    L2 disburses 1 000 000.00 into A_d (day 0)
    A_d ─800 000.00 (day 1)→ A_m ─700 000.00 (day 2)→ A_x
    A_x repays loan L1: 600 000.00 (day 20)              → fires: 2 hops, 60 %

Closest legitimate look-alike: the borrower repays from the disbursement account 45 days
later (outside the 30-day window), or the repaying account paid *before* the proceeds
reached it (the money cannot have come from this loan).

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
    max_paths : int
        Example paths kept per disbursement.
    """

    window_days: float = param(30.0, 0, 3660, "days after disbursement the repayment may happen")
    max_hops: int = param(5, 0, 12, "transfers from the disbursement account to the repaying account")
    min_amount: int = param(0, 0, None, "every hop at least this (minor units)", type="money")
    min_amount_ratio: float = param(0.1, 0, 1, "every hop at least this share of the disbursed amount")
    min_repay_ratio: float = param(0.05, 0, 1, "repayment at least this share of the disbursed amount")
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
    ``arrival < ts_r <= t0 + window`` (0 hops: ``x = d`` and ``t0 < ts_r``) and
    ``amount_r >= ratio_threshold(min_repay_ratio, a)``.

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
    extra = (rp_indptr, rt[order].copy(), ram[order].copy(), order.astype(np.int64), hop_thresholds(amt, 0, params.min_repay_ratio))
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


def reference_repay_with_loan(index, disb, repay_account, repay_ts, repay_amount, repay_loan_row,
                              params=RepayWithLoanParams()) -> Hits:  # fmt: skip
    """Pure-Python reference of :func:`detect_repay_with_loan` (fired, amount, first_ts, hops)."""
    out = edges_by_src(index)
    reps = sorted(zip(np.asarray(repay_ts).tolist(), range(len(repay_ts)),
                      np.asarray(repay_account).tolist(), np.asarray(repay_amount).tolist(), strict=True))  # fmt: skip
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
                if x == v and arr < tr <= tend and am >= rthr:
                    if best is None or (tr, j) < best[:2]:
                        best = (tr, j, am)
                    min_h = hops if min_h is None else min(min_h, hops)
                    break
        rows.append(None if best is None else (best[2], best[0], min_h))
    return Hits.of_rows(rows)


# ------------------------------------------------------------------ in the nightly batch
def detector_args(ctx, index, rule: Rule, sel: pl.DataFrame) -> tuple:
    """The detector's inputs from the store: the disbursements and every repayment."""
    disb, _ = disbursements(ctx, sel)
    rp = ctx.repayments
    return (
        index, disb, ctx.lookup.many(rp["account_id"].to_list()).astype(np.int64),
        rp["ts"].to_numpy().astype(np.int64), rp["amount"].to_numpy().astype(np.int64),
        rp["loan_row"].to_numpy().astype(np.int64),
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
