"""Rapid pass-through: an account on the proceeds' way forwards most of what it got within hours.

Pattern it catches::

    L1 disburses 1 000 000.00 into A_d (day 0, 00:00)
    A_d ─900 000.00 (10:00)→ A_m
    A_m ─500 000.00 (11:00)→ A_x,  A_m ─360 000.00 (13:00)→ A_y
                                     → fires: A_m forwarded 96 % within 3 hours

Closest legitimate look-alike: a supplier that receives the payment and pays its staff's
salaries and its own regular suppliers the next day — outflows to counterparties it had
already paid at least ``known_payments`` times in the ``history_days`` before the inflow
are its ordinary business, not forwarding; a supplier that pays its own suppliers days
later (A_m forwards 95 % only after three days), or forwards half of it; and the
borrower's own accounts moving money among themselves (not candidates).

The detector is the shared earliest-arrival reach plus :mod:`flowgraph.engine.pass_through`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from flowgraph.core.errors import InvalidValue
from flowgraph.core.values import format_amount_grouped, ratio_threshold
from flowgraph.engine.hits import (
    PPM,
    Disbursements,
    Hits,
    hop_thresholds,
    hours_ms,
    to_ppm,
    window_ms,
)
from flowgraph.engine.reach_reference import edges_by_src, simple_chains
from flowgraph.rules.findings import account_name, disbursement_args, runner
from flowgraph.rules.model import Rule, check_common_params, param
from flowgraph.rules.scoring import GENERIC_FEATURES

NAME = "rapid_pass_through"
FEATURES = GENERIC_FEATURES


@dataclass(frozen=True)
class RapidPassThroughParams:
    """Parameters of :func:`detect_rapid_pass_through`.

    Attributes
    ----------
    window_days : float
        The inflow into the pass-through account happens at most this long after the
        disbursement (its forwarding may end up to ``within_hours`` later).
    max_hops : int
        Longest chain from ``d`` whose last transaction is the inflow (>= 1).
    min_amount, min_amount_ratio : int, float
        Per-transaction floor of the chain, the inflow included.
    forward_ratio : float
        The account forwards at least this share of the inflow (precision 1e-6).
    within_hours : float
        ...within this many hours after receiving it (outflows with
        ``t_in < ts <= t_in + within_hours``).
    min_forward_amount : int
        Outflows smaller than this do not count as forwarding (minor units; default 0:
        every outflow counts).
    include_disbursement_account : bool
        If true, ``d`` is a candidate too: the disbursement itself (amount ``a`` at ``t0``,
        0 hops) and chain transactions returning to ``d`` count as its inflows. Default
        false: ``d`` spending the loan quickly is the ``large_outflow`` rule's business.
    exclude_borrower_side : bool
        Default true: accounts of ``T`` (other than ``d``, see above) are not candidates;
        money moved on quickly between the borrower's own accounts is not an intermediary
        passing it through.
    history_days, known_payments : float, int
        An outflow to a counterparty the account paid at least ``known_payments`` times in
        the ``history_days`` before the inflow does not count as forwarding (0: no check).
    max_paths : int

    Accounts on the pack's suppression list are no candidates, and outflows to them do not
    count as forwarding.
    """

    window_days: float = param(30.0, 0, 3660, "days after disbursement the inflow may happen")
    max_hops: int = param(5, 1, 12, "transfers from the disbursement account up to the inflow")
    min_amount: int = param(0, 0, None, "every hop at least this (minor units)", type="money")
    min_amount_ratio: float = param(0.1, 0, 1, "every hop at least this share of the disbursed amount")
    forward_ratio: float = param(0.9, 0, 1, "share of the inflow forwarded")
    within_hours: float = param(24.0, 0, 24 * 366, "hours after the inflow the forwarding must happen in")
    min_forward_amount: int = param(0, 0, None, "outflows below this do not count (minor units)", type="money")
    include_disbursement_account: bool = param(False, doc="the disbursement account itself is a candidate")
    exclude_borrower_side: bool = param(True, doc="accounts of the borrower side (T) are not candidates")
    history_days: float = param(180.0, 0, 3660, "days before the inflow that make a counterparty known")
    known_payments: int = param(2, 0, 1000, "payments in history_days that make a counterparty known (0: no check)")
    max_paths: int = param(10, 0, 10000, "example paths kept per disbursement")

    def __post_init__(self) -> None:
        check_common_params(self)
        if self.max_hops < 1:
            raise InvalidValue("max_hops must be >= 1")
        if not 0 <= self.forward_ratio <= 1:
            raise InvalidValue("forward_ratio must be in [0, 1]")


Params = RapidPassThroughParams


def detect_rapid_pass_through(
    index,
    disb: Disbursements,
    benign: np.ndarray | None = None,
    params: RapidPassThroughParams = RapidPassThroughParams(),
) -> Hits:
    """An account on the proceeds' way forwards most of what it received within hours.

    Candidates are inflows ``e = u → v`` (time ``t_in``, amount ``A``) that extend a
    time-respecting chain from ``d`` (after ``t0``, strictly increasing) of at most
    ``max_hops − 1`` transactions arriving at ``u`` before ``t_in``, with
    ``t_in <= t0 + window`` and every amount, ``A`` included, ``>= max(min_amount,
    min_amount_ratio · a)``. (The chain may already have passed through ``v``: money
    that comes back to an account and is forwarded again counts again.) The inflow is *passed
    through* when ``v``'s outflows with ``t_in < ts <= t_in + within_hours`` (each at least
    ``min_forward_amount``, not to a ``benign`` account, not to a counterparty ``v`` paid at
    least ``known_payments`` times in ``[t_in − history_days, t_in)``) add up to
    ``>= ratio_threshold(forward_ratio, A)``; the event
    time is the outflow at which the running sum reaches that. ``d`` is not a candidate
    unless ``include_disbursement_account`` (then the disbursement itself, ``A = a`` at
    ``t0`` with 0 hops, and chain transactions returning to ``d`` are its inflows); the
    other accounts of ``T`` are not candidates unless ``exclude_borrower_side`` is false.

    Returns
    -------
    Hits
        ``first_ts`` = completion time of the first pass-through, ``amount`` = its inflow
        ``A``, ``metric`` = share of ``A`` forwarded within ``within_hours``, ``hops`` =
        fewest hops over all pass-through inflows (the inflow counted); ``detail``:
        ``account`` (dense id), ``forwarded_share``. Evidence: chain to the inflow, the
        inflow, then the outflows up to completion.

    Examples
    --------
    >>> from flowgraph.engine.csr import build_index
    >>> H = 3_600_000
    >>> idx = build_index(np.array([0, 1], np.int32), np.array([1, 2], np.int32),
    ...                   np.array([H, 2 * H]), np.array([900, 850]), np.array(["d", "m", "z"]))
    >>> h = detect_rapid_pass_through(idx, Disbursements.of([0], [0], [1000]))
    >>> h.fired.tolist(), h.hops.tolist(), h.amount.tolist(), [p.tolist() for p in h.evidence[0]]
    ([True], [1], [900], [[0, 1]])
    """
    from flowgraph.engine.pass_through import pass_through_worker  # numba: compiled on first use
    from flowgraph.engine.reach import run_batch

    amt = np.asarray(disb.amount, np.int64)
    H = int(params.max_hops)
    ben = np.zeros(index.n_accounts, np.uint8) if benign is None else np.ascontiguousarray(benign, np.uint8)
    if ben.shape[0] != index.n_accounts:
        raise ValueError("benign must have one flag per account")
    extra = (to_ppm(params.forward_ratio), hours_ms(params.within_hours), int(params.min_forward_amount),
             bool(params.include_disbursement_account), bool(params.exclude_borrower_side), ben,
             window_ms(params.history_days), int(params.known_payments))  # fmt: skip
    hits, res = run_batch(pass_through_worker, index, disb, H, hop_thresholds(amt, params.min_amount, params.min_amount_ratio),
                          window_ms(params.window_days), int(params.max_paths), H + 16, extra)  # fmt: skip
    for i in np.flatnonzero(hits.fired).tolist():
        share = float(res[i, 6]) / 1e9
        hits.metric[i] = share
        hits.detail[i] = {"account": int(res[i, 5]), "forwarded_share": round(share, 6)}
    return hits


def reference_rapid_pass_through(index, disb, benign=None, params=RapidPassThroughParams()) -> Hits:
    """Pure-Python reference of :func:`detect_rapid_pass_through`."""
    out = edges_by_src(index)
    hist = window_ms(params.history_days)

    def forwards(v, tin, w, am):
        if am < params.min_forward_amount or (benign is not None and benign[w]):
            return False
        n = sum(1 for te, _, x, _ in out[v] if x == w and tin - hist <= te < tin)
        return not (params.known_payments > 0 and n >= params.known_payments)

    within = hours_ms(params.within_hours)
    ppm = to_ppm(params.forward_ratio)
    tip = np.asarray(disb.target_indptr).tolist()
    tid = np.asarray(disb.target_ids).tolist()
    rows = []
    cols = (np.asarray(disb.account).tolist(), np.asarray(disb.t0).tolist(),
            np.asarray(disb.amount).tolist())  # fmt: skip
    for i, (d, t0, a) in enumerate(zip(*cols, strict=True)):
        thr = max(params.min_amount, ratio_threshold(params.min_amount_ratio, a))
        tend = t0 + window_ms(params.window_days)
        side = set(tid[tip[i] : tip[i + 1]]) if params.exclude_borrower_side else set()
        inflows = {}  # (v, row) -> (t_in, A, fewest hops)
        if params.include_disbursement_account and not (benign is not None and benign[d]):
            inflows[(d, -1)] = (t0, a, 0)
        for u, arr_u, hops, _ in simple_chains(out, d, t0, tend, thr, params.max_hops - 1):
            for te, r, v, am in out[u]:
                if not (arr_u < te <= tend and am >= thr):
                    continue
                if v == d and not params.include_disbursement_account:
                    continue
                if v != d and v in side:
                    continue
                if benign is not None and benign[v]:
                    continue
                old = inflows.get((v, r))
                inflows[(v, r)] = (te, am, hops + 1 if old is None else min(old[2], hops + 1))
        best = None
        min_h = None
        for (v, r), (tin, A, hops) in inflows.items():
            need = -(-ppm * A // PPM)
            fwd = 0
            done = None
            for te, _, w, am in out[v]:
                if tin < te <= tin + within and forwards(v, tin, w, am):
                    fwd += am
                    if fwd >= need:
                        done = te
                        break
            if done is None:
                continue
            min_h = hops if min_h is None else min(min_h, hops)
            if best is None or (done, r) < best[:2]:
                best = (done, r, A)
        rows.append(None if best is None else (best[2], best[0], min_h))
    return Hits.of_rows(rows)


# ------------------------------------------------------------------ in the nightly batch
def reason(ctx, rule: Rule, sel: pl.DataFrame, hits: Hits, i: int, disbursed: int, t0: int) -> str:
    """``'account A_m forwarded 96% of the 900,000.00 it received from the proceeds to new counterparties within 24 hours'``."""
    d = hits.detail[i]
    return (f"account {account_name(ctx, d['account'])} forwarded {d['forwarded_share']:.0%} of the "
            f"{format_amount_grouped(int(hits.amount[i]))} it received from the proceeds to new counterparties "
            f"within {rule.params['within_hours']:g} hours")


detector_args = disbursement_args  # the disbursements with their borrower side, the suppression flags
alerts = runner(detect_rapid_pass_through, detector_args, RapidPassThroughParams, reason)
detect = detect_rapid_pass_through
reference = reference_rapid_pass_through
