"""Per-thread scratch arrays of the kernels, and the CSR arrays as kernels read them.

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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import SimpleNamespace

import numba
import numpy as np

from flowgraph.engine.csr import ARRAY_NAMES


class ScratchPool:
    """One cached scratch set per thread, built by ``build(*key)`` (a dict of arrays)."""

    def __init__(self, build: Callable[..., dict[str, np.ndarray]]) -> None:
        self._build = build
        self._local = threading.local()

    @contextmanager
    def borrow(self, *key) -> Iterator[SimpleNamespace]:
        """The scratch set of ``key`` (arrays as attributes), taken back when the block
        ends without an exception."""
        s = getattr(self._local, "cache", None)
        if s is None or s.key != key:
            s = SimpleNamespace(key=key, **self._build(*key))
        self._local.cache = None  # taken: a failing kernel cannot hand back dirty scratch
        yield s
        self._local.cache = s


def read_only(a) -> np.ndarray:
    """Read-only plain-ndarray view: built (writable) and memory-mapped (read-only)
    indexes then share one compiled specialisation of every kernel."""
    v = np.asarray(a).view(np.ndarray)
    v.flags.writeable = False
    return v


def csr_arrays(index) -> tuple[np.ndarray, ...]:
    """The index's forward and reverse CSR arrays, read-only, in the order of
    :data:`~flowgraph.engine.csr.ARRAY_NAMES`."""
    return tuple(read_only(getattr(index, name)) for name in ARRAY_NAMES)


def set_threads(threads: int | None) -> None:
    """``numba.set_num_threads(threads)``, between 1 and numba's maximum (``None``: unchanged)."""
    if threads is not None:
        numba.set_num_threads(max(1, min(int(threads), numba.config.NUMBA_NUM_THREADS)))


def workers_for(n_items: int) -> int:
    """Workers of a parallel kernel over ``n_items`` items: numba's threads, at most one per item."""
    return max(1, min(numba.get_num_threads(), n_items))
