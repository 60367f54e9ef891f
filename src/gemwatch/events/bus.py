"""The event bus: camera pipelines report here; the node's main process writes to the store.

``QueueSink`` crosses the process boundary (one process per camera); ``StoreSink`` is the
single writer that turns reports into committed rows. ``FanoutSink`` lets the CLI, the web
console and (later) alerts listen to the same reports without knowing about each other.
"""

from __future__ import annotations

import logging
import queue as queue_mod
from collections.abc import Callable
from typing import Any

from gemwatch.events.store import EventStore, TrackSummary
from gemwatch.sources.video import CameraStatus
from gemwatch.types import Event

log = logging.getLogger(__name__)


class StoreSink:
    """Writes every report to the SQL store; an event is committed before ``event`` returns."""

    def __init__(self, store: EventStore, run_id: str) -> None:
        self.store = store
        self.run_id = run_id
        self.statuses: dict[str, CameraStatus] = {}

    def event(self, ev: Event) -> None:
        self.store.write(ev)

    def clip_ready(self, event_id: str, path: str) -> None:
        self.store.set_evidence(event_id, clip_path=path)

    def status(self, status: CameraStatus) -> None:
        self.statuses[status.camera_id] = status

    def tracks(self, camera_id: str, tracks: list[TrackSummary]) -> None:
        self.store.save_tracks(self.run_id, tracks)


def _reason() -> str:
    import sys

    exc = sys.exc_info()[1]
    orig = getattr(exc, "orig", None)  # SQLAlchemy wraps the driver's error
    return f"{type(orig or exc).__name__}: {orig or exc}".splitlines()[0]


class EventLog:
    """One log line per event when first reported and when it ends (``gemwatch run``): the
    node's log then says what happened, not only that cameras went online and ended."""

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self.log = logger or log
        self._seen: set[str] = set()

    def event(self, ev: Event) -> None:
        if ev.id not in self._seen:
            self._seen.add(ev.id)
            self.log.info(
                "event %s (%s) on camera %s: %s", ev.type, ev.severity.value, ev.camera_id, ev.description
            )
        if ev.ended:
            self._seen.discard(ev.id)
            if ev.end_ts is not None and ev.end_ts - ev.start_ts >= 1.0:
                self.log.info(
                    "event %s on camera %s ended after %.1f s", ev.type, ev.camera_id, ev.end_ts - ev.start_ts
                )


class FanoutSink:
    """Calls several sinks in order; a failing listener is logged and never stops the others."""

    def __init__(self, *sinks: Any) -> None:
        self.sinks = list(sinks)

    def _each(self, method: str, *args: Any) -> None:
        for sink in self.sinks:
            fn: Callable[..., None] | None = getattr(sink, method, None)
            if fn is None:
                continue
            try:
                fn(*args)
            except Exception:
                # one line for the operator (disk full, database down); the traceback at debug level
                log.error("event listener %s.%s failed: %s", type(sink).__name__, method, _reason())
                log.debug("traceback", exc_info=True)

    def event(self, ev: Event) -> None:
        self._each("event", ev)

    def clip_ready(self, event_id: str, path: str) -> None:
        self._each("clip_ready", event_id, path)

    def status(self, status: CameraStatus) -> None:
        self._each("status", status)

    def tracks(self, camera_id: str, tracks: list[TrackSummary]) -> None:
        self._each("tracks", camera_id, tracks)


class QueueSink:
    """Camera-process side of the bus: pickles reports onto a multiprocessing queue."""

    def __init__(self, q: Any) -> None:
        self.q = q

    def event(self, ev: Event) -> None:
        self.q.put(("event", ev))

    def clip_ready(self, event_id: str, path: str) -> None:
        self.q.put(("clip_ready", event_id, path))

    def status(self, status: CameraStatus) -> None:
        self.q.put(("status", status))

    def tracks(self, camera_id: str, tracks: list[TrackSummary]) -> None:
        self.q.put(("tracks", camera_id, tracks))


def drain(q: Any, sink: Any, timeout: float = 0.2) -> int:
    """Deliver queued reports to ``sink`` until the queue is empty; returns how many."""
    n = 0
    while True:
        try:
            item = q.get(timeout=timeout if n == 0 else 0.0)
        except queue_mod.Empty:
            return n
        kind, *args = item
        getattr(sink, kind)(*args)
        n += 1
