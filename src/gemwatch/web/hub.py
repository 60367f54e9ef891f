"""The web console's ear on the event bus: camera states, and live updates for SSE clients.

``Hub`` is a bus sink (``event``, ``status``, ``clip_ready``, ``tracks``) in the node's main
process. It remembers each camera's latest state and hands a small JSON message to every
connected Server-Sent-Events client. It never blocks the bus: each client has a bounded
queue, and a client too slow to keep up loses messages (it refetches the page on reconnect).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from dataclasses import dataclass
from typing import Any

from gemwatch.sources.video import CameraStatus
from gemwatch.types import Event

QUEUE_SIZE = 256


@dataclass(frozen=True, slots=True)
class Message:
    kind: str
    data: dict[str, Any]

    def sse(self) -> str:
        return f"event: {self.kind}\ndata: {json.dumps(self.data, separators=(',', ':'))}\n\n"


class Hub:
    def __init__(self) -> None:
        self.statuses: dict[str, CameraStatus] = {}
        self._subscribers: set[tuple[asyncio.AbstractEventLoop, asyncio.Queue[Message]]] = set()
        self._lock = threading.Lock()
        self.published = 0

    # bus sink ---------------------------------------------------------------------------------
    def event(self, ev: Event) -> None:
        self.publish(
            "event",
            {
                "id": ev.id,
                "type": ev.type,
                "severity": str(ev.severity),
                "camera": ev.camera_id,
                "zone": ev.zone_id,
                "start_ts": ev.start_ts,
                "end_ts": ev.end_ts,
                "ended": ev.ended,
                "description": ev.description,
            },
        )

    def status(self, status: CameraStatus) -> None:
        self.statuses[status.camera_id] = status
        self.publish(
            "status",
            {
                "camera": status.camera_id,
                "state": str(status.state),
                "reason": status.reason,
                "since": status.since,
            },
        )

    def clip_ready(self, event_id: str, path: str) -> None:
        self.publish("clip", {"id": event_id})

    def tracks(self, camera_id: str, tracks: list[Any]) -> None:
        return None

    # fan-out ----------------------------------------------------------------------------------
    def publish(self, kind: str, data: dict[str, Any]) -> None:
        """Thread-safe: called from the bus thread and from request handlers."""
        msg = Message(kind, {**data, "at": time.time()})
        with self._lock:
            subscribers = list(self._subscribers)
        self.published += 1
        for loop, q in subscribers:
            try:
                loop.call_soon_threadsafe(_offer, q, msg)
            except RuntimeError:  # the client's loop is closed
                self.unsubscribe(loop, q)

    def subscribe(self) -> tuple[asyncio.AbstractEventLoop, asyncio.Queue[Message]]:
        loop = asyncio.get_running_loop()
        q: asyncio.Queue[Message] = asyncio.Queue(QUEUE_SIZE)
        with self._lock:
            self._subscribers.add((loop, q))
        return loop, q

    def unsubscribe(self, loop: asyncio.AbstractEventLoop, q: asyncio.Queue[Message]) -> None:
        with self._lock:
            self._subscribers.discard((loop, q))

    @property
    def clients(self) -> int:
        with self._lock:
            return len(self._subscribers)


def _offer(q: asyncio.Queue[Message], msg: Message) -> None:
    with contextlib.suppress(asyncio.QueueFull):  # a client too slow to keep up loses messages
        q.put_nowait(msg)
