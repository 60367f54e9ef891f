"""One camera, end to end: source → perception → rules → evidence → sink.

``CameraPipeline`` runs in a camera's own process under ``gemwatch run`` (events cross to the
node's main process through a queue sink) and in-process for ``gemwatch analyze``. The clip
recorder lives here because the encoded packets live here; only Events leave.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from gemwatch.config.models import Camera, GemwatchConfig
from gemwatch.events.recorder import ClipRecorder
from gemwatch.events.snapshot import draw_snapshot, write_jpeg
from gemwatch.events.store import TrackSummary
from gemwatch.perception.detector import PersonDetector
from gemwatch.perception.perceiver import Perceiver
from gemwatch.rules.base import Rule
from gemwatch.rules.counter import build_counter_rules
from gemwatch.rules.loitering import LoiteringRule
from gemwatch.rules.presence import build_rules
from gemwatch.sources.case_sensors import case_sensor_feed
from gemwatch.sources.packets import PacketRing
from gemwatch.sources.video import CameraStatus, SourceError, VideoSource
from gemwatch.types import Event, Frame, Observation
from gemwatch.watchlist.runtime import build_face_stage, build_watchlist_rules, watchlist_snapshot

if TYPE_CHECKING:
    from gemwatch.perception.pose import PoseEstimator

log = logging.getLogger(__name__)


class EventSink(Protocol):
    """Where a camera pipeline reports; implementations must not block for long."""

    def event(self, ev: Event) -> None: ...

    def clip_ready(self, event_id: str, path: str) -> None: ...

    def status(self, status: CameraStatus) -> None: ...

    def tracks(self, camera_id: str, tracks: list[TrackSummary]) -> None: ...


@dataclass(slots=True)
class PipelineResult:
    camera_id: str
    frames: int = 0
    detector_runs: int = 0
    events: int = 0
    error: str | None = None
    wall_s: float = 0.0
    media_s: float = 0.0
    # Epoch seconds of the video's time 0 (a frame's ts minus its pts): an event's ts minus
    # this is where it is in a recorded file. None before the first frame.
    video_t0: float | None = None
    stage_ms: dict[str, float] = field(default_factory=dict)
    tracks: list[TrackSummary] = field(default_factory=list)


def build_rules_for(cfg: GemwatchConfig, camera: Camera) -> list[Rule]:
    rules: list[Rule] = [LoiteringRule(camera)]
    rules.extend(build_rules(camera, cfg.rules.presence, cfg.store.tz))
    rules.extend(build_counter_rules(camera))
    rules.extend(build_watchlist_rules(cfg, camera))
    return rules


class CameraPipeline:
    def __init__(
        self,
        cfg: GemwatchConfig,
        camera: Camera,
        sink: EventSink,
        *,
        detector: PersonDetector,
        pose: PoseEstimator | None = None,
        start_time: datetime | None = None,
        on_frame: Callable[[Frame, Observation], None] | None = None,
    ) -> None:
        self.cfg = cfg
        self.camera = camera
        self.sink = sink
        self.on_frame = on_frame
        data_dir = cfg.storage.data_dir
        self.snap_dir = data_dir / "snapshots" / camera.id
        self.clip_dir = data_dir / "clips" / camera.id
        self.snap_dir.mkdir(parents=True, exist_ok=True)
        self.clip_dir.mkdir(parents=True, exist_ok=True)
        rec = cfg.recorder
        self.ring = PacketRing(capacity_s=rec.pre_roll_s + 2.0)
        self.recorder = ClipRecorder(
            camera.id,
            self.ring,
            self.clip_dir,
            pre_roll_s=rec.pre_roll_s,
            post_roll_s=rec.post_roll_s,
            max_clip_s=rec.max_clip_s,
        )
        self.source = VideoSource(
            camera.id,
            camera.detect_url or camera.url,
            camera.fps,
            start_time=start_time,
            ring=self.ring,
        )
        self.source.on_status(sink.status)
        self.perceiver = Perceiver(camera, cfg.perception, detector, pose)
        # contact/lock sensors of display cases (MQTT), read by the zone watcher of the moment
        self.case_sensors = case_sensor_feed(
            camera,
            cfg.alerts.mqtt,
            lambda zone_id, is_open: self.perceiver.zone_watch.set_sensor(zone_id, is_open),
        )
        self.perceiver.faces = build_face_stage(cfg, camera)
        if self.perceiver.faces is not None:
            # enrolled staff and guard faces decide roles before zones and uniform colours do
            self.perceiver.roles.add_source(self.perceiver.faces.role_source())
        self.rules = build_rules_for(cfg, camera)
        self.event_ids: set[str] = set()
        self._open: set[str] = set()  # events still running: their clips grow with them
        self._offset: float | None = None  # ts - pts of the current source

    def stop(self) -> None:
        self.source.stop()

    def set_camera(self, camera: Camera) -> None:
        """Apply edited zones from the next frame on (rules restart their timers)."""
        self.camera = camera
        self.perceiver.set_camera(camera)
        self.rules = build_rules_for(self.cfg, camera)

    def run(self) -> PipelineResult:
        result = PipelineResult(self.camera.id)
        started = time.perf_counter()
        last: Frame | None = None
        first_pts: float | None = None
        if self.case_sensors is not None:
            self.case_sensors.start()
        try:
            for frame in self.source.frames():
                t0 = time.perf_counter()
                last = frame
                if first_pts is None:
                    first_pts = frame.pts
                    result.video_t0 = frame.ts - frame.pts
                self._offset = frame.ts - frame.pts
                # Hand over finished clips before perception, not after it: a clip whose
                # post-roll ended by this frame goes out one perception pass sooner. Open
                # events are extended first, so a gap in the stream cannot cut their clips.
                for event_id in self._open:
                    self.recorder.extend(event_id, frame.pts)
                self._clips_done(self.recorder.poll(frame.pts))
                obs = self.perceiver.process(frame)
                t1 = time.perf_counter()
                events: list[Event] = []
                for rule in self.rules:
                    events.extend(rule.update(obs))
                self.perceiver.costs.add("rules", time.perf_counter() - t1)
                self._handle(events, frame, obs)
                for event_id in self._open:  # events opened by this frame
                    self.recorder.extend(event_id, frame.pts)
                result.events += len([e for e in events if not e.ended])
                if self.on_frame is not None:
                    self.on_frame(frame, obs)
                self.perceiver.costs.add("pipeline", time.perf_counter() - t0)
        except SourceError as exc:
            result.error = str(exc)
            log.error("%s", exc)
        finally:
            end_ts = last.ts if last is not None else time.time()
            closing: list[Event] = []
            for rule in self.rules:
                closing.extend(rule.finish(end_ts))
            if last is not None:
                self._handle(closing, last, None)
            self._clips_done(self.recorder.flush())
            if self.case_sensors is not None:
                self.case_sensors.stop()
            result.frames = self.perceiver.frames
            result.detector_runs = self.perceiver.detector_runs
            result.wall_s = time.perf_counter() - started
            result.media_s = 0.0 if last is None or first_pts is None else last.pts - first_pts
            result.stage_ms = {
                "decode": self.source.stats.ms_per_yielded,
                **self.perceiver.costs.per_frame(result.frames),
            }
            result.tracks = self.track_summaries()
            self.sink.tracks(self.camera.id, result.tracks)
        return result

    def track_summaries(self) -> list[TrackSummary]:
        return [
            TrackSummary(
                self.camera.id,
                t.track_id,
                self.perceiver.roles.role_of(t.track_id).value,
                t.first_ts,
                t.last_ts,
                t.observations,
                t.max_score,
            )
            for t in self.perceiver.tracker.info.values()
            if t.confirmed
        ]

    def _pts(self, ts: float) -> float:
        return ts - (self._offset or 0.0)

    def _handle(self, events: Iterable[Event], frame: Frame, obs: Observation | None) -> None:
        for ev in events:
            if ev.id not in self.event_ids:
                self.event_ids.add(ev.id)
                ev.snapshot_path = str(self._snapshot(ev, frame, obs))
                if ev.extra.pop("record_clip", True):  # watchlist hits record none by default
                    self.recorder.request(ev.id, frame.pts, frame.ts)
            elif ev.end_ts is not None:
                self.recorder.extend(ev.id, self._pts(ev.end_ts))
            if ev.ended:
                self._open.discard(ev.id)
            else:
                self._open.add(ev.id)
            self.sink.event(ev)

    def _snapshot(self, ev: Event, frame: Frame, obs: Observation | None) -> Path:
        zones = [(z.id, z.polygon) for z in self.camera.zones]
        people = obs.people if obs is not None else ()
        image = draw_snapshot(frame.image, people, zones, ev.zone_id, ev.description)
        image = watchlist_snapshot(image, ev.extra)  # hits: other faces blurred, live | enrolled face
        path = self.snap_dir / f"{ev.id}.jpg"
        write_jpeg(image, path)
        return path

    def _clips_done(self, done: Iterable[tuple[str, Path]]) -> None:
        for event_id, path in done:
            self.sink.clip_ready(event_id, str(path))
