"""Cases: what people decided about alerts — review with a second reviewer (二次审核).

Every alert has a case (an alert that was never touched is a case in status ``new``). A
case moves like this::

    new ──review (confirm|dismiss, reason)──▶ pending_second_review
    pending_second_review ──review by ANOTHER user (role with 'review.approve')──▶
        same decision      → confirmed | dismissed
        other decision     → new (a new round; both reviews and reasons are kept)

A confirmed or dismissed case is closed: a further review is refused. Assignment and
notes are allowed at any time. The same user may never give both reviews of a round
(four eyes), whatever their role.

Alert ids are stable per (rule, disbursement) (:func:`flowgraph.rules.alerts.alert_id_of`),
so an alert that fires again on a later night is the same case: its evidence is the
latest firing, and it is marked ``repeat``.

Storage: ``<store>/cases/events.jsonl``, append-only, one JSON line per action::

    {"seq": 3, "time": "2026-11-28T19:02:11.123Z", "alert_id": "…", "action": "review",
     "user": "ana", "role": "analyst", "decision": "confirm", "reason": "…",
     "round": 1, "status_before": "new", "status_after": "pending_second_review"}

An action reads the case, checks the transition and appends its line under an exclusive
lock of ``cases/events.lock`` (one line, one ``write``, then ``fsync``); a line cut short
by a crash is never part of the history (it is dropped by the next writer). The case is
the fold of its lines, so the whole history is kept. Every action is also appended to the
store's audit log (:mod:`flowgraph.security.audit`).

>>> import tempfile
>>> from flowgraph.store.embedded import Store
>>> s = Store.init(tempfile.mkdtemp())
>>> case_of(s, "a1")["status"]
'new'
>>> _ = review(s, "a1", "ana", "analyst", "confirm", "money came back", check_alert=False)
>>> review(s, "a1", "ana", "risk_manager", "confirm", "agree", check_alert=False)
Traceback (most recent call last):
...
flowgraph.core.errors.AccessError: four eyes: 'ana' gave the first review of alert a1; the second review must come from another user
>>> review(s, "a1", "rita", "risk_manager", "confirm", "agree", check_alert=False)["status"]
'confirmed'
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterable
from datetime import UTC, date, datetime

import polars as pl

from flowgraph.core.errors import AccessError, InvalidValue, NotFound, StoreError
from flowgraph.rules.alerts import read_alerts
from flowgraph.security import access as acl
from flowgraph.security import audit
from flowgraph.store.embedded import Store

DIR = "cases"
EVENTS = "events.jsonl"
LOCK = "events.lock"
STATUSES = ("new", "pending_second_review", "confirmed", "dismissed")
DECISIONS = ("confirm", "dismiss")
CLOSED = {"confirm": "confirmed", "dismiss": "dismissed"}
MAX_TEXT = 4000  # characters of a reason or note


def _now(now: datetime | None) -> str:
    return (now or datetime.now(UTC)).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _path(store: Store):
    return store.root / DIR / EVENTS


# ------------------------------------------------------------------ reading
def read_events(store: Store) -> list[dict]:
    """Every case event, in order. A last line cut short by a crash is not an event; any
    other unreadable line is a :class:`StoreError` naming the file and line."""
    path = _path(store)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    lines = data.split(b"\n")
    complete, tail = lines[:-1], lines[-1]  # tail: b"" when the file ends with a newline
    events = []
    for n, line in enumerate(complete, 1):
        try:
            ev = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise StoreError(f"{path}: line {n} is not a case event; restore the file from a backup") from None
        if not isinstance(ev, dict) or ev.get("seq") != n or "alert_id" not in ev:
            raise StoreError(f"{path}: line {n} is not case event {n}; restore the file from a backup")
        events.append(ev)
    del tail  # an unfinished last write: never acknowledged, so never part of the history
    return events


def _fold(alert_id: str, events: Iterable[dict]) -> dict:
    case = {"alert_id": alert_id, "status": "new", "assignee": None, "round": 1,
            "reviews": [], "notes": [], "history": []}  # fmt: skip
    for ev in events:
        case["history"].append(ev)
        action = ev["action"]
        if action == "assign":
            case["assignee"] = ev["assignee"]
        elif action == "note":
            case["notes"].append({k: ev[k] for k in ("time", "user", "text")})
        elif action == "review":
            case["reviews"].append({k: ev[k] for k in ("time", "user", "role", "decision", "reason", "round", "stage")})
            case["status"] = ev["status_after"]
            case["round"] = ev["round"] + (1 if ev["status_after"] == "new" else 0)
    return case


def cases_of(store: Store, alert_ids: Iterable[str] | None = None) -> dict[str, dict]:
    """alert id → case, for the given alerts (None = every alert with at least one event)."""
    by_alert: dict[str, list[dict]] = {}
    for ev in read_events(store):
        by_alert.setdefault(ev["alert_id"], []).append(ev)
    ids = by_alert.keys() if alert_ids is None else alert_ids
    return {a: _fold(a, by_alert.get(a, [])) for a in ids}


def case_of(store: Store, alert_id: str) -> dict:
    """The case of one alert: status, assignee, round, reviews, notes and full history."""
    return cases_of(store, [alert_id])[alert_id]


def public_case(case: dict) -> dict:
    """The case as ``alerts show --json`` prints it."""
    return {k: case[k] for k in ("status", "assignee", "round", "reviews", "notes", "history")}


# ------------------------------------------------------------------ writing
@contextlib.contextmanager
def _locked(store: Store):
    folder = store.root / DIR
    folder.mkdir(mode=0o700, exist_ok=True)
    fd = os.open(folder / LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _append(store: Store, event: dict) -> dict:
    """Append one event (caller holds the lock): seq = line number."""
    path = _path(store)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        size = os.fstat(fd).st_size
        data = os.pread(fd, size, 0) if size else b""
        if data and not data.endswith(b"\n"):  # a write cut short by a crash: drop it
            os.ftruncate(fd, data.rfind(b"\n") + 1)
            data = data[: data.rfind(b"\n") + 1]
        event = {"seq": data.count(b"\n") + 1, **event}
        os.write(fd, (json.dumps(event, ensure_ascii=False, sort_keys=True) + "\n").encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
    return event


def _audit(store: Store, event: dict) -> None:
    rec = {"user": event["user"], "role": event.get("role"), "command": f"case {event['action']}",
           "args": [event["alert_id"]], "outcome": "ok", "exit_code": 0,
           "case_event": {k: v for k, v in event.items() if k not in ("user", "role")}}  # fmt: skip
    audit.append(store, rec)


def _text(value: str, what: str) -> str:
    value = (value or "").strip()
    if not value:
        raise InvalidValue(f"{what} must not be empty")
    if len(value) > MAX_TEXT:
        raise InvalidValue(f"{what} is longer than {MAX_TEXT} characters")
    return value


def _known_alert(store: Store, alert_id: str) -> str:
    return resolve_alert(store, alert_id)


def resolve_alert(store: Store, alert_id: str) -> str:
    """The full id of an alert given its id or a unique prefix of 8+ characters."""
    ids = read_alerts(store).get_column("alert_id").to_list()
    if alert_id in ids:
        return alert_id
    hits = [a for a in ids if len(alert_id) >= 8 and a.startswith(alert_id)]
    if len(hits) == 1:
        return hits[0]
    if len(hits) > 1:
        raise InvalidValue(f"alert id prefix {alert_id!r} is ambiguous ({len(hits)} alerts)")
    raise NotFound(f"no alert {alert_id!r} (ids from `flowgraph alerts`)")


def _act(store, alert_id, check_alert, build) -> dict:
    if check_alert:
        alert_id = _known_alert(store, alert_id)
    with _locked(store):
        case = case_of(store, alert_id)
        event = build(case, alert_id)
        event = _append(store, event)
    _audit(store, event)
    return case_of(store, alert_id)


def review(store: Store, alert_id: str, user: str, role: str, decision: str, reason: str,
           now: datetime | None = None, check_alert: bool = True) -> dict:  # fmt: skip
    """Record a review of an alert's case; returns the case after it.

    The first review of a round needs the 'review' permission, the second
    'review.approve' and another user than the first. A second review that agrees closes
    the case (confirmed / dismissed); one that disagrees sends it back to ``new``.
    Raises :class:`AccessError` (four eyes, role) or :class:`InvalidValue` (closed case,
    bad decision, empty reason).
    """
    if decision not in DECISIONS:
        raise InvalidValue(f"decision must be confirm or dismiss, got {decision!r}")
    reason = _text(reason, "reason")

    def build(case, aid):
        status = case["status"]
        if status in ("confirmed", "dismissed"):
            raise InvalidValue(f"alert {aid} is closed ({status}); its case takes no more reviews")
        base = {"time": _now(now), "alert_id": aid, "action": "review", "user": user, "role": role,
                "decision": decision, "reason": reason, "round": case["round"], "status_before": status}  # fmt: skip
        if status == "new":
            if "review" not in acl.ROLES.get(role, ()):
                raise AccessError(f"access denied: role {role} may not review alerts (held by {', '.join(acl.roles_with('review'))})")
            return base | {"stage": "first", "status_after": "pending_second_review"}
        first = [r for r in case["reviews"] if r["round"] == case["round"]][-1]
        if first["user"] == user:
            raise AccessError(f"four eyes: {user!r} gave the first review of alert {aid}; the second review must come from another user")
        if "review.approve" not in acl.ROLES.get(role, ()):
            raise AccessError(f"access denied: the second review needs permission 'review.approve' "
                              f"(held by {', '.join(acl.roles_with('review.approve'))}); {user!r} has role {role}")
        after = CLOSED[decision] if decision == first["decision"] else "new"
        return base | {"stage": "second", "status_after": after}

    return _act(store, alert_id, check_alert, build)


def assign(store: Store, alert_id: str, assignee: str, user: str, role: str,
           now: datetime | None = None, check_alert: bool = True) -> dict:  # fmt: skip
    """Assign an alert's case to a user of the store (any user while in setup mode)."""
    users = acl.load_users(store)
    if users and assignee not in users:
        raise NotFound(f"no user {assignee!r} (users: {', '.join(sorted(users))})")

    def build(case, aid):
        return {"time": _now(now), "alert_id": aid, "action": "assign", "user": user, "role": role,
                "assignee": assignee, "status_before": case["status"], "status_after": case["status"]}  # fmt: skip

    return _act(store, alert_id, check_alert, build)


def note(store: Store, alert_id: str, text: str, user: str, role: str,
         now: datetime | None = None, check_alert: bool = True) -> dict:  # fmt: skip
    """Add a note to an alert's case."""
    text = _text(text, "note")

    def build(case, aid):
        return {"time": _now(now), "alert_id": aid, "action": "note", "user": user, "role": role,
                "text": text, "status_before": case["status"], "status_after": case["status"]}  # fmt: skip

    return _act(store, alert_id, check_alert, build)


# ------------------------------------------------------------------ alerts with their cases
def firings(store: Store, until: date | None = None) -> pl.DataFrame:
    """Per alert id: first_seen (earliest as_of) and nights (partitions it appears in)."""
    df = read_alerts(store, latest=False, until=until)
    return df.group_by("alert_id").agg(pl.col("as_of").min().alias("first_seen"), pl.len().alias("nights"))


def alerts_with_cases(store: Store, alerts: pl.DataFrame | None = None) -> list[dict]:
    """Latest alerts (or the given rows) with ``first_seen``, ``repeat`` and their case's
    ``status`` and ``assignee`` — the rows of the review queue."""
    from flowgraph.rules.alerts import alert_json

    df = read_alerts(store) if alerts is None else alerts
    seen = dict(zip(*firings(store).select("alert_id", "first_seen").get_columns(), strict=True))
    cases = cases_of(store, df["alert_id"].to_list())
    rows = []
    for r in df.iter_rows(named=True):
        c = cases[r["alert_id"]]
        first = seen.get(r["alert_id"], r["as_of"])
        rows.append(alert_json(r) | {"first_seen": first, "repeat": first < r["as_of"],
                                     "status": c["status"], "assignee": c["assignee"]})  # fmt: skip
    return rows


def show_alert(store: Store, alert_id: str) -> dict:
    """One alert (latest firing) with ``first_seen``, ``repeat`` and its ``case``."""
    aid = resolve_alert(store, alert_id)
    df = read_alerts(store).filter(pl.col("alert_id") == aid)
    row = alerts_with_cases(store, df)[0]
    row.pop("status")
    row.pop("assignee")
    return row | {"case": public_case(case_of(store, aid))}


def fresh_alerts(store: Store, days: Iterable[date]) -> pl.DataFrame:
    """Alerts of the given as-of partitions that are **new** (no earlier partition has the
    alert id) or **escalated** (their level is higher than at the alert's previous
    firing), with a column ``change`` = new / escalated. What ``score --fail-on`` counts."""
    from flowgraph.rules.model import LEVELS

    rank = {lv: len(LEVELS) - i for i, lv in enumerate(LEVELS)}  # high > medium > low
    every = read_alerts(store, latest=False).select("alert_id", "as_of", "level")
    out = []
    for day in sorted(set(days)):
        part = read_alerts(store, day=day)
        if not part.height:
            continue
        before = (every.filter(pl.col("as_of") < day.isoformat()).sort("as_of")
                  .unique(subset=["alert_id"], keep="last").select("alert_id", pl.col("level").alias("prev_level")))  # fmt: skip
        part = part.join(before, on="alert_id", how="left")
        up = pl.col("level").replace_strict(rank, return_dtype=pl.Int64) > pl.col("prev_level").replace_strict(rank, default=0, return_dtype=pl.Int64)
        part = part.with_columns(
            pl.when(pl.col("prev_level").is_null()).then(pl.lit("new"))
            .when(up).then(pl.lit("escalated")).otherwise(pl.lit(None)).alias("change")
        ).filter(pl.col("change").is_not_null())
        out.append(part)
    return pl.concat(out, how="vertical_relaxed") if out else read_alerts(store, day=date(1970, 1, 1)).with_columns(
        pl.lit(None, pl.Utf8).alias("prev_level"), pl.lit(None, pl.Utf8).alias("change"))


def dispositions(store: Store, alert_ids: Iterable[str] | None = None) -> dict[str, dict]:
    """rule id → {alerts, new, pending_second_review, confirmed, dismissed, precision}
    over the latest alerts (or those given); precision = confirmed / (confirmed + dismissed),
    None before any case was closed — the measured precision of each rule on real work."""
    df = read_alerts(store).select("alert_id", "rule_id")
    if alert_ids is not None:
        df = df.filter(pl.col("alert_id").is_in(list(alert_ids)))
    cases = cases_of(store, df["alert_id"].to_list())
    out: dict[str, dict] = {}
    for aid, rule in df.iter_rows():
        d = out.setdefault(rule, {"alerts": 0, **{s: 0 for s in STATUSES}})
        d["alerts"] += 1
        d[cases[aid]["status"]] += 1
    for d in out.values():
        closed = d["confirmed"] + d["dismissed"]
        d["precision"] = round(d["confirmed"] / closed, 4) if closed else None
    return dict(sorted(out.items()))
