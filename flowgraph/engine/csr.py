"""Temporal CSR index: the transfer graph as flat numpy arrays, sorted for time search.

Accounts are dense ``int32`` ids ``0..n-1`` (``account_ids[i]`` is the external id).
The forward CSR holds each account's out-edges sorted by ``(src, ts, row)``; the reverse
CSR holds in-edges sorted by ``(dst, ts, row)``. ``row`` points back into the
transactions table, which is kept sorted by ``tx_id``, so ``row`` order is ``tx_id``
order. The index is persisted as ``.npy`` files and memory-mapped on load.

>>> import numpy as np
>>> idx = build_index(np.array([0, 1, 0], np.int32), np.array([1, 0, 1], np.int32),
...                   np.array([20, 10, 5]), np.array([100, 200, 300]),
...                   np.array(["A", "B"]))
>>> idx.indptr.tolist(), idx.row.tolist(), idx.ts.tolist()
([0, 2, 3], [2, 0, 1], [5, 20, 10])
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numba
import numpy as np
from numba import njit, prange

from flowgraph.core.files import replace_directory

INDEX_FORMAT_VERSION = 1

ARRAY_NAMES = (
    "indptr",
    "dst",
    "ts",
    "amount",
    "row",
    "rindptr",
    "rsrc",
    "rts",
    "ramount",
    "rrow",
)
_DTYPES = {
    "indptr": np.int64,
    "dst": np.int32,
    "ts": np.int64,
    "amount": np.int64,
    "row": np.int64,
    "rindptr": np.int64,
    "rsrc": np.int32,
    "rts": np.int64,
    "ramount": np.int64,
    "rrow": np.int64,
}


def index_digest(index: TemporalIndex) -> str:
    """SHA-256 (hex) of an index's content: its account ids, then every CSR array.

    Two indexes with equal digests hold the same accounts and the same arrays byte for
    byte, whatever built them (``index``, ``index --from-neo4j``) and however they are
    stored. Account ids are hashed as UTF-8, each followed by a NUL byte; each array in
    the order of :data:`ARRAY_NAMES` as its name, then its little-endian bytes at the
    saved dtype.
    """
    h = hashlib.sha256()
    for account in np.asarray(index.account_ids).tolist():
        h.update(str(account).encode() + b"\0")
    for name in ARRAY_NAMES:
        arr = np.ascontiguousarray(getattr(index, name), dtype=np.dtype(_DTYPES[name]).newbyteorder("<"))
        h.update(name.encode() + b"\0")
        h.update(memoryview(arr).cast("B"))
    return h.hexdigest()


@dataclass
class TemporalIndex:
    """Forward and reverse temporal CSR of the transfer graph.

    Attributes
    ----------
    account_ids : ndarray of str
        Dense id -> external account id; dense ids are ``0..n-1``.
    indptr : ndarray of int64, shape (n+1,)
        Out-edges of account ``u`` are positions ``indptr[u]:indptr[u+1]``.
    dst, ts, amount, row : ndarray
        Per out-edge: destination (int32), UTC ms (int64), minor units (int64) and row
        in the transactions table (int64); sorted by ``(src, ts, row)``.
    rindptr, rsrc, rts, ramount, rrow : ndarray
        The reverse CSR (in-edges), sorted by ``(dst, ts, row)``.
    """

    account_ids: np.ndarray
    indptr: np.ndarray
    dst: np.ndarray
    ts: np.ndarray
    amount: np.ndarray
    row: np.ndarray
    rindptr: np.ndarray
    rsrc: np.ndarray
    rts: np.ndarray
    ramount: np.ndarray
    rrow: np.ndarray

    @property
    def n_accounts(self) -> int:
        """Number of accounts (dense ids ``0..n_accounts-1``)."""
        return int(self.indptr.shape[0] - 1)

    @property
    def n_edges(self) -> int:
        """Number of transactions (edges)."""
        return int(self.dst.shape[0])

    def arrays(self) -> tuple[np.ndarray, ...]:
        """The CSR arrays as numpy arrays, in the order of ``ARRAY_NAMES``."""
        return tuple(np.asarray(getattr(self, name)) for name in ARRAY_NAMES)

    @functools.cached_property
    def kernel_arrays(self) -> tuple[np.ndarray, ...]:
        """The CSR arrays as the search kernels take them, in the order of ``ARRAY_NAMES``:
        read-only plain ndarrays, so built (writable) and memory-mapped (read-only) indexes
        share one compiled specialisation of every kernel. Made once per index."""
        out = []
        for name in ARRAY_NAMES:
            v = np.asarray(getattr(self, name)).view(np.ndarray)
            v.flags.writeable = False
            out.append(v)
        return tuple(out)

    def edge_src(self) -> np.ndarray:
        """Source account of every forward-CSR position (int32, computed, O(E))."""
        return np.repeat(
            np.arange(self.n_accounts, dtype=np.int32), np.diff(np.asarray(self.indptr))
        )


# --------------------------------------------------------------------------- kernels


@njit(cache=True, nogil=True)
def _hist_range(key, lo, hi, hist_row):  # pragma: no cover - compiled
    for i in range(lo, hi):
        hist_row[key[i]] += 1


@njit(cache=True, nogil=True)
def _offsets(hist, n_keys):  # pragma: no cover - compiled
    """Turn per-chunk histograms into per-chunk write offsets; return the indptr."""
    n_chunks = hist.shape[0]
    indptr = np.zeros(n_keys + 1, np.int64)
    total = 0
    for k in range(n_keys):
        indptr[k] = total
        for c in range(n_chunks):
            cnt = hist[c, k]
            hist[c, k] = total
            total += cnt
    indptr[n_keys] = total
    return indptr


@njit(cache=True, nogil=True)
def _scatter_range(key, other, ts, amount, lo, hi, hist_row, buf):  # pragma: no cover
    """Scatter rows lo..hi-1 into 4-int64 records (one cache line touched per edge)."""
    for i in range(lo, hi):
        k = key[i]
        p = hist_row[k]
        hist_row[k] = p + 1
        buf[p, 0] = ts[i]
        buf[p, 1] = i
        buf[p, 2] = other[i]
        buf[p, 3] = amount[i]


@njit(cache=True, nogil=True)
def _sort_segment(buf, lo, hi):  # pragma: no cover - compiled
    """Stable sort of records lo..hi-1 by ts (equal ts keep row order); no-op if sorted."""
    ordered = True
    for j in range(lo + 1, hi):
        if buf[j, 0] < buf[j - 1, 0]:
            ordered = False
            break
    if ordered:
        return
    if hi - lo <= 48:
        for j in range(lo + 1, hi):
            t = buf[j, 0]
            r = buf[j, 1]
            ot = buf[j, 2]
            am = buf[j, 3]
            q = j - 1
            while q >= lo and buf[q, 0] > t:
                buf[q + 1, 0] = buf[q, 0]
                buf[q + 1, 1] = buf[q, 1]
                buf[q + 1, 2] = buf[q, 2]
                buf[q + 1, 3] = buf[q, 3]
                q -= 1
            buf[q + 1, 0] = t
            buf[q + 1, 1] = r
            buf[q + 1, 2] = ot
            buf[q + 1, 3] = am
        return
    order = np.argsort(buf[lo:hi, 0], kind="mergesort")
    seg = buf[lo:hi].copy()
    for j in range(hi - lo):
        q = order[j]
        for f in range(4):
            buf[lo + j, f] = seg[q, f]


@njit(cache=True, nogil=True)
def _split_range(buf, lo, hi, o_ts, o_row, o_other, o_amount):  # pragma: no cover
    for j in range(lo, hi):
        o_ts[j] = buf[j, 0]
        o_row[j] = buf[j, 1]
        o_other[j] = buf[j, 2]
        o_amount[j] = buf[j, 3]


@njit(cache=True, nogil=True, parallel=True)
def _csr_parallel(key, other, ts, amount, n_keys, n_chunks):  # pragma: no cover - compiled
    """Parallel stable counting sort by ``key`` into CSR order, then sort segments by ts.

    Chunk ``c`` of the input gets its own histogram, so chunks write disjoint ranges and
    input order (= row order) is kept inside every key.
    """
    m = key.shape[0]
    step = (m + n_chunks - 1) // n_chunks
    hist = np.zeros((n_chunks, n_keys), np.int64)
    for c in prange(n_chunks):
        _hist_range(key, min(c * step, m), min(c * step + step, m), hist[c])
    indptr = _offsets(hist, n_keys)
    buf = np.empty((m, 4), np.int64)
    for c in prange(n_chunks):
        _scatter_range(key, other, ts, amount, min(c * step, m), min(c * step + step, m),
                       hist[c], buf)  # fmt: skip
    for s in prange(n_keys):
        _sort_segment(buf, indptr[s], indptr[s + 1])
    o_row = np.empty(m, np.int64)
    o_other = np.empty(m, np.int32)
    o_ts = np.empty(m, np.int64)
    o_amount = np.empty(m, np.int64)
    for c in prange(n_chunks):
        _split_range(buf, min(c * step, m), min(c * step + step, m), o_ts, o_row, o_other,
                     o_amount)  # fmt: skip
    return indptr, o_other, o_ts, o_amount, o_row


@njit(cache=True, nogil=True)
def _csr_serial(key, other, ts, amount, n_keys):  # pragma: no cover - compiled
    """Same as :func:`_csr_parallel` on one thread (no thread-pool start-up cost)."""
    m = key.shape[0]
    hist = np.zeros((1, n_keys), np.int64)
    _hist_range(key, 0, m, hist[0])
    indptr = _offsets(hist, n_keys)
    buf = np.empty((m, 4), np.int64)
    _scatter_range(key, other, ts, amount, 0, m, hist[0], buf)
    for s in range(n_keys):
        _sort_segment(buf, indptr[s], indptr[s + 1])
    o_row = np.empty(m, np.int64)
    o_other = np.empty(m, np.int32)
    o_ts = np.empty(m, np.int64)
    o_amount = np.empty(m, np.int64)
    _split_range(buf, 0, m, o_ts, o_row, o_other, o_amount)
    return indptr, o_other, o_ts, o_amount, o_row


PARALLEL_MIN_EDGES = 200_000


def _one_side(key, other, ts, amount, n):
    threads = numba.get_num_threads()
    if threads == 1 or key.shape[0] < PARALLEL_MIN_EDGES:
        return _csr_serial(key, other, ts, amount, n)
    return _csr_parallel(key, other, ts, amount, n, threads)


# --------------------------------------------------------------------------- public


def build_index(
    src: np.ndarray,
    dst: np.ndarray,
    ts: np.ndarray,
    amount: np.ndarray,
    account_ids: np.ndarray,
) -> TemporalIndex:
    """Build the forward and reverse temporal CSR from edge arrays.

    Parameters
    ----------
    src, dst : array_like of int
        Dense account ids (``0 <= id < len(account_ids)``) of each transaction.
    ts : array_like of int64
        UTC milliseconds.
    amount : array_like of int64
        Minor units.
    account_ids : array_like of str
        External account id of each dense id.

    Returns
    -------
    TemporalIndex
        ``row`` / ``rrow`` are positions in the input arrays.

    Notes
    -----
    A stable counting sort by account (O(E + n)), then a stable merge sort by ``ts``
    inside each account's segment (skipped when already ordered), in parallel over
    accounts: O(E log d_max) worst case, about O(E) for time-ordered input.

    Examples
    --------
    >>> import numpy as np
    >>> idx = build_index(np.array([1, 0], np.int32), np.array([0, 1], np.int32),
    ...                   np.array([7, 9]), np.array([5, 6]), np.array(["x", "y"]))
    >>> idx.n_accounts, idx.n_edges, idx.rrow.tolist()
    (2, 2, [0, 1])
    """
    src = np.ascontiguousarray(src, dtype=np.int32)
    dst = np.ascontiguousarray(dst, dtype=np.int32)
    ts = np.ascontiguousarray(ts, dtype=np.int64)
    amount = np.ascontiguousarray(amount, dtype=np.int64)
    account_ids = np.asarray(account_ids)
    if account_ids.dtype.kind != "U":
        account_ids = account_ids.astype(str)
    n = int(account_ids.shape[0])
    m = src.shape[0]
    if not (dst.shape[0] == ts.shape[0] == amount.shape[0] == m):
        raise ValueError("src, dst, ts and amount must have the same length")
    if m and (
        int(src.min()) < 0 or int(dst.min()) < 0 or int(src.max()) >= n or int(dst.max()) >= n
    ):
        raise ValueError("account id out of range 0..len(account_ids)-1")
    indptr, f_dst, f_ts, f_amount, f_row = _one_side(src, dst, ts, amount, n)
    rindptr, r_src, r_ts, r_amount, r_row = _one_side(dst, src, ts, amount, n)
    return TemporalIndex(
        account_ids=account_ids,
        indptr=indptr,
        dst=f_dst,
        ts=f_ts,
        amount=f_amount,
        row=f_row,
        rindptr=rindptr,
        rsrc=r_src,
        rts=r_ts,
        ramount=r_amount,
        rrow=r_row,
    )


def save_index(index: TemporalIndex, directory: Path, meta: dict) -> None:
    """Write the index as ``.npy`` files plus ``meta.json``, replacing ``directory``.

    The files are written into a temporary sibling directory which is then renamed into
    place, so a crash while writing leaves the previous index untouched.

    Parameters
    ----------
    index : TemporalIndex
    directory : Path
        Target directory (created or replaced).
    meta : dict
        JSON-serialisable metadata (e.g. data snapshot id); ``n_accounts``, ``n_edges``
        and ``format_version`` are added.

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> idx = build_index(np.array([0], np.int32), np.array([1], np.int32),
    ...                   np.array([1]), np.array([2]), np.array(["a", "b"]))
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     save_index(idx, Path(tmp) / "index", {"snapshot": "s1"})
    ...     back, meta = load_index(Path(tmp) / "index")
    ...     (back.n_edges, meta["snapshot"])
    (1, 's1')
    """
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    full_meta = dict(meta)
    full_meta.update(
        format_version=INDEX_FORMAT_VERSION,
        n_accounts=index.n_accounts,
        n_edges=index.n_edges,
    )
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.tmp-", dir=directory.parent))
    try:
        ids = np.asarray(index.account_ids)
        if ids.dtype.kind != "U":
            ids = ids.astype(str)
        arrays = {"account_ids": ids}
        for name in ARRAY_NAMES:
            arrays[name] = np.ascontiguousarray(getattr(index, name), dtype=_DTYPES[name])
        for name, arr in arrays.items():
            with open(tmp / f"{name}.npy", "wb") as fh:
                np.save(fh, arr, allow_pickle=False)
                fh.flush()
                os.fsync(fh.fileno())
        with open(tmp / "meta.json", "w", encoding="utf-8") as fh:
            json.dump(full_meta, fh, indent=2, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        replace_directory(tmp, directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def load_index(directory: Path) -> tuple[TemporalIndex, dict]:
    """Memory-map an index written by :func:`save_index`.

    Parameters
    ----------
    directory : Path

    Returns
    -------
    (TemporalIndex, dict)
        The index (arrays are read-only ``np.memmap``) and its metadata.

    Notes
    -----
    O(1) in the number of edges: only headers are read; pages load on first touch.
    """
    directory = Path(directory)
    with open(directory / "meta.json", encoding="utf-8") as fh:
        meta = json.load(fh)
    if meta.get("format_version") != INDEX_FORMAT_VERSION:
        raise ValueError(
            f"index format {meta.get('format_version')!r} not supported "
            f"(expected {INDEX_FORMAT_VERSION}); rebuild the index"
        )
    arrays = {
        name: np.load(directory / f"{name}.npy", mmap_mode="r", allow_pickle=False)
        for name in ("account_ids", *ARRAY_NAMES)
    }
    return TemporalIndex(**arrays), meta


__all__ = ["TemporalIndex", "build_index", "index_digest", "save_index", "load_index"]
