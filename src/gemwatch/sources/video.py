"""Video sources: turn a camera URL or a file into upright, timestamped frames with PyAV.

Two pacing modes, picked from the URL:

* **file** — every frame is decoded (reference pictures need it), but only the frames that meet
  the analysis rate are converted to BGR arrays, chosen by presentation time so variable frame
  rate works. Runs as fast as the CPU allows, in the caller's thread.
* **live** (RTSP over TCP, HTTP/MJPEG, USB/V4L2) — a daemon thread decodes continuously and keeps
  only the latest picture, so a slow consumer never builds a backlog; :meth:`VideoSource.frames`
  hands out the latest one at the analysis rate. Errors and end-of-stream lead to reconnects
  with capped exponential backoff and jitter until :meth:`VideoSource.stop`.

Time is the stream's presentation time in seconds (``Frame.pts``, from zero at the first
picture, continuous across reconnects) and the same instant as wall-clock (``Frame.ts``).
When a ``PacketRing`` is given, every encoded video packet goes into it for clip recording.
"""

from __future__ import annotations

import logging
import random
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

import av
import av.error
import numpy as np
from av.video.reformatter import VideoReformatter

from gemwatch.sources.packets import PacketRing, RingPacket, StreamParams
from gemwatch.types import Frame

if TYPE_CHECKING:
    from av.container import InputContainer
    from av.video.frame import VideoFrame
    from av.video.stream import VideoStream

log = logging.getLogger(__name__)

_LIVE_SCHEMES = (
    "rtsp://",
    "rtsps://",
    "http://",
    "https://",
    "rtmp://",
    "rtmps://",
    "udp://",
    "srt://",
    "tcp://",
)
_USB_RE = re.compile(r"^usb:(\d+)$")
# Demuxers whose timestamps do not follow real time; live streams through them use arrival time.
_ARRIVAL_CLOCK_FORMATS = frozenset({"mpjpeg", "mjpeg", "jpeg_pipe", "image2pipe"})
# Decode errors in a row after which a file is called corrupt rather than merely damaged.
_MAX_BAD_PACKETS = 25
# A live stream whose timestamps jump by more than this is treated as restarted (new clock).
_LIVE_JUMP_S = 30.0
# Live wall-clock drift (camera clock versus ours) tolerated before re-anchoring ``ts``.
_LIVE_DRIFT_S = 2.0


class CameraState(StrEnum):
    """Where a camera stands. ``ended`` is the normal end of a file or a :meth:`VideoSource.stop`;
    ``failed``: stopped by a config problem (e.g. a zone picture of another scene), not restarted."""

    ONLINE = "online"
    RECONNECTING = "reconnecting"
    OFFLINE = "offline"
    ENDED = "ended"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class CameraStatus:
    """A state change, with the reason in words (``None`` when all is well) and its epoch time."""

    camera_id: str
    state: CameraState
    reason: str | None
    since: float


class SourceError(Exception):
    """A video cannot be read; the message is one line naming the camera and what went wrong.

    ``reason`` is the same line without the camera prefix (for :class:`CameraStatus`).
    """

    def __init__(self, reason: str, camera_id: str | None = None) -> None:
        super().__init__(reason if camera_id is None else f"camera {camera_id!r}: {reason}")
        self.reason = reason
        self.camera_id = camera_id


@dataclass(slots=True)
class SourceStats:
    """Where a source's time goes, for benchmarks: demux+decode of every frame, and the
    BGR conversion (plus rotation) of the analysed ones."""

    frames_decoded: int = 0
    frames_yielded: int = 0
    decode_s: float = 0.0
    convert_s: float = 0.0
    reconnects: int = 0
    bad_packets: int = 0

    @property
    def ms_per_yielded(self) -> float:
        """Decode plus conversion cost per analysed frame, in milliseconds."""
        return 1000.0 * (self.decode_s + self.convert_s) / max(1, self.frames_yielded)


def is_live_url(url: str) -> bool:
    """Network streams and capture devices are live; anything else is a file path."""
    lowered = url.lower()
    return (
        lowered.startswith(_LIVE_SCHEMES) or lowered.startswith("/dev/video") or bool(_USB_RE.match(lowered))
    )


def redact_url(url: str) -> str:
    """The URL with any password replaced, fit for logs and status lines."""
    return re.sub(r"(://[^:/@\s]+):[^@/\s]*@", r"\1:***@", url)


def describe_av_error(exc: BaseException) -> str:
    """FFmpeg's own words for an error, without PyAV's errno prefix and repeated file name."""
    if isinstance(exc, av.error.FFmpegError) and exc.strerror:
        return str(exc.strerror)
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


class _Pacer:
    """Chooses which frames to analyse: the first at or after each tick of a 1/fps grid.

    The grid is anchored at the first frame and advanced past the chosen frame's time, so a
    variable-rate or gappy stream keeps the requested spacing on average and never bursts.
    """

    def __init__(self, fps: float) -> None:
        self.period = 1.0 / fps if fps > 0 else 0.0
        self._next: float | None = None

    def take(self, t: float) -> bool:
        if self.period == 0.0:
            return True
        # A small tolerance so 0.2 s ticks are not missed by floating-point 0.19999…
        tol = self.period * 1e-3
        if self._next is None:
            self._next = t + self.period
            return True
        if t + tol < self._next:
            return False
        while self._next <= t + tol:
            self._next += self.period
        return True


class _Timeline:
    """Maps a session's raw stream seconds onto the source's continuous pts clock.

    Each (re)opened session starts at ``base``; its first timestamp (or the stream's declared
    start time) is the origin. Live sessions also survive timestamp jumps by rebasing.
    """

    def __init__(self) -> None:
        self._base = 0.0
        self._origin: float | None = None
        self._last = 0.0

    def begin(self, base: float, origin: float | None) -> None:
        self._base = base
        self._origin = origin

    def map(self, raw: float, *, guard_jumps: bool = False) -> float:
        if self._origin is None:
            # A session's first timestamp: after an outage the clock jumps ahead by the outage
            # (``base`` is wall time since the first open); it never runs backwards.
            self._base = max(self._base, self._last)
            self._origin = raw
            self._last = max(self._last, self._base)
            return self._base
        pts = raw - self._origin + self._base
        if guard_jumps and (pts < self._last - 1.0 or pts > self._last + _LIVE_JUMP_S):
            self._base, self._origin = self._last, raw
            pts = self._last
        self._last = max(self._last, pts)
        return pts

    def map_absolute(self, pts: float) -> float:
        """Record a time already on the continuous clock (arrival-time streams), kept monotonic."""
        self._last = max(self._last + 1e-6, pts)
        return self._last

    @property
    def last(self) -> float:
        return self._last


@dataclass(slots=True)
class _Latest:
    """The newest decoded live picture, still in FFmpeg's format (converted only if used)."""

    frame: VideoFrame
    pts: float
    ts: float
    seq: int


@dataclass(slots=True)
class _Session:
    """Per-open state for pushing packets into the ring."""

    stream: VideoStream
    params: StreamParams | None = None
    last_dts_s: float = float("-inf")
    last_pts_s: float | None = None
    no_clips: bool = False
    arrival_clock: bool = False
    frames: int = 0


class VideoSource:
    """One camera or file, read with PyAV. See the module docstring for the two modes.

    ``fps`` is the analysis rate (0 means every frame). ``start_time`` is the wall-clock time of
    the first picture (default: when the source opens). ``live`` overrides the guess from the
    URL. ``open_timeout_s``/``read_timeout_s`` bound every blocking network call, so a dead
    camera costs a reconnect, never a hang. A live camera failing for ``offline_after_s`` goes
    from ``reconnecting`` to ``offline`` (and keeps retrying).
    """

    def __init__(
        self,
        camera_id: str,
        url: str,
        fps: float,
        *,
        start_time: datetime | None = None,
        ring: PacketRing | None = None,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 30.0,
        open_timeout_s: float = 5.0,
        read_timeout_s: float = 5.0,
        offline_after_s: float = 30.0,
        live: bool | None = None,
    ) -> None:
        self.camera_id = camera_id
        self.url = url
        self.fps = fps
        self.start_time = start_time
        self.ring = ring
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = max(backoff_max_s, backoff_initial_s)
        self.open_timeout_s = open_timeout_s
        self.read_timeout_s = read_timeout_s
        self.offline_after_s = offline_after_s
        self.live = is_live_url(url) if live is None else live
        self.stats = SourceStats()
        self._stop = threading.Event()
        self._cond = threading.Condition(threading.RLock())
        self._latest: _Latest | None = None
        self._thread: threading.Thread | None = None
        self._callbacks: list[Callable[[CameraStatus], None]] = []
        self._status = CameraStatus(camera_id, CameraState.OFFLINE, "not started", time.time())
        self._timeline = _Timeline()
        self._wall0: float | None = None
        self._mono0: float | None = None
        self._opened_at = time.monotonic()
        self._reformatter = VideoReformatter()

    # ----------------------------------------------------------------------------- status

    @property
    def status(self) -> CameraStatus:
        return self._status

    def on_status(self, callback: Callable[[CameraStatus], None]) -> None:
        """Call ``callback(status)`` on every state change (from the decode thread for live)."""
        self._callbacks.append(callback)

    def _set_status(self, state: CameraState, reason: str | None = None) -> None:
        old = self._status
        if old.state == state and old.reason == reason:
            return
        self._status = CameraStatus(self.camera_id, state, reason, time.time())
        if state in (CameraState.RECONNECTING, CameraState.OFFLINE):
            log.warning("camera %r %s: %s", self.camera_id, state.value, reason)
        else:
            log.info("camera %r %s%s", self.camera_id, state.value, f": {reason}" if reason else "")
        for callback in list(self._callbacks):
            try:
                callback(self._status)
            except Exception:
                log.exception("status callback failed for camera %r", self.camera_id)

    def stop(self) -> None:
        """End :meth:`frames` promptly. Safe from another thread or a signal handler."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()

    # ----------------------------------------------------------------------------- opening

    def _open_args(self) -> tuple[str, str | None, dict[str, str]]:
        url = self.url
        usb = _USB_RE.match(url.lower())
        if usb:
            return f"/dev/video{usb.group(1)}", "v4l2", {}
        if url.startswith("/dev/video"):
            return url, "v4l2", {}
        if not self.live:
            return url, None, {}
        timeout_us = str(int(self.open_timeout_s * 1_000_000))
        lowered = url.lower()
        if lowered.startswith(("rtsp://", "rtsps://")):
            return url, None, {"rtsp_transport": "tcp", "timeout": timeout_us, "allowed_media_types": "video"}
        if lowered.startswith(("http://", "https://")):
            return url, None, {"timeout": timeout_us, "rw_timeout": timeout_us}
        return url, None, {"rw_timeout": timeout_us}

    def _open(self) -> InputContainer:
        url, fmt, options = self._open_args()
        where = redact_url(self.url)
        if not self.live and not Path(url).exists():
            raise SourceError(f"cannot open {where}: No such file or directory", self.camera_id)
        timeout = (self.open_timeout_s, self.read_timeout_s) if self.live else None
        started = self._opened_at = time.monotonic()
        try:
            container = av.open(url, format=fmt, options=options, timeout=timeout)
        except (av.error.FFmpegError, OSError) as exc:
            what = describe_av_error(exc)
            if self.live and time.monotonic() - started >= 0.9 * self.open_timeout_s:
                # PyAV's timeout aborts FFmpeg mid-read, whose own words then mislead.
                what = f"no answer within {self.open_timeout_s:g} s (timed out)"
            elif not self.live and isinstance(exc, (av.error.InvalidDataError, av.error.EOFError)):
                what += " (truncated, or not a video file)"
            raise SourceError(f"cannot open {where}: {what}", self.camera_id) from None
        if not container.streams.video:
            container.close()
            raise SourceError(f"{where} has no video stream", self.camera_id)
        return container

    def _begin_session(self, container: InputContainer) -> _Session:
        stream = container.streams.video[0]
        # HTTP/MJPEG demuxers invent timestamps (a frame counter at 25 fps, whatever the real
        # rate), so there the arrival time is the truth; decode each picture as it arrives.
        arrival = self.live and container.format.name in _ARRIVAL_CLOCK_FORMATS
        stream.thread_type = "SLICE" if arrival else "AUTO"
        # A live stream starts flowing when it is opened, and opening reads ahead to learn
        # the codec, so the first packet is as old as the open call: anchor the clock there.
        started = self._opened_at if self.live else time.monotonic()
        if self._wall0 is None:
            wall_started = time.time() - (time.monotonic() - started)
            self._wall0 = self.start_time.timestamp() if self.start_time is not None else wall_started
            self._mono0 = started
            base = 0.0
        else:
            base = started - (self._mono0 or 0.0)
        origin = None
        if not self.live and stream.start_time is not None and stream.time_base is not None:
            origin = float(stream.start_time * stream.time_base)
        self._timeline.begin(base, origin)
        return _Session(stream, arrival_clock=arrival)

    def _arrival_pts(self) -> float:
        """Seconds since the source first opened, on the same clock as a session's ``base``."""
        return self._timeline.map_absolute(time.monotonic() - (self._mono0 or 0.0))

    # ----------------------------------------------------------------------------- packets

    def _push(self, session: _Session, packet: av.Packet) -> None:
        """Copy one demuxed packet into the ring (no-op without a ring).

        A packet without timestamps (RTSP gives some while its reorder buffer fills) is placed
        one frame after the previous one; the first packets of a session without any are
        skipped, and the ring then starts at the next keyframe.
        """
        if self.ring is None or packet.size == 0:
            return
        tb = packet.time_base or session.stream.time_base
        if tb is None:
            return
        raw_pts, raw_dts = packet.pts, packet.dts
        raw_time = raw_pts if raw_pts is not None else raw_dts
        if raw_time is None and session.last_pts_s is None and not session.arrival_clock:
            return
        if session.params is None:
            if not packet.is_keyframe or session.no_clips:
                return
            try:
                session.params = StreamParams.capture(session.stream, packet)
            except (av.error.FFmpegError, ValueError) as exc:
                session.no_clips = True
                log.warning(
                    "camera %r: no clips from this stream: %s", self.camera_id, describe_av_error(exc)
                )
                return
        if session.arrival_clock:
            pts_s = self._arrival_pts()
            raw_dts = None
        elif raw_time is not None:
            pts_s = self._timeline.map(float(raw_time * tb), guard_jumps=self.live)
        else:
            pts_s = (session.last_pts_s or 0.0) + self._frame_step(session)
        dts_s = pts_s if raw_dts is None else self._timeline.map(float(raw_dts * tb))
        dts_s = max(dts_s, session.last_dts_s)
        session.last_dts_s = dts_s
        session.last_pts_s = pts_s
        self.ring.push(
            RingPacket(
                data=bytes(packet),
                pts=raw_pts,
                dts=raw_dts,
                duration=packet.duration,
                pts_s=pts_s,
                dts_s=dts_s,
                keyframe=packet.is_keyframe,
                params=session.params,
            )
        )

    @staticmethod
    def _frame_step(session: _Session) -> float:
        rate = session.stream.average_rate or session.stream.guessed_rate
        return float(1 / rate) if rate else 0.04

    def _frame_pts(self, session: _Session, vf: VideoFrame) -> float:
        if session.arrival_clock:
            return self._arrival_pts()
        t = vf.time
        if t is None:
            return self._timeline.last + self._frame_step(session)
        return self._timeline.map(float(t), guard_jumps=self.live)

    def _to_image(self, vf: VideoFrame) -> np.ndarray:
        """BGR pixels, turned upright when the stream carries a display rotation."""
        image: np.ndarray = self._reformatter.reformat(vf, format="bgr24").to_ndarray()
        rotation = int(getattr(vf, "rotation", 0) or 0)
        if rotation % 360:
            k = round(rotation / 90) % 4
            image = np.ascontiguousarray(np.rot90(image, k=k))
        if self.ring is not None:
            self.ring.display_rotation = rotation
        return image

    # ----------------------------------------------------------------------------- frames

    def frames(self) -> Iterator[Frame]:
        """Analysed frames until the file ends or :meth:`stop` (live: until :meth:`stop` only).

        Raises :class:`SourceError` when a file cannot be opened or turns out corrupt; live
        sources never raise from here, they report through :attr:`status` and reconnect.
        A stopped source stays stopped.
        """
        if self.live:
            return self._live_frames()
        return self._file_frames()

    def _file_frames(self) -> Iterator[Frame]:
        try:
            container = self._open()
        except SourceError as exc:
            self._set_status(CameraState.OFFLINE, exc.reason)
            raise
        session = self._begin_session(container)
        self._set_status(CameraState.ONLINE)
        pacer = _Pacer(self.fps)
        stats = self.stats
        index = 0
        last_pts = 0.0
        bad_in_row = 0
        wall0 = self._wall0 or 0.0
        try:
            packets = container.demux(session.stream)
            while not self._stop.is_set():
                t0 = time.perf_counter()
                try:
                    packet = next(packets)
                except StopIteration:
                    break
                except av.error.FFmpegError as exc:
                    raise SourceError(
                        f"corrupt or truncated video at {last_pts:.1f} s: {describe_av_error(exc)}",
                        self.camera_id,
                    ) from None
                self._push(session, packet)
                try:
                    decoded = session.stream.decode(packet)
                except av.error.FFmpegError as exc:
                    stats.bad_packets += 1
                    bad_in_row += 1
                    stats.decode_s += time.perf_counter() - t0
                    if bad_in_row > _MAX_BAD_PACKETS:
                        raise SourceError(
                            f"corrupt video at {last_pts:.1f} s: {bad_in_row} undecodable packets in a row "
                            f"({describe_av_error(exc)})",
                            self.camera_id,
                        ) from None
                    continue
                bad_in_row = 0
                stats.decode_s += time.perf_counter() - t0
                for vf in decoded:
                    stats.frames_decoded += 1
                    pts = self._frame_pts(session, vf)
                    last_pts = pts
                    if not pacer.take(pts):
                        continue
                    t1 = time.perf_counter()
                    image = self._to_image(vf)
                    stats.convert_s += time.perf_counter() - t1
                    stats.frames_yielded += 1
                    yield Frame(self.camera_id, wall0 + pts, pts, image, index, self.ring)
                    index += 1
        except SourceError as exc:
            self._set_status(CameraState.OFFLINE, exc.reason)
            raise
        except GeneratorExit:
            self._set_status(CameraState.ENDED, "closed by the consumer")
            raise
        else:
            self._set_status(CameraState.ENDED, "stopped" if self._stop.is_set() else "end of file")
        finally:
            container.close()

    # ----------------------------------------------------------------------------- live

    def _live_frames(self) -> Iterator[Frame]:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(
                target=self._live_loop, name=f"decode-{self.camera_id}", daemon=True
            )
            self._thread.start()
        period = 1.0 / self.fps if self.fps > 0 else 0.0
        next_due = time.monotonic()
        last_seq = -1
        index = 0
        try:
            while not self._stop.is_set():
                with self._cond:
                    while not self._stop.is_set() and (self._latest is None or self._latest.seq == last_seq):
                        self._cond.wait(0.5)
                wait = next_due - time.monotonic()
                if wait > 0 and self._stop.wait(wait):
                    break
                with self._cond:
                    latest = self._latest
                if self._stop.is_set() or latest is None:
                    break
                last_seq = latest.seq
                now = time.monotonic()
                next_due = max(next_due + period, now)
                t1 = time.perf_counter()
                image = self._to_image(latest.frame)
                self.stats.convert_s += time.perf_counter() - t1
                self.stats.frames_yielded += 1
                yield Frame(self.camera_id, latest.ts, latest.pts, image, index, self.ring)
                index += 1
        finally:
            self.stop()

    def _live_loop(self) -> None:
        backoff = self.backoff_initial_s
        failing_since: float | None = None
        while not self._stop.is_set():
            flowed = False
            try:
                container = self._open()
            except SourceError as exc:
                reason = exc.reason
            else:
                try:
                    flowed = self._live_session(container)
                    reason = "stream ended"
                except (av.error.ExitError, av.error.TimeoutError, TimeoutError):
                    reason = f"no data for {self.read_timeout_s:g} s (timed out)"
                except (av.error.FFmpegError, OSError, SourceError, ValueError) as exc:
                    reason = f"stream error: {describe_av_error(exc)}"
                finally:
                    container.close()
            if self._stop.is_set():
                break
            now = time.monotonic()
            if flowed:
                backoff = self.backoff_initial_s
                failing_since = now
            elif failing_since is None:
                failing_since = now
            offline = now - failing_since >= self.offline_after_s
            self._set_status(CameraState.OFFLINE if offline else CameraState.RECONNECTING, reason)
            self.stats.reconnects += 1
            delay = min(self.backoff_max_s, backoff * random.uniform(0.8, 1.2))
            if self._stop.wait(delay):
                break
            backoff = min(self.backoff_max_s, backoff * 2)
        self._set_status(CameraState.ENDED, "stopped")

    def _live_session(self, container: InputContainer) -> bool:
        """Decode until the stream fails or ends; True when at least one picture came through."""
        session = self._begin_session(container)
        stats = self.stats
        for packet in container.demux(session.stream):
            if self._stop.is_set():
                break
            t0 = time.perf_counter()
            self._push(session, packet)
            try:
                decoded = session.stream.decode(packet)
            except av.error.FFmpegError:
                stats.bad_packets += 1
                continue
            finally:
                stats.decode_s += time.perf_counter() - t0
            for vf in decoded:
                stats.frames_decoded += 1
                pts = self._frame_pts(session, vf)
                now = time.time()
                wall0 = self._wall0 or now
                if abs(wall0 + pts - now) > _LIVE_DRIFT_S:
                    wall0 = self._wall0 = now - pts
                with self._cond:
                    seq = self._latest.seq + 1 if self._latest is not None else 0
                    self._latest = _Latest(vf, pts, wall0 + pts, seq)
                    self._cond.notify_all()
                if session.frames == 0:
                    self._set_status(CameraState.ONLINE)
                session.frames += 1
        return session.frames > 0
