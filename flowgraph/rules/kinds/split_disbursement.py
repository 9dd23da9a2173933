"""Split disbursement (化整为零): linked borrowers take several loans just below the
entrusted-payment threshold.

Pattern it catches (threshold 5 000 000.00, band 20 %, at least 3 loans in 30 days)::

    P1 ─shareholder─ P2 ─affiliate─ P3        (one borrower group)
    L1 P1 4 800 000.00 day 0,  L2 P2 4 500 000.00 day 10,  L3 P3 4 999 999.99 day 25
                                              → every disbursement of L1, L2, L3 fires

Closest legitimate look-alike: the same three loans spread over three months, loans of
5 200 000.00 (above the threshold: paid by entrusted payment anyway), or three unrelated
borrowers with similar loans (different groups).

No graph kernel: groups come from the party graph (one relation step between
borrowers), runs from a sort by start time (polars).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from flowgraph.core.errors import InvalidValue
from flowgraph.core.values import format_amount_grouped, ratio_threshold
from flowgraph.engine.hits import Hits, window_ms
from flowgraph.rules.findings import runner
from flowgraph.rules.model import Rule, param
from flowgraph.rules.scoring import GENERIC_FEATURES

NAME = "split_disbursement"
FEATURES = GENERIC_FEATURES
# a rule over loans (amounts, borrowers): the disbursement of a loan the store does not
# hold (loaded with a warning) is part of no split
SELECTION = pl.col("loan_known")


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

    threshold: int = param(500_000_000, 1, None, "entrusted-payment threshold (minor units)", type="money")
    band: float = param(0.2, 0, 1, "just below = within this share under the threshold")
    min_loans: int = param(3, 2, 1000, "loans just below the threshold")
    window_days: float = param(30.0, 0, 3660, "days the loans must fit in")

    def __post_init__(self) -> None:
        if self.threshold < 1 or not 0 <= self.band <= 1 or self.min_loans < 2 or self.window_days < 0:
            raise InvalidValue("invalid split-disbursement parameters")

    def low(self) -> int:
        """Smallest amount that is "just below" the threshold."""
        return ratio_threshold(1 - self.band, self.threshold)


Params = SplitDisbursementParams


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
    win = window_ms(params.window_days)
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


def reference_split_disbursement(loan_of_disbursement, loan_borrower, loan_amount, loan_start_ts,
                                 group_of_borrower, params=SplitDisbursementParams()) -> Hits:  # fmt: skip
    """Pure-Python reference of :func:`detect_split_disbursement`: for every start, the
    just-below loans of the group from it (by start, then loan row) to ``window_days``
    later; a loan's run is the largest one containing it (earliest start on ties)."""
    amount = np.asarray(loan_amount).tolist()
    start = np.asarray(loan_start_ts).tolist()
    group = [int(group_of_borrower[b]) for b in np.asarray(loan_borrower).tolist()]
    win = window_ms(params.window_days)
    below = [k for k, a in enumerate(amount) if params.low() <= a < params.threshold]
    rows = []
    for loan in np.asarray(loan_of_disbursement).tolist():
        mates = sorted((start[k], k) for k in below if group[k] == group[loan])
        best = None
        for first in mates:
            run = [m for m in mates if m >= first and m[0] <= first[0] + win]
            key = (len(run), -first[0])
            if len(run) >= params.min_loans and loan in {k for _, k in run} and (best is None or key > best[0]):
                best = (key, run)
        rows.append(None if best is None else (sum(amount[k] for _, k in best[1]), best[1][0][0], -1))
    return Hits.of_rows(rows)


# ------------------------------------------------------------------ in the nightly batch
def _borrower_groups(ctx, borrower_ids: list[str]) -> np.ndarray:
    """Group per borrower: components of borrower–borrower links (one relation step)."""
    pos = {b: i for i, b in enumerate(borrower_ids)}
    parent = list(range(len(borrower_ids)))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for b, i in pos.items():
        for other in ctx.graph.linked_parties([b], 1):
            j = pos.get(other)
            if j is not None:
                ri, rj = find(i), find(j)
                if ri != rj:
                    parent[max(ri, rj)] = min(ri, rj)
    return np.array([find(i) for i in range(len(borrower_ids))], np.int64)


def detector_args(ctx, index, rule: Rule, sel: pl.DataFrame) -> tuple:
    """The detector's inputs from the store: every loan with its start and borrower group
    (a loan without a borrower is a group of its own), and the selected loans."""
    loans = ctx.loans
    loan_row = {lid: i for i, lid in enumerate(ctx.loan_ids)}
    borrowers = sorted(set(loans["borrower_id"].drop_nulls().to_list()))
    b_row = {b: i for i, b in enumerate(borrowers)}
    start = ctx.disb.group_by("loan_id").agg(pl.col("ts").min().alias("start"))
    starts = dict(zip(start["loan_id"].to_list(), start["start"].to_list(), strict=True))
    lb = np.array([b_row.get(b, -1) if b else -1 for b in loans["borrower_id"].to_list()], np.int64)
    keep = lb >= 0
    groups = _borrower_groups(ctx, borrowers)
    # loans without a borrower get their own group each, so they never pool together
    groups_ext = np.concatenate([groups, -1 - np.arange(len(lb), dtype=np.int64)])
    lb_final = np.where(keep, lb, len(groups) + np.arange(len(lb)))
    lt = np.array([starts.get(lid, 0) for lid in ctx.loan_ids], np.int64)
    lod = np.array([loan_row[x] for x in sel["loan_id"].to_list()], np.int64)
    return lod, lb_final, loans["amount"].to_numpy().astype(np.int64), lt, groups_ext


def reason(ctx, rule: Rule, sel: pl.DataFrame, hits: Hits, i: int, disbursed: int, t0: int) -> str:
    """``'3 loans of linked borrowers just below 5,000,000.00 within 30 days (L1, L2, L3), 14,299,999.99 in all'``."""
    d = hits.detail[i]
    p = rule.params
    loans = ", ".join(ctx.loan_ids[x] for x in d["loans"])
    return (f"{d['n_loans']} loans of linked borrowers just below {format_amount_grouped(p['threshold'])} "
            f"within {p['window_days']:g} days ({loans}), {format_amount_grouped(int(hits.amount[i]))} in all")


def score_metric(rule: Rule, loans: float) -> float:
    """The metric feature: the number of loans in the run, 2 × min_loans = full marks."""
    return min(1.0, loans / (2 * rule.params["min_loans"]))


alerts = runner(detect_split_disbursement, detector_args, SplitDisbursementParams, reason, score_metric,
                suppressible=False)  # a rule over loans: no counterparty to suppress
detect = detect_split_disbursement
reference = reference_split_disbursement
