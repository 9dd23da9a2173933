"""Sign-in for the browser workbench: passwords, sessions and CSRF tokens.

**Passwords** are set by an admin with ``flowgraph users passwd NAME`` for a user of the
store's user table (``flowgraph users add``) and kept in ``<store>/passwords.json``
(owner-only, written atomically) as scrypt hashes (RFC 7914; ``hashlib.scrypt`` with
N=2^15, r=8, p=1, a 16-byte random salt, a 32-byte key)::

    {"users": {"ana": {"hash": "scrypt$32768$8$1$<salt b64>$<key b64>",
                       "set_by": "root", "set_at": "2026-11-28T19:00:00Z"}}}

Verification recomputes the key with the stored parameters and compares in constant time.
A user removed from the user table can no longer sign in, whatever the password file says;
the role is read from the user table on every request, so a role change applies at once.

**Sessions** are server-side: a random 256-bit id in a cookie (``HttpOnly``,
``SameSite=Strict``, ``Secure`` over HTTPS, ``Path=/``); the server keeps only the
SHA-256 of the id, the user, a CSRF token and the times. A session ends on sign-out,
after 30 minutes idle or 12 hours in all, and when the server restarts.

**CSRF**: every form carries the session's CSRF token and every POST checks it (and, when
the browser sends one, that the ``Origin`` header is this server); the sign-in form uses a
double-submit token in a pre-session cookie. With ``SameSite=Strict`` a cross-site form
cannot even send the session cookie.

Failed sign-ins are counted per user name: after 5 failures in 15 minutes that name is
refused for the rest of the 15 minutes (whatever the password).

>>> h = hash_password("correct horse battery")
>>> h.startswith("scrypt$"), verify_password("correct horse battery", h), verify_password("wrong", h)
(True, True, False)
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from flowgraph.core.errors import InvalidValue, NotFound, StoreError
from flowgraph.core.files import atomic_write_bytes
from flowgraph.security import access as acl
from flowgraph.store.embedded import Store

PASSWORDS = "passwords.json"
MIN_PASSWORD = 10
SCRYPT_N, SCRYPT_R, SCRYPT_P, KEY_LEN = 2**15, 8, 1, 32
COOKIE = "flowgraph_session"
SIGNIN_COOKIE = "flowgraph_signin"
IDLE_S = 30 * 60
ABSOLUTE_S = 12 * 3600
MAX_FAILURES, FAILURE_WINDOW_S = 5, 15 * 60


# ------------------------------------------------------------------ passwords
def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


def hash_password(password: str, *, n: int = SCRYPT_N, salt: bytes | None = None) -> str:
    """``scrypt$N$r$p$salt$key`` for a password (a new random salt unless given)."""
    salt = salt or secrets.token_bytes(16)
    key = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=SCRYPT_R, p=SCRYPT_P,
                         maxmem=256 * n * SCRYPT_R, dklen=KEY_LEN)  # fmt: skip
    return f"scrypt${n}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(key)}"


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches a :func:`hash_password` string (constant-time compare)."""
    try:
        scheme, n, r, p, salt, key = stored.split("$")
        n, r, p = int(n), int(r), int(p)
        salt, key = base64.b64decode(salt), base64.b64decode(key)
    except (ValueError, TypeError):
        return False
    if scheme != "scrypt":
        return False
    got = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=256 * n * r, dklen=len(key))
    return hmac.compare_digest(got, key)


def _load(store: Store) -> dict[str, dict]:
    path = store.root / PASSWORDS
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise StoreError(f"{path}: damaged password file ({e}); set the passwords again") from None
    users = data.get("users") if isinstance(data, dict) else None
    if not isinstance(users, dict):
        raise StoreError(f"{path}: damaged password file (expected users → hash); set the passwords again")
    return users


def set_password(store: Store, name: str, password: str, set_by: str, now: datetime | None = None) -> None:
    """Set (or replace) the password of a user of the store's user table."""
    if name not in acl.load_users(store):
        raise NotFound(f"no user {name!r}: add it first with `flowgraph users add {name} --role ROLE`")
    if len(password) < MIN_PASSWORD:
        raise InvalidValue(f"password too short: use at least {MIN_PASSWORD} characters")
    with store.lock():
        users = _load(store)
        users[name] = {"hash": hash_password(password), "set_by": set_by,
                       "set_at": (now or datetime.now(UTC)).isoformat(timespec="seconds").replace("+00:00", "Z")}  # fmt: skip
        body = json.dumps({"users": dict(sorted(users.items()))}, indent=2, sort_keys=True) + "\n"
        atomic_write_bytes(store.root / PASSWORDS, body.encode())


_DUMMY = hash_password("not a password", salt=b"\0" * 16)


def check_credentials(store: Store, name: str, password: str) -> acl.Actor | None:
    """The actor for a correct user name and password, else None. Takes the same time
    whether or not the user exists (a dummy hash is checked for unknown names)."""
    entry = _load(store).get(name)
    ok = verify_password(password, entry["hash"] if entry else _DUMMY)
    role = acl.load_users(store).get(name, {}).get("role")
    if not (ok and entry and role):
        return None
    return acl.Actor(name, acl.os_login(), role, False)


# ------------------------------------------------------------------ sessions
@dataclass
class Session:
    user: str
    csrf: str
    created: float
    seen: float


@dataclass
class Sessions:
    """Server-side sessions, keyed by the SHA-256 of the cookie value."""

    idle_s: float = IDLE_S
    absolute_s: float = ABSOLUTE_S
    _by_hash: dict[str, Session] = field(default_factory=dict)
    _failures: dict[str, list[float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @staticmethod
    def _key(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()

    def create(self, user: str) -> tuple[str, Session]:
        token = secrets.token_urlsafe(32)
        now = time.monotonic()
        s = Session(user, secrets.token_urlsafe(32), now, now)
        with self._lock:
            self._by_hash[self._key(token)] = s
            self._failures.pop(user, None)
        return token, s

    def get(self, token: str | None) -> Session | None:
        if not token:
            return None
        now = time.monotonic()
        with self._lock:
            s = self._by_hash.get(self._key(token))
            if s is None:
                return None
            if now - s.seen > self.idle_s or now - s.created > self.absolute_s:
                del self._by_hash[self._key(token)]
                return None
            s.seen = now
            return s

    def end(self, token: str | None) -> None:
        if token:
            with self._lock:
                self._by_hash.pop(self._key(token), None)

    def locked_out(self, user: str) -> bool:
        now = time.monotonic()
        with self._lock:
            recent = [t for t in self._failures.get(user, []) if now - t < FAILURE_WINDOW_S]
            self._failures[user] = recent
            return len(recent) >= MAX_FAILURES

    def failed(self, user: str) -> None:
        with self._lock:
            self._failures.setdefault(user, []).append(time.monotonic())


def same_token(a: str | None, b: str | None) -> bool:
    """Constant-time equality of two tokens (False when either is missing)."""
    return bool(a) and bool(b) and hmac.compare_digest(a.encode(), b.encode())
