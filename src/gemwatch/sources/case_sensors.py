"""Display-case contact and lock sensors over MQTT: a simple topic per case.

Each ``case`` zone may name ``case.sensor_topic``; readings arrive on the broker configured in
``alerts.mqtt`` and are handed to the camera's zone watcher, where a sensor's word beats the
picture's. Retained messages give the state at start. The full sensors interface (vibration,
smoke, doors) is a later piece of work; this is the case part of it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from gemwatch.config.models import Camera, MqttBroker, ZoneKind
from gemwatch.perception.zones import parse_sensor_payload

log = logging.getLogger(__name__)


class CaseSensorFeed:
    """Subscribes to the case topics of one camera and reports ``(zone_id, is_open)``."""

    def __init__(
        self,
        broker: MqttBroker,
        topics: dict[str, tuple[str, list[str]]],
        on_reading: Callable[[str, bool], None],
        client_id: str,
    ) -> None:
        self.broker = broker
        self.topics = topics  # topic → (zone id, payloads that mean open)
        self.on_reading = on_reading
        self.client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=client_id)
        if broker.username:
            password = os.environ.get(broker.password_env) if broker.password_env else None
            self.client.username_pw_set(broker.username, password)
        if broker.tls:
            self.client.tls_set()
        self.client.reconnect_delay_set(min_delay=1, max_delay=5)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message

    def start(self) -> None:
        self.client.connect_async(self.broker.host, self.broker.port, keepalive=30)
        self.client.loop_start()

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(self, client: Any, _userdata: Any, _flags: Any, reason: Any, _props: Any) -> None:
        if getattr(reason, "is_failure", False):
            log.warning("case sensors: broker %s:%s refused: %s", self.broker.host, self.broker.port, reason)
            return
        for topic in self.topics:  # again after every reconnect
            client.subscribe(topic, qos=1)

    def _on_message(self, _client: Any, _userdata: Any, msg: Any) -> None:
        target = self.topics.get(msg.topic)
        if target is None:
            return
        zone_id, open_payloads = target
        self.on_reading(zone_id, parse_sensor_payload(msg.payload, open_payloads))


def case_sensor_feed(
    camera: Camera, broker: MqttBroker | None, on_reading: Callable[[str, bool], None]
) -> CaseSensorFeed | None:
    """A feed for the camera's case zones that name a sensor topic; None when there are none."""
    topics = {
        z.case_params().sensor_topic: (z.id, list(z.case_params().sensor_open_payloads))
        for z in camera.zones
        if z.kind == ZoneKind.CASE and z.case_params().sensor_topic
    }
    if not topics:
        return None
    if broker is None:
        log.warning("camera %s: case sensor topics are set but alerts.mqtt (the broker) is not", camera.id)
        return None
    return CaseSensorFeed(
        broker, {str(k): v for k, v in topics.items()}, on_reading, f"gemwatch-cases-{camera.id}"
    )
