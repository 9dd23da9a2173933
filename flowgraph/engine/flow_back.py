"""Flow-back search: its parameters, its results and the two entry points (one, batch).

For one disbursement (receiving account ``d``, amount ``a``, time ``t0``) and the set
``T`` of borrower-linked accounts, a flow-back path is a chain of transactions
``e1 … eh`` (see DESIGN.md, "Core rule: flow-back") such that

1. ``e1`` leaves ``d`` and each ``e(i+1)`` leaves the account ``e(i)`` entered;
2. ``t0 < ts(e1) < … < ts(eh) <= t0 + window`` (equal timestamps do not chain);
3. ``1 <= h <= max_hops``;
4. every amount is ``>= max(min_amount, ratio_threshold(min_amount_ratio, a))``;
5. no account repeats, except that the last account may be ``d`` itself;
6. the last account is in ``T``;
7. some account before the last is not in ``T``;
8. accounts of ``T`` appear only as a leading run from ``d`` and at the end.

The search is an iterative depth-first search over the temporal CSR, with binary search
into each account's time-sorted out-edges and a safe pruning from the target side, in
the spirit of the closing times of 2SCENT [1]_ and the barriers of BC-DFS [2]_: a
bounded backward pass over the reverse CSR computes, for every account ``v`` it reaches
and ``r = 1..Hb`` remaining hops, ``late[v, r]``, the latest time at which a transaction
leaving ``v`` can still start a time-respecting chain of at most ``r`` hops (inside the
window, above the amount threshold) that ends in ``T``. When ``r <= Hb`` hops remain,
the DFS expands only out-edges with ``ts <= late[v, r]`` and enters an account at time
``t`` only if ``late[v, r - 1] > t``. The relaxed chains ignore conditions 5, 7 and 8,
so the pruning never loses a valid path. The backward pass stops at
``Hb = round(0.4 * max_hops)`` levels (2 for 5 hops): the first hops of the DFS run
unpruned and the last ones exactly pruned, a meet in the middle that keeps both
frontiers small (a full-depth backward pass reaches ~10x more accounts on random
graphs and was ~30x slower on 10M edges).

The kernels are in :mod:`flowgraph.engine.flow_back_search`, the returned-amount tracing
in :mod:`flowgraph.engine.flow_back_tracing`, the slow reference written from the
definition in :mod:`flowgraph.engine.flow_back_reference`. This module imports no numba
(the kernels are imported when a search runs), so rule packs can name the parameters
without compiling anything.

>>> import numpy as np
>>> from flowgraph.engine.csr import build_index
>>> idx = build_index(np.array([0, 1], np.int32), np.array([1, 2], np.int32),
...                   np.array([10, 20]), np.array([500, 400]), np.array(["d", "x", "t"]))
>>> res = find_flow_back(idx, 0, 0, 1000, np.array([2]), FlowBackParams())
>>> [p.tolist() for p in res.paths], res.returned_amount
([[0, 1]], 400)

References
----------
.. [1] R. Kumar and T. Calders, "2SCENT: An efficient algorithm for enumerating all
   simple temporal cycles", PVLDB 11(11), 2018 (closing times).
.. [2] Y. Peng, Y. Zhang, X. Lin, W. Zhang, L. Qin and J. Zhou, "Towards bridging
   theory and practice: hop-constrained s-t simple path enumeration", PVLDB 13(4), 2019
   (BC-DFS barriers).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from flowgraph.core.errors import InvalidValue
from flowgraph.core.values import DAY_MS, ratio_threshold
from flowgraph.engine.hits import Disbursements


@dataclass(frozen=True)
class FlowBackParams:
    """Parameters of the flow-back search.

    Attributes
    ----------
    window_ms : int
        Paths must end at most this long after the disbursement (UTC ms).
    max_hops : int
        Longest path, in transactions.
    min_amount : int
        Absolute amount floor per transaction (minor units).
    min_amount_ratio : float
        Relative floor: every transaction must move at least this share of the
        disbursed amount; the threshold is ``max(min_amount, ratio_threshold(ratio, a))``.
    max_paths : int
        Paths kept per disbursement (the first ones in the deterministic order).
    tracing : str
        ``"greedy"`` (default) or ``"maxflow"``.
    max_enumerated : int
        Safety budget of search steps (edges followed) per disbursement; when hit, the
        search stops and the result is marked ``truncated``.
    """

    window_ms: int = 30 * DAY_MS
    max_hops: int = 5
    min_amount: int = 0
    min_amount_ratio: float = 0.1
    max_paths: int = 100
    tracing: str = "greedy"
    max_enumerated: int = 1_000_000

    def __post_init__(self) -> None:
        if self.max_hops < 1:
            raise InvalidValue("max_hops must be >= 1")
        if self.window_ms < 0 or self.min_amount < 0 or self.min_amount_ratio < 0:
            raise InvalidValue("window_ms, min_amount and min_amount_ratio must be >= 0")
        if self.max_paths < 0 or self.max_enumerated < 1:
            raise InvalidValue("max_paths must be >= 0 and max_enumerated >= 1")
        if self.tracing not in ("greedy", "maxflow"):
            raise InvalidValue(f"unknown tracing {self.tracing!r} (greedy or maxflow)")

    def threshold(self, amount: int) -> int:
        """Per-transaction amount floor for a disbursement of ``amount`` minor units.

        >>> FlowBackParams(min_amount=50, min_amount_ratio=0.1).threshold(1001)
        101
        """
        return max(int(self.min_amount), ratio_threshold(self.min_amount_ratio, int(amount)))


@dataclass
class FlowBackResult:
    """Flow-back paths of one disbursement.

    Attributes
    ----------
    paths : list of ndarray of int64
        Transaction rows of each kept path in hop order, at most ``max_paths``, ordered
        by (ts of last hop, hops, rows).
    truncated : bool
        More valid paths existed than were kept, or the search budget was hit.
    path_count : int
        Number of valid paths found (all of them, not just the kept ones).
    returned_amount : int
        Minor units traced back into ``T`` (greedy or maxflow tracing).
    first_return_ts : int or None
        Smallest last-hop ts over all paths; ``None`` when there is no path.
    """

    paths: list[np.ndarray]
    truncated: bool
    path_count: int
    returned_amount: int
    first_return_ts: int | None

    @property
    def min_hops(self) -> int | None:
        """Fewest hops among the kept paths (``None`` if no path)."""
        return min((len(p) for p in self.paths), default=None)


@dataclass
class BatchResult:
    """Columnar results of :func:`find_flow_back_batch` for ``N`` disbursements.

    Attributes
    ----------
    path_indptr : ndarray of int64, shape (N+1,)
        Kept paths of disbursement ``i`` are ``path_indptr[i]:path_indptr[i+1]``.
    hop_indptr : ndarray of int64, shape (P+1,)
        Rows of path ``p`` are ``hop_rows[hop_indptr[p]:hop_indptr[p+1]]``.
    hop_rows : ndarray of int64
        Transaction rows, hop order.
    truncated : ndarray of bool, shape (N,)
    path_count : ndarray of int64, shape (N,)
    returned_amount : ndarray of int64, shape (N,)
    first_return_ts : ndarray of int64, shape (N,)
        ``-1`` where there is no path.
    """

    path_indptr: np.ndarray
    hop_indptr: np.ndarray
    hop_rows: np.ndarray
    truncated: np.ndarray
    path_count: np.ndarray
    returned_amount: np.ndarray
    first_return_ts: np.ndarray

    def __len__(self) -> int:
        return int(self.path_count.shape[0])

    def result(self, i: int) -> FlowBackResult:
        """The :class:`FlowBackResult` of disbursement ``i``."""
        p0, p1 = int(self.path_indptr[i]), int(self.path_indptr[i + 1])
        paths = [
            np.array(self.hop_rows[self.hop_indptr[p] : self.hop_indptr[p + 1]], np.int64)
            for p in range(p0, p1)
        ]
        first = int(self.first_return_ts[i])
        count = int(self.path_count[i])
        return FlowBackResult(
            paths=paths,
            truncated=bool(self.truncated[i]),
            path_count=count,
            returned_amount=int(self.returned_amount[i]),
            first_return_ts=first if count > 0 else None,
        )


def _check_account(index, account: int) -> None:
    if not 0 <= account < index.n_accounts:
        raise ValueError(f"account {account} out of range 0..{index.n_accounts - 1}")


def find_flow_back(
    index,
    account: int,
    t0: int,
    amount: int,
    targets: np.ndarray,
    params: FlowBackParams,
    horizon: int | None = None,
) -> FlowBackResult:
    """Find the flow-back paths of one disbursement.

    Parameters
    ----------
    index : TemporalIndex
    account : int
        Dense id of the receiving account ``d``.
    t0 : int
        Disbursement time, UTC ms.
    amount : int
        Disbursed amount ``a``, minor units.
    targets : ndarray of int
        Dense ids of the borrower-linked accounts ``T`` (``d`` may or may not be one).
    params : FlowBackParams
    horizon : int, optional
        Latest transaction time (inclusive) to look at, e.g. a data cut-off; the search
        uses ``min(t0 + window_ms, horizon)``.

    Returns
    -------
    FlowBackResult

    Notes
    -----
    Backward closing-time pass O(Hb · E_b) over the E_b in-edges (inside the window,
    above the threshold) of the accounts that reach ``T`` within ``Hb`` hops, then a
    DFS whose cost is proportional to the partial paths it explores, each step
    O(log deg) for the binary search; scratch is reset only where touched, so the cost
    does not depend on the graph size. Worst case exponential in ``max_hops`` (bounded
    by ``max_enumerated`` search steps).

    References
    ----------
    .. [1] R. Kumar and T. Calders, "2SCENT: An efficient algorithm for enumerating all
       simple temporal cycles", PVLDB 11(11), 2018.
    .. [2] Y. Peng et al., "Towards bridging theory and practice: hop-constrained s-t
       simple path enumeration", PVLDB 13(4), 2019.

    Examples
    --------
    >>> import numpy as np
    >>> from flowgraph.engine.csr import build_index
    >>> idx = build_index(np.array([0, 1, 1], np.int32), np.array([1, 0, 0], np.int32),
    ...                   np.array([5, 6, 5]), np.array([90, 80, 70]), np.array(["d", "x"]))
    >>> r = find_flow_back(idx, 0, 0, 100, np.array([0]), FlowBackParams())
    >>> [p.tolist() for p in r.paths], r.path_count, r.returned_amount, r.first_return_ts
    ([[0, 1]], 1, 80, 6)
    """
    from flowgraph.engine import flow_back_search  # numba: imported when a search runs

    _check_account(index, int(account))
    targets = np.unique(np.asarray(targets, np.int64))
    if targets.size and (targets[0] < 0 or targets[-1] >= index.n_accounts):
        raise ValueError("target account id out of range")
    tend = int(t0) + int(params.window_ms)
    if horizon is not None:
        tend = min(tend, int(horizon))
    return FlowBackResult(*flow_back_search.search_one(index, int(account), int(t0), int(amount), targets, tend, params))


def find_flow_back_batch(
    index,
    accounts: np.ndarray,
    t0s: np.ndarray,
    amounts: np.ndarray,
    target_indptr: np.ndarray,
    target_ids: np.ndarray,
    params: FlowBackParams,
    threads: int | None = None,
    chunk_elements: int = 1 << 22,
    horizon: np.ndarray | None = None,
) -> BatchResult:
    """Find the flow-back paths of many disbursements in parallel.

    Parameters
    ----------
    index : TemporalIndex
    accounts, t0s, amounts : ndarray, shape (N,)
        Receiving account (dense id), time (UTC ms) and amount of each disbursement.
    target_indptr : ndarray of int64, shape (N+1,)
    target_ids : ndarray of int
        Targets of disbursement ``i`` are ``target_ids[target_indptr[i]:target_indptr[i+1]]``.
    params : FlowBackParams
    threads : int, optional
        ``numba.set_num_threads(threads)`` before the run (capped at the numba maximum).
    chunk_elements : int
        Disbursements are processed in chunks whose path buffers hold at most this many
        int64 (``chunk * max_paths * (max_hops + 2)``).
    horizon : ndarray of int64, shape (N,), optional
        Latest transaction time (inclusive) to look at per disbursement, e.g. the data
        cut-off of a batch run: the search uses ``min(t0 + window_ms, horizon)``.

    Returns
    -------
    BatchResult
        Identical, disbursement by disbursement, to :func:`find_flow_back`.

    Notes
    -----
    Each of W workers (threads running nogil kernels) owns its scratch arrays, O(W · (n · max_hops +
    E)) bytes, and takes every W-th disbursement of a chunk. With ``tracing="maxflow"``
    the returned amounts are recomputed per disbursement that has paths.

    Examples
    --------
    >>> import numpy as np
    >>> from flowgraph.engine.csr import build_index
    >>> idx = build_index(np.array([0, 1], np.int32), np.array([1, 0], np.int32),
    ...                   np.array([5, 6]), np.array([90, 80]), np.array(["d", "x"]))
    >>> b = find_flow_back_batch(idx, np.array([0, 0]), np.array([0, 5]),
    ...                          np.array([100, 100]), np.array([0, 1, 2]),
    ...                          np.array([0, 0]), FlowBackParams())
    >>> b.path_count.tolist(), b.result(0).paths[0].tolist(), b.first_return_ts.tolist()
    ([1, 0], [0, 1], [6, -1])
    """
    from flowgraph.engine import flow_back_search as fbs  # numba: imported when a search runs
    from flowgraph.engine.scratch import set_threads, workers_for

    accounts, t0s, amounts, tindptr, tids = Disbursements(
        accounts, t0s, amounts, target_indptr, target_ids
    ).checked(index.n_accounts)
    N = accounts.shape[0]
    set_threads(threads)
    H = int(params.max_hops)
    K = int(params.max_paths)
    tends = t0s + int(params.window_ms)
    if horizon is not None:
        horizon = np.broadcast_to(np.asarray(horizon, np.int64), (N,))
        tends = np.minimum(tends, horizon)
    tends = np.ascontiguousarray(tends, np.int64)
    if params.min_amount_ratio == 0:
        thrs = np.full(N, int(params.min_amount), np.int64)
    else:
        thrs = np.fromiter((params.threshold(x) for x in amounts.tolist()), np.int64, N)
    chunk = max(1, min(N, int(chunk_elements) // max(1, K * (H + 2))))
    hops_all, rows_all, res_all = fbs.search_batch(
        index, accounts, t0s, amounts, thrs, tends, tindptr, tids, H, K,
        int(params.max_enumerated), workers_for(N), chunk,
    )
    path_indptr = np.zeros(N + 1, np.int64)
    np.cumsum(res_all[:, fbs.R_KEPT], out=path_indptr[1:])
    hop_indptr = np.zeros(hops_all.shape[0] + 1, np.int64)
    np.cumsum(hops_all, out=hop_indptr[1:])
    returned = res_all[:, fbs.R_RETURNED].copy()
    if params.tracing == "maxflow":
        for i in np.flatnonzero(res_all[:, fbs.R_COUNT] > 0).tolist():
            targets = tids[tindptr[i] : tindptr[i + 1]]
            r = find_flow_back(
                index, int(accounts[i]), int(t0s[i]), int(amounts[i]), targets, params,
                horizon=int(tends[i]),
            )
            returned[i] = r.returned_amount
    return BatchResult(
        path_indptr=path_indptr,
        hop_indptr=hop_indptr,
        hop_rows=rows_all,
        truncated=res_all[:, fbs.R_TRUNC].astype(bool),
        path_count=res_all[:, fbs.R_COUNT].copy(),
        returned_amount=returned,
        first_return_ts=res_all[:, fbs.R_FIRST].copy(),
    )


__all__ = [
    "BatchResult",
    "FlowBackParams",
    "FlowBackResult",
    "find_flow_back",
    "find_flow_back_batch",
]
