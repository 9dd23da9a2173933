"""Transfer cycle: the proceeds feed a time-respecting cycle of transfers.

Pattern it catches::

    L1 disburses 1 000 000.00 into A_d (day 0)
    A_d ─900 000.00 (day 1)→ A_c0
    A_c0 ─880 000.00 (day 2)→ A_c1 ─870 000.00 (day 3)→ A_c2 ─860 000.00 (day 4)→ A_c0
                                           → fires: a cycle of 3 transfers through A_c0

Closest legitimate look-alike: the same three accounts paying each other in the wrong
time order (A_c1 → A_c2 before A_c0 → A_c1: no money can have gone round), a cycle that
closed before the proceeds arrived, and a flow-back path ``d → x → y → d`` (that is the
flow-back rule's: cycles may not touch the borrower side by default).

The detector is the shared earliest-arrival reach plus :mod:`flowgraph.engine.transfer_cycle`.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import polars as pl

from flowgraph.core.errors import InvalidValue
from flowgraph.core.values import ratio_threshold
from flowgraph.engine.hits import PPM, Disbursements, Hits, hop_thresholds, to_ppm, window_ms
from flowgraph.engine.reach_reference import edges_by_src, simple_chains
from flowgraph.rules.findings import account_name, disbursement_args, runner, when_text
from flowgraph.rules.model import Rule, check_common_params, param
from flowgraph.rules.scoring import GENERIC_FEATURES

NAME = "transfer_cycle"
FEATURES = GENERIC_FEATURES


@dataclass(frozen=True)
class TransferCycleParams:
    """Parameters of :func:`detect_transfer_cycle`.

    Attributes
    ----------
    min_hops, max_hops : int
        Cycle length bounds, in transfers (default 3..6).
    reach_hops : int
        Longest chain from ``d`` to the account where the cycle starts (0 = only ``d``).
    window_days : float
        Every transaction (chain and cycle) happens at most this long after disbursement.
    min_amount, min_amount_ratio : int, float
        Per-transaction floor, chain and cycle alike.
    amount_ratio_low, amount_ratio_high : float
        Optional band for consecutive cycle transfers ``y / x`` (``x`` then ``y`` in
        time order; the closing transfer is *not* compared with the first one, money does
        not flow that way). ``0`` disables a bound. Precision 1e-6.
    exclude_borrower_side : bool
        Default true: no account of the cycle may be ``d`` or in ``T`` (a flow-back path
        that returns to ``d`` is the flow-back rule's business, not a cycle).
    max_paths : int
        Example cycles kept (feeding chain + cycle rows).
    max_enumerated : int
        Safety budget of cycle-search steps per disbursement; ``detail["truncated"]``.
    """

    min_hops: int = param(3, 2, 12, "shortest cycle, in transfers")
    max_hops: int = param(6, 2, 12, "longest cycle, in transfers")
    reach_hops: int = param(5, 0, 12, "transfers from the disbursement account to the cycle")
    window_days: float = param(30.0, 0, 3660, "days after disbursement the cycle must close")
    min_amount: int = param(0, 0, None, "every transfer at least this (minor units)", type="money")
    min_amount_ratio: float = param(0.1, 0, 1, "every transfer at least this share of the disbursed amount")
    amount_ratio_low: float = param(0.0, 0, None, "consecutive cycle amounts y/x at least this (0 = off)")
    amount_ratio_high: float = param(0.0, 0, None, "consecutive cycle amounts y/x at most this (0 = off)")
    exclude_borrower_side: bool = param(True, doc="cycles may not touch d or the borrower side")
    max_paths: int = param(10, 0, 10000, "example cycles kept per disbursement")
    max_enumerated: int = param(1_000_000, 1, None, "search budget per disbursement")

    def __post_init__(self) -> None:
        check_common_params(self)
        if not 2 <= self.min_hops <= self.max_hops:
            raise InvalidValue("need 2 <= min_hops <= max_hops")
        if self.reach_hops < 0 or self.max_enumerated < 1:
            raise InvalidValue("reach_hops must be >= 0 and max_enumerated >= 1")
        if self.amount_ratio_low < 0 or self.amount_ratio_high < 0:
            raise InvalidValue("amount ratio bounds must be >= 0")


Params = TransferCycleParams


def detect_transfer_cycle(
    index,
    disb: Disbursements,
    params: TransferCycleParams = TransferCycleParams(),
) -> Hits:
    """The proceeds feed a time-respecting transfer cycle.

    Fires when some account ``s`` is reached from ``d`` by a time-respecting chain of
    ``0..reach_hops`` transactions (arrival ``t_s``; ``t_s = t0`` for ``d``) and there is
    a simple cycle ``s → v1 → … → s`` of ``min_hops..max_hops`` transfers with
    ``t_s < ts(c1) < … < ts(cL) <= t0 + window``, every amount (chain and cycle)
    ``>= max(min_amount, min_amount_ratio · a)``, and, when set, every consecutive pair
    of cycle amounts within ``[amount_ratio_low, amount_ratio_high]``. With
    ``exclude_borrower_side`` (default) no account of the cycle is ``d`` or in ``T``.

    Returns
    -------
    Hits
        The reported cycle is the first to close (key: closing ts, length, rows):
        ``first_ts`` its closing time, ``amount`` its smallest transfer, ``metric`` =
        amount / a; ``hops`` = fewest chain transactions from ``d`` to the start of any
        cycle found (arriving before its first transfer). ``detail``: ``account`` (start),
        ``cycle_length``, ``starts`` (accounts starting a cycle), ``truncated`` (budget).
        Evidence: per start account (first ``max_paths`` by closing time), the feeding
        chain followed by its first-closing cycle.

    Examples
    --------
    >>> from flowgraph.engine.csr import build_index
    >>> idx = build_index(np.array([0, 1, 2, 3], np.int32), np.array([1, 2, 3, 1], np.int32),
    ...                   np.array([1, 2, 3, 4]), np.array([900] * 4),
    ...                   np.array(["d", "a", "b", "c"]))
    >>> h = detect_transfer_cycle(idx, Disbursements.of([0], [0], [1000]))
    >>> h.fired.tolist(), h.hops.tolist(), h.detail[0]["cycle_length"], h.first_ts.tolist()
    ([True], [1], 3, [4])
    """
    from flowgraph.engine.reach import run_batch  # numba: compiled on first use
    from flowgraph.engine.transfer_cycle import transfer_cycle_worker

    amt = np.asarray(disb.amount, np.int64)
    R = int(params.reach_hops)
    Lmax = int(params.max_hops)
    extra = (int(params.min_hops), Lmax, to_ppm(params.amount_ratio_low), to_ppm(params.amount_ratio_high),
             int(params.max_enumerated), bool(params.exclude_borrower_side))  # fmt: skip
    hits, res = run_batch(transfer_cycle_worker, index, disb, R, hop_thresholds(amt, params.min_amount, params.min_amount_ratio),
                          window_ms(params.window_days), int(params.max_paths), R + Lmax, extra)  # fmt: skip
    hits.set_share_metric(amt)
    for i in range(len(hits)):
        if hits.fired[i]:
            hits.detail[i] = {"account": int(res[i, 5]), "cycle_length": int(res[i, 6]),
                              "starts": int(res[i, 8]), "truncated": bool(res[i, 7])}  # fmt: skip
        elif res[i, 7]:
            hits.detail[i] = {"truncated": True}
    return hits


def _cycles_from(out, s, t_s, tend, thr, lo, hi, blocked, Lmin, Lmax):
    """Every simple temporal cycle from s (first transfer after t_s) as lists of edges."""
    cycles = []

    def rec(u, t, path, seen):
        for e in out[u]:
            te, _, v, am = e
            if te <= t or te > tend or am < thr:
                continue
            if path:
                y, x = Fraction(am), Fraction(path[-1][3])
                if lo > 0 and y < lo * x:
                    continue
                if hi > 0 and y > hi * x:
                    continue
            if v == s:
                if len(path) + 1 >= Lmin:
                    cycles.append([*path, e])
                continue
            if v in seen or v in blocked or len(path) + 1 >= Lmax:
                continue
            seen.add(v)
            rec(v, te, [*path, e], seen)
            seen.discard(v)

    rec(s, t_s, [], {s})
    return cycles


def reference_transfer_cycle(index, disb, params=TransferCycleParams()) -> Hits:
    """Pure-Python reference of :func:`detect_transfer_cycle`."""
    out = edges_by_src(index)
    lo = Fraction(to_ppm(params.amount_ratio_low), PPM)
    hi = Fraction(to_ppm(params.amount_ratio_high), PPM)
    tip = np.asarray(disb.target_indptr).tolist()
    tid = np.asarray(disb.target_ids).tolist()
    rows = []
    for i, (d, t0, a) in enumerate(zip(np.asarray(disb.account).tolist(), np.asarray(disb.t0).tolist(),
                                       np.asarray(disb.amount).tolist(), strict=True)):  # fmt: skip
        thr = max(params.min_amount, ratio_threshold(params.min_amount_ratio, a))
        tend = t0 + window_ms(params.window_days)
        blocked = set(tid[tip[i] : tip[i + 1]]) | {d} if params.exclude_borrower_side else set()
        starts = {}
        for v, arr, hops, _ in simple_chains(out, d, t0, tend, thr, params.reach_hops):
            starts.setdefault(v, []).append((arr, hops))
        best = None
        min_h = None
        for s, arrs in starts.items():
            if s in blocked:
                continue
            t_s = min(x for x, _ in arrs)
            for c in _cycles_from(out, s, t_s, tend, thr, lo, hi, blocked, params.min_hops, params.max_hops):
                key = (c[-1][0], len(c), [e[1] for e in c])
                h = min(hh for x, hh in arrs if x < c[0][0])
                min_h = h if min_h is None else min(min_h, h)
                if best is None or key < best[0]:
                    best = (key, min(e[3] for e in c))
        rows.append(None if best is None else (best[1], best[0][0], min_h))
    return Hits.of_rows(rows)


# ------------------------------------------------------------------ in the nightly batch
def reason(ctx, rule: Rule, sel: pl.DataFrame, hits: Hits, i: int, disbursed: int, t0: int) -> str:
    """``'the proceeds fed a cycle of 3 transfers through A_c0 within 4 days'``."""
    d = hits.detail[i]
    return (f"the proceeds fed a cycle of {d['cycle_length']} transfers through {account_name(ctx, d['account'])} "
            f"{when_text(hits, i, t0)}" + (" (search budget hit)" if d.get("truncated") else ""))


def detector_args(ctx, index, rule: Rule, sel: pl.DataFrame) -> tuple:
    """``(index, disbursements)`` with their borrower side (a cycle has no single
    counterparty: the suppression list does not apply)."""
    return disbursement_args(ctx, index, rule, sel, suppress=False)[:2]


alerts = runner(detect_transfer_cycle, detector_args, TransferCycleParams, reason, suppressible=False)
detect = detect_transfer_cycle
reference = reference_transfer_cycle
