"""The alert state machine on the database: route an event, fold repeats, queue the clip
stage, escalate, acknowledge, run one-tap actions. Every transition commits together with the
deliveries it causes, so a crash leaves either both or neither.

The node's dispatcher and the web console each hold one (the console's acknowledges and acts;
the node's sender, polling the outbox, delivers what either queued).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from gemwatch.alerts import content
from gemwatch.alerts.channels.homeassistant import ALARM_SEVERITY, sensor_of
from gemwatch.alerts.content import LinkMaker
from gemwatch.alerts.links import LinkClaims, LinkError, Purpose, token_hash, verify
from gemwatch.alerts.outbox import NewDelivery, enqueue
from gemwatch.alerts.routing import (
    MACHINE_CHANNELS,
    Stage,
    idempotency_key,
    in_cooldown,
    routes_for,
    targets_of,
    trigger_ts,
)
from gemwatch.alerts.schema import AlertStateRow, IncidentRow, LinkUseRow, RoutedRow
from gemwatch.config.models import AlertRoute, GemwatchConfig
from gemwatch.events.schema import EventRow
from gemwatch.types import Event, Severity
from gemwatch.web.audit import record

if TYPE_CHECKING:
    from gemwatch.alerts.channels.mqtt import MqttLink

log = logging.getLogger(__name__)

OPEN = "open"
ACKED = "acked"
FOLDED = "folded"

# Events the store has but alerting never saw (a crash between the two commits) are routed
# when found, unless older than this: an alert hours late helps nobody and confuses many.
RECOVER_WINDOW_S = 3600.0
# Recovery leaves alone events younger than this: their own dispatcher call is under way.
RECOVER_MIN_AGE_S = 10.0


class ActionRefused(Exception):
    """A one-tap link that must not run: ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class AckResult:
    event_id: str
    by: str
    already: bool
    description: str


@dataclass(frozen=True, slots=True)
class ActionResult:
    event_id: str
    action_id: str
    label: str
    by: str


def event_from_row(row: EventRow) -> Event:
    return Event(
        type=row.type,
        severity=Severity(row.severity),
        camera_id=row.camera_id,
        start_ts=row.start_ts,
        description=row.description,
        zone_id=row.zone_id,
        end_ts=row.end_ts,
        ended=row.ended,
        people=tuple(row.people or ()),
        scores=dict(row.scores or {}),
        snapshot_path=row.snapshot_path,
        clip_path=row.clip_path,
        id=row.id,
    )


def event_sensors(ev: Event) -> set[str]:
    sensors = {sensor_of(ev.type)}
    if ev.severity in ALARM_SEVERITY:
        sensors.add("alarm")
    return sensors


class AlertService:
    def __init__(
        self,
        cfg: GemwatchConfig,
        engine: Engine,
        secret: bytes,
        *,
        mqtt: MqttLink | None = None,
        wake: Callable[[], None] | None = None,
    ) -> None:
        self.cfg = cfg
        self.alerts = cfg.alerts
        self.tz = cfg.store.tz
        self.engine = engine
        self.secret = secret
        self.mqtt = mqtt
        self.wake = wake or (lambda: None)
        self.sessions = sessionmaker(engine, expire_on_commit=False)
        self.links = LinkMaker(
            secret, self.alerts.public_url, self.alerts.link_ttl_s, self.alerts.action_ttl_s
        )
        # Open events per camera, for the machines' sensor states (ON while any is open).
        self._open: dict[str, tuple[str, frozenset[str]]] = {}
        self._lock = threading.Lock()
        self.recover_min_age_s = RECOVER_MIN_AGE_S

    # deliveries ---------------------------------------------------------------------------
    def _recipient_ids(self, route: AlertRoute, level: int) -> list[str]:
        """Everyone alerted for an incident up to escalation ``level`` (0 = the route's list)."""
        ids = list(route.recipients)
        for step in route.escalation[:level]:
            ids += [r for r in step.recipients if r not in ids]
        return ids

    def _plan(
        self,
        ev: Event,
        route: AlertRoute,
        recipient_ids: Iterable[str],
        stage: str,
        level: int,
        frame_ts: float,
        now: float,
        *,
        sensor_states: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
        key_extra: str = "",
    ) -> list[NewDelivery]:
        ev_facts = content.facts(ev, self.cfg)
        out: list[NewDelivery] = []
        for rid in recipient_ids:
            recipient = self.alerts.recipient(rid)
            if recipient is None:
                continue
            actions = [
                (a.id, a.label)
                for a in (self.alerts.action(aid) for aid in route.actions)
                if a is not None and rid in a.allowed
            ]
            lk = content.recipient_links(
                self.links, ev_facts, rid, actions, has_clip=ev.clip_path is not None, now=now
            )
            for target in targets_of(recipient):
                if stage in (Stage.END, Stage.ACK) and target.channel not in MACHINE_CHANNELS:
                    continue
                payload: dict[str, Any] = {
                    "event": ev_facts,
                    "links": lk,
                    "frame_ts": frame_ts,
                    "level": level,
                    "silent": not route.sound,
                    "snapshot_path": ev.snapshot_path,
                    "clip_path": ev.clip_path,
                    **(extra or {}),
                }
                if target.channel == "mqtt" and sensor_states:
                    payload["sensor_states"] = sensor_states
                key = idempotency_key(ev.id, stage, level, target, key_extra)
                out.append(NewDelivery(key, ev.id, route.id, stage, level, target, payload, frame_ts))
        return out

    def _sensor_states(self, ev: Event, *, opening: bool) -> dict[str, str]:
        with self._lock:
            if opening:
                self._open[ev.id] = (ev.camera_id, frozenset(event_sensors(ev)))
                return {s: "ON" for s in event_sensors(ev)}
            _cam, mine = self._open.pop(ev.id, (ev.camera_id, frozenset(event_sensors(ev))))
            still = {s for cam, sensors in self._open.values() if cam == ev.camera_id for s in sensors}
            return {s: "ON" if s in still else "OFF" for s in mine}

    # events -------------------------------------------------------------------------------
    def on_event(self, ev: Event, now: float | None = None) -> int:
        """Route a new event, or apply an update of one already routed; returns rows queued."""
        t = time.time() if now is None else now
        try:
            with self.sessions.begin() as s:
                routed = s.get(RoutedRow, ev.id)
                n = self._route_new(s, ev, t) if routed is None else self._update(s, ev, routed, t)
        except IntegrityError:  # recovery routed it a moment ago: this is then an update
            with self.sessions.begin() as s:
                routed = s.get(RoutedRow, ev.id)
                n = 0 if routed is None else self._update(s, ev, routed, t)
        if n:
            self.wake()
        return n

    def _route_new(self, s: Session, ev: Event, now: float) -> int:
        frame_ts = trigger_ts(ev)
        s.add(RoutedRow(event_id=ev.id, routed_ts=now, last_ts=frame_ts, ended=int(ev.ended), clip_queued=0))
        s.flush()
        planned: list[NewDelivery] = []
        states = self._sensor_states(ev, opening=True)
        if ev.ended:
            states = self._sensor_states(ev, opening=False)
        for route in routes_for(self.alerts, ev, self.tz):
            q = (
                select(IncidentRow)
                .where(
                    IncidentRow.route_id == route.id,
                    IncidentRow.camera_id == ev.camera_id,
                    IncidentRow.type == ev.type,
                    IncidentRow.state != FOLDED,
                )
                .order_by(IncidentRow.created_ts.desc())
                .limit(1)
            )
            q = q.where(
                IncidentRow.zone_id.is_(None) if ev.zone_id is None else IncidentRow.zone_id == ev.zone_id
            )
            last = s.scalars(q).first()
            if last is not None and in_cooldown(last.created_ts, frame_ts, route.cooldown_s):
                s.add(
                    IncidentRow(
                        event_id=ev.id,
                        route_id=route.id,
                        camera_id=ev.camera_id,
                        zone_id=ev.zone_id,
                        type=ev.type,
                        state=FOLDED,
                        folded_into=last.event_id,
                        level=0,
                        created_ts=frame_ts,
                    )
                )
                continue
            s.add(
                IncidentRow(
                    event_id=ev.id,
                    route_id=route.id,
                    camera_id=ev.camera_id,
                    zone_id=ev.zone_id,
                    type=ev.type,
                    state=OPEN,
                    level=0,
                    created_ts=frame_ts,
                    next_escalation_ts=now + route.escalation[0].after_s if route.escalation else None,
                )
            )
            planned += self._plan(
                ev, route, route.recipients, Stage.ALERT, 0, frame_ts, now, sensor_states=states
            )
        return enqueue(s, planned, now)

    def _incidents(self, s: Session, event_id: str) -> list[IncidentRow]:
        return list(
            s.scalars(
                select(IncidentRow).where(IncidentRow.event_id == event_id, IncidentRow.state != FOLDED)
            )
        )

    def _update(self, s: Session, ev: Event, routed: RoutedRow, now: float) -> int:
        routed.last_ts = max(routed.last_ts, trigger_ts(ev))
        if not ev.ended or routed.ended:
            return 0
        routed.ended = 1
        states = self._sensor_states(ev, opening=False)
        planned: list[NewDelivery] = []
        for inc in self._incidents(s, ev.id):
            route = self.alerts.route(inc.route_id)
            if route is not None:
                ids = self._recipient_ids(route, inc.level)
                planned += self._plan(ev, route, ids, Stage.END, 0, trigger_ts(ev), now, sensor_states=states)
        return enqueue(s, planned, now)

    def on_clip(self, event_id: str, path: str, now: float | None = None) -> int:
        """Queue the clip stage to everyone alerted so far; its ``frame_ts`` is the end of the
        clip's post-roll, so its latency is the time the clip took to arrive after that."""
        t = time.time() if now is None else now
        with self.sessions.begin() as s:
            routed = s.get(RoutedRow, event_id)
            row = s.get(EventRow, event_id)
            if routed is None or routed.clip_queued or row is None:
                return 0
            routed.clip_queued = 1
            ev = event_from_row(row)
            ev.clip_path = path
            ref_ts = routed.last_ts + self.cfg.recorder.post_roll_s
            planned: list[NewDelivery] = []
            for inc in self._incidents(s, event_id):
                route = self.alerts.route(inc.route_id)
                if route is not None:
                    ids = self._recipient_ids(route, inc.level)
                    planned += self._plan(ev, route, ids, Stage.CLIP, 0, ref_ts, t)
            n = enqueue(s, planned, t)
        if n:
            self.wake()
        return n

    # time-driven --------------------------------------------------------------------------
    def escalate(self, now: float) -> int:
        """Alert the next recipient list of every open incident whose step is due."""
        queued = 0
        with self.sessions.begin() as s:
            due = list(
                s.scalars(
                    select(IncidentRow).where(
                        IncidentRow.state == OPEN, IncidentRow.next_escalation_ts <= now
                    )
                )
            )
            for inc in due:
                route = self.alerts.route(inc.route_id)
                row = s.get(EventRow, inc.event_id)
                if route is None or row is None or inc.level >= len(route.escalation):
                    inc.next_escalation_ts = None
                    continue
                if row.acknowledged_at is not None:  # acknowledged in the console
                    inc.state, inc.acked_by = ACKED, row.acknowledged_by
                    acked = row.acknowledged_at
                    acked = acked if acked.tzinfo is not None else acked.replace(tzinfo=UTC)
                    inc.acked_ts, inc.next_escalation_ts = acked.timestamp(), None
                    continue
                level = inc.level + 1
                nxt = now + route.escalation[level].after_s if level < len(route.escalation) else None
                claimed = s.execute(
                    update(IncidentRow)
                    .where(
                        IncidentRow.id == inc.id, IncidentRow.state == OPEN, IncidentRow.level == inc.level
                    )
                    .values(level=level, next_escalation_ts=nxt)
                )
                if not getattr(claimed, "rowcount", 0):
                    continue
                ev = event_from_row(row)
                step = route.escalation[level - 1]
                planned = self._plan(ev, route, step.recipients, Stage.ALERT, level, trigger_ts(ev), now)
                queued += enqueue(s, planned, now)
                log.info("event %s not acknowledged: escalated to %s", ev.id, ", ".join(step.recipients))
        if queued:
            self.wake()
        return queued

    def recover(self, now: float) -> int:
        """Route events the store has but alerting never saw, and queue missing clip stages."""
        with self.sessions.begin() as s:
            since_row = s.get(AlertStateRow, "routing_since")
            if since_row is None:
                s.add(AlertStateRow(name="routing_since", value=f"{now:.3f}"))
                return 0
            since = max(float(since_row.value), now - RECOVER_WINDOW_S)
            lo = datetime.fromtimestamp(since, UTC)
            hi = datetime.fromtimestamp(now - self.recover_min_age_s, UTC)
            routed_ids = select(RoutedRow.event_id)
            missed = list(
                s.scalars(
                    select(EventRow)
                    .where(
                        EventRow.created_at >= lo, EventRow.created_at < hi, EventRow.id.not_in(routed_ids)
                    )
                    .order_by(EventRow.start_ts)
                )
            )
            clips = list(
                s.execute(
                    select(EventRow.id, EventRow.clip_path)
                    .join(RoutedRow, RoutedRow.event_id == EventRow.id)
                    .where(
                        RoutedRow.clip_queued == 0, EventRow.clip_path.is_not(None), EventRow.created_at >= lo
                    )
                )
            )
        n = 0
        for row in missed:
            log.warning("event %s was stored but never routed (crash?): alerting now", row.id)
            n += self.on_event(event_from_row(row), now)
        for event_id, path in clips:
            if path is not None:
                n += self.on_clip(event_id, path, now)
        return n

    def restore_open(self) -> None:
        """Rebuild the open-event sensor states after a restart."""
        with self.sessions() as s:
            rows = s.scalars(
                select(EventRow)
                .join(RoutedRow, RoutedRow.event_id == EventRow.id)
                .where(RoutedRow.ended == 0)
            )
            with self._lock:
                for row in rows:
                    ev = event_from_row(row)
                    self._open[ev.id] = (ev.camera_id, frozenset(event_sensors(ev)))

    # people -------------------------------------------------------------------------------
    def _audit(self, s: Session, actor: str, action: str, target: str, detail: dict[str, Any]) -> None:
        record(s, actor[:64], action, target, detail)

    def refuse(self, error: LinkError, purpose: Purpose, client: str | None) -> None:
        """Audit a refused link (forged, expired, misused)."""
        with self.sessions.begin() as s:
            self._audit(
                s,
                "-",
                "alert.link_refused",
                f"link:{purpose.value}",
                {"reason": error.reason, "client": client},
            )

    def check(self, token: str, purpose: Purpose, client: str | None = None) -> LinkClaims:
        try:
            return verify(self.secret, token, now=time.time(), purpose=purpose)
        except LinkError as exc:
            self.refuse(exc, purpose, client)
            raise

    def event_row(self, event_id: str) -> EventRow | None:
        with self.sessions() as s:
            return s.get(EventRow, event_id)

    def acknowledge(self, event_id: str, by: str, *, via: str, client: str | None = None) -> AckResult:
        """Stop escalation of every route's incident for the event, mark the event
        acknowledged (if nobody did yet), tell the machines, and audit it."""
        now = time.time()
        with self.sessions.begin() as s:
            row = s.get(EventRow, event_id)
            if row is None:
                raise ActionRefused(404, "this event no longer exists")
            already = row.acknowledged_at is not None
            if not already:
                row.acknowledged_by = by[:64]
                row.acknowledged_at = datetime.fromtimestamp(now, UTC)
            planned: list[NewDelivery] = []
            ev = event_from_row(row)
            for inc in self._incidents(s, event_id):
                if inc.state == OPEN:
                    inc.state, inc.acked_ts, inc.acked_by, inc.next_escalation_ts = ACKED, now, by[:64], None
                route = self.alerts.route(inc.route_id)
                if route is not None and not already:
                    ids = self._recipient_ids(route, inc.level)
                    planned += self._plan(ev, route, ids, Stage.ACK, 0, now, now, extra={"acked_by": by})
            enqueue(s, planned, now)
            self._audit(
                s, by, "event.ack", f"event:{event_id}", {"via": via, "client": client, "already": already}
            )
        self.wake()
        return AckResult(event_id, row.acknowledged_by or by, already, row.description)

    def acknowledge_link(self, token: str, client: str | None = None) -> AckResult:
        claims = self.check(token, Purpose.ACK, client)
        recipient = self.alerts.recipient(claims.recipient)
        by = f"alert:{claims.recipient}" if recipient is None else recipient.label
        return self.acknowledge(claims.event_id, by, via="alert-link", client=client)

    def authorise_action(self, token: str, client: str | None = None) -> tuple[LinkClaims, str]:
        """The claims and label of an action link its holder may use; ActionRefused otherwise."""
        claims = self.check(token, Purpose.ACT, client)
        action = self.alerts.action(claims.action or "")
        if action is None or claims.recipient not in action.allowed:
            with self.sessions.begin() as s:
                self._audit(
                    s,
                    f"alert:{claims.recipient}",
                    "alert.action_refused",
                    f"event:{claims.event_id}",
                    {"action": claims.action, "reason": "not authorised", "client": client},
                )
            raise ActionRefused(403, "you are not allowed to do this")
        return claims, action.label

    def run_action(self, token: str, client: str | None = None) -> ActionResult:
        """Run a one-tap action exactly once: the link is claimed in the database first (a
        second tap, or two racing taps, find it taken), released again if the command could
        not be delivered, so the same link can be tried again."""
        claims, label = self.authorise_action(token, client)
        action = self.alerts.action(claims.action or "")
        assert action is not None
        recipient = self.alerts.recipient(claims.recipient)
        by = recipient.label if recipient is not None else claims.recipient
        th = token_hash(token)
        now = time.time()
        try:
            with self.sessions.begin() as s:
                s.add(
                    LinkUseRow(
                        token_hash=th,
                        event_id=claims.event_id,
                        recipient_id=claims.recipient,
                        action_id=action.id,
                        used_ts=now,
                        state="running",
                    )
                )
        except IntegrityError:
            raise ActionRefused(409, "this action was already done from this link") from None
        try:
            if action.mqtt is not None:
                if self.mqtt is None:
                    raise ActionRefused(503, "MQTT is not configured")
                from gemwatch.alerts.channels.base import DeliveryError

                if not self.mqtt.connected:
                    self.mqtt.start()
                    self.mqtt.wait_connected(3.0)
                try:
                    self.mqtt.publish(
                        action.mqtt.topic,
                        action.mqtt.payload,
                        qos=action.mqtt.qos,
                        retain=action.mqtt.retain,
                        timeout=self.alerts.send_timeout_s,
                    )
                except DeliveryError as exc:
                    raise ActionRefused(503, f"the command could not be sent: {exc}") from None
        except ActionRefused as exc:
            with self.sessions.begin() as s:
                s.execute(delete(LinkUseRow).where(LinkUseRow.token_hash == th))
                self._audit(
                    s,
                    by,
                    "alert.action_failed",
                    f"event:{claims.event_id}",
                    {"action": action.id, "error": str(exc), "client": client},
                )
            raise
        with self.sessions.begin() as s:
            s.execute(update(LinkUseRow).where(LinkUseRow.token_hash == th).values(state="done"))
            planned: list[NewDelivery] = []
            row = s.get(EventRow, claims.event_id)
            if row is not None and action.notify:
                ev = event_from_row(row)
                route = next((r for r in self.alerts.routes if action.id in r.actions), None)
                if route is not None:
                    extra = {"by": by, "action_id": action.id, "action_label": label}
                    planned = self._plan(
                        ev, route, action.notify, Stage.ACTION, 0, now, now, extra=extra, key_extra=th
                    )
            enqueue(s, planned, now)
            self._audit(
                s,
                by,
                "alert.action",
                f"event:{claims.event_id}",
                {"action": action.id, "label": label, "notified": list(action.notify), "client": client},
            )
        self.wake()
        return ActionResult(claims.event_id, action.id, label, by)

    def media_path(self, token: str, purpose: Purpose, client: str | None = None) -> str:
        """The snapshot or clip file a media link points at (audited as a view)."""
        claims = self.check(token, purpose, client)
        with self.sessions.begin() as s:
            row = s.get(EventRow, claims.event_id)
            path = None if row is None else (row.clip_path if purpose is Purpose.CLIP else row.snapshot_path)
            if path is None:
                raise ActionRefused(404, "this picture or clip is not (or no longer) available")
            action = "clip.view" if purpose is Purpose.CLIP else "snapshot.view"
            self._audit(
                s,
                f"alert:{claims.recipient}",
                action,
                f"event:{claims.event_id}",
                {"via": "alert-link", "client": client},
            )
        return path
