"""Live pictures for the web console, written by the camera process only while someone watches.

The web server (node main process) and the camera processes share nothing but the data
directory, so the hand-over is two kinds of small files under ``data_dir/live``:

* a **viewer marker** ``<camera>.watch`` (``<camera>.watch-raw`` for the zone editor's plain
  picture) whose modification time the web server refreshes on every live request;
* the **latest picture** ``<camera>.jpg`` (``<camera>.raw.jpg``), replaced atomically by the
  camera process at most ``max_fps`` times a second while its marker is fresh.

When nobody watches, a camera pays one ``stat`` of the marker per second and nothing else: no
drawing, no JPEG encoding, no disk writes. Nothing here imports FastAPI.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import cv2
import numpy as np

from gemwatch.config.models import Zone
from gemwatch.events.snapshot import ROLE_COLOURS, write_jpeg
from gemwatch.types import Event, Frame, Observation, Role

if TYPE_CHECKING:
    from gemwatch.events.store import TrackSummary
    from gemwatch.sources.video import CameraStatus

MARKER_FRESH_S = 5.0
MARKER_CHECK_S = 1.0
RAW_FPS = 1.0
MAX_WIDTH = 960

ZONE_IDLE = (255, 200, 0)  # BGR: cyan-ish, nobody inside
ZONE_OCCUPIED = (0, 200, 255)  # amber, someone inside
ZONE_ALERT = (40, 40, 255)  # red, an open event in the zone
_FONT = cv2.FONT_HERSHEY_SIMPLEX


def live_dir(data_dir: Path) -> Path:
    return Path(data_dir) / "live"


def frame_path(data_dir: Path, camera_id: str, *, raw: bool = False) -> Path:
    return live_dir(data_dir) / f"{camera_id}{'.raw' if raw else ''}.jpg"


def marker_path(data_dir: Path, camera_id: str, *, raw: bool = False) -> Path:
    return live_dir(data_dir) / f"{camera_id}.watch{'-raw' if raw else ''}"


def mark_watched(data_dir: Path, camera_id: str, *, raw: bool = False) -> None:
    """Tell the camera that someone looks at it (web side; cheap enough for every request)."""
    path = marker_path(data_dir, camera_id, raw=raw)
    try:
        os.utime(path)
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()


def fresh_frame(data_dir: Path, camera_id: str, *, raw: bool = False, max_age_s: float = 10.0) -> Path | None:
    """The latest picture if it was written in the last ``max_age_s`` seconds."""
    path = frame_path(data_dir, camera_id, raw=raw)
    try:
        age = time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return None
    return path if age <= max_age_s else None


class OpenZones:
    """Which zones have an open event, learnt from the events a camera reports (sink wrapper).

    Wraps the camera's event sink so the live picture can paint a zone red while its event is
    open; forwards every call unchanged.
    """

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.open: dict[str, tuple[str | None, str]] = {}  # event id -> (zone id, type)

    def event(self, ev: Event) -> None:
        if ev.ended:
            self.open.pop(ev.id, None)
        else:
            self.open[ev.id] = (ev.zone_id, ev.type)
        self.inner.event(ev)

    def zones(self) -> dict[str, str]:
        """zone id -> event type of an open event there ('' key for whole-frame events)."""
        return {zone or "": kind for zone, kind in self.open.values()}

    def clip_ready(self, event_id: str, path: str) -> None:
        self.inner.clip_ready(event_id, path)

    def status(self, status: CameraStatus) -> None:
        self.inner.status(status)

    def tracks(self, camera_id: str, tracks: list[TrackSummary]) -> None:
        self.inner.tracks(camera_id, tracks)


def draw_live(
    image: np.ndarray,
    obs: Observation,
    zones: Sequence[Zone],
    alerts: Mapping[str, str],
    caption: str,
) -> tuple[np.ndarray, dict[str, Any]]:
    """The analysed picture with zones coloured by rule state, tracked people and a time caption,
    and the same facts as data (boxes in the returned picture's pixels).

    Zones are amber while someone stands in them and red while one of their events is open;
    each zone's tag says how many people are inside and which rule fired.
    """
    h, w = image.shape[:2]
    scale = min(1.0, MAX_WIDTH / w)
    out = cv2.resize(image, (round(w * scale), round(h * scale))) if scale < 1.0 else image.copy()
    oh, ow = out.shape[:2]
    font = max(0.4, max(oh, ow) / 1400)
    thick = max(1, round(max(oh, ow) / 500))
    overlay = out.copy()
    outlines = []
    info: dict[str, Any] = {"local": caption, "width": ow, "height": oh, "people": [], "zones": {}}
    for zone in zones:
        pts = np.array([[round(x * (ow - 1)), round(y * (oh - 1))] for x, y in zone.polygon], dtype=np.int32)
        inside = len(obs.zone_people.get(zone.id, ()))
        info["zones"][zone.id] = {"people": inside, "alert": alerts.get(zone.id)}
        colour = ZONE_ALERT if zone.id in alerts else ZONE_OCCUPIED if inside else ZONE_IDLE
        cv2.fillPoly(overlay, [pts], colour)
        tag = f"{zone.label} ({zone.kind.value}) {inside}p"
        if zone.id in alerts:
            tag += f" ! {alerts[zone.id]}"
        outlines.append((pts, colour, tag))
    if outlines:
        out = cv2.addWeighted(overlay, 0.22, out, 0.78, 0)
    for pts, colour, tag in outlines:
        cv2.polylines(out, [pts], True, colour, thick, cv2.LINE_AA)
        x, y = (int(v) for v in pts.min(axis=0))
        _tag(out, tag, (x + 2, y + 2), colour, font, thick, below=True)
    for person in obs.people:
        colour = ROLE_COLOURS.get(person.role, ROLE_COLOURS[Role.UNKNOWN])
        x1, y1, x2, y2 = (round(v * scale) for v in person.box)
        cv2.rectangle(out, (x1, y1), (x2, y2), colour, thick + 1)
        info["people"].append({"id": person.track_id, "box": [x1, y1, x2, y2], "colour": list(colour[::-1])})
        label = (
            f"#{person.track_id}"
            if person.role == Role.UNKNOWN
            else f"#{person.track_id} {person.role.value}"
        )
        _tag(out, label, (x1, y1 - 2), colour, font, thick)
    _tag(out, caption, (4, oh - 4), (30, 30, 30), font, thick)
    return out, info


def jpeg_with_info(image: np.ndarray, info: dict[str, Any], quality: int = 75) -> bytes:
    """JPEG bytes carrying ``info`` as JSON in a comment segment right after the start marker,
    so the picture and its description travel in one atomically replaced file."""
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError(f"cannot encode a {image.shape} image as JPEG")
    data = buf.tobytes()
    text = json.dumps(info, separators=(",", ":")).encode("utf-8")[:60000]
    return data[:2] + b"\xff\xfe" + (len(text) + 2).to_bytes(2, "big") + text + data[2:]


def read_info(data: bytes) -> dict[str, Any] | None:
    """The JSON written by :func:`jpeg_with_info`, or None."""
    if len(data) < 6 or data[:4] != b"\xff\xd8\xff\xfe":
        return None
    size = int.from_bytes(data[4:6], "big")
    try:
        value = json.loads(data[6 : 4 + size])
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.part")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _tag(
    image: np.ndarray,
    text: str,
    org: tuple[int, int],
    colour: tuple[int, int, int],
    font: float,
    thick: int,
    *,
    below: bool = False,
) -> None:
    (tw, th), base = cv2.getTextSize(text, _FONT, font, thick)
    x, y = org
    if below:
        y += th + base
    y = min(max(th + base, y), image.shape[0] - 1)
    x = min(max(0, x), max(0, image.shape[1] - tw - 2))
    cv2.rectangle(image, (x, y - th - base), (x + tw + 2, y + 1), colour, -1)
    luminance = 0.114 * colour[0] + 0.587 * colour[1] + 0.299 * colour[2]
    ink = (0, 0, 0) if luminance > 128 else (255, 255, 255)
    cv2.putText(image, text, (x + 1, y - base // 2), _FONT, font, ink, thick, cv2.LINE_AA)


class LiveWriter:
    """Camera-process side: call :meth:`on_frame` with every analysed frame.

    ``zones`` returns the camera's current zones (they change when the zone editor saves);
    ``alerts`` returns the zones with an open event. Both are only called while watched.
    """

    def __init__(
        self,
        data_dir: Path,
        camera_id: str,
        tz: ZoneInfo,
        *,
        max_fps: float = 4.0,
        zones: Callable[[], Iterable[Zone]] = lambda: (),
        alerts: Callable[[], Mapping[str, str]] = dict,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.camera_id = camera_id
        self.tz = tz
        self.period = 1.0 / max_fps
        self.zones = zones
        self.alerts = alerts
        self.clock = clock
        self._checked = -1e18
        self._watched = (False, False)
        self._last_write = (-1e18, -1e18)
        self.written = 0
        self.cost_s = 0.0  # CPU time spent drawing, encoding and writing pictures (benchmarks)

    def watched(self, now: float) -> tuple[bool, bool]:
        """(annotated wanted, raw wanted), re-read from the markers at most once a second."""
        if now - self._checked >= MARKER_CHECK_S:
            self._checked = now
            self._watched = (self._fresh(raw=False, now=now), self._fresh(raw=True, now=now))
        return self._watched

    def _fresh(self, *, raw: bool, now: float) -> bool:
        try:
            return now - marker_path(self.data_dir, self.camera_id, raw=raw).stat().st_mtime < MARKER_FRESH_S
        except FileNotFoundError:
            return False

    def on_frame(self, frame: Frame, obs: Observation) -> None:
        now = self.clock()
        annotated, raw = self.watched(now)
        if not (annotated or raw):
            return
        last_annotated, last_raw = self._last_write
        started = time.thread_time()
        if annotated and now - last_annotated >= self.period:
            caption = datetime.fromtimestamp(frame.ts, self.tz).strftime("%Y-%m-%d %H:%M:%S %Z")
            image, info = draw_live(frame.image, obs, list(self.zones()), self.alerts(), caption)
            info["ts"] = frame.ts
            _write_atomic(frame_path(self.data_dir, self.camera_id), jpeg_with_info(image, info))
            last_annotated = now
            self.written += 1
        if raw and now - last_raw >= 1.0 / RAW_FPS:
            write_jpeg(frame.image, frame_path(self.data_dir, self.camera_id, raw=True), quality=85)
            last_raw = now
        self._last_write = (last_annotated, last_raw)
        self.cost_s += time.thread_time() - started
