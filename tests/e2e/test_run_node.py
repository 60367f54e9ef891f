"""``gemwatch run``: one process per camera, events in the SQL store, clean stop on SIGTERM."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from conftest import REPO_ROOT, data_file


def write_config(tmp_path: Path, videos: list[Path], web: bool = False) -> Path:
    cams = "\n".join(
        f"  - id: cam{i}\n    url: {v}\n    fps: 5\n    zones:\n      - id: door\n        kind: entrance\n"
        f"        polygon: [[0, 0], [1, 0], [1, 1], [0, 1]]\n        loitering: {{dwell_s: 3, grace_s: 1}}"
        for i, v in enumerate(videos)
    )
    cfg = tmp_path / "gemwatch.yml"
    cfg.write_text(
        f"store: {{name: Test, timezone: Europe/London}}\nstorage: {{data_dir: {tmp_path / 'data'}}}\n"
        f"web: {{enabled: {'true' if web else 'false'}}}\ncameras:\n{cams}\n"
    )
    return cfg


def events(tmp_path: Path) -> list[tuple]:
    with sqlite3.connect(tmp_path / "data" / "gemwatch.db") as db:
        return db.execute("select type, camera_id, ended, clip_path from events").fetchall()


def runs(tmp_path: Path) -> list[tuple]:
    with sqlite3.connect(tmp_path / "data" / "gemwatch.db") as db:
        return db.execute("select kind, status from runs").fetchall()


def test_run_two_file_cameras_to_the_end(tmp_path) -> None:
    a = data_file("shop/stock_artshop_browsing_normal.mp4")
    b = data_file("shop/stock_supermarket_girl_pockets_item_adobe.mp4")
    cfg = write_config(tmp_path, [a, b])
    res = subprocess.run(
        [sys.executable, "-m", "gemwatch.cli", "run", "-c", str(cfg)],
        capture_output=True, text=True, timeout=600, cwd=REPO_ROOT,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-2000:]
    assert "Traceback" not in res.stderr
    evs = events(tmp_path)
    assert {e[1] for e in evs} == {"cam0", "cam1"}, evs
    assert all(e[2] for e in evs), "every visit ended when its file ended"
    assert all(e[3] and Path(e[3]).exists() for e in evs), "every event got its clip"
    assert runs(tmp_path) == [("run", "done")]


def test_sigterm_stops_cleanly_and_keeps_events(tmp_path) -> None:
    video = data_file("pedestrians/vtest.avi")
    cfg = write_config(tmp_path, [video])
    proc = subprocess.Popen(
        [sys.executable, "-m", "gemwatch.cli", "run", "-c", str(cfg)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO_ROOT,
    )  # fmt: skip
    deadline = time.monotonic() + 240
    db = tmp_path / "data" / "gemwatch.db"
    while time.monotonic() < deadline:
        if db.exists():
            try:
                if events(tmp_path):
                    break
            except sqlite3.OperationalError:
                pass
        time.sleep(1)
    else:
        proc.kill()
        raise AssertionError("no event within 240 s")
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-2000:]
    assert "Traceback" not in err
    evs = events(tmp_path)
    assert evs and all(e[2] for e in evs), "open events are closed with their final duration on stop"
    assert runs(tmp_path) == [("run", "stopped")]
