"""Per-thread scratch arrays of the kernels, and the threads that run kernel workers.

A kernel family declares its scratch once, as a function of a key (workers, accounts,
hops, ...) that returns named arrays, and borrows them from its :class:`ScratchPool`:

>>> import numpy as np
>>> pool = ScratchPool(lambda workers, n: {"seen": np.zeros((workers, n), np.uint8)})
>>> with pool.borrow(1, 4) as s:
...     s.seen.shape
(1, 4)
>>> with pool.borrow(1, 4) as again:
...     again is s  # handed back clean by the kernel: reused
True

Kernels leave scratch clean (they reset only what they touched), so a set is reused as
long as the key is the same. A set whose kernel raised is not handed back: the next
borrow builds a fresh one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import numba
import numpy as np


class ScratchPool:
    """One cached scratch set per thread, built by ``build(*key)`` (a dict of arrays)."""

    def __init__(self, build: Callable[..., dict[str, np.ndarray]]) -> None:
        self._build = build
        self._local = threading.local()

    def borrow(self, *key) -> _Borrowed:
        """The scratch set of ``key`` (arrays as attributes) for a ``with`` block, taken
        back when the block ends without an exception."""
        return _Borrowed(self, key)


class _Borrowed:
    """``with pool.borrow(*key) as s``: a plain class, as cheap as a context can be (single
    searches take tens of microseconds)."""

    __slots__ = ("_pool", "_key", "_set")

    def __init__(self, pool: ScratchPool, key: tuple) -> None:
        self._pool, self._key, self._set = pool, key, None

    def __enter__(self) -> SimpleNamespace:
        local = self._pool._local
        s = getattr(local, "cache", None)
        if s is None or s.key != self._key:
            s = SimpleNamespace(key=self._key, **self._pool._build(*self._key))
        local.cache = None  # taken: a failing kernel cannot hand back dirty scratch
        self._set = s
        return s

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self._pool._local.cache = self._set


def set_threads(threads: int | None) -> None:
    """``numba.set_num_threads(threads)``, between 1 and numba's maximum (``None``: unchanged)."""
    if threads is not None:
        numba.set_num_threads(max(1, min(int(threads), numba.config.NUMBA_NUM_THREADS)))


def workers_for(n_items: int) -> int:
    """Workers of a parallel kernel over ``n_items`` items: numba's threads, at most one per item."""
    return max(1, min(numba.get_num_threads(), n_items))


def run_workers(worker: Callable, workers: int, *args) -> None:
    """``worker(w, *args)`` for ``w = 0 .. workers-1``, each on its own thread.

    Workers are kernels compiled with ``nogil=True``, so the threads run in parallel; each
    owns row ``w`` of its scratch and writes only its own items. One worker runs inline.
    (Threads rather than numba's ``prange``: a ``parallel=True`` kernel costs tens of
    milliseconds to load from numba's cache in every process, per kernel.)
    """
    if workers == 1:
        worker(0, *args)
        return
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for done in [pool.submit(worker, w, *args) for w in range(workers)]:
            done.result()
