"""VideoSource over real PyAV decoding: generated clips in every container, real footage,
rotation flags, variable frame rate, damaged and missing files."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from conftest import data_file
from fixtures.clips import (
    CONTAINER_CODECS,
    arrow_points_up,
    box_time,
    draw_scene,
    truncate_copy,
    variable_rate_times,
    write_clip,
)
from gemwatch.events.recorder import ClipRecorder
from gemwatch.sources.packets import PacketRing
from gemwatch.sources.video import CameraState, SourceError, VideoSource, is_live_url, redact_url

START = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


def read_all(source: VideoSource) -> list:
    return list(source.frames())


@pytest.mark.parametrize("container", sorted(CONTAINER_CODECS))
def test_every_container_yields_timed_upright_frames(tmp_path: Path, container: str) -> None:
    spec = write_clip(tmp_path / f"clip.{container}", seconds=3.0, fps=10)
    statuses: list[CameraState] = []
    source = VideoSource("door", str(spec.path), 5.0, start_time=START)
    source.on_status(lambda s: statuses.append(s.state))
    frames = read_all(source)

    assert 14 <= len(frames) <= 15
    pts = np.array([f.pts for f in frames])
    assert pts[0] == pytest.approx(0.0, abs=1e-6)
    np.testing.assert_allclose(np.diff(pts), 0.2, atol=1e-3)
    for f in frames:
        assert f.image.shape == (spec.height, spec.width, 3)
        assert f.image.dtype == np.uint8 and f.image.flags.c_contiguous
        assert f.ts == pytest.approx(START.timestamp() + f.pts)
        assert f.camera_id == "door"
        shown = box_time(f.image, max_t=spec.duration_s)
        assert shown is not None and shown == pytest.approx(f.pts, abs=0.06)
        assert arrow_points_up(f.image)
    assert [f.index for f in frames] == list(range(len(frames)))
    assert statuses == [CameraState.ONLINE, CameraState.ENDED]


def test_fps_zero_yields_every_frame(tmp_path: Path) -> None:
    spec = write_clip(tmp_path / "all.mp4", seconds=2.0, fps=10)
    frames = read_all(VideoSource("c", str(spec.path), 0))
    assert [round(f.pts, 3) for f in frames] == [round(t, 3) for t in spec.frame_times]


def test_variable_frame_rate_is_sampled_by_presentation_time(tmp_path: Path) -> None:
    spec = write_clip(tmp_path / "vfr.mkv", frame_times=variable_rate_times(6.0), codec="libx264")
    frames = read_all(VideoSource("c", str(spec.path), 5.0))
    assert len(frames) in (30, 31)  # ticks 0 … 6.0 s; the last frame is just before 6.0 s
    # Each pick is the first frame at or after its 0.2 s tick, so it lags the tick by less than
    # one source frame: 1/30 s in the fast thirds, 1/7 s in the slow one.
    for i, f in enumerate(frames):
        lag = f.pts - 0.2 * i
        assert -1e-3 <= lag < (1 / 7 if 2.0 <= f.pts < 4.0 + 1 / 7 else 1 / 30) + 1e-3
    # Counting frames would put the middle third (7 fps) far off; pts must match the picture.
    for f in frames:
        assert box_time(f.image, max_t=6.0) == pytest.approx(f.pts, abs=0.06)


@pytest.mark.parametrize("rotation", [90, -90, 180])
def test_rotation_flag_yields_upright_frames(tmp_path: Path, rotation: int) -> None:
    spec = write_clip(tmp_path / "phone.mp4", width=240, height=320, rotation=rotation, seconds=1.0)
    with av.open(str(spec.path)) as c:
        raw = next(c.decode(video=0)).to_ndarray(format="bgr24")
    assert not arrow_points_up(raw)  # the stored picture is really turned
    ring = PacketRing()
    frames = read_all(VideoSource("c", str(spec.path), 5.0, ring=ring))
    assert frames
    for f in frames:
        assert f.image.shape == (320, 240, 3)
        assert arrow_points_up(f.image)
        assert box_time(f.image, max_t=1.0) == pytest.approx(f.pts, abs=0.06)
    assert (ring.display_rotation - rotation) % 360 == 0


def test_real_phone_clip_matches_ffmpeg_autorotate(tmp_path: Path) -> None:
    """classroom_bag_taken_from_desk.mp4 is stored 640×352 with a −90° flag; ffmpeg's CLI turns
    it upright by itself, so its first picture is the reference."""
    clip = data_file("counter_hands/classroom_bag_taken_from_desk.mp4")
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg CLI not installed")
    ref_path = tmp_path / "ref.png"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(clip), "-frames:v", "1", str(ref_path)], check=True, timeout=60
    )
    ref = cv2.imread(str(ref_path))
    first = next(iter(VideoSource("c", str(clip), 5.0).frames()))
    assert first.image.shape == ref.shape == (640, 352, 3)
    assert np.abs(first.image.astype(int) - ref.astype(int)).mean() < 2.0


def test_vtest_avi_at_5_fps() -> None:
    clip = data_file("pedestrians/vtest.avi")
    source = VideoSource("walkway", str(clip), 5.0, start_time=START)
    t0 = time.perf_counter()
    frames = read_all(source)
    wall = time.perf_counter() - t0
    assert frames[0].image.shape == (576, 768, 3)
    pts = np.array([f.pts for f in frames])
    np.testing.assert_allclose(np.diff(pts), 0.2, atol=1e-6)
    assert pts[-1] == pytest.approx(79.4, abs=0.11)
    assert len(frames) == 398
    assert source.stats.frames_decoded == 795
    print(f"\nvtest.avi: {source.stats.ms_per_yielded:.1f} ms decode per analysed frame, {wall:.2f} s wall")
    assert source.stats.ms_per_yielded < 50


def test_portrait_phone_clip_without_flag_stays_as_stored() -> None:
    clip = data_file("counter_hands/pos_counter_theft2.mp4")
    source = VideoSource("till", str(clip), 5.0)
    frames = read_all(source)
    assert frames[0].image.shape == (850, 478, 3)  # stored portrait, no rotation flag
    gaps = np.diff([f.pts for f in frames])
    # 59 fps source: each pick within one source frame of the 0.2 s grid.
    assert np.all(np.abs(gaps - 0.2) < 1 / 50)
    assert frames[-1].pts == pytest.approx(9.2, abs=0.1)
    print(f"\npos_counter_theft2.mp4: {source.stats.ms_per_yielded:.1f} ms decode per analysed frame")


def test_shop_clip_decode_speed() -> None:
    clip = data_file("shop/convenience_store_overhead_cctv.mp4")
    source = VideoSource("shop", str(clip), 5.0)
    frames = read_all(source)
    assert frames[0].image.shape == (432, 768, 3)
    assert np.mean(np.diff([f.pts for f in frames])) == pytest.approx(0.2, abs=0.01)
    print(f"\nconvenience_store_overhead_cctv.mp4: {source.stats.ms_per_yielded:.1f} ms per analysed frame")
    assert source.stats.ms_per_yielded < 100


def test_ring_receives_every_encoded_packet(tmp_path: Path) -> None:
    spec = write_clip(tmp_path / "c.mp4", seconds=3.0, fps=10)
    ring = PacketRing(capacity_s=60.0)
    frames = read_all(VideoSource("c", str(spec.path), 2.0, ring=ring))
    assert len(frames) == 6
    assert len(ring) == 30  # all 30 packets, not only the 6 analysed frames
    snap = ring.snapshot(0.0)
    assert snap[0].keyframe and snap[0].pts_s == pytest.approx(0.0)
    assert [p.keyframe for p in snap].count(True) == 3  # one per second
    assert frames[0].ring is ring


def test_truncated_real_mp4_ends_cleanly_or_with_one_clear_error(tmp_path: Path) -> None:
    clip = data_file("counter_hands/pos_counter_theft2.mp4")
    cut = truncate_copy(clip, tmp_path / "cut.mp4", 0.5)
    source = VideoSource("till", str(cut), 5.0)
    got: list[float] = []
    try:
        for f in source.frames():
            got.append(f.pts)
    except SourceError as exc:
        assert str(exc).startswith("camera 'till': ")
        assert "\n" not in str(exc)
    assert got, "the intact first half should still decode"
    assert 2.0 < got[-1] < 9.0
    assert source.status.state in (CameraState.ENDED, CameraState.OFFLINE)


def test_truncated_file_without_index_is_a_source_error(tmp_path: Path) -> None:
    spec = write_clip(tmp_path / "gen.mp4", seconds=2.0)  # PyAV writes the index at the end
    cut = truncate_copy(spec.path, tmp_path / "cut.mp4", 0.5)
    with pytest.raises(SourceError, match=r"^camera 'door': cannot open .*cut\.mp4: .*truncated"):
        read_all(VideoSource("door", str(cut), 5.0))


def test_missing_file_is_a_source_error(tmp_path: Path) -> None:
    source = VideoSource("door", str(tmp_path / "nope.mp4"), 5.0)
    with pytest.raises(SourceError) as info:
        read_all(source)
    assert str(info.value) == f"camera 'door': cannot open {tmp_path / 'nope.mp4'}: No such file or directory"
    assert source.status.state == CameraState.OFFLINE
    assert source.status.reason is not None and "No such file" in source.status.reason


def test_not_a_video_is_a_source_error(tmp_path: Path) -> None:
    bogus = tmp_path / "notes.mp4"
    bogus.write_text("not a video\n" * 100)
    with pytest.raises(SourceError, match=r"^camera 'door': cannot open"):
        read_all(VideoSource("door", str(bogus), 5.0))


def test_stop_from_another_thread_ends_a_file_promptly() -> None:
    clip = data_file("pedestrians/vtest.avi")
    source = VideoSource("walkway", str(clip), 0)
    seen = 0
    timer = threading.Timer(0.05, source.stop)
    timer.start()
    t0 = time.perf_counter()
    for _ in source.frames():
        seen += 1
        time.sleep(0.005)
    assert time.perf_counter() - t0 < 2.0
    assert 0 < seen < 795
    assert source.status.state == CameraState.ENDED and source.status.reason == "stopped"


@pytest.mark.parametrize(
    ("url", "live"),
    [
        ("rtsp://10.0.0.5:554/stream1", True),
        ("rtsps://cam/x", True),
        ("http://cam/mjpeg", True),
        ("https://cam/video.cgi", True),
        ("/dev/video0", True),
        ("usb:1", True),
        ("/srv/footage/door.mp4", False),
        ("clips/vtest.avi", False),
    ],
)
def test_live_is_guessed_from_the_url(url: str, live: bool) -> None:
    assert is_live_url(url) is live
    assert VideoSource("c", url, 5.0).live is live


def test_passwords_are_redacted() -> None:
    assert redact_url("rtsp://admin:s3cret@10.0.0.5:554/s1") == "rtsp://admin:***@10.0.0.5:554/s1"
    assert redact_url("rtsp://10.0.0.5/s1") == "rtsp://10.0.0.5/s1"


class MjpegCamera:
    """A cheap HTTP camera: JPEG pictures as multipart/x-mixed-replace at ``fps``, real time."""

    def __init__(self, fps: float = 10.0) -> None:
        period = 1.0 / fps
        stopping = threading.Event()

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                t0 = time.monotonic()
                with contextlib.suppress(OSError):
                    while not stopping.is_set():
                        t = time.monotonic() - t0
                        jpeg = cv2.imencode(".jpg", draw_scene(t, 320, 240, speed=10.0))[1].tobytes()
                        head = f"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
                        self.wfile.write(head.encode() + jpeg + b"\r\n")
                        stopping.wait(period)

        self._stopping = stopping
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/video.mjpg"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self._stopping.set()
        self.server.shutdown()
        self.server.server_close()


def test_http_mjpeg_camera_is_live_and_timed_by_arrival(tmp_path: Path) -> None:
    """FFmpeg's MJPEG-over-HTTP demuxer numbers pictures as if at 25 fps; pts must follow real time."""
    camera = MjpegCamera(fps=10.0)
    ring = PacketRing(capacity_s=5.0)
    source = VideoSource("counter", camera.url, 5.0, ring=ring, backoff_initial_s=0.2, backoff_max_s=0.5)
    assert source.live
    got: list[tuple[float, float, float]] = []
    errors: list[BaseException] = []

    def consume() -> None:
        try:
            for f in source.frames():
                got.append((time.monotonic(), f.pts, f.ts))
        except BaseException as exc:
            errors.append(exc)

    consumer = threading.Thread(target=consume, daemon=True)
    consumer.start()
    try:
        deadline = time.monotonic() + 10.0
        while len(got) < 12 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(got) >= 12, source.status
        assert source.status.state == CameraState.ONLINE
        span_wall = got[-1][0] - got[2][0]
        span_pts = got[-1][1] - got[2][1]
        assert span_pts == pytest.approx(span_wall, abs=0.15)  # not 2.5× faster
        assert abs(got[-1][2] - time.time()) < 1.0
        # Every MJPEG picture is a keyframe and goes into the ring; an MP4 clip comes out.
        assert len(ring) >= 20 and all(p.keyframe for p in ring.snapshot(0.0))
        rec = ClipRecorder("counter", ring, tmp_path, pre_roll_s=1.0, post_roll_s=0.5)
        trigger = got[-1][1]
        rec.request("ev", trigger, got[-1][2])
        while got[-1][1] < trigger + 0.6 and time.monotonic() < deadline + 5:
            time.sleep(0.05)
        written = rec.poll(got[-1][1])
        assert [p.suffix for _, p in written] == [".mp4"]
        with av.open(str(written[0][1])) as clip:
            frames = list(clip.decode(video=0))
            assert 10 <= len(frames) <= 20  # ~1.5 s at 10 fps
            assert float(clip.duration or 0) / 1e6 == pytest.approx(1.5, abs=0.3)
    finally:
        t0 = time.monotonic()
        source.stop()
        consumer.join(timeout=3.0)
        camera.stop()
    assert time.monotonic() - t0 < 1.5
    assert not errors
