"""Both alert stages reach real receivers on localhost: a push service (Apprise json://), an
SMTP server (e-mail with the snapshot, then the clip, attached), a signed webhook, and a
Mosquitto broker with Home Assistant discovery. Then the incident ends and is folded."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from pathlib import Path

import pytest
from test_alerts_receivers import (
    T_SECRET,
    Broker,
    HttpReceiver,
    MqttRecorder,
    SmtpReceiver,
    alert_config,
    evidence,
    store_with_event,
    wait_until,
)

from gemwatch.alerts.dispatcher import AlertDispatcher
from gemwatch.types import Event

EVENTS = "gemwatch/v1/shop1/events"
LOITER_STATE = "gemwatch/v1/shop1/camera/counter-cam/loitering/state"
HA = "homeassistant"


@pytest.fixture
def receivers(tmp_path: Path):
    http, smtp, broker = HttpReceiver(), SmtpReceiver(), Broker(tmp_path)
    rec = MqttRecorder(broker.port)
    yield http, smtp, broker, rec
    rec.close()
    broker.close()
    smtp.close()
    http.close()


def _config(tmp: Path, http: HttpReceiver, smtp: SmtpReceiver, broker: Broker, **route: object):
    return alert_config(
        tmp,
        {
            "mqtt": {"host": "127.0.0.1", "port": broker.port, "node_id": "shop1"},
            "recipients": [
                {
                    "id": "manager",
                    "name": "Anna (manager)",
                    "apprise": [f"json://127.0.0.1:{http.port}/push", smtp.url()],
                    "webhooks": [{"url": http.url("/hook")}],
                },
                {"id": "building", "mqtt": True},
            ],
            "routes": [{"id": "counter", "recipients": ["manager", "building"], "cooldown_s": 30, **route}],
        },
    )


def test_two_stages_reach_every_receiver(tmp_path: Path, receivers) -> None:
    http, smtp, broker, rec = receivers
    cfg = _config(tmp_path, http, smtp, broker)
    snap, clip = evidence(tmp_path)
    store, ev = store_with_event(tmp_path, cfg, snapshot_path=snap)
    d = AlertDispatcher(cfg, store.engine, secret=T_SECRET).start()
    try:
        t0 = time.perf_counter()
        d.event(ev)
        assert time.perf_counter() - t0 < 0.5, "routing must not wait for any channel"
        assert wait_until(lambda: len(http.received("/push")) == 1 and len(smtp.messages) == 1, 10)
        assert wait_until(
            lambda: len(http.received("/hook")) == 1 and len(rec.on("gemwatch/v1/shop1/events")) == 1, 10
        )

        # first stage: push with the snapshot attached, a one-line description and links
        push = http.received("/push")[0]
        body = push.json()
        assert body["title"] == "Loitering — Test Jewellers"
        assert body["message"].splitlines()[0] == "Person 3 has been at Counter 2 for 4 min"
        assert "Acknowledge: http://127.0.0.1:7480/a/ack/" in body["message"]
        assert "Live view: http://127.0.0.1:7480/live/counter-cam" in body["message"]
        [att] = body["attachments"]
        assert att["mimetype"] == "image/jpeg" and base64.b64decode(att["base64"]) == Path(snap).read_bytes()
        keys = {s.key for s in d.deliveries(ev.id)}
        assert push.headers["X-Gemwatch-Key"] in keys

        # e-mail with the snapshot attached
        mail = smtp.messages[0]
        assert mail["Subject"] == "Loitering — Test Jewellers"
        [part] = list(mail.iter_attachments())
        assert part.get_filename() == "snap.jpg" and part.get_content() == Path(snap).read_bytes()

        # webhook: signed with HMAC-SHA256 over "<timestamp>.<body>", idempotency key, silent
        hook = http.received("/hook")[0]
        expected = hmac.new(
            T_SECRET, hook.headers["X-Gemwatch-Timestamp"].encode() + b"." + hook.body, hashlib.sha256
        )
        assert hook.headers["X-Gemwatch-Signature"] == "sha256=" + expected.hexdigest()
        msg = hook.json()
        assert msg["v"] == 1 and msg["stage"] == "alert" and msg["silent"] is True
        assert msg["key"] == hook.headers["Idempotency-Key"] and msg["event"]["zone"] == "Counter 2"

        # MQTT: the event, the sensor switched on, a Home Assistant event and the snapshot
        [mq] = rec.on(EVENTS)
        assert mq.json()["stage"] == "alert" and mq.json()["event"]["id"] == ev.id
        assert wait_until(lambda: rec.on(LOITER_STATE), 5)
        assert rec.on(LOITER_STATE)[-1].payload == b"ON"
        assert rec.on("gemwatch/v1/shop1/camera/counter-cam/event")[0].json()["event_type"] == "loitering"
        assert rec.on("gemwatch/v1/shop1/camera/counter-cam/snapshot")[0].payload == Path(snap).read_bytes()

        # second stage: the clip, attached where the channel takes attachments
        store.set_evidence(ev.id, clip_path=clip)
        d.clip_ready(ev.id, clip)
        assert wait_until(lambda: len(http.received("/push")) == 2 and len(smtp.messages) == 2, 10)
        assert wait_until(
            lambda: len(http.received("/hook")) == 2 and len(rec.on("gemwatch/v1/shop1/events")) == 2, 10
        )
        clip_push = http.received("/push")[1].json()
        assert clip_push["title"].startswith("Clip: ")
        assert "Clip: http://127.0.0.1:7480/a/clip/" in clip_push["message"]
        [catt] = clip_push["attachments"]
        assert base64.b64decode(catt["base64"]) == Path(clip).read_bytes()
        assert [p.get_filename() for p in smtp.messages[1].iter_attachments()] == ["clip.mp4"]
        hook2 = http.received("/hook")[1].json()
        assert hook2["stage"] == "clip" and hook2["links"]["clip"].startswith("http://127.0.0.1:7480/a/clip/")

        # delivery state per recipient, with latency from the frame's timestamp
        assert wait_until(lambda: d.outbox.pending_count() == 0, 5)  # marked after the send returns
        states = d.deliveries(ev.id)
        assert {(s.stage, s.recipient_id, s.channel) for s in states} == {
            (stage, rid, ch)
            for stage in ("alert", "clip")
            for rid, ch in [("manager", "apprise"), ("manager", "webhook"), ("building", "mqtt")]
        }
        assert len(states) == 8 and all(s.state == "sent" and s.attempts == 1 for s in states)
        assert all(0 < s.latency_s < 5 for s in states if s.stage == "alert")
        # …and as a Prometheus histogram per channel and stage
        from prometheus_client import REGISTRY

        for ch in ("apprise", "webhook", "mqtt"):
            labels = {"channel": ch, "stage": "alert"}
            assert REGISTRY.get_sample_value("gemwatch_alert_latency_seconds_count", labels) >= 1
        assert (
            REGISTRY.get_sample_value("gemwatch_alert_latency_seconds_bucket", {**labels, "le": "5.0"}) >= 1
        )

        # the incident ends: machines hear it (sensor OFF), phones stay quiet
        d.event(Event(**{**_fields(ev), "ended": True, "end_ts": ev.end_ts + 30}))
        assert wait_until(lambda: len(http.received("/hook")) == 3, 10)
        assert http.received("/hook")[2].json()["stage"] == "end"
        assert wait_until(lambda: rec.on(LOITER_STATE)[-1].payload == b"OFF", 5)
        time.sleep(0.3)
        assert len(http.received("/push")) == 2 and len(smtp.messages) == 2
    finally:
        d.close()
        store.close()

    # Home Assistant discovery is retained: a controller that connects later still finds it
    late = MqttRecorder(broker.port)
    try:
        assert wait_until(lambda: len(late.matching("homeassistant/")) >= 4, 5)
        configs = {m.topic: m.json() for m in late.matching("homeassistant/")}
        assert all(m.retain for m in late.matching("homeassistant/"))
        loiter = configs[
            "homeassistant/binary_sensor/gemwatch_shop1/gemwatch_shop1_counter_cam_loitering/config"
        ]
        assert loiter["state_topic"] == LOITER_STATE
        assert loiter["device"]["name"] == "Counter camera" and loiter["device_class"] == "occupancy"
        assert loiter["availability_topic"] == "gemwatch/v1/shop1/status"
        assert "homeassistant/binary_sensor/gemwatch_shop1/gemwatch_shop1_counter_cam_alarm/config" in configs
        event_cfg = configs["homeassistant/event/gemwatch_shop1/gemwatch_shop1_counter_cam_alert/config"]
        assert "loitering" in event_cfg["event_types"]
        assert "homeassistant/camera/gemwatch_shop1/gemwatch_shop1_counter_cam_snapshot/config" in configs
        # the node said goodbye on close: availability is offline
        assert late.on("gemwatch/v1/shop1/status")[-1].payload == b"offline"
    finally:
        late.close()


def _fields(ev: Event) -> dict[str, object]:
    return {f: getattr(ev, f) for f in Event.__dataclass_fields__}


def test_one_incident_is_one_alert(tmp_path: Path, receivers) -> None:
    """Updates of an event never re-alert; a second event in the same zone within the route's
    cooldown is folded into the first; after the cooldown a new one alerts again."""
    http, smtp, broker, _rec = receivers
    cfg = _config(tmp_path, http, smtp, broker)
    store, ev = store_with_event(tmp_path, cfg)
    d = AlertDispatcher(cfg, store.engine, secret=T_SECRET).start()
    try:
        d.event(ev)
        d.event(Event(**{**_fields(ev), "end_ts": ev.end_ts + 5, "description": "still there"}))
        second = Event(**{**_fields(ev), "id": "second", "people": (4,), "end_ts": ev.end_ts + 10})
        store.write(second)
        d.event(second)
        later = Event(**{**_fields(ev), "id": "later", "people": (5,), "end_ts": ev.end_ts + 31})
        store.write(later)
        d.event(later)
        assert wait_until(lambda: len(http.received("/push")) == 2, 10)
        time.sleep(0.5)
        assert len(http.received("/push")) == 2
        assert d.deliveries("second") == []
        assert len(d.deliveries(ev.id)) == 4 and len(d.deliveries("later")) == 4
    finally:
        d.close()
        store.close()


def test_schedule_routes_by_store_hours(tmp_path: Path, receivers) -> None:
    """Routes for opening hours and for after hours: only the one matching the store's local
    time alerts (a 00:00-00:00 window is open all day)."""
    http, _smtp, _broker, _rec = receivers
    cfg = alert_config(
        tmp_path,
        {
            "store_hours": [{"start": "00:00", "end": "00:00"}],
            "recipients": [
                {"id": "owner", "apprise": [f"json://127.0.0.1:{http.port}/night"]},
                {"id": "staff", "apprise": [f"json://127.0.0.1:{http.port}/day"]},
            ],
            "routes": [
                {"id": "night", "schedule": "closed", "recipients": ["owner"]},
                {"id": "day", "schedule": "open", "recipients": ["staff"]},
            ],
        },
    )
    store, ev = store_with_event(tmp_path, cfg)
    d = AlertDispatcher(cfg, store.engine, secret=T_SECRET).start()
    try:
        d.event(ev)
        assert wait_until(lambda: len(http.received("/day")) == 1, 10)
        time.sleep(0.3)
        assert http.received("/night") == []
        assert {s.recipient_id for s in d.deliveries(ev.id)} == {"staff"}
    finally:
        d.close()
        store.close()
