"""Server-rendered pages (Jinja2 + HTMX): log-in and first-run set-up, overview, live view,
events timeline and detail with review, zone editor, export, users, API tokens, audit log.

Pages use the same permission checks and helpers as the JSON API; HTML forms post to the
page routes here (form-encoded, CSRF field), never to the JSON routes.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.templating import Jinja2Templates

from gemwatch.types import Severity
from gemwatch.web import audit, clips
from gemwatch.web.alerts_console import delivery_states
from gemwatch.web.api import camera_states, event_filter, event_out, review, visible_event
from gemwatch.web.auth import (
    ROLE_PERMS,
    AuthError,
    Perm,
    Principal,
    Role,
    authenticate,
    consume_setup_token,
    create_api_token,
    create_user,
    csrf_ok,
    end_session,
    get_user,
    list_users,
    set_disabled,
    set_password,
    set_role,
    setup_token_valid,
    start_session,
    user_count,
)
from gemwatch.web.deps import (
    PRELOGIN_COOKIE,
    SESSION_COOKIE,
    WebContext,
    client_of,
    ctx_of,
    principal_of,
    require,
    same_origin,
)
from gemwatch.web.queries import STATUSES, dt_text, facets, find_events, local_text
from gemwatch.web.schema import ApiTokenRow
from gemwatch.web.zones import config_version

router = APIRouter(include_in_schema=False)
PER_PAGE = 25


def make_templates(ctx: WebContext) -> Jinja2Templates:
    """Templates with filters that print times in this store's timezone."""
    templates = Jinja2Templates(directory=str(Path(__file__).with_name("templates")))
    templates.env.autoescape = True
    templates.env.filters["local"] = lambda ts, seconds=True: local_text(ts, ctx.tz, seconds=seconds)
    templates.env.filters["dt"] = lambda dt: dt_text(dt, ctx.tz)
    return templates


def render(request: Request, name: str, status_code: int = 200, **values: Any) -> HTMLResponse:
    ctx = ctx_of(request)
    p: Principal | None = request.scope.get("principal")
    values.setdefault("user", p)
    values.setdefault("store", ctx.cfg.store)
    values.setdefault("csrf", p.csrf if p else None)
    values.setdefault("perms", {x.value for x in ROLE_PERMS[p.role]} if p else set())
    values.setdefault("tzname", str(ctx.tz))
    templates: Jinja2Templates = request.app.state.templates
    return templates.TemplateResponse(request, name, values, status_code=status_code)


def _safe_next(value: str | None) -> str:
    """Only same-site relative paths: no open redirect after log-in."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


def _cookie_secure(request: Request) -> bool:
    return request.url.scheme == "https"


# log-in, log-out, first-run set-up ----------------------------------------------------------------
def login_page(
    request: Request, status_code: int = 200, error: str | None = None, next_url: str = "/"
) -> HTMLResponse:
    token = request.cookies.get(PRELOGIN_COOKIE) or secrets.token_urlsafe(24)
    resp = render(
        request,
        "login.html",
        status_code,
        error=error,
        next=_safe_next(next_url),
        login_csrf=token,
        user=None,
    )
    resp.set_cookie(
        PRELOGIN_COOKIE, token, httponly=True, samesite="strict", secure=_cookie_secure(request), max_age=3600
    )
    return resp


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str = "/") -> Response:
    ctx = ctx_of(request)
    with ctx.session() as s:
        if user_count(s) == 0:
            return render(request, "setup.html", token="", error=None, user=None, needs_token=True)
    return login_page(request, next_url=next)


@router.post("/login", response_class=HTMLResponse)
def login(
    request: Request,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=1024)],
    csrf_token: Annotated[str, Form(max_length=128)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    ctx = ctx_of(request)
    client = client_of(request)
    if not same_origin(request) or not csrf_ok(request.cookies.get(PRELOGIN_COOKIE), csrf_token):
        return login_page(request, 403, "The log-in form expired; please try again.", next)
    wait = ctx.throttle.retry_after(client, username)
    if wait > 0:
        audit.record(
            ctx.store.engine,
            username[:64] or "-",
            "auth.login_throttled",
            f"user:{username[:64]}",
            {"client": client},
        )
        refused = login_page(request, 429, f"Too many failed log-ins. Try again in {int(wait) + 1} s.", next)
        refused.headers["Retry-After"] = str(int(wait) + 1)
        return refused
    with ctx.session() as s:
        user = authenticate(s, username, password)
        if user is None:
            audit.record(
                s, username[:64] or "-", "auth.login_failed", f"user:{username[:64]}", {"client": client}
            )
            failed = True
        else:
            cookie, _ = start_session(s, user, ctx.cfg.web.session_hours, client)
            audit.record(s, user.username, "auth.login", f"user:{user.username}", {"client": client})
            failed = False
    if failed:
        ctx.throttle.failed(client, username)
        return login_page(request, 401, "Wrong user name or password.", next)
    ctx.throttle.succeeded(username)
    resp: Response = RedirectResponse(_safe_next(next), status_code=303)
    _set_session_cookie(request, resp, cookie, ctx)
    resp.delete_cookie(PRELOGIN_COOKIE)
    return resp


def _set_session_cookie(request: Request, resp: Response, cookie: str, ctx: WebContext) -> None:
    resp.set_cookie(
        SESSION_COOKIE,
        cookie,
        httponly=True,
        samesite="lax",
        secure=_cookie_secure(request),
        max_age=int(ctx.cfg.web.session_hours * 3600),
        path="/",
    )


@router.post("/logout")
def logout(request: Request, p: Annotated[Principal, Depends(require(Perm.VIEW))]) -> Response:
    ctx = ctx_of(request)
    with ctx.session() as s:
        end_session(s, request.cookies.get(SESSION_COOKIE, ""))
        audit.record(s, p.username, "auth.logout", f"user:{p.username}", {"client": client_of(request)})
    ctx.forget_logins()
    resp = RedirectResponse("/login", status_code=303)
    resp.delete_cookie(SESSION_COOKIE, path="/")
    return resp


@router.get("/setup", response_class=HTMLResponse)
def setup_form(request: Request, token: str = "") -> Response:
    ctx = ctx_of(request)
    with ctx.session() as s:
        if user_count(s) > 0:
            return RedirectResponse("/login", status_code=303)
        valid = setup_token_valid(s, token)
    return render(
        request,
        "setup.html",
        200 if valid else 403,
        token=token if valid else "",
        needs_token=not valid,
        error=None if valid or not token else "This set-up link is invalid or expired.",
        user=None,
    )


@router.post("/setup", response_class=HTMLResponse)
def setup(
    request: Request,
    token: Annotated[str, Form(max_length=128)],
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=1024)],
    password2: Annotated[str, Form(max_length=1024)],
) -> Response:
    """The one-time set-up token (printed in the node's log) is the CSRF proof here."""
    ctx = ctx_of(request)
    if not same_origin(request):
        raise HTTPException(403, "cross-site request refused")
    try:
        if password != password2:
            raise AuthError("the two passwords differ")
        with ctx.session() as s:
            user = consume_setup_token(s, token, username, password)
            audit.record(
                s,
                user.username,
                "user.create",
                f"user:{user.username}",
                {"role": "owner", "via": "setup token", "client": client_of(request)},
            )
            cookie, _ = start_session(s, user, ctx.cfg.web.session_hours, client_of(request))
            audit.record(
                s, user.username, "auth.login", f"user:{user.username}", {"client": client_of(request)}
            )
    except AuthError as exc:
        with ctx.session() as s:
            valid = setup_token_valid(s, token)
        return render(
            request,
            "setup.html",
            400,
            token=token if valid else "",
            needs_token=not valid,
            error=str(exc),
            user=None,
        )
    resp = RedirectResponse("/", status_code=303)
    _set_session_cookie(request, resp, cookie, ctx)
    return resp


# overview and live --------------------------------------------------------------------------------
@router.get("/", response_class=HTMLResponse)
def overview(request: Request, p: Annotated[Principal, Depends(require(Perm.VIEW))]) -> Response:
    ctx = ctx_of(request)
    cams = camera_states(ctx, not p.can(Perm.WATCHLIST))
    if request.headers.get("hx-request"):
        return render(request, "_cameras.html", cameras=cams)
    return render(request, "overview.html", cameras=cams)


@router.get("/live/{camera_id}", response_class=HTMLResponse)
def live_page(
    request: Request, camera_id: str, _: Annotated[Principal, Depends(require(Perm.LIVE))]
) -> Response:
    ctx = ctx_of(request)
    cam = ctx.camera(camera_id)
    state = next(c for c in camera_states(ctx, True) if c.id == camera_id)
    return render(request, "live.html", camera=cam, state=state, period_ms=int(1000 / ctx.cfg.web.live_fps))


# events -------------------------------------------------------------------------------------------
@router.get("/events", response_class=HTMLResponse)
def events_page(
    request: Request,
    p: Annotated[Principal, Depends(require(Perm.VIEW))],
    camera: str = "",
    type: str = "",
    severity: str = "",
    zone: str = "",
    status: str = "",
    since: str = "",
    until: str = "",
    page: int = 1,
    per_page: int = PER_PAGE,
) -> Response:
    ctx = ctx_of(request)
    page = max(1, min(page, 100000))
    per_page = max(5, min(per_page, 200))
    args = {
        "camera": camera,
        "type": type,
        "severity": severity,
        "zone": zone,
        "status": status,
        "since": since,
        "until": until,
    }
    error = None
    try:
        f = event_filter(
            p, ctx.tz, camera[:64], type[:64], severity[:16], zone[:64], status[:16], since[:40], until[:40]
        )
    except HTTPException as exc:
        error = str(exc.detail)
        f = event_filter(p, ctx.tz, None, None, None, None, None, None, None)
    with ctx.session() as s:
        rows, total = find_events(s, f, page=page, per_page=per_page)
        items = [event_out(r, ctx) for r in rows]
        options = facets(s)
    if not p.can(Perm.WATCHLIST):
        options["type"] = [t for t in options["type"] if not t.startswith("watchlist")]
    query: dict[str, Any] = {k: v for k, v in args.items() if v}
    if per_page != PER_PAGE:
        query["per_page"] = per_page
    pages = max(1, (total + per_page - 1) // per_page)
    values: dict[str, Any] = {
        "items": items,
        "total": total,
        "page": page,
        "pages": pages,
        "args": args,
        "error": error,
        "prev_url": "/events?" + urlencode({**query, "page": page - 1}) if page > 1 else None,
        "next_url": "/events?" + urlencode({**query, "page": page + 1}) if page < pages else None,
        "options": options,
        "cameras": ctx.cfg.cameras,
        "severities": [s.value for s in Severity],
        "statuses": STATUSES,
    }
    if request.headers.get("hx-request") and request.headers.get("hx-target") == "event-table":
        return render(request, "_events_table.html", **values)
    return render(request, "events.html", **values)


@router.get("/events/{event_id}", response_class=HTMLResponse)
def event_page(
    request: Request, event_id: str, p: Annotated[Principal, Depends(require(Perm.VIEW))]
) -> Response:
    ctx = ctx_of(request)
    with ctx.session() as s:
        row = visible_event(ctx, s, event_id, p)
        ev = event_out(row, ctx)
        clip = clips.inside(ctx.data_dir, row.clip_path)
    playable = clip is not None and clips.browser_playable(clip)
    return render(
        request,
        "event.html",
        ev=ev,
        deliveries=delivery_states(ctx, ev.id),
        clip_name=clip.name if clip else None,
        clip_type=clips.media_type(clip) if clip else None,
        playable=playable,
    )


@router.post("/events/{event_id}/review", response_class=HTMLResponse)
def review_form(
    request: Request,
    event_id: str,
    p: Annotated[Principal, Depends(require(Perm.ACK))],
    action: Annotated[str, Form(max_length=16)],
    note: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    if action not in ("ack", "resolve", "false_alarm", "reopen", "note"):
        raise HTTPException(400, "unknown action")
    if action != "ack" and not p.can(Perm.REVIEW):
        raise HTTPException(403, f"the {p.role.value} role may only acknowledge")
    if action == "note" and not note.strip():
        raise HTTPException(400, "the note is empty")
    ev = review(ctx_of(request), event_id, p, action, note or None, client_of(request))
    if request.headers.get("hx-request"):
        return render(request, "_review.html", ev=ev)
    return RedirectResponse(f"/events/{ev.id}", status_code=303)


# zone editor --------------------------------------------------------------------------------------
@router.get("/cameras/{camera_id}/zones", response_class=HTMLResponse)
def zone_editor(
    request: Request, camera_id: str, _: Annotated[Principal, Depends(require(Perm.CONFIG))]
) -> Response:
    ctx = ctx_of(request)
    cam = ctx.camera(camera_id)
    version = None
    if ctx.config_path is not None and ctx.config_path.exists():
        version = config_version(ctx.config_path.read_text(encoding="utf-8"))
    from gemwatch.config.models import ZoneKind

    return render(
        request,
        "zones.html",
        camera=cam,
        zones=[z.model_dump(mode="json") for z in cam.zones],
        version=version,
        kinds=[k.value for k in ZoneKind],
        can_save=ctx.config_path is not None,
    )


# export -------------------------------------------------------------------------------------------
@router.get("/export", response_class=HTMLResponse)
def export_page(request: Request, _: Annotated[Principal, Depends(require(Perm.EXPORT))]) -> Response:
    return render(request, "export.html", cameras=ctx_of(request).cfg.cameras)


# users and tokens ---------------------------------------------------------------------------------
@router.get("/users", response_class=HTMLResponse)
def users_page(request: Request, _: Annotated[Principal, Depends(require(Perm.USERS))]) -> Response:
    return _users_view(request)


@router.post("/users", response_class=HTMLResponse)
def users_form(
    request: Request,
    p: Annotated[Principal, Depends(require(Perm.USERS))],
    op: Annotated[str, Form(max_length=16)],
    username: Annotated[str, Form(max_length=64)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    role: Annotated[str, Form(max_length=16)] = "",
    token_name: Annotated[str, Form(max_length=64)] = "",
    token_id: Annotated[int, Form(ge=0, le=2**31 - 1)] = 0,
) -> Response:
    """One form handler for the users page: create, change role, (re-)enable, disable,
    reset password, create or revoke an API token. Every change is audited."""
    ctx = ctx_of(request)
    client = client_of(request)
    error = None
    secret = None
    try:
        with ctx.session() as s:
            if op == "create":
                u = create_user(s, username, password, role)
                audit.record(
                    s, p.username, "user.create", f"user:{u.username}", {"role": u.role, "client": client}
                )
            elif op in ("role", "disable", "enable", "password", "token"):
                u2 = get_user(s, username)
                if u2 is None:
                    raise AuthError(f"no user '{username}'")
                if op == "role":
                    old = u2.role
                    set_role(s, u2, role)
                    audit.record(
                        s,
                        p.username,
                        "user.update",
                        f"user:{u2.username}",
                        {"role": [old, u2.role], "client": client},
                    )
                elif op in ("disable", "enable"):
                    set_disabled(s, u2, op == "disable")
                    audit.record(
                        s,
                        p.username,
                        "user.update",
                        f"user:{u2.username}",
                        {"disabled": op == "disable", "client": client},
                    )
                elif op == "password":
                    set_password(s, u2, password)
                    audit.record(
                        s,
                        p.username,
                        "user.update",
                        f"user:{u2.username}",
                        {"password": "changed", "client": client},
                    )
                else:
                    secret, row = create_api_token(s, u2, token_name or "integration")
                    audit.record(
                        s,
                        p.username,
                        "token.create",
                        f"user:{u2.username}",
                        {"name": row.name, "client": client},
                    )
            elif op == "revoke":
                tok = s.get(ApiTokenRow, token_id)
                if tok is None:
                    raise AuthError("no such token")
                tok.revoked = True
                audit.record(
                    s, p.username, "token.revoke", f"token:{tok.id}", {"name": tok.name, "client": client}
                )
            else:
                raise AuthError("unknown operation")
    except AuthError as exc:
        error = str(exc)
    ctx.forget_logins()
    return _users_view(request, error=error, secret=secret)


def _users_view(request: Request, *, error: str | None = None, secret: str | None = None) -> Response:
    """The users and tokens page, after a change too (400 with the reason when it was refused)."""
    with ctx_of(request).session() as s:
        users = list_users(s)
        tokens = list(s.query(ApiTokenRow).order_by(ApiTokenRow.id))
        names = {u.id: u.username for u in users}
    return render(
        request,
        "users.html",
        400 if error else 200,
        users=users,
        tokens=tokens,
        names=names,
        roles=[r.value for r in Role],
        error=error,
        secret=secret,
    )


# audit --------------------------------------------------------------------------------------------
@router.get("/audit", response_class=HTMLResponse)
def audit_page(
    request: Request,
    _: Annotated[Principal, Depends(require(Perm.AUDIT))],
    action: str = "",
    actor: str = "",
    page: int = 1,
) -> Response:
    ctx = ctx_of(request)
    page = max(1, min(page, 100000))
    with ctx.session() as s:
        rows = audit.query(
            s, action=action[:64] or None, actor=actor[:64] or None, limit=100, offset=(page - 1) * 100
        )
    query = {k: v for k, v in {"action": action, "actor": actor}.items() if v}
    return render(
        request,
        "audit.html",
        rows=rows,
        action=action,
        actor=actor,
        page=page,
        prev_url="/audit?" + urlencode({**query, "page": page - 1}) if page > 1 else None,
        next_url="/audit?" + urlencode({**query, "page": page + 1}) if len(rows) == 100 else None,
    )


async def unauthorised_page(request: Request) -> HTMLResponse:
    """What a browser gets for a page it may not see anonymously: the log-in form, status 401."""
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return await run_in_threadpool(login_page, request, 401, None, target)


async def forbidden_page(request: Request, detail: str, status_code: int) -> HTMLResponse:
    await principal_of(request)
    return render(request, "error.html", status_code, code=status_code, detail=detail)
