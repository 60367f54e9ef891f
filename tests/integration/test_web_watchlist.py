"""The console's watchlist over real HTTP (uvicorn, SQLite, real face models and photos):
staff are refused, the auditor reads without faces, an entry enrolled from an uploaded photo
stays pending until a second person approves it (the enroller's own approval is refused and
shown), 'add this person' enrolls from an event's snapshot, 'not this person' stores a negative
example and deletes the live face, erase removes everything, and each step is one audit line.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import cv2
import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from conftest import data_file
from gemwatch.config.loader import parse
from gemwatch.events.store import EventStore
from gemwatch.perception.faces import load_image
from gemwatch.types import Event, Severity
from gemwatch.watchlist.gallery import Watchlist, face_picture
from gemwatch.watchlist.schema import EntryRow, FaceRow, HitRow
from gemwatch.web.auth import Role, create_api_token, create_user
from gemwatch.web.deps import WebContext
from gemwatch.web.schema import AuditRow
from gemwatch.web.server import WebServer
from gemwatch.web.watchlist_pages import watchlist_of

pytestmark = pytest.mark.timeout(300)

FACES = "faces/face_recognition_examples"
PASSWORD = "a-long-enough-password"
CONFIG = """\
store:
  name: Watchlist test store
  timezone: Europe/London
storage:
  data_dir: {data}
web:
  port: {port}
cameras:
  - id: door
    url: {data}/none.mp4
watchlist:
  policy: face_matching
  jurisdiction: uk
  dpia_reference: DPIA-WEB-7
"""


@dataclass
class Node:
    base: str
    ctx: WebContext
    server: WebServer
    data: Path
    tokens: dict[str, str]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    data_file(f"{FACES}/obama.jpg")
    tmp = tmp_path_factory.mktemp("web-watchlist")
    data = tmp / "data"
    data.mkdir()
    port = free_port()
    cfg = parse(CONFIG.format(data=data, port=port), "gemwatch.yml")
    store = EventStore(cfg.storage.resolved_database_url(), cfg.store.tz)
    ctx = WebContext(cfg=cfg, store=store)
    server = WebServer(ctx)
    server.start()
    tokens: dict[str, str] = {}
    with ctx.session() as s:
        for name, role in (
            ("owner", Role.OWNER),
            ("anna", Role.MANAGER),
            ("ben", Role.SECURITY),
            ("sam", Role.STAFF),
            ("audrey", Role.AUDITOR),
        ):
            user = create_user(s, name, PASSWORD, role)
            tokens[name] = create_api_token(s, user, "tests")[0]
    yield Node(server.url.replace("localhost", "127.0.0.1"), ctx, server, data, tokens)
    server.stop()
    store.close()


def login(node: Node, username: str) -> tuple[httpx.Client, str]:
    """A browser-like session: the log-in form, then the session's CSRF token."""
    c = httpx.Client(base_url=node.base, timeout=60, follow_redirects=False)
    page = c.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    r = c.post("/login", data={"username": username, "password": PASSWORD, "csrf_token": token})
    assert r.status_code == 303, r.text[:300]
    return c, c.get("/api/v1/me").json()["csrf_token"]


def bearer(node: Node, name: str) -> httpx.Client:
    headers = {"Authorization": f"Bearer {node.tokens[name]}"}
    return httpx.Client(base_url=node.base, headers=headers, timeout=60, follow_redirects=False)


def audit_lines(node: Node, action: str) -> list[AuditRow]:
    with Session(node.ctx.store.engine) as s:
        return list(s.scalars(select(AuditRow).where(AuditRow.action == action).order_by(AuditRow.id)))


def photo_upload(name: str) -> tuple[str, tuple[str, bytes, str]]:
    return ("photos", (name, data_file(f"{FACES}/{name}").read_bytes(), "image/jpeg"))


def enroll(c: httpx.Client, csrf: str, label: str, photo: str, **extra: str) -> httpx.Response:
    form = {"csrf_token": csrf, "label": label, "reason": "took a ring, 3 May", "evidence": "INC-4411"}
    return c.post("/watchlist/enroll", data={**form, **extra}, files=[photo_upload(photo)])


def entry_id_of(r: httpx.Response) -> str:
    assert r.status_code == 303, r.text[:500]
    m = re.fullmatch(r"/watchlist/entry\?entry_id=([0-9a-f-]{36})", r.headers["location"])
    assert m, r.headers["location"]
    return m.group(1)


def test_staff_are_refused_and_the_auditor_only_reads(node: Node) -> None:
    with httpx.Client(base_url=node.base) as anon:
        assert anon.get("/watchlist").status_code == 401
    with bearer(node, "sam") as staff:
        assert staff.get("/watchlist").status_code == 403
        assert staff.get("/watchlist/entry?entry_id=x").status_code == 403
        r = staff.post("/watchlist/enroll", data={"label": "x"}, files=[photo_upload("obama.jpg")])
        assert r.status_code == 403
        nav = staff.get("/", headers={"Accept": "text/html"}).text
        assert 'href="/watchlist"' not in nav
    with bearer(node, "audrey") as auditor:
        page = auditor.get("/watchlist")
        assert page.status_code == 200
        assert "Policy in force: face_matching" in page.text and "uk" in page.text
        assert "DPIA-WEB-7" in page.text
        assert 'action="/watchlist/enroll"' not in page.text and "Read-only" in page.text
        assert auditor.post("/watchlist/entry", data={"entry_id": "x", "op": "approve"}).status_code == 403
    with bearer(node, "ben") as sec:
        assert 'href="/watchlist"' in sec.get("/", headers={"Accept": "text/html"}).text


def test_enroll_four_eyes_approve_and_erase(node: Node) -> None:
    anna, anna_csrf = login(node, "anna")
    ben, ben_csrf = login(node, "ben")
    with closing(anna), closing(ben):
        # CSRF: a form without the session's token is refused.
        r = anna.post("/watchlist/enroll", data={"label": "x"}, files=[photo_upload("obama.jpg")])
        assert r.status_code == 403
        before = len(audit_lines(node, "watchlist.enroll"))
        r = enroll(anna, anna_csrf, "Ring thief, tall, grey coat", "obama.jpg")
        entry = entry_id_of(r)
        assert len(audit_lines(node, "watchlist.enroll")) == before + 1  # one line, from the gallery

        page = anna.get("/watchlist")
        row = re.search(rf'<tr data-entry="{entry}">(.*?)</tr>', page.text, re.S)
        assert row is not None
        for text in ("Ring thief, tall, grey coat", "took a ring, 3 May", "INC-4411", "anna", ">pending<"):
            assert text in row.group(1), text
        list_views = audit_lines(node, "watchlist.list")
        assert list_views[-1].actor == "anna"

        # The entry's page shows its face (inline, never a file URL) and its look is audited.
        detail = ben.get(f"/watchlist/entry?entry_id={entry}")
        assert detail.status_code == 200 and "data:image/jpeg;base64," in detail.text
        assert audit_lines(node, "watchlist.view")[-1].actor == "ben"
        assert audit_lines(node, "watchlist.view_faces")[-1].actor == "ben"

        # Four eyes: the enroller's own approval is refused, visibly, and nothing changes.
        form = {"csrf_token": anna_csrf, "entry_id": entry, "op": "approve"}
        r = anna.post("/watchlist/entry", data=form)
        assert r.status_code == 409 and "four-eyes rule" in r.text
        wl = watchlist_of_node(node)
        assert wl.snapshot().entry_ids == ()
        r = ben.post("/watchlist/entry", data={"csrf_token": ben_csrf, "entry_id": entry, "op": "approve"})
        assert r.status_code == 303
        assert wl.snapshot().entry_ids == (entry,)
        assert ">active<" in anna.get(f"/watchlist/entry?entry_id={entry}").text
        assert audit_lines(node, "watchlist.approve")[-1].actor == "ben"

        # Encrypted at rest: the name typed in the console is not in the database file.
        raw = b"".join(p.read_bytes() for p in node.data.glob("gemwatch.db*"))
        assert b"Ring thief" not in raw and b"INC-4411" not in raw

        # Renew (from today, at most the configured days) is audited by the gallery.
        form = {"csrf_token": ben_csrf, "entry_id": entry, "op": "renew", "days": "30"}
        assert ben.post("/watchlist/entry", data=form).status_code == 303
        assert audit_lines(node, "watchlist.renew")[-1].detail == {"days": 30}
        (v,) = [e for e in wl.entries() if e.id == entry]
        assert 29 < (v.expires_at - datetime.now(UTC)).total_seconds() / 86400 <= 30

        # Erase needs a reason and removes the entry and its faces.
        r = ben.post("/watchlist/entry", data={"csrf_token": ben_csrf, "entry_id": entry, "op": "erase"})
        assert r.status_code == 409 and "say why" in r.text
        form = {"csrf_token": ben_csrf, "entry_id": entry, "op": "erase", "reason": "erasure request"}
        r = ben.post("/watchlist/entry", data=form)
        assert r.status_code == 200 and "erased" in r.text
        with Session(node.ctx.store.engine) as s:
            assert s.get(EntryRow, entry) is None
            assert not s.scalars(select(FaceRow).where(FaceRow.entry_id == entry)).all()
        assert audit_lines(node, "watchlist.erase")[-1].target == f"watchlist:{entry}"


def test_bad_photo_is_refused_with_the_reason(node: Node) -> None:
    anna, csrf = login(node, "anna")
    with closing(anna):
        r = enroll(anna, csrf, "Too small", "obama-240p.jpg")
        assert r.status_code == 400 and "too small" in r.text
        assert 'value="Too small"' in r.text  # the form keeps what was typed


def test_add_this_person_from_an_event_snapshot(node: Node) -> None:
    snap = node.data / "snapshots" / "door" / "walk-in.jpg"
    snap.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(snap), load_image(data_file(f"{FACES}/biden.jpg")))
    ev = Event(
        type="loitering",
        severity=Severity.MEDIUM,
        camera_id="door",
        start_ts=datetime.now(UTC).timestamp() - 30,
        description="loitering at the door",
        snapshot_path=str(snap),
    )
    node.ctx.store.write(ev)
    ben, csrf = login(node, "ben")
    with closing(ben):
        page = ben.get(f"/events/{ev.id}")
        assert f'href="/watchlist?event_id={ev.id}#enroll"' in page.text
        form_page = ben.get(f"/watchlist?event_id={ev.id}")
        assert f'name="event_id" value="{ev.id}"' in form_page.text
        form = {
            "csrf_token": csrf,
            "label": "Door loiterer",
            "reason": "distraction theft",
            "evidence": "INC-9",
        }
        entry = entry_id_of(ben.post("/watchlist/enroll", data={**form, "event_id": ev.id}))
    wl = watchlist_of_node(node)
    (v,) = [e for e in wl.entries() if e.id == entry]
    assert v.status == "pending" and v.faces == 1 and v.created_by == "ben"
    with Session(node.ctx.store.engine) as s:
        (face,) = s.scalars(select(FaceRow).where(FaceRow.entry_id == entry)).all()
        assert face.source == f"photo:event-{ev.id}"
    with bearer(node, "sam") as staff:  # staff see the event but not the watchlist action
        assert "Add this person" not in staff.get(f"/events/{ev.id}").text


def test_hit_page_and_not_this_person(node: Node) -> None:
    wl = watchlist_of_node(node)
    anna, anna_csrf = login(node, "anna")
    ben, ben_csrf = login(node, "ben")
    with closing(anna), closing(ben):
        entry = entry_id_of(enroll(anna, anna_csrf, "Lookalike case", "obama.jpg"))
        ben.post("/watchlist/entry", data={"csrf_token": ben_csrf, "entry_id": entry, "op": "approve"})
        live = load_image(data_file(f"{FACES}/obama2.jpg"))
        shot = wl.face_from_image(live)
        ev = Event(
            type="watchlist.hit",
            severity=Severity.HIGH,
            camera_id="door",
            start_ts=datetime.now(UTC).timestamp() - 10,
            description="Possible watchlist match at door: Lookalike case",
            scores={"distance": 0.41, "similarity": 0.59, "threshold": 0.6, "shots": 3.0},
        )
        node.ctx.store.write(ev)
        wl.record_hit(
            event_id=ev.id,
            entry_id=entry,
            camera_id="door",
            ts=ev.start_ts,
            distance=0.41,
            shots=3,
            chip_rgb=face_picture(live, shot.box)[:, :, ::-1].copy(),
            embedding=shot.embedding,
        )
        event_page = anna.get(f"/events/{ev.id}").text
        assert f'href="/watchlist/hits/{ev.id}"' in event_page
        page = anna.get(f"/watchlist/hits/{ev.id}")
        assert page.status_code == 200
        faces = re.search(r'id="hit-faces">(.*?)</div>', page.text, re.S)
        assert faces is not None and faces.group(1).count("data:image/jpeg;base64,") == 2
        assert "0.59" in page.text and "0.410" in page.text
        assert audit_lines(node, "watchlist.view_hit")[-1].actor == "anna"
        with bearer(node, "audrey") as auditor:  # the live face is for the approver roles only
            assert auditor.get(f"/watchlist/hits/{ev.id}").status_code == 403

        r = anna.post(
            f"/watchlist/hits/{ev.id}", data={"csrf_token": anna_csrf, "verdict": "not_this_person"}
        )
        assert r.status_code == 303
        with Session(node.ctx.store.engine) as s:
            hit = s.get(HitRow, ev.id)
            assert hit is not None and hit.status == "not_this_person"
            assert hit.chip_enc is None and hit.embedding_enc is None  # the live face is gone
            negatives = s.scalars(
                select(FaceRow).where(FaceRow.entry_id == entry, FaceRow.kind == "negative")
            )
            assert len(negatives.all()) == 1
        after = anna.get(f"/watchlist/hits/{ev.id}").text
        assert "not_this_person by anna" in after and "It is this person" not in after
        assert audit_lines(node, "watchlist.hit_not_this_person")[-1].target == f"event:{ev.id}"
        # Reviewed once: a second verdict is refused.
        r = anna.post(f"/watchlist/hits/{ev.id}", data={"csrf_token": anna_csrf, "verdict": "confirmed"})
        assert r.status_code == 409

        # Revoke: the entry stops matching and keeps no faces; the list shows it revoked.
        form = {"csrf_token": ben_csrf, "entry_id": entry, "op": "revoke", "reason": "complaint upheld"}
        assert ben.post("/watchlist/entry", data=form).status_code == 303
        assert entry not in wl.snapshot().entry_ids
        row = re.search(rf'<tr data-entry="{entry}">(.*?)</tr>', ben.get("/watchlist").text, re.S)
        assert row is not None and ">revoked<" in row.group(1)
        assert audit_lines(node, "watchlist.revoke")[-1].actor == "ben"


def test_policy_off_shows_the_banner_and_stores_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    text = CONFIG.format(data=data, port=free_port()).split("watchlist:")[0]
    cfg = parse(text, "gemwatch.yml")
    store = EventStore(cfg.storage.resolved_database_url(), cfg.store.tz)
    ctx = WebContext(cfg=cfg, store=store)
    server = WebServer(ctx)
    server.start()
    try:
        with ctx.session() as s:
            token = create_api_token(s, create_user(s, "owner", PASSWORD, Role.OWNER), "t")[0]
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=server.url, headers=headers, timeout=60) as c:
            page = c.get("/watchlist")
            assert page.status_code == 200 and "Policy in force: off" in page.text
            assert 'action="/watchlist/enroll"' not in page.text
            r = c.post("/watchlist/enroll", data={"label": "x"}, files=[photo_upload("obama.jpg")])
            assert r.status_code == 409
        assert not (data / "secrets" / "watchlist.key").exists()  # no key made: nothing sealed while off
    finally:
        server.stop()
        store.close()


def watchlist_of_node(node: Node) -> Watchlist:
    """The console's own Watchlist instance (same keys and engine as the pages use)."""
    wl = getattr(node.server.app.state, "watchlist", None)
    if wl is None:
        request = type("R", (), {"app": node.server.app})()
        wl = watchlist_of(request)
    assert wl is not None
    return wl


def test_phone_sized_photo_is_accepted_but_other_forms_keep_the_small_limit(node: Node) -> None:
    import cv2
    import numpy as np

    image = cv2.imread(str(data_file(f"{FACES}/obama3.jpg")))
    big = cv2.resize(image, None, fx=1.6, fy=1.6, interpolation=cv2.INTER_CUBIC)
    noise = np.random.default_rng(0).integers(0, 6, big.shape, dtype=np.uint8)  # phone-like grain
    ok, jpeg = cv2.imencode(".jpg", cv2.add(big, noise), [cv2.IMWRITE_JPEG_QUALITY, 97])
    assert ok and len(jpeg) > 2 * (1 << 20), len(jpeg)
    anna, csrf = login(node, "anna")
    with closing(anna):
        form = {"csrf_token": csrf, "label": "Big photo", "reason": "took a ring", "evidence": "INC-9"}
        r = anna.post(
            "/watchlist/enroll", data=form, files=[("photos", ("big.jpg", jpeg.tobytes(), "image/jpeg"))]
        )
        entry_id_of(r)
        notes = anna.post(
            "/api/v1/events/none/notes", content=b"x" * (2 << 20), headers={"X-CSRF-Token": csrf}
        )
        assert notes.status_code == 413
