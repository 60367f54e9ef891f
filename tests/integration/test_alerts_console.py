"""The console's side of alerting, over real HTTP (uvicorn, SQLite) with real local receivers.

A node-side ``AlertDispatcher`` delivers to an HTTP receiver (a push service through Apprise's
``json://`` and a webhook) and to a webhook that answers 503; the console shows each delivery's
state on the event page and in the API (hidden from staff for watchlist events), its
Acknowledge button goes through ``AlertService.acknowledge`` (escalation stops, the machines
get the acknowledgement, one audit line), and ``/metrics`` is refused anonymously and to roles
without ``audit`` and serves the alert latency histogram to an auditor's API token.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from sqlalchemy.orm import Session
from test_alerts_receivers import T_SECRET, HttpReceiver, alert_config, free_port, wait_until

from gemwatch.alerts.dispatcher import AlertDispatcher
from gemwatch.events.store import EventStore
from gemwatch.types import Event, Severity
from gemwatch.web.audit import query
from gemwatch.web.auth import Role, create_api_token, create_user
from gemwatch.web.deps import WebContext
from gemwatch.web.server import WebServer

pytestmark = pytest.mark.timeout(120)

PASSWORD = "a-long-enough-password"
ESCALATE_S = 3.0


@dataclass
class Console:
    base: str
    store: EventStore
    server: WebServer
    dispatcher: AlertDispatcher
    http: HttpReceiver
    down: HttpReceiver
    tokens: dict[str, str] = field(default_factory=dict)

    def client(self, role: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.tokens[role]}"} if role else {}
        return httpx.Client(base_url=self.base, headers=headers, timeout=30, follow_redirects=False)

    def login(self, username: str) -> tuple[httpx.Client, str]:
        c = httpx.Client(base_url=self.base, timeout=30, follow_redirects=False)
        page = c.get("/login")
        value = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
        r = c.post("/login", data={"username": username, "password": PASSWORD, "csrf_token": value})
        assert r.status_code == 303, r.text[:300]
        return c, c.get("/api/v1/me").json()["csrf_token"]

    def event(self, type: str = "loitering") -> Event:
        now = time.time()
        ev = Event(
            type=type,
            severity=Severity.HIGH,
            camera_id="counter-cam",
            zone_id="counter-2",
            start_ts=now - 5,
            end_ts=None,
            people=(3,),
            description="Person 3 has been at Counter 2 for 4 min",
        )
        self.store.write(ev)
        return ev


@pytest.fixture
def console(tmp_path: Path) -> Iterator[Console]:
    http, down = HttpReceiver(), HttpReceiver()
    down.status = 503
    cfg = alert_config(
        tmp_path,
        {
            "recipients": [
                {"id": "manager", "name": "Anna", "apprise": [f"json://127.0.0.1:{http.port}/manager"]},
                {"id": "owner", "name": "Olek", "apprise": [f"json://127.0.0.1:{http.port}/owner"]},
                {"id": "security", "webhooks": [{"url": http.url("/security")}]},
                {"id": "desk", "webhooks": [{"url": down.url("/desk")}]},
            ],
            "routes": [
                {
                    "id": "counter",
                    "event_types": ["loitering", "watchlist.*"],
                    "recipients": ["manager", "security", "desk"],
                    "cooldown_s": 0,
                    "escalation": [{"after_s": ESCALATE_S, "recipients": ["owner"]}],
                }
            ],
        },
        web={"port": free_port()},
    )
    store = EventStore(cfg.storage.resolved_database_url(), cfg.store.tz)
    server = WebServer(WebContext(cfg=cfg, store=store))
    server.start()
    dispatcher = AlertDispatcher(cfg, store.engine, secret=T_SECRET, poll_s=0.1).start()
    c = Console(server.url.replace("localhost", "127.0.0.1"), store, server, dispatcher, http, down)
    with Session(store.engine) as s, s.begin():
        for role in (Role.OWNER, Role.MANAGER, Role.STAFF, Role.AUDITOR):
            user = create_user(s, role.value, PASSWORD, role)
            c.tokens[role.value] = create_api_token(s, user, "tests")[0]
    yield c
    dispatcher.close()
    server.stop()
    store.close()
    http.close()
    down.close()


def test_delivery_states_acknowledgement_and_escalation(console: Console) -> None:
    manager, csrf = console.login("manager")
    ev = console.event()
    raised = time.time()
    console.dispatcher.event(ev)
    assert wait_until(lambda: len(console.http.received("/manager")) == 1, 5)
    assert wait_until(lambda: len(console.http.received("/security")) == 1, 5)
    assert wait_until(lambda: console.down.attempts >= 1, 5)

    # Acknowledge from the console's button (a form post with the session's CSRF token).
    r = manager.post(f"/events/{ev.id}/review", data={"action": "ack", "csrf_token": csrf})
    assert r.status_code == 303, r.text[:300]
    assert time.time() - raised < ESCALATE_S, "too slow to test that escalation stops"

    # The machines are told: the webhook gets the acknowledgement.
    assert wait_until(lambda: len(console.http.received("/security")) == 2, 5)
    ack = console.http.received("/security")[1].json()
    assert ack["stage"] == "ack" and ack["acked_by"] == "manager"

    # Escalation stopped: the owner is never alerted.
    time.sleep(max(0.0, raised + ESCALATE_S + 1.0 - time.time()))
    assert console.http.received("/owner") == []
    row = console.store.get(ev.id)
    assert row is not None and row.acknowledged_by == "manager"

    # Exactly one audit line for the acknowledgement, made by the alerts service.
    with Session(console.store.engine) as s:
        acks = [r for r in query(s, action="event.ack") if r.target == f"event:{ev.id}"]
    assert [(a.actor, a.detail["via"]) for a in acks] == [("manager", "console")]

    # Delivery states in the API ...
    with console.client("manager") as api:
        states = api.get(f"/api/v1/events/{ev.id}/deliveries").json()
    by = {(d["recipient"], d["stage"]): d for d in states}
    first = by[("manager", "alert")]
    assert first["channel"] == "apprise" and first["state"] == "sent" and first["attempts"] == 1
    assert first["sent_local"] and 0 < first["latency_s"] < 30
    assert by[("security", "alert")]["state"] == "sent" and by[("security", "alert")]["channel"] == "webhook"
    assert by[("security", "ack")]["state"] == "sent"
    desk = by[("desk", "alert")]
    assert desk["state"] == "retrying" and desk["attempts"] >= 1 and "503" in (desk["last_error"] or "")
    assert ("owner", "alert") not in by

    # ... and on the event page.
    page = manager.get(f"/events/{ev.id}")
    assert page.status_code == 200
    assert re.search(
        r'data-recipient="manager" data-channel="apprise" data-stage="alert" data-state="sent"', page.text
    )
    assert re.search(
        r'data-recipient="desk" data-channel="webhook" data-stage="alert" data-state="retrying"', page.text
    )
    assert "503" in page.text
    manager.close()


def test_staff_never_see_deliveries_of_watchlist_events(console: Console) -> None:
    ev = console.event("watchlist.hit")
    console.dispatcher.event(ev)
    assert wait_until(lambda: len(console.http.received("/manager")) == 1, 5)
    with console.client("staff") as staff, console.client("manager") as manager:
        assert staff.get(f"/api/v1/events/{ev.id}/deliveries").status_code == 404
        assert staff.get(f"/events/{ev.id}").status_code == 404
        states = manager.get(f"/api/v1/events/{ev.id}/deliveries").json()
        assert {d["recipient"] for d in states} >= {"manager", "security"}
        assert manager.get("/api/v1/events/not-an-id/deliveries").status_code == 404


def test_metrics_need_the_audit_permission(console: Console) -> None:
    ev = console.event()
    console.dispatcher.event(ev)
    assert wait_until(lambda: len(console.http.received("/security")) >= 1, 5)
    with console.client() as anonymous:
        assert anonymous.get("/metrics").status_code == 401
    for role in ("staff", "manager"):
        with console.client(role) as c:
            assert c.get("/metrics").status_code == 403
    with console.client("auditor") as auditor:
        r = auditor.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    assert "# TYPE gemwatch_alert_latency_seconds histogram" in r.text
    m = re.search(
        r'^gemwatch_alert_latency_seconds_count\{channel="webhook",stage="alert"\} ([0-9.e+]+)$', r.text, re.M
    )
    assert m is not None and float(m.group(1)) >= 1
    assert re.search(
        r'^gemwatch_alert_latency_seconds_bucket\{channel="webhook",le="1.0",stage="alert"\}', r.text, re.M
    ) or re.search(
        r'^gemwatch_alert_latency_seconds_bucket\{channel="webhook",stage="alert",le="1.0"\}', r.text, re.M
    )
