"""Kernel of the large-outflow detector: single large transfers leaving ``d`` soon after ``t0``.

One binary search into ``d``'s time-sorted out-edges per disbursement; no reach.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from flowgraph.engine.hits import Disbursements


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


def large_outflows(index, disb: Disbursements, thrs: np.ndarray, within: int, K: int
                   ) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Per disbursement, its out-edges with ``t0 < ts <= t0 + within`` and amount at least
    ``thrs[i]``: ``out_res[i]`` = (any, largest amount, first ts, count, largest's
    destination, largest's row) and ``out_rows[i, :K]`` the rows of the first ``K``."""
    acc, t0, _, _, _ = disb.checked(index.n_accounts)
    N = acc.shape[0]
    out_res = np.zeros((N, 6), np.int64)
    out_rows = np.zeros((N, max(K, 1)), np.int64)
    a = index.kernel_arrays
    _outflow_kernel(a[0], a[1], a[2], a[3], a[4], acc, t0, thrs, int(within), int(K), out_res, out_rows)
    return out_res, out_rows
