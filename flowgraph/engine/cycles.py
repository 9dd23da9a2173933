"""Transfer cycles: hop-bounded simple cycles in a directed transfer multigraph.

A *transfer cycle* is money leaving an account and coming back to it through
``min_hops``..``max_hops`` distinct accounts (a simple cycle).  Two optional
constraints narrow it to patterns that look like fund flow-back:

* an **amount-ratio band** ``(lo, hi)``: every consecutive pair of transfers
  ``x`` then ``y`` along the cycle, the closing pair included, satisfies
  ``lo * x <= y <= hi * x`` (compared exactly, never in floating point);
* **time-respecting** order (``temporal=True``): the transfers can be read in
  cycle order, starting at one of them, with strictly increasing timestamps,
  and the whole cycle fits in ``window_ms``.

The enumerator is an iterative depth-first search compiled with numba.  It uses
the classic tricks of the 2020 Huawei CodeCraft fund-transfer-cycle contest:
a cycle is only searched from its smallest vertex, and for every start vertex
the vertices that can reach it in at most three hops (backwards) are marked
first, so the last three hops of every path are pruned to those vertices.

>>> import numpy as np
>>> src = np.array([0, 1, 2, 2, 3])
>>> dst = np.array([1, 2, 0, 3, 0])
>>> find_cycles(src, dst)
[(0, 1, 2), (0, 1, 2, 3)]
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import numpy as np
from numba import njit

from flowgraph.core.errors import InvalidValue
from flowgraph.core.values import parse_ts

__all__ = [
    "EdgeList",
    "read_edge_list",
    "find_cycles",
    "find_cycles_capped",
    "find_cycles_in_edge_list",
    "cycles_to_text",
]

_INT_RE = re.compile(r"^-?\d+$")
_AMOUNT_RE = re.compile(r"^-?\d+(?:\.\d+)?$")
_INT64_SAFE = 2**62
_PARALLEL_MIN_EDGES = 20_000


# --------------------------------------------------------------------------- input


@dataclass(frozen=True)
class EdgeList:
    """Transfers read from a plain ``from,to,amount[,ts]`` file.

    Attributes
    ----------
    src, dst : numpy.ndarray
        Account labels (``str`` objects), one per transfer.
    amount : numpy.ndarray
        ``int64`` amounts in units of ``1 / amount_scale`` (cents by default).
    ts : numpy.ndarray or None
        ``int64`` UTC epoch milliseconds, or ``None`` when the file has no
        fourth column.
    amount_scale : int
        Units per whole amount: ``100`` unless some amount has more than two
        decimals, then ``10 ** decimals`` so that every amount stays exact.
    """

    src: np.ndarray
    dst: np.ndarray
    amount: np.ndarray
    ts: np.ndarray | None = None
    amount_scale: int = 100

    def __len__(self) -> int:
        return len(self.src)

    def labels(self) -> list[str]:
        """Distinct account labels in dense-id order.

        Numeric order when every label is an integer, string order otherwise,
        so that sorting cycles by dense ids equals sorting them by labels.
        """
        distinct = set(self.src.tolist()) | set(self.dst.tolist())
        if all(_INT_RE.match(x) for x in distinct):
            return sorted(distinct, key=lambda x: (int(x), x))
        return sorted(distinct)

    def to_dense(self) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """Dense ``int64`` ids ``0..n-1`` for ``src`` and ``dst``, and the labels.

        Returns
        -------
        src, dst : numpy.ndarray
            Dense ids, ``labels[src[i]]`` is the i-th transfer's source label.
        labels : list of str
            Labels in dense order (see :meth:`labels`).
        """
        labels = self.labels()
        index = {label: i for i, label in enumerate(labels)}
        src = np.fromiter((index[x] for x in self.src), dtype=np.int64, count=len(self.src))
        dst = np.fromiter((index[x] for x in self.dst), dtype=np.int64, count=len(self.dst))
        return src, dst, labels


def read_edge_list(path: str | os.PathLike[str]) -> EdgeList:
    """Read a headerless ``from,to,amount[,ts]`` transfer file.

    Parameters
    ----------
    path : str or path-like
        Text file, one transfer per line.  Blank lines are skipped.  Account
        ids are kept as text labels.  ``amount`` is a non-exponent decimal;
        ``ts`` (optional, all lines or none) is epoch milliseconds or ISO-8601
        (see :func:`flowgraph.core.values.parse_ts`).

    Returns
    -------
    EdgeList
        Amounts as exact ``int64`` minor units (cents, or a finer power of ten
        when some amount has more than two decimals).

    Raises
    ------
    ValueError
        On a malformed line, naming the line number.

    Examples
    --------
    >>> import tempfile, os
    >>> with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
    ...     _ = f.write("1,2,10.5\\n2,1,3\\n")
    >>> edges = read_edge_list(f.name); os.unlink(f.name)
    >>> edges.src.tolist(), edges.amount.tolist(), edges.amount_scale
    (['1', '2'], [1050, 300], 100)
    """
    src: list[str] = []
    dst: list[str] = []
    amounts: list[str] = []
    stamps: list[str] = []
    ncols = None
    text = Path(path).read_text(encoding="utf-8-sig")
    for lineno, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        parts = [p.strip() for p in line.split(",")]
        if len(parts) not in (3, 4) or (ncols is not None and len(parts) != ncols):
            raise InvalidValue(f"{path}:{lineno}: expected from,to,amount[,ts], got {line!r}")
        ncols = len(parts)
        if not parts[0] or not parts[1]:
            raise InvalidValue(f"{path}:{lineno}: empty account id in {line!r}")
        if not _AMOUNT_RE.match(parts[2]):
            raise InvalidValue(f"{path}:{lineno}: unparsable amount {parts[2]!r}")
        src.append(parts[0])
        dst.append(parts[1])
        amounts.append(parts[2])
        if ncols == 4:
            stamps.append(parts[3])
    decimals = max((len(a.partition(".")[2]) for a in amounts), default=0)
    places = max(2, decimals)
    scale = 10**places
    if decimals:
        minor = [int(Decimal(a).scaleb(places)) for a in amounts]
    else:
        minor = [int(a) * scale for a in amounts]
    amount = np.array(minor, dtype=np.int64)
    ts = None
    if ncols == 4:
        try:
            ts = np.array([parse_ts(s) for s in stamps], dtype=np.int64)
        except ValueError as exc:
            raise InvalidValue(f"{path}: {exc}") from None
    return EdgeList(
        src=np.array(src, dtype=object),
        dst=np.array(dst, dtype=object),
        amount=amount,
        ts=ts,
        amount_scale=scale,
    )


# --------------------------------------------------------------------------- kernel


@njit(cache=True, nogil=True)
def _lower_bound(arr, lo, hi, x):  # pragma: no cover - compiled
    """First index in ``arr[lo:hi]`` (sorted) with ``arr[i] >= x``."""
    while lo < hi:
        mid = (lo + hi) >> 1
        if arr[mid] < x:
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit(cache=True, nogil=True)
def _cycles_kernel(
    n,
    indptr,
    nbr,
    eamt,
    ets,
    rindptr,
    rnbr,
    starts,
    min_hops,
    max_hops,
    use_ratio,
    lo_num,
    lo_den,
    hi_num,
    hi_den,
    use_ts,
    window,
):  # pragma: no cover - compiled
    """Enumerate cycles whose smallest vertex is in ``starts``.

    Forward CSR ``indptr/nbr`` (edges sorted by destination, one entry per
    edge, ``eamt``/``ets`` per edge); reverse CSR ``rindptr/rnbr`` with
    distinct predecessors.  Returns ``(flat, lengths)``: the vertices of all
    cycles concatenated, and each cycle's length.
    """
    onpath = np.zeros(n, dtype=np.bool_)
    stamp = np.full(n, -1, dtype=np.int64)
    dist = np.zeros(n, dtype=np.int8)
    queue = np.empty(n, dtype=np.int64)

    depth_cap = max_hops + 1
    path = np.empty(depth_cap, dtype=np.int64)
    ptr = np.empty(depth_cap, dtype=np.int64)
    end = np.empty(depth_cap, dtype=np.int64)
    inedge = np.full(depth_cap, -1, dtype=np.int64)
    ndesc = np.zeros(depth_cap, dtype=np.int64)
    tmin = np.zeros(depth_cap, dtype=np.int64)
    tmax = np.zeros(depth_cap, dtype=np.int64)

    cap = 1024
    flat = np.empty(cap, dtype=np.int64)
    nflat = 0
    lcap = 256
    lengths = np.empty(lcap, dtype=np.int64)
    ncyc = 0

    for si in range(starts.shape[0]):
        s = starts[si]
        if indptr[s] == indptr[s + 1] or rindptr[s] == rindptr[s + 1]:
            continue
        # ---- backward BFS: dist[v] = hops from v to s (<= 3) via vertices > s
        stamp[s] = s
        dist[s] = 0
        qh = 0
        qt = 0
        queue[qt] = s
        qt += 1
        while qh < qt:
            u = queue[qh]
            qh += 1
            du = dist[u]
            if du >= 3:
                continue
            k0 = _lower_bound(rnbr, rindptr[u], rindptr[u + 1], s + 1)
            for k in range(k0, rindptr[u + 1]):
                p = rnbr[k]
                if stamp[p] != s:
                    stamp[p] = s
                    dist[p] = du + 1
                    queue[qt] = p
                    qt += 1
        # ---- iterative DFS over edges
        d = 0
        path[0] = s
        ptr[0] = _lower_bound(nbr, indptr[s], indptr[s + 1], s)
        end[0] = indptr[s + 1]
        inedge[0] = -1
        ndesc[0] = 0
        onpath[s] = True
        while d >= 0:
            if ptr[d] >= end[d]:
                onpath[path[d]] = False
                d -= 1
                continue
            e = ptr[d]
            ptr[d] += 1
            v = nbr[e]
            if v == s:
                # the forward lists start at s, so v == s is the closing edge
                if d + 1 < min_hops:
                    continue
            elif stamp[v] != s and d + 1 + 3 >= max_hops:
                # v cannot reach s within the remaining (<= 3) hops
                continue
            elif onpath[v]:
                continue
            elif stamp[v] == s and d + 1 + dist[v] > max_hops:
                continue
            pe = inedge[d]
            if use_ratio and pe >= 0:
                x = eamt[pe]
                y = eamt[e]
                if lo_num * x > lo_den * y or hi_den * y > hi_num * x:
                    continue
            nd = 0
            mn = 0
            mx = 0
            if use_ts:
                t = ets[e]
                if pe >= 0:
                    nd = ndesc[d]
                    if t <= ets[pe]:
                        nd += 1
                        if nd > 1:
                            continue
                    mn = min(tmin[d], t)
                    mx = max(tmax[d], t)
                    if window >= 0 and mx - mn > window:
                        continue
                else:
                    mn = t
                    mx = t
            if v == s:
                e0 = inedge[1] if d >= 1 else e
                if use_ratio:
                    x = eamt[e]
                    y = eamt[e0]
                    if lo_num * x > lo_den * y or hi_den * y > hi_num * x:
                        continue
                if use_ts and ets[e0] <= ets[e]:
                    if nd + 1 > 1:
                        continue
                # emit path[0..d]
                k = d + 1
                if nflat + k > cap:
                    while nflat + k > cap:
                        cap *= 2
                    grown = np.empty(cap, dtype=np.int64)
                    grown[:nflat] = flat[:nflat]
                    flat = grown
                if ncyc + 1 > lcap:
                    lcap *= 2
                    grown_l = np.empty(lcap, dtype=np.int64)
                    grown_l[:ncyc] = lengths[:ncyc]
                    lengths = grown_l
                for i in range(k):
                    flat[nflat + i] = path[i]
                nflat += k
                lengths[ncyc] = k
                ncyc += 1
                continue
            if d + 1 >= max_hops:
                continue
            d += 1
            path[d] = v
            inedge[d] = e
            ndesc[d] = nd
            tmin[d] = mn
            tmax[d] = mx
            ptr[d] = _lower_bound(nbr, indptr[v], indptr[v + 1], s)
            end[d] = indptr[v + 1]
            onpath[v] = True
        onpath[s] = False
    return flat[:nflat].copy(), lengths[:ncyc].copy()


# --------------------------------------------------------------------------- helpers


def _as_fraction(x) -> Fraction:
    """Exact decimal value of a ratio bound: ``0.2`` means 1/5, not the float."""
    if isinstance(x, Fraction):
        return x
    if isinstance(x, float):
        if not np.isfinite(x):
            raise InvalidValue(f"ratio bound must be finite, got {x!r}")
        return Fraction(repr(x))
    return Fraction(Decimal(str(x)))


def _validate(n_edges, amount, ts, min_hops, max_hops, amount_ratio, window_ms, temporal):
    if min_hops < 2:
        raise InvalidValue(f"min_hops must be >= 2, got {min_hops}")
    if max_hops < min_hops:
        raise InvalidValue(f"max_hops ({max_hops}) must be >= min_hops ({min_hops})")
    if amount_ratio is not None:
        if amount is None:
            raise InvalidValue("amount_ratio needs amount")
        lo, hi = (_as_fraction(b) for b in amount_ratio)
        if lo < 0 or hi < lo:
            raise InvalidValue(f"amount_ratio must satisfy 0 <= lo <= hi, got {amount_ratio!r}")
    if temporal and ts is None:
        raise InvalidValue("temporal=True needs ts")
    if window_ms is not None and not temporal:
        raise InvalidValue("window_ms only applies with temporal=True")
    if window_ms is not None and window_ms < 0:
        raise InvalidValue(f"window_ms must be >= 0, got {window_ms}")
    for name, arr in (("amount", amount), ("ts", ts)):
        if arr is not None and len(arr) != n_edges:
            raise ValueError(f"{name} has {len(arr)} entries for {n_edges} edges")


def _unique_rows(rows: np.ndarray) -> np.ndarray:
    """Rows of a 2-d integer array, sorted lexicographically, without repeats."""
    if rows.shape[0] <= 1:
        return rows
    if rows.shape[1] == 2 and rows.min() >= 0 and rows.max() < 2**31:
        key = np.unique((rows[:, 0] << 32) | rows[:, 1])  # one sort of packed pairs
        return np.stack([key >> 32, key & 0xFFFFFFFF], axis=1)
    rows = rows[np.lexsort(rows.T[::-1])]
    keep = np.ones(rows.shape[0], dtype=bool)
    keep[1:] = np.any(rows[1:] != rows[:-1], axis=1)
    return rows[keep]


def _sort_cycles(flat: np.ndarray, lengths: np.ndarray) -> list[tuple[int, ...]]:
    """Group by length, sort rows lexicographically, drop parallel-edge repeats."""
    out: list[tuple[int, ...]] = []
    if lengths.size == 0:
        return out
    offsets = np.zeros(lengths.size + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    for k in np.flatnonzero(np.bincount(lengths)):
        starts = offsets[:-1][lengths == k]
        rows = flat[starts[:, None] + np.arange(k)[None, :]]
        out.extend(map(tuple, _unique_rows(rows).tolist()))
    return out


# --------------------------------------------------------------------------- public


def find_cycles(
    src,
    dst,
    amount=None,
    ts=None,
    *,
    min_hops: int = 3,
    max_hops: int = 7,
    amount_ratio: tuple[float, float] | None = None,
    window_ms: int | None = None,
    temporal: bool = False,
    n_threads: int | None = None,
) -> list[tuple[int, ...]]:
    """All simple cycles of ``min_hops``..``max_hops`` transfers.

    Parameters
    ----------
    src, dst : array_like of int
        Dense account ids ``0..n-1``, one entry per transfer.  Parallel
        transfers are allowed; self loops are ignored.
    amount : array_like of int, optional
        Integer amounts (minor units), needed for ``amount_ratio``.
    ts : array_like of int, optional
        Timestamps (epoch ms), needed for ``temporal``.
    min_hops, max_hops : int
        Inclusive bounds on the number of transfers (= accounts) in a cycle;
        ``2 <= min_hops <= max_hops``.
    amount_ratio : (lo, hi), optional
        Every consecutive pair of transfers ``x`` then ``y`` in cycle order,
        the closing pair (last, first) included, must satisfy
        ``lo * x <= y <= hi * x``.  Floats are read as the decimal they print
        as (``0.2`` is exactly 1/5) and compared with integer
        cross-multiplication, so the test is exact.
    window_ms : int, optional
        With ``temporal``: ``ts(last) - ts(first) <= window_ms``.  ``None``
        means unbounded.  Only valid with ``temporal=True``.
    temporal : bool
        Require a time-respecting cycle: for the cycle's transfers
        ``e_0 .. e_{k-1}`` (``e_i`` goes from the i-th to the (i+1)-th account,
        cyclically) there is a rotation ``j`` such that
        ``ts(e_j) < ts(e_{j+1}) < ... < ts(e_{j+k-1})`` (indices mod ``k``),
        i.e. exactly one cyclically consecutive pair is not increasing, and
        ``ts(e_{j+k-1}) - ts(e_j) <= window_ms``.  Equivalently the money can
        travel the whole cycle once, starting at any account, in strictly
        increasing time within the window.
    n_threads : int, optional
        Worker threads (the compiled kernel releases the GIL); default: the CPU
        count, or 1 for graphs under 20 000 distinct transfers.

    Returns
    -------
    list of tuple of int
        Each cycle once, as the accounts in flow order rotated to start at the
        smallest id, sorted by ``(length, ids)``.  With parallel transfers a
        cycle of accounts is reported once if any choice of transfers
        satisfies the constraints.

    Notes
    -----
    Iterative DFS from each vertex ``s`` over vertices ``> s`` only, so each
    cycle is found once, from its smallest vertex.  Before searching from
    ``s``, a backward BFS marks the vertices that reach ``s`` within 3 hops
    through vertices ``> s``; a path with ``r <= 3`` hops left only enters
    marked vertices at distance ``<= r`` (the CodeCraft "4+3" pruning).  The
    time is ``O(s * C)`` in the worst case, with ``C`` the number of simple
    paths of length ``< max_hops`` (exponential in ``max_hops``), and
    ``O(n + m)`` memory per thread.  Constraints are checked as each transfer
    is added, so they also prune.  Parallel transfers are enumerated one by
    one only when a constraint is active (else they are collapsed), and
    repeats are removed at the end.

    References
    ----------
    .. [1] D. B. Johnson, "Finding all the elementary circuits of a directed
       graph", SIAM J. Comput. 4(1):77-84, 1975.
    .. [2] R. Kumar and T. Calders, "2SCENT: An efficient algorithm for
       enumerating all simple temporal cycles", PVLDB 11(11):1441-1453, 2018.
    .. [3] Huawei CodeCraft 2020, fund-transfer cycle detection.

    Examples
    --------
    >>> find_cycles([0, 1, 2, 1], [1, 2, 0, 0], [100, 90, 500, 50], min_hops=2,
    ...             amount_ratio=(0.2, 3))
    [(0, 1)]
    >>> find_cycles([0, 1, 2], [1, 2, 0], ts=[30, 10, 20], temporal=True)
    [(0, 1, 2)]
    >>> find_cycles([0, 1, 2], [1, 2, 0], ts=[30, 10, 20], temporal=True, window_ms=10)
    []
    """
    g = _prepare(src, dst, amount, ts, min_hops, max_hops, amount_ratio, window_ms, temporal)
    if g is None:
        return []
    flat, lengths = g.run(g.candidates, min_hops, max_hops, n_threads)
    return _sort_cycles(flat, lengths)


def find_cycles_capped(
    src,
    dst,
    amount=None,
    ts=None,
    *,
    limit: int,
    min_hops: int = 3,
    max_hops: int = 7,
    amount_ratio: tuple[float, float] | None = None,
    window_ms: int | None = None,
    temporal: bool = False,
    n_threads: int | None = None,
) -> tuple[list[tuple[int, ...]], bool]:
    """The first ``limit`` cycles of :func:`find_cycles`'s answer, and whether more exist.

    Same parameters and order as :func:`find_cycles`; the search stops as soon as
    ``limit + 1`` cycles are known, so a capped call on a graph with millions of cycles
    returns in the time it takes to find the first few.

    Notes
    -----
    Cycles are ordered by (length, ids) and each starts at its smallest id, the vertex it
    is searched from. So the search goes length by length, and within a length through
    the start vertices in increasing order, in batches (doubling, 64 to 65 536 starts, run
    on the threads); after each batch every cycle from the starts so far is known, and
    once more than ``limit`` are, their sorted prefix is the exact answer, the same on
    any number of threads. Searching each length separately repeats the shorter paths: at
    most ``max_hops - min_hops + 1`` times the work of :func:`find_cycles` when the cap is
    never reached.

    Examples
    --------
    >>> src, dst = [0, 1, 2, 2, 3, 1, 4], [1, 2, 0, 3, 0, 4, 0]
    >>> find_cycles(src, dst)
    [(0, 1, 2), (0, 1, 4), (0, 1, 2, 3)]
    >>> find_cycles_capped(src, dst, limit=2)
    ([(0, 1, 2), (0, 1, 4)], True)
    >>> find_cycles_capped(src, dst, limit=3)
    ([(0, 1, 2), (0, 1, 4), (0, 1, 2, 3)], False)
    """
    if limit < 0:
        raise InvalidValue(f"limit must be >= 0, got {limit}")
    g = _prepare(src, dst, amount, ts, min_hops, max_hops, amount_ratio, window_ms, temporal)
    if g is None:
        return [], False
    out: list[tuple[int, ...]] = []
    for length in range(min_hops, max_hops + 1):
        found: list[tuple[int, ...]] = []
        at, batch = 0, 64
        while at < g.candidates.size:
            flat, lengths = g.run(g.candidates[at : at + batch], length, length, n_threads)
            found.extend(_sort_cycles(flat, lengths))  # starts increase batch by batch: stays sorted
            at += batch
            batch = min(batch * 2, 65_536)
            if len(out) + len(found) > limit:
                return (out + found)[:limit], True
        out.extend(found)
    return out, False


@dataclass(frozen=True)
class _Prepared:
    """The transfer graph in the kernel's layout (see :func:`_prepare`)."""

    n: int
    indptr: np.ndarray
    nbr: np.ndarray
    eamt: np.ndarray
    ets: np.ndarray
    rindptr: np.ndarray
    rnbr: np.ndarray
    candidates: np.ndarray  # vertices with an in- and an out-edge, increasing
    ratio: tuple[int, int, int, int] | None
    temporal: bool
    window: int
    n_edges: int

    def run(self, starts: np.ndarray, min_hops: int, max_hops: int, n_threads: int | None) -> tuple[np.ndarray, np.ndarray]:
        """(flat, lengths) of the cycles whose smallest vertex is in ``starts``."""
        threads = max(1, n_threads or os.cpu_count() or 1)
        if n_threads is None and self.n_edges < _PARALLEL_MIN_EDGES:
            threads = 1  # thread start-up costs more than it saves on small graphs
        # low ids carry the most work: deal starts round-robin to balance chunks
        nchunks = 1 if threads == 1 or starts.size < threads else threads * 8
        chunks = [starts[i::nchunks] for i in range(nchunks)]
        lo_num, lo_den, hi_num, hi_den = self.ratio or (1, 1, 1, 1)

        def one(part: np.ndarray):
            return _cycles_kernel(
                self.n, self.indptr, self.nbr, self.eamt, self.ets, self.rindptr, self.rnbr,
                np.ascontiguousarray(part), min_hops, max_hops, self.ratio is not None,
                lo_num, lo_den, hi_num, hi_den, self.temporal, self.window,
            )

        if nchunks == 1:
            results = [one(chunks[0])]
        else:
            with ThreadPoolExecutor(max_workers=threads) as pool:
                results = list(pool.map(one, chunks))
        return np.concatenate([r[0] for r in results]), np.concatenate([r[1] for r in results])


def _prepare(src, dst, amount, ts, min_hops, max_hops, amount_ratio, window_ms, temporal) -> _Prepared | None:
    """Validate the arguments and lay the graph out for the kernel (None: no edges)."""
    src = np.ascontiguousarray(src, dtype=np.int64)
    dst = np.ascontiguousarray(dst, dtype=np.int64)
    if src.shape != dst.shape or src.ndim != 1:
        raise ValueError("src and dst must be 1-d arrays of equal length")
    m = src.size
    amount = None if amount is None else np.ascontiguousarray(amount, dtype=np.int64)
    ts = None if ts is None else np.ascontiguousarray(ts, dtype=np.int64)
    _validate(m, amount, ts, min_hops, max_hops, amount_ratio, window_ms, temporal)
    if m == 0:
        return None
    if min(src.min(), dst.min()) < 0:
        raise ValueError("ids must be >= 0")
    n = int(max(src.max(), dst.max())) + 1

    use_ratio = amount_ratio is not None
    ratio = None
    if use_ratio:
        lo, hi = (_as_fraction(b) for b in amount_ratio)
        ratio = (lo.numerator, lo.denominator, hi.numerator, hi.denominator)
        biggest = int(np.abs(amount).max()) if m else 0
        if biggest * max(ratio) >= _INT64_SAFE:
            raise ValueError("amount_ratio bounds too fine for exact int64 arithmetic")

    # edge attributes that matter; drop self loops and duplicates of them
    keep = src != dst
    cols = [src[keep], dst[keep]]
    if use_ratio:
        cols.append(amount[keep])
    if temporal:
        cols.append(ts[keep])
    table = _unique_rows(np.stack(cols, axis=1))  # sorted by (src, dst, ...)
    if table.shape[0] == 0:
        return None
    s_col = np.ascontiguousarray(table[:, 0])
    d_col = np.ascontiguousarray(table[:, 1])
    eamt = np.ascontiguousarray(table[:, 2]) if use_ratio else np.zeros(1, np.int64)
    ets = np.ascontiguousarray(table[:, -1]) if temporal else np.zeros(1, np.int64)

    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(s_col, minlength=n), out=indptr[1:])
    pairs = _unique_rows(np.stack([d_col, s_col], axis=1))  # reverse, distinct
    rindptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(pairs[:, 0], minlength=n), out=rindptr[1:])
    rnbr = np.ascontiguousarray(pairs[:, 1])
    candidates = np.flatnonzero((np.diff(indptr) > 0) & (np.diff(rindptr) > 0))
    return _Prepared(
        n, indptr, d_col, eamt, ets, rindptr, rnbr, candidates, ratio, temporal,
        -1 if window_ms is None else int(window_ms), int(table.shape[0]),
    )


def cycles_to_text(cycles: Sequence[Sequence[int]], labels: Sequence[str]) -> str:
    """CodeCraft answer layout: the count, then one cycle per line.

    Parameters
    ----------
    cycles : sequence of sequence of int
        Dense-id cycles, e.g. from :func:`find_cycles`.
    labels : sequence of str
        Label of each dense id.

    Returns
    -------
    str
        ``"<count>\\n"`` followed by one comma-separated line per cycle, each
        line ending in ``"\\n"``.

    Examples
    --------
    >>> print(cycles_to_text([(0, 1, 2)], ["7", "8", "9"]), end="")
    1
    7,8,9
    """
    lines = [str(len(cycles))]
    lines.extend(",".join(str(labels[v]) for v in c) for c in cycles)
    return "\n".join(lines) + "\n"


def find_cycles_in_edge_list(edges: EdgeList, **kw) -> list[tuple[str, ...]]:
    """:func:`find_cycles` on labelled transfers, answering with labels.

    Parameters
    ----------
    edges : EdgeList
        From :func:`read_edge_list`.
    **kw
        Keyword arguments of :func:`find_cycles`.

    Returns
    -------
    list of tuple of str
        Cycles as labels.  Dense ids follow label order (numeric when every
        label is an integer), so the list is sorted by length, then labels.

    Examples
    --------
    >>> import numpy as np
    >>> e = EdgeList(np.array(["10", "9"], dtype=object), np.array(["9", "10"], dtype=object),
    ...              np.array([100, 100]))
    >>> find_cycles_in_edge_list(e, min_hops=2)
    [('9', '10')]
    """
    src, dst, labels = edges.to_dense()
    cycles = find_cycles(src, dst, edges.amount, edges.ts, **kw)
    return [tuple(labels[v] for v in c) for c in cycles]
