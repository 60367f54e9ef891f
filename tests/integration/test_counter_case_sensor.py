"""A display case's contact sensor over a real MQTT broker (Mosquitto on this machine): the
reading reaches the camera's zone watcher and beats what the picture says."""

from __future__ import annotations

import threading
import time
import uuid

import numpy as np
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from conftest import port_open
from gemwatch.config.counter import CaseParams, ZoneAnalysis
from gemwatch.config.models import Camera, MqttBroker, Zone
from gemwatch.perception.zones import ZoneWatcher
from gemwatch.sources.case_sensors import case_sensor_feed


def publish(topic: str, payload: str) -> None:
    client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2)
    client.connect("127.0.0.1", 1883)
    client.loop_start()
    client.publish(topic, payload, qos=1, retain=True).wait_for_publish(5)
    client.disconnect()
    client.loop_stop()


def test_case_sensor_readings_reach_the_zone_state() -> None:
    if not port_open("127.0.0.1", 1883):
        pytest.skip("no MQTT broker on 127.0.0.1:1883")
    topic = f"test/gemwatch/case-{uuid.uuid4().hex[:8]}"
    zone = Zone(
        id="case1",
        kind="case",
        polygon=[(0.1, 0.1), (0.3, 0.1), (0.3, 0.3)],
        case=CaseParams(sensor_topic=topic),
    )
    camera = Camera(id="cam", url="x", zones=[zone])
    watcher = ZoneWatcher(camera, ZoneAnalysis())
    readings: list[tuple[str, bool]] = []
    got = threading.Event()

    def on_reading(zone_id: str, is_open: bool) -> None:
        readings.append((zone_id, is_open))
        watcher.set_sensor(zone_id, is_open)
        got.set()

    publish(topic, "OPEN")  # retained: the state is known as soon as the feed subscribes
    feed = case_sensor_feed(camera, MqttBroker(host="127.0.0.1", port=1883), on_reading)
    assert feed is not None
    feed.start()
    try:
        assert got.wait(10), "no reading from the broker"
        image = np.full((200, 200, 3), 120, np.uint8)
        state = watcher.update(image, 0.0, ())["case1"]
        assert state.open is True and state.open_source == "sensor"
        got.clear()
        publish(topic, '{"contact": true}')  # Zigbee2MQTT style: contact made = closed
        assert got.wait(10)
        deadline = time.monotonic() + 5
        while readings[-1] != ("case1", False) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert readings[-1] == ("case1", False)
        assert watcher.update(image, 1.0, ())["case1"].open is False
    finally:
        feed.stop()
        publish(topic, "")  # clear the retained message


def test_no_feed_without_topics_or_broker() -> None:
    plain = Camera(id="cam", url="x", zones=[Zone(id="c", kind="case", polygon=[(0, 0), (1, 0), (1, 1)])])
    assert case_sensor_feed(plain, MqttBroker(), lambda z, o: None) is None
    wired = Camera(
        id="cam", url="x",
        zones=[Zone(id="c", kind="case", polygon=[(0, 0), (1, 0), (1, 1)], case=CaseParams(sensor_topic="t"))],
    )  # fmt: skip
    assert case_sensor_feed(wired, None, lambda z, o: None) is None
