"""Keep the K earliest: a bounded set of the smallest keys seen, for evidence paths.

Detectors find many events per disbursement but keep only ``K`` as evidence: the first
ones in a deterministic order. Each kept event has a key, a row of int64 compared
lexicographically over its first ``width`` columns (e.g. ``(event ts, tie-breaker)``, or
``(last ts, hops, row_1, …, row_h)`` for a flow-back path); columns past ``width`` are the
caller's payload. :func:`offer` keeps ``keys[:n]`` the ``K`` smallest offered so far and
tracks the row of the largest kept one, so an event that cannot enter costs one comparison.

>>> import numpy as np
>>> keys = np.zeros((2, 2), np.int64)
>>> n, worst = 0, -1
>>> for ts in (30, 10, 20):
...     slot, n, worst = offer(keys, n, worst, np.array([ts, 0]), 2)
>>> sort_rows(keys, n, 2)
>>> keys[:n, 0].tolist()
[10, 20]
"""

from __future__ import annotations

from numba import njit


@njit(cache=True, nogil=True)
def key_less(a, b, width):  # pragma: no cover - compiled
    """``a[:width] < b[:width]``, lexicographically."""
    for i in range(width):
        if a[i] != b[i]:
            return a[i] < b[i]
    return False


@njit(cache=True, nogil=True)
def worst_row(keys, n, width):  # pragma: no cover - compiled
    """Row of the largest key among ``keys[:n]`` (the first such row on ties)."""
    worst = 0
    for k in range(1, n):
        if key_less(keys[worst], keys[k], width):
            worst = k
    return worst


@njit(cache=True, nogil=True)
def offer(keys, n, worst, cand, width):  # pragma: no cover - compiled
    """Offer key ``cand`` to the kept ``keys[:n]`` (at most ``K = keys.shape[0]``).

    Returns ``(slot, n, worst)``: the row now holding ``cand[:width]`` (``-1`` when it is
    not among the K smallest; the caller writes its payload there), the new count, and
    the row of the largest kept key (valid once ``n == K``).
    """
    K = keys.shape[0]
    if n < K:
        slot = n
        n += 1
    elif K > 0 and key_less(cand, keys[worst], width):
        slot = worst
    else:
        return -1, n, worst
    for i in range(width):
        keys[slot, i] = cand[i]
    if n == K:
        worst = worst_row(keys, K, width)
    return slot, n, worst


@njit(cache=True, nogil=True)
def offer_event(keys, n, worst, cand, first, second, payload):  # pragma: no cover - compiled
    """:func:`offer` of the event key ``(first, second)`` (``cand`` a 2-slot buffer), with
    ``payload`` in column 2 of its row when kept: the detectors' evidence slots."""
    cand[0] = first
    cand[1] = second
    slot, n, worst = offer(keys, n, worst, cand, 2)
    if slot >= 0:
        keys[slot, 2] = payload
    return slot, n, worst


@njit(cache=True, nogil=True)
def sort_rows(keys, n, width):  # pragma: no cover - compiled
    """Sort ``keys[:n]`` by key, whole rows moving (insertion sort: ``n`` is small)."""
    for i in range(1, n):
        j = i
        while j > 0 and key_less(keys[j], keys[j - 1], width):
            for q in range(keys.shape[1]):
                t = keys[j, q]
                keys[j, q] = keys[j - 1, q]
                keys[j - 1, q] = t
            j -= 1
