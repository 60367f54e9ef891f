"""One camera's perception cascade: motion gate → person detector → tracker → (pose) → zones.

Turns each Frame into an Observation and records what every stage cost, so the benchmark can
show where the CPU goes. The detector runs only with motion, live tracks, or a periodic refresh.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import supervision as sv

from gemwatch.config.models import Camera, Perception
from gemwatch.perception.detector import PersonDetector
from gemwatch.perception.motion import MotionGate
from gemwatch.perception.roles import RoleAssigner
from gemwatch.perception.tracker import PersonTracker, select
from gemwatch.perception.zones import ZoneWatcher
from gemwatch.rules.geometry import foot_points, points_in_polygon
from gemwatch.types import DetectedObject, FaceSighting, Frame, Observation, Person, ZoneState

if TYPE_CHECKING:
    from gemwatch.perception.pose import PoseEstimator
    from gemwatch.watchlist.runtime import FaceStage

PERSON_CLASS = 0


@dataclass(slots=True)
class StageCosts:
    """Accumulated milliseconds and call counts per stage."""

    ms: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    calls: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def add(self, stage: str, seconds: float) -> None:
        self.ms[stage] += seconds * 1000.0
        self.calls[stage] += 1

    def per_frame(self, frames: int) -> dict[str, float]:
        return {k: v / max(frames, 1) for k, v in self.ms.items()}


class Perceiver:
    def __init__(
        self,
        camera: Camera,
        cfg: Perception,
        detector: PersonDetector,
        pose: PoseEstimator | None = None,
    ) -> None:
        self.camera = camera
        self.cfg = cfg
        self.detector = detector
        self.pose = pose
        self.motion = MotionGate(cfg.motion)
        self.tracker = PersonTracker(cfg.tracker)
        self.costs = StageCosts()
        self.frames = 0
        self.detector_runs = 0
        self.last_objects: sv.Detections = sv.Detections.empty()
        self._pose_zones = [z for z in camera.zones if z.kind in set(cfg.pose_zone_kinds)]
        self.zone_watch = ZoneWatcher(camera, cfg.zones)
        self.roles = RoleAssigner(camera, cfg.roles)
        # Set by the pipeline where the watchlist looks for faces (a few looks per track).
        self.faces: FaceStage | None = None

    def set_camera(self, camera: Camera) -> None:
        """Swap zones without losing tracks (zone edits apply on the next frame)."""
        self.camera = camera
        self._pose_zones = [z for z in camera.zones if z.kind in set(self.cfg.pose_zone_kinds)]
        self.zone_watch = ZoneWatcher(camera, self.cfg.zones)
        self.roles.set_camera(camera)

    def process(self, frame: Frame) -> Observation:
        self.frames += 1
        t0 = time.perf_counter()
        motion = self.motion.measure(frame.image)
        t1 = time.perf_counter()
        self.costs.add("motion", t1 - t0)
        run = self.motion.should_detect(frame.ts, motion, self.tracker.has_tracks)
        people: tuple[Person, ...] = ()
        faces: tuple[FaceSighting, ...] = ()
        if run:
            self.detector_runs += 1
            dets = self.detector.detect(frame.image)
            t2 = time.perf_counter()
            self.costs.add("detector", t2 - t1)
            is_person = (
                dets.class_id == PERSON_CLASS if dets.class_id is not None else np.ones(len(dets), bool)
            )
            self.last_objects = select(dets, ~is_person)
            persons = select(dets, is_person)
            tracked = self.tracker.update(persons, frame.ts, self.motion.moving_fraction(persons.xyxy))
            t3 = time.perf_counter()
            self.costs.add("tracker", t3 - t2)
            people = self._people(tracked, frame)
            if self.pose is not None and people:
                people = self._with_pose(people, frame)
                self.costs.add("pose", time.perf_counter() - t3)
            if self.faces is not None and people:
                t5 = time.perf_counter()
                people, faces = self.faces.process(frame, people)
                self.costs.add("faces", time.perf_counter() - t5)
        people, zone_states, objects = self._counter(frame, people)
        t4 = time.perf_counter()
        zone_people = self._zones(people, frame.width, frame.height)
        self.costs.add("zones", time.perf_counter() - t4)
        return Observation(
            camera_id=self.camera.id,
            ts=frame.ts,
            width=frame.width,
            height=frame.height,
            people=people,
            zone_people=zone_people,
            motion=motion,
            detector_ran=run,
            faces=faces,
            zones=zone_states,
            objects=objects,
        )

    def _counter(
        self, frame: Frame, people: tuple[Person, ...]
    ) -> tuple[tuple[Person, ...], dict[str, ZoneState], tuple[DetectedObject, ...]]:
        """Counter passes: tray/case/pad appearance (cheap, rate-limited, only where such zones
        exist) and roles (staff vs customer); bags from the detector's last pass."""
        t0 = time.perf_counter()
        states = self.zone_watch.update(frame.image, frame.ts, people)
        t1 = time.perf_counter()
        if self.zone_watch.active:
            self.costs.add("zone_appearance", t1 - t0)
        if people:
            feet = foot_points(np.array([p.box for p in people]), frame.width, frame.height)
            people = self.roles.assign(people, frame.image, frame.ts, feet)
            self.costs.add("roles", time.perf_counter() - t1)
        objs = self.last_objects
        names = objs.data.get("class_name", ["object"] * len(objs))
        scores = objs.confidence if objs.confidence is not None else np.ones(len(objs))
        objects = tuple(
            DetectedObject(str(n), (float(b[0]), float(b[1]), float(b[2]), float(b[3])), float(c))
            for n, b, c in zip(names, objs.xyxy, scores, strict=True)
        )
        return people, states, objects

    @staticmethod
    def _people(tracked: sv.Detections, frame: Frame) -> tuple[Person, ...]:
        if len(tracked) == 0:
            return ()
        conf = tracked.confidence if tracked.confidence is not None else np.ones(len(tracked))
        assert tracked.tracker_id is not None
        # A detector that also estimates poses (MultiPose) hands keypoints over for free;
        # all-zero rows mean "no pose for this box".
        kps = tracked.data.get("keypoints")
        people = []
        for i, (b, c, tid) in enumerate(zip(tracked.xyxy, conf, tracked.tracker_id, strict=True)):
            kp = None if kps is None or not np.any(kps[i][:, 2] > 0) else np.asarray(kps[i], dtype=np.float32)
            people.append(
                Person(
                    track_id=int(tid),
                    box=(float(b[0]), float(b[1]), float(b[2]), float(b[3])),
                    score=float(c),
                    keypoints=kp,
                )
            )
        return tuple(people)

    def _zones(self, people: tuple[Person, ...], width: int, height: int) -> dict[str, tuple[int, ...]]:
        if not people or not self.camera.zones:
            return {}
        feet = foot_points(np.array([p.box for p in people]), width, height)
        ids = np.array([p.track_id for p in people])
        out: dict[str, tuple[int, ...]] = {}
        for zone in self.camera.zones:
            inside = points_in_polygon(feet, zone.polygon)
            if inside.any():
                out[zone.id] = tuple(int(i) for i in ids[inside])
        return out

    def _with_pose(self, people: tuple[Person, ...], frame: Frame) -> tuple[Person, ...]:
        assert self.pose is not None
        if not self._pose_zones:
            return people
        feet = foot_points(np.array([p.box for p in people]), frame.width, frame.height)
        wanted = np.array([p.keypoints is None for p in people], dtype=bool)
        inside = np.zeros(len(people), dtype=bool)
        for zone in self._pose_zones:
            inside |= points_in_polygon(feet, zone.polygon)
        wanted &= inside
        if not wanted.any():
            return people
        boxes = np.array([p.box for p, w in zip(people, wanted, strict=True) if w], dtype=np.float32)
        keypoints = self.pose.estimate(frame.image, boxes)
        out = list(people)
        k = 0
        for i, w in enumerate(wanted):
            if w:
                p = out[i]
                out[i] = Person(p.track_id, p.box, p.score, p.role, keypoints[k])
                k += 1
        return tuple(out)
