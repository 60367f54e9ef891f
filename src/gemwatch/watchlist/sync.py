"""Live watchlist sharing through HQ over the MQTT broker (contract v1, docs/watchlist.md).

Topics (``<base>`` is ``watchlist.sync.base_topic``, default ``gemwatch``):

* ``<base>/v1/watchlist/up/<store_id>`` — a store publishes its whole signed bundle here on
  every change and on every (re)connect (QoS 1, not retained);
* ``<base>/v1/watchlist/down/<origin>`` — HQ relays each bundle it accepted, unchanged and
  still signed by its origin, retained, so a store that was offline gets the latest one of
  every origin as soon as it connects;
* ``<base>/v1/watchlist/rejected/<node>`` — a node that refuses a bundle says why (JSON
  ``{"origin", "reason", "ts"}``), for monitoring.

HQ checks signatures against its own trust list before relaying; each store checks them
again against *its* trust list, so a compromised broker or HQ cannot inject entries.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from gemwatch.watchlist.bundle import (
    BundleRejected,
    ImportResult,
    export_bundle,
    import_bundle,
    verify_bundle,
)
from gemwatch.watchlist.config import WatchlistSync
from gemwatch.watchlist.gallery import Watchlist
from gemwatch.watchlist.schema import SyncStateRow

log = logging.getLogger(__name__)


def topics(base: str) -> dict[str, str]:
    root = f"{base}/v1/watchlist"
    return {"up": f"{root}/up", "down": f"{root}/down", "rejected": f"{root}/rejected"}


class SyncClient:
    """One node's side of the sync: a store (publish own, import others) or HQ (verify, relay)."""

    def __init__(self, wl: Watchlist, sync: WatchlistSync) -> None:
        self.wl = wl
        self.sync = sync
        self.topics = topics(sync.base_topic)
        self.node = wl.cfg.store_id
        self.last_result: ImportResult | None = None
        self.last_error: str | None = None
        self.received = threading.Event()
        self._connected = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"gemwatch-watchlist-{self.node}-{os.getpid()}",
            protocol=mqtt.MQTTv5,
        )
        if sync.username:
            self.client.username_pw_set(sync.username, os.environ.get(sync.password_env or "", None))
        if sync.tls:
            self.client.tls_set()
        self.client.reconnect_delay_set(min_delay=1, max_delay=5)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message

    # life cycle ------------------------------------------------------------------------------
    def start(self) -> SyncClient:
        if self.sync.role == "store":
            self.wl.on_change = self.publish
        self.client.connect_async(self.sync.host, self.sync.port, keepalive=30)
        self.client.loop_start()
        return self

    def wait_connected(self, timeout: float = 5.0) -> bool:
        return self._connected.wait(timeout)

    def stop(self) -> None:
        if self.wl.on_change == self.publish:
            self.wl.on_change = None
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any = None) -> None:
        if getattr(reason, "is_failure", False):
            log.warning("watchlist sync: broker refused the connection: %s", reason)
            return
        if self.sync.role == "hq":
            client.subscribe(f"{self.topics['up']}/+", qos=1)
        else:
            client.subscribe(f"{self.topics['down']}/+", qos=1)
        self._connected.set()
        if self.sync.role == "store":
            threading.Thread(target=self.publish, name="watchlist-publish", daemon=True).start()

    def _on_disconnect(self, *_: Any) -> None:
        self._connected.clear()

    # publishing ------------------------------------------------------------------------------
    def publish(self) -> None:
        """Send this store's current bundle to HQ (called on every change and reconnect)."""
        try:
            text = export_bundle(self.wl, by="sync")
        except Exception as exc:
            log.warning("watchlist sync: cannot export: %s", exc)
            return
        info = self.client.publish(f"{self.topics['up']}/{self.node}", text, qos=1)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            log.info("watchlist sync: not connected; the bundle goes on the next connect")

    def _reject(self, origin: str, reason: str) -> None:
        self.last_error = reason
        log.warning("watchlist sync: %s", reason)
        payload = json.dumps({"origin": origin, "reason": reason, "ts": time.time()})
        self.client.publish(f"{self.topics['rejected']}/{self.node}", payload, qos=1)

    # receiving -------------------------------------------------------------------------------
    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        origin = msg.topic.rsplit("/", 1)[-1]
        payload = bytes(msg.payload)
        try:
            if self.sync.role == "hq":
                self._relay(origin, payload)
            elif origin != self.node:
                self.last_result = import_bundle(self.wl, payload, by=f"sync:{origin}")
                log.info("watchlist sync: %s", self.last_result.describe())
        except BundleRejected as exc:
            self._reject(origin, str(exc))
        except Exception as exc:  # a bad message must never kill the network thread
            self._reject(
                origin, f"bundle from '{origin}' could not be applied: {exc.__class__.__name__}: {exc}"
            )
        finally:
            self.received.set()

    def _relay(self, origin: str, payload: bytes) -> None:
        """HQ: keep what a trusted store sent (its own copy of the list) and pass it on, unchanged."""
        trusted = {t.id: t.public_key for t in self.wl.cfg.trusted_stores}
        fields = verify_bundle(payload, trusted)
        if fields["origin"] != origin:
            raise BundleRejected(f"bundle for '{fields['origin']}' arrived on '{origin}''s topic")
        result = import_bundle(self.wl, payload, by=f"hq:{origin}")
        self.last_result = result
        if result.stale:
            return
        with self.wl.session() as s:
            state = s.get(SyncStateRow, origin)
            if state is not None:
                state.bundle = payload.decode("utf-8")
        self.client.publish(f"{self.topics['down']}/{origin}", payload, qos=1, retain=True)
        log.info("watchlist HQ: relayed %s", result.describe())


def start_sync(wl: Watchlist) -> SyncClient | None:
    """Start the sync configured in ``watchlist.sync`` (None when there is none or policy is off)."""
    if wl.cfg.sync is None or not wl.cfg.sharing:
        return None
    return SyncClient(wl, wl.cfg.sync).start()
