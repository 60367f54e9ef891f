"""Users, roles, passwords, browser sessions, API tokens, the first-run set-up token, login throttle.

No FastAPI here: the CLI (``gemwatch user …``) manages users with the same functions the web
console uses. Secrets the client holds (session cookie, API token, set-up token) are random
and only their SHA-256 is stored, so a stolen database copy opens nothing; passwords are
argon2id hashes. Every function takes an open SQLAlchemy ``Session`` and leaves committing to
the caller, so a change and its audit line commit together.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gemwatch.web.schema import ApiTokenRow, SessionRow, SetupTokenRow, UserRow


class Role(StrEnum):
    OWNER = "owner"
    MANAGER = "manager"
    SECURITY = "security"
    STAFF = "staff"
    AUDITOR = "auditor"


class Perm(StrEnum):
    """What a request may do. Routes name one permission; roles hold sets of them."""

    VIEW = "view"  # overview, camera list, events and snapshots
    LIVE = "live"  # live pictures
    CLIPS = "clips"  # play a clip (audited)
    EXPORT = "export"  # download a clip or a multi-camera zip (audited)
    ACK = "ack"  # acknowledge an event
    REVIEW = "review"  # resolve, mark false alarm, notes
    CONFIG = "config"  # zone editor and other config changes
    USERS = "users"  # create, change and disable users; API tokens
    AUDIT = "audit"  # read and export the audit log
    WATCHLIST = "watchlist"  # see watchlist events and faces


ROLE_PERMS: dict[Role, frozenset[Perm]] = {
    Role.OWNER: frozenset(Perm),
    Role.MANAGER: frozenset(
        {Perm.VIEW, Perm.LIVE, Perm.CLIPS, Perm.EXPORT, Perm.ACK, Perm.REVIEW, Perm.CONFIG, Perm.WATCHLIST}
    ),
    Role.SECURITY: frozenset(
        {Perm.VIEW, Perm.LIVE, Perm.CLIPS, Perm.EXPORT, Perm.ACK, Perm.REVIEW, Perm.WATCHLIST}
    ),
    # Shop-floor staff answer alerts but must not learn who is on the watchlist.
    Role.STAFF: frozenset({Perm.VIEW, Perm.LIVE, Perm.CLIPS, Perm.ACK}),
    # Read-only: sees everything that happened, changes nothing, and reads the audit log.
    Role.AUDITOR: frozenset({Perm.VIEW, Perm.CLIPS, Perm.EXPORT, Perm.AUDIT, Perm.WATCHLIST}),
}

WATCHLIST_EVENT_PREFIX = "watchlist"
MIN_PASSWORD = 10
SETUP_TOKEN_HOURS = 24.0
_hasher = PasswordHasher()
# Verifying against this keeps a login for an unknown user as slow as one for a known user.
_DUMMY_HASH = _hasher.hash("gemwatch-timing-equaliser")


class AuthError(ValueError):
    """A user-facing refusal (bad name, weak password, unknown role); the message says why."""


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is asking: from a session cookie (``csrf`` set) or an API token (``csrf`` None)."""

    user_id: int
    username: str
    role: Role
    csrf: str | None = None
    via_token: bool = False

    def can(self, perm: Perm) -> bool:
        return perm in ROLE_PERMS[self.role]


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(dt: datetime) -> datetime:
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)


# users --------------------------------------------------------------------------------------------
def check_username(name: str) -> str:
    name = name.strip()
    if not (1 <= len(name) <= 64) or not all(c.isalnum() or c in "._-@" for c in name):
        raise AuthError("a user name is 1-64 letters, digits or . _ - @")
    return name


def check_password(password: str, username: str = "") -> None:
    if len(password) < MIN_PASSWORD:
        raise AuthError(f"a password needs at least {MIN_PASSWORD} characters")
    if len(password) > 1024:
        raise AuthError("a password may have at most 1024 characters")
    if username and password.lower() == username.lower():
        raise AuthError("the password must not be the user name")


def parse_role(value: str) -> Role:
    try:
        return Role(value)
    except ValueError:
        raise AuthError(f"unknown role '{value}' (one of: {', '.join(r.value for r in Role)})") from None


def user_count(s: Session) -> int:
    return int(s.scalar(select(func.count()).select_from(UserRow)) or 0)


def get_user(s: Session, username: str) -> UserRow | None:
    return s.scalar(select(UserRow).where(UserRow.username == username))


def list_users(s: Session) -> list[UserRow]:
    return list(s.scalars(select(UserRow).order_by(UserRow.username)))


def create_user(s: Session, username: str, password: str, role: Role | str) -> UserRow:
    username = check_username(username)
    check_password(password, username)
    role = parse_role(role) if isinstance(role, str) else role
    if get_user(s, username) is not None:
        raise AuthError(f"user '{username}' exists already")
    now = _now()
    user = UserRow(
        username=username,
        password_hash=_hasher.hash(password),
        role=role.value,
        disabled=False,
        created_at=now,
        updated_at=now,
    )
    s.add(user)
    s.flush()
    return user


def set_password(s: Session, user: UserRow, password: str) -> None:
    """Change a password and log the user out everywhere (old sessions die with the old secret)."""
    check_password(password, user.username)
    user.password_hash = _hasher.hash(password)
    user.updated_at = _now()
    end_sessions(s, user.id)


def set_role(s: Session, user: UserRow, role: Role | str) -> None:
    role = parse_role(role) if isinstance(role, str) else role
    if user.role == Role.OWNER and role != Role.OWNER and _active_owners(s) <= 1:
        raise AuthError("the last owner cannot lose the owner role")
    user.role = role.value
    user.updated_at = _now()


def set_disabled(s: Session, user: UserRow, disabled: bool) -> None:
    if disabled and user.role == Role.OWNER and not user.disabled and _active_owners(s) <= 1:
        raise AuthError("the last owner cannot be disabled")
    user.disabled = disabled
    user.updated_at = _now()
    if disabled:
        end_sessions(s, user.id)
        for token in s.scalars(select(ApiTokenRow).where(ApiTokenRow.user_id == user.id)):
            token.revoked = True


def _active_owners(s: Session) -> int:
    q = select(func.count()).select_from(UserRow).where(UserRow.role == Role.OWNER.value, ~UserRow.disabled)
    return int(s.scalar(q) or 0)


def authenticate(s: Session, username: str, password: str) -> UserRow | None:
    """The user when the password matches and the account is enabled; else None (same cost)."""
    user = get_user(s, username)
    if user is None or user.disabled:
        with contextlib.suppress(VerificationError):
            _hasher.verify(_DUMMY_HASH, password + "x")
        return None
    try:
        _hasher.verify(user.password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    user.last_login_at = _now()
    return user


# browser sessions ---------------------------------------------------------------------------------
def start_session(
    s: Session, user: UserRow, hours: float, client: str | None = None
) -> tuple[str, SessionRow]:
    """A new login: returns the cookie value (shown once) and the stored row."""
    token = secrets.token_urlsafe(32)
    now = _now()
    row = SessionRow(
        id_hash=digest(token),
        user_id=user.id,
        csrf_token=secrets.token_urlsafe(32),
        created_at=now,
        expires_at=now + timedelta(hours=hours),
        client=(client or "")[:128] or None,
    )
    s.add(row)
    s.flush()
    return token, row


def session_principal(s: Session, cookie: str) -> Principal | None:
    row = s.get(SessionRow, digest(cookie))
    if row is None:
        return None
    if _aware(row.expires_at) <= _now():
        s.delete(row)
        return None
    user = s.get(UserRow, row.user_id)
    if user is None or user.disabled:
        return None
    return Principal(user.id, user.username, Role(user.role), csrf=row.csrf_token)


def end_session(s: Session, cookie: str) -> None:
    row = s.get(SessionRow, digest(cookie))
    if row is not None:
        s.delete(row)


def end_sessions(s: Session, user_id: int) -> None:
    for row in s.scalars(select(SessionRow).where(SessionRow.user_id == user_id)):
        s.delete(row)


def purge_expired_sessions(s: Session) -> int:
    rows = list(s.scalars(select(SessionRow).where(SessionRow.expires_at <= _now())))
    for row in rows:
        s.delete(row)
    return len(rows)


def csrf_ok(expected: str | None, given: str | None) -> bool:
    return bool(expected) and bool(given) and hmac.compare_digest(str(expected), str(given))


# API tokens ---------------------------------------------------------------------------------------
TOKEN_PREFIX = "gw_"


def create_api_token(s: Session, user: UserRow, name: str) -> tuple[str, ApiTokenRow]:
    name = name.strip()
    if not (1 <= len(name) <= 64):
        raise AuthError("a token name is 1-64 characters")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiTokenRow(user_id=user.id, name=name, token_hash=digest(token), created_at=_now(), revoked=False)
    s.add(row)
    s.flush()
    return token, row


def token_principal(s: Session, token: str) -> Principal | None:
    if not token.startswith(TOKEN_PREFIX):
        return None
    row = s.scalar(select(ApiTokenRow).where(ApiTokenRow.token_hash == digest(token)))
    if row is None or row.revoked:
        return None
    user = s.get(UserRow, row.user_id)
    if user is None or user.disabled:
        return None
    now = _now()
    if row.last_used_at is None or now - _aware(row.last_used_at) > timedelta(minutes=1):
        row.last_used_at = now
    return Principal(user.id, user.username, Role(user.role), via_token=True)


# the first-run set-up token -----------------------------------------------------------------------
def issue_setup_token(s: Session, hours: float = SETUP_TOKEN_HOURS) -> str:
    """A one-time token that lets whoever reads the node's log create the owner account."""
    token = secrets.token_urlsafe(24)
    now = _now()
    s.add(SetupTokenRow(token_hash=digest(token), created_at=now, expires_at=now + timedelta(hours=hours)))
    s.flush()
    return token


def setup_token_valid(s: Session, token: str) -> bool:
    if not token or user_count(s) > 0:
        return False
    row = s.get(SetupTokenRow, digest(token))
    return row is not None and row.used_at is None and _aware(row.expires_at) > _now()


def consume_setup_token(s: Session, token: str, username: str, password: str) -> UserRow:
    """Create the owner with a valid set-up token; the token (and every other) is then dead."""
    if not setup_token_valid(s, token):
        raise AuthError("this set-up link is invalid, used or expired; run 'gemwatch user setup-token'")
    user = create_user(s, username, password, Role.OWNER)
    now = _now()
    for row in s.scalars(select(SetupTokenRow).where(SetupTokenRow.used_at.is_(None))):
        row.used_at = now
    return user


# login throttle -----------------------------------------------------------------------------------
class LoginThrottle:
    """At most ``limit`` failed logins per client address and per user name in ``window_s``.

    In memory: a node restart forgives, which is acceptable next to argon2's cost per guess.
    Keys per user name stop a slow spread-out guess at one account; keys per address stop one
    machine guessing many accounts.
    """

    def __init__(self, limit: int = 5, window_s: float = 300.0) -> None:
        self.limit = limit
        self.window_s = window_s
        self._fails: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        q = self._fails.setdefault(key, deque())
        while q and now - q[0] > self.window_s:
            q.popleft()
        return q

    def retry_after(self, client: str, username: str, now: float | None = None) -> float:
        """Seconds until another attempt is allowed (0 = allowed now)."""
        now = time.monotonic() if now is None else now
        wait = 0.0
        with self._lock:
            for key in (f"ip:{client}", f"user:{username.lower()}"):
                q = self._recent(key, now)
                if len(q) >= self.limit:
                    wait = max(wait, self.window_s - (now - q[0]))
        return wait

    def failed(self, client: str, username: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            for key in (f"ip:{client}", f"user:{username.lower()}"):
                self._recent(key, now).append(now)
            if len(self._fails) > 10000:  # a flood of distinct names: keep memory bounded
                self._fails = {k: v for k, v in self._fails.items() if v and now - v[-1] < self.window_s}

    def succeeded(self, username: str) -> None:
        with self._lock:
            self._fails.pop(f"user:{username.lower()}", None)
