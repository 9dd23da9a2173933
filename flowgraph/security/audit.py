"""Tamper-evident audit log: one JSON line per command, chained by SHA-256.

``<store>/audit.jsonl`` holds one entry per line::

    {"seq": 7, "time": "2026-11-23T16:02:11.123Z", "user": "alice", "os_user": "svc",
     "role": "analyst", "command": "trace", "args": ["trace", "L001"], "outcome": "ok",
     "exit_code": 0, "snapshot_id": "…", "prev": "<hash of entry 6>", "hash": "…"}

``hash`` is the SHA-256 of the canonical JSON (sorted keys, no spaces, UTF-8) of the
entry without ``hash``, so it covers ``prev`` and with it the whole history before. Line
*n* has ``seq`` *n*. An edit changes a line's hash; a deletion, insertion or reordering
breaks ``prev`` or ``seq``; deleting lines from the end is caught by ``audit.head.json``
(the last seq and hash, replaced atomically after every append). :func:`verify` names the
first bad line and why.

What a hash chain cannot catch: someone with write access who recomputes every hash after
an edit and rewrites the head too. Copy the head hash that ``flowgraph audit verify``
prints somewhere else (a ticket, the nightly job log) and pass it back with ``--head`` to
prove the log still extends it.

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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flowgraph.core.files import atomic_write_bytes
from flowgraph.store.embedded import Store

LOG = "audit.jsonl"
HEAD = "audit.head.json"
GENESIS = "0" * 64
REQUIRED = ("seq", "time", "user", "command", "outcome", "prev", "hash")


def canonical(obj: Any) -> bytes:
    """The bytes that are hashed: sorted keys, no whitespace, UTF-8."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def entry_hash(entry: dict) -> str:
    return hashlib.sha256(canonical({k: v for k, v in entry.items() if k != "hash"})).hexdigest()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _last_line(fd: int) -> bytes | None:
    """The last non-empty line of an open file, read from the end (the log can be long)."""
    size = os.fstat(fd).st_size
    block = 1 << 16
    pos = size
    tail = b""
    while pos > 0:
        step = min(block, pos)
        pos -= step
        tail = os.pread(fd, step, pos) + tail
        lines = tail.rstrip(b"\n").split(b"\n")
        if len(lines) > 1 or pos == 0:
            last = lines[-1]
            return last or None
    return None


def _prev_of(line: bytes | None) -> tuple[int, str]:
    """(seq, hash) of the last line; a damaged line chains by the hash of its bytes."""
    if line is None:
        return 0, GENESIS
    try:
        e = json.loads(line)
        return int(e["seq"]), str(e["hash"])
    except (ValueError, KeyError, TypeError):
        return -1, hashlib.sha256(line).hexdigest()


def append(store: Store, record: dict) -> dict:
    """Append one entry (``record`` plus seq, time, prev, hash); returns the entry.

    The log is locked (``flock``) for the read-last-line → write → fsync → head sequence,
    so concurrent commands each get their own place in the chain.
    """
    path = store.root / LOG
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        seq, prev = _prev_of(_last_line(fd))
        if seq < 0:  # the last line is damaged: keep counting by lines so verify names it
            seq = _count_lines(path)
        entry = {"seq": seq + 1, "time": record.get("time") or _now(), **{k: v for k, v in record.items() if k != "time"}}
        entry["prev"] = prev
        entry.pop("hash", None)
        entry["hash"] = entry_hash(entry)
        data = _line_bytes(entry) + b"\n"
        os.write(fd, data)
        os.fsync(fd)
        atomic_write_bytes(store.root / HEAD, canonical({"seq": entry["seq"], "hash": entry["hash"]}) + b"\n")
        return entry
    finally:
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _line_bytes(entry: dict) -> bytes:
    """How an entry is written: one JSON object, sorted keys, UTF-8 (verify demands it)."""
    return json.dumps(entry, sort_keys=True, ensure_ascii=False).encode("utf-8")


def _count_lines(path: Path) -> int:
    with open(path, "rb") as f:
        return sum(1 for line in f if line.strip())


def _read_lines(store: Store) -> list[bytes]:
    path = store.root / LOG
    if not path.exists():
        return []
    return path.read_bytes().split(b"\n")[:-1] if path.stat().st_size else []


def verify(store: Store, head: str | None = None) -> dict:
    """Check the chain; ``ok`` is False with ``line`` and ``reason`` of the first bad line.

    ``head``: a hash recorded earlier; the log must still contain an entry with it.
    """
    lines = _read_lines(store)
    prev, expected_seq = GENESIS, 1
    hashes: set[str] = set()
    path = store.root / LOG

    def bad(no: int, reason: str) -> dict:
        return {"ok": False, "log": str(path), "lines": len(lines), "line": no, "reason": reason}

    for no, raw in enumerate(lines, 1):
        try:
            e = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            return bad(no, "not a JSON object (the line was edited or damaged)")
        if not isinstance(e, dict) or any(k not in e for k in REQUIRED):
            return bad(no, f"missing field(s) {', '.join(k for k in REQUIRED if not isinstance(e, dict) or k not in e)}")
        if entry_hash(e) != e["hash"]:
            return bad(no, f"content does not match its hash (the line was edited; seq {e['seq']})")
        if raw != _line_bytes(e):
            return bad(no, "not in the form flowgraph writes (spacing or key order was edited)")
        if e["prev"] != prev:
            return bad(no, "does not chain to the line before it (a line was deleted, inserted or moved here)")
        if e["seq"] != expected_seq:
            return bad(no, f"sequence number {e['seq']}, expected {expected_seq} (lines deleted, inserted or reordered)")
        prev, expected_seq = e["hash"], expected_seq + 1
        hashes.add(e["hash"])
    head_path = store.root / HEAD
    if head_path.exists():
        try:
            h = json.loads(head_path.read_text(encoding="utf-8"))
            h_seq, h_hash = int(h["seq"]), str(h["hash"])
        except (ValueError, KeyError, TypeError):
            return bad(len(lines), f"{head_path} is damaged")
        if (h_seq, h_hash) != (expected_seq - 1, prev):
            if h_seq > expected_seq - 1:
                why = f"the log ends at seq {expected_seq - 1} but {HEAD} records seq {h_seq}: lines were deleted from the end"
            else:
                why = f"{HEAD} records seq {h_seq} {h_hash[:12]}…, the log ends at seq {expected_seq - 1}: lines were appended or the head was edited"
            return bad(len(lines), why)
    elif lines:
        return bad(len(lines), f"{head_path} is missing (the head of the chain was removed)")
    if head is not None and head not in hashes:
        return bad(len(lines), f"no entry has the recorded head hash {head} (the log was rewritten)")
    return {"ok": True, "log": str(path), "lines": len(lines), "head": prev if lines else None,
            "line": None, "reason": None}


def show(store: Store, user: str | None = None, since: str | None = None, command: str | None = None) -> list[dict]:
    """Entries, oldest first, filtered by user, time (ISO date or timestamp, UTC) and command prefix."""
    from flowgraph.core.values import format_ts, parse_ts

    cutoff = format_ts(parse_ts(since)) if since else None
    out = []
    for raw in _read_lines(store):
        try:
            e = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            continue  # `audit verify` reports damaged lines; show lists what it can read
        if not isinstance(e, dict):
            continue
        if user is not None and e.get("user") != user:
            continue
        if cutoff is not None and str(e.get("time", "")) < cutoff:
            continue
        if command is not None and not str(e.get("command", "")).startswith(command):
            continue
        out.append(e)
    return out


__all__ = ["append", "verify", "show", "entry_hash", "canonical", "LOG", "HEAD"]
