"""Large outflow: most of the loan leaves the disbursement account in one transfer, soon.

Pattern it catches::

    L1 disburses 8 000 000.00 into A_d (day 0, 09:00)
    A_d ─7 500 000.00 (day 1, 08:00)→ A_x        → fires: 94 % in one transfer within 1 day

Closest legitimate look-alike: the same amount paid out in many small pieces (payroll,
several suppliers), or one large payment a week later (outside the 72 hours).

The detector is one binary search per disbursement (:mod:`flowgraph.engine.outflow`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from flowgraph.core.errors import InvalidValue
from flowgraph.core.values import format_amount_grouped, ratio_threshold
from flowgraph.engine.hits import Disbursements, Hits, hop_thresholds, hours_ms
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
        ...within this many hours after the disbursement (``t0 < ts <= t0 + within``).
    max_paths : int
        Example outflows kept (as one-transaction paths).
    """

    ratio: float = param(0.5, 0, 1, "single outflow at least this share of the disbursed amount")
    min_amount: int = param(0, 0, None, "single outflow at least this (minor units)", type="money")
    within_hours: float = param(72.0, 0, 24 * 366, "hours after disbursement")
    max_paths: int = param(10, 0, 10000, "example outflows kept per disbursement")

    def __post_init__(self) -> None:
        check_common_params(self)
        if self.ratio < 0:
            raise InvalidValue("ratio must be >= 0")


Params = LargeOutflowParams


def detect_large_outflow(
    index,
    disb: Disbursements,
    params: LargeOutflowParams = LargeOutflowParams(),
) -> Hits:
    """A single outflow from ``d`` of at least ``max(min_amount, ratio · a)`` soon after ``t0``.

    Looks at ``d``'s out-edges with ``t0 < ts <= t0 + within_hours`` (binary search into the
    time-sorted CSR segment).

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
    from flowgraph.engine.outflow import large_outflows  # numba: compiled on first use

    amt = np.asarray(disb.amount, np.int64)
    K = int(params.max_paths)
    out_res, out_rows = large_outflows(index, disb, hop_thresholds(amt, params.min_amount, params.ratio),
                                       hours_ms(params.within_hours), K)  # fmt: skip
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


def reference_large_outflow(index, disb, params=LargeOutflowParams()) -> Hits:
    """Pure-Python reference of :func:`detect_large_outflow`."""
    out = edges_by_src(index)
    within = hours_ms(params.within_hours)
    rows = []
    for d, t0, a in zip(np.asarray(disb.account).tolist(), np.asarray(disb.t0).tolist(),
                        np.asarray(disb.amount).tolist(), strict=True):  # fmt: skip
        thr = max(params.min_amount, ratio_threshold(params.ratio, a))
        q = [(te, am) for te, _, _, am in out[d] if t0 < te <= t0 + within and am >= thr]
        rows.append((max(am for _, am in q), min(te for te, _ in q), 1) if q else None)
    return Hits.of_rows(rows)


# ------------------------------------------------------------------ in the nightly batch
def reason(ctx, rule: Rule, sel: pl.DataFrame, hits: Hits, i: int, disbursed: int, t0: int) -> str:
    """``'7,500,000.00 (94% of the 8,000,000.00 disbursed) left in one transfer to A_x within 1 day of the disbursement'``."""
    return (f"{format_amount_grouped(int(hits.amount[i]))} ({hits.metric[i]:.0%} of the {format_amount_grouped(disbursed)} disbursed) left "
            f"in one transfer to {account_name(ctx, hits.detail[i]['account'])} {when_text(hits, i, t0)} of the disbursement")


detector_args = disbursement_args  # the disbursements
alerts = runner(detect_large_outflow, detector_args, LargeOutflowParams, reason)
detect = detect_large_outflow
reference = reference_large_outflow
