"""MQTT v5 (paho-mqtt): alerts and sensor states for building automation, one-tap commands.

One long-lived connection per process, reconnecting on its own (1 → 5 s). A publish waits
for the broker's PUBACK (QoS 1) before the delivery counts as sent; while the connection is
down a send fails at once (paho would otherwise queue it and deliver it again after the
outbox's own retry, a duplicate). On every (re)connect the node announces itself ``online``
(retained; the broker's last will says ``offline``) and re-publishes Home Assistant discovery.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from gemwatch.alerts.channels.base import DeliveryError
from gemwatch.alerts.channels.homeassistant import (
    ALARM_SEVERITY,
    Topics,
    discovery_messages,
    event_types_for,
    slug,
)
from gemwatch.alerts.content import machine_message
from gemwatch.alerts.outbox import Delivery
from gemwatch.alerts.routing import Stage
from gemwatch.config.models import MqttBroker

log = logging.getLogger(__name__)


class MqttLink:
    """A paho client that knows whether it is connected and publishes with confirmation.

    ``presence=True`` (the node's dispatcher) sets the last will and publishes ``online``;
    other processes (the web console running actions) connect without touching the status.
    """

    def __init__(
        self,
        broker: MqttBroker,
        *,
        client_id: str,
        presence: bool,
        on_connected: Callable[[], None] | None = None,
    ) -> None:
        self.broker = broker
        self.topics = Topics.of(broker)
        self.presence = presence
        self.on_connected = on_connected
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5
        )
        if broker.username:
            password = os.environ.get(broker.password_env) if broker.password_env else None
            self.client.username_pw_set(broker.username, password)
        if broker.tls:
            self.client.tls_set()
        if presence:
            self.client.will_set(self.topics.status, "offline", qos=1, retain=True)
        self.client.reconnect_delay_set(min_delay=1, max_delay=5)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self._connected = threading.Event()
        self._started = False

    def start(self) -> None:
        if self._started:
            return
        self._started = True
        self.client.connect_async(self.broker.host, self.broker.port, keepalive=30)
        self.client.loop_start()

    @property
    def connected(self) -> bool:
        return self._connected.is_set() and self.client.is_connected()

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    def _on_connect(self, client: Any, _userdata: Any, _flags: Any, reason: Any, _props: Any) -> None:
        if getattr(reason, "is_failure", False):
            log.warning(
                "MQTT broker %s:%s refused the connection: %s", self.broker.host, self.broker.port, reason
            )
            return
        self._connected.set()
        log.info("MQTT connected to %s:%s", self.broker.host, self.broker.port)
        if self.presence:
            client.publish(self.topics.status, "online", qos=1, retain=True)
        if self.on_connected is not None:
            # paho's network thread must not wait on its own acknowledgements: hand over.
            threading.Thread(target=self.on_connected, name="mqtt-on-connect", daemon=True).start()

    def _on_disconnect(self, _client: Any, _userdata: Any, _flags: Any, reason: Any, _props: Any) -> None:
        if self._connected.is_set():
            log.warning("MQTT disconnected from %s:%s: %s", self.broker.host, self.broker.port, reason)
        self._connected.clear()

    def publish(
        self, topic: str, payload: str | bytes, *, qos: int = 1, retain: bool = False, timeout: float
    ) -> None:
        """Publish and wait for the broker's acknowledgement; DeliveryError when it is not had."""
        if not self.connected:
            raise DeliveryError(f"MQTT broker {self.broker.host}:{self.broker.port} is not connected")
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise DeliveryError(f"MQTT publish failed: {mqtt.error_string(info.rc)}")
        try:
            info.wait_for_publish(timeout)
        except (RuntimeError, ValueError) as exc:
            raise DeliveryError(f"MQTT publish failed: {exc}") from None
        if not info.is_published():
            raise DeliveryError(f"MQTT broker did not acknowledge within {timeout:g} s")

    def close(self) -> None:
        if not self._started:
            return
        if self.presence and self.connected:
            with contextlib.suppress(DeliveryError):
                self.publish(self.topics.status, "offline", retain=True, timeout=2.0)
        self.client.disconnect()
        self.client.loop_stop()
        self._started = False


class MqttChannel:
    """Publishes a delivery as: the event JSON, the camera's sensor states (retained), a Home
    Assistant event, and the snapshot picture; announces a camera's entities before first use."""

    name = "mqtt"

    def __init__(
        self,
        link: MqttLink,
        *,
        timeout_s: float,
        known_sensors: Callable[[str], tuple[str, list[str]]],
    ) -> None:
        self.link = link
        self.topics = link.topics
        self.timeout_s = timeout_s
        self.known_sensors = known_sensors
        self._announced: dict[str, set[str]] = {}
        self._lock = threading.Lock()

    def announce(self, camera_id: str, extra: set[str] | None = None) -> None:
        """Publish (retained) the discovery configs of a camera's entities."""
        if not self.link.broker.discovery:
            return
        name, sensors = self.known_sensors(camera_id)
        with self._lock:
            wanted = set(sensors) | (extra or set()) | self._announced.get(camera_id, set())
        ordered = sorted(wanted)
        for topic, body in discovery_messages(
            self.topics, camera_id, name, ordered, event_types_for(ordered)
        ):
            self.link.publish(topic, body, qos=1, retain=True, timeout=self.timeout_s)
        with self._lock:
            self._announced[camera_id] = wanted

    def reannounce(self, camera_ids: list[str]) -> None:
        """After a (re)connect: the broker may have lost retained configs."""
        with self._lock:
            known = set(self._announced) | set(camera_ids)
        for cam in sorted(known):
            try:
                self.announce(cam)
            except DeliveryError as exc:
                log.warning("Home Assistant discovery for %s not published: %s", cam, exc)
                return

    def send(self, delivery: Delivery) -> None:
        p = delivery.payload
        ev = p["event"]
        cam = ev["camera_id"]
        states: dict[str, str] = p.get("sensor_states") or {}
        with self._lock:
            known = self._announced.get(cam)
        if known is None or not set(states) <= known:
            self.announce(cam, set(states))
        t = self.timeout_s
        msg = machine_message(delivery.key, delivery.stage, p)
        self.link.publish(self.topics.events, json.dumps(msg), qos=1, timeout=t)
        for sensor, state in sorted(states.items()):
            self.link.publish(self.topics.state(cam, sensor), state, qos=1, retain=True, timeout=t)
        if delivery.stage == Stage.ALERT:
            ha_event = {
                "event_type": slug(ev["type"].removeprefix("presence.")),
                "event_id": ev["id"],
                "key": delivery.key,
                "description": ev["description"],
                "severity": ev["severity"],
                "alarm": ev["severity"] in [str(s) for s in ALARM_SEVERITY],
            }
            self.link.publish(self.topics.camera_event(cam), json.dumps(ha_event), qos=1, timeout=t)
            snap = p.get("snapshot_path")
            if snap and os.path.exists(snap):
                with open(snap, "rb") as fh:
                    self.link.publish(self.topics.snapshot(cam), fh.read(), qos=1, retain=True, timeout=t)

    def close(self) -> None:
        return None
