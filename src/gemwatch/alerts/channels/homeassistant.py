"""Topics of the versioned MQTT contract (docs/mqtt.md) and Home Assistant discovery.

Each camera is a Home Assistant *device* with binary sensors (``alarm`` plus one per kind of
event it can raise: ``loitering``, a presence rule such as ``after_hours``, ``smoke``…), an
``event`` entity that fires once per alert, and a ``camera`` entity showing the latest alert
snapshot. Everything shares the node's availability topic, which the broker sets to
``offline`` (last will) when the node dies. Pure: builds topics and JSON, publishes nothing.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from gemwatch.config.models import GemwatchConfig, MqttBroker, Severity

CONTRACT = "v1"

# Severity at or above which an event also switches the camera's ``alarm`` sensor on.
ALARM_SEVERITY = (Severity.HIGH, Severity.CRITICAL)

_DEVICE_CLASS = {
    "alarm": "safety",
    "loitering": "occupancy",
    "smoke": "smoke",
    "fire": "heat",
    "tamper": "tamper",
    "glass_break": "sound",
    "vibration": "vibration",
}


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9_]+", "_", text.lower()).strip("_") or "event"


def sensor_of(event_type: str) -> str:
    """The binary sensor an event type switches: ``presence.after-hours`` → ``after_hours``."""
    return slug(event_type.removeprefix("presence."))


def device_class(sensor: str) -> str:
    return _DEVICE_CLASS.get(sensor, "occupancy" if sensor != "alarm" else "safety")


@dataclass(frozen=True, slots=True)
class Topics:
    base: str
    node: str
    discovery_prefix: str

    @classmethod
    def of(cls, broker: MqttBroker) -> Topics:
        return cls(broker.base_topic.strip("/"), broker.node_id, broker.discovery_prefix.strip("/"))

    @property
    def root(self) -> str:
        return f"{self.base}/{CONTRACT}/{self.node}"

    @property
    def status(self) -> str:
        return f"{self.root}/status"

    @property
    def events(self) -> str:
        return f"{self.root}/events"

    def state(self, camera_id: str, sensor: str) -> str:
        return f"{self.root}/camera/{camera_id}/{sensor}/state"

    def camera_event(self, camera_id: str) -> str:
        return f"{self.root}/camera/{camera_id}/event"

    def snapshot(self, camera_id: str) -> str:
        return f"{self.root}/camera/{camera_id}/snapshot"

    def object_id(self, camera_id: str, name: str) -> str:
        return slug(f"gemwatch_{self.node}_{camera_id}_{name}")

    def discovery(self, component: str, camera_id: str, name: str) -> str:
        node = slug(f"gemwatch_{self.node}")
        return f"{self.discovery_prefix}/{component}/{node}/{self.object_id(camera_id, name)}/config"


def camera_sensors(cfg: GemwatchConfig, camera_id: str) -> list[str]:
    """Sensors a camera can switch, known from the config (new kinds are announced when first seen)."""
    sensors = ["alarm"]
    try:
        cam = cfg.camera(camera_id)
    except KeyError:
        return sensors
    if any(z.loitering_params() is not None for z in cam.zones):
        sensors.append("loitering")
    for rule in cfg.rules.presence:
        zones = {z.id for z in cam.zones if z.id in rule.zones or z.kind in rule.zone_kinds}
        if rule.whole_frame or zones:
            sensors.append(sensor_of(rule.id))
    return sensors


def discovery_messages(
    topics: Topics, camera_id: str, camera_name: str, sensors: list[str], event_types: list[str]
) -> list[tuple[str, str]]:
    """(topic, JSON) pairs to publish retained so Home Assistant creates the device's entities."""
    device = {
        "identifiers": [topics.object_id(camera_id, "camera")],
        "name": camera_name,
        "manufacturer": "gemwatch",
        "model": "camera",
    }
    availability = {
        "availability_topic": topics.status,
        "payload_available": "online",
        "payload_not_available": "offline",
    }
    out: list[tuple[str, str]] = []
    for sensor in sensors:
        config = {
            "name": sensor.replace("_", " ").capitalize(),
            "unique_id": topics.object_id(camera_id, sensor),
            "state_topic": topics.state(camera_id, sensor),
            "payload_on": "ON",
            "payload_off": "OFF",
            "device_class": device_class(sensor),
            "device": device,
            **availability,
        }
        out.append((topics.discovery("binary_sensor", camera_id, sensor), json.dumps(config, sort_keys=True)))
    event_config = {
        "name": "Alert",
        "unique_id": topics.object_id(camera_id, "alert"),
        "state_topic": topics.camera_event(camera_id),
        "event_types": sorted({slug(t) for t in event_types} | {"alert"}),
        "device": device,
        **availability,
    }
    out.append((topics.discovery("event", camera_id, "alert"), json.dumps(event_config, sort_keys=True)))
    image_config = {
        "name": "Last alert",
        "unique_id": topics.object_id(camera_id, "snapshot"),
        "topic": topics.snapshot(camera_id),
        "device": device,
        **availability,
    }
    out.append((topics.discovery("camera", camera_id, "snapshot"), json.dumps(image_config, sort_keys=True)))
    return out


def event_types_for(sensors: list[str]) -> list[str]:
    return [s for s in sensors if s != "alarm"]
