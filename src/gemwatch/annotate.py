"""Write analysed frames with people, track ids and zones drawn, for checking by eye."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from gemwatch.events.snapshot import draw_snapshot
from gemwatch.types import Frame, Observation


class AnnotatedWriter:
    """H.264 (or MPEG-4 Part 2 where libx264 is missing) at the analysis frame rate."""

    def __init__(self, path: Path, fps: float, zones: list[tuple[str, Any]] | None = None) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fps = fps
        self.zones = zones or []
        self._container: Any = av.open(str(self.path), mode="w")
        self._stream: Any = None
        self._t0: float | None = None

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
        image = draw_snapshot(frame.image, obs.people, self.zones, None, f"t={frame.pts:.1f}s")
        image = image[: self._stream.height, : self._stream.width]
        vf = av.VideoFrame.from_ndarray(image, format="bgr24")
        vf.pts = round((frame.pts - self._t0) * 1000)
        vf.time_base = Fraction(1, 1000)
        for packet in self._stream.encode(vf):
            self._container.mux(packet)

    def close(self) -> None:
        if self._stream is not None:
            for packet in self._stream.encode():
                self._container.mux(packet)
        self._container.close()
