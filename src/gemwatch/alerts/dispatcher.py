"""The alert dispatcher: one more sink on the event bus (``FanoutSink``), in the node's main
process (``gemwatch run``) or in-process (``gemwatch analyze``).

``event``/``clip_ready`` only hand the report to the routing thread (no SQL, no network on
the caller's thread: a disk busy with fsyncs or a locked database delays alerts, never
frames). The routing thread commits the outbox rows and wakes the sender; every send
happens on the sender's worker threads, so a channel that is down or slow holds up nothing.
``start`` first recovers what a crash left behind: pending rows are simply still pending,
and events stored but never routed (a crash before the routing thread got to them) are
routed now.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import queue
import threading
import time
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine

from gemwatch.alerts.channels.apprise_channel import AppriseChannel
from gemwatch.alerts.channels.base import Channel
from gemwatch.alerts.channels.webhook import WebhookChannel
from gemwatch.alerts.links import resolve_secret
from gemwatch.alerts.outbox import PER_TARGET, DeliveryState, Outbox
from gemwatch.alerts.routing import targets_of
from gemwatch.alerts.sender import Sender
from gemwatch.alerts.service import AlertService
from gemwatch.config.models import GemwatchConfig
from gemwatch.types import Event

if TYPE_CHECKING:
    from gemwatch.alerts.channels.mqtt import MqttChannel, MqttLink

log = logging.getLogger(__name__)

RECOVER_EVERY_S = 30.0


class AlertDispatcher:
    def __init__(
        self,
        cfg: GemwatchConfig,
        engine: Engine,
        *,
        secret: bytes | None = None,
        poll_s: float = 1.0,
    ) -> None:
        self.cfg = cfg
        self.alerts = cfg.alerts
        self.engine = engine
        self.secret = secret if secret is not None else resolve_secret(self.alerts, cfg.storage.data_dir)
        self.outbox = Outbox(engine)
        self.mqtt: MqttLink | None = None
        self.mqtt_channel: MqttChannel | None = None
        self.apprise = AppriseChannel(self.alerts, cfg.store.tz)
        channels: dict[str, Channel] = {
            "apprise": self.apprise,
            "webhook": WebhookChannel(self.alerts, self.secret),
        }
        if self.alerts.mqtt is not None:
            from gemwatch.alerts.channels.mqtt import MqttChannel, MqttLink

            self.mqtt = MqttLink(
                self.alerts.mqtt,
                client_id=f"gemwatch-{self.alerts.mqtt.node_id}-alerts-{os.getpid()}",
                presence=True,
                on_connected=self._mqtt_connected,
            )
            self.mqtt_channel = MqttChannel(
                self.mqtt, timeout_s=self.alerts.send_timeout_s, known_sensors=self._known_sensors
            )
            channels["mqtt"] = self.mqtt_channel
        self.channels = channels
        n_targets = sum(len(targets_of(r)) for r in self.alerts.recipients)
        self.sender = Sender(
            self.outbox,
            channels,
            self.alerts,
            workers=max(4, min(32, PER_TARGET * n_targets + 1)),
            poll_s=poll_s,
            periodic=self._periodic,
        )
        self.service = AlertService(cfg, engine, self.secret, mqtt=self.mqtt, wake=self.sender.wake)
        self._next_recover = 0.0
        self._started = False
        self._lock = threading.Lock()
        self._reports: queue.Queue[tuple[str, Any] | None] = queue.Queue()
        self._router: threading.Thread | None = None

    @property
    def active(self) -> bool:
        """False when no route is configured: the dispatcher then does nothing at all."""
        return bool(self.alerts.routes)

    def _known_sensors(self, camera_id: str) -> tuple[str, list[str]]:
        from gemwatch.alerts.channels.homeassistant import camera_sensors

        try:
            name = self.cfg.camera(camera_id).label
        except KeyError:
            name = camera_id
        return name, camera_sensors(self.cfg, camera_id)

    def _mqtt_connected(self) -> None:
        if self.mqtt_channel is not None:
            self.mqtt_channel.reannounce([c.id for c in self.cfg.cameras if c.enabled])
        self.sender.kick("mqtt")

    def _periodic(self, now: float) -> None:
        self.service.escalate(now)
        if now >= self._next_recover:
            self._next_recover = now + RECOVER_EVERY_S
            self.service.recover(now)

    def start(self) -> AlertDispatcher:
        """Recover, connect MQTT and start sending. Idempotent."""
        with self._lock:
            if self._started or not self.active:
                return self
            self._started = True
        if not self.alerts.public_url:
            log.warning("alerts.public_url is not set: alerts carry no acknowledge, clip or action links")
        self.service.restore_open()
        self.service.recover(time.time())
        self._next_recover = time.time() + RECOVER_EVERY_S
        if self.mqtt is not None:
            self.mqtt.start()
        self.sender.start()
        self._router = threading.Thread(target=self._route_loop, name="alert-route", daemon=True)
        self._router.start()
        threading.Thread(target=self._warm, name="alert-warm", daemon=True).start()
        return self

    def _warm(self) -> None:
        try:
            self.apprise.warm()
        except Exception:
            log.warning("could not pre-load Apprise plugins", exc_info=True)

    # sink -----------------------------------------------------------------------------------
    def event(self, ev: Event) -> None:
        if not self.active:
            return
        if self._router is None:  # not started: route on the caller's thread
            self.service.on_event(ev)
            return
        self._reports.put(("event", dataclasses.replace(ev)))  # a copy: the rule may reuse it

    def clip_ready(self, event_id: str, path: str) -> None:
        if not self.active:
            return
        if self._router is None:
            self.service.on_clip(event_id, path)
            return
        self._reports.put(("clip", (event_id, path)))

    def _route_loop(self) -> None:
        while True:
            item = self._reports.get()
            try:
                if item is None:
                    return
                kind, payload = item
                if kind == "event":
                    self.service.on_event(payload)
                else:
                    self.service.on_clip(*payload)
            except Exception:  # the event is in the store: recovery routes it later
                log.exception("routing an alert failed; recovery will retry it")
            finally:
                self._reports.task_done()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every report handed over so far is routed (its outbox rows committed)."""
        deadline = time.monotonic() + timeout
        while self._reports.unfinished_tasks:
            if time.monotonic() > deadline or self._router is None:
                return False
            time.sleep(0.005)
        return True

    # console ----------------------------------------------------------------------------
    def deliveries(self, event_id: str) -> list[DeliveryState]:
        return self.outbox.states(event_id)

    def close(self, drain_s: float = 0.0) -> bool:
        """Stop sending, after waiting up to ``drain_s`` for the outbox to empty. Returns True
        when nothing was left pending (what is left is sent after the next start)."""
        drained = True
        if self._router is not None:
            drained = self.flush(max(drain_s, 5.0))
            self._reports.put(None)
            self._router.join(5.0)
            self._router = None
        if self._started and drain_s > 0:
            drained = self.sender.drain(drain_s) and drained
        self.sender.stop()
        for channel in self.channels.values():
            channel.close()
        if self.mqtt is not None:
            self.mqtt.close()
        self._started = False
        return drained


def from_config(cfg: GemwatchConfig, engine: Engine) -> AlertDispatcher | None:
    """A started dispatcher when the config routes alerts anywhere, else None."""
    if not cfg.alerts.routes:
        return None
    return AlertDispatcher(cfg, engine).start()
