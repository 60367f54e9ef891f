"""Escalation (on SQLite and PostgreSQL): an alert nobody acknowledges reaches the next list
after the route's delay; acknowledging from the one-tap link stops it, marks the event and is
audit-logged."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from test_alerts_receivers import T_SECRET, HttpReceiver, alert_config, store_with_event, wait_until

from gemwatch.alerts.dispatcher import AlertDispatcher

fastapi = pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

DELAY_S = 1.0


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def setup(request, tmp_path: Path):
    http = HttpReceiver()
    cfg = alert_config(
        tmp_path,
        {
            "recipients": [
                {"id": "manager", "name": "Anna", "apprise": [f"json://127.0.0.1:{http.port}/manager"]},
                {"id": "owner", "name": "Olek", "apprise": [f"json://127.0.0.1:{http.port}/owner"]},
                {"id": "security", "webhooks": [{"url": http.url("/security")}]},
            ],
            "routes": [
                {
                    "id": "counter",
                    "recipients": ["manager"],
                    "cooldown_s": 0,
                    "escalation": [
                        {"after_s": DELAY_S, "recipients": ["owner"]},
                        {"after_s": DELAY_S, "recipients": ["security"]},
                    ],
                }
            ],
        },
    )
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    store, ev = store_with_event(tmp_path, cfg, url=url)
    d = AlertDispatcher(cfg, store.engine, secret=T_SECRET, poll_s=0.1).start()
    from gemwatch.alerts.router import build_router

    app = fastapi.FastAPI()
    app.include_router(build_router(d.service), prefix="/a")
    yield http, store, ev, d, TestClient(app)
    d.close()
    store.close()
    http.close()


def test_unacknowledged_alert_climbs_the_chain(setup) -> None:
    http, _store, ev, d, _client = setup
    raised = time.time()  # the delay counts from when the alert was raised
    d.event(ev)
    assert wait_until(lambda: len(http.received("/manager")) == 1, 5)
    assert wait_until(lambda: len(http.received("/owner")) == 1, 5)
    owner = http.received("/owner")[0]
    assert DELAY_S <= owner.at - raised <= DELAY_S + 1.0
    assert owner.json()["title"].startswith("[escalated] ")
    assert "Acknowledge: http://127.0.0.1:7480/a/ack/" in owner.json()["message"]
    assert wait_until(lambda: len(http.received("/security")) == 1, 5)
    sec = http.received("/security")[0]
    assert sec.json()["level"] == 2 and sec.at - raised >= 2 * DELAY_S
    time.sleep(DELAY_S + 0.3)  # the chain is exhausted: nothing more
    assert len(http.received()) == 3


def test_acknowledging_from_the_link_stops_escalation(setup) -> None:
    http, store, ev, d, client = setup
    d.event(ev)
    assert wait_until(lambda: len(http.received("/manager")) == 1, 5)
    msg = http.received("/manager")[0].json()["message"]
    ack = re.search(r"^Acknowledge: http://127.0.0.1:7480(\S+)$", msg, re.M).group(1)
    page = client.get(ack)
    assert page.status_code == 200 and "Acknowledge" in page.text
    resp = client.post(ack)
    assert resp.status_code == 200 and "Acknowledged" in resp.text
    time.sleep(2 * DELAY_S + 0.5)
    assert http.received("/owner") == [] and http.received("/security") == []
    row = store.get(ev.id)
    assert row.acknowledged_by == "Anna" and row.acknowledged_at is not None
    again = client.post(ack)
    assert again.status_code == 200 and "Already acknowledged" in again.text

    from sqlalchemy.orm import Session

    from gemwatch.web.audit import query

    with Session(store.engine) as s:
        acks = [
            (r.actor, r.target, r.detail["via"], r.detail["already"]) for r in query(s, action="event.ack")
        ]
    assert sorted(acks) == [
        ("Anna", f"event:{ev.id}", "alert-link", False),
        ("Anna", f"event:{ev.id}", "alert-link", True),
    ]


def test_console_acknowledgement_also_stops_it(setup) -> None:
    """The console marks the event acknowledged in the events table; escalation sees it."""
    http, store, ev, d, _client = setup
    d.event(ev)
    assert wait_until(lambda: len(http.received("/manager")) == 1, 5)
    from datetime import UTC, datetime

    from sqlalchemy import update

    from gemwatch.events.schema import EventRow

    with store.engine.begin() as c:
        c.execute(
            update(EventRow)
            .where(EventRow.id == ev.id)
            .values(acknowledged_by="olek", acknowledged_at=datetime.now(UTC))
        )
    time.sleep(2 * DELAY_S + 0.5)
    assert http.received("/owner") == []
