"""The console side of the watchlist: the list with the policy in force, enrollment from photos
or from an event's snapshot, four-eyes approval, renew / revoke / erase, and the review of a hit
(live face beside the enrolled one, similarity, 'not this person').

Everything goes through ``gemwatch.watchlist.gallery.Watchlist``, which seals personal data
before it reaches SQL and writes the audit line of each change in the same transaction; this
module adds only the audit line of looking at the list (the gallery's ``entries()`` does not
record one). Faces are embedded in the page as ``data:`` URIs, so one look is one audit line
and no face picture ever exists as a file or a cacheable URL.

Who may do what: the list is ``Perm.WATCHLIST`` (owner, manager, security, and the auditor,
read-only, because checking that every entry has a reason, an evidence reference and a second
approver is an auditor's job); faces, enrollment and every change are ``Perm.REVIEW`` (owner,
manager, security: the gallery's approver roles). Staff get 403.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, HTTPException, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from gemwatch.perception.faces import decode_image, load_image
from gemwatch.watchlist.config import Policy, WatchlistConfig
from gemwatch.watchlist.gallery import ACTIVE, PENDING, EntryView, Watchlist, WatchlistError
from gemwatch.watchlist.schema import HitRow
from gemwatch.web import audit, clips
from gemwatch.web.api import event_out, visible_event
from gemwatch.web.auth import Perm, Principal
from gemwatch.web.deps import client_of, ctx_of, require
from gemwatch.web.pages import render

router = APIRouter(include_in_schema=False)

HIT_TYPE = "watchlist.hit"
MAX_PHOTOS = 8
ENTRY_OPS = ("approve", "reject", "renew", "revoke", "erase")
POLICY_TEXT = {
    Policy.OFF: "Off: no faces are looked at and no entries are kept or shared.",
    Policy.DESCRIPTION_ONLY: "Descriptions only: entries and incident pictures are shared; no face matching.",
    Policy.FACE_MATCHING: "Face matching: approved entries are matched against faces at the cameras. "
    "A match is a prompt for a person to check, never an automatic action.",
}


@dataclass(frozen=True, slots=True)
class PolicyBanner:
    """What the page says about the rules in force (from ``watchlist:`` in gemwatch.yml)."""

    policy: str
    jurisdiction: str
    text: str
    dpia_reference: str | None
    legal_basis: str | None
    signage_text: str
    expiry_days: int
    enrolling: bool


def policy_banner(cfg: WatchlistConfig) -> PolicyBanner:
    return PolicyBanner(
        policy=cfg.policy.value,
        jurisdiction=cfg.jurisdiction.value,
        text=POLICY_TEXT[cfg.policy],
        dpia_reference=cfg.dpia_reference,
        legal_basis=cfg.legal_basis,
        signage_text=cfg.signage_text,
        expiry_days=cfg.expiry_days,
        enrolling=cfg.policy != Policy.OFF,
    )


def shown_status(v: EntryView) -> str:
    """An active or pending entry past its date shows as expired before housekeeping closes it."""
    return "expired" if v.status in (PENDING, ACTIVE) and v.expired else v.status


def data_uri(jpeg_bytes: bytes) -> str:
    return "data:image/jpeg;base64," + base64.b64encode(jpeg_bytes).decode("ascii")


def watchlist_of(request: Request) -> Watchlist | None:
    """The node's Watchlist on the console's database, or None while the policy is off (then no
    key is created and nothing is decrypted). One per app: the face models load once."""
    ctx = ctx_of(request)
    if ctx.cfg.watchlist.policy == Policy.OFF:
        return None
    wl: Watchlist | None = getattr(request.app.state, "watchlist", None)
    if wl is None:
        wl = Watchlist(ctx.store.engine, ctx.cfg.watchlist, ctx.data_dir)
        request.app.state.watchlist = wl
    return wl


def _need(request: Request) -> Watchlist:
    wl = watchlist_of(request)
    if wl is None:
        raise HTTPException(409, "the watchlist is switched off here (watchlist.policy: off)")
    return wl


def _list_page(
    request: Request,
    p: Principal,
    *,
    status_code: int = 200,
    error: str | None = None,
    notice: str | None = None,
    event_id: str = "",
    form: dict[str, str] | None = None,
) -> HTMLResponse:
    """The list (its view audited as ``watchlist.list``), the policy banner, the enroll form."""
    ctx = ctx_of(request)
    wl = watchlist_of(request)
    entries = wl.entries() if wl is not None else []
    from_event = None
    if event_id and p.can(Perm.REVIEW):
        with ctx.session() as s:
            row = visible_event(ctx, s, event_id, p)
            from_event = event_out(row, ctx)
    with ctx.session() as s:
        audit.record(
            s, p.username, "watchlist.list", "watchlist:*",
            {"entries": len(entries), "client": client_of(request)},
        )  # fmt: skip
    return render(
        request,
        "watchlist.html",
        status_code,
        banner=policy_banner(ctx.cfg.watchlist),
        entries=[(v, shown_status(v)) for v in entries],
        can_change=p.can(Perm.REVIEW),
        error=error,
        notice=notice,
        from_event=from_event,
        form=form or {},
    )


@router.get("/watchlist", response_class=HTMLResponse)
def watchlist_page(
    request: Request,
    p: Annotated[Principal, Depends(require(Perm.WATCHLIST))],
    event_id: str = "",
) -> Response:
    """The list; ``?event_id=`` pre-fills the enrollment form with that event's snapshot."""
    return _list_page(request, p, event_id=event_id[:64])


@router.post("/watchlist/enroll", response_class=HTMLResponse)
def enroll_form(
    request: Request,
    p: Annotated[Principal, Depends(require(Perm.REVIEW))],
    label: Annotated[str, Form(max_length=200)],
    reason: Annotated[str, Form(max_length=2000)] = "",
    evidence: Annotated[str, Form(max_length=200)] = "",
    expires_days: Annotated[int, Form(ge=1, le=3 * 365)] = 365,
    event_id: Annotated[str, Form(max_length=64)] = "",
    face: Annotated[str, Form(max_length=3)] = "",
    photos: Annotated[list[UploadFile] | None, File()] = None,
) -> Response:
    """A pending entry from uploaded photos and/or an event's snapshot. Only the chosen face is
    kept (cropped, sealed); the uploads and the snapshot are read in memory and not stored."""
    wl = _need(request)
    ctx = ctx_of(request)
    keep = {"label": label, "reason": reason, "evidence": evidence, "expires_days": str(expires_days)}
    try:
        pick = int(face) if face.strip() else None
        images: list[tuple[str, Any]] = []
        if event_id:
            with ctx.session() as s:
                row = visible_event(ctx, s, event_id, p)
                path = clips.inside(ctx.data_dir, row.snapshot_path)
            if path is None:
                raise WatchlistError("this event has no snapshot to enroll from")
            images.append((f"event-{event_id}", load_image(path)))
        uploads = [u for u in (photos or []) if u.filename]
        if len(uploads) > MAX_PHOTOS:
            raise WatchlistError(f"at most {MAX_PHOTOS} photos at once")
        for u in uploads:
            images.append((u.filename or "upload", decode_image(u.file.read(), u.filename or "upload")))
        picks = [pick] + [None] * (len(images) - 1) if images else []
        entry_id = wl.enroll(
            label=label,
            by=p.username,
            images=images,
            reason=reason,
            evidence=evidence,
            expires_days=expires_days,
            faces=picks,
        )
    except (WatchlistError, ValueError) as exc:
        return _list_page(request, p, status_code=400, error=str(exc), event_id=event_id, form=keep)
    return RedirectResponse(f"/watchlist/entry?entry_id={entry_id}", status_code=303)


@router.get("/watchlist/entry", response_class=HTMLResponse)
def entry_page(
    request: Request, p: Annotated[Principal, Depends(require(Perm.WATCHLIST))], entry_id: str = ""
) -> Response:
    """One entry (the look audited by the gallery); its faces only for the approver roles."""
    wl = _need(request)
    try:
        v = wl.view(entry_id[:64], p.username, client_of(request))
        faces = (
            [data_uri(j) for _, j in wl.face_images(v.id, p.username)]
            if p.can(Perm.REVIEW) and v.faces
            else []
        )
    except WatchlistError as exc:
        raise HTTPException(404, str(exc)) from None
    return _entry(request, p, v, faces)


def _entry(
    request: Request,
    p: Principal,
    v: EntryView,
    faces: list[str],
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    return render(
        request,
        "watchlist_entry.html",
        status_code,
        banner=policy_banner(ctx_of(request).cfg.watchlist),
        e=v,
        shown=shown_status(v),
        faces=faces,
        can_change=p.can(Perm.REVIEW),
        hits=_need(request).hits(entry_id=v.id, limit=50),
        error=error,
    )


@router.post("/watchlist/entry", response_class=HTMLResponse)
def entry_form(
    request: Request,
    p: Annotated[Principal, Depends(require(Perm.REVIEW))],
    entry_id: Annotated[str, Form(max_length=64)],
    op: Annotated[str, Form(max_length=16)],
    reason: Annotated[str, Form(max_length=2000)] = "",
    days: Annotated[int, Form(ge=1, le=3 * 365)] = 365,
) -> Response:
    """Approve, reject, renew, revoke or erase; the gallery's refusal (four-eyes, wrong state,
    foreign entry) is shown on the entry's page with 409."""
    if op not in ENTRY_OPS:
        raise HTTPException(400, "unknown action")
    wl = _need(request)
    try:
        if op in ("reject", "revoke", "erase") and not reason.strip():
            raise WatchlistError(f"say why ({op})")
        if op == "approve":
            wl.approve(entry_id, p.username)
        elif op == "reject":
            wl.reject(entry_id, p.username, reason)
        elif op == "renew":
            wl.renew(entry_id, p.username, days)
        elif op == "revoke":
            wl.revoke(entry_id, p.username, reason)
        else:
            wl.erase(entry_id, p.username, reason)
            return _list_page(request, p, notice="The entry and everything about it was erased.")
    except WatchlistError as exc:
        try:
            v = wl.view(entry_id, p.username, client_of(request))
        except WatchlistError:
            raise HTTPException(404, str(exc)) from None
        return _entry(request, p, v, [], error=str(exc), status_code=409)
    return RedirectResponse(f"/watchlist/entry?entry_id={entry_id}", status_code=303)


@router.get("/watchlist/hits/{event_id}", response_class=HTMLResponse)
def hit_page(
    request: Request, event_id: str, p: Annotated[Principal, Depends(require(Perm.REVIEW))]
) -> Response:
    """A hit for review: the live face beside the enrolled one and the similarity (from the
    event's scores). Opening it is audited by the gallery (live face and enrolled faces)."""
    wl = _need(request)
    ctx = ctx_of(request)
    with ctx.session() as s:
        ev = event_out(visible_event(ctx, s, event_id, p), ctx)
        hit = s.get(HitRow, ev.id)  # status and distance only; the sealed face opens below
    if hit is None:
        raise HTTPException(404, "no watchlist hit for this event")
    chip = wl.hit_chip(hit.id, p.username)
    try:
        enrolled = [data_uri(j) for _, j in wl.face_images(hit.entry_id, p.username)][:1]
        entry: EntryView | None = wl.view(hit.entry_id, p.username, client_of(request))
    except WatchlistError:
        enrolled, entry = [], None
    return render(
        request,
        "watchlist_hit.html",
        ev=ev,
        hit=hit,
        entry=entry,
        live=data_uri(chip) if chip else None,
        enrolled=enrolled[0] if enrolled else None,
        banner=policy_banner(ctx.cfg.watchlist),
        error=None,
    )


@router.post("/watchlist/hits/{event_id}", response_class=HTMLResponse)
def hit_form(
    request: Request,
    event_id: str,
    p: Annotated[Principal, Depends(require(Perm.REVIEW))],
    verdict: Annotated[str, Form(max_length=32)],
) -> Response:
    """``confirmed`` or ``not_this_person`` (the live face becomes a negative example of the
    entry and the kept live picture is deleted; the gallery audits it)."""
    wl = _need(request)
    ctx = ctx_of(request)
    with ctx.session() as s:
        visible_event(ctx, s, event_id, p)
    try:
        wl.review_hit(event_id, p.username, verdict)
    except WatchlistError as exc:
        raise HTTPException(409, str(exc)) from None
    return RedirectResponse(f"/watchlist/hits/{event_id}", status_code=303)
