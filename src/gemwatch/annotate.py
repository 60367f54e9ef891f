"""Write analysed frames with people, track ids and zones drawn, for checking by eye.

The writer is also an event sink: a zone with an event in progress (from when it was reported
until its final update, ``Event.ended``, and ``HOLD_S`` after, so a one-instant event stays
visible) is drawn in red and the event types are written in the banner, so a reviewer sees
what fired where and when. Frames are written as they are analysed, so a zone turns red when
the event is reported, not at its (earlier) start.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from gemwatch.events.snapshot import draw_snapshot
from gemwatch.types import Event, Frame, Observation

#: Seconds a zone stays highlighted after its event ended (instant events would blink unseen).
HOLD_S = 2.0


class AnnotateError(ValueError):
    """The annotated video cannot be written where it was asked for (one line naming it)."""


def _why(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc)


class AnnotatedWriter:
    """H.264 (or MPEG-4 Part 2 where libx264 is missing) at the analysis frame rate."""

    def __init__(self, path: Path, fps: float, zones: list[tuple[str, Any]] | None = None) -> None:
        self.path = Path(path)
        self.fps = fps
        self.zones = zones or []
        folder = self.path.parent
        if folder.exists() and not folder.is_dir():
            raise AnnotateError(f"--annotate {path}: cannot write there ({folder} is not a folder)")
        try:
            folder.mkdir(parents=True, exist_ok=True)
            # FFmpeg opens an output file only when the first frame is written: find out now,
            # before minutes of analysis, whether it can be written at all
            with open(self.path, "wb"):
                pass
            self._container: Any = av.open(str(self.path), mode="w")
        except (OSError, ValueError, av.FFmpegError) as exc:
            if self.path.is_file() and self.path.stat().st_size == 0:
                self.path.unlink()  # the probe's empty file (an unknown extension)
            raise AnnotateError(f"--annotate {path}: cannot write there ({_why(exc)})") from None
        self._stream: Any = None
        self._t0: float | None = None
        self._events: dict[str, Event] = {}  # id → latest report, for highlighting

    def _open_stream(self, width: int, height: int) -> None:
        rate = Fraction(self.fps).limit_denominator(1000)
        try:
            stream = self._container.add_stream("libx264", rate=rate)
            stream.options = {"preset": "veryfast", "crf": "26"}
        except (av.FFmpegError, ValueError):
            stream = self._container.add_stream("mpeg4", rate=rate)
        stream.width = width - width % 2
        stream.height = height - height % 2
        stream.pix_fmt = "yuv420p"
        stream.time_base = Fraction(1, 1000)
        self._stream = stream

    def write(self, frame: Frame, obs: Observation) -> None:
        if self._stream is None:
            self._open_stream(frame.width, frame.height)
        if self._t0 is None:
            self._t0 = frame.pts
        active = self.active(obs.ts)
        banner = f"t={frame.pts:.1f}s" + "".join(f"  {ev.type}@{ev.zone_id}" for ev in active)
        lit = {ev.zone_id for ev in active if ev.zone_id}
        image = draw_snapshot(frame.image, obs.people, self.zones, lit, banner)
        image = image[: self._stream.height, : self._stream.width]
        vf = av.VideoFrame.from_ndarray(image, format="bgr24")
        vf.pts = round((frame.pts - self._t0) * 1000)
        vf.time_base = Fraction(1, 1000)
        for packet in self._stream.encode(vf):
            self._container.mux(packet)

    def event(self, ev: Event) -> None:
        """Event sink: remember the latest report of each event (its start and, once ended, end)."""
        if ev.zone_id:
            self._events[ev.id] = ev

    def active(self, ts: float) -> list[Event]:
        """Events in progress at ``ts`` (reported by then and not ended, or ended less than
        ``HOLD_S`` before), oldest first. An open event's ``end_ts`` is only how far it was
        known at its last update, not an end."""
        out = []
        for ev in self._events.values():
            end = ev.end_ts if ev.ended and ev.end_ts is not None else float("inf")
            if ev.start_ts <= ts <= end + HOLD_S:
                out.append(ev)
        return sorted(out, key=lambda e: e.start_ts)

    def close(self) -> None:
        try:
            if self._stream is not None:
                for packet in self._stream.encode():
                    self._container.mux(packet)
            self._container.close()
        except (OSError, av.FFmpegError) as exc:  # the disk filled up meanwhile
            raise AnnotateError(f"--annotate {self.path}: could not finish writing ({_why(exc)})") from None
