"""Tamper-evident audit log: one JSON line per command, chained by SHA-256.

``<store>/audit.jsonl`` holds one entry per line::

    {"seq": 7, "time": "2026-11-23T16:02:11.123Z", "user": "alice", "os_user": "svc",
     "role": "analyst", "command": "trace", "args": ["trace", "L001"], "outcome": "ok",
     "exit_code": 0, "snapshot_id": "…", "prev": "<hash of entry 6>", "hash": "…"}

``hash`` is the SHA-256 of the canonical JSON (sorted keys, no spaces, UTF-8) of the
entry without ``hash``, so it covers ``prev`` and with it the whole history before. Line
*n* has ``seq`` *n*. An edit changes a line's hash; a deletion, insertion or reordering
breaks ``prev`` or ``seq``.

**The head.** ``audit.head.json`` holds the seq, hash and the full text of the last entry.
It is replaced (atomically) twice per append: ``pending`` *before* the line is appended (a
one-entry write-ahead log), ``written`` after the line is on disk. Every append first
compares the end of the log with the head:

- the log ends with the head's line: in order;
- the head is ``pending`` and its line is missing or cut short, the line before it being
  the head's ``prev``: an append was interrupted (crash, kill -9, full disk). The cut
  part is replaced by the head's line — never glued to the next one — and the next entry
  says so (``repaired``);
- anything else (the log shorter than a ``written`` head, lines after the head, a last
  line that does not parse or differs from the head's): **tampering**. :class:`AuditError`
  stops the command; nothing is re-anchored. An admin restores the log or archives it and
  starts a new chain with :func:`restart` (``flowgraph audit restart``).

**Commands that change the store** are announced (:func:`begin`) by a ``started`` line
written before they run; every manifest they write records that line (``audit`` in
``manifest.json``), and :func:`finish` appends the outcome line with ``start`` = its seq.
If the process dies in between, the next append finds its intent file unlocked
(``.audit-open/<seq>.json``, held with ``flock`` while the command runs) and appends an
``interrupted`` line for it. So a change never exists without its audit line.

What a hash chain without a secret cannot stop: someone with write access to the store
who rewrites the log, the head and the manifest's reference consistently. Keep the head
hash that ``flowgraph audit verify`` prints outside the store (a ticket, the nightly job
log) and pass it back with ``--head``: that is the check auditors should run.

>>> import tempfile
>>> from flowgraph.store.embedded import Store
>>> s = Store.init(tempfile.mkdtemp())
>>> _ = append(s, {"user": "alice", "command": "status", "args": [], "outcome": "ok", "exit_code": 0})
>>> verify(s)["ok"]
True
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flowgraph.core.errors import AuditError, InvalidValue
from flowgraph.core.files import atomic_write_bytes, fault_point, sha256_file
from flowgraph.store.embedded import Store

LOG = "audit.jsonl"
HEAD = "audit.head.json"
LOCK = ".audit.lock"
OPEN = ".audit-open"
ARCHIVE = "audit-archive"
GENESIS = "0" * 64
REQUIRED = ("seq", "time", "user", "command", "outcome", "prev", "hash")


def canonical(obj: Any) -> bytes:
    """The bytes that are hashed: sorted keys, no whitespace, UTF-8."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def entry_hash(entry: dict) -> str:
    return hashlib.sha256(canonical({k: v for k, v in entry.items() if k != "hash"})).hexdigest()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _line_bytes(entry: dict) -> bytes:
    """How an entry is written: one JSON object, sorted keys, UTF-8 (verify demands it)."""
    return json.dumps(entry, sort_keys=True, ensure_ascii=False).encode("utf-8")


def _parse(line: bytes | None) -> dict | None:
    if line is None:
        return None
    try:
        e = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        return None
    return e if isinstance(e, dict) else None


# ------------------------------------------------------------------ the head and the tail
@dataclass
class _Head:
    seq: int
    hash: str
    line: bytes | None  # None: a head written before the head held the line
    written: bool = True  # False: written ahead of its line, which may be missing or cut


def _read_head(store: Store) -> _Head | None:
    path = store.root / HEAD
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        h = json.loads(raw)
        line = h.get("line")
        return _Head(int(h["seq"]), str(h["hash"]), None if line is None else str(line).encode("utf-8"),
                     h.get("state", "written") == "written")
    except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError):
        raise AuditError(f"{path} is damaged (not the head flowgraph writes): the audit log cannot be"
                         " trusted; see docs/security.md, 'When the audit log is damaged'") from None


def _write_head(store: Store, entry: dict, line: bytes, state: str) -> None:
    body = {"seq": entry["seq"], "hash": entry["hash"], "line": line.decode("utf-8"), "state": state}
    atomic_write_bytes(store.root / HEAD, canonical(body) + b"\n")


def _split(data: bytes) -> tuple[list[bytes], bytes]:
    """Complete lines and the cut-short rest after the last newline."""
    end = data.rfind(b"\n")
    if end < 0:
        return [], data
    return data[:end].split(b"\n"), data[end + 1:]


def _tail(fd: int) -> tuple[bytes | None, bytes, int]:
    """(last complete line, the cut-short rest after it, offset of that rest), read from the end."""
    size = os.fstat(fd).st_size
    buf, pos = b"", size
    while True:
        step = min(1 << 16, pos)
        pos -= step
        buf = os.pread(fd, step, pos) + buf
        end = buf.rfind(b"\n")
        if end >= 0:
            start = buf.rfind(b"\n", 0, end) + 1
            if start > 0 or pos == 0:
                return buf[start:end], buf[end + 1:], pos + end + 1
        elif pos == 0:
            return None, buf, 0


@dataclass
class _State:
    seq: int
    hash: str
    fix: bytes | None = None  # bytes to write at ``at`` to complete a cut append
    at: int = 0
    note: str | None = None  # what was (or will be) repaired, said in the next entry


def _ends_with(line: bytes | None, seq: int, hash_: str) -> bool:
    e = _parse(line)
    return e is not None and e.get("seq") == seq and e.get("hash") == hash_


def _state(last: bytes | None, rest: bytes, rest_at: int, head: _Head | None) -> _State:
    """How the end of the log relates to the head (raises AuditError on tampering)."""
    if head is None:
        if last is None and not rest:
            return _State(0, GENESIS)
        raise AuditError(f"{HEAD} is missing but {LOG} holds entries: the head of the chain was"
                         " removed (tampering)")
    if not rest and _ends_with(last, head.seq, head.hash):
        if head.line is None or last == head.line:
            return _State(head.seq, head.hash)
    if head.line is not None and not head.written and head.line.startswith(rest):
        prev = (_parse(head.line) or {}).get("prev")
        first = head.seq == 1 and last is None
        if first or _ends_with(last, head.seq - 1, prev):
            return _State(head.seq, head.hash, head.line[len(rest):] + b"\n", rest_at + len(rest),
                          f"entry {head.seq} was cut short by a crash or a full disk"
                          f" ({len(rest)} of {len(head.line) + 1} bytes written); completed from {HEAD}")
    if head.line is None and rest and b"\n" not in rest and _ends_with(last, head.seq, head.hash):
        return _State(head.seq, head.hash, b"", rest_at,
                      f"a cut-short line of {len(rest)} bytes after entry {head.seq} (an append"
                      " interrupted before the head was written) was removed")
    raise AuditError(_tamper_reason(last, rest, head))


def _tamper_reason(last: bytes | None, rest: bytes, head: _Head) -> str:
    e = _parse(last)
    where = f"{LOG} does not end where {HEAD} says (seq {head.seq})"
    if rest:
        return f"{where}: its last line is cut short and is not the line the head records (edited or damaged)"
    if last is None:
        return f"{where}: the log is empty — its lines were deleted"
    if e is None or not isinstance(e.get("seq"), int):
        return f"{where}: its last line does not parse (edited or damaged)"
    if e["seq"] < head.seq:
        return f"{where}: the log ends at seq {e['seq']} — lines were deleted from the end"
    if e["seq"] > head.seq:
        return f"{where}: the log goes on to seq {e['seq']} — lines were added after the head"
    return f"{where}: the last line differs from the one the head records (edited)"


# ------------------------------------------------------------------ appending
@contextlib.contextmanager
def _locked(store: Store) -> Iterator[int]:
    """The audit lock (its own file: the log itself may be archived by :func:`restart`)
    and an open descriptor of the log."""
    store.root.mkdir(mode=0o700, parents=True, exist_ok=True)
    lock = os.open(store.root / LOCK, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        fd = os.open(store.root / LOG, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            yield fd
        finally:
            os.close(fd)
    finally:
        with contextlib.suppress(OSError):
            fcntl.flock(lock, fcntl.LOCK_UN)
        os.close(lock)


def _checked(store: Store, fd: int, repair: bool = True) -> _State:
    """The end of the log, checked against the head; a cut append completed. Under the lock."""
    last, rest, at = _tail(fd)
    st = _state(last, rest, at, _read_head(store))
    if st.fix is not None and repair:
        os.ftruncate(fd, st.at)
        if st.fix:
            _write_all(fd, st.fix)
        os.fsync(fd)
    for tmp in store.root.glob(f".{HEAD}.*.tmp"):  # head temps of killed appends
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return st


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _write(store: Store, fd: int, record: dict, seq: int, prev: str) -> dict:
    """Chain ``record`` after (seq, prev): the head first (the write-ahead copy), then the line."""
    entry = {"seq": seq + 1, "time": record.get("time") or _now(),
             **{k: v for k, v in record.items() if k not in ("time", "seq", "prev", "hash")}}
    entry["prev"] = prev
    entry["hash"] = entry_hash(entry)
    line = _line_bytes(entry)
    _write_head(store, entry, line, "pending")
    fault_point("audit-head-written")
    size = os.fstat(fd).st_size
    try:
        _write_all(fd, line + b"\n")
        os.fsync(fd)
    except OSError:
        # a full disk: take the partial line back out (the head still holds the whole entry,
        # which the next append completes; a crash here instead leaves the same state)
        with contextlib.suppress(OSError):
            os.ftruncate(fd, size)
        raise
    # the line is down: from now on a log that does not end with it was cut by someone
    _write_head(store, entry, line, "written")
    return entry


@dataclass
class Intent:
    """A command announced by :func:`begin`; pass it to :func:`finish` (or it is found
    ``interrupted`` by the next append once this process is gone)."""

    store: Store
    seq: int
    hash: str
    fd: int | None
    path: Path

    @property
    def ref(self) -> dict:
        """What the manifests written by this command record (``CHANGE_REF``)."""
        return {"seq": self.seq, "hash": self.hash}

    def close(self, remove: bool = False) -> None:
        """Release the intent; ``remove=False`` leaves it for the next append to record
        as interrupted (when the outcome line could not be written)."""
        if self.fd is None:
            return
        if remove:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
        os.close(self.fd)
        self.fd = None


def _recover_dead(store: Store, fd: int, st: _State) -> _State:
    """Append an ``interrupted`` line for every announced command whose process is gone."""
    folder = store.root / OPEN
    if not folder.is_dir():
        return st
    for p in sorted(folder.glob("*.json"), key=lambda q: (len(q.name), q.name)):
        try:
            lfd = os.open(p, os.O_RDWR)
        except FileNotFoundError:
            continue
        try:
            try:
                fcntl.flock(lfd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # its command is still running
            try:
                info = json.loads(p.read_bytes())
                if not isinstance(info, dict):
                    raise ValueError
            except (ValueError, UnicodeDecodeError):
                info = {}
            seq = info.get("seq", int(p.stem) if p.stem.isdigit() else p.stem)
            record = {k: info.get(k) for k in ("user", "os_user", "role", "setup_mode", "command", "args")}
            record.update({
                "outcome": "interrupted", "exit_code": None, "start": seq,
                "snapshot_id": _snapshot(store),
                "recovered": "the process running it ended without recording an outcome (killed or"
                             " crashed); found by the next command",
            })
            entry = _write(store, fd, record, st.seq, st.hash)
            st = _State(entry["seq"], entry["hash"])
            p.unlink()
        finally:
            os.close(lfd)
    return st


def _close_cut_start(store: Store, fd: int, st: _State) -> _State:
    """A ``started`` line that had to be completed from the head was written by a process
    that died (or failed on a full disk) before holding its intent, so before its command
    ran: record that it did not run."""
    last, _, _ = _tail(fd)
    e = _parse(last) or {}
    if e.get("outcome") != "started" or e.get("seq") != st.seq:
        return st
    record = {k: e.get(k) for k in ("user", "os_user", "role", "setup_mode", "command", "args")}
    record.update({"outcome": "interrupted", "exit_code": None, "start": e["seq"], "snapshot_id": _snapshot(store),
                   "recovered": "its started line was cut short (crash or full disk) before the command ran"})
    entry = _write(store, fd, record, st.seq, st.hash)
    return _State(entry["seq"], entry["hash"])


def _snapshot(store: Store) -> str | None:
    try:
        return store.snapshot_id
    except Exception:  # a missing or damaged manifest: the entry says so by null
        return None


def _append(store: Store, record: dict, hold: bool = False, release: Intent | None = None) -> tuple[dict, Intent | None]:
    with _locked(store) as fd:
        st = _checked(store, fd)
        st2 = _State(st.seq, st.hash)
        if st.fix is not None:
            st2 = _close_cut_start(store, fd, st2)
        st2 = _recover_dead(store, fd, st2)
        if st.note:
            record = {**record, "repaired": st.note}
        entry = _write(store, fd, record, st2.seq, st2.hash)
        intent = _hold(store, entry, record) if hold else None
        if release is not None:
            release.close(remove=True)
        return entry, intent


def _hold(store: Store, entry: dict, record: dict) -> Intent:
    folder = store.root / OPEN
    folder.mkdir(mode=0o700, exist_ok=True)
    path = folder / f"{entry['seq']}.json"
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    info = {"seq": entry["seq"], "hash": entry["hash"], "pid": os.getpid(),
            **{k: record.get(k) for k in ("user", "os_user", "role", "setup_mode", "command", "args")}}
    _write_all(fd, canonical(info))
    return Intent(store, entry["seq"], entry["hash"], fd, path)


def append(store: Store, record: dict) -> dict:
    """Append one entry (``record`` plus seq, time, prev, hash); returns the entry.

    Under the audit lock: check the end of the log against the head (raises
    :class:`AuditError` on tampering, completes an append that a crash cut short), record
    announced commands whose process died as ``interrupted``, then write the head and the line.
    """
    return _append(store, record)[0]


def begin(store: Store, record: dict) -> Intent:
    """Announce a command that may change the store: append its ``started`` line and hold
    its intent until :func:`finish`. Raises :class:`AuditError` when the log was tampered
    with, so the command does not run."""
    entry, intent = _append(store, {**record, "outcome": "started", "exit_code": None}, hold=True)
    assert intent is not None
    return intent


def finish(intent: Intent, record: dict) -> dict:
    """The outcome line of an announced command (``start`` = its started line's seq)."""
    entry, _ = _append(intent.store, {**record, "start": intent.seq}, release=intent)
    return entry


def check(store: Store) -> None:
    """Raise :class:`AuditError` when the end of the log does not match its head (run
    before a command, so that a tampered log stops it). A cut-short append is left for the
    next append to complete (it says so in its entry)."""
    if not (store.root / LOG).exists() and not (store.root / HEAD).exists():
        return
    with _locked(store) as fd:
        _checked(store, fd, repair=False)


# ------------------------------------------------------------------ verifying
def _read_lines(store: Store) -> tuple[list[bytes], bytes]:
    path = store.root / LOG
    if not path.exists():
        return [], b""
    return _split(path.read_bytes())


def verify(store: Store, head: str | None = None) -> dict:
    """Check the chain; ``ok`` is False with ``line`` and ``reason`` of the first bad line.

    ``head``: a hash recorded earlier (outside the store); the log must still contain an
    entry with it. ``notes`` name what is not tampering: an append cut short by a crash or
    a full disk (completed by the next command) and announced commands without an outcome
    line yet (still running, or killed: recorded ``interrupted`` by the next command).
    """
    lines, rest = _read_lines(store)
    prev, expected_seq = GENESIS, 1
    by_seq: dict[int, str] = {}
    open_starts: dict[int, dict] = {}
    path = store.root / LOG
    notes: list[str] = []

    def bad(no: int, reason: str) -> dict:
        return {"ok": False, "log": str(path), "lines": len(lines), "line": no, "reason": reason,
                "head": None, "notes": notes}

    for no, raw in enumerate(lines, 1):
        e = _parse(raw)
        if e is None:
            return bad(no, "not a JSON object (the line was edited or damaged)")
        if any(k not in e for k in REQUIRED):
            return bad(no, f"missing field(s) {', '.join(k for k in REQUIRED if k not in e)}")
        if entry_hash(e) != e["hash"]:
            return bad(no, f"content does not match its hash (the line was edited; seq {e['seq']})")
        if raw != _line_bytes(e):
            return bad(no, "not in the form flowgraph writes (spacing or key order was edited)")
        if e["prev"] != prev:
            return bad(no, "does not chain to the line before it (a line was deleted, inserted or moved here)")
        if e["seq"] != expected_seq:
            return bad(no, f"sequence number {e['seq']}, expected {expected_seq} (lines deleted, inserted or reordered)")
        prev, expected_seq = e["hash"], expected_seq + 1
        by_seq[e["seq"]] = e["hash"]
        if e["outcome"] == "started":
            open_starts[e["seq"]] = e
        elif isinstance(e.get("start"), int):
            open_starts.pop(e["start"], None)
    try:
        h = _read_head(store)
        st = _state(lines[-1] if lines else None, rest, 0, h)
    except AuditError as err:
        return bad(len(lines) + (1 if rest else 0), str(err))
    if st.fix is not None:
        notes.append(st.note or "")
        if h is not None and h.line is not None and st.seq == h.seq:
            pending = _parse(h.line) or {}
            by_seq[h.seq] = h.hash
            if pending.get("outcome") == "started":
                open_starts[h.seq] = pending
    for seq, e in sorted(open_starts.items()):
        notes.append(f"entry {seq}: `{e.get('command')}` by {e.get('user')} started and has no outcome"
                     " line yet (still running, or killed: the next command records it as interrupted)")
    ref = _manifest_ref(store)
    if ref is not None and by_seq.get(ref.get("seq")) != ref.get("hash"):
        return bad(len(lines), f"the store's manifest was written by the command of audit entry {ref.get('seq')}"
                   f" ({str(ref.get('hash'))[:12]}…), which the log does not hold: lines were removed or the log was rewritten")
    if head is not None and head not in by_seq.values():
        return bad(len(lines), f"no entry has the recorded head hash {head} (the log was rewritten or cut)")
    return {"ok": True, "log": str(path), "lines": len(lines), "head": st.hash if st.seq else None,
            "seq": st.seq, "line": None, "reason": None, "notes": notes}


def _manifest_ref(store: Store) -> dict | None:
    try:
        ref = store.manifest().get("audit") if store.manifest_path.exists() else None
    except Exception:
        return None
    return ref if isinstance(ref, dict) else None


# ------------------------------------------------------------------ restarting
def restart(store: Store, record: dict) -> dict:
    """Archive a damaged log (and its head) under ``audit-archive/<time>/`` and start a new
    chain whose first entry names the archive, its SHA-256 and the damage found.

    Refused (:class:`InvalidValue`) when the log verifies. The first entry is the record
    (who, which command) with ``restart``; the manifest then points at it.
    """
    from flowgraph.store.embedded import CHANGE_REF

    with _locked(store):
        res = verify(store)
        if res["ok"]:
            raise InvalidValue("the audit log verifies: there is nothing to restart")
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        folder = store.root / ARCHIVE / stamp
        folder.mkdir(mode=0o700, parents=True)
        moved = {}
        for name in (LOG, HEAD):
            src = store.root / name
            if src.exists():
                os.replace(src, folder / name)
                moved[name] = {"sha256": sha256_file(folder / name), "bytes": (folder / name).stat().st_size}
        fd = os.open(store.root / LOG, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            entry = _write(store, fd, {
                **record, "outcome": "ok", "exit_code": 0,
                "restart": {"archived": str(folder.relative_to(store.root)), "files": moved,
                            "problem": f"line {res['line']}: {res['reason']}"},
            }, 0, GENESIS)
        finally:
            os.close(fd)
    token = CHANGE_REF.set({"seq": entry["seq"], "hash": entry["hash"]})
    try:
        if store.manifest_path.exists():
            store.touch_manifest()
    finally:
        CHANGE_REF.reset(token)
    return entry


def show(store: Store, user: str | None = None, since: str | None = None, command: str | None = None) -> list[dict]:
    """Entries, oldest first, filtered by user, time (ISO date or timestamp, UTC) and command prefix."""
    from flowgraph.core.values import format_ts, parse_ts

    cutoff = format_ts(parse_ts(since)) if since else None
    out = []
    for raw in _read_lines(store)[0]:
        e = _parse(raw)
        if e is None:
            continue  # `audit verify` reports damaged lines; show lists what it can read
        if user is not None and e.get("user") != user:
            continue
        if cutoff is not None and str(e.get("time", "")) < cutoff:
            continue
        if command is not None and not str(e.get("command", "")).startswith(command):
            continue
        out.append(e)
    return out


__all__ = ["append", "begin", "finish", "check", "verify", "restart", "show", "entry_hash",
           "canonical", "Intent", "AuditError", "LOG", "HEAD"]
