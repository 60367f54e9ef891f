"""Home Assistant discovery and the MQTT topic contract (pure)."""

from __future__ import annotations

import json

from gemwatch.alerts.channels.homeassistant import Topics, camera_sensors, discovery_messages, sensor_of
from gemwatch.alerts.content import machine_message, render_text
from gemwatch.config.models import GemwatchConfig, MqttBroker

TOPICS = Topics.of(MqttBroker(node_id="shop-1"))


def test_topics() -> None:
    assert TOPICS.status == "gemwatch/v1/shop-1/status"
    assert TOPICS.events == "gemwatch/v1/shop-1/events"
    assert TOPICS.state("door", "after_hours") == "gemwatch/v1/shop-1/camera/door/after_hours/state"
    assert sensor_of("presence.after-hours") == "after_hours" and sensor_of("loitering") == "loitering"


def test_discovery_payloads() -> None:
    msgs = dict(
        discovery_messages(
            TOPICS, "door", "Front door", ["alarm", "loitering", "smoke"], ["loitering", "smoke"]
        )
    )
    sensor_topic = "homeassistant/binary_sensor/gemwatch_shop_1/gemwatch_shop_1_door_smoke/config"
    smoke = json.loads(msgs[sensor_topic])
    assert (
        smoke["device_class"] == "smoke"
        and smoke["state_topic"] == "gemwatch/v1/shop-1/camera/door/smoke/state"
    )
    assert smoke["unique_id"] == "gemwatch_shop_1_door_smoke" and smoke["device"]["name"] == "Front door"
    assert smoke["availability_topic"] == TOPICS.status and smoke["payload_not_available"] == "offline"
    alarm = json.loads(msgs["homeassistant/binary_sensor/gemwatch_shop_1/gemwatch_shop_1_door_alarm/config"])
    assert alarm["device_class"] == "safety"
    event = json.loads(msgs["homeassistant/event/gemwatch_shop_1/gemwatch_shop_1_door_alert/config"])
    assert event["event_types"] == ["alert", "loitering", "smoke"]
    camera = json.loads(msgs["homeassistant/camera/gemwatch_shop_1/gemwatch_shop_1_door_snapshot/config"])
    assert camera["topic"] == "gemwatch/v1/shop-1/camera/door/snapshot"
    ids = {json.dumps(json.loads(v)["device"]["identifiers"]) for v in msgs.values()}
    assert len(ids) == 1, "all entities belong to the one camera device"


def test_camera_sensors_from_config() -> None:
    cfg = GemwatchConfig.model_validate(
        {
            "cameras": [
                {
                    "id": "door",
                    "url": "x.mp4",
                    "zones": [{"id": "e", "kind": "entrance", "polygon": [[0, 0], [1, 0], [1, 1]]}],
                },
                {"id": "vault", "url": "y.mp4"},
            ],
            "rules": {"presence": [{"id": "after-hours", "whole_frame": True}]},
        }
    )
    assert camera_sensors(cfg, "door") == ["alarm", "loitering", "after_hours"]
    assert camera_sensors(cfg, "vault") == ["alarm", "after_hours"]


def test_text_and_machine_message() -> None:
    from zoneinfo import ZoneInfo

    payload = {
        "event": {
            "id": "e1",
            "type": "loitering",
            "type_label": "Loitering",
            "camera": "Front door",
            "zone": "Counter 2",
            "description": "Person 3 has been at Counter 2 for 4 min",
            "store": "Gems",
        },
        "links": {"ack": "https://c/a/ack/t", "live": "https://c/live/door", "actions": []},
        "frame_ts": 1_774_746_000.0,
        "level": 1,
        "silent": True,
    }
    title, body = render_text("alert", payload, ZoneInfo("Europe/London"))
    assert title == "[escalated] Loitering — Gems"
    assert body.splitlines() == [
        "Person 3 has been at Counter 2 for 4 min",
        "Front door · Counter 2 · 02:00:00",  # 01:00 UTC, the instant BST starts
        "Acknowledge: https://c/a/ack/t",
        "Live view: https://c/live/door",
    ]
    msg = machine_message("k", "alert", payload)
    assert msg["v"] == 1 and msg["key"] == "k" and msg["silent"] is True and msg["level"] == 1
