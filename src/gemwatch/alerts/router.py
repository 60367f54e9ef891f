"""One-tap links as a FastAPI router; the web console mounts it under ``/a``.

Opening a link (GET) only shows what it will do and one button; the button (POST) does it.
Mail scanners and chat link previews fetch every link they see, so a GET that acknowledged or
locked doors would fire on its own. Answers: 403 forged or not authorised, 410 expired,
409 action already done, 503 command not delivered (the link can be tried again).
Every refusal and every use is in the audit log.
"""

from __future__ import annotations

import html
import os

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from sqlalchemy import Engine

from gemwatch.alerts.links import LinkError, Purpose, resolve_secret
from gemwatch.alerts.service import ActionRefused, AlertService
from gemwatch.config.models import GemwatchConfig

_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Robots-Tag": "noindex"}
_LINK_STATUS = {"expired": 410, "forged": 403, "malformed": 403, "purpose": 403}


def _page(title: str, body: str, status: int = 200, button: str | None = None) -> HTMLResponse:
    form = (
        f'<form method="post"><button type="submit" style="font-size:1.4em;padding:.6em 1.2em">'
        f"{html.escape(button)}</button></form>"
        if button
        else ""
    )
    doc = (
        "<!doctype html><html><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width,initial-scale=1'>"
        f"<title>{html.escape(title)}</title></head>"
        "<body style='font-family:system-ui,sans-serif;max-width:32em;margin:2em auto;padding:0 1em'>"
        f"<h1 style='font-size:1.3em'>{html.escape(title)}</h1><p>{html.escape(body)}</p>{form}</body></html>"
    )
    return HTMLResponse(doc, status_code=status, headers=_HEADERS)


def _client(request: Request) -> str | None:
    return request.client.host if request.client else None


def build_router(service: AlertService) -> APIRouter:
    router = APIRouter()

    def refused(exc: LinkError | ActionRefused) -> HTMLResponse:
        status = exc.status if isinstance(exc, ActionRefused) else _LINK_STATUS.get(exc.reason, 403)
        return _page("Not possible", str(exc), status)

    @router.get("/ack/{token}", response_class=HTMLResponse)
    def ack_confirm(token: str, request: Request) -> Response:
        try:
            claims = service.check(token, Purpose.ACK, _client(request))
        except LinkError as exc:
            return refused(exc)
        row = service.event_row(claims.event_id)
        if row is None:
            return _page("Not possible", "this event no longer exists", 404)
        if row.acknowledged_at is not None:
            return _page("Already acknowledged", f"{row.description} — by {row.acknowledged_by}.")
        return _page("Acknowledge alert", row.description, button="Acknowledge")

    @router.post("/ack/{token}", response_class=HTMLResponse)
    def ack(token: str, request: Request) -> Response:
        try:
            result = service.acknowledge_link(token, _client(request))
        except (LinkError, ActionRefused) as exc:
            return refused(exc)
        if result.already:
            return _page("Already acknowledged", f"{result.description} — by {result.by}.")
        return _page("Acknowledged", f"{result.description}. Escalation stopped.")

    @router.get("/act/{token}", response_class=HTMLResponse)
    def act_confirm(token: str, request: Request) -> Response:
        try:
            claims, label = service.authorise_action(token, _client(request))
        except (LinkError, ActionRefused) as exc:
            return refused(exc)
        row = service.event_row(claims.event_id)
        about = row.description if row is not None else claims.event_id
        return _page(label, f"About: {about}. Tap to confirm.", button=label)

    @router.post("/act/{token}", response_class=HTMLResponse)
    def act(token: str, request: Request) -> Response:
        try:
            result = service.run_action(token, _client(request))
        except (LinkError, ActionRefused) as exc:
            return refused(exc)
        return _page("Done", f"{result.label}: done (by {result.by}).")

    def media(token: str, request: Request, purpose: Purpose) -> Response:
        try:
            path = service.media_path(token, purpose, _client(request))
        except (LinkError, ActionRefused) as exc:
            return refused(exc)
        if not os.path.exists(path):
            return _page("Not possible", "this file has been deleted (retention)", 404)
        return FileResponse(path, headers=_HEADERS, filename=os.path.basename(path))

    @router.get("/clip/{token}")
    def clip(token: str, request: Request) -> Response:
        return media(token, request, Purpose.CLIP)

    @router.get("/snap/{token}")
    def snapshot(token: str, request: Request) -> Response:
        return media(token, request, Purpose.SNAPSHOT)

    return router


def service_from_config(cfg: GemwatchConfig, engine: Engine) -> AlertService:
    """An AlertService for a process other than the node's (the web console): it verifies
    links with the same secret and publishes action commands over its own MQTT connection;
    the node's sender delivers whatever it queues (it polls the outbox every second)."""
    mqtt = None
    if cfg.alerts.mqtt is not None:
        from gemwatch.alerts.channels.mqtt import MqttLink

        mqtt = MqttLink(
            cfg.alerts.mqtt, client_id=f"gemwatch-{cfg.alerts.mqtt.node_id}-web-{os.getpid()}", presence=False
        )
    return AlertService(cfg, engine, resolve_secret(cfg.alerts, cfg.storage.data_dir), mqtt=mqtt)


def router_from_config(cfg: GemwatchConfig, engine: Engine) -> APIRouter:
    return build_router(service_from_config(cfg, engine))
