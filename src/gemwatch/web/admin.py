"""User administration from the command line (``gemwatch user …``), audited like the console.

Works on the node's database directly, so it also helps when nobody can log in (lost owner
password, first run without the set-up link at hand). The actor in the audit log is
``cli:<operating-system user>``.
"""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy.orm import Session

from gemwatch.config.models import GemwatchConfig
from gemwatch.events.store import EventStore
from gemwatch.web import audit
from gemwatch.web.auth import (
    AuthError,
    create_user,
    get_user,
    issue_setup_token,
    list_users,
    set_disabled,
    set_password,
    set_role,
    user_count,
)


@dataclass(frozen=True, slots=True)
class UserInfo:
    username: str
    role: str
    disabled: bool
    last_login: str


def cli_actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


@contextmanager
def _session(cfg: GemwatchConfig) -> Iterator[Session]:
    store = EventStore(cfg.storage.resolved_database_url(), cfg.store.tz)
    try:
        with Session(store.engine) as s, s.begin():
            yield s
    finally:
        store.close()


def users(cfg: GemwatchConfig) -> list[UserInfo]:
    from gemwatch.web.queries import dt_text

    with _session(cfg) as s:
        return [
            UserInfo(u.username, u.role, bool(u.disabled), dt_text(u.last_login_at, cfg.store.tz))
            for u in list_users(s)
        ]


def add(cfg: GemwatchConfig, username: str, password: str, role: str) -> None:
    with _session(cfg) as s:
        user = create_user(s, username, password, role)
        audit.record(s, cli_actor(), "user.create", f"user:{user.username}", {"role": user.role})


def change(
    cfg: GemwatchConfig,
    username: str,
    *,
    password: str | None = None,
    role: str | None = None,
    disabled: bool | None = None,
) -> None:
    with _session(cfg) as s:
        user = get_user(s, username)
        if user is None:
            raise AuthError(f"no user '{username}'")
        detail: dict[str, object] = {}
        if role is not None:
            detail["role"] = [user.role, role]
            set_role(s, user, role)
        if disabled is not None:
            detail["disabled"] = disabled
            set_disabled(s, user, disabled)
        if password is not None:
            set_password(s, user, password)
            detail["password"] = "changed"
        audit.record(s, cli_actor(), "user.update", f"user:{user.username}", detail)


def setup_token(cfg: GemwatchConfig) -> str:
    """A new one-time set-up token; refused once any user exists (use ``user add`` then)."""
    with _session(cfg) as s:
        if user_count(s) > 0:
            raise AuthError("users exist already; add more with 'gemwatch user add' or in the console")
        token = issue_setup_token(s)
        audit.record(s, cli_actor(), "setup.token", "setup", {})
        return token
