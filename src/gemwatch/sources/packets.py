"""The encoded-packet ring: the last few seconds of one camera's compressed video, for clips.

The decode thread copies every demuxed video packet here; the clip recorder reads them back
and remuxes them into a file without re-encoding, so an event clip costs almost no CPU and
keeps the camera's own quality. Times are stream seconds (``pts_s``/``dts_s``, the same
clock as :attr:`gemwatch.types.Frame.pts`); the raw stream ticks and time base are kept too
because the muxer needs them.

The ring trims whole groups of pictures (GOPs): it always starts on a keyframe, since packets
before the first keyframe cannot be decoded by whoever plays the clip.
"""

from __future__ import annotations

import io
import itertools
import threading
from collections import deque
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING

import av

if TYPE_CHECKING:
    from av.video.stream import VideoStream

# Container used to carry a stream's full codec parameters from the decoder to the muxer.
# NUT is FFmpeg's own format and stores any codec's parameters and extradata verbatim.
_TEMPLATE_FORMAT = "nut"


@dataclass(frozen=True, slots=True, eq=False)
class StreamParams:
    """What a muxer needs to create an output stream for these packets.

    ``template`` is a tiny NUT file holding this stream's codec parameters and one keyframe:
    PyAV can only copy the full parameters (extradata, colour, sample aspect, codec tag) from
    an opened stream, so the recorder opens this template and builds its output stream from
    it (:meth:`open_template`). One instance per opened session: a reconnect whose camera
    changed resolution or codec yields a new one, and packets say which they belong to.
    Compared by identity.
    """

    codec_name: str
    width: int
    height: int
    time_base: Fraction
    pix_fmt: str | None
    extradata: bytes | None
    average_rate: Fraction | None
    template: bytes

    @classmethod
    def capture(cls, stream: VideoStream, keyframe: av.Packet) -> StreamParams:
        """Record ``stream``'s parameters, using its first ``keyframe`` to make the template."""
        if stream.time_base is None:
            raise ValueError("stream has no time base")
        buf = io.BytesIO()
        with av.open(buf, "w", format=_TEMPLATE_FORMAT) as out:
            tmpl = out.add_stream_from_template(stream, opaque=True)
            tmpl.time_base = stream.time_base
            packet = av.Packet(bytes(keyframe))
            packet.pts = 0
            packet.dts = 0
            packet.is_keyframe = True
            packet.time_base = stream.time_base
            packet.stream = tmpl
            out.mux(packet)
        ctx = stream.codec_context
        return cls(
            codec_name=ctx.name,
            width=ctx.width,
            height=ctx.height,
            time_base=stream.time_base,
            pix_fmt=ctx.pix_fmt,
            extradata=ctx.extradata,
            average_rate=stream.average_rate,
            template=buf.getvalue(),
        )

    def open_template(self) -> av.container.InputContainer:
        """Open the template; its only stream can be passed to ``add_stream_from_template``."""
        container: av.container.InputContainer = av.open(
            io.BytesIO(self.template), "r", format=_TEMPLATE_FORMAT
        )
        return container


@dataclass(frozen=True, slots=True)
class RingPacket:
    """One encoded video packet, copied out of FFmpeg's buffers.

    ``pts``/``dts`` are in ``params.time_base`` ticks as the demuxer gave them (either may be
    ``None``); ``pts_s``/``dts_s`` are stream seconds on the source's continuous clock, the
    clock :attr:`Frame.pts` uses, and never ``None``.
    """

    data: bytes
    pts: int | None
    dts: int | None
    duration: int | None
    pts_s: float
    dts_s: float
    keyframe: bool
    params: StreamParams

    @property
    def time_base(self) -> Fraction:
        return self.params.time_base


class PacketRing:
    """A thread-safe ring of the last ``capacity_s`` seconds of encoded packets of one stream.

    One writer (the decode thread) calls :meth:`push`; readers call :meth:`snapshot` for a
    time range and :meth:`since` to follow new packets with a cursor. Every packet gets a
    sequence number (its cursor); numbers are contiguous, so a reader whose cursor fell off
    the back of the ring can tell it lost packets (:attr:`first_seq`).

    Memory is bounded twice: by time (whole GOPs older than ``capacity_s`` behind the newest
    packet are dropped, keeping the keyframe that starts the window) and by ``max_bytes``
    (oldest GOPs first; a single GOP larger than the cap empties the ring until the next
    keyframe, so a camera with a huge keyframe interval loses pre-roll, never memory).
    """

    def __init__(self, capacity_s: float = 10.0, max_bytes: int = 64 * 1024 * 1024) -> None:
        if capacity_s <= 0:
            raise ValueError("capacity_s must be positive")
        self.capacity_s = capacity_s
        self.max_bytes = max_bytes
        self.display_rotation = 0
        """Degrees counter-clockwise a player must turn the picture (phone clips); the source
        sets it, the recorder copies it into clips."""
        self._lock = threading.Lock()
        self._packets: deque[RingPacket] = deque()
        self._keys: deque[RingPacket] = deque()
        self._first_seq = 0
        self._nbytes = 0
        self._waiting_for_key = True

    def push(self, packet: RingPacket) -> None:
        """Append ``packet`` (decode order). Packets before a session's first keyframe are dropped."""
        with self._lock:
            newest = self._packets[-1] if self._packets else None
            if newest is not None and newest.params is not packet.params:
                self._waiting_for_key = True
            if self._waiting_for_key:
                if not packet.keyframe:
                    return
                self._waiting_for_key = False
            self._packets.append(packet)
            self._nbytes += len(packet.data)
            if packet.keyframe:
                self._keys.append(packet)
            self._trim(packet.dts_s - self.capacity_s)

    def _trim(self, cutoff_s: float) -> None:
        while len(self._keys) >= 2 and (self._keys[1].dts_s <= cutoff_s or self._nbytes > self.max_bytes):
            self._drop_first_gop()
        if self._nbytes > self.max_bytes:
            while self._packets:
                self._drop_front()
            self._keys.clear()
            self._waiting_for_key = True

    def _drop_first_gop(self) -> None:
        self._keys.popleft()
        nxt = self._keys[0]
        while self._packets and self._packets[0] is not nxt:
            self._drop_front()

    def _drop_front(self) -> None:
        gone = self._packets.popleft()
        self._nbytes -= len(gone.data)
        self._first_seq += 1

    def snapshot(self, start_pts: float, end_pts: float = float("inf")) -> list[RingPacket]:
        """Packets (decode order) from the keyframe at or before ``start_pts`` up to ``end_pts``.

        Starts at the oldest keyframe when the ring does not reach back to ``start_pts``. Ends
        at the last packet whose decode time is at most ``end_pts``, so every included packet
        has its reference pictures before it.
        """
        return self.snapshot_with_cursor(start_pts, end_pts)[0]

    def snapshot_with_cursor(
        self, start_pts: float, end_pts: float = float("inf")
    ) -> tuple[list[RingPacket], int]:
        """Like :meth:`snapshot`, plus the cursor of the last packet in the ring, atomically."""
        with self._lock:
            cursor = self._first_seq + len(self._packets) - 1
            start_key = None
            for key in self._keys:
                if key.pts_s <= start_pts + 1e-6 or start_key is None:
                    start_key = key
                else:
                    break
            if start_key is None:
                return [], cursor
            out: list[RingPacket] = []
            started = False
            for packet in self._packets:
                if not started:
                    if packet is not start_key:
                        continue
                    started = True
                if packet.dts_s > end_pts + 1e-6:
                    break
                out.append(packet)
            return out, cursor

    def since(self, cursor: int) -> tuple[list[RingPacket], int]:
        """Packets pushed after ``cursor`` and the new cursor (pass ``-1`` for everything).

        When the ring has already dropped some of them the list starts at the oldest packet
        still held; compare ``cursor + 1`` with :attr:`first_seq` beforehand to detect it.
        """
        with self._lock:
            skip = max(0, cursor + 1 - self._first_seq)
            last = self._first_seq + len(self._packets) - 1
            if skip >= len(self._packets):
                return [], max(cursor, last)
            return [self._packets[i] for i in range(skip, len(self._packets))], last

    def clear(self) -> None:
        """Forget every packet (the cursor keeps counting, so readers see a gap, not a rewind)."""
        with self._lock:
            while self._packets:
                self._drop_front()
            self._keys.clear()
            self._waiting_for_key = True

    @property
    def first_seq(self) -> int:
        """Sequence number of the oldest packet held (or of the next one when empty)."""
        with self._lock:
            return self._first_seq

    @property
    def cursor(self) -> int:
        """Sequence number of the newest packet held, ``-1`` before the first."""
        with self._lock:
            return self._first_seq + len(self._packets) - 1

    @property
    def newest_pts(self) -> float | None:
        with self._lock:
            # With B-frames the newest picture is not always the last packet in decode order.
            return max((p.pts_s for p in itertools.islice(reversed(self._packets), 8)), default=None)

    @property
    def oldest_pts(self) -> float | None:
        with self._lock:
            return self._keys[0].pts_s if self._keys else None

    @property
    def params(self) -> StreamParams | None:
        """Parameters of the newest packet's session."""
        with self._lock:
            return self._packets[-1].params if self._packets else None

    @property
    def nbytes(self) -> int:
        with self._lock:
            return self._nbytes

    def __len__(self) -> int:
        with self._lock:
            return len(self._packets)
