"""Evidence files for the browser: safe paths, browser-playable copies, multi-camera zip export.

Clips are remuxed, never re-encoded, by the recorder, so a camera whose codec browsers cannot
play (MS-MPEG-4 in OpenCV's ``vtest.avi``, MPEG-4 Part 2 from old DVRs) gets a Matroska clip.
For those the console makes a WebM (VP8) copy once, on first playback, next to the clip; the
original stays the evidence and is what downloads and exports contain.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import os
import threading
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path
from zoneinfo import ZoneInfo

import av

from gemwatch.events.schema import EventRow

log = logging.getLogger(__name__)

# Codecs Chromium and Firefox play in these containers without extra licences or hardware.
_PLAYABLE = {".mp4": {"h264", "vp9", "av1"}, ".webm": {"vp8", "vp9", "av1"}}
_MEDIA_TYPES = {".mp4": "video/mp4", ".webm": "video/webm", ".mkv": "video/x-matroska", ".jpg": "image/jpeg"}
_transcode_locks: dict[Path, threading.Lock] = {}
_locks_guard = threading.Lock()


def media_type(path: Path) -> str:
    return _MEDIA_TYPES.get(path.suffix.lower(), "application/octet-stream")


def inside(data_dir: Path, stored: str | None) -> Path | None:
    """The stored evidence path if it is an existing file under ``data_dir``; else None.

    Paths come from the database, never from the URL, but a row is only trusted as far as the
    data directory: symlinks and ``..`` are resolved before the check.
    """
    if not stored:
        return None
    root = Path(data_dir).resolve()
    path = Path(stored)
    if not path.is_absolute():
        path = Path.cwd() / path
    try:
        real = path.resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    if not real.is_file() or not real.is_relative_to(root):
        return None
    return real


def video_codec(path: Path) -> str | None:
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                return None
            return str(container.streams.video[0].codec_context.name)
    except (av.error.FFmpegError, OSError):
        return None


def browser_playable(path: Path) -> bool:
    codecs = _PLAYABLE.get(path.suffix.lower())
    return codecs is not None and video_codec(path) in codecs


def web_copy_path(clip: Path) -> Path:
    return clip.with_name(f"{clip.stem}.web.webm")


def web_copy(clip: Path) -> Path:
    """A browser-playable WebM of ``clip`` (made once, then reused); raises ValueError when the
    clip cannot be decoded."""
    target = web_copy_path(clip)
    with _locks_guard:
        lock = _transcode_locks.setdefault(target, threading.Lock())
    with lock:
        if target.exists() and target.stat().st_mtime >= clip.stat().st_mtime:
            return target
        tmp = target.with_name(f".{target.name}.part")
        try:
            _transcode_vp8(clip, tmp)
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
    return target


def _transcode_vp8(src: Path, dst: Path) -> None:
    try:
        with av.open(str(src)) as inp, av.open(str(dst), "w", format="webm") as out:
            vin = inp.streams.video[0]
            rate = vin.average_rate or vin.guessed_rate or Fraction(10)
            vout = out.add_stream("libvpx", rate=rate)
            vout.width = vin.codec_context.width - vin.codec_context.width % 2
            vout.height = vin.codec_context.height - vin.codec_context.height % 2
            vout.pix_fmt = "yuv420p"
            vout.time_base = Fraction(1, 1000)
            vout.options = {"deadline": "realtime", "cpu-used": "8", "crf": "10", "b": "2M"}
            t0: float | None = None
            last_ms = -1
            for frame in inp.decode(vin):
                if frame.pts is None or frame.time_base is None:
                    continue
                t = float(frame.pts * frame.time_base)
                t0 = t if t0 is None else t0
                ms = max(last_ms + 1, round((t - t0) * 1000))
                last_ms = ms
                img = frame.reformat(width=vout.width, height=vout.height, format="yuv420p")
                img.pts = ms
                img.time_base = Fraction(1, 1000)
                for packet in vout.encode(img):
                    out.mux(packet)
            for packet in vout.encode():
                out.mux(packet)
    except (av.error.FFmpegError, IndexError) as exc:
        raise ValueError(f"cannot convert {src.name} for the browser: {exc}") from None


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@dataclass(frozen=True, slots=True)
class ExportItem:
    row: EventRow
    clip: Path | None
    snapshot: Path | None


MANIFEST_FIELDS = (
    "event_id",
    "camera",
    "type",
    "severity",
    "zone",
    "start_local",
    "end_local",
    "start_utc",
    "description",
    "file",
    "sha256",
)


def write_export(
    items: Iterable[ExportItem], out: Path, tz: ZoneInfo, *, exported_by: str, query: dict[str, str]
) -> int:
    """Write a zip: ``<camera>/<local time>_<type>_<id>.<ext>`` for each clip and snapshot, and
    a manifest (CSV and JSON) with each file's SHA-256 so a recipient can check nothing changed.
    Returns how many files went in. Videos are stored, not recompressed."""
    rows: list[dict[str, str]] = []
    n = 0
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as zf:
        for item in items:
            ev = item.row
            stamp = datetime.fromtimestamp(ev.start_ts, tz).strftime("%Y%m%d-%H%M%S%z")
            base = f"{ev.camera_id}/{stamp}_{ev.type}_{ev.id}"
            for path in (item.clip, item.snapshot):
                if path is None:
                    continue
                name = base + path.suffix.lower()
                zf.write(path, name)
                n += 1
                rows.append(
                    {
                        "event_id": ev.id,
                        "camera": ev.camera_id,
                        "type": ev.type,
                        "severity": ev.severity,
                        "zone": ev.zone_id or "",
                        "start_local": datetime.fromtimestamp(ev.start_ts, tz).isoformat(timespec="seconds"),
                        "end_local": ""
                        if ev.end_ts is None
                        else datetime.fromtimestamp(ev.end_ts, tz).isoformat(timespec="seconds"),
                        "start_utc": datetime.fromtimestamp(ev.start_ts, UTC).isoformat(timespec="seconds"),
                        "description": ev.description,
                        "file": name,
                        "sha256": file_sha256(path),
                    }
                )
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=MANIFEST_FIELDS)
        writer.writeheader()
        writer.writerows(rows)
        zf.writestr("manifest.csv", buf.getvalue())
        meta = {
            "exported_by": exported_by,
            "exported_at": datetime.now(tz).isoformat(timespec="seconds"),
            "timezone": str(tz),
            "query": query,
            "files": rows,
        }
        zf.writestr("manifest.json", json.dumps(meta, indent=2, ensure_ascii=False))
    return n
