"""What every route needs: the shared context, who is asking, and whether they may.

Authentication is a session cookie (browsers) or ``Authorization: Bearer gw_…`` (integrations).
Every state-changing request made with a cookie must carry the session's CSRF token (header
``X-CSRF-Token`` or form field ``csrf_token``) and, when the browser sends one, an ``Origin``
that is this server; bearer tokens are not sent by browsers on their own, so they need neither.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from fastapi import HTTPException, Request
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from gemwatch.config.models import Camera, GemwatchConfig
from gemwatch.events.store import EventStore
from gemwatch.web.auth import (
    LoginThrottle,
    Perm,
    Principal,
    csrf_ok,
    digest,
    session_principal,
    token_principal,
)
from gemwatch.web.hub import Hub

SESSION_COOKIE = "gw_session"
PRELOGIN_COOKIE = "gw_prelogin"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
PRINCIPAL_TTL_S = 5.0


class NodeControl(Protocol):
    """What the running node offers the console (absent when the console runs on its own)."""

    def reload_camera(self, camera: Camera) -> bool: ...


class Acknowledger(Protocol):
    """The alerts package's ``AlertService``: a console acknowledgement goes through it so
    escalation stops and the machines are told (absent without the alerts package)."""

    def acknowledge(self, event_id: str, by: str, *, via: str, client: str | None = None) -> Any: ...


@dataclass(slots=True)
class WebContext:
    cfg: GemwatchConfig
    store: EventStore
    config_path: Path | None = None
    hub: Hub = field(default_factory=Hub)
    control: NodeControl | None = None
    alerts: Acknowledger | None = None
    throttle: LoginThrottle = field(default_factory=LoginThrottle)
    clip_views: dict[tuple[str, str], float] = field(default_factory=dict)
    # Recently verified credentials (digest -> (expiry, principal)): a live view asks several
    # times a second, and a database round trip per picture is most of a request's CPU.
    known: dict[str, tuple[float, Principal]] = field(default_factory=dict)

    def forget_logins(self) -> None:
        """Drop cached credentials after a log-out, a user change or a token revocation here
        (changes made by ``gemwatch user`` in another process apply within PRINCIPAL_TTL_S)."""
        self.known.clear()

    @property
    def tz(self) -> ZoneInfo:
        return self.cfg.store.tz

    @property
    def data_dir(self) -> Path:
        return Path(self.cfg.storage.data_dir)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One transaction: committed when the block ends, rolled back on error."""
        with Session(self.store.engine, expire_on_commit=False) as s, s.begin():
            yield s

    def camera(self, camera_id: str) -> Camera:
        try:
            return self.cfg.camera(camera_id)
        except KeyError:
            raise HTTPException(404, f"no camera '{camera_id}'") from None


def ctx_of(request: Request) -> WebContext:
    ctx: WebContext = request.app.state.ctx
    return ctx


def client_of(request: Request) -> str:
    return request.client.host if request.client else "-"


def _lookup(ctx: WebContext, cookie: str | None, bearer: str | None) -> Principal | None:
    with ctx.session() as s:
        if bearer:
            return token_principal(s, bearer)
        if cookie:
            return session_principal(s, cookie)
    return None


async def principal_of(request: Request) -> Principal | None:
    """Who sent this request, or None (cached on the request)."""
    if "principal" in request.scope:
        cached: Principal | None = request.scope["principal"]
        return cached
    auth = request.headers.get("authorization", "")
    bearer = auth[7:].strip() if auth[:7].lower() == "bearer " else None
    cookie = request.cookies.get(SESSION_COOKIE)
    p: Principal | None = None
    if bearer or cookie:
        ctx = ctx_of(request)
        key = digest(f"b:{bearer}" if bearer else f"c:{cookie}")
        now = time.monotonic()
        hit = ctx.known.get(key)
        if hit is not None and hit[0] > now:
            p = hit[1]
        else:
            p = await run_in_threadpool(_lookup, ctx, cookie, bearer)
            if p is not None:
                if len(ctx.known) > 10000:
                    ctx.known.clear()
                ctx.known[key] = (now + PRINCIPAL_TTL_S, p)
    request.scope["principal"] = p
    return p


def same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    if origin is None:
        return True
    host = request.headers.get("host", "")
    return urlsplit(origin).netloc.lower() == host.lower()


async def check_csrf(request: Request, p: Principal) -> None:
    if request.method in SAFE_METHODS or p.via_token:
        return
    if not same_origin(request):
        raise HTTPException(403, "cross-site request refused (Origin does not match)")
    given = request.headers.get(CSRF_HEADER)
    if given is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form()
        value = form.get("csrf_token")
        given = value if isinstance(value, str) else None
    if not csrf_ok(p.csrf, given):
        raise HTTPException(403, "missing or wrong CSRF token")


def require(perm: Perm) -> Callable[[Request], Awaitable[Principal]]:
    """A dependency: 401 without credentials, 403 without ``perm`` or without CSRF token."""

    async def dependency(request: Request) -> Principal:
        p = await principal_of(request)
        if p is None:
            raise HTTPException(401, "log in first", headers={"WWW-Authenticate": 'Bearer realm="gemwatch"'})
        if not p.can(perm):
            raise HTTPException(403, f"the {p.role.value} role may not do this ({perm.value})")
        await check_csrf(request, p)
        return p

    dependency.perm = perm  # type: ignore[attr-defined]
    return dependency


def route_permissions(app: Any) -> dict[tuple[str, str], Perm | None]:
    """(method, path) -> the permission a route requires (None = public). For tests and docs.

    Walks included routers too (FastAPI ≥ 0.120 keeps them as lazy ``_IncludedRouter`` nodes
    with ``original_router`` and a prefix; older versions copy their routes into the app).
    """
    out: dict[tuple[str, str], Perm | None] = {}

    def walk(routes: list[Any], prefix: str) -> None:
        for route in routes:
            included = getattr(route, "original_router", None)
            if included is not None:
                context = getattr(route, "include_context", None)
                walk(list(included.routes), prefix + str(getattr(context, "prefix", "") or ""))
                continue
            methods = getattr(route, "methods", None)
            dependant = getattr(route, "dependant", None)
            if not methods or dependant is None:
                continue
            perm = None
            stack = list(dependant.dependencies)
            while stack:
                d = stack.pop()
                perm = getattr(d.call, "perm", None) or perm
                stack.extend(d.dependencies)
            for m in methods:
                out[(m, prefix + route.path)] = perm

    walk(list(app.routes), "")
    return out
