"""JSON REST under ``/api/v1``: cameras, live pictures, events and review, clips, export, zones,
users, API tokens, audit log, and the Server-Sent-Events stream.

Every route names the permission it needs (see ``gemwatch.web.auth.ROLE_PERMS``); clip views,
downloads, exports, reviews, config and user changes go to the audit log.
"""

from __future__ import annotations

import asyncio
import json
import re
import tempfile
import time
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, Response, StreamingResponse
from pydantic import BaseModel, Field
from sqlalchemy import select
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from gemwatch.config.loader import ConfigError
from gemwatch.config.models import Zone
from gemwatch.events.schema import EventRow
from gemwatch.web import audit, clips, live
from gemwatch.web.auth import (
    WATCHLIST_EVENT_PREFIX,
    AuthError,
    Perm,
    Principal,
    Role,
    create_api_token,
    create_user,
    get_user,
    list_users,
    set_disabled,
    set_password,
    set_role,
)
from gemwatch.web.deps import Acknowledger, WebContext, client_of, ctx_of, require
from gemwatch.web.queries import (
    STATUSES,
    EventFilter,
    acknowledge,
    add_note,
    dt_text,
    find_events,
    local_text,
    open_counts,
    parse_local,
    reopen,
    resolve,
    review_state,
)
from gemwatch.web.schema import ApiTokenRow, UserRow
from gemwatch.web.zones import StaleConfigError, config_version, save_zones, validate_zones

router = APIRouter(prefix="/api/v1")
EVENT_ID = r"^[0-9a-fA-F-]{1,36}$"
CAMERA_ID = r"^[a-z0-9][a-z0-9_-]{0,63}$"
CLIP_VIEW_DEDUP_S = 600.0
LIVE_WAIT_S = 2.5


# response and request shapes ----------------------------------------------------------------------
class CameraOut(BaseModel):
    id: str
    name: str
    state: str = Field(
        description="online, reconnecting, offline, ended, failed (a config problem, see reason; "
        "not restarted) or unknown (no report yet)"
    )
    reason: str | None
    since_local: str | None
    open_alerts: int
    zones: list[Zone]


class EventOut(BaseModel):
    id: str
    type: str
    severity: str
    camera: str
    zone: str | None
    start_ts: float
    end_ts: float | None
    start_local: str = Field(description="Store-local time with zone abbreviation")
    end_local: str | None
    duration_s: float | None
    ended: bool
    people: list[int]
    description: str
    scores: dict[str, Any]
    has_snapshot: bool
    has_clip: bool
    status: str = Field(description="open, acknowledged, resolved or false_alarm")
    acknowledged_by: str | None
    acknowledged_at_local: str | None
    resolved_by: str | None
    resolved_at_local: str | None
    false_alarm: bool
    notes: str | None


class EventPage(BaseModel):
    items: list[EventOut]
    total: int
    page: int
    per_page: int


class NoteIn(BaseModel):
    note: str | None = Field(
        default=None, max_length=2000, description="Optional note stored with the action"
    )


class ZonesIn(BaseModel):
    zones: list[dict[str, Any]] = Field(max_length=100, description="The camera's complete list of zones")
    version: str | None = Field(
        default=None, max_length=64, description="Config version from GET; 409 if the file changed since"
    )


class ZonesOut(BaseModel):
    camera: str
    zones: list[Zone]
    version: str | None
    applied: bool = Field(description="True when the running camera took the new zones without a restart")


class Problem(BaseModel):
    path: str
    message: str


class UserOut(BaseModel):
    username: str
    role: str
    disabled: bool
    created_local: str
    last_login_local: str | None


class UserIn(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)
    role: Role


class UserPatch(BaseModel):
    role: Role | None = None
    disabled: bool | None = None
    password: str | None = Field(default=None, min_length=1, max_length=1024)


class TokenIn(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    username: str | None = Field(default=None, max_length=64, description="Owner of the token (default: you)")


class TokenOut(BaseModel):
    id: int
    name: str
    username: str
    created_local: str
    last_used_local: str | None
    revoked: bool
    token: str | None = Field(default=None, description="Shown once, when created")


class AuditOut(BaseModel):
    id: int
    time_local: str
    actor: str
    action: str
    target: str
    detail: dict[str, Any]


class Me(BaseModel):
    username: str
    role: str
    permissions: list[str]
    csrf_token: str | None


# helpers ------------------------------------------------------------------------------------------
def event_out(row: EventRow, ctx: WebContext) -> EventOut:
    tz = ctx.tz
    return EventOut(
        id=row.id,
        type=row.type,
        severity=row.severity,
        camera=row.camera_id,
        zone=row.zone_id,
        start_ts=row.start_ts,
        end_ts=row.end_ts,
        start_local=local_text(row.start_ts, tz),
        end_local=local_text(row.end_ts, tz) or None,
        duration_s=None if row.end_ts is None else round(row.end_ts - row.start_ts, 2),
        ended=bool(row.ended),
        people=list(row.people or []),
        description=row.description,
        scores=dict(row.scores or {}),
        has_snapshot=clips.inside(ctx.data_dir, row.snapshot_path) is not None,
        has_clip=clips.inside(ctx.data_dir, row.clip_path) is not None,
        status=review_state(row),
        acknowledged_by=row.acknowledged_by,
        acknowledged_at_local=dt_text(row.acknowledged_at, tz) or None,
        resolved_by=row.resolved_by,
        resolved_at_local=dt_text(row.resolved_at, tz) or None,
        false_alarm=bool(row.false_alarm),
        notes=row.notes,
    )


def visible_event(ctx: WebContext, s: Any, event_id: str, p: Principal) -> EventRow:
    """The event, or 404 (also for watchlist events a role may not see: their existence is private)."""
    if not re.match(EVENT_ID, event_id):
        raise HTTPException(404, "no such event")
    row = s.get(EventRow, event_id)
    if row is None or (row.type.startswith(WATCHLIST_EVENT_PREFIX) and not p.can(Perm.WATCHLIST)):
        raise HTTPException(404, "no such event")
    return row


def event_filter(
    p: Principal,
    tz: Any,
    camera: str | None,
    type: str | None,
    severity: str | None,
    zone: str | None,
    status: str | None,
    since: str | None,
    until: str | None,
) -> EventFilter:
    if status and status not in STATUSES:
        raise HTTPException(400, f"status must be one of {', '.join(STATUSES)}")
    try:
        since_ts = parse_local(since, tz) if since else None
        until_ts = parse_local(until, tz, end=True) if until else None
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from None
    return EventFilter(
        camera=camera or None,
        type=type or None,
        severity=severity or None,
        zone=zone or None,
        status=status or None,
        since_ts=since_ts,
        until_ts=until_ts,
        hide_watchlist=not p.can(Perm.WATCHLIST),
    )


def camera_states(ctx: WebContext, hide_watchlist: bool) -> list[CameraOut]:
    with ctx.session() as s:
        counts = open_counts(s, hide_watchlist=hide_watchlist)
    out = []
    for cam in ctx.cfg.cameras:
        st = ctx.hub.statuses.get(cam.id)
        out.append(
            CameraOut(
                id=cam.id,
                name=cam.label,
                state="disabled" if not cam.enabled else (str(st.state) if st else "unknown"),
                reason=st.reason if st else None,
                since_local=local_text(st.since, ctx.tz) if st else None,
                open_alerts=counts.get(cam.id, 0),
                zones=list(cam.zones),
            )
        )
    return out


def _range_start(request: Request) -> int:
    m = re.match(r"bytes=(\d*)-", request.headers.get("range", ""))
    return int(m.group(1) or 0) if m else 0


# me, cameras, live --------------------------------------------------------------------------------
@router.get("/me", response_model=Me, tags=["auth"])
def me(p: Annotated[Principal, Depends(require(Perm.VIEW))]) -> Me:
    from gemwatch.web.auth import ROLE_PERMS

    return Me(
        username=p.username,
        role=p.role.value,
        permissions=sorted(x.value for x in ROLE_PERMS[p.role]),
        csrf_token=p.csrf,
    )


@router.get("/cameras", response_model=list[CameraOut], tags=["cameras"])
def cameras(request: Request, p: Annotated[Principal, Depends(require(Perm.VIEW))]) -> list[CameraOut]:
    return camera_states(ctx_of(request), not p.can(Perm.WATCHLIST))


@router.get("/cameras/{camera_id}", response_model=CameraOut, tags=["cameras"])
def camera(
    request: Request, camera_id: str, p: Annotated[Principal, Depends(require(Perm.VIEW))]
) -> CameraOut:
    ctx = ctx_of(request)
    ctx.camera(camera_id)
    return next(c for c in camera_states(ctx, not p.can(Perm.WATCHLIST)) if c.id == camera_id)


async def _await_frame(ctx: WebContext, camera_id: str, *, raw: bool) -> Path | None:
    """Mark the camera watched and wait briefly for its first picture (it checks once a second)."""
    deadline = time.monotonic() + LIVE_WAIT_S
    while True:
        live.mark_watched(ctx.data_dir, camera_id, raw=raw)
        path = live.fresh_frame(ctx.data_dir, camera_id, raw=raw)
        if path is not None or time.monotonic() > deadline:
            return path
        await asyncio.sleep(0.1)


def _jpeg_response(path: Path) -> Response:
    """The picture; for live pictures, what is drawn on it goes in ``X-Gemwatch-Live`` (JSON:
    store-local time, people with boxes, zones with occupancy and open alerts)."""
    try:
        data = path.read_bytes()
    except OSError:
        raise HTTPException(503, "no picture yet") from None
    headers = {"Cache-Control": "no-store"}
    info = live.read_info(data)
    if info is not None:
        headers["X-Gemwatch-Live"] = json.dumps(info, separators=(",", ":"), ensure_ascii=True)
    return Response(data, media_type="image/jpeg", headers=headers)


@router.get(
    "/cameras/{camera_id}/live.jpg",
    tags=["cameras"],
    responses={200: {"content": {"image/jpeg": {}}}, 503: {"description": "camera not delivering pictures"}},
)
async def live_jpeg(
    request: Request, camera_id: str, _: Annotated[Principal, Depends(require(Perm.LIVE))]
) -> Response:
    """The latest analysed picture with people, zones and rule states drawn. Requesting it is
    what makes the camera draw: cameras nobody watches spend nothing on pictures."""
    ctx = ctx_of(request)
    ctx.camera(camera_id)
    path = await _await_frame(ctx, camera_id, raw=False)
    if path is None:
        raise HTTPException(503, "the camera is not delivering pictures")
    return _jpeg_response(path)


@router.get(
    "/cameras/{camera_id}/live.mjpeg",
    tags=["cameras"],
    responses={200: {"content": {"multipart/x-mixed-replace": {}}}},
)
async def live_mjpeg(
    request: Request,
    camera_id: str,
    _: Annotated[Principal, Depends(require(Perm.LIVE))],
    seconds: Annotated[float, Query(gt=0, le=3600)] = 600.0,
) -> StreamingResponse:
    """The same pictures as an MJPEG stream (for VLC, Home Assistant, …), for ``seconds``."""
    ctx = ctx_of(request)
    ctx.camera(camera_id)
    period = 1.0 / ctx.cfg.web.live_fps

    async def parts() -> AsyncIterator[bytes]:
        end = time.monotonic() + seconds
        last = 0.0
        while time.monotonic() < end and not await request.is_disconnected():
            live.mark_watched(ctx.data_dir, camera_id)
            path = live.fresh_frame(ctx.data_dir, camera_id)
            if path is not None:
                try:
                    mtime = path.stat().st_mtime
                    if mtime != last:
                        data = path.read_bytes()
                        last = mtime
                        yield b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(data)
                        yield data + b"\r\n"
                except OSError:
                    pass
            await asyncio.sleep(period / 2)

    return StreamingResponse(parts(), media_type="multipart/x-mixed-replace; boundary=frame")


@router.get(
    "/cameras/{camera_id}/frame.jpg", tags=["cameras"], responses={200: {"content": {"image/jpeg": {}}}}
)
async def camera_frame(
    request: Request, camera_id: str, _: Annotated[Principal, Depends(require(Perm.LIVE))]
) -> Response:
    """The camera's current plain picture (what the zone editor draws on): live when the camera
    runs, else the first picture of a file camera, else the newest event snapshot."""
    ctx = ctx_of(request)
    cam = ctx.camera(camera_id)
    path = await _await_frame(ctx, camera_id, raw=True)
    if path is not None:
        return _jpeg_response(path)
    data = await run_in_threadpool(_still_of, ctx, cam.id, cam.detect_url or cam.url)
    if data is None:
        raise HTTPException(503, "no picture of this camera is available")
    return Response(data, media_type="image/jpeg", headers={"Cache-Control": "no-store"})


def _still_of(ctx: WebContext, camera_id: str, url: str) -> bytes | None:
    import cv2

    from gemwatch.sources.video import is_live_url

    if not is_live_url(url) and Path(url).is_file():
        import av

        try:
            with av.open(url) as container:
                for frame in container.decode(video=0):
                    ok, buf = cv2.imencode(".jpg", frame.to_ndarray(format="bgr24"))
                    return buf.tobytes() if ok else None
        except (av.error.FFmpegError, OSError):
            pass
    with ctx.session() as s:
        rows = s.scalars(
            select(EventRow)
            .where(EventRow.camera_id == camera_id, EventRow.snapshot_path.is_not(None))
            .order_by(EventRow.start_ts.desc())
            .limit(5)
        )
        for row in rows:
            snap = clips.inside(ctx.data_dir, row.snapshot_path)
            if snap is not None:
                return snap.read_bytes()
    return None


# events -------------------------------------------------------------------------------------------
@router.get("/events", response_model=EventPage, tags=["events"])
def events(
    request: Request,
    p: Annotated[Principal, Depends(require(Perm.VIEW))],
    camera: Annotated[str | None, Query(max_length=64)] = None,
    type: Annotated[str | None, Query(max_length=64)] = None,
    severity: Annotated[str | None, Query(max_length=16)] = None,
    zone: Annotated[str | None, Query(max_length=64)] = None,
    status: Annotated[str | None, Query(max_length=16)] = None,
    since: Annotated[str | None, Query(max_length=40, description="Store-local date or date-time")] = None,
    until: Annotated[
        str | None, Query(max_length=40, description="Store-local; a bare date includes that day")
    ] = None,
    page: Annotated[int, Query(ge=1, le=100000)] = 1,
    per_page: Annotated[int, Query(ge=1, le=500)] = 50,
) -> EventPage:
    ctx = ctx_of(request)
    f = event_filter(p, ctx.tz, camera, type, severity, zone, status, since, until)
    with ctx.session() as s:
        rows, total = find_events(s, f, page=page, per_page=per_page)
        items = [event_out(r, ctx) for r in rows]
    return EventPage(items=items, total=total, page=page, per_page=per_page)


@router.get("/events/{event_id}", response_model=EventOut, tags=["events"])
def event(request: Request, event_id: str, p: Annotated[Principal, Depends(require(Perm.VIEW))]) -> EventOut:
    ctx = ctx_of(request)
    with ctx.session() as s:
        return event_out(visible_event(ctx, s, event_id, p), ctx)


def review(
    ctx: WebContext, event_id: str, p: Principal, action: str, note: str | None, client: str
) -> EventOut:
    if action == "ack" and ctx.alerts is not None:
        return acknowledge_via_alerts(ctx, ctx.alerts, event_id, p, note, client)
    with ctx.session() as s:
        row = visible_event(ctx, s, event_id, p)
        detail: dict[str, Any] = {"client": client}
        if action == "ack":
            detail["first"] = acknowledge(row, p.username)
        elif action in ("resolve", "false_alarm"):
            resolve(row, p.username, false_alarm=action == "false_alarm")
        elif action == "reopen":
            reopen(row)
        if note and note.strip():
            add_note(row, p.username, note, ctx.tz)
            detail["note"] = note.strip()[:500]
        audit.record(s, p.username, f"event.{action}", f"event:{row.id}", detail)
        out = event_out(row, ctx)
    ctx.hub.publish("review", {"id": out.id, "camera": out.camera, "status": out.status, "by": p.username})
    return out


def acknowledge_via_alerts(
    ctx: WebContext, alerts: Acknowledger, event_id: str, p: Principal, note: str | None, client: str
) -> EventOut:
    """Acknowledge through the alerts service: it marks the event, stops escalation, queues the
    acknowledgement for the machines and writes the one ``event.ack`` audit line. A note typed
    with it is stored and audited on its own (``event.note``)."""
    with ctx.session() as s:
        visible_event(ctx, s, event_id, p)  # 404 for events this role may not see
    try:
        alerts.acknowledge(event_id, p.username, via="console", client=client)
    except Exception as exc:
        status = getattr(exc, "status", None)  # the service's ActionRefused (event deleted meanwhile)
        if not isinstance(status, int):
            raise
        raise HTTPException(status, str(exc)) from None
    with ctx.session() as s:
        row = visible_event(ctx, s, event_id, p)
        if note and note.strip():
            add_note(row, p.username, note, ctx.tz)
            audit.record(
                s, p.username, "event.note", f"event:{row.id}", {"client": client, "note": note.strip()[:500]}
            )
        out = event_out(row, ctx)
    ctx.hub.publish("review", {"id": out.id, "camera": out.camera, "status": out.status, "by": p.username})
    return out


@router.post("/events/{event_id}/ack", response_model=EventOut, tags=["events"])
def ack_event(
    request: Request,
    event_id: str,
    p: Annotated[Principal, Depends(require(Perm.ACK))],
    body: NoteIn | None = None,
) -> EventOut:
    """Acknowledge: someone has seen it. The first acknowledgement's time is kept."""
    return review(ctx_of(request), event_id, p, "ack", body.note if body else None, client_of(request))


@router.post("/events/{event_id}/resolve", response_model=EventOut, tags=["events"])
def resolve_event(
    request: Request,
    event_id: str,
    p: Annotated[Principal, Depends(require(Perm.REVIEW))],
    body: NoteIn | None = None,
) -> EventOut:
    return review(ctx_of(request), event_id, p, "resolve", body.note if body else None, client_of(request))


@router.post("/events/{event_id}/false-alarm", response_model=EventOut, tags=["events"])
def false_alarm_event(
    request: Request,
    event_id: str,
    p: Annotated[Principal, Depends(require(Perm.REVIEW))],
    body: NoteIn | None = None,
) -> EventOut:
    """Resolve as a false alarm: kept and counted (reports, threshold tuning), never deleted."""
    return review(
        ctx_of(request), event_id, p, "false_alarm", body.note if body else None, client_of(request)
    )


@router.post("/events/{event_id}/reopen", response_model=EventOut, tags=["events"])
def reopen_event(
    request: Request,
    event_id: str,
    p: Annotated[Principal, Depends(require(Perm.REVIEW))],
    body: NoteIn | None = None,
) -> EventOut:
    return review(ctx_of(request), event_id, p, "reopen", body.note if body else None, client_of(request))


@router.post("/events/{event_id}/notes", response_model=EventOut, tags=["events"])
def note_event(
    request: Request, event_id: str, body: NoteIn, p: Annotated[Principal, Depends(require(Perm.REVIEW))]
) -> EventOut:
    if not body.note or not body.note.strip():
        raise HTTPException(400, "the note is empty")
    return review(ctx_of(request), event_id, p, "note", body.note, client_of(request))


@router.get(
    "/events/{event_id}/snapshot.jpg", tags=["events"], responses={200: {"content": {"image/jpeg": {}}}}
)
def snapshot(
    request: Request, event_id: str, p: Annotated[Principal, Depends(require(Perm.VIEW))]
) -> FileResponse:
    ctx = ctx_of(request)
    with ctx.session() as s:
        row = visible_event(ctx, s, event_id, p)
        path = clips.inside(ctx.data_dir, row.snapshot_path)
    if path is None:
        raise HTTPException(404, "this event has no snapshot (or it was deleted by retention)")
    return FileResponse(path, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"})


def _clip_path(ctx: WebContext, event_id: str, p: Principal) -> tuple[EventRow, Path]:
    with ctx.session() as s:
        row = visible_event(ctx, s, event_id, p)
        path = clips.inside(ctx.data_dir, row.clip_path)
    if path is None:
        raise HTTPException(404, "this event has no clip (not written yet, or deleted by retention)")
    return row, path


def _audit_view(ctx: WebContext, request: Request, p: Principal, event_id: str, variant: str) -> None:
    """One ``clip.view`` per user, clip and 10 minutes: seeking makes many range requests."""
    if _range_start(request) != 0 or request.method == "HEAD":
        return
    key = (p.username, event_id)
    now = time.monotonic()
    if now - ctx.clip_views.get(key, -1e18) < CLIP_VIEW_DEDUP_S:
        return
    ctx.clip_views[key] = now
    audit.record(
        ctx.store.engine,
        p.username,
        "clip.view",
        f"event:{event_id}",
        {"client": client_of(request), "variant": variant},
    )


@router.get(
    "/events/{event_id}/clip",
    tags=["clips"],
    responses={200: {"content": {"video/mp4": {}}}, 206: {"description": "partial content (Range)"}},
)
def clip(
    request: Request,
    event_id: str,
    p: Annotated[Principal, Depends(require(Perm.CLIPS))],
    download: bool = False,
) -> FileResponse:
    """The original clip, with HTTP range requests for seeking; ``download=true`` saves it
    (needs the export permission) and is audited as a download."""
    ctx = ctx_of(request)
    row, path = _clip_path(ctx, event_id, p)
    if download:
        if not p.can(Perm.EXPORT):
            raise HTTPException(403, f"the {p.role.value} role may not download clips")
        audit.record(
            ctx.store.engine,
            p.username,
            "clip.download",
            f"event:{row.id}",
            {"client": client_of(request), "file": path.name},
        )
        stamp = datetime.fromtimestamp(row.start_ts, ctx.tz).strftime("%Y%m%d-%H%M%S")
        return FileResponse(
            path,
            media_type=clips.media_type(path),
            filename=f"{row.camera_id}_{stamp}_{row.type}{path.suffix}",
        )
    _audit_view(ctx, request, p, row.id, "original")
    return FileResponse(
        path, media_type=clips.media_type(path), headers={"Cache-Control": "private, no-cache"}
    )


@router.get(
    "/events/{event_id}/clip.webm",
    tags=["clips"],
    responses={200: {"content": {"video/webm": {}}}, 206: {"description": "partial content (Range)"}},
)
async def clip_web(
    request: Request, event_id: str, p: Annotated[Principal, Depends(require(Perm.CLIPS))]
) -> FileResponse:
    """A browser-playable WebM copy of a clip whose codec browsers cannot play (made once)."""
    ctx = ctx_of(request)
    row, path = await run_in_threadpool(_clip_path, ctx, event_id, p)
    try:
        web = await run_in_threadpool(clips.web_copy, path)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    await run_in_threadpool(_audit_view, ctx, request, p, row.id, "web")
    return FileResponse(web, media_type="video/webm", headers={"Cache-Control": "private, no-cache"})


@router.get("/export.zip", tags=["clips"], responses={200: {"content": {"application/zip": {}}}})
def export_zip(
    request: Request,
    p: Annotated[Principal, Depends(require(Perm.EXPORT))],
    since: Annotated[str, Query(max_length=40, description="Store-local start")],
    until: Annotated[str, Query(max_length=40, description="Store-local end")],
    camera: Annotated[list[str] | None, Query(max_length=64)] = None,
) -> FileResponse:
    """Every clip and snapshot of the chosen cameras (default all) whose events start in
    [since, until), as one zip with a SHA-256 manifest. Audited."""
    ctx = ctx_of(request)
    cams = [c for c in (camera or []) if c]
    for c in cams:
        ctx.camera(c)
    f = event_filter(p, ctx.tz, None, None, None, None, None, since, until)
    f.cameras = cams
    if f.since_ts is not None and f.until_ts is not None and f.until_ts <= f.since_ts:
        raise HTTPException(400, "until must be after since")
    with ctx.session() as s:
        rows, total = find_events(s, f, page=1, per_page=5000)
        items = [
            clips.ExportItem(
                r, clips.inside(ctx.data_dir, r.clip_path), clips.inside(ctx.data_dir, r.snapshot_path)
            )
            for r in rows
        ]
    if total > len(rows):
        raise HTTPException(400, f"{total} events in this range; export at most 5000 at once")
    export_dir = ctx.data_dir / "exports"
    export_dir.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix="export-", suffix=".zip", dir=export_dir)
    import os

    os.close(fd)
    out = Path(name)
    query = {"since": since, "until": until, "cameras": ",".join(cams) or "all"}
    files = clips.write_export(items, out, ctx.tz, exported_by=p.username, query=query)
    audit.record(
        ctx.store.engine,
        p.username,
        "clip.export",
        "cameras:" + (",".join(cams) or "all"),
        {**query, "events": len(items), "files": files, "client": client_of(request)},
    )
    stamp = datetime.now(ctx.tz).strftime("%Y%m%d-%H%M%S")
    return FileResponse(
        out,
        media_type="application/zip",
        filename=f"gemwatch-export-{stamp}.zip",
        background=BackgroundTask(out.unlink, missing_ok=True),
    )


# zones --------------------------------------------------------------------------------------------
@router.get("/cameras/{camera_id}/zones", response_model=ZonesOut, tags=["zones"])
def get_zones(
    request: Request, camera_id: str, _: Annotated[Principal, Depends(require(Perm.VIEW))]
) -> ZonesOut:
    ctx = ctx_of(request)
    cam = ctx.camera(camera_id)
    version = None
    if ctx.config_path is not None and ctx.config_path.exists():
        version = config_version(ctx.config_path.read_text(encoding="utf-8"))
    return ZonesOut(camera=cam.id, zones=list(cam.zones), version=version, applied=True)


@router.post(
    "/cameras/{camera_id}/zones/validate",
    response_model=list[Problem],
    tags=["zones"],
)
def validate(
    request: Request, camera_id: str, body: ZonesIn, _: Annotated[Principal, Depends(require(Perm.CONFIG))]
) -> list[Problem]:
    """Check zones without saving; an empty list means they are valid."""
    ctx = ctx_of(request)
    ctx.camera(camera_id)
    try:
        validate_zones(body.zones)
    except ConfigError as exc:
        return [Problem(path=pr.path, message=pr.message) for pr in exc.problems]
    return []


@router.put(
    "/cameras/{camera_id}/zones",
    response_model=ZonesOut,
    tags=["zones"],
    responses={409: {"description": "config changed meanwhile"}, 422: {"description": "invalid zones"}},
)
def put_zones(
    request: Request, camera_id: str, body: ZonesIn, p: Annotated[Principal, Depends(require(Perm.CONFIG))]
) -> ZonesOut:
    """Save the camera's zones into the YAML config (comments kept) and hand them to the running
    camera, which applies them from its next analysed frame without restarting."""
    ctx = ctx_of(request)
    cam = ctx.camera(camera_id)
    if ctx.config_path is None:
        raise HTTPException(409, "this console was started without a config file; zones cannot be saved")
    try:
        zones = validate_zones(body.zones)
        cfg, version = save_zones(ctx.config_path, camera_id, zones, body.version)
    except ConfigError as exc:
        raise HTTPException(422, [{"path": pr.path, "message": pr.message} for pr in exc.problems]) from None
    except StaleConfigError as exc:
        raise HTTPException(409, str(exc)) from None
    except KeyError:
        raise HTTPException(
            409, f"camera '{camera_id}' is not in {ctx.config_path} (set by environment?)"
        ) from None
    before = [z.id for z in cam.zones]
    ctx.cfg = cfg
    new_cam = cfg.camera(camera_id)
    applied = bool(ctx.control and ctx.control.reload_camera(new_cam))
    audit.record(
        ctx.store.engine,
        p.username,
        "config.zones",
        f"camera:{camera_id}",
        {
            "before": before,
            "after": [z.id for z in new_cam.zones],
            "file": str(ctx.config_path),
            "version": version,
            "applied": applied,
            "client": client_of(request),
        },
    )
    ctx.hub.publish("zones", {"camera": camera_id, "version": version})
    return ZonesOut(camera=camera_id, zones=list(new_cam.zones), version=version, applied=applied)


# users and tokens ---------------------------------------------------------------------------------
def user_out(u: UserRow, ctx: WebContext) -> UserOut:
    return UserOut(
        username=u.username,
        role=u.role,
        disabled=bool(u.disabled),
        created_local=dt_text(u.created_at, ctx.tz),
        last_login_local=dt_text(u.last_login_at, ctx.tz) or None,
    )


@router.get("/users", response_model=list[UserOut], tags=["users"])
def users(request: Request, _: Annotated[Principal, Depends(require(Perm.USERS))]) -> list[UserOut]:
    ctx = ctx_of(request)
    with ctx.session() as s:
        return [user_out(u, ctx) for u in list_users(s)]


@router.post("/users", response_model=UserOut, status_code=201, tags=["users"])
def add_user(
    request: Request, body: UserIn, p: Annotated[Principal, Depends(require(Perm.USERS))]
) -> UserOut:
    ctx = ctx_of(request)
    try:
        with ctx.session() as s:
            u = create_user(s, body.username, body.password, body.role)
            audit.record(
                s,
                p.username,
                "user.create",
                f"user:{u.username}",
                {"role": u.role, "client": client_of(request)},
            )
            return user_out(u, ctx)
    except AuthError as exc:
        raise HTTPException(400, str(exc)) from None


@router.patch("/users/{username}", response_model=UserOut, tags=["users"])
def change_user(
    request: Request, username: str, body: UserPatch, p: Annotated[Principal, Depends(require(Perm.USERS))]
) -> UserOut:
    ctx = ctx_of(request)
    try:
        with ctx.session() as s:
            u = get_user(s, username)
            if u is None:
                raise HTTPException(404, f"no user '{username}'")
            changed: dict[str, Any] = {}
            if body.role is not None and body.role.value != u.role:
                changed["role"] = [u.role, body.role.value]
                set_role(s, u, body.role)
            if body.disabled is not None and body.disabled != u.disabled:
                changed["disabled"] = body.disabled
                set_disabled(s, u, body.disabled)
            if body.password is not None:
                set_password(s, u, body.password)
                changed["password"] = "changed"
            audit.record(
                s, p.username, "user.update", f"user:{u.username}", {**changed, "client": client_of(request)}
            )
            out = user_out(u, ctx)
    except AuthError as exc:
        raise HTTPException(400, str(exc)) from None
    ctx.forget_logins()  # after the commit: a disabled user or changed role takes effect now
    return out


def token_out(t: ApiTokenRow, username: str, ctx: WebContext, secret: str | None = None) -> TokenOut:
    return TokenOut(
        id=t.id,
        name=t.name,
        username=username,
        created_local=dt_text(t.created_at, ctx.tz),
        last_used_local=dt_text(t.last_used_at, ctx.tz) or None,
        revoked=bool(t.revoked),
        token=secret,
    )


@router.get("/tokens", response_model=list[TokenOut], tags=["users"])
def tokens(request: Request, _: Annotated[Principal, Depends(require(Perm.USERS))]) -> list[TokenOut]:
    ctx = ctx_of(request)
    with ctx.session() as s:
        names = {u.id: u.username for u in list_users(s)}
        rows = s.scalars(select(ApiTokenRow).order_by(ApiTokenRow.id))
        return [token_out(t, names.get(t.user_id, "?"), ctx) for t in rows]


@router.post("/tokens", response_model=TokenOut, status_code=201, tags=["users"])
def add_token(
    request: Request, body: TokenIn, p: Annotated[Principal, Depends(require(Perm.USERS))]
) -> TokenOut:
    """A bearer token for an integration; acts with its user's role. The secret is shown once."""
    ctx = ctx_of(request)
    try:
        with ctx.session() as s:
            u = get_user(s, body.username or p.username)
            if u is None:
                raise HTTPException(404, f"no user '{body.username}'")
            secret, row = create_api_token(s, u, body.name)
            audit.record(
                s,
                p.username,
                "token.create",
                f"user:{u.username}",
                {"name": row.name, "client": client_of(request)},
            )
            return token_out(row, u.username, ctx, secret)
    except AuthError as exc:
        raise HTTPException(400, str(exc)) from None


@router.delete("/tokens/{token_id}", response_model=TokenOut, tags=["users"])
def revoke_token(
    request: Request,
    token_id: Annotated[int, PathParam(ge=1, le=2**31 - 1)],
    p: Annotated[Principal, Depends(require(Perm.USERS))],
) -> TokenOut:
    ctx = ctx_of(request)
    with ctx.session() as s:
        row = s.get(ApiTokenRow, token_id)
        if row is None:
            raise HTTPException(404, "no such token")
        row.revoked = True
        owner = s.get(UserRow, row.user_id)
        name = owner.username if owner else "?"
        audit.record(
            s, p.username, "token.revoke", f"user:{name}", {"name": row.name, "client": client_of(request)}
        )
        out = token_out(row, name, ctx)
    ctx.forget_logins()
    return out


# audit --------------------------------------------------------------------------------------------
def _audit_range(ctx: WebContext, since: str | None, until: str | None) -> tuple[float | None, float | None]:
    try:
        return (
            parse_local(since, ctx.tz) if since else None,
            parse_local(until, ctx.tz, end=True) if until else None,
        )
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from None


@router.get("/audit", response_model=list[AuditOut], tags=["audit"])
def audit_log(
    request: Request,
    _: Annotated[Principal, Depends(require(Perm.AUDIT))],
    action: Annotated[str | None, Query(max_length=64)] = None,
    actor: Annotated[str | None, Query(max_length=64)] = None,
    since: Annotated[str | None, Query(max_length=40)] = None,
    until: Annotated[str | None, Query(max_length=40)] = None,
    page: Annotated[int, Query(ge=1, le=100000)] = 1,
    per_page: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[AuditOut]:
    ctx = ctx_of(request)
    since_ts, until_ts = _audit_range(ctx, since, until)
    with ctx.session() as s:
        rows = audit.query(
            s,
            action=action,
            actor=actor,
            since_ts=since_ts,
            until_ts=until_ts,
            limit=per_page,
            offset=(page - 1) * per_page,
        )
        return [
            AuditOut(
                id=r.id,
                time_local=local_text(r.ts, ctx.tz),
                actor=r.actor,
                action=r.action,
                target=r.target,
                detail=r.detail,
            )
            for r in rows
        ]


@router.get("/audit.csv", tags=["audit"], responses={200: {"content": {"text/csv": {}}}})
def audit_csv(
    request: Request,
    p: Annotated[Principal, Depends(require(Perm.AUDIT))],
    since: Annotated[str | None, Query(max_length=40)] = None,
    until: Annotated[str | None, Query(max_length=40)] = None,
) -> Response:
    """The audit log as CSV (times in store time and UTC). The export is itself audited."""
    ctx = ctx_of(request)
    since_ts, until_ts = _audit_range(ctx, since, until)
    with ctx.session() as s:
        audit.record(
            s,
            p.username,
            "audit.export",
            "audit_log",
            {"since": since, "until": until, "client": client_of(request)},
        )
    with ctx.session() as s:
        rows = audit.query(s, since_ts=since_ts, until_ts=until_ts, limit=1_000_000)
        text = "".join(audit.csv_lines(reversed(rows), ctx.tz))
    stamp = datetime.now(ctx.tz).strftime("%Y%m%d-%H%M%S")
    return Response(
        text,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="gemwatch-audit-{stamp}.csv"'},
    )


# live updates -------------------------------------------------------------------------------------
@router.get("/stream", tags=["live"], responses={200: {"content": {"text/event-stream": {}}}})
async def stream(
    request: Request,
    p: Annotated[Principal, Depends(require(Perm.VIEW))],
    seconds: Annotated[float, Query(gt=0, le=86400)] = 3600.0,
) -> StreamingResponse:
    """Server-Sent Events: ``event`` (new or updated event), ``status`` (camera state),
    ``clip`` (a clip is ready), ``review`` (acknowledged/resolved), ``zones`` (zones saved).
    The browser's EventSource reconnects by itself after ``seconds``."""
    ctx = ctx_of(request)
    hide = not p.can(Perm.WATCHLIST)

    async def messages() -> AsyncIterator[str]:
        loop, q = ctx.hub.subscribe()
        try:
            yield "retry: 3000\n\n"
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                try:
                    msg = await asyncio.wait_for(q.get(), timeout=15.0)
                except TimeoutError:
                    yield ": keep-alive\n\n"
                    continue
                if hide and str(msg.data.get("type", "")).startswith(WATCHLIST_EVENT_PREFIX):
                    continue
                yield msg.sse()
        finally:
            ctx.hub.unsubscribe(loop, q)

    return StreamingResponse(
        messages(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
