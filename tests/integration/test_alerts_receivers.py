"""Real local receivers for the alert tests, and a check that they work on their own.

An HTTP server (stands in for a push service through Apprise's ``json://`` URL, and receives
webhooks), an SMTP server (aiosmtpd), a private Mosquitto broker on a free port (so stopping it
disturbs nobody else's tests) and an MQTT subscriber that records everything. Other
``test_alerts_*`` modules import these helpers.
"""

from __future__ import annotations

import email
import email.policy
import json
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(predicate: Callable[[], bool], timeout: float, step: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


@dataclass
class HttpHit:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    def json(self) -> Any:
        return json.loads(self.body)


class HttpReceiver:
    """Records every POST. ``status`` and ``delay_s`` make it fail or hang on purpose; a hit
    is recorded only when it is answered with 2xx (what a real service would have accepted)."""

    def __init__(self, port: int = 0) -> None:
        self.hits: list[HttpHit] = []
        self.attempts = 0
        self.status = 200
        self.delay_s = 0.0
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._lock:
                    receiver.attempts += 1
                    status, delay = receiver.status, receiver.delay_s
                if delay:
                    time.sleep(delay)
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:
                    return
                if 200 <= status < 300:
                    with receiver._lock:
                        receiver.hits.append(
                            HttpHit(self.path, dict(self.headers.items()), body, time.time())
                        )

            def log_message(self, *args: Any) -> None:
                return None

        ThreadingHTTPServer.allow_reuse_address = True
        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def received(self, path: str | None = None) -> list[HttpHit]:
        with self._lock:
            return [h for h in self.hits if path is None or h.path.startswith(path)]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class SmtpReceiver:
    """aiosmtpd on a free port; ``refuse = True`` answers every message with 554."""

    def __init__(self, port: int = 0) -> None:
        from aiosmtpd.controller import Controller

        self.messages: list[EmailMessage] = []
        self.refused = 0
        self.refuse = False
        receiver = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                if receiver.refuse:
                    receiver.refused += 1
                    return "554 5.7.1 refused by test"
                msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
                receiver.messages.append(msg)  # type: ignore[arg-type]
                return "250 OK"

        self.port = port or free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def url(self, to: str = "manager@example.com") -> str:
        return f"mailto://127.0.0.1:{self.port}?from=gemwatch@example.com&to={to}&mode=insecure"

    def close(self) -> None:
        self.controller.stop()


class Broker:
    """A private Mosquitto on a free loopback port; stop() and start() to simulate an outage."""

    def __init__(self, tmp: Path, port: int = 0, *, running: bool = True) -> None:
        exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not Path(exe).exists():
            pytest.skip("mosquitto is not installed (apt-get install mosquitto)")
        self.exe = exe
        self.port = port or free_port()
        self.conf = tmp / f"mosquitto-{self.port}.conf"
        self.conf.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
        self.proc: subprocess.Popen[bytes] | None = None
        if running:
            self.start()

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [self.exe, "-c", str(self.conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        if not wait_until(self._listening, 10.0, 0.05):
            raise RuntimeError("mosquitto did not start")

    def _listening(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return True
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None

    def close(self) -> None:
        self.stop()


@dataclass
class MqttMessage:
    topic: str
    payload: bytes
    retain: bool

    def json(self) -> Any:
        return json.loads(self.payload)


@dataclass
class MqttRecorder:
    """Subscribes to ``#`` and keeps every message (retained ones included)."""

    port: int
    messages: list[MqttMessage] = field(default_factory=list)

    def __post_init__(self) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self._lock = threading.Lock()
        self._ready = threading.Event()
        self.client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)

        def on_connect(client: Any, *_: Any) -> None:
            client.subscribe("#", qos=1)

        def on_subscribe(*_: Any) -> None:
            self._ready.set()

        def on_message(_c: Any, _u: Any, msg: Any) -> None:
            with self._lock:
                self.messages.append(MqttMessage(msg.topic, bytes(msg.payload), bool(msg.retain)))

        self.client.on_connect = on_connect
        self.client.on_subscribe = on_subscribe
        self.client.on_message = on_message
        self.client.connect("127.0.0.1", self.port)
        self.client.loop_start()
        assert self._ready.wait(10), "the MQTT recorder could not subscribe"

    def on(self, topic: str) -> list[MqttMessage]:
        with self._lock:
            return [m for m in self.messages if m.topic == topic]

    def matching(self, prefix: str) -> list[MqttMessage]:
        with self._lock:
            return [m for m in self.messages if m.topic.startswith(prefix)]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_receivers_receive(tmp_path: Path) -> None:
    import smtplib

    import paho.mqtt.publish as publish
    import requests

    http = HttpReceiver()
    smtp = SmtpReceiver()
    broker = Broker(tmp_path)
    rec = MqttRecorder(broker.port)
    try:
        assert requests.post(http.url("/x"), data=b"{}", timeout=5).status_code == 200
        http.status = 500
        assert requests.post(http.url("/x"), data=b"{}", timeout=5).status_code == 500
        assert len(http.received("/x")) == 1 and http.attempts == 2
        with smtplib.SMTP("127.0.0.1", smtp.port, timeout=5) as s:
            s.sendmail("a@example.com", ["b@example.com"], b"Subject: hi\r\n\r\nbody")
        assert smtp.messages[0]["Subject"] == "hi"
        publish.single("t/1", "x", hostname="127.0.0.1", port=broker.port, qos=1)
        assert wait_until(lambda: len(rec.on("t/1")) == 1, 5)
    finally:
        rec.close()
        broker.close()
        smtp.close()
        http.close()


# --- a store, a config and evidence files for the alert tests --------------------------------

T_SECRET = b"test-link-secret-0123456789abcdef"


def alert_config(tmp: Path, alerts: dict[str, Any], **top: Any) -> Any:
    """A GemwatchConfig with one camera (a counter zone) and the given ``alerts`` section."""
    from gemwatch.config.models import GemwatchConfig

    data: dict[str, Any] = {
        "store": {"name": "Test Jewellers", "timezone": "Europe/London"},
        "storage": {"data_dir": str(tmp / "data")},
        "recorder": {"post_roll_s": 2.0},
        "cameras": [
            {
                "id": "counter-cam",
                "name": "Counter camera",
                "url": "/dev/null.mp4",
                "zones": [
                    {
                        "id": "counter-2",
                        "name": "Counter 2",
                        "kind": "counter",
                        "polygon": [[0, 0], [1, 0], [1, 1]],
                        "loitering": {"dwell_s": 2},
                    }
                ],
            }
        ],
        "alerts": {"public_url": "http://127.0.0.1:7480", "retry_base_s": 0.2, "retry_max_s": 1.0, **alerts},
        **top,
    }
    return GemwatchConfig.model_validate(data)


def evidence(tmp: Path) -> tuple[str, str]:
    """A real JPEG snapshot and a real (H.264 MP4) clip."""
    import numpy as np

    from fixtures.clips import write_clip
    from gemwatch.events.snapshot import write_jpeg

    image = np.zeros((120, 160, 3), np.uint8)
    image[30:90, 40:120] = (0, 0, 255)
    snap = write_jpeg(image, tmp / "snap.jpg")
    clip = write_clip(tmp / "clip.mp4", seconds=1.0, fps=10, width=160, height=120)
    return str(snap), str(clip.path)


def store_with_event(tmp: Path, cfg: Any, *, url: str | None = None, **kw: Any) -> tuple[Any, Any]:
    """An EventStore (SQLite in ``tmp`` unless ``url``) and a loitering Event (triggered now)."""
    from gemwatch.events.store import EventStore
    from gemwatch.types import Event, Severity

    store = EventStore(url or f"sqlite:///{tmp / 'db' / 'gemwatch.db'}", cfg.store.tz)
    now = time.time()
    base: dict[str, Any] = dict(
        type="loitering",
        severity=Severity.MEDIUM,
        camera_id="counter-cam",
        zone_id="counter-2",
        start_ts=now - 240,
        end_ts=now,
        people=(3,),
        description="Person 3 has been at Counter 2 for 4 min",
    )
    base.update(kw)
    ev = Event(**base)
    store.write(ev)
    return store, ev
