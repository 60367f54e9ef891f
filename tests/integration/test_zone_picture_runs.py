"""A zone picture of another scene, a failing and a truncated analysis, on real footage: one clear
``error:`` line and exit code 2 from ``analyze``, a camera that ``run`` does not restart while
the others go on, and a ``runs`` record that says how each run ended."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

from conftest import REPO_ROOT, data_file
from fixtures.clips import trim, truncate_copy
from gemwatch.analyze import analyze
from gemwatch.config.models import GemwatchConfig, Storage

sys.path.insert(0, str(REPO_ROOT / "eval"))
from frames import read_frame

GEMWATCH = [sys.executable, "-m", "gemwatch.cli"]
DESK = "counter_hands/classroom_bag_taken_from_desk.mp4"  # a hand-held phone: stabilise
OTHER_SCENE = "shop/stock_artshop_browsing_normal.mp4"


def runs(data_dir: Path) -> list[tuple]:
    with sqlite3.connect(data_dir / "gemwatch.db") as db:
        return db.execute("select kind, status, ended_utc is not null, error from runs").fetchall()


def camera_yaml(cam_id: str, video: Path, picture: str | None) -> str:
    text = f"  - id: {cam_id}\n    url: {video}\n    fps: 5\n    stabilise: true\n"
    if picture is not None:
        text += (
            "    zones:\n      - id: desk\n        kind: tray\n"
            "        polygon: [[0.2, 0.5], [0.8, 0.5], [0.8, 0.8], [0.2, 0.8]]\n"
            f"        reference_image: {picture}\n"
        )
    return text


@pytest.fixture(scope="module")
def desk(tmp_path_factory) -> dict[str, Path]:
    """The first 3 s of the desk clip and, in ``refs/`` next to where configs go, a real frame
    of another scene (the art shop) saved as the desk's reference picture."""
    work = tmp_path_factory.mktemp("pictures")
    clip = trim(data_file(DESK), work / "desk.mp4", 3.0)
    (work / "refs").mkdir()
    cv2.imwrite(
        str(work / "refs" / "other.png"), read_frame(data_file(OTHER_SCENE).parents[1], OTHER_SCENE, 2.0)
    )
    return {"work": work, "clip": clip}


def test_analyze_with_a_picture_of_another_scene_is_one_error_line_exit_2(desk) -> None:
    work = desk["work"]
    cfg = work / "analyze.yml"
    cfg.write_text("cameras:\n" + camera_yaml("desk-cam", desk["clip"], "refs/other.png"))
    data = work / "analyze-data"
    res = subprocess.run(
        [*GEMWATCH, "analyze", str(desk["clip"]), "-c", str(cfg), "--data-dir", str(data)],
        capture_output=True, text=True, timeout=300, cwd=REPO_ROOT,
    )  # fmt: skip
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr and "internal error" not in res.stderr
    assert "imread" not in res.stderr and "[ WARN" not in res.stderr
    errors = [ln for ln in res.stderr.splitlines() if "error" in ln.lower()]
    assert len(errors) == 1, res.stderr
    assert errors[0].startswith("error: ")
    for needle in ("zone 'desk'", "reference_image", str(work / "refs" / "other.png"), "does not match"):
        assert needle in errors[0], errors[0]
    [(kind, status, ended, error)] = runs(data)
    assert (kind, status, ended) == ("analyze", "error", True)
    assert "does not match the camera's view" in error


def test_an_analysis_ended_by_an_exception_is_recorded_as_an_error(desk) -> None:
    data = desk["work"] / "boom-data"
    cfg = GemwatchConfig(storage=Storage(data_dir=data))

    def boom(frame, obs) -> None:
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        analyze(cfg, str(desk["clip"]), on_frame=boom, alerts=False)
    assert runs(data) == [("analyze", "error", True, "disk on fire")]


def test_a_truncated_video_is_recorded_as_truncated(tmp_path) -> None:
    """The first 12 s of a clip as Matroska (its length in the header), cut after 40 % of its
    bytes: decoding stops at about 4 s, without an error from the decoder."""
    full = trim(data_file(OTHER_SCENE), tmp_path / "full.mkv", 12.0)
    cut = truncate_copy(full, tmp_path / "cut.mkv", 0.4)
    res = subprocess.run(
        [*GEMWATCH, "analyze", str(cut), "--data-dir", str(tmp_path / "data"), "--fps", "2"],
        capture_output=True, text=True, timeout=300, cwd=REPO_ROOT,
    )  # fmt: skip
    assert res.returncode == 1, res.stderr
    assert "truncated" in res.stderr and "Traceback" not in res.stderr
    [(kind, status, ended, error)] = runs(tmp_path / "data")
    assert (kind, status, ended) == ("analyze", "truncated", True)
    assert "the video stops at" in error and "cut.mkv" in error


def test_run_fails_a_truncated_missing_or_still_file_camera(tmp_path) -> None:
    """``gemwatch run`` with the truncated file as a camera says so, as ``analyze`` does (it used
    to end with "end of file" only); a missing file and a still picture as cameras are one error
    line each before any model loads (the picture used to go "online", then "end of file"). None
    is restarted, and a replay in which a camera failed exits 1 (it exited 0)."""
    full = trim(data_file(OTHER_SCENE), tmp_path / "full.mkv", 12.0)
    cut = truncate_copy(full, tmp_path / "cut.mkv", 0.4)
    cfg = tmp_path / "run.yml"
    still = tmp_path / "still.png"
    cv2.imwrite(str(still), read_frame(data_file(OTHER_SCENE).parents[1], OTHER_SCENE, 2.0))
    cfg.write_text(
        f"storage: {{data_dir: {tmp_path / 'data'}}}\nweb: {{enabled: false}}\ncameras:\n"
        f"  - id: cut\n    url: {cut}\n    fps: 2\n"
        f"  - id: gone\n    url: {tmp_path / 'gone.mp4'}\n"
        f"  - id: still\n    url: {still}\n"
    )
    res = subprocess.run(
        [*GEMWATCH, "run", "-c", str(cfg)], capture_output=True, text=True, timeout=300, cwd=REPO_ROOT
    )
    assert res.returncode == 1, res.stderr[-3000:]
    errors = [ln.split(" ERROR gemwatch.node: ")[-1] for ln in res.stderr.splitlines() if " ERROR " in ln]
    assert len(errors) == 4, res.stderr[-3000:]
    assert [e for e in errors if "truncated or corrupt" in e and "cut.mkv" in e and "not restarted" in e]
    assert [e for e in errors if e.startswith("camera 'gone': cannot open") and "no such file" in e]
    assert [e for e in errors if e.startswith("camera 'still'") and "a still picture" in e]
    assert errors[-1] == "3 of 3 camera(s) failed: cut, gone, still"
    assert "online" not in "".join(ln for ln in res.stderr.splitlines() if "[still]" in ln)
    assert "Traceback" not in res.stderr and "restarting" not in res.stderr


def test_run_does_not_restart_a_camera_whose_picture_does_not_fit(desk) -> None:
    """Two file cameras: ``bad`` has the art shop's picture as its desk reference, ``good`` none.
    ``bad`` stops once with one error line and is not restarted; ``good`` plays to its end."""
    work = desk["work"]
    cfg = work / "run.yml"
    cfg.write_text(
        f"storage: {{data_dir: {work / 'run-data'}}}\nweb: {{enabled: false}}\ncameras:\n"
        + camera_yaml("bad", desk["clip"], "refs/other.png")
        + camera_yaml("good", desk["clip"], None)
    )
    res = subprocess.run(
        [*GEMWATCH, "run", "-c", str(cfg)], capture_output=True, text=True, timeout=300, cwd=REPO_ROOT
    )
    assert res.returncode == 1, res.stderr[-3000:]  # a replay in which a camera failed
    assert "Traceback" not in res.stderr, res.stderr[-3000:]
    assert "restarting" not in res.stderr, res.stderr[-3000:]
    errors = [ln for ln in res.stderr.splitlines() if " ERROR " in ln]
    assert len(errors) == 2, res.stderr[-3000:]
    assert "camera 'bad', zone 'desk'" in errors[0] and "not restarted" in errors[0]
    assert errors[1].endswith("1 of 2 camera(s) failed: bad")
    assert "camera good used" in res.stderr  # the other camera analysed its whole file
    assert [r[:2] for r in runs(work / "run-data")] == [("run", "done")]


def test_the_node_marks_a_config_failure_failed_with_its_reason(caplog) -> None:
    """The camera process's last report (state failed, the reason) reaches the console's hub
    and is logged once; without that report the node still marks the camera failed."""
    import queue
    import time

    from gemwatch.events.bus import FanoutSink, StoreSink
    from gemwatch.node import _camera_failure
    from gemwatch.sources.video import CameraState, CameraStatus
    from gemwatch.web.hub import Hub

    hub, store_sink = Hub(), StoreSink(None, "run")  # type: ignore[arg-type]
    sink = FanoutSink(store_sink, hub)
    q: queue.Queue = queue.Queue()
    reason = "camera 'bad', zone 'desk': the reference picture x.png (reference_image) does not match"
    q.put(("status", CameraStatus("bad", CameraState.FAILED, reason, time.time())))
    with caplog.at_level("ERROR", logger="gemwatch.node"):
        assert _camera_failure("bad", q, sink, store_sink) == reason
        _camera_failure("lost", q, sink, store_sink)
    assert hub.statuses["bad"].state == CameraState.FAILED and hub.statuses["bad"].reason == reason
    assert hub.statuses["lost"].state == CameraState.FAILED
    assert [r.getMessage().split(";")[0] for r in caplog.records] == [
        reason,
        "camera 'lost': a config problem",
    ]
