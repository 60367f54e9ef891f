"""The CLI and the pipeline on real footage (../shared/data), as a user runs them."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from conftest import REPO_ROOT, data_file
from gemwatch.analyze import analyze
from gemwatch.config.loader import load_zones
from gemwatch.config.models import GemwatchConfig, Storage

sys.path.insert(0, str(REPO_ROOT / "eval"))
from frames import load_labels

GEMWATCH = [sys.executable, "-m", "gemwatch.cli"]
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)  # replay start: ts - EPOCH = seconds into the clip
ZONES = REPO_ROOT / "tests" / "fixtures" / "vtest_zones.yml"

# Measured by hand on vtest.avi (frames every 0.1 s around the crossings, zone drawn on them):
# the man in black's feet enter the paved patch at 50.7 s and leave it at 63.2 s.
PATCH_ENTER_S, PATCH_LEAVE_S = 50.7, 63.2


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*GEMWATCH, *args], capture_output=True, text=True, timeout=600, cwd=cwd or REPO_ROOT
    )


@pytest.fixture(scope="module")
def vtest_run(tmp_path_factory) -> dict:
    """One analysis of vtest.avi with the patch zone, shared by the tests below."""
    video = data_file("pedestrians/vtest.avi")
    data_dir = tmp_path_factory.mktemp("vtest")
    cfg = GemwatchConfig(storage=Storage(data_dir=data_dir))
    counts: dict[float, int] = {}

    def on_frame(frame, obs) -> None:
        counts[round(frame.pts, 1)] = len(obs.people)

    report = analyze(cfg, str(video), zones=load_zones(ZONES), start_time=EPOCH, on_frame=on_frame)
    return {"report": report, "counts": counts, "data_dir": data_dir}


def test_people_counted_on_hand_labelled_frames(vtest_run) -> None:
    checks = [f for f in load_labels() if f.count_check and f.clip == "pedestrians/vtest.avi"]
    assert len(checks) >= 5
    for f in checks:
        got = vtest_run["counts"][round(f.t, 1)]
        assert abs(got - f.n_people) <= 1, f"t={f.t}: {got} people tracked, {f.n_people} by hand"


def test_loitering_duration_matches_hand_measurement(vtest_run) -> None:
    events = [e for e in vtest_run["report"].events if e.type == "loitering"]
    assert len(events) == 1, [e.description for e in events]
    ev = events[0]
    start = ev.start_ts - EPOCH.timestamp()
    end = ev.end_ts - EPOCH.timestamp()
    assert abs(start - PATCH_ENTER_S) <= 1.0
    assert abs(end - PATCH_LEAVE_S) <= 1.0
    assert abs((end - start) - (PATCH_LEAVE_S - PATCH_ENTER_S)) <= 1.0
    assert ev.ended and ev.zone_id == "patch" and "Paved patch" in ev.description


def test_evidence_written_and_playable(vtest_run) -> None:
    ffprobe = shutil.which("ffprobe")
    if ffprobe is None:
        pytest.skip("ffprobe (Debian ffmpeg) is not installed")
    ev = next(e for e in vtest_run["report"].events if e.type == "loitering")
    assert ev.snapshot_path and Path(ev.snapshot_path).stat().st_size > 10_000
    assert ev.clip_path and Path(ev.clip_path).exists()
    out = subprocess.run(
        [ffprobe, "-v", "error", "-show_entries", "format=duration", "-of", "json", ev.clip_path],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    duration = float(json.loads(out.stdout)["format"]["duration"])
    # pre-roll 5 s + the 12.5 s visit + post-roll 5 s, give or take a keyframe interval
    assert 15.0 <= duration <= 26.0


def test_analyze_cli_json_and_table(tmp_path) -> None:
    video = data_file("shop/stock_artshop_browsing_normal.mp4")
    res = run_cli("analyze", str(video), "--json", "--data-dir", str(tmp_path))
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["frames"] >= 70 and doc["error"] is None
    # one woman browsing for the whole 15 s: she is tracked, for most of it under one id
    assert doc["tracks"] and max(t["duration_s"] for t in doc["tracks"]) >= 8.0
    res = run_cli("analyze", str(video), "--data-dir", str(tmp_path))
    assert res.returncode == 0 and "Tracked people" in res.stdout and "Events" in res.stdout
    assert "│ unknown │" in res.stdout  # the role column (no counter zones here: nobody's role is known)


def test_rotated_phone_clip_is_analysed_upright(tmp_path) -> None:
    video = data_file("counter_hands/classroom_bag_taken_from_desk.mp4")  # coded 640x352, rotation -90
    cfg = GemwatchConfig(storage=Storage(data_dir=tmp_path))
    sizes: set[tuple[int, int]] = set()
    analyze(cfg, str(video), on_frame=lambda frame, obs: sizes.add((obs.width, obs.height)))
    assert sizes == {(352, 640)}


def test_annotate_writes_a_video(tmp_path) -> None:
    video = data_file("shop/stock_supermarket_girl_pockets_item_adobe.mp4")
    out = tmp_path / "annotated.mp4"
    res = run_cli("analyze", str(video), "--annotate", str(out), "--data-dir", str(tmp_path), "--json")
    assert res.returncode == 0, res.stderr
    import av

    with av.open(str(out)) as c:
        frames = sum(1 for _ in c.decode(video=0))
    assert frames >= 50  # 11.9 s at 5 fps


# ---------------------------------------------------------------------------------- bad inputs


def assert_one_clear_line(res: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert res.returncode != 0
    assert "Traceback" not in res.stderr and "Traceback" not in res.stdout
    text = res.stderr
    for needle in needles:
        assert needle in text, text


def test_missing_file(tmp_path) -> None:
    res = run_cli("analyze", str(tmp_path / "nope.mp4"), "--data-dir", str(tmp_path))
    assert_one_clear_line(res, "nope.mp4")
    assert len([ln for ln in res.stderr.splitlines() if ln.strip()]) <= 2


def test_relative_paths_say_where_they_were_looked_for(tmp_path) -> None:
    """A video or config given relative to another folder than the one gemwatch runs in."""
    res = run_cli("analyze", "clips/nope.mp4", "--data-dir", str(tmp_path), cwd=tmp_path)
    assert_one_clear_line(
        res, f"cannot open clips/nope.mp4: no such file (read as {tmp_path / 'clips/nope.mp4'})"
    )
    res = run_cli("check-config", "gemwatch.yml", cwd=tmp_path)
    assert_one_clear_line(
        res, f"cannot read: No such file or directory (read as {tmp_path / 'gemwatch.yml'})"
    )


def test_corrupt_file(tmp_path) -> None:
    real = data_file("shop/stock_artshop_browsing_normal.mp4")
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(real.read_bytes()[: real.stat().st_size // 3])
    res = run_cli("analyze", str(broken), "--data-dir", str(tmp_path))
    # whether the index sits at the front (the first part decodes) or at the end (nothing does),
    # the user is told the file is broken and the exit code says so
    assert_one_clear_line(res, "broken.mp4")
    assert "truncated" in res.stderr or "cannot open" in res.stderr
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"\x00\x01not a video" * 1000)
    res = run_cli("analyze", str(garbage), "--data-dir", str(tmp_path))
    assert_one_clear_line(res, "garbage.mp4", "not a video file")
    assert "Errno" not in res.stderr  # PyAV's errno prefix is no help to anyone
    # a still picture, even named .mp4, is not "analysed" as a one-frame video
    import cv2
    import numpy as np

    still = tmp_path / "still.mp4"
    _, png = cv2.imencode(".png", np.full((120, 160, 3), 90, np.uint8))
    still.write_bytes(png.tobytes())
    for args in ((), ("--json",)):
        assert_one_clear_line(
            run_cli("analyze", str(still), "--data-dir", str(tmp_path), *args), "still picture"
        )


def test_unknown_key_in_config(tmp_path) -> None:
    cfg = tmp_path / "gemwatch.yml"
    cfg.write_text("store:\n  name: x\n  colour: red\n")
    res = run_cli("check-config", str(cfg))
    assert_one_clear_line(res, "line 3", "store.colour", "unknown key")


def test_check_config_plays_nothing_it_cannot_read(tmp_path) -> None:
    """A file camera that is missing or a still picture is found by check-config, at its url's
    line (it said OK and run then failed the camera); an empty config is not '0 cameras, OK'; a
    picture given as the config is not an internal UnicodeDecodeError."""
    import cv2
    import numpy as np

    still = tmp_path / "desk.png"
    cv2.imwrite(str(still), np.full((120, 160, 3), 90, np.uint8))
    video = data_file("shop/stock_artshop_browsing_normal.mp4")
    cfg = tmp_path / "gemwatch.yml"
    cfg.write_text(
        f"cameras:\n  - id: good\n    url: {video}\n  - id: gone\n    url: {tmp_path / 'gone.mp4'}\n"
        f"  - id: pic\n    url: {still}\n  - id: live\n    url: rtsp://127.0.0.1:9/none\n"
    )
    res = run_cli("check-config", str(cfg))
    assert res.returncode == 2 and "Traceback" not in res.stderr
    lines = [ln for ln in res.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 2, res.stderr
    assert "line 5: cameras[1].url: cannot open" in lines[0] and "no such file" in lines[0]
    assert "line 7: cameras[2].url:" in lines[1] and "a still picture" in lines[1]
    empty = tmp_path / "empty.yml"
    empty.write_text("")
    assert_one_clear_line(run_cli("check-config", str(empty)), "the file is empty")
    assert_one_clear_line(run_cli("check-config", str(still)), "not a text file")
    assert_one_clear_line(
        run_cli("analyze", str(video), "--zones", str(still)), "desk.png", "not a text file"
    )


def test_check_config_tries_a_file_cameras_zone_pictures(tmp_path) -> None:
    """A picture of another scene is an error at its key's line; one of the same desk from the
    other recording (32 px off: the drawer then read open throughout) a warning; the clip's own
    frame neither. They used to show only once the camera ran."""
    import cv2

    sys.path.insert(0, str(REPO_ROOT / "eval"))
    from frames import read_frame

    data = data_file("counter_hands/pos_counter_theft2.mp4").parents[1]
    pictures = {
        "own": ("counter_hands/pos_counter_theft2.mp4", 5.0),
        "other": ("pedestrians/vtest.avi", 10.0),
        "shifted": ("counter_hands/pos_counter_theft.mp4", 15.0),
    }
    for name, (clip, t) in pictures.items():
        cv2.imwrite(str(tmp_path / f"{name}.png"), read_frame(data, clip, t))
    results = {}
    for name in pictures:
        cfg = tmp_path / f"{name}.yml"
        cfg.write_text(
            f"cameras:\n  - id: pos\n    url: {data / 'counter_hands/pos_counter_theft2.mp4'}\n    zones:\n"
            "      - id: drawer\n        kind: case\n"
            "        polygon: [[0.40, 0.53], [0.43, 0.53], [0.60, 0.73], [0.58, 0.76], [0.40, 0.66]]\n"
            f"        reference_image: {name}.png\n"
        )
        results[name] = run_cli("check-config", str(cfg))
    assert results["own"].returncode == 0 and "warning" not in results["own"].stderr, results["own"].stderr
    other = results["other"]
    assert other.returncode == 2 and "Traceback" not in other.stderr
    assert "line 8: cameras[0].zones[0].reference_image: camera 'pos', zone 'drawer'" in other.stderr
    assert "does not match the camera's view" in other.stderr
    shifted = results["shifted"]
    assert shifted.returncode == 0, shifted.stderr
    assert "warning:" in shifted.stderr and "px off the camera's view" in shifted.stderr


def test_json_and_csv_together_are_refused(tmp_path) -> None:
    video = data_file("shop/stock_artshop_browsing_normal.mp4")
    res = run_cli("analyze", str(video), "--json", "--csv", "--data-dir", str(tmp_path))
    assert_one_clear_line(res, "--json and --csv")
    assert res.stdout == "" and not (tmp_path / "gemwatch.db").exists()  # refused before any work


@pytest.mark.parametrize(
    ("polygon", "needle"),
    [
        ("[[0, 0], [1, 0]]", "at least 3 points"),
        ("[[0, 0], [1.5, 0], [1, 1]]", "outside 0..1"),
        ("[[0.1, 0.1], [0.2, 0.2], [0.3, 0.3]]", "encloses 0 of the picture"),
    ],
)
def test_bad_zone(tmp_path, polygon, needle) -> None:
    cfg = tmp_path / "gemwatch.yml"
    cfg.write_text(
        "cameras:\n  - id: door\n    url: x.mp4\n    zones:\n      - id: z\n        kind: entrance\n"
        f"        polygon: {polygon}\n"
    )
    assert_one_clear_line(run_cli("check-config", str(cfg)), "line 7", "cameras[0].zones[0].polygon", needle)
    zones = tmp_path / "zones.yml"
    zones.write_text(f"zones:\n  - id: z\n    kind: entrance\n    polygon: {polygon}\n")
    video = data_file("shop/stock_artshop_browsing_normal.mp4")
    assert_one_clear_line(run_cli("analyze", str(video), "--zones", str(zones)), "zones.yml", needle)


def test_unreachable_rtsp_url(tmp_path) -> None:
    res = run_cli("analyze", "rtsp://127.0.0.1:9/none", "--data-dir", str(tmp_path))
    assert_one_clear_line(res, "127.0.0.1:9")


def test_ctrl_c_during_analyze_says_what_was_kept(tmp_path) -> None:
    """Ctrl-C used to end ``analyze`` with nothing said (exit 130): now one line says the events
    found so far are stored and where, and the run is recorded as stopped."""
    import signal
    import sqlite3
    import time

    video = data_file("pedestrians/vtest.avi")
    proc = subprocess.Popen(
        [*GEMWATCH, "analyze", str(video), "--data-dir", str(tmp_path), "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO_ROOT,
    )
    db = tmp_path / "gemwatch.db"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (tmp_path / "snapshots").exists() and proc.poll() is None:
        time.sleep(0.2)  # snapshots/ appears when the pipeline has started
    time.sleep(2.0)
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert "Traceback" not in err
    assert f"interrupted: the events found so far are stored (sqlite:///{db}" in err, err[-2000:]
    with sqlite3.connect(db) as con:
        assert con.execute("select status from runs").fetchall() == [("stopped",)]


@pytest.mark.parametrize(
    ("shut_t", "open_t", "warning"),
    [
        (5.0, 7.4, None),
        (7.4, 5.0, "reads open from the start of watching"),
        (5.0, 5.0, "differ in 0 cells only"),
    ],
)
def test_check_config_warns_of_case_pictures_that_cannot_read_the_case(
    tmp_path, shut_t, open_t, warning
) -> None:
    """Swapped pictures read the drawer open while it was shut (case_opened 0.0-6.8 s), and an
    "open" picture of the shut drawer never reads it open: both were silent (a fresh user)."""
    import cv2

    sys.path.insert(0, str(REPO_ROOT / "eval"))
    from frames import read_frame

    clip = "counter_hands/pos_counter_theft2.mp4"
    data = data_file(clip).parents[1]
    cv2.imwrite(str(tmp_path / "shut.png"), read_frame(data, clip, shut_t))
    cv2.imwrite(str(tmp_path / "open.png"), read_frame(data, clip, open_t))
    cfg = tmp_path / "gemwatch.yml"
    cfg.write_text(
        f"cameras:\n  - id: pos\n    url: {data / clip}\n    zones:\n      - id: drawer\n        kind: case\n"
        "        polygon: [[0.40, 0.53], [0.43, 0.53], [0.60, 0.73], [0.58, 0.76], [0.40, 0.66]]\n"
        "        reference_image: shut.png\n        case: {open_image: open.png}\n"
    )
    res = run_cli("check-config", str(cfg))
    assert res.returncode == 0, res.stderr
    warned = [ln for ln in res.stderr.splitlines() if ln.startswith("warning:")]
    if warning is None:
        assert warned == [], res.stderr
    else:
        assert len(warned) == 1 and warning in warned[0] and "zone 'drawer'" in warned[0], res.stderr
