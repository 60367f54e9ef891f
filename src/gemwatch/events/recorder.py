"""Event clips: remux the camera's own encoded packets around a trigger into a file.

No re-encoding: a clip costs a copy of a few seconds of compressed video, keeps the camera's
quality and leaves the CPU to perception. A clip covers ``trigger − pre_roll`` to
``trigger + post_roll``, grows with :meth:`ClipRecorder.extend` while its event stays open (up
to ``max_clip_s``) and starts on the keyframe at or before its start, so it may begin up to one
keyframe interval early.

Container: MP4 with ``+faststart`` (the index up front, so a browser plays it while it
downloads) whenever MP4 can hold the codec (H.264, H.265, AV1, VP9, MPEG-4, MJPEG); WebM for
VP8; Matroska (``.mkv``) for anything else, e.g. the MS-MPEG-4 v3 in OpenCV's ``vtest.avi``.
Those fallbacks are remuxed too, never re-encoded, so they play in ffprobe/ffplay/VLC but not
necessarily in a browser. A clip's final path is the one :meth:`ClipRecorder.poll` returns;
:meth:`ClipRecorder.request` can only guess the suffix before the first packet is seen.
Files are written under a hidden temporary name and renamed into place, so a reader never
sees half a clip.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import av.error

from gemwatch.sources.packets import PacketRing, RingPacket

log = logging.getLogger(__name__)

# (format name, suffix, muxer options), tried in order until one accepts the codec.
_CONTAINERS: tuple[tuple[str, str, dict[str, str]], ...] = (
    ("mp4", ".mp4", {"movflags": "+faststart"}),
    ("webm", ".webm", {}),
    ("matroska", ".mkv", {}),
)
_MP4_CODECS = frozenset({"h264", "hevc", "av1", "vp9", "mpeg4", "mjpeg"})
_WEBM_CODECS = frozenset({"vp8", "vp9", "av1"})
_REMEMBER_DONE = 512


def suffix_for(codec_name: str | None) -> str:
    """The clip suffix for a codec (``.mp4`` when unknown yet)."""
    if codec_name is None or codec_name in _MP4_CODECS:
        return ".mp4"
    if codec_name in _WEBM_CODECS:
        return ".webm"
    return ".mkv"


def _safe_name(event_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", event_id) or "clip"


def write_clip(
    packets: Sequence[RingPacket], path: Path, *, end_pts: float | None = None, rotation: int = 0
) -> Path:
    """Remux ``packets`` (decode order, starting on a keyframe) into a clip near ``path``.

    Packets from different stream sessions (a reconnect in the middle) cannot share one
    output stream, so only the session with the most packets in the clip is used. Only
    packets decoded by ``end_pts`` are kept. Timestamps are rebased so the first picture shows
    at 0. Returns the written path, whose suffix follows the container chosen for the codec.
    Raises ``ValueError`` when there is nothing to write and ``av.error.FFmpegError``/``OSError``
    when writing fails (the temp file is removed).
    """
    if end_pts is not None:
        packets = [p for p in packets if p.dts_s <= end_pts + 1e-6]
    segments: list[list[RingPacket]] = []
    for packet in packets:
        if not segments or packet.params is not segments[-1][0].params:
            segments.append([])
        segments[-1].append(packet)
    if not segments:
        raise ValueError("no packets to write")
    segment = max(segments, key=len)
    if not segment[0].keyframe:
        raise ValueError("a clip must start on a keyframe")
    params = segment[0].params
    t0 = segment[0].pts_s
    # Pictures shown before the first keyframe belong to an open GOP: they reference the
    # previous GOP, which the clip does not have.
    chosen = [p for p in segment if p.pts_s >= t0 - 1e-6]
    tb: Fraction = params.time_base
    path.parent.mkdir(parents=True, exist_ok=True)
    with params.open_template() as template:
        tmpl_stream = template.streams.video[0]
        last_error: Exception | None = None
        for fmt, suffix, options in _CONTAINERS:
            final = path.with_suffix(suffix)
            tmp = final.with_name(f".{final.name}.part")
            try:
                out = av.open(str(tmp), "w", format=fmt, options=options)
            except (av.error.FFmpegError, OSError) as exc:
                raise OSError(f"cannot create {tmp}: {exc}") from exc
            try:
                try:
                    stream = out.add_stream_from_template(tmpl_stream, opaque=True)
                except ValueError as exc:  # this container cannot hold the codec
                    last_error = exc
                    out.close()
                    tmp.unlink(missing_ok=True)
                    continue
                stream.time_base = tb
                if rotation % 360:
                    stream.set_display_rotation(rotation)
                _mux_all(out, stream, chosen, t0, tb)
                out.close()
            except BaseException:
                try:
                    out.close()  # may fail again on a full disk; the partial file goes regardless
                except Exception:
                    pass
                finally:
                    tmp.unlink(missing_ok=True)
                raise
            os.replace(tmp, final)
            return final
    raise ValueError(f"no container accepts codec {params.codec_name!r}: {last_error}")


def _mux_all(
    out: av.container.OutputContainer,
    stream: av.stream.Stream,
    packets: Sequence[RingPacket],
    t0: float,
    tb: Fraction,
) -> None:
    """Mux ``packets`` with presentation times rebased to ``t0`` and decode times rebuilt.

    Decode times come from the presentation times, not from the demuxer: live demuxers leave
    some unset or guessed while their reorder buffer fills. Sorted presentation times, shifted
    back by the largest reordering, are strictly increasing and never after a packet's own
    presentation time, which is all a muxer asks (ffmpeg's muxer does the same internally).
    """
    pts = [round((rp.pts_s - t0) / tb) for rp in packets]
    order = sorted(range(len(pts)), key=pts.__getitem__)
    for prev, cur in itertools.pairwise(order):
        if pts[cur] <= pts[prev]:
            pts[cur] = pts[prev] + 1  # duplicate times (estimated ones): keep them distinct
    ranked = [pts[i] for i in order]
    shift = max(ranked[i] - pts[i] for i in range(len(pts)))
    for i, rp in enumerate(packets):
        packet = av.Packet(rp.data)
        packet.pts = pts[i]
        packet.dts = ranked[i] - shift
        packet.duration = rp.duration or 0
        packet.is_keyframe = rp.keyframe
        packet.time_base = tb
        packet.stream = stream
        out.mux(packet)


@dataclass(slots=True)
class _Pending:
    event_id: str
    path: Path
    start_pts: float
    end_pts: float
    limit_pts: float
    cursor: int
    packets: list[RingPacket] = field(default_factory=list)


class ClipRecorder:
    """Collects packets for pending event clips from a camera's :class:`PacketRing` and writes them.

    Call :meth:`request` when an event starts, :meth:`extend` while it goes on, :meth:`poll`
    with every analysed frame's pts (it writes clips whose post-roll has arrived) and
    :meth:`flush` at the end of a file or at shutdown. Each pending clip keeps its own list of
    packets, so the ring only needs to hold the pre-roll plus the time between polls.
    Not thread-safe: call it from the camera's pipeline thread.
    """

    def __init__(
        self,
        camera_id: str,
        ring: PacketRing,
        clips_dir: Path,
        *,
        pre_roll_s: float = 5.0,
        post_roll_s: float = 5.0,
        max_clip_s: float = 120.0,
    ) -> None:
        self.camera_id = camera_id
        self.ring = ring
        self.clips_dir = Path(clips_dir)
        self.pre_roll_s = pre_roll_s
        self.post_roll_s = post_roll_s
        self.max_clip_s = max_clip_s
        self._pending: dict[str, _Pending] = {}
        self._done: OrderedDict[str, Path] = OrderedDict()

    @property
    def pending(self) -> list[str]:
        """Event ids whose clips are not written yet."""
        return list(self._pending)

    def request(self, event_id: str, trigger_pts: float, trigger_ts: float) -> Path:
        """Start a clip around ``trigger_pts`` (stream seconds) and return its expected path.

        ``trigger_ts`` is the same instant as wall-clock; it is logged and kept for callers
        that name files by time. Asking again for the same event returns the same path.
        """
        if event_id in self._pending:
            return self._pending[event_id].path
        if event_id in self._done:
            return self._done[event_id]
        start = trigger_pts - self.pre_roll_s
        packets, cursor = self.ring.snapshot_with_cursor(start)
        params = packets[0].params if packets else self.ring.params
        path = self.clips_dir / f"{_safe_name(event_id)}{suffix_for(params.codec_name if params else None)}"
        clip = _Pending(
            event_id=event_id,
            path=path,
            start_pts=start,
            end_pts=trigger_pts + min(self.post_roll_s, self.max_clip_s),
            limit_pts=start + self.max_clip_s,
            cursor=cursor,
        )
        clip.packets.extend(p for p in packets if p.dts_s <= clip.limit_pts)
        if packets and packets[0].pts_s > start + 0.5:
            log.info(
                "camera %r: clip %s starts %.1f s late (ring reaches back to %.1f s only)",
                self.camera_id,
                event_id,
                packets[0].pts_s - start,
                packets[0].pts_s,
            )
        log.debug(
            "camera %r: clip %s requested at pts %.2f (ts %.3f)",
            self.camera_id,
            event_id,
            trigger_pts,
            trigger_ts,
        )
        self._pending[event_id] = clip
        return path

    def extend(self, event_id: str, end_pts: float) -> None:
        """Keep recording until ``end_pts`` + post-roll (capped at ``max_clip_s`` in all)."""
        clip = self._pending.get(event_id)
        if clip is None:
            if event_id in self._done:
                log.debug("camera %r: clip %s already written; not extended", self.camera_id, event_id)
            return
        clip.end_pts = min(max(clip.end_pts, end_pts + self.post_roll_s), clip.limit_pts)

    def poll(self, current_pts: float) -> list[tuple[str, Path]]:
        """Collect new packets; write the clips whose end is at or before ``current_pts``."""
        self._collect()
        due = [c for c in self._pending.values() if c.end_pts <= current_pts]
        return self._write(due)

    def flush(self) -> list[tuple[str, Path]]:
        """Write every pending clip with what has arrived so far (end of file, shutdown)."""
        self._collect()
        return self._write(list(self._pending.values()))

    def _collect(self) -> None:
        for clip in self._pending.values():
            if clip.packets and clip.packets[-1].dts_s > clip.limit_pts:
                continue
            before = clip.cursor
            first = self.ring.first_seq
            new, clip.cursor = self.ring.since(before)
            if first > before + 1 and clip.packets:
                log.warning(
                    "camera %r: clip %s lost packets (ring overran between polls)",
                    self.camera_id,
                    clip.event_id,
                )
            if not clip.packets:
                # Nothing yet (ring was empty at request time): start at the first keyframe.
                while new and not new[0].keyframe:
                    new.pop(0)
            clip.packets.extend(p for p in new if p.dts_s <= clip.limit_pts)

    def _write(self, clips: list[_Pending]) -> list[tuple[str, Path]]:
        written: list[tuple[str, Path]] = []
        for clip in clips:
            del self._pending[clip.event_id]
            if not clip.packets:
                log.warning("camera %r: no video for clip %s; none written", self.camera_id, clip.event_id)
                continue
            try:
                path = write_clip(
                    clip.packets, clip.path, end_pts=clip.end_pts, rotation=self.ring.display_rotation
                )
            except (ValueError, OSError, av.error.FFmpegError) as exc:
                log.error("camera %r: clip %s not written: %s", self.camera_id, clip.event_id, exc)
                continue
            self._done[clip.event_id] = path
            while len(self._done) > _REMEMBER_DONE:
                self._done.popitem(last=False)
            written.append((clip.event_id, path))
        return written
