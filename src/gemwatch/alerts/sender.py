"""The sender: a scheduler thread that hands due outbox rows to a pool of worker threads.

A few deliveries per target are in flight at most (``outbox.PER_TARGET``), so a receiver
that hangs until its timeout occupies a few workers and delays nobody else; a target that fails is retried after an
exponential backoff, across restarts (the state is in the outbox). The loop also runs a
periodic hook (escalations, recovery), so everything time-driven lives on one thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor

from gemwatch.alerts import metrics
from gemwatch.alerts.channels.base import Channel, DeliveryError
from gemwatch.alerts.outbox import Delivery, Outbox
from gemwatch.alerts.routing import backoff_s
from gemwatch.config.models import Alerts

log = logging.getLogger(__name__)


class Sender:
    def __init__(
        self,
        outbox: Outbox,
        channels: Mapping[str, Channel],
        alerts: Alerts,
        *,
        workers: int = 8,
        poll_s: float = 1.0,
        periodic: Callable[[float], None] | None = None,
    ) -> None:
        self.outbox = outbox
        self.channels = dict(channels)
        self.alerts = alerts
        self.poll_s = poll_s
        self.periodic = periodic
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="alert-send")
        self._busy: set[tuple[str, str, str, str]] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._kicks: set[str] = set()
        self._thread: threading.Thread | None = None
        self.idle = threading.Event()

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="alert-sender", daemon=True)
            self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def kick(self, channel: str) -> None:
        """A channel's connection is back: retry its waiting rows now, not at their backoff time."""
        with self._lock:
            self._kicks.add(channel)
        self._wake.set()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self._pool.shutdown(wait=True, cancel_futures=True)

    def drain(self, timeout: float) -> bool:
        """Wait until nothing is pending or in flight (True), or ``timeout`` passes (False)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                busy = bool(self._busy)
            if not busy and self.outbox.pending_count() == 0:
                return True
            self._wake.set()
            time.sleep(0.05)
        return False

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            now = time.time()
            try:
                with self._lock:
                    kicks, self._kicks = self._kicks, set()
                for channel in kicks:
                    self.outbox.retry_now(channel, now)
                if self.periodic is not None:
                    self.periodic(now)
                with self._lock:
                    busy = set(self._busy)
                due = self.outbox.due(now, busy)
                for d in due:
                    rkey = (d.target.recipient_id, d.target.channel, d.target.key, d.event_id)
                    with self._lock:
                        self._busy.add(rkey)
                    self._pool.submit(self._send, d, rkey)
                next_ts = self.outbox.next_due_ts()
                metrics.PENDING.set(self.outbox.pending_count())
            except Exception:
                log.exception("alert sender loop failed; retrying")
                next_ts = None
            wait = self.poll_s if next_ts is None else min(self.poll_s, max(0.0, next_ts - time.time()))
            self._wake.wait(max(0.01, wait))

    def _send(self, d: Delivery, rkey: tuple[str, str, str, str]) -> None:
        attempts = d.attempts + 1
        try:
            channel = self.channels.get(d.target.channel)
            if channel is None:
                raise DeliveryError(f"channel {d.target.channel} is not configured", permanent=True)
            channel.send(d)
            sent = time.time()
            latency = sent - d.frame_ts
            self.outbox.mark_sent(d.id, sent, latency, attempts)
            metrics.SENT.labels(d.target.channel, d.stage).inc()
            metrics.LATENCY.labels(d.target.channel, d.stage).observe(max(0.0, latency))
        except Exception as exc:
            permanent = isinstance(exc, DeliveryError) and exc.permanent
            error = str(exc) if isinstance(exc, DeliveryError) else f"{type(exc).__name__}: {exc}"
            if not isinstance(exc, DeliveryError):
                log.exception("alert channel %s crashed", d.target.channel)
            metrics.FAILURES.labels(d.target.channel, str(permanent).lower()).inc()
            now = time.time()
            try:
                if permanent or now - d.created_ts > self.alerts.give_up_after_s:
                    log.error(
                        "alert %s to %s/%s failed for good: %s",
                        d.key,
                        d.target.recipient_id,
                        d.target.channel,
                        error,
                    )
                    self.outbox.mark_failed(d.id, attempts, error)
                else:
                    delay = backoff_s(attempts, self.alerts.retry_base_s, self.alerts.retry_max_s)
                    log.warning(
                        "alert to %s/%s failed (attempt %d, retry in %.1f s): %s",
                        d.target.recipient_id,
                        d.target.channel,
                        attempts,
                        delay,
                        error,
                    )
                    self.outbox.mark_retry(d.id, now + delay, attempts, error)
            except Exception:
                log.exception("could not record the failed alert %s; it stays pending", d.key)
        finally:
            with self._lock:
                self._busy.discard(rkey)
            self._wake.set()
