"""The watchlist inside a running pipeline: the face stage, the rule, the hit sink.

``build_face_stage`` and ``build_watchlist_rules`` return nothing unless the policy is
``face_matching`` and the camera is one that looks for faces, so a node with the watchlist
off loads no face model and spends no CPU on faces. The gallery is read from the database
(decrypted in memory) and re-read within ``REFRESH_S`` of any change, so an approval, a
revocation or an entry arriving from HQ applies to running cameras without a restart.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from gemwatch.types import Event, FaceSighting, Frame, Person, Role

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from gemwatch.config.models import Camera, GemwatchConfig
    from gemwatch.perception.faces import FaceAnalyzer, FacePass
    from gemwatch.rules.base import Rule
    from gemwatch.watchlist.gallery import GallerySnapshot, Watchlist

log = logging.getLogger(__name__)

REFRESH_S = 1.0


def watchlist_for(cfg: GemwatchConfig, engine: Engine | None = None, **kwargs: Any) -> Watchlist:
    """The node's Watchlist on its database (migrated), with keys from the config."""
    from gemwatch.events.store import make_engine, migrate
    from gemwatch.watchlist.gallery import Watchlist

    if engine is None:
        engine = make_engine(cfg.storage.resolved_database_url())
        migrate(engine)
    return Watchlist(engine, cfg.watchlist, cfg.storage.data_dir, **kwargs)


def looks_for_faces(cfg: GemwatchConfig, camera_id: str) -> bool:
    wl = cfg.watchlist
    return wl.matching and (not wl.cameras or camera_id in wl.cameras)


class GalleryCache:
    """Snapshots of the galleries, re-read when the database says something changed."""

    def __init__(self, watchlist: Watchlist, refresh_s: float = REFRESH_S) -> None:

        self.watchlist = watchlist
        self.refresh_s = refresh_s
        self._snaps: dict[str, GallerySnapshot] = {}
        self._checked = -1e9
        self._version = ""
        self._lock = threading.Lock()

    def get(self, gallery: str) -> GallerySnapshot:
        with self._lock:
            now = time.monotonic()
            if now - self._checked >= self.refresh_s:
                self._checked = now
                try:
                    version = self.watchlist.version()
                    if version != self._version:
                        self._snaps = {g: self.watchlist.snapshot(g) for g in ("offender", "staff")}
                        self._version = version
                except Exception:
                    log.exception("watchlist gallery could not be read; keeping the last one")
            from gemwatch.watchlist.gallery import GallerySnapshot

            return self._snaps.get(gallery) or GallerySnapshot()


@dataclass(slots=True)
class _StaffTrack:
    shots: list[tuple[float, np.ndarray]] = field(default_factory=list)
    role: Role | None = None
    identity: str | None = None
    last_ts: float = 0.0


class FaceStage:
    """The perceiver's face hook: a few face looks per track, and staff/guard roles for tracks
    whose faces match the staff gallery (a role source for the counter and after-hours rules)."""

    def __init__(
        self,
        face_pass: FacePass,
        staff: GalleryCache | None = None,
        *,
        match_distance: float = 0.6,
        min_shots: int = 2,
        min_gap_s: float = 0.2,
    ) -> None:
        self.face_pass = face_pass
        self.staff = staff
        self.match_distance = match_distance
        self.min_shots = min_shots
        self.min_gap_s = min_gap_s
        self.staff_tracks: dict[int, _StaffTrack] = {}
        self.stage_ms: dict[str, float] = {}

    def process(
        self, frame: Frame, people: tuple[Person, ...]
    ) -> tuple[tuple[Person, ...], tuple[FaceSighting, ...]]:
        faces = self.face_pass.update(frame.image, frame.ts, [(p.track_id, p.box) for p in people])
        self.stage_ms = dict(self.face_pass.stage_ms)
        if self.staff is None:
            return people, tuple(faces)
        return self._roles(people, faces, frame.ts), tuple(faces)

    def _roles(self, people: tuple[Person, ...], faces: list[FaceSighting], ts: float) -> tuple[Person, ...]:
        from gemwatch.rules.watchlist import Decision, judge

        assert self.staff is not None
        gallery = self.staff.get("staff")
        for s in faces:
            if not s.usable:
                continue
            st = self.staff_tracks.setdefault(s.track_id, _StaffTrack())
            st.last_ts = ts
            if st.role is not None or not len(gallery):
                continue
            st.shots = ([*st.shots, (s.ts, s.embedding)])[-8:]
            v = judge(
                st.shots,
                gallery,
                match_distance=self.match_distance,
                min_shots=self.min_shots,
                min_gap_s=self.min_gap_s,
            )
            if v.decision == Decision.MATCH:
                role = gallery.roles[v.entry]
                st.role = Role.GUARD if role == "guard" else Role.STAFF
                st.identity = gallery.entry_ids[v.entry]
                st.shots = []  # a staff member's faces are not kept once known
        out = []
        for p in people:
            known = self.staff_tracks.get(p.track_id)
            if known is not None and known.role is not None:
                known.last_ts = ts
                p = Person(p.track_id, p.box, p.score, known.role, p.keypoints, known.identity)
            out.append(p)
        for tid in [t for t, st in self.staff_tracks.items() if ts - st.last_ts > 30.0]:
            del self.staff_tracks[tid]
        return tuple(out)

    def role_source(self) -> StaffFaceSource:
        """This stage as an identity source for ``perception.roles.RoleAssigner.add_source``."""
        return StaffFaceSource(self)

    def staff_role(self, track_id: int) -> tuple[Role, str] | None:
        """The role and staff entry of a track, once its face matched the staff gallery."""
        st = self.staff_tracks.get(track_id)
        if st is None or st.role is None or st.identity is None:
            return None
        return st.role, st.identity


class StaffFaceSource:
    """Enrolled staff faces as a role source: answers only for tracks whose face matched."""

    name = "staff face"

    def __init__(self, stage: FaceStage) -> None:
        self.stage = stage

    def role_for(self, person: Person, image: np.ndarray, ts: float) -> Role | None:
        known = self.stage.staff_role(person.track_id)
        return None if known is None else known[0]


_shared: dict[str, Any] = {}


def _cache(cfg: GemwatchConfig) -> GalleryCache:
    """One gallery cache per process and database (cameras of one process share it)."""
    key = cfg.storage.resolved_database_url()
    cache = _shared.get(key)
    if cache is None:
        cache = _shared[key] = GalleryCache(watchlist_for(cfg))
    return cache


def _analyzer() -> FaceAnalyzer:
    from gemwatch.perception.faces import FaceAnalyzer

    analyzer = _shared.get("analyzer")
    if analyzer is None:
        analyzer = _shared["analyzer"] = FaceAnalyzer()
    return analyzer


def build_face_stage(cfg: GemwatchConfig, camera: Camera) -> FaceStage | None:
    """The face hook for this camera, or None where the watchlist does not look for faces."""
    if not looks_for_faces(cfg, camera.id):
        return None
    from gemwatch.perception.faces import FacePass, FacePassConfig, QualityGate

    wl = cfg.watchlist
    gate = QualityGate(
        min_width_px=wl.live_min_face_px,
        min_sharpness=wl.live_min_sharpness,
        max_yaw=wl.live_max_yaw,
        min_score=0.6,
    )
    fp = FacePass(
        _analyzer(),
        FacePassConfig(
            interval_s=wl.face_interval_s,
            max_attempts=wl.face_attempts,
            retry_after_s=wl.face_retry_s,
            gate=gate,
        ),
    )
    return FaceStage(
        fp,
        _cache(cfg) if wl.staff_roles else None,
        match_distance=wl.match_distance,
        min_shots=wl.min_shots,
        min_gap_s=wl.min_shot_gap_s,
    )


def build_watchlist_rules(cfg: GemwatchConfig, camera: Camera) -> list[Rule]:
    if not looks_for_faces(cfg, camera.id):
        return []
    from gemwatch.rules.watchlist import WatchlistRule

    wl = cfg.watchlist
    cache = _cache(cfg)
    return [
        WatchlistRule(
            camera.id,
            lambda: cache.get("offender"),
            camera_label=camera.label,
            match_distance=wl.match_distance,
            min_shots=wl.min_shots,
            min_gap_s=wl.min_shot_gap_s,
            appearance_gap_s=wl.appearance_gap_s,
            record_clip=wl.record_clips,
        )
    ]


def watchlist_snapshot(image: np.ndarray, extra: dict[str, Any]) -> np.ndarray:
    """A hit's snapshot: every face but the matched one blurred, and the reviewer's strip (live
    face | enrolled face) below. Other events' snapshots pass through unchanged."""
    keep = extra.pop("keep_face_box", None)
    inset = extra.pop("snapshot_inset", None)
    if keep is not None:
        image = blur_faces(image, keep)
    if inset is None:
        return image
    w = image.shape[1]
    scale = min(1.0, w / inset.shape[1])
    strip = cv2.resize(inset, (max(1, int(inset.shape[1] * scale)), max(1, int(inset.shape[0] * scale))))
    pad = np.zeros((strip.shape[0], w, 3), np.uint8)
    pad[:, : strip.shape[1]] = strip
    return np.vstack([image, pad])


def blur_faces(image: np.ndarray, keep: tuple[float, float, float, float] | None) -> np.ndarray:
    """Pixelate every face CenterFace finds except the one overlapping ``keep``."""
    found = _analyzer().detector.detect(image, threshold=0.4, max_side=1280)
    out = image.copy()
    for box in found.boxes:
        if keep is not None and _iou(box, keep) >= 0.3:
            continue
        x1, y1, x2, y2 = (int(v) for v in box)
        pad = int(0.2 * max(x2 - x1, y2 - y1))
        x1, y1 = max(0, x1 - pad), max(0, y1 - pad)
        x2, y2 = min(image.shape[1], x2 + pad), min(image.shape[0], y2 + pad)
        if x2 - x1 < 2 or y2 - y1 < 2:
            continue
        roi = out[y1:y2, x1:x2]
        small = cv2.resize(
            roi, (max(1, (x2 - x1) // 12), max(1, (y2 - y1) // 12)), interpolation=cv2.INTER_AREA
        )
        out[y1:y2, x1:x2] = cv2.resize(small, (x2 - x1, y2 - y1), interpolation=cv2.INTER_NEAREST)
    return out


def _iou(a: Any, b: Any) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


class HitSink:
    """Event-bus listener in the node's main process: keeps each hit (sealed) for review."""

    def __init__(self, watchlist: Watchlist) -> None:
        self.watchlist = watchlist

    def event(self, ev: Event) -> None:
        data = ev.extra.get("watchlist")
        if not data or ev.ended:
            return
        self.watchlist.record_hit(
            event_id=ev.id,
            entry_id=str(data["entry_id"]),
            camera_id=ev.camera_id,
            ts=ev.start_ts,
            distance=float(data["distance"]),
            shots=int(data["shots"]),
            chip_rgb=data.get("chip"),
            embedding=data.get("embedding"),
        )


class NodeService:
    """What the node's main process does for the watchlist: live sync through HQ, publishing
    this store's list whenever it changes (from the console, the CLI or an import), and
    closing expired entries."""

    CHECK_S = 5.0

    def __init__(self, watchlist: Watchlist) -> None:
        from gemwatch.watchlist.sync import start_sync

        self.watchlist = watchlist
        self.sync = start_sync(watchlist)
        self._next = 0.0
        self._own = watchlist.own_version()

    def tick(self) -> None:
        """Called from the node's loop; does work at most every ``CHECK_S``."""
        now = time.monotonic()
        if now < self._next:
            return
        self._next = now + self.CHECK_S
        try:
            self.watchlist.expire_due()
            own = self.watchlist.own_version()
            if own != self._own:
                self._own = own
                if self.sync is not None:
                    self.sync.publish()
        except Exception:
            log.exception("watchlist housekeeping failed")

    def stop(self) -> None:
        if self.sync is not None:
            self.sync.stop()


def node_service(cfg: GemwatchConfig, engine: Engine | None = None) -> NodeService | None:
    """The watchlist's part of ``gemwatch run`` (None while the policy is off)."""
    if not cfg.watchlist.sharing:
        return None
    return NodeService(watchlist_for(cfg, engine))


def hit_sink(cfg: GemwatchConfig, engine: Engine | None = None) -> HitSink | None:
    """The hit sink where face matching is on, else None."""
    if not cfg.watchlist.matching:
        return None
    return HitSink(watchlist_for(cfg, engine))
