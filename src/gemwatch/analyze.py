"""Analyse one recorded video with the live pipeline and store what it found.

Used by ``gemwatch analyze`` and ``gemwatch demo``: the same CameraPipeline as a live camera,
an in-process StoreSink instead of the cross-process queue.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, time
from pathlib import Path
from typing import Any

from gemwatch.config.models import Camera, GemwatchConfig, Zone
from gemwatch.events.bus import FanoutSink, StoreSink
from gemwatch.events.schema import EventRow
from gemwatch.events.store import EventStore, TrackSummary
from gemwatch.perception.plugins import build_detector, build_pose
from gemwatch.pipeline import CameraPipeline, PipelineResult
from gemwatch.types import Frame, Observation, uuid7

log = logging.getLogger(__name__)

# Seconds ``analyze`` waits at the end for alerts still being sent; the rest stay in the outbox.
ALERT_DRAIN_S = 10.0


@dataclass(slots=True)
class AnalysisReport:
    run_id: str
    camera: Camera
    result: PipelineResult
    events: list[EventRow] = field(default_factory=list)
    tracks: list[TrackSummary] = field(default_factory=list)


def camera_id_for(path: str) -> str:
    stem = Path(path).stem.lower()
    slug = re.sub(r"[^a-z0-9_-]+", "-", stem).strip("-_")[:64]
    return slug or "video"


def parse_start_time(text: str, tz: Any) -> datetime:
    """'2026-12-03T02:00', '2026-12-03 02:00:00+00:00' or just '02:00' (today, store time)."""
    try:
        t = time.fromisoformat(text)
        return datetime.combine(datetime.now(tz).date(), t, tzinfo=t.tzinfo or tz)
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"--start-time '{text}' is not a time (HH:MM) or ISO date-time") from None
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=tz)


#: Demuxers of pictures rather than videos; FFmpeg's single-image readers are also all ``*_pipe``.
STILL_FORMATS = frozenset({"image2", "gif"})


def probe_duration(video: str) -> float | None:
    """Length of a video file in seconds (None for live streams or unknown); raises SourceError
    with one clear line when the file is missing or not a video."""
    import av

    from gemwatch.sources.video import SourceError, describe_av_error

    if video.startswith("/dev/"):
        return None
    if "://" in video:
        _probe_stream(video)
        return None
    if not Path(video).exists():
        read_as = "" if Path(video).is_absolute() else f" (read as {Path(video).absolute()})"
        raise SourceError(f"cannot open {video}: no such file{read_as}")
    try:
        with av.open(video) as container:
            if not container.streams.video:
                raise SourceError(f"{video}: no video stream in this file")
            if container.format.name in STILL_FORMATS or container.format.name.endswith("_pipe"):
                raise SourceError(
                    f"{video}: a still picture ({container.format.name}), not a video; a zone's "
                    "picture goes in the config (reference_image), a video to analyse here"
                )
            if container.duration is not None:
                return float(container.duration) / 1_000_000
            s = container.streams.video[0]
            if s.duration is not None and s.time_base is not None:
                return float(s.duration * s.time_base)
    except av.FFmpegError as exc:
        what = describe_av_error(exc)
        if isinstance(exc, (av.error.InvalidDataError, av.error.EOFError)):
            what += " (truncated, or not a video file)"
        raise SourceError(f"cannot open {video}: {what}") from None
    return None


def _probe_stream(url: str, timeout_s: float = 5.0) -> None:
    """Open a stream once so an unreachable camera is one clear error, not a silent retry loop."""
    import av

    from gemwatch.sources.video import SourceError, redact_url

    options = {"timeout": str(int(timeout_s * 1_000_000)), "rw_timeout": str(int(timeout_s * 1_000_000))}
    if url.startswith(("rtsp://", "rtsps://")):
        options["rtsp_transport"] = "tcp"
    try:
        with av.open(url, options=options, timeout=timeout_s):
            return
    except (av.FFmpegError, OSError) as exc:
        raise SourceError(f"cannot open {redact_url(url)}: {exc}") from None


def camera_for(cfg: GemwatchConfig, video: str) -> Camera | None:
    """The configured camera whose url is ``video``: the same string, or the same file however
    the path is written (relative to another directory, ``./``, a symlink)."""
    for cam in cfg.cameras:
        if cam.url == video:
            return cam
    if "://" in video:
        return None
    target = Path(video).resolve()
    for cam in cfg.cameras:
        if "://" not in cam.url and Path(cam.url).resolve() == target:
            return cam
    return None


def analyze(
    cfg: GemwatchConfig,
    video: str,
    *,
    zones: list[Zone] | None = None,
    start_time: datetime | None = None,
    fps: float | None = None,
    on_frame: Callable[[Frame, Observation], None] | None = None,
    extra_sinks: tuple[Any, ...] = (),
    alerts: bool = True,
    duration: float | None = None,
) -> AnalysisReport:
    """Run the pipeline over ``video`` and return what was stored.

    The run is recorded in the ``runs`` table: ``done``; ``truncated`` (with the message) when
    the file stops decoding well before its ``duration`` (from :func:`probe_duration`), the
    events found before that kept; ``error`` (with the message) when the source fails or an
    exception ends the analysis (re-raised); ``stopped`` on Ctrl-C.

    ``alerts=False`` (``gemwatch analyze --no-alerts``, ``gemwatch demo``) builds no alert
    dispatcher at all, so replayed footage can never page anyone or queue outbox rows.

    The camera comes from the config when one has this url (its zones apply), else a new one
    named after the file; ``zones`` replaces the camera's zones.
    """
    camera = camera_for(cfg, video)
    if camera is None:
        camera = Camera(id=camera_id_for(video), name=Path(video).name, url=video)
        if cfg.cameras and zones is None:
            log.warning(
                "no camera in the config has url %s: analysing without its zones "
                "(set that camera's url to this file, or pass --zones)",
                video,
            )
    updates: dict[str, Any] = {}
    if zones is not None:
        updates["zones"] = zones
    if fps is not None:
        updates["fps"] = fps
    if updates:
        camera = camera.model_copy(update=updates)
    store = EventStore(cfg.storage.resolved_database_url(), cfg.store.tz)
    run_id = uuid7()
    from gemwatch.alerts.dispatcher import from_config as alert_dispatcher

    dispatcher = alert_dispatcher(cfg, store.engine) if alerts else None  # None without routes
    try:
        store.start_run(run_id, "analyze", [video])
        detector = build_detector(cfg.perception.detector)
        pose = build_pose(cfg.perception.pose) if cfg.perception.pose is not None else None
        from gemwatch.watchlist.runtime import hit_sink

        hits = hit_sink(cfg, store.engine)  # None unless face matching is on
        from gemwatch.events.compliance import ComplianceSink

        sink = FanoutSink(
            StoreSink(store, run_id),
            ComplianceSink(store.engine, cfg.store.tz),  # showing sessions, protocol violations
            *([hits] if hits else []),
            *([dispatcher] if dispatcher else []),
            *extra_sinks,
        )
        pipeline = CameraPipeline(
            cfg, camera, sink, detector=detector, pose=pose, start_time=start_time, on_frame=on_frame
        )
        result = pipeline.run()
        status = "error" if result.error else "done"
        if result.error is None and (cut := truncation_error(video, result, duration)):
            result.error, status = cut, "truncated"
        store.end_run(run_id, status, result.error)
        event_rows = [
            row for row in store.events(camera_id=camera.id, limit=100000) if row.id in pipeline.event_ids
        ]
        return AnalysisReport(run_id, camera, result, event_rows, store.tracks(run_id))
    except BaseException as exc:
        _end_failed_run(store, run_id, exc)
        raise
    finally:
        if dispatcher is not None:
            dispatcher.close(drain_s=ALERT_DRAIN_S)
        store.close()


def truncation_error(video: str, result: PipelineResult, duration: float | None) -> str | None:
    """The message for a file that stopped decoding, without an error, well before the
    ``duration`` its container states (truncated or corrupt); None when it played through."""
    if not duration or not result.frames or result.media_s >= duration - max(2.0, 0.1 * duration):
        return None
    return (
        f"{video}: the video stops at {result.media_s:.1f} s of its {duration:.1f} s "
        "(truncated or corrupt file); events found before that are stored"
    )


def _end_failed_run(store: EventStore, run_id: str, exc: BaseException) -> None:
    """Record how an analysis ended when an exception ended it; never hides that exception."""
    if isinstance(exc, KeyboardInterrupt):
        status, error = "stopped", None
    else:
        status, error = "error", (str(exc) or exc.__class__.__name__)
    try:
        store.end_run(run_id, status, error)
    except Exception:  # the database may be what failed; the original error is what matters
        log.warning("could not record the end of run %s", run_id, exc_info=True)
