"""Which routes an event takes, who is behind each, and the small pure rules of delivery:
idempotency keys, retry backoff, cooldown, and silencing push URLs. No I/O here."""

from __future__ import annotations

import fnmatch
import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit
from zoneinfo import ZoneInfo

from gemwatch.config.models import (
    AlertRecipient,
    AlertRoute,
    Alerts,
    AlertSchedule,
    TimeWindow,
    WebhookTarget,
)
from gemwatch.rules.schedule import in_windows
from gemwatch.types import Event, Severity

SEVERITY_ORDER: dict[str, int] = {str(s): i for i, s in enumerate(Severity)}


class Stage:
    """What a delivery carries. ``alert`` is the first message (snapshot), ``clip`` follows
    when the clip is written, ``end`` and ``ack`` update machines (MQTT, webhooks) only,
    ``action`` tells a recipient that someone used a one-tap action."""

    ALERT = "alert"
    CLIP = "clip"
    END = "end"
    ACK = "ack"
    ACTION = "action"


# Stages for people versus machines: a phone gets the alert and its clip; a building's
# automation also wants to know when the incident is over or acknowledged.
MACHINE_CHANNELS = frozenset({"mqtt", "webhook"})


@dataclass(frozen=True, slots=True)
class Target:
    """One place a recipient is reached: ``channel`` is apprise, webhook or mqtt; ``key`` names
    the configured URL by hash, so the database never holds a URL (they carry tokens)."""

    recipient_id: str
    channel: str
    key: str


def url_key(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()[:16]


def targets_of(recipient: AlertRecipient) -> list[Target]:
    out = [Target(recipient.id, "apprise", url_key(u)) for u in recipient.apprise]
    out += [Target(recipient.id, "webhook", url_key(w.url)) for w in recipient.webhooks]
    if recipient.mqtt:
        out.append(Target(recipient.id, "mqtt", "broker"))
    return out


def resolve(alerts: Alerts, target: Target) -> str | WebhookTarget | None:
    """The configured URL/webhook a target names, or None when the config no longer has it."""
    recipient = alerts.recipient(target.recipient_id)
    if recipient is None:
        return None
    if target.channel == "apprise":
        return next((u for u in recipient.apprise if url_key(u) == target.key), None)
    if target.channel == "webhook":
        return next((w for w in recipient.webhooks if url_key(w.url) == target.key), None)
    if target.channel == "mqtt":
        return "mqtt" if recipient.mqtt and alerts.mqtt is not None else None
    return None


def trigger_ts(ev: Event) -> float:
    """The timestamp of the frame that raised the event (rules put it in ``end_ts``)."""
    return ev.end_ts if ev.end_ts is not None else ev.start_ts


def route_matches(
    route: AlertRoute, ev: Event, ts: float, tz: ZoneInfo, store_hours: Sequence[TimeWindow]
) -> bool:
    if not any(fnmatch.fnmatchcase(ev.type, pattern) for pattern in route.event_types):
        return False
    if SEVERITY_ORDER.get(str(ev.severity), 0) < SEVERITY_ORDER[str(route.min_severity)]:
        return False
    if route.cameras and ev.camera_id not in route.cameras:
        return False
    if route.zones and ev.zone_id not in route.zones:
        return False
    if route.schedule is AlertSchedule.ALWAYS:
        return True
    is_open = bool(store_hours) and in_windows(ts, store_hours, tz)
    return is_open if route.schedule is AlertSchedule.OPEN else not is_open


def routes_for(alerts: Alerts, ev: Event, tz: ZoneInfo) -> list[AlertRoute]:
    ts = trigger_ts(ev)
    return [r for r in alerts.routes if route_matches(r, ev, ts, tz, alerts.store_hours)]


def idempotency_key(event_id: str, stage: str, level: int, target: Target, extra: str = "") -> str:
    """Deterministic: the same delivery always gets the same key, whoever enqueues it and
    however often (replays after a crash), so the outbox's unique index drops repeats."""
    raw = "|".join((event_id, stage, str(level), target.recipient_id, target.channel, target.key, extra))
    return hashlib.sha256(raw.encode()).hexdigest()[:40]


def backoff_s(attempts: int, base_s: float, max_s: float, rng: random.Random | None = None) -> float:
    """Exponential backoff with ±20 % jitter (so a fleet of nodes does not retry in step)."""
    delay = min(max_s, base_s * 2.0 ** max(0, attempts - 1))
    jitter = (rng or random).uniform(0.8, 1.2)
    return min(max_s, delay * jitter)


def in_cooldown(last_alert_ts: float | None, ts: float, cooldown_s: float) -> bool:
    return last_alert_ts is not None and cooldown_s > 0 and 0 <= ts - last_alert_ts < cooldown_s


# Apprise URL parameters that keep a push quiet, for services that make a sound by default.
# Only added where the URL does not say otherwise: a recipient's own choice wins.
_SILENT_PARAMS: dict[str, dict[str, str]] = {
    "tgram": {"silent": "yes"},
    "pover": {"priority": "low"},
    "ntfy": {"priority": "low"},
    "ntfys": {"priority": "low"},
    "gotify": {"priority": "low"},
    "gotifys": {"priority": "low"},
}


def silence(url: str) -> str:
    """``url`` with the service's 'no sound' parameter added (unless the URL already sets it)."""
    parts = urlsplit(url)
    wanted = _SILENT_PARAMS.get(parts.scheme.lower())
    if not wanted:
        return url
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    added = {k: v for k, v in wanted.items() if k not in query}
    if not added:
        return url
    return urlunsplit(parts._replace(query=urlencode({**query, **added})))
