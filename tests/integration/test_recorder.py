"""ClipRecorder: remuxed clips around triggers in generated and real footage, read back with
ffprobe and PyAV (duration, keyframe start, the pictures really from the requested span)."""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
from pathlib import Path

import av
import pytest

from conftest import data_file
from fixtures.clips import box_time, write_clip
from gemwatch.events.recorder import ClipRecorder
from gemwatch.sources.packets import PacketRing
from gemwatch.sources.video import VideoSource

SLOW = 20.0  # box speed, pixels per second


def ffprobe(path: Path) -> dict:
    if shutil.which("ffprobe") is None:
        pytest.skip("ffprobe not installed")
    out = subprocess.run(
        [
            "ffprobe", "-v", "error", "-print_format", "json", "-show_format", "-show_streams",
            "-show_entries", "stream_side_data=rotation", str(path),
        ],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    info = json.loads(out.stdout)
    first = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "packet=pts_time,flags",
         "-read_intervals", "%+#1", "-of", "json", str(path)],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    info["first_packet"] = json.loads(first.stdout)["packets"][0]
    # Decoding the whole clip must produce no errors.
    dec = subprocess.run(
        ["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
         "-show_entries", "stream=nb_read_frames", "-of", "json", str(path)],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    info["decode_errors"] = dec.stderr.strip()
    info["frames_read"] = int(json.loads(dec.stdout)["streams"][0]["nb_read_frames"])
    return info


def record(
    url: str,
    tmp_path: Path,
    trigger_pts: float,
    *,
    extend_to: float | None = None,
    pre: float = 5.0,
    post: float = 5.0,
    max_clip_s: float = 120.0,
    fps: float = 5.0,
) -> tuple[Path, Path, list[tuple[float, list]]]:
    """Run a source over ``url`` with a recorder, request a clip at the first analysed frame at
    or after ``trigger_pts``, poll every frame. Returns (expected path, written path, polls)."""
    ring = PacketRing(capacity_s=pre + 2.0)
    rec = ClipRecorder(
        "cam", ring, tmp_path / "clips", pre_roll_s=pre, post_roll_s=post, max_clip_s=max_clip_s
    )
    expected: Path | None = None
    written = []
    polls: list[tuple[float, list]] = []
    for frame in VideoSource("cam", url, fps, ring=ring).frames():
        if expected is None and frame.pts >= trigger_pts - 1e-6:
            expected = rec.request("ev-1", frame.pts, frame.ts)
            assert rec.request("ev-1", frame.pts, frame.ts) == expected  # idempotent
        if extend_to is not None and expected is not None and frame.pts <= extend_to:
            rec.extend("ev-1", frame.pts)
        done = rec.poll(frame.pts)
        polls.append((frame.pts, done))
        written += done
    written += rec.flush()
    assert expected is not None
    assert len(written) == 1 and written[0][0] == "ev-1"
    assert not list((tmp_path / "clips").glob(".*")), "temporary files left behind"
    return expected, written[0][1], polls


# Long generated clips: a 640 px wide picture and a slow box, so it crosses once in ~30 s.
LONG = {"width": 640, "height": 240, "box_speed": SLOW}


def clip_box_times(path: Path, max_t: float) -> list[float]:
    times = []
    with av.open(str(path)) as c:
        for vf in c.decode(video=0):
            t = box_time(vf.to_ndarray(format="bgr24"), max_t=max_t, speed=SLOW)
            assert t is not None
            times.append(t)
    return times


def test_clip_around_trigger_in_generated_h264_with_b_frames(tmp_path: Path) -> None:
    spec = write_clip(
        tmp_path / "src.mp4", seconds=20.0, fps=25, keyframe_interval_s=1.0, bframes=True, **LONG
    )
    expected, path, polls = record(str(spec.path), tmp_path, 10.0)
    assert path == expected and path.suffix == ".mp4"
    # Written by the poll at the first frame at or after trigger + post-roll, not before.
    written_at = next(pts for pts, done in polls if done)
    assert written_at == pytest.approx(15.0, abs=0.01)
    info = ffprobe(path)
    assert info["streams"][0]["codec_name"] == "h264"
    assert float(info["format"]["duration"]) == pytest.approx(10.0, abs=0.2)
    assert info["first_packet"]["flags"].startswith("K")
    assert float(info["first_packet"]["pts_time"]) == pytest.approx(0.0)
    assert info["decode_errors"] == ""
    # The pictures really are the span 5 s … 15 s of the source.
    shown = clip_box_times(path, 20.0)
    assert shown[0] == pytest.approx(5.0, abs=0.05)
    assert shown[-1] == pytest.approx(15.0, abs=0.1)
    assert info["frames_read"] == len(shown) == pytest.approx(250, abs=3)


def test_extend_lengthens_clip_and_max_length_caps_it(tmp_path: Path) -> None:
    spec = write_clip(
        tmp_path / "src.mkv", seconds=29.0, fps=10, keyframe_interval_s=1.0, codec="libx264", **LONG
    )
    _, path, _ = record(str(spec.path), tmp_path / "a", 8.0, extend_to=14.0)
    shown = clip_box_times(path, 30.0)
    assert shown[0] == pytest.approx(3.0, abs=0.05)
    assert shown[-1] == pytest.approx(19.0, abs=0.15)  # extended to 14 s + 5 s post-roll

    _, capped, _ = record(str(spec.path), tmp_path / "b", 8.0, extend_to=27.0, max_clip_s=12.0)
    shown = clip_box_times(capped, 30.0)
    assert shown[0] == pytest.approx(3.0, abs=0.05)
    assert shown[-1] - shown[0] == pytest.approx(12.0, abs=0.15)


def test_flush_writes_a_clip_cut_short_by_the_end_of_the_file(tmp_path: Path) -> None:
    spec = write_clip(tmp_path / "src.mp4", seconds=8.0, fps=10, keyframe_interval_s=1.0, **LONG)
    _, path, polls = record(str(spec.path), tmp_path, 6.0)
    assert not any(done for _, done in polls)  # post-roll never arrived; flush wrote it
    shown = clip_box_times(path, 8.0)
    assert shown[0] == pytest.approx(1.0, abs=0.05)
    assert shown[-1] == pytest.approx(7.9, abs=0.05)


def test_clip_keeps_the_phone_rotation_flag(tmp_path: Path) -> None:
    spec = write_clip(tmp_path / "phone.mp4", width=240, height=320, rotation=90, seconds=12.0)
    _, path, _ = record(str(spec.path), tmp_path, 6.0)
    info = ffprobe(path)
    rotations = [sd.get("rotation") for sd in info["streams"][0].get("side_data_list", [])]
    assert 90 in rotations or -270 in rotations


def test_mjpeg_in_avi_is_remuxed_to_mp4(tmp_path: Path) -> None:
    spec = write_clip(tmp_path / "usbcam.avi", seconds=14.0, fps=10)
    _, path, _ = record(str(spec.path), tmp_path, 7.0)
    assert path.suffix == ".mp4"
    info = ffprobe(path)
    assert info["streams"][0]["codec_name"] == "mjpeg"
    assert float(info["format"]["duration"]) == pytest.approx(10.0, abs=0.15)  # every frame is a keyframe


def test_vp8_webm_stays_webm(tmp_path: Path) -> None:
    spec = write_clip(tmp_path / "cam.webm", seconds=14.0, fps=10, keyframe_interval_s=1.0)
    _, path, _ = record(str(spec.path), tmp_path, 7.0)
    assert path.suffix == ".webm"
    info = ffprobe(path)
    assert info["streams"][0]["codec_name"] == "vp8"
    assert float(info["format"]["duration"]) == pytest.approx(10.0, abs=0.2)
    assert info["decode_errors"] == ""


def test_vtest_avi_msmpeg4_falls_back_to_matroska(tmp_path: Path) -> None:
    clip = data_file("pedestrians/vtest.avi")
    expected, path, _ = record(str(clip), tmp_path, 30.0)
    assert expected.suffix == path.suffix == ".mkv"  # MP4 cannot hold MS-MPEG-4 v3
    info = ffprobe(path)
    assert info["streams"][0]["codec_name"] == "msmpeg4v3"
    assert (info["streams"][0]["width"], info["streams"][0]["height"]) == (768, 576)
    duration = float(info["format"]["duration"])
    # vtest.avi has a keyframe every 10 s or so: the clip may start up to one interval early.
    keyframes = [p.pts_s for p in _keyframes(clip)]
    interval = max(b - a for a, b in itertools.pairwise(keyframes))
    assert 10.0 - 0.15 <= duration <= 10.0 + interval + 0.15
    assert info["first_packet"]["flags"].startswith("K")
    assert info["decode_errors"] == ""


def _keyframes(clip: Path) -> list:
    ring = PacketRing(capacity_s=1e6, max_bytes=1 << 30)
    for _ in VideoSource("k", str(clip), 1.0, ring=ring).frames():
        pass
    return [p for p in ring.snapshot(0.0) if p.keyframe]


def test_real_h264_mp4_clip(tmp_path: Path) -> None:
    clip = data_file("counter_hands/pos_counter_theft.mp4")  # 476×848, ~59.7 fps, keyframe every 5 s
    _, path, _ = record(str(clip), tmp_path, 12.0)
    assert path.suffix == ".mp4"
    info = ffprobe(path)
    assert info["streams"][0]["codec_name"] == "h264"
    duration = float(info["format"]["duration"])
    # Trigger 12 s, start 7 s → keyframe at 5 s: 5 … 17 s.
    assert duration == pytest.approx(12.0, abs=0.1)
    assert info["first_packet"]["flags"].startswith("K")
    assert info["decode_errors"] == ""
    with av.open(str(path)) as c:
        assert c.streams.video[0].codec_context.width == 476


def test_no_video_no_clip(tmp_path: Path) -> None:
    ring = PacketRing()
    rec = ClipRecorder("cam", ring, tmp_path)
    path = rec.request("ev", 3.0, 1_700_000_000.0)
    assert path.parent == tmp_path
    assert rec.pending == ["ev"]
    assert rec.flush() == []
    assert rec.pending == []
    assert list(tmp_path.iterdir()) == []
