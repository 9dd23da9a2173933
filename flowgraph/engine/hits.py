"""What a detector reads and returns: :class:`Disbursements` in, :class:`Hits` out.

Every post-loan detector takes plain data (the :class:`~flowgraph.engine.csr.TemporalIndex`,
a columnar :class:`Disbursements` and a frozen params dataclass) and returns a columnar
:class:`Hits`. This module also holds the conversions from rule parameters to kernel
units (days and hours to ms, shares to parts per million, per-hop amount floors). It
imports no numba, so rule kinds can name these types without compiling anything.

Conventions shared by every :class:`Hits`: ``first_ts`` is the earliest time the event
happened, ``hops`` the fewest transactions from ``d`` over all events of the rule (``-1``
where not applicable), ``evidence`` a few example paths as arrays of transaction rows
(``index.row`` values) in event-time order, ``detail`` small JSON-able facts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from flowgraph.core.values import DAY_MS, HOUR_MS, ratio_threshold

PPM = 1_000_000  # shares are passed to kernels as integer parts per million


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
    payee : ndarray of int64, shape (N,), optional
        Dense id of the loan's declared payee (entrusted payment; ``-1`` none). ``None``:
        no disbursement has one.

    Examples
    --------
    >>> d = Disbursements.of([3, 5], [0, 10], [100, 200], [[7, 2], []])
    >>> len(d), d.target_indptr.tolist(), d.target_ids.tolist()
    (2, [0, 2, 2], [2, 7])
    """

    account: np.ndarray
    t0: np.ndarray
    amount: np.ndarray
    target_indptr: np.ndarray
    target_ids: np.ndarray
    payee: np.ndarray | None = None

    def payee_ids(self) -> np.ndarray:
        """The declared payee per disbursement as contiguous int64 (``-1`` where none)."""
        n = len(self)
        if self.payee is None:
            return np.full(n, -1, np.int64)
        p = np.ascontiguousarray(self.payee, np.int64)
        if p.shape != (n,):
            raise ValueError("payee must have one entry per disbursement")
        return p

    def __len__(self) -> int:
        return int(np.asarray(self.account).shape[0])

    @classmethod
    def of(
        cls, account, t0, amount, targets: Sequence[Sequence[int]] | None = None, payee=None
    ) -> Disbursements:
        """Build from plain sequences; ``targets`` is one sequence of dense ids per row,
        ``payee`` one dense id (or -1) per row."""
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
            None if payee is None else np.ascontiguousarray(payee, np.int64),
        )

    def subset(self, pos: np.ndarray) -> Disbursements:
        """The disbursements at positions ``pos`` (in that order)."""
        pos = np.asarray(pos, np.int64)
        tip = np.asarray(self.target_indptr, np.int64)
        tid = np.asarray(self.target_ids, np.int64)
        targets = [tid[tip[i] : tip[i + 1]].tolist() for i in pos.tolist()]
        return Disbursements.of(np.asarray(self.account)[pos], np.asarray(self.t0)[pos],
                                np.asarray(self.amount)[pos], targets,
                                None if self.payee is None else np.asarray(self.payee)[pos])  # fmt: skip

    def checked(self, n_accounts: int) -> tuple[np.ndarray, ...]:
        """``(account, t0, amount, target_indptr, target_ids)`` as contiguous int64,
        after checking lengths and account ids against an index of ``n_accounts``."""
        acc = np.ascontiguousarray(self.account, np.int64)
        t0 = np.ascontiguousarray(self.t0, np.int64)
        amt = np.ascontiguousarray(self.amount, np.int64)
        tip = np.ascontiguousarray(self.target_indptr, np.int64)
        tid = np.ascontiguousarray(self.target_ids, np.int64)
        N = acc.shape[0]
        if not (t0.shape[0] == amt.shape[0] == N and tip.shape[0] == N + 1):
            raise ValueError("account, t0, amount must have length N and target_indptr N+1")
        if N and (acc.min() < 0 or acc.max() >= n_accounts):
            raise ValueError("disbursement account id out of range")
        if tid.size and (tid.min() < 0 or tid.max() >= n_accounts):
            raise ValueError("target account id out of range")
        return acc, t0, amt, tip, tid


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

    @classmethod
    def of_rows(cls, rows: Sequence[tuple[int, int, int] | None]) -> Hits:
        """Hits from one ``(amount, first_ts, hops)`` or ``None`` (not fired) per
        disbursement: how the slow references report.

        >>> Hits.of_rows([None, (5, 9, 2)]).first_ts.tolist()
        [-1, 9]
        """
        h = cls.empty(len(rows))
        for i, r in enumerate(rows):
            if r is not None:
                h.fired[i] = True
                h.amount[i], h.first_ts[i], h.hops[i] = r
        return h

    @classmethod
    def scatter(cls, n: int, parts: Sequence[tuple[np.ndarray, Hits]]) -> Hits:
        """Hits of ``n`` disbursements from parts computed on subsets (positions, hits).

        >>> h = Hits.scatter(3, [(np.array([2]), Hits.of_rows([(5, 9, 1)]))])
        >>> h.fired.tolist(), h.amount.tolist()
        ([False, False, True], [0, 0, 5])
        """
        out = cls.empty(n)
        for pos, h in parts:
            for k, i in enumerate(np.asarray(pos).tolist()):
                out.fired[i], out.metric[i], out.amount[i] = h.fired[k], h.metric[k], h.amount[k]
                out.first_ts[i], out.hops[i] = h.first_ts[k], h.hops[k]
                out.evidence[i], out.detail[i] = h.evidence[k], h.detail[k]
        return out

    def set_share_metric(self, disbursed: np.ndarray) -> None:
        """``metric = amount / disbursed`` where fired (0 for a zero disbursement)."""
        for i in np.flatnonzero(self.fired).tolist():
            a = disbursed[i]
            self.metric[i] = float(self.amount[i]) / float(a) if a else 0.0


# ------------------------------------------------------------------ parameter units
def window_ms(days: float) -> int:
    """Days as whole milliseconds.

    >>> window_ms(0.5)
    43200000
    """
    return int(round(days * DAY_MS))


def hours_ms(hours: float) -> int:
    """Hours as whole milliseconds."""
    return int(round(hours * HOUR_MS))


def to_ppm(share: float) -> int:
    """A share as integer parts per million (the precision of share parameters).

    >>> to_ppm(0.9)
    900000
    """
    return int(round(share * PPM))


def hop_thresholds(amounts: np.ndarray, min_amount: int, ratio: float) -> np.ndarray:
    """Per-hop amount floor of each disbursement: ``max(min_amount, ratio_threshold(ratio, a))``.

    >>> hop_thresholds(np.array([1000, 10]), 50, 0.1).tolist()
    [100, 50]
    """
    return np.fromiter(
        (max(int(min_amount), ratio_threshold(ratio, int(a))) for a in amounts.tolist()),
        np.int64,
        amounts.shape[0],
    )
