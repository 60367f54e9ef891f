"""What an alert says: the event's facts, per-recipient signed links, and the text a person
reads or the JSON a machine parses. Pure: the outbox stores what this returns, so a retry
after a restart sends the very same message."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from gemwatch.alerts import links
from gemwatch.alerts.links import Purpose
from gemwatch.alerts.routing import Stage
from gemwatch.config.models import GemwatchConfig
from gemwatch.types import Event

PAYLOAD_VERSION = 1

_TYPE_LABELS = {"loitering": "Loitering", "smoke": "Smoke", "fire": "Fire"}


def type_label(event_type: str) -> str:
    if event_type.startswith("presence."):
        return event_type.removeprefix("presence.").replace("-", " ").replace("_", " ").capitalize()
    return _TYPE_LABELS.get(event_type, event_type.replace("_", " ").replace(".", " ").capitalize())


def facts(ev: Event, cfg: GemwatchConfig) -> dict[str, Any]:
    """The event as every channel describes it (names resolved from the config)."""
    camera_name = ev.camera_id
    zone_name = ev.zone_id
    for cam in cfg.cameras:
        if cam.id == ev.camera_id:
            camera_name = cam.label
            zone_name = next((z.label for z in cam.zones if z.id == ev.zone_id), ev.zone_id)
    return {
        "id": ev.id,
        "type": ev.type,
        "type_label": type_label(ev.type),
        "severity": str(ev.severity),
        "camera_id": ev.camera_id,
        "camera": camera_name,
        "zone_id": ev.zone_id,
        "zone": zone_name,
        "description": ev.description,
        "start_ts": ev.start_ts,
        "end_ts": ev.end_ts,
        "ended": ev.ended,
        "people": list(ev.people),
        "store": cfg.store.name,
    }


@dataclass(frozen=True, slots=True)
class LinkMaker:
    """Builds a recipient's links; without a public URL there are no links (the console is
    then the only place to acknowledge)."""

    secret: bytes
    public_url: str | None
    ttl_s: float
    action_ttl_s: float

    def _url(self, path: str) -> str | None:
        return None if not self.public_url else f"{self.public_url.rstrip('/')}{path}"

    def signed(
        self, purpose: Purpose, event_id: str, recipient: str, *, now: float, action: str | None = None
    ) -> str | None:
        if not self.public_url:
            return None
        ttl = self.action_ttl_s if purpose is Purpose.ACT else self.ttl_s
        token = links.make(self.secret, purpose, event_id, recipient, now=now, ttl_s=ttl, action=action)
        return self._url(f"/a/{purpose.value}/{token}")

    def live(self, camera_id: str) -> str | None:
        """The console's live view of the camera (behind its log-in)."""
        return self._url(f"/live/{camera_id}")

    def console(self, event_id: str) -> str | None:
        """The event's page in the console (behind its log-in): review, clip, delivery state."""
        return self._url(f"/events/{event_id}")


def recipient_links(
    maker: LinkMaker,
    ev_facts: dict[str, Any],
    recipient: str,
    actions: list[tuple[str, str]],
    *,
    has_clip: bool,
    now: float | None = None,
) -> dict[str, Any]:
    """Links for one recipient: acknowledge, live view, snapshot, clip, and the one-tap actions
    (``actions``: (id, label) pairs this recipient is allowed to use)."""
    t = time.time() if now is None else now
    eid = ev_facts["id"]
    out: dict[str, Any] = {
        "ack": maker.signed(Purpose.ACK, eid, recipient, now=t),
        "live": maker.live(ev_facts["camera_id"]),
        "event": maker.console(eid),
        "snapshot": maker.signed(Purpose.SNAPSHOT, eid, recipient, now=t),
        "clip": maker.signed(Purpose.CLIP, eid, recipient, now=t) if has_clip else None,
        "actions": [],
    }
    for action_id, label in actions:
        url = maker.signed(Purpose.ACT, eid, recipient, now=t, action=action_id)
        if url:
            out["actions"].append({"id": action_id, "label": label, "url": url})
    return out


def local_time(ts: float, tz: ZoneInfo) -> str:
    return datetime.fromtimestamp(ts, tz).strftime("%H:%M:%S")


def render_text(stage: str, payload: dict[str, Any], tz: ZoneInfo) -> tuple[str, str]:
    """Title and plain-text body for a person (push, e-mail, chat)."""
    ev = payload["event"]
    lk = payload.get("links") or {}
    where = ev["camera"] if not ev.get("zone") else f"{ev['camera']} · {ev['zone']}"
    prefix = {"alert": "", "clip": "Clip: ", "action": "Action: "}.get(stage, f"{stage.capitalize()}: ")
    title = f"{prefix}{ev['type_label']} — {ev['store']}"
    if payload.get("level"):
        title = f"[escalated] {title}"
    lines: list[str] = []
    if stage == Stage.ACTION:
        lines.append(f"{payload.get('by', 'Someone')} asked: {payload.get('action_label', '')}")
    lines.append(ev["description"])
    lines.append(f"{where} · {local_time(payload['frame_ts'], tz)}")
    if stage == Stage.CLIP and lk.get("clip"):
        lines.append(f"Clip: {lk['clip']}")
    if lk.get("ack"):
        lines.append(f"Acknowledge: {lk['ack']}")
    if lk.get("live"):
        lines.append(f"Live view: {lk['live']}")
    for action in lk.get("actions") or []:
        lines.append(f"{action['label']}: {action['url']}")
    return title, "\n".join(lines)


def machine_message(key: str, stage: str, payload: dict[str, Any]) -> dict[str, Any]:
    """The JSON a machine receives (MQTT, webhooks): versioned, see docs/mqtt.md."""
    return {
        "v": PAYLOAD_VERSION,
        "key": key,
        "stage": stage,
        "level": payload.get("level", 0),
        "silent": payload.get("silent", True),
        "frame_ts": payload["frame_ts"],
        "event": payload["event"],
        "links": payload.get("links") or {},
        **{k: payload[k] for k in ("acked_by", "by", "action_id", "action_label") if k in payload},
    }
