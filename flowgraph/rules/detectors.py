"""Post-loan rule detectors besides flow-back: one detector per rule kind.

Every detector takes plain data (the :class:`~flowgraph.engine.csr.TemporalIndex`, a columnar
:class:`Disbursements` and a frozen params dataclass) and returns a columnar
:class:`Hits`. Graph detectors share one numba kernel, the hop-bounded **earliest-arrival
temporal reachability** of a disbursement (see :func:`earliest_arrival`): for the
receiving account ``d``, time ``t0`` and amount ``a`` it computes, for every account ``v``
and ``h = 0..H``, the earliest time the proceeds can be at ``v`` through a chain of at most
``h`` transactions such that

* the chain starts at ``d`` (``arr[d, 0] = t0``) and each transaction leaves the account
  the previous one entered;
* ``t0 < ts(e1) < ts(e2) < … <= t0 + window`` (strictly increasing; equal timestamps do
  not chain);
* every amount is ``>= max(min_amount, ratio_threshold(min_amount_ratio, a))``.

Time-respecting *walks* and *simple paths* reach the same accounts at the same earliest
times with the same fewest hops (cutting a loop out of a walk keeps it time-respecting and
shortens it), so the kernel is exact for paths. Cost per disbursement: ``O(H · E_w log d)``
over the ``E_w`` in-window, above-threshold out-edges of the accounts it touches; scratch
arrays are per worker and reset only where touched.

Conventions shared by every :class:`Hits`: ``first_ts`` is the earliest time the event
happened, ``hops`` the fewest transactions from ``d`` over all events of the rule (``-1``
where not applicable), ``evidence`` a few example paths as arrays of transaction rows
(``index.row`` values) in event-time order, ``detail`` small JSON-able facts.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

import numba
import numpy as np
import polars as pl
from numba import njit, prange

from flowgraph.core.errors import InvalidValue
from flowgraph.core.values import DAY_MS, HOUR_MS, ratio_threshold

INF = np.int64(2**62)
_PPM = 1_000_000

__all__ = [
    "CATEGORY_NAMES",
    "PARAMS_BY_KIND",
    "Disbursements",
    "Hits",
    "LargeOutflowParams",
    "ProhibitedDestinationParams",
    "RapidPassThroughParams",
    "RepayWithLoanParams",
    "SplitDisbursementParams",
    "TransferCycleParams",
    "detect_large_outflow",
    "detect_prohibited_destination",
    "detect_rapid_pass_through",
    "detect_repay_with_loan",
    "detect_split_disbursement",
    "detect_transfer_cycle",
    "earliest_arrival",
    "reference_large_outflow",
    "reference_prohibited_destination",
    "reference_rapid_pass_through",
    "reference_repay_with_loan",
    "reference_transfer_cycle",
]

CATEGORY_NAMES: tuple[str, ...] = ("brokerage", "real_estate", "lender", "crypto")


# ============================================================================ data


@dataclass(frozen=True)
class Disbursements:
    """N disbursements, columnar.

    Attributes
    ----------
    account : ndarray of int64, shape (N,)
        Dense id of the receiving account ``d``.
    t0 : ndarray of int64, shape (N,)
        Disbursement time, UTC ms.
    amount : ndarray of int64, shape (N,)
        Disbursed amount, minor units.
    target_indptr : ndarray of int64, shape (N+1,)
        Borrower-linked accounts ``T`` of disbursement ``i`` are
        ``target_ids[target_indptr[i]:target_indptr[i+1]]``.
    target_ids : ndarray of int64
        Dense account ids (sorted within each disbursement).
    """

    account: np.ndarray
    t0: np.ndarray
    amount: np.ndarray
    target_indptr: np.ndarray
    target_ids: np.ndarray

    def __len__(self) -> int:
        return int(np.asarray(self.account).shape[0])

    @classmethod
    def of(
        cls, account, t0, amount, targets: Sequence[Sequence[int]] | None = None
    ) -> Disbursements:
        """Build from plain sequences; ``targets`` is one sequence of dense ids per row."""
        account = np.ascontiguousarray(account, np.int64)
        n = account.shape[0]
        targets = [[] for _ in range(n)] if targets is None else targets
        lens = np.array([len(t) for t in targets], np.int64)
        indptr = np.zeros(n + 1, np.int64)
        np.cumsum(lens, out=indptr[1:])
        ids = (
            np.concatenate([np.sort(np.asarray(t, np.int64)) for t in targets])
            if n and indptr[-1]
            else np.zeros(0, np.int64)
        )
        return cls(
            account,
            np.ascontiguousarray(t0, np.int64),
            np.ascontiguousarray(amount, np.int64),
            indptr,
            ids,
        )


@dataclass
class Hits:
    """Columnar result of one detector over N disbursements.

    Attributes
    ----------
    fired : ndarray of bool, shape (N,)
    metric : ndarray of float64, shape (N,)
        The rule's main measure (documented per detector), 0 when not fired.
    amount : ndarray of int64, shape (N,)
        The money involved, minor units (documented per detector), 0 when not fired.
    first_ts : ndarray of int64, shape (N,)
        When it first happened (UTC ms), -1 when not fired.
    hops : ndarray of int64, shape (N,)
        Fewest transactions from ``d`` to the event, -1 when not fired / not applicable.
    evidence : list of list of ndarray of int64
        Per disbursement, at most ``max_paths`` example paths (transaction rows).
    detail : list of dict
        Per disbursement, JSON-able facts for the human reason; ``{}`` when not fired.
    """

    fired: np.ndarray
    metric: np.ndarray
    amount: np.ndarray
    first_ts: np.ndarray
    hops: np.ndarray
    evidence: list[list[np.ndarray]]
    detail: list[dict]

    def __len__(self) -> int:
        return int(self.fired.shape[0])

    @classmethod
    def empty(cls, n: int) -> Hits:
        return cls(
            fired=np.zeros(n, bool),
            metric=np.zeros(n, np.float64),
            amount=np.zeros(n, np.int64),
            first_ts=np.full(n, -1, np.int64),
            hops=np.full(n, -1, np.int64),
            evidence=[[] for _ in range(n)],
            detail=[{} for _ in range(n)],
        )


# ============================================================================ params


def _f(default, lo=None, hi=None, doc="", **extra):
    meta = {"doc": doc, **extra}
    if lo is not None:
        meta["min"] = lo
    if hi is not None:
        meta["max"] = hi
    return field(default=default, metadata=meta)


def _check_common(p) -> None:
    for f in ("window_days", "min_amount", "min_amount_ratio", "within_hours"):
        if getattr(p, f, 0) < 0:
            raise InvalidValue(f"{f} must be >= 0")
    if getattr(p, "max_paths", 0) < 0:
        raise InvalidValue("max_paths must be >= 0")


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

    window_days: float = _f(30.0, 0, 3660, "days after disbursement the repayment may happen")
    max_hops: int = _f(5, 0, 12, "transfers from the disbursement account to the repaying account")
    min_amount: int = _f(0, 0, None, "every hop at least this (minor units)", type="money")
    min_amount_ratio: float = _f(0.1, 0, 1, "every hop at least this share of the disbursed amount")
    min_repay_ratio: float = _f(0.05, 0, 1, "repayment at least this share of the disbursed amount")
    max_paths: int = _f(10, 0, 10000, "example paths kept per disbursement")

    def __post_init__(self) -> None:
        _check_common(self)
        if self.max_hops < 0:
            raise InvalidValue("max_hops must be >= 0")


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
    include_disbursement_account : bool
        If true, a disbursement *into* an account of a prohibited category fires at 0 hops
        (``first_ts = t0``). Default false: ``d`` is never the destination.
    max_paths : int
        Example paths kept per disbursement.
    """

    categories: tuple[str, ...] = _f(CATEGORY_NAMES, doc="prohibited account categories")
    window_days: float = _f(30.0, 0, 3660, "days after disbursement the destination may be reached")
    max_hops: int = _f(5, 1, 12, "transfers from the disbursement account to the destination")
    min_amount: int = _f(0, 0, None, "every hop at least this (minor units)", type="money")
    min_amount_ratio: float = _f(0.1, 0, 1, "every hop at least this share of the disbursed amount")
    include_disbursement_account: bool = _f(
        False, doc="a disbursement straight into a prohibited account fires"
    )
    max_paths: int = _f(10, 0, 10000, "example paths kept per disbursement")

    def __post_init__(self) -> None:
        _check_common(self)
        if self.max_hops < 1:
            raise InvalidValue("max_hops must be >= 1")


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
    max_paths : int
    """

    window_days: float = _f(30.0, 0, 3660, "days after disbursement the inflow may happen")
    max_hops: int = _f(5, 1, 12, "transfers from the disbursement account up to the inflow")
    min_amount: int = _f(0, 0, None, "every hop at least this (minor units)", type="money")
    min_amount_ratio: float = _f(0.1, 0, 1, "every hop at least this share of the disbursed amount")
    forward_ratio: float = _f(0.9, 0, 1, "share of the inflow forwarded")
    within_hours: float = _f(
        24.0, 0, 24 * 366, "hours after the inflow the forwarding must happen in"
    )
    min_forward_amount: int = _f(
        0, 0, None, "outflows below this do not count (minor units)", type="money"
    )
    include_disbursement_account: bool = _f(
        False, doc="the disbursement account itself is a candidate"
    )
    exclude_borrower_side: bool = _f(
        True, doc="accounts of the borrower side (T) are not candidates"
    )
    max_paths: int = _f(10, 0, 10000, "example paths kept per disbursement")

    def __post_init__(self) -> None:
        _check_common(self)
        if self.max_hops < 1:
            raise InvalidValue("max_hops must be >= 1")
        if not 0 <= self.forward_ratio <= 1:
            raise InvalidValue("forward_ratio must be in [0, 1]")


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
        ...within this many hours after the disbursement (``t0 < ts <= t0 + within``).
    max_paths : int
        Example outflows kept (as one-transaction paths).
    """

    ratio: float = _f(0.5, 0, 1, "single outflow at least this share of the disbursed amount")
    min_amount: int = _f(0, 0, None, "single outflow at least this (minor units)", type="money")
    within_hours: float = _f(72.0, 0, 24 * 366, "hours after disbursement")
    max_paths: int = _f(10, 0, 10000, "example outflows kept per disbursement")

    def __post_init__(self) -> None:
        _check_common(self)
        if self.ratio < 0:
            raise InvalidValue("ratio must be >= 0")


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

    min_hops: int = _f(3, 2, 12, "shortest cycle, in transfers")
    max_hops: int = _f(6, 2, 12, "longest cycle, in transfers")
    reach_hops: int = _f(5, 0, 12, "transfers from the disbursement account to the cycle")
    window_days: float = _f(30.0, 0, 3660, "days after disbursement the cycle must close")
    min_amount: int = _f(0, 0, None, "every transfer at least this (minor units)", type="money")
    min_amount_ratio: float = _f(
        0.1, 0, 1, "every transfer at least this share of the disbursed amount"
    )
    amount_ratio_low: float = _f(
        0.0, 0, None, "consecutive cycle amounts y/x at least this (0 = off)"
    )
    amount_ratio_high: float = _f(
        0.0, 0, None, "consecutive cycle amounts y/x at most this (0 = off)"
    )
    exclude_borrower_side: bool = _f(True, doc="cycles may not touch d or the borrower side")
    max_paths: int = _f(10, 0, 10000, "example cycles kept per disbursement")
    max_enumerated: int = _f(1_000_000, 1, None, "search budget per disbursement")

    def __post_init__(self) -> None:
        _check_common(self)
        if not 2 <= self.min_hops <= self.max_hops:
            raise InvalidValue("need 2 <= min_hops <= max_hops")
        if self.reach_hops < 0 or self.max_enumerated < 1:
            raise InvalidValue("reach_hops must be >= 0 and max_enumerated >= 1")
        if self.amount_ratio_low < 0 or self.amount_ratio_high < 0:
            raise InvalidValue("amount ratio bounds must be >= 0")


@dataclass(frozen=True)
class SplitDisbursementParams:
    """Parameters of :func:`detect_split_disbursement` (化整为零).

    Attributes
    ----------
    threshold : int
        The entrusted-payment threshold, minor units. Default 500 000 000 (5 000 000.00
        CNY); banks set it per product (e.g. lower for personal loans), so set it in the
        rule pack.
    band : float
        A loan is "just below" when ``threshold · (1 − band) <= amount < threshold``.
    min_loans : int
        At least this many such loans of one borrower group...
    window_days : float
        ...whose start times (first disbursement) fit in a span of this many days.
    """

    threshold: int = _f(
        500_000_000, 1, None, "entrusted-payment threshold (minor units)", type="money"
    )
    band: float = _f(0.2, 0, 1, "just below = within this share under the threshold")
    min_loans: int = _f(3, 2, 1000, "loans just below the threshold")
    window_days: float = _f(30.0, 0, 3660, "days the loans must fit in")

    def __post_init__(self) -> None:
        if (
            self.threshold < 1
            or not 0 <= self.band <= 1
            or self.min_loans < 2
            or self.window_days < 0
        ):
            raise InvalidValue("invalid split-disbursement parameters")

    def low(self) -> int:
        """Smallest amount that is "just below" the threshold."""
        return ratio_threshold(1 - self.band, self.threshold)


PARAMS_BY_KIND: dict[str, type] = {
    "repay_with_loan": RepayWithLoanParams,
    "prohibited_destination": ProhibitedDestinationParams,
    "rapid_pass_through": RapidPassThroughParams,
    "large_outflow": LargeOutflowParams,
    "transfer_cycle": TransferCycleParams,
    "split_disbursement": SplitDisbursementParams,
}


def _window_ms(days: float) -> int:
    return int(round(days * DAY_MS))


def _hours_ms(hours: float) -> int:
    return int(round(hours * HOUR_MS))


def _ppm(x: float) -> int:
    return int(round(x * _PPM))


def _thresholds(amounts: np.ndarray, min_amount: int, ratio: float) -> np.ndarray:
    return np.fromiter(
        (max(int(min_amount), ratio_threshold(ratio, int(a))) for a in amounts.tolist()),
        np.int64,
        amounts.shape[0],
    )


# ============================================================================ kernels


@njit(cache=True, nogil=True)
def _ceil_ppm(ppm, x):  # pragma: no cover - compiled
    """ceil(ppm · x / 1e6) for 0 <= ppm, x >= 0, without overflow for x < 2**62."""
    q = x // 1_000_000
    r = x - q * 1_000_000
    return ppm * q + (ppm * r + 999_999) // 1_000_000


@njit(cache=True, nogil=True)
def _floor_ppm(ppm, x):  # pragma: no cover - compiled
    q = x // 1_000_000
    r = x - q * 1_000_000
    return ppm * q + (ppm * r) // 1_000_000


@njit(cache=True, nogil=True)
def _reach(indptr, dst, ts, amount, d, t0, tend, thr, H, arr, pred, touched, fr_a, fr_b, infr):  # pragma: no cover  # fmt: skip
    """Hop-bounded earliest arrival from ``d`` (see module docstring).

    Level-synchronous (Bellman-Ford by hop count): level ``h`` rescans only the accounts
    whose arrival improved at level ``h - 1``, from their arrival time on (binary search).

    ``arr[v, h]`` (int64, ``INF`` = unreached) and ``pred[v, h]`` (forward-CSR position of
    the last transaction of a chain achieving it, -1 at ``d``/level 0) are filled for the
    returned number of touched accounts listed in ``touched``; untouched rows stay ``INF``.
    Reset with :func:`_unreach`.
    """
    for h in range(H + 1):
        arr[d, h] = t0
        pred[d, h] = -1
    touched[0] = d
    nt = 1
    fr_a[0] = d
    nf = 1
    cur = fr_a
    nxt = fr_b
    for h in range(1, H + 1):
        nn = 0
        for q in range(nf):
            u = cur[q]
            au = arr[u, h - 1]
            lo = indptr[u]
            hi = indptr[u + 1]
            a = lo + np.searchsorted(ts[lo:hi], au, side="right")
            b = lo + np.searchsorted(ts[lo:hi], tend, side="right")
            for e in range(a, b):
                if amount[e] < thr:
                    continue
                v = dst[e]
                te = ts[e]
                if arr[v, H] == INF and arr[v, h] == INF and v != d:
                    # first touch: levels are INF already; record
                    touched[nt] = v
                    nt += 1
                if te < arr[v, h]:
                    # improve level h and every higher level still worse
                    for g in range(h, H + 1):
                        if te < arr[v, g]:
                            arr[v, g] = te
                            pred[v, g] = e
                    if infr[v] == 0:
                        infr[v] = 1
                        nxt[nn] = v
                        nn += 1
        for q in range(nn):
            infr[nxt[q]] = 0
        tmp = cur
        cur = nxt
        nxt = tmp
        nf = nn
        if nf == 0:
            break
    return nt


@njit(cache=True, nogil=True)
def _unreach(arr, pred, touched, nt):  # pragma: no cover - compiled
    H1 = arr.shape[1]
    for q in range(nt):
        v = touched[q]
        for h in range(H1):
            arr[v, h] = INF
            pred[v, h] = -1


@njit(cache=True, nogil=True)
def _src_of(indptr, e):  # pragma: no cover - compiled
    return np.searchsorted(indptr, e, side="right") - 1


@njit(cache=True, nogil=True)
def _chain(indptr, row, pred, v, h, out, pos):  # pragma: no cover - compiled
    """Write the rows of the chain reaching ``(v, h)`` into ``out[pos:]``; return its length."""
    n = 0
    buf = np.empty(h + 1, np.int64)
    while h > 0 and pred[v, h] >= 0:
        e = pred[v, h]
        buf[n] = row[e]
        n += 1
        v = _src_of(indptr, e)
        h -= 1
    for i in range(n):
        out[pos + i] = buf[n - 1 - i]
    return n


@njit(cache=True, nogil=True)
def _min_level(arr, v, H, before):  # pragma: no cover - compiled
    """Fewest hops h <= H with arr[v, h] < before, or -1."""
    for h in range(H + 1):
        if arr[v, h] < before:
            return h
    return -1


# ---------------------------------------------------------------- per-disbursement rules
# Each returns nothing; writes res[0..5] = fired, amount, first_ts, hops, n_ev, aux and
# the evidence rows into ev_rows[k, :], ev_len[k].


@njit(cache=True, nogil=True)
def _repay_one(indptr, row, arr, pred, touched, nt, d, t0, tend, H, rthr,
               rp_indptr, rp_ts, rp_amount, rp_idx, K, res, ev_rows, ev_len, ev_key):  # pragma: no cover  # fmt: skip
    best_ts = INF
    best_idx = INF
    best_amt = 0
    best_v = -1
    min_h = -1
    n_ev = 0
    n_acc = 0
    for q in range(nt):
        v = touched[q]
        lo = rp_indptr[v]
        hi = rp_indptr[v + 1]
        if lo == hi:
            continue
        av = arr[v, H]
        if av == INF:
            continue
        j = lo + np.searchsorted(rp_ts[lo:hi], av, side="right")
        first_j = -1
        while j < hi and rp_ts[j] <= tend:
            if rp_amount[j] >= rthr:
                first_j = j
                break
            j += 1
        if first_j < 0:
            continue
        n_acc += 1
        # fewest hops for this account: smallest h with a qualifying repayment after arr[v, h]
        for h in range(H + 1):
            ah = arr[v, h]
            if ah == INF:
                continue
            jj = lo + np.searchsorted(rp_ts[lo:hi], ah, side="right")
            ok = False
            while jj < hi and rp_ts[jj] <= tend:
                if rp_amount[jj] >= rthr:
                    ok = True
                    break
                jj += 1
            if ok:
                if min_h < 0 or h < min_h:
                    min_h = h
                break
        tr = rp_ts[first_j]
        ri = rp_idx[first_j]
        if tr < best_ts or (tr == best_ts and ri < best_idx):
            best_ts = tr
            best_idx = ri
            best_amt = rp_amount[first_j]
            best_v = v
        # evidence: one chain per repaying account, the K earliest repayments
        if K > 0:
            slot = n_ev
            if n_ev == K:
                worst = 0
                for k in range(1, K):
                    if ev_key[k, 0] > ev_key[worst, 0] or (
                        ev_key[k, 0] == ev_key[worst, 0] and ev_key[k, 1] > ev_key[worst, 1]
                    ):
                        worst = k
                if tr < ev_key[worst, 0] or (tr == ev_key[worst, 0] and ri < ev_key[worst, 1]):
                    slot = worst
                else:
                    slot = -1
            else:
                n_ev += 1
            if slot >= 0:
                ev_key[slot, 0] = tr
                ev_key[slot, 1] = ri
                ev_key[slot, 2] = v
                ev_len[slot] = _chain(indptr, row, pred, v, H, ev_rows[slot], 0)
    res[0] = 1 if best_v >= 0 else 0
    res[1] = best_amt
    res[2] = best_ts if best_v >= 0 else -1
    res[3] = min_h
    res[4] = n_ev
    res[5] = best_idx if best_v >= 0 else -1
    res[6] = best_v
    res[7] = n_acc


@njit(cache=True, nogil=True)
def _prohibited_one(indptr, dst, ts, amount, row, arr, pred, touched, nt, d, t0, tend, thr, H,
                    bad, a, include_d, K, res, ev_rows, ev_len, ev_key):  # pragma: no cover  # fmt: skip
    best_ts = INF
    best_v = -1
    min_h = -1
    total = 0
    n_ev = 0
    n_acc = 0
    if include_d and bad[d] != 0:
        best_ts = t0
        best_v = d
        min_h = 0
        total = a
        n_acc = 1
    for q in range(nt):
        v = touched[q]
        if v == d or bad[v] == 0:
            continue
        av = arr[v, H]
        if av == INF:
            continue
        n_acc += 1
        if av < best_ts or (av == best_ts and v < best_v):
            best_ts = av
            best_v = v
        h = _min_level(arr, v, H, INF)
        if min_h < 0 or h < min_h:
            min_h = h
        if K > 0:
            slot = n_ev
            if n_ev == K:
                worst = 0
                for k in range(1, K):
                    if ev_key[k, 0] > ev_key[worst, 0] or (
                        ev_key[k, 0] == ev_key[worst, 0] and ev_key[k, 1] > ev_key[worst, 1]
                    ):
                        worst = k
                if av < ev_key[worst, 0] or (av == ev_key[worst, 0] and v < ev_key[worst, 1]):
                    slot = worst
                else:
                    slot = -1
            else:
                n_ev += 1
            if slot >= 0:
                ev_key[slot, 0] = av
                ev_key[slot, 1] = v
                ev_key[slot, 2] = v
                ev_len[slot] = _chain(indptr, row, pred, v, H, ev_rows[slot], 0)
    # amount: qualifying transactions from non-prohibited into prohibited accounts (not d)
    if best_v >= 0 and not (include_d and bad[d] != 0):
        for q in range(nt):
            u = touched[q]
            if bad[u] != 0:
                continue
            au = arr[u, H - 1]
            if au == INF:
                continue
            lo = indptr[u]
            hi = indptr[u + 1]
            s = lo + np.searchsorted(ts[lo:hi], au, side="right")
            b = lo + np.searchsorted(ts[lo:hi], tend, side="right")
            for e in range(s, b):
                v = dst[e]
                if amount[e] >= thr and bad[v] != 0 and v != d:
                    total += amount[e]
        if total > a:
            total = a
    res[0] = 1 if best_v >= 0 else 0
    res[1] = total if best_v >= 0 else 0
    res[2] = best_ts if best_v >= 0 else -1
    res[3] = min_h
    res[4] = n_ev
    res[5] = best_v
    res[6] = 0
    res[7] = n_acc


@njit(cache=True, nogil=True)
def _pass_one(indptr, dst, ts, amount, row, rindptr, rsrc, rts, ramount, rrow,
              arr, pred, touched, nt, d, t0, a, tend, thr, H, ratio_ppm, within, min_fwd,
              include_d, blk, K, res, ev_rows, ev_len, ev_key):  # pragma: no cover  # fmt: skip
    """Rapid pass-through; event = (completion ts, inflow row)."""
    best_ts = INF
    best_in = INF
    best_A = 0
    best_share = 0.0
    best_v = -1
    min_h = -1
    n_ev = 0
    for q in range(nt):
        v = touched[q]
        if v == d:
            if not include_d:
                continue
        elif blk[v] != 0:
            continue
        lo = rindptr[v]
        hi = rindptr[v + 1]
        j0 = lo + np.searchsorted(rts[lo:hi], t0, side="right")
        j1 = lo + np.searchsorted(rts[lo:hi], tend, side="right")
        # candidates: qualifying in-edges j0..j1-1, plus for d the disbursement itself (j0-1)
        start = j0 - 1 if v == d else j0
        for j in range(start, j1):
            if j < j0:
                tin = t0
                A = a
                hin = 0
                in_row = -1
            else:
                if ramount[j] < thr:
                    continue
                u = rsrc[j]
                tin = rts[j]
                hu = _min_level(arr, u, H - 1, tin)
                if hu < 0:
                    continue
                A = ramount[j]
                hin = hu + 1
                in_row = rrow[j]
            need = _ceil_ppm(ratio_ppm, A)
            olo = indptr[v]
            ohi = indptr[v + 1]
            o0 = olo + np.searchsorted(ts[olo:ohi], tin, side="right")
            o1 = olo + np.searchsorted(ts[olo:ohi], tin + within, side="right")
            fwd = 0
            done = INF
            done_o = -1
            for o in range(o0, o1):
                if amount[o] < min_fwd:
                    continue
                fwd += amount[o]
                if done == INF and fwd >= need:
                    done = ts[o]
                    done_o = o
            if done == INF:
                continue
            if min_h < 0 or hin < min_h:
                min_h = hin
            if done < best_ts or (done == best_ts and in_row < best_in):
                best_ts = done
                best_in = in_row
                best_A = A
                best_v = v
                best_share = fwd / A if A > 0 else 0.0
            if K > 0:
                slot = n_ev
                if n_ev == K:
                    worst = 0
                    for k in range(1, K):
                        if ev_key[k, 0] > ev_key[worst, 0] or (
                            ev_key[k, 0] == ev_key[worst, 0] and ev_key[k, 1] > ev_key[worst, 1]
                        ):
                            worst = k
                    if done < ev_key[worst, 0] or (
                        done == ev_key[worst, 0] and in_row < ev_key[worst, 1]
                    ):
                        slot = worst
                    else:
                        slot = -1
                else:
                    n_ev += 1
                if slot >= 0:
                    ev_key[slot, 0] = done
                    ev_key[slot, 1] = in_row
                    ev_key[slot, 2] = v
                    n = 0
                    if in_row >= 0:
                        n = _chain(indptr, row, pred, rsrc[j], hin - 1, ev_rows[slot], 0)
                        ev_rows[slot, n] = in_row
                        n += 1
                    for o in range(o0, done_o + 1):
                        if amount[o] >= min_fwd and n < ev_rows.shape[1]:
                            ev_rows[slot, n] = row[o]
                            n += 1
                    ev_len[slot] = n
    res[0] = 1 if best_v >= 0 else 0
    res[1] = best_A
    res[2] = best_ts if best_v >= 0 else -1
    res[3] = min_h
    res[4] = n_ev
    res[5] = best_v
    res[6] = int(round(best_share * 1e9))


@njit(cache=True, nogil=True)
def _cycle_key_less(ta, la, ra, tb, lb, rb):  # pragma: no cover - compiled
    if ta != tb:
        return ta < tb
    if la != lb:
        return la < lb
    for i in range(la):
        if ra[i] != rb[i]:
            return ra[i] < rb[i]
    return False


@njit(cache=True, nogil=True)
def _cycle_one(indptr, dst, ts, amount, row, arr, pred, touched, nt, d, tend, thr, R,
               Lmin, Lmax, lo_ppm, hi_ppm, blocked, on_path, budget,
               K, res, ev_rows, ev_len, ev_key, cyc_rows):  # pragma: no cover  # fmt: skip
    """Temporal cycles from reached accounts; event key (closing ts, length, rows)."""
    best_t = INF
    best_L = 0
    best_rows = np.empty(Lmax, np.int64)
    best_amt = 0
    best_s = -1
    min_h = -1
    steps = 0
    hit = False
    n_ev = 0
    n_starts = 0
    st_node = np.empty(Lmax + 1, np.int64)
    st_pos = np.empty(Lmax + 1, np.int64)
    st_end = np.empty(Lmax + 1, np.int64)
    p_edge = np.empty(Lmax, np.int64)
    cand = np.empty(Lmax, np.int64)
    for q in range(nt):
        s = touched[q]
        if blocked[s] != 0:
            continue
        a_s = arr[s, R]
        if a_s == INF:
            continue
        s_t = INF
        s_L = 0
        s_min_h = -1
        s_first_h = 0
        on_path[s] = 1
        st_node[0] = s
        lo = indptr[s]
        hi = indptr[s + 1]
        st_pos[0] = lo + np.searchsorted(ts[lo:hi], a_s, side="right")
        st_end[0] = lo + np.searchsorted(ts[lo:hi], tend, side="right")
        k = 0
        while k >= 0:
            if st_pos[k] >= st_end[k]:
                if k > 0:
                    on_path[st_node[k]] = 0
                k -= 1
                continue
            e = st_pos[k]
            st_pos[k] = e + 1
            if amount[e] < thr:
                continue
            if k > 0:
                prev = amount[p_edge[k - 1]]
                if lo_ppm > 0 and amount[e] < _ceil_ppm(lo_ppm, prev):
                    continue
                if hi_ppm > 0 and amount[e] > _floor_ppm(hi_ppm, prev):
                    continue
            steps += 1
            if steps > budget:
                hit = True
                break
            v = dst[e]
            if v == s:
                L = k + 1
                if L < Lmin:
                    continue
                p_edge[k] = e
                for i in range(L):
                    cand[i] = row[p_edge[i]]
                te = ts[e]
                h0 = _min_level(arr, s, R, ts[p_edge[0]])
                if s_min_h < 0 or h0 < s_min_h:
                    s_min_h = h0
                if s_t == INF or _cycle_key_less(te, L, cand, s_t, s_L, cyc_rows):
                    s_t = te
                    s_L = L
                    s_first_h = h0
                    for i in range(L):
                        cyc_rows[i] = cand[i]
                if best_s < 0 or _cycle_key_less(te, L, cand, best_t, best_L, best_rows):
                    best_t = te
                    best_L = L
                    best_s = s
                    m = amount[p_edge[0]]
                    for i in range(L):
                        best_rows[i] = cand[i]
                        if amount[p_edge[i]] < m:
                            m = amount[p_edge[i]]
                    best_amt = m
                continue
            if on_path[v] != 0 or blocked[v] != 0 or k + 1 >= Lmax:
                continue
            p_edge[k] = e
            k += 1
            st_node[k] = v
            on_path[v] = 1
            lo = indptr[v]
            hi = indptr[v + 1]
            st_pos[k] = lo + np.searchsorted(ts[lo:hi], ts[e], side="right")
            st_end[k] = lo + np.searchsorted(ts[lo:hi], tend, side="right")
        for qq in range(1, k + 1):
            on_path[st_node[qq]] = 0
        on_path[s] = 0
        if s_t != INF:
            n_starts += 1
            if min_h < 0 or s_min_h < min_h:
                min_h = s_min_h
            if K > 0:
                slot = n_ev
                if n_ev == K:
                    worst = 0
                    for kk in range(1, K):
                        if ev_key[kk, 0] > ev_key[worst, 0] or (
                            ev_key[kk, 0] == ev_key[worst, 0] and ev_key[kk, 1] > ev_key[worst, 1]
                        ):
                            worst = kk
                    if s_t < ev_key[worst, 0] or (s_t == ev_key[worst, 0] and s < ev_key[worst, 1]):
                        slot = worst
                    else:
                        slot = -1
                else:
                    n_ev += 1
                if slot >= 0:
                    ev_key[slot, 0] = s_t
                    ev_key[slot, 1] = s
                    ev_key[slot, 2] = s_L
                    # feeding chain: fewest hops arriving before the cycle's first transfer
                    n = _chain(indptr, row, pred, s, s_first_h, ev_rows[slot], 0)
                    for i in range(s_L):
                        ev_rows[slot, n + i] = cyc_rows[i]
                    ev_len[slot] = n + s_L
        if hit:
            break
    res[0] = 1 if best_s >= 0 else 0
    res[1] = best_amt
    res[2] = best_t if best_s >= 0 else -1
    res[3] = min_h
    res[4] = n_ev
    res[5] = best_s
    res[6] = best_L
    res[7] = 1 if hit else 0
    res[8] = n_starts


# ---------------------------------------------------------------- batch driver

_RULE_REPAY, _RULE_PROHIBITED, _RULE_PASS, _RULE_CYCLE = 0, 1, 2, 3
_RES = 10


@njit(cache=True, nogil=True, parallel=True)
def _batch(rule, indptr, dst, ts, amount, row, rindptr, rsrc, rts, ramount, rrow,
           accounts, t0s, amounts, thrs, tindptr, tids, window, H,
           arr, pred, touched, fr_a, fr_b, infr, mark, on_path, zeros,
           rp_indptr, rp_ts, rp_amount, rp_idx, rthrs,
           bad, include_d, ratio_ppm, within, min_fwd,
           Lmin, Lmax, lo_ppm, hi_ppm, budget, excl,
           K, out_res, out_rows, out_len, out_key):  # pragma: no cover  # fmt: skip
    W = arr.shape[0]
    N = accounts.shape[0]
    for w in prange(W):
        cyc_rows = np.empty(max(Lmax, 1), np.int64)
        for i in range(w, N, W):
            d = accounts[i]
            t0 = t0s[i]
            tend = t0 + window
            nt = _reach(
                indptr,
                dst,
                ts,
                amount,
                d,
                t0,
                tend,
                thrs[i],
                H,
                arr[w],
                pred[w],
                touched[w],
                fr_a[w],
                fr_b[w],
                infr[w],
            )
            tg = tids[tindptr[i] : tindptr[i + 1]]
            for q in range(tg.shape[0]):
                mark[w, tg[q]] = 1
            mark[w, d] = 1
            blk = mark[w] if excl else zeros  # T and d, when the rule excludes them
            if rule == _RULE_REPAY:
                _repay_one(
                    indptr,
                    row,
                    arr[w],
                    pred[w],
                    touched[w],
                    nt,
                    d,
                    t0,
                    tend,
                    H,
                    rthrs[i],
                    rp_indptr,
                    rp_ts,
                    rp_amount,
                    rp_idx,
                    K,
                    out_res[i],
                    out_rows[i],
                    out_len[i],
                    out_key[i],
                )
            elif rule == _RULE_PROHIBITED:
                _prohibited_one(
                    indptr,
                    dst,
                    ts,
                    amount,
                    row,
                    arr[w],
                    pred[w],
                    touched[w],
                    nt,
                    d,
                    t0,
                    tend,
                    thrs[i],
                    H,
                    bad,
                    amounts[i],
                    include_d,
                    K,
                    out_res[i],
                    out_rows[i],
                    out_len[i],
                    out_key[i],
                )
            elif rule == _RULE_PASS:
                _pass_one(
                    indptr,
                    dst,
                    ts,
                    amount,
                    row,
                    rindptr,
                    rsrc,
                    rts,
                    ramount,
                    rrow,
                    arr[w],
                    pred[w],
                    touched[w],
                    nt,
                    d,
                    t0,
                    amounts[i],
                    tend,
                    thrs[i],
                    H,
                    ratio_ppm,
                    within,
                    min_fwd,
                    include_d,
                    blk,
                    K,
                    out_res[i],
                    out_rows[i],
                    out_len[i],
                    out_key[i],
                )
            else:
                _cycle_one(
                    indptr,
                    dst,
                    ts,
                    amount,
                    row,
                    arr[w],
                    pred[w],
                    touched[w],
                    nt,
                    d,
                    tend,
                    thrs[i],
                    H,
                    Lmin,
                    Lmax,
                    lo_ppm,
                    hi_ppm,
                    blk,
                    on_path[w],
                    budget,
                    K,
                    out_res[i],
                    out_rows[i],
                    out_len[i],
                    out_key[i],
                    cyc_rows,
                )
            for q in range(tg.shape[0]):
                mark[w, tg[q]] = 0
            mark[w, d] = 0
            _unreach(arr[w], pred[w], touched[w], nt)


# ============================================================================ driver


class _Scratch:
    def __init__(self, workers: int, n: int, hops: int) -> None:
        self.key = (workers, n, hops)
        self.arr = np.full((workers, n, hops + 1), INF, np.int64)
        self.pred = np.full((workers, n, hops + 1), -1, np.int64)
        self.touched = np.empty((workers, n), np.int64)
        self.fr_a = np.empty((workers, n), np.int64)
        self.fr_b = np.empty((workers, n), np.int64)
        self.infr = np.zeros((workers, n), np.uint8)
        self.mark = np.zeros((workers, n), np.uint8)
        self.on_path = np.zeros((workers, n), np.uint8)
        self.zeros = np.zeros(n, np.uint8)


_local = threading.local()


def _take_scratch(workers: int, n: int, hops: int) -> _Scratch:
    s = getattr(_local, "cache", None)
    if s is None or s.key != (workers, n, hops):
        s = _Scratch(workers, n, hops)
    _local.cache = None  # a failing kernel cannot hand back dirty scratch
    return s


def _arrays(index):
    return index.arrays()


def _check_disb(index, disb: Disbursements) -> tuple[np.ndarray, ...]:
    acc = np.ascontiguousarray(disb.account, np.int64)
    t0 = np.ascontiguousarray(disb.t0, np.int64)
    amt = np.ascontiguousarray(disb.amount, np.int64)
    tip = np.ascontiguousarray(disb.target_indptr, np.int64)
    tid = np.ascontiguousarray(disb.target_ids, np.int64)
    N = acc.shape[0]
    if not (t0.shape[0] == amt.shape[0] == N and tip.shape[0] == N + 1):
        raise ValueError("account, t0, amount must have length N and target_indptr N+1")
    n = index.n_accounts
    if N and (acc.min() < 0 or acc.max() >= n):
        raise ValueError("disbursement account id out of range")
    if tid.size and (tid.min() < 0 or tid.max() >= n):
        raise ValueError("target account id out of range")
    return acc, t0, amt, tip, tid


def _run(rule, index, disb, H, thrs, window, K, width, *, rp=None, rthrs=None, bad=None,
         flag=False, ratio_ppm=0, within=0, min_fwd=0, Lmin=0, Lmax=0, lo_ppm=0, hi_ppm=0,
         budget=1, excl=False):  # fmt: skip
    acc, t0, amt, tip, tid = _check_disb(index, disb)
    N = acc.shape[0]
    n = index.n_accounts
    W = max(1, min(numba.get_num_threads(), N))
    s = _take_scratch(W, n, H)
    if rp is None:
        rp = (
            np.zeros(n + 1, np.int64),
            np.zeros(0, np.int64),
            np.zeros(0, np.int64),
            np.zeros(0, np.int64),
        )
    rthrs = np.zeros(N, np.int64) if rthrs is None else rthrs
    bad = s.zeros if bad is None else bad
    out_res = np.zeros((N, _RES), np.int64)
    out_rows = np.zeros((N, K, max(width, 1)), np.int64)
    out_len = np.zeros((N, K), np.int64)
    out_key = np.zeros((N, K, 3), np.int64)
    if N:
        _batch(
            rule, *_arrays(index), acc, t0, amt, thrs, tip, tid, int(window), int(H),
            s.arr, s.pred, s.touched, s.fr_a, s.fr_b, s.infr, s.mark, s.on_path, s.zeros,
            *rp, rthrs, bad, bool(flag), int(ratio_ppm), int(within), int(min_fwd),
            int(Lmin), int(Lmax), int(lo_ppm), int(hi_ppm), int(budget), bool(excl),
            int(K), out_res, out_rows, out_len, out_key,
        )  # fmt: skip
    _local.cache = s
    hits = Hits.empty(N)
    fired = out_res[:, 0] == 1
    hits.fired = fired
    hits.amount = np.where(fired, out_res[:, 1], 0)
    hits.first_ts = np.where(fired, out_res[:, 2], -1)
    hits.hops = np.where(fired, out_res[:, 3], -1)
    for i in np.flatnonzero(fired).tolist():
        k = int(out_res[i, 4])
        keys = [tuple(out_key[i, j].tolist()) for j in range(k)]
        order = sorted(range(k), key=lambda j: keys[j])
        hits.evidence[i] = [out_rows[i, j, : out_len[i, j]].copy() for j in order]
    return hits, out_res


def earliest_arrival(index, account: int, t0: int, amount: int, *, window_ms: int,
                     max_hops: int, threshold: int) -> dict[int, list[int]]:  # fmt: skip
    """Hop-bounded earliest arrival of one disbursement (the shared building block).

    Parameters
    ----------
    index : TemporalIndex
    account, t0, amount : int
        Receiving account ``d`` (dense id), time (UTC ms) and amount (minor units).
    window_ms, max_hops, threshold : int
        Chains end at most ``window_ms`` after ``t0``, have at most ``max_hops``
        transactions, each at least ``threshold`` minor units.

    Returns
    -------
    dict
        ``{account: [arr_0, …, arr_H]}`` for every reached account, ``arr_h`` the earliest
        arrival with at most ``h`` transactions (``-1`` = not within ``h``); ``d`` maps to
        ``t0`` at every level.

    Examples
    --------
    >>> import numpy as np
    >>> from flowgraph.engine.csr import build_index
    >>> idx = build_index(np.array([0, 1, 0], np.int32), np.array([1, 2, 2], np.int32),
    ...                   np.array([5, 6, 9]), np.array([50, 50, 50]), np.array(["d", "x", "y"]))
    >>> earliest_arrival(idx, 0, 0, 100, window_ms=100, max_hops=2, threshold=10)
    {0: [0, 0, 0], 1: [-1, 5, 5], 2: [-1, 9, 6]}
    """
    H = int(max_hops)
    n = index.n_accounts
    if not 0 <= account < n:
        raise ValueError("account out of range")
    s = _take_scratch(1, n, H)
    a = _arrays(index)
    nt = _reach(a[0], a[1], a[2], a[3], int(account), int(t0), int(t0) + int(window_ms),
                int(threshold), H, s.arr[0], s.pred[0], s.touched[0], s.fr_a[0], s.fr_b[0],
                s.infr[0])  # fmt: skip
    out = {}
    for v in sorted(s.touched[0, :nt].tolist()):
        out[v] = [-1 if x == INF else int(x) for x in s.arr[0, v].tolist()]
    _unreach(s.arr[0], s.pred[0], s.touched[0], nt)
    _local.cache = s
    return out


# ============================================================================ detectors


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

    Catches: disbursement → (intermediaries) → third-party account → repays an older loan
    of the borrower three weeks later. Look-alike it must not catch: an ordinary loan whose
    borrower repays from the disbursement account 45 days later (outside the window), or a
    repayment made *before* the proceeds arrived at the repaying account.

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
    rp = (rp_indptr, rt[order].copy(), ram[order].copy(), order.astype(np.int64))
    amt = np.asarray(disb.amount, np.int64)
    H = int(params.max_hops)
    K = int(params.max_paths)
    thrs = _thresholds(amt, params.min_amount, params.min_amount_ratio)
    rthrs = _thresholds(amt, 0, params.min_repay_ratio)
    hits, res = _run(_RULE_REPAY, index, disb, H, thrs, _window_ms(params.window_days), K,
                     max(H, 1), rp=rp, rthrs=rthrs)  # fmt: skip
    for i in np.flatnonzero(hits.fired).tolist():
        j = int(res[i, 5])
        hits.metric[i] = float(hits.amount[i]) / float(amt[i]) if amt[i] else 0.0
        hits.detail[i] = {
            "account": int(res[i, 6]),
            "repaid_loan_row": int(rl[j]),
            "repayment": j,
            "accounts": int(res[i, 7]),
        }
    return hits


def _prohibited_mask(account_category, category_names, categories) -> tuple[np.ndarray, dict]:
    names = list(category_names)
    codes = {i: nm for i, nm in enumerate(names) if nm in set(categories)}
    cat = np.asarray(account_category).astype(np.int64)
    bad = np.isin(cat, np.fromiter(codes, np.int64, len(codes))) & (cat >= 0)
    return bad.astype(np.uint8), codes


def detect_prohibited_destination(
    index,
    disb: Disbursements,
    account_category: np.ndarray,
    category_names: Sequence[str] = CATEGORY_NAMES,
    params: ProhibitedDestinationParams = ProhibitedDestinationParams(),
) -> Hits:
    """The proceeds reach an account of a prohibited category (brokerage, real estate, ...).

    Fires when a time-respecting chain of ``1..max_hops`` transactions from ``d`` (after
    ``t0``, strictly increasing timestamps, at most ``window`` after ``t0``, each amount
    ``>= max(min_amount, min_amount_ratio · a)``) ends at an account whose category is in
    ``params.categories``; ``d`` itself only with ``include_disbursement_account``.

    Catches: disbursement → supplier → brokerage account within days. Look-alike it must
    not catch: small card payments from ``d`` at a brokerage (below the hop floor), or the
    brokerage receiving money *before* it reached the intermediary.

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
    cat = np.asarray(account_category)
    if cat.shape[0] != index.n_accounts:
        raise ValueError("account_category must have one code per account")
    bad, codes = _prohibited_mask(cat, category_names, params.categories)
    amt = np.asarray(disb.amount, np.int64)
    H = int(params.max_hops)
    thrs = _thresholds(amt, params.min_amount, params.min_amount_ratio)
    hits, res = _run(_RULE_PROHIBITED, index, disb, H, thrs, _window_ms(params.window_days),
                     int(params.max_paths), H, bad=bad, flag=params.include_disbursement_account)  # fmt: skip
    for i in np.flatnonzero(hits.fired).tolist():
        v = int(res[i, 5])
        hits.metric[i] = float(hits.amount[i]) / float(amt[i]) if amt[i] else 0.0
        hits.detail[i] = {
            "account": v,
            "category": codes.get(int(cat[v]), str(int(cat[v]))),
            "accounts": int(res[i, 7]),
        }
    return hits


def detect_rapid_pass_through(
    index,
    disb: Disbursements,
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
    ``min_forward_amount``) add up to ``>= ratio_threshold(forward_ratio, A)``; the event
    time is the outflow at which the running sum reaches that. ``d`` is not a candidate
    unless ``include_disbursement_account`` (then the disbursement itself, ``A = a`` at
    ``t0`` with 0 hops, and chain transactions returning to ``d`` are its inflows); the
    other accounts of ``T`` are not candidates unless ``exclude_borrower_side`` is false.

    Catches: d → m (3 000 000.00), m → two accounts 95 % of it within 2 hours. Look-alike
    it must not catch: m forwarding 95 % only after three days, or forwarding 50 %.

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
    amt = np.asarray(disb.amount, np.int64)
    H = int(params.max_hops)
    K = int(params.max_paths)
    thrs = _thresholds(amt, params.min_amount, params.min_amount_ratio)
    hits, res = _run(_RULE_PASS, index, disb, H, thrs, _window_ms(params.window_days), K,
                     H + 16, flag=params.include_disbursement_account,
                     excl=params.exclude_borrower_side,
                     ratio_ppm=_ppm(params.forward_ratio), within=_hours_ms(params.within_hours),
                     min_fwd=int(params.min_forward_amount))  # fmt: skip
    for i in np.flatnonzero(hits.fired).tolist():
        share = float(res[i, 6]) / 1e9
        hits.metric[i] = share
        hits.detail[i] = {"account": int(res[i, 5]), "forwarded_share": round(share, 6)}
    return hits


@njit(cache=True, nogil=True)
def _outflow_kernel(indptr, dst, ts, amount, row, accounts, t0s, thrs, within, K,
                    out_res, out_rows):  # pragma: no cover  # fmt: skip
    for i in range(accounts.shape[0]):
        d = accounts[i]
        lo = indptr[d]
        hi = indptr[d + 1]
        a = lo + np.searchsorted(ts[lo:hi], t0s[i], side="right")
        b = lo + np.searchsorted(ts[lo:hi], t0s[i] + within, side="right")
        n = 0
        best = -1
        first = -1
        for e in range(a, b):
            if amount[e] < thrs[i]:
                continue
            if first < 0:
                first = e
            if best < 0 or amount[e] > amount[best]:
                best = e
            if n < K:
                out_rows[i, n] = row[e]
            n += 1
        if n:
            out_res[i, 0] = 1
            out_res[i, 1] = amount[best]
            out_res[i, 2] = ts[first]
            out_res[i, 3] = n
            out_res[i, 4] = dst[best]
            out_res[i, 5] = row[best]


def detect_large_outflow(
    index,
    disb: Disbursements,
    params: LargeOutflowParams = LargeOutflowParams(),
) -> Hits:
    """A single outflow from ``d`` of at least ``max(min_amount, ratio · a)`` soon after ``t0``.

    Looks at ``d``'s out-edges with ``t0 < ts <= t0 + within_hours`` (binary search into the
    time-sorted CSR segment). Catches: 8 000 000.00 disbursed, 7 500 000.00 sent on in one
    transfer the next morning. Look-alike it must not catch: the same amount paid out in
    small pieces, or one large payment a week later.

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
    """
    acc, t0, amt, _, _ = _check_disb(index, disb)
    N = acc.shape[0]
    K = int(params.max_paths)
    thrs = _thresholds(amt, params.min_amount, params.ratio)
    out_res = np.zeros((N, 6), np.int64)
    out_rows = np.zeros((N, max(K, 1)), np.int64)
    a = _arrays(index)
    _outflow_kernel(a[0], a[1], a[2], a[3], a[4], acc, t0, thrs, _hours_ms(params.within_hours),
                    K, out_res, out_rows)  # fmt: skip
    hits = Hits.empty(N)
    fired = out_res[:, 0] == 1
    hits.fired = fired
    hits.amount = np.where(fired, out_res[:, 1], 0)
    hits.first_ts = np.where(fired, out_res[:, 2], -1)
    hits.hops = np.where(fired, 1, -1)
    for i in np.flatnonzero(fired).tolist():
        hits.metric[i] = float(hits.amount[i]) / float(amt[i]) if amt[i] else 0.0
        k = min(K, int(out_res[i, 3]))
        hits.evidence[i] = [out_rows[i, j : j + 1].copy() for j in range(k)]
        hits.detail[i] = {"account": int(out_res[i, 4]), "row": int(out_res[i, 5]),
                          "outflows": int(out_res[i, 3])}  # fmt: skip
    return hits


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
    ``exclude_borrower_side`` (default) no account of the cycle is ``d`` or in ``T`` —
    so a flow-back path ``d → x → y → d`` is *not* a cycle here (it is the flow-back
    rule's), and neither is money going round the borrower's own accounts.

    Catches: d → c0, then c0 → c1 → c2 → c0 with increasing timestamps, all large.
    Look-alike it must not catch: the same three accounts paying each other in the wrong
    time order (c1 → c2 before c0 → c1), or a cycle that closed before the proceeds came.

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
    amt = np.asarray(disb.amount, np.int64)
    R = int(params.reach_hops)
    Lmax = int(params.max_hops)
    thrs = _thresholds(amt, params.min_amount, params.min_amount_ratio)
    hits, res = _run(_RULE_CYCLE, index, disb, R, thrs, _window_ms(params.window_days),
                     int(params.max_paths), R + Lmax, excl=params.exclude_borrower_side,
                     Lmin=int(params.min_hops), Lmax=Lmax, lo_ppm=_ppm(params.amount_ratio_low),
                     hi_ppm=_ppm(params.amount_ratio_high), budget=int(params.max_enumerated))  # fmt: skip
    for i in range(len(hits)):
        if hits.fired[i]:
            hits.metric[i] = float(hits.amount[i]) / float(amt[i]) if amt[i] else 0.0
            hits.detail[i] = {"account": int(res[i, 5]), "cycle_length": int(res[i, 6]),
                              "starts": int(res[i, 8]), "truncated": bool(res[i, 7])}  # fmt: skip
        elif res[i, 7]:
            hits.detail[i] = {"truncated": True}
    return hits


def detect_split_disbursement(
    loan_of_disbursement: np.ndarray,
    loan_borrower: np.ndarray,
    loan_amount: np.ndarray,
    loan_start_ts: np.ndarray,
    group_of_borrower: np.ndarray,
    params: SplitDisbursementParams = SplitDisbursementParams(),
) -> Hits:
    """化整为零: linked borrowers take several loans just below the entrusted-payment threshold.

    A loan is *just below* when ``threshold · (1 − band) <= amount < threshold``. Loans
    are grouped by the borrower's group id (borrowers in one link component). A just-below
    loan is flagged when at least ``min_loans`` just-below loans of its group (itself
    included) start within some span of ``window_days`` that contains its start, i.e. it
    belongs to a run ``t_j <= … <= t_j + window`` of ``>= min_loans`` loans. Every
    disbursement of a flagged loan fires.

    Catches: three related companies each borrowing 4 800 000.00 within two weeks.
    Look-alike it must not catch: the same three loans spread over three months, or loans
    of 5 200 000.00 (above the threshold: paid by entrusted payment anyway), or three
    unrelated borrowers (different groups).

    Parameters
    ----------
    loan_of_disbursement : ndarray of int64, shape (N,)
        Loan row of each disbursement.
    loan_borrower, loan_amount, loan_start_ts : ndarray, shape (L,)
        Per loan: borrower row, amount (minor units) and start time (UTC ms; normally its
        first disbursement).
    group_of_borrower : ndarray of int64
        Group id per borrower row.
    params : SplitDisbursementParams

    Returns
    -------
    Hits
        ``metric`` = number of just-below loans in the largest qualifying run containing
        the loan, ``amount`` = their total amount, ``first_ts`` = the run's first start,
        ``hops`` = -1; ``detail``: ``group``, ``loans`` (loan rows of that run, by start),
        ``n_loans``. No evidence paths.

    Examples
    --------
    >>> D = 86_400_000
    >>> h = detect_split_disbursement(np.array([0, 1, 2, 3]), np.array([0, 1, 2, 3]),
    ...     np.array([480_000_000, 450_000_000, 490_000_000, 480_000_000]),
    ...     np.array([0, 5 * D, 9 * D, 90 * D]), np.array([7, 7, 7, 7]))
    >>> h.fired.tolist(), h.detail[0]["loans"]
    ([True, True, True, False], [0, 1, 2])
    """
    lod = np.asarray(loan_of_disbursement, np.int64)
    lb = np.asarray(loan_borrower, np.int64)
    la = np.asarray(loan_amount, np.int64)
    lt = np.asarray(loan_start_ts, np.int64)
    grp = np.asarray(group_of_borrower, np.int64)
    N = lod.shape[0]
    hits = Hits.empty(N)
    low, thr = params.low(), int(params.threshold)
    win = _window_ms(params.window_days)
    df = (
        pl.DataFrame({"loan": np.arange(la.shape[0]), "amount": la, "ts": lt, "group": grp[lb]})
        .filter((pl.col("amount") >= low) & (pl.col("amount") < thr))
        .sort(["group", "ts", "loan"])
    )
    best: dict[int, tuple] = {}  # loan -> (count, -first_ts, run loans)
    for (g,), part in df.group_by(["group"], maintain_order=True):
        t = part["ts"].to_numpy()
        loans = part["loan"].to_numpy()
        amts = part["amount"].to_numpy()
        ends = np.searchsorted(t, t + win, side="right")
        for j in range(t.shape[0]):
            c = int(ends[j] - j)
            if c < params.min_loans:
                continue
            run = loans[j : ends[j]].tolist()
            key = (c, -int(t[j]))
            info = (key, int(g), run, int(amts[j : ends[j]].sum()), int(t[j]))
            for ln in run:
                if ln not in best or key > best[ln][0]:
                    best[ln] = info
    for i in range(N):
        info = best.get(int(lod[i]))
        if info is None:
            continue
        key, g, run, total, first = info
        hits.fired[i] = True
        hits.metric[i] = float(len(run))
        hits.amount[i] = total
        hits.first_ts[i] = first
        hits.detail[i] = {"group": g, "loans": run, "n_loans": len(run)}
    return hits


# ============================================================================ references
# Slow pure-Python references: explicit enumeration of every simple time-respecting chain.


def _edges_by_src(index):
    ip = np.asarray(index.indptr).tolist()
    dst = np.asarray(index.dst).tolist()
    ts = np.asarray(index.ts).tolist()
    am = np.asarray(index.amount).tolist()
    rw = np.asarray(index.row).tolist()
    out = {}
    for u in range(len(ip) - 1):
        out[u] = [(ts[e], rw[e], dst[e], am[e]) for e in range(ip[u], ip[u + 1])]
    return out


def _ref_chains(out, d, t0, tend, thr, H):
    """Every simple time-respecting chain from d: list of (end, arrival, hops, [edges])."""
    res = [(d, t0, 0, [])]

    def rec(u, t, hops, seen, path):
        if hops == H:
            return
        for e in out[u]:
            te, _, v, am = e
            if te <= t or te > tend or am < thr or v in seen:
                continue
            p = [*path, e]
            res.append((v, te, hops + 1, p))
            seen.add(v)
            rec(v, te, hops + 1, seen, p)
            seen.discard(v)

    rec(d, t0, 0, {d}, [])
    return res


def _ref_reach(out, d, t0, tend, thr, H):
    """Earliest arrival per account over every simple chain of at most H hops."""
    best = {}
    for v, arr, _, _ in _ref_chains(out, d, t0, tend, thr, H):
        if v not in best or arr < best[v]:
            best[v] = arr
    return best


def _ref_hits(n, rows):
    h = Hits.empty(n)
    for i, r in enumerate(rows):
        if r is not None:
            h.fired[i] = True
            h.amount[i], h.first_ts[i], h.hops[i] = r
    return h


def reference_repay_with_loan(index, disb, repay_account, repay_ts, repay_amount, repay_loan_row,
                              params=RepayWithLoanParams()) -> Hits:  # fmt: skip
    """Pure-Python reference of :func:`detect_repay_with_loan` (fired, amount, first_ts, hops)."""
    out = _edges_by_src(index)
    reps = sorted(zip(np.asarray(repay_ts).tolist(), range(len(repay_ts)),
                      np.asarray(repay_account).tolist(), np.asarray(repay_amount).tolist(), strict=True))  # fmt: skip
    rows = []
    for d, t0, a in zip(np.asarray(disb.account).tolist(), np.asarray(disb.t0).tolist(),
                        np.asarray(disb.amount).tolist(), strict=True):  # fmt: skip
        thr = max(params.min_amount, ratio_threshold(params.min_amount_ratio, a))
        rthr = ratio_threshold(params.min_repay_ratio, a)
        tend = t0 + _window_ms(params.window_days)
        best = None
        min_h = None
        for v, arr, hops, _ in _ref_chains(out, d, t0, tend, thr, params.max_hops):
            for tr, j, x, am in reps:
                if x == v and arr < tr <= tend and am >= rthr:
                    if best is None or (tr, j) < best[:2]:
                        best = (tr, j, am)
                    min_h = hops if min_h is None else min(min_h, hops)
                    break
        rows.append(None if best is None else (best[2], best[0], min_h))
    return _ref_hits(len(rows), rows)


def reference_prohibited_destination(index, disb, account_category, category_names=CATEGORY_NAMES,
                                     params=ProhibitedDestinationParams()) -> Hits:  # fmt: skip
    """Pure-Python reference of :func:`detect_prohibited_destination`."""
    out = _edges_by_src(index)
    bad, _ = _prohibited_mask(account_category, category_names, params.categories)
    rows = []
    for d, t0, a in zip(np.asarray(disb.account).tolist(), np.asarray(disb.t0).tolist(),
                        np.asarray(disb.amount).tolist(), strict=True):  # fmt: skip
        thr = max(params.min_amount, ratio_threshold(params.min_amount_ratio, a))
        tend = t0 + _window_ms(params.window_days)
        if params.include_disbursement_account and bad[d]:
            rows.append((a, t0, 0))
            continue
        first = None
        min_h = None
        used = set()
        for v, arr, hops, _ in _ref_chains(out, d, t0, tend, thr, params.max_hops):
            if hops == 0 or v == d or not bad[v]:
                continue
            first = arr if first is None else min(first, arr)
            min_h = hops if min_h is None else min(min_h, hops)
        # amount: transactions from a non-prohibited account u into a prohibited one,
        # u reached within max_hops - 1 hops before the transaction
        reach = _ref_reach(out, d, t0, tend, thr, params.max_hops - 1)
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
    return _ref_hits(len(rows), rows)


def reference_rapid_pass_through(index, disb, params=RapidPassThroughParams()) -> Hits:
    """Pure-Python reference of :func:`detect_rapid_pass_through`."""
    out = _edges_by_src(index)
    within = _hours_ms(params.within_hours)
    ppm = _ppm(params.forward_ratio)
    tip = np.asarray(disb.target_indptr).tolist()
    tid = np.asarray(disb.target_ids).tolist()
    rows = []
    cols = (np.asarray(disb.account).tolist(), np.asarray(disb.t0).tolist(),
            np.asarray(disb.amount).tolist())  # fmt: skip
    for i, (d, t0, a) in enumerate(zip(*cols, strict=True)):
        thr = max(params.min_amount, ratio_threshold(params.min_amount_ratio, a))
        tend = t0 + _window_ms(params.window_days)
        side = set(tid[tip[i] : tip[i + 1]]) if params.exclude_borrower_side else set()
        inflows = {}  # (v, row) -> (t_in, A, fewest hops)
        if params.include_disbursement_account:
            inflows[(d, -1)] = (t0, a, 0)
        for u, arr_u, hops, _ in _ref_chains(out, d, t0, tend, thr, params.max_hops - 1):
            for te, r, v, am in out[u]:
                if not (arr_u < te <= tend and am >= thr):
                    continue
                if v == d and not params.include_disbursement_account:
                    continue
                if v != d and v in side:
                    continue
                old = inflows.get((v, r))
                inflows[(v, r)] = (te, am, hops + 1 if old is None else min(old[2], hops + 1))
        best = None
        min_h = None
        for (v, r), (tin, A, hops) in inflows.items():
            need = -(-ppm * A // _PPM)
            fwd = 0
            done = None
            for te, _, _, am in out[v]:
                if tin < te <= tin + within and am >= params.min_forward_amount:
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
    return _ref_hits(len(rows), rows)


def reference_large_outflow(index, disb, params=LargeOutflowParams()) -> Hits:
    """Pure-Python reference of :func:`detect_large_outflow`."""
    out = _edges_by_src(index)
    within = _hours_ms(params.within_hours)
    rows = []
    for d, t0, a in zip(np.asarray(disb.account).tolist(), np.asarray(disb.t0).tolist(),
                        np.asarray(disb.amount).tolist(), strict=True):  # fmt: skip
        thr = max(params.min_amount, ratio_threshold(params.ratio, a))
        q = [(te, am) for te, _, _, am in out[d] if t0 < te <= t0 + within and am >= thr]
        rows.append((max(am for _, am in q), min(te for te, _ in q), 1) if q else None)
    return _ref_hits(len(rows), rows)


def _ref_cycles(out, s, t_s, tend, thr, lo, hi, blocked, Lmin, Lmax):
    """Every simple temporal cycle from s (first transfer after t_s) as lists of edges."""
    from fractions import Fraction

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
    from fractions import Fraction

    out = _edges_by_src(index)
    lo = Fraction(_ppm(params.amount_ratio_low), _PPM)
    hi = Fraction(_ppm(params.amount_ratio_high), _PPM)
    tip = np.asarray(disb.target_indptr).tolist()
    tid = np.asarray(disb.target_ids).tolist()
    rows = []
    for i, (d, t0, a) in enumerate(zip(np.asarray(disb.account).tolist(), np.asarray(disb.t0).tolist(),
                                       np.asarray(disb.amount).tolist(), strict=True)):  # fmt: skip
        thr = max(params.min_amount, ratio_threshold(params.min_amount_ratio, a))
        tend = t0 + _window_ms(params.window_days)
        blocked = set(tid[tip[i] : tip[i + 1]]) | {d} if params.exclude_borrower_side else set()
        chains = _ref_chains(out, d, t0, tend, thr, params.reach_hops)
        starts = {}
        for v, arr, hops, _ in chains:
            starts.setdefault(v, []).append((arr, hops))
        best = None
        min_h = None
        for s, arrs in starts.items():
            if s in blocked:
                continue
            t_s = min(x for x, _ in arrs)
            cycles = _ref_cycles(
                out, s, t_s, tend, thr, lo, hi, blocked, params.min_hops, params.max_hops
            )
            for c in cycles:
                key = (c[-1][0], len(c), [e[1] for e in c])
                h = min(hh for x, hh in arrs if x < c[0][0])
                min_h = h if min_h is None else min(min_h, h)
                if best is None or key < best[0]:
                    best = (key, min(e[3] for e in c))
        rows.append(None if best is None else (best[1], best[0][0], min_h))
    return _ref_hits(len(rows), rows)
