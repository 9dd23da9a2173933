"""Large outflow: most of the loan leaves in one transfer, soon, to a counterparty nobody expected.

Pattern it catches::

    L1 disburses 8 000 000.00 into A_d (day 0, 09:00)
    A_d ─7 500 000.00 (day 1, 08:00)→ A_x        → fires: 94 % in one transfer within 1 day,
                                                    to an account A_d never paid before

Closest legitimate look-alikes: the entrusted payment itself, or the borrower paying the
loan's declared payee (``loans.payee_account``); paying a supplier the borrower has paid
regularly before the loan (at least ``known_payments`` times in the ``history_days`` before
the disbursement); moving the money to the borrower's own account; the same amount paid
out in many small pieces, or one large payment a week later (outside the 72 hours).

The detector is one binary search per disbursement (:mod:`flowgraph.engine.outflow`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import polars as pl

from flowgraph.core.errors import InvalidValue
from flowgraph.core.values import format_amount_grouped, ratio_threshold
from flowgraph.engine.hits import Disbursements, Hits, hop_thresholds, hours_ms, window_ms
from flowgraph.engine.reach_reference import edges_by_src
from flowgraph.rules.findings import account_name, disbursement_args, runner, when_text
from flowgraph.rules.model import Rule, check_common_params, param
from flowgraph.rules.scoring import GENERIC_FEATURES

NAME = "large_outflow"
FEATURES = GENERIC_FEATURES


@dataclass(frozen=True)
class LargeOutflowParams:
    """Parameters of :func:`detect_large_outflow`.

    Attributes
    ----------
    ratio : float
        A single outflow from ``d`` of at least this share of the disbursed amount...
    min_amount : int
        ...and at least this many minor units...
    within_hours : float
        ...within this many hours after the disbursement (``t0 < ts <= t0 + within``)...
    history_days, known_payments : float, int
        ...to a counterparty ``d`` did not pay at least ``known_payments`` times in the
        ``history_days`` before ``t0`` (an established counterparty; 0 payments: no check)...
    exclude_borrower_side : bool
        ...nor an account of the borrower side ``T`` (default true)...
    exclude_payee : bool
        ...nor the loan's declared payee (default true).
    max_paths : int
        Example outflows kept (as one-transaction paths).

    Accounts on the pack's suppression list never count either.
    """

    ratio: float = param(0.5, 0, 1, "single outflow at least this share of the disbursed amount")
    min_amount: int = param(0, 0, None, "single outflow at least this (minor units)", type="money")
    within_hours: float = param(72.0, 0, 24 * 366, "hours after disbursement")
    history_days: float = param(180.0, 0, 3660, "days before the disbursement that make a counterparty known")
    known_payments: int = param(2, 0, 1000, "payments in history_days that make a counterparty known (0: no check)")
    exclude_borrower_side: bool = param(True, doc="transfers to the borrower side (T) do not count")
    exclude_payee: bool = param(True, doc="transfers to the loan's declared payee do not count")
    max_paths: int = param(10, 0, 10000, "example outflows kept per disbursement")

    def __post_init__(self) -> None:
        check_common_params(self)
        if self.ratio < 0:
            raise InvalidValue("ratio must be >= 0")


Params = LargeOutflowParams


def detect_large_outflow(
    index,
    disb: Disbursements,
    benign: np.ndarray | None = None,
    params: LargeOutflowParams = LargeOutflowParams(),
) -> Hits:
    """A single outflow from ``d`` of at least ``max(min_amount, ratio · a)`` soon after ``t0``
    to an unexpected counterparty.

    Looks at ``d``'s out-edges with ``t0 < ts <= t0 + within_hours`` (binary search into the
    time-sorted CSR segment) whose counterparty ``v`` is not ``d``, not in ``T``
    (``exclude_borrower_side``), not ``disb.payee`` (``exclude_payee``), not flagged in
    ``benign`` (uint8 per account: the suppression list), and not paid by ``d`` at least
    ``known_payments`` times in ``[t0 − history_days, t0)``.

    Returns
    -------
    Hits
        ``amount`` = largest qualifying outflow, ``metric`` = amount / a, ``first_ts`` =
        time of the first qualifying outflow, ``hops`` = 1; ``detail``: ``account`` (dense
        id receiving the largest), ``row`` (its transaction row), ``outflows`` (count).
        Evidence: the first ``max_paths`` qualifying outflows, one row each.

    Examples
    --------
    >>> from flowgraph.engine.csr import build_index
    >>> idx = build_index(np.array([0], np.int32), np.array([1], np.int32), np.array([10]),
    ...                   np.array([600]), np.array(["d", "x"]))
    >>> detect_large_outflow(idx, Disbursements.of([0, 0], [0, 10], [1000, 1000])).fired.tolist()
    [True, False]
    >>> detect_large_outflow(idx, Disbursements.of([0], [0], [1000], payee=[1])).fired.tolist()
    [False]
    """
    from flowgraph.engine.outflow import large_outflows  # numba: compiled on first use

    amt = np.asarray(disb.amount, np.int64)
    K = int(params.max_paths)
    disb = _as_configured(disb, params)
    out_res, out_rows = large_outflows(index, disb, hop_thresholds(amt, params.min_amount, params.ratio),
                                       hours_ms(params.within_hours), K, benign,
                                       window_ms(params.history_days), int(params.known_payments))  # fmt: skip
    hits = Hits.empty(amt.shape[0])
    fired = out_res[:, 0] == 1
    hits.fired = fired
    hits.amount = np.where(fired, out_res[:, 1], 0)
    hits.first_ts = np.where(fired, out_res[:, 2], -1)
    hits.hops = np.where(fired, 1, -1)
    hits.set_share_metric(amt)
    for i in np.flatnonzero(fired).tolist():
        k = min(K, int(out_res[i, 3]))
        hits.evidence[i] = [out_rows[i, j : j + 1].copy() for j in range(k)]
        hits.detail[i] = {"account": int(out_res[i, 4]), "row": int(out_res[i, 5]),
                          "outflows": int(out_res[i, 3])}  # fmt: skip
    return hits


def _as_configured(disb: Disbursements, params) -> Disbursements:
    """``disb`` without the borrower side / payee when the params do not exclude them."""
    if not params.exclude_borrower_side:
        disb = dataclasses.replace(disb, target_indptr=np.zeros(len(disb) + 1, np.int64),
                                   target_ids=np.zeros(0, np.int64))  # fmt: skip
    if not params.exclude_payee:
        disb = dataclasses.replace(disb, payee=None)
    return disb


def excluded_counterparty(out, d: int, v: int, t0: int, side: set, payee: int, benign, params) -> bool:
    """Reference of the exclusions (see :mod:`flowgraph.engine.outflow`): ``v`` is ``d``, on
    the borrower side, the payee, suppressed, or paid by ``d`` at least ``known_payments``
    times in ``[t0 − history_days, t0)``."""
    if v == d or v in side or v == payee or (benign is not None and benign[v]):
        return True
    lo = t0 - window_ms(params.history_days)
    n = sum(1 for te, _, w, _ in out[d] if w == v and lo <= te < t0)
    return params.known_payments > 0 and n >= params.known_payments


def reference_large_outflow(index, disb, benign=None, params=LargeOutflowParams()) -> Hits:
    """Pure-Python reference of :func:`detect_large_outflow`."""
    out = edges_by_src(index)
    within = hours_ms(params.within_hours)
    tip = np.asarray(disb.target_indptr).tolist()
    tid = np.asarray(disb.target_ids).tolist()
    payee = disb.payee_ids().tolist()
    rows = []
    for i, (d, t0, a) in enumerate(zip(np.asarray(disb.account).tolist(), np.asarray(disb.t0).tolist(),
                                       np.asarray(disb.amount).tolist(), strict=True)):  # fmt: skip
        thr = max(params.min_amount, ratio_threshold(params.ratio, a))
        side = set(tid[tip[i] : tip[i + 1]]) if params.exclude_borrower_side else set()
        pay = payee[i] if params.exclude_payee else -1
        q = [(te, am) for te, _, v, am in out[d] if t0 < te <= t0 + within and am >= thr
             and not excluded_counterparty(out, d, v, t0, side, pay, benign, params)]  # fmt: skip
        rows.append((max(am for _, am in q), min(te for te, _ in q), 1) if q else None)
    return Hits.of_rows(rows)


# ------------------------------------------------------------------ in the nightly batch
def reason(ctx, rule: Rule, sel: pl.DataFrame, hits: Hits, i: int, disbursed: int, t0: int) -> str:
    """``'7,500,000.00 (94% of the 8,000,000.00 disbursed) left in one transfer to a new counterparty A_x within 1 day of the disbursement'``."""
    return (f"{format_amount_grouped(int(hits.amount[i]))} ({hits.metric[i]:.0%} of the {format_amount_grouped(disbursed)} disbursed) left "
            f"in one transfer to a new counterparty {account_name(ctx, hits.detail[i]['account'])} {when_text(hits, i, t0)} of the disbursement")


detector_args = disbursement_args  # the disbursements with borrower side and payee, the suppression flags
alerts = runner(detect_large_outflow, detector_args, LargeOutflowParams, reason)
detect = detect_large_outflow
reference = reference_large_outflow
