"""One-tap links over HTTP (the router on a minimal FastAPI app): 'lock the doors' publishes
its MQTT command exactly once, refuses expired, forged and unauthorised links, tells the
security company's route, and everything lands in the audit log."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from test_alerts_receivers import (
    T_SECRET,
    Broker,
    HttpReceiver,
    MqttRecorder,
    alert_config,
    evidence,
    store_with_event,
    wait_until,
)

from gemwatch.alerts import links
from gemwatch.alerts.dispatcher import AlertDispatcher
from gemwatch.alerts.links import Purpose

fastapi = pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

DOORS = "store/doors/set"


def _audit(store) -> list[tuple[str, str, str, dict]]:
    from sqlalchemy.orm import Session

    from gemwatch.web.audit import query

    with Session(store.engine) as s:
        return [(r.actor, r.action, r.target, r.detail) for r in reversed(query(s, limit=1000))]


def _link(message: str, label: str) -> str:
    match = re.search(rf"^{re.escape(label)}: (\S+)$", message, re.M)
    assert match, f"no '{label}' link in: {message}"
    return match.group(1).removeprefix("http://127.0.0.1:7480")


@pytest.fixture
def setup(tmp_path: Path):
    http, broker = HttpReceiver(), Broker(tmp_path)
    rec = MqttRecorder(broker.port)
    cfg = alert_config(
        tmp_path,
        {
            "mqtt": {"host": "127.0.0.1", "port": broker.port, "node_id": "shop1"},
            "recipients": [
                {"id": "manager", "name": "Anna", "apprise": [f"json://127.0.0.1:{http.port}/manager"]},
                {"id": "clerk", "apprise": [f"json://127.0.0.1:{http.port}/clerk"]},
                {"id": "security", "apprise": [f"json://127.0.0.1:{http.port}/security"]},
            ],
            "routes": [
                {"id": "counter", "recipients": ["manager", "clerk"], "actions": ["lock", "call-security"]}
            ],
            "actions": [
                {
                    "id": "lock",
                    "label": "Lock the doors",
                    "mqtt": {"topic": DOORS, "payload": "LOCK"},
                    "allowed": ["manager"],
                },
                {
                    "id": "call-security",
                    "label": "Call security",
                    "notify": ["security"],
                    "allowed": ["manager"],
                },
            ],
        },
    )
    snap, _clip = evidence(tmp_path)
    store, ev = store_with_event(tmp_path, cfg, snapshot_path=snap)
    d = AlertDispatcher(cfg, store.engine, secret=T_SECRET).start()
    from gemwatch.alerts.router import build_router

    app = fastapi.FastAPI()
    app.include_router(build_router(d.service), prefix="/a")
    client = TestClient(app)
    d.event(ev)
    assert wait_until(lambda: http.received("/manager") and http.received("/clerk"), 10)
    yield http, rec, store, ev, d, client
    d.close()
    store.close()
    rec.close()
    broker.close()
    http.close()


def test_lock_doors_exactly_once(setup) -> None:
    http, rec, store, ev, _d, client = setup
    manager_msg = http.received("/manager")[0].json()["message"]
    lock = _link(manager_msg, "Lock the doors")
    # the clerk is not allowed to act: their alert carries no action links
    assert "Lock the doors" not in http.received("/clerk")[0].json()["message"]

    page = client.get(lock)  # opening the link (or a mail scanner fetching it) does nothing
    assert page.status_code == 200 and "Lock the doors" in page.text and '<form method="post">' in page.text
    time.sleep(0.3)
    assert rec.on(DOORS) == []

    done = client.post(lock)
    assert done.status_code == 200 and "done" in done.text
    assert wait_until(lambda: len(rec.on(DOORS)) == 1, 5) and rec.on(DOORS)[0].payload == b"LOCK"
    again = client.post(lock)
    assert again.status_code == 409
    time.sleep(0.3)
    assert len(rec.on(DOORS)) == 1, "the command must be published exactly once"

    audit = _audit(store)
    assert [a for a in audit if a[1] == "alert.action"] == [
        (
            "Anna",
            "alert.action",
            f"event:{ev.id}",
            {"action": "lock", "label": "Lock the doors", "notified": [], "client": "testclient"},
        )
    ]


def test_refused_when_expired_forged_or_not_allowed(setup) -> None:
    http, rec, store, ev, _d, client = setup
    lock = _link(http.received("/manager")[0].json()["message"], "Lock the doors")
    token = lock.removeprefix("/a/act/")
    body, mac = token.split(".")
    forged = f"{body}.{mac[:-2]}{'AA' if not mac.endswith('AA') else 'BB'}"
    assert client.post(f"/a/act/{forged}").status_code == 403
    # a link claiming to be for the manager but signed with another secret
    other = links.make(
        b"another-secret", Purpose.ACT, ev.id, "manager", now=time.time(), ttl_s=60, action="lock"
    )
    assert client.post(f"/a/act/{other}").status_code == 403
    expired = links.make(
        T_SECRET, Purpose.ACT, ev.id, "manager", now=time.time() - 3600, ttl_s=60, action="lock"
    )
    assert client.get(f"/a/act/{expired}").status_code == 410
    assert client.post(f"/a/act/{expired}").status_code == 410
    clerk = links.make(T_SECRET, Purpose.ACT, ev.id, "clerk", now=time.time(), ttl_s=60, action="lock")
    assert client.post(f"/a/act/{clerk}").status_code == 403
    ack_as_act = _link(http.received("/manager")[0].json()["message"], "Acknowledge").removeprefix("/a/ack/")
    assert client.post(f"/a/act/{ack_as_act}").status_code == 403  # wrong purpose
    time.sleep(0.3)
    assert rec.on(DOORS) == []
    reasons = [
        a[3].get("reason") for a in _audit(store) if a[1] in ("alert.link_refused", "alert.action_refused")
    ]
    assert reasons.count("forged") == 2 and reasons.count("expired") == 2
    assert reasons.count("not authorised") == 1 and reasons.count("purpose") == 1


def test_call_security_notifies_their_route(setup) -> None:
    http, _rec, store, ev, _d, client = setup
    call = _link(http.received("/manager")[0].json()["message"], "Call security")
    assert client.post(call).status_code == 200
    assert wait_until(lambda: len(http.received("/security")) == 1, 10)
    msg = http.received("/security")[0].json()
    assert msg["title"].startswith("Action: ") and msg["message"].startswith("Anna asked: Call security")
    assert ev.description in msg["message"]
    assert any(a[1] == "alert.action" and a[3]["notified"] == ["security"] for a in _audit(store))


def test_media_links_serve_the_snapshot(setup) -> None:
    http, _rec, store, ev, _d, client = setup
    body = http.received("/manager")[0].json()
    token = links.make(T_SECRET, Purpose.SNAPSHOT, ev.id, "manager", now=time.time(), ttl_s=60)
    resp = client.get(f"/a/snap/{token}")
    assert resp.status_code == 200 and resp.content == Path(store.get(ev.id).snapshot_path).read_bytes()
    assert body["attachments"][0]["filename"] == "snap.jpg"
    assert client.get(f"/a/clip/{token}").status_code == 403  # a snapshot link is not a clip link
    assert any(a[1] == "snapshot.view" for a in _audit(store))
