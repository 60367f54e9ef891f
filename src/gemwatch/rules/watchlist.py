"""Watchlist matching at track level: match, no match, or unknown — never one lucky frame.

Why per track: a single frame can look like anyone (blur, a turned head, a lookalike). A
track is a match for an entry only when at least ``min_shots`` usable face shots from
different moments are each within ``match_distance`` of that entry, that entry is each
shot's nearest (open set: strangers stay unknown), and no 'not this person' example of the
entry is closer. One appearance raises one event: further tracks of the same entry while it
is still in view (or back within ``appearance_gap_s``) fold into it. Sightings that never
match live only in this object's memory and vanish with their track.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

import cv2
import numpy as np

from gemwatch.types import Event, FaceSighting, Observation, Severity
from gemwatch.watchlist.gallery import GallerySnapshot

EVENT_TYPE = "watchlist.hit"
MAX_SHOTS_KEPT = 8  # per track, best quality first: bounded memory, never a face archive
TRACK_FORGET_S = 30.0


class Decision(StrEnum):
    UNKNOWN = "unknown"  # not enough usable face shots yet
    NO_MATCH = "no_match"  # enough shots, none close to any entry
    MATCH = "match"


@dataclass(slots=True)
class _Shot:
    ts: float
    embedding: np.ndarray
    quality: float
    chip: np.ndarray | None
    box: tuple[float, float, float, float]


@dataclass(slots=True)
class _Track:
    shots: list[_Shot] = field(default_factory=list)
    last_ts: float = 0.0
    decision: Decision = Decision.UNKNOWN
    entry: int = -1


@dataclass(slots=True)
class _Appearance:
    event: Event
    entry_id: str
    tracks: set[int]
    last_seen: float


@dataclass(frozen=True, slots=True)
class TrackVerdict:
    """What the evidence of one track says about one gallery (pure, for tests and the rule)."""

    decision: Decision
    entry: int = -1
    distance: float = float("inf")
    shots: int = 0
    best: int = -1  # index of the matching shot closest to the entry


def judge(
    shots: list[tuple[float, np.ndarray]],
    gallery: GallerySnapshot,
    *,
    match_distance: float,
    min_shots: int,
    min_gap_s: float,
) -> TrackVerdict:
    """Decide one track from its usable shots ``(ts, embedding)``.

    A shot votes for an entry when that entry is its nearest, within ``match_distance``, and
    nearer than the entry's negatives. Votes closer in time than ``min_gap_s`` count once.
    """
    if not len(gallery) or not shots:
        return TrackVerdict(Decision.UNKNOWN)
    votes: dict[int, list[tuple[float, float, int]]] = {}
    for i, (ts, emb) in enumerate(shots):
        d = gallery.distances(emb)
        k = int(np.argmin(d))
        if d[k] > match_distance:
            continue
        if gallery.negative_distances(emb)[k] <= d[k]:
            continue  # a reviewer said a face like this one is not this person
        votes.setdefault(k, []).append((ts, float(d[k]), i))
    for k, vs in sorted(votes.items(), key=lambda kv: min(v[1] for v in kv[1])):
        vs.sort()
        distinct = [vs[0]]
        for v in vs[1:]:
            if v[0] - distinct[-1][0] >= min_gap_s:
                distinct.append(v)
        if len(distinct) >= min_shots:
            best = min(distinct, key=lambda v: v[1])
            mean = float(np.mean([v[1] for v in distinct]))
            return TrackVerdict(Decision.MATCH, k, mean, len(distinct), best[2])
    if len(shots) >= min_shots and not votes:
        return TrackVerdict(Decision.NO_MATCH, shots=len(shots))
    return TrackVerdict(Decision.UNKNOWN, shots=len(shots))


def inset_strip(live_rgb: np.ndarray | None, enrolled_jpeg: bytes | None, caption: str) -> np.ndarray:
    """Live face beside the enrolled picture, 200 px high, with a caption: for the reviewer."""
    h = 200
    tiles = []
    for img, title in ((live_rgb[:, :, ::-1] if live_rgb is not None else None, "live"), (None, "enrolled")):
        if title == "enrolled" and enrolled_jpeg:
            img = cv2.imdecode(np.frombuffer(enrolled_jpeg, np.uint8), cv2.IMREAD_COLOR)
        if img is None:
            img = np.zeros((h, h, 3), np.uint8)
        img = cv2.resize(img, (max(1, int(img.shape[1] * h / img.shape[0])), h))
        cv2.putText(img, title, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 255, 255), 2, cv2.LINE_AA)
        tiles.append(img)
    strip = np.hstack(tiles)
    bar = np.zeros((28, strip.shape[1], 3), np.uint8)
    cv2.putText(bar, caption[:60], (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return np.vstack([strip, bar])


class WatchlistRule:
    """Raises ``watchlist.hit`` (high) once per appearance of an approved entry's person.

    ``gallery`` returns the current snapshot (the caller refreshes it from the database);
    a hit is a prompt for a person to look, never an action by itself.
    """

    def __init__(
        self,
        camera_id: str,
        gallery: Callable[[], GallerySnapshot],
        *,
        camera_label: str | None = None,
        match_distance: float = 0.6,
        min_shots: int = 2,
        min_gap_s: float = 0.2,
        appearance_gap_s: float = 2.0,
        severity: Severity = Severity.HIGH,
        record_clip: bool = False,
    ) -> None:
        self.camera_id = camera_id
        self.camera_label = camera_label or camera_id
        self.gallery = gallery
        self.match_distance = match_distance
        self.min_shots = min_shots
        self.min_gap_s = min_gap_s
        self.appearance_gap_s = appearance_gap_s
        self.severity = severity
        self.record_clip = record_clip
        self.tracks: dict[int, _Track] = {}
        self.appearances: dict[str, _Appearance] = {}
        self._version = ""

    def decision(self, track_id: int) -> Decision:
        t = self.tracks.get(track_id)
        return Decision.UNKNOWN if t is None else t.decision

    def _add(self, s: FaceSighting) -> _Track:
        t = self.tracks.setdefault(s.track_id, _Track())
        t.last_ts = s.ts
        t.shots.append(_Shot(s.ts, s.embedding, s.quality, s.chip, s.box))
        if len(t.shots) > MAX_SHOTS_KEPT:
            t.shots.sort(key=lambda x: -x.quality)
            t.shots = sorted(t.shots[:MAX_SHOTS_KEPT], key=lambda x: x.ts)
        return t

    def update(self, obs: Observation) -> list[Event]:
        gallery = self.gallery()
        if gallery.version != self._version:
            # Entries changed (approved, revoked, 'not this person'): judge open tracks again.
            self._version = gallery.version
            for t in self.tracks.values():
                if t.decision != Decision.MATCH:
                    t.decision = Decision.UNKNOWN
        events: list[Event] = []
        changed: set[int] = set()
        for s in obs.faces:
            if s.usable:
                self._add(s)
                changed.add(s.track_id)
        present = {p.track_id for p in obs.people}
        for tid in present:
            if tid in self.tracks:
                self.tracks[tid].last_ts = obs.ts
        for tid in changed:
            t = self.tracks[tid]
            if t.decision == Decision.MATCH or not len(gallery):
                continue
            verdict = judge(
                [(x.ts, x.embedding) for x in t.shots],
                gallery,
                match_distance=self.match_distance,
                min_shots=self.min_shots,
                min_gap_s=self.min_gap_s,
            )
            t.decision = verdict.decision
            if verdict.decision == Decision.MATCH:
                t.entry = verdict.entry
                ev = self._hit(obs, tid, t, verdict, gallery)
                if ev is not None:
                    events.append(ev)
        events.extend(self._age(obs, present))
        return events

    def _hit(
        self, obs: Observation, tid: int, t: _Track, verdict: TrackVerdict, gallery: GallerySnapshot
    ) -> Event | None:
        entry_id = gallery.entry_ids[verdict.entry]
        open_app = self.appearances.get(entry_id)
        if open_app is not None and obs.ts - open_app.last_seen <= self.appearance_gap_s:
            open_app.tracks.add(tid)  # the same visit, seen again or by another track
            open_app.last_seen = obs.ts
            return None
        label = gallery.labels[verdict.entry]
        shot = t.shots[verdict.best]
        caption = f"{label}: distance {verdict.distance:.2f} (match <= {self.match_distance:.2f})"
        ev = Event(
            type=EVENT_TYPE,
            severity=self.severity,
            camera_id=self.camera_id,
            start_ts=obs.ts,
            description=(
                f"Possible watchlist match at {self.camera_label}: {label} "
                f"(distance {verdict.distance:.2f}, {verdict.shots} shots). Check before acting."
            ),
            people=(tid,),
            scores={
                "distance": round(verdict.distance, 4),
                "similarity": round(max(0.0, 1.0 - verdict.distance), 4),
                "threshold": self.match_distance,
                "shots": float(verdict.shots),
            },
            extra={
                "watchlist": {
                    "entry_id": entry_id,
                    "distance": verdict.distance,
                    "shots": verdict.shots,
                    "embedding": shot.embedding,
                    "chip": shot.chip,
                },
                "snapshot_inset": inset_strip(shot.chip, gallery.thumbs[verdict.entry], caption),
                # Other faces in the snapshot are blurred; this one (the newest shot) is kept.
                "keep_face_box": max(t.shots, key=lambda x: x.ts).box,
                "record_clip": self.record_clip,
            },
        )
        self.appearances[entry_id] = _Appearance(ev, entry_id, {tid}, obs.ts)
        return ev

    def _age(self, obs: Observation, present: set[int]) -> list[Event]:
        out: list[Event] = []
        if obs.detector_ran:
            for entry_id, app in list(self.appearances.items()):
                if app.tracks & present:
                    app.last_seen = obs.ts
                elif obs.ts - app.last_seen > self.appearance_gap_s:
                    out.append(self._end(app))
                    del self.appearances[entry_id]
        for tid in [k for k, t in self.tracks.items() if obs.ts - t.last_ts > TRACK_FORGET_S]:
            del self.tracks[tid]  # the faces of a gone person are forgotten
        return out

    def _end(self, app: _Appearance) -> Event:
        ev = app.event
        return Event(
            type=ev.type,
            severity=ev.severity,
            camera_id=ev.camera_id,
            start_ts=ev.start_ts,
            end_ts=max(app.last_seen, ev.start_ts),
            ended=True,
            description=ev.description,
            people=tuple(sorted(app.tracks)),
            scores=ev.scores,
            id=ev.id,
        )

    def finish(self, ts: float) -> list[Event]:
        out = [self._end(app) for app in self.appearances.values()]
        self.appearances.clear()
        self.tracks.clear()
        return out
