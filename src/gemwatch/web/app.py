"""Build the FastAPI application of the web console.

``build_app(ctx)`` wires the JSON API (``/api/v1``, OpenAPI at ``/api/v1/openapi.json``, both
behind log-in), the pages, vendored static files, the alerts router (``/a/``) when that package
is installed, a request-size limit, security headers, and error pages that never leak a
traceback: browsers get HTML, API clients get ``{"detail": …}``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gemwatch import __version__
from gemwatch.web import alerts_console, api, pages, watchlist_pages
from gemwatch.web.auth import Perm, Principal
from gemwatch.web.deps import WebContext, require

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1 << 20  # zones, notes and forms are small; a 10 MB body is refused (413)
# Enrollment photos come from phones (2-8 MB each, up to 8 of them): that one form gets more.
UPLOAD_BODY_BYTES = 48 << 20
UPLOAD_PATHS = ("/watchlist/enroll",)
_CSP = (
    "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; style-src 'self'; "
    "script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
)


class BodyLimit:
    """Pure ASGI middleware: refuse bodies over ``limit`` bytes before anything parses them."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.default_limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = UPLOAD_BODY_BYTES if scope.get("path") in UPLOAD_PATHS else self.default_limit
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None:
            try:
                too_big = int(declared) > limit
            except ValueError:
                too_big = True
            if too_big:
                await _plain(send, 413, b'{"detail":"request body too large"}')
                return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _TooLarge()
            return message

        try:
            await self.app(scope, limited, send)
        except _TooLarge:
            await _plain(send, 413, b'{"detail":"request body too large"}')


class SecurityHeaders:
    """Pure ASGI middleware (streams such as SSE and MJPEG pass untouched): no sniffing, no
    framing, same-origin referrers, a strict CSP for the console's own pages, HSTS over TLS."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = [
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"same-origin"),
            (b"x-frame-options", b"DENY"),
        ]
        if not scope["path"].startswith("/a/"):  # the alerts package's one-tap pages style inline
            extra.append((b"content-security-policy", _CSP.encode()))
        if scope.get("scheme") == "https":
            extra.append((b"strict-transport-security", b"max-age=31536000"))

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = list(message.get("headers", [])) + [
                    (k, v) for k, v in extra if k not in present
                ]
            await send(message)

        await self.app(scope, receive, with_headers)


class _TooLarge(StarletteHTTPException):
    """Raised from the body reader: FastAPI re-raises HTTP exceptions, so this becomes a 413."""

    def __init__(self) -> None:
        super().__init__(413, "request body too large")


async def _plain(send: Send, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _wants_html(request: Request) -> bool:
    path = request.url.path
    if path.startswith("/api/") or request.headers.get("hx-request"):
        return False
    return "text/html" in request.headers.get("accept", "")


def build_app(ctx: WebContext) -> FastAPI:
    app = FastAPI(
        title="gemwatch",
        version=__version__,
        description="The gemwatch web console's API. Log in (session cookie) or send "
        "`Authorization: Bearer gw_…` (an API token made by the owner). State-changing requests "
        "with a session cookie need the `X-CSRF-Token` header (see `/api/v1/me`).",
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.state.ctx = ctx
    app.state.templates = pages.make_templates(ctx)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        headers = dict(exc.headers or {})
        if _wants_html(request):
            if exc.status_code == 401:
                return await pages.unauthorised_page(request)
            detail = exc.detail if isinstance(exc.detail, str) else "the request was refused"
            return await pages.forbidden_page(request, detail, exc.status_code)
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        errors = [
            {
                "loc": [str(x) for x in e.get("loc", ())],
                "msg": str(e.get("msg", "")),
                "type": str(e.get("type", "")),
            }
            for e in exc.errors()
        ]
        if _wants_html(request):
            return await pages.forbidden_page(
                request, "; ".join(str(e["msg"]) for e in errors) or "invalid request", 422
            )
        return JSONResponse({"detail": errors}, status_code=422)

    @app.exception_handler(Exception)
    async def crash(request: Request, exc: Exception) -> Response:
        log.exception("web request %s %s failed", request.method, request.url.path)
        return JSONResponse({"detail": "internal error; see the node's log"}, status_code=500)

    app.add_middleware(SecurityHeaders)
    app.add_middleware(BodyLimit)

    @app.get("/api/v1/openapi.json", include_in_schema=False)
    def openapi(_: Annotated[Principal, Depends(require(Perm.VIEW))]) -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    app.include_router(api.router)
    app.include_router(pages.router)
    app.include_router(watchlist_pages.router)
    app.include_router(alerts_console.router)
    app.mount("/static", StaticFiles(directory=str(Path(__file__).with_name("static"))), name="static")
    _include_alerts(app, ctx)
    return app


def _include_alerts(app: FastAPI, ctx: WebContext) -> None:
    """One-tap acknowledge/action links of the alerts package, under ``/a/``, when installed.

    Those pages carry their own minimal inline styling, so the console's strict CSP is not
    applied to them (see ``security_headers``).
    """
    try:
        from gemwatch.alerts.router import build_router, service_from_config
    except ImportError:
        return
    try:
        service = service_from_config(ctx.cfg, ctx.store.engine)
        router = build_router(service)
    except Exception:
        log.exception("the alerts web routes failed to load; one-tap links will not work")
        return
    if ctx.alerts is None:  # the console's Acknowledge button goes through the same service
        ctx.alerts = service
    app.include_router(router, prefix="/a")
