"""Retention over real temp files with set modification times: age first, then size, oldest first."""

from __future__ import annotations

import os
from pathlib import Path

from gemwatch.events.retention import enforce

NOW = 1_780_000_000.0
DAY = 86_400.0


def put(root: Path, rel: str, size: int, age_days: float) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    mtime = NOW - age_days * DAY
    os.utime(path, (mtime, mtime))
    return path


def test_age_then_size_oldest_first(tmp_path: Path) -> None:
    ancient = put(tmp_path, "clips/door/a.mp4", 1000, 40)
    old_snap = put(tmp_path, "snapshots/door/a.jpg", 100, 31)
    mid = put(tmp_path, "clips/door/b.mp4", 1000, 10)
    newer = put(tmp_path, "clips/till/c.mkv", 1000, 5)
    newest = put(tmp_path, "snapshots/till/c.jpg", 100, 1)
    db = put(tmp_path, "gemwatch.db", 5000, 100)  # not evidence: never touched

    report = enforce(tmp_path, max_age_days=30, max_bytes=1200, now=NOW)

    assert [(r.path, r.reason) for r in report.removed_files] == [
        (ancient, "age"),
        (old_snap, "age"),
        (mid, "size"),
    ]
    assert report.removed == [ancient, old_snap, mid]
    assert report.freed_bytes == 2100
    assert report.kept_files == 2 and report.kept_bytes == 1100
    assert newer.exists() and newest.exists() and db.exists()
    assert not ancient.exists() and not mid.exists()


def test_limits_can_be_disabled(tmp_path: Path) -> None:
    put(tmp_path, "clips/a.mp4", 10_000, 400)
    report = enforce(tmp_path, max_age_days=None, max_bytes=None, now=NOW)
    assert report.removed == [] and report.kept_files == 1


def test_size_cap_alone_removes_oldest_until_under(tmp_path: Path) -> None:
    files = [put(tmp_path, f"clips/cam/{i}.mp4", 100, 10 - i) for i in range(10)]
    report = enforce(tmp_path, max_age_days=365, max_bytes=450, now=NOW)
    assert report.removed == files[:6]
    assert report.kept_bytes == 400


def test_files_being_written_are_left_alone_until_stale(tmp_path: Path) -> None:
    fresh_part = put(tmp_path, "clips/cam/.e1.mp4.part", 100, 0.001)
    stale_part = put(tmp_path, "clips/cam/.e0.mp4.part", 100, 1)
    report = enforce(tmp_path, max_age_days=0.0001, max_bytes=0, now=NOW)
    assert report.removed == []
    assert fresh_part.exists()
    assert not stale_part.exists()


def test_emptied_day_folders_are_pruned_camera_folders_kept(tmp_path: Path) -> None:
    put(tmp_path, "clips/door/2026-01-01/x/a.mp4", 10, 90)
    put(tmp_path, "clips/door/2026-03-01/b.mp4", 10, 1)
    report = enforce(tmp_path, max_age_days=30, max_bytes=None, now=NOW)
    assert len(report.removed) == 1
    assert (tmp_path / "clips" / "door").is_dir()  # a running pipeline writes here
    assert not (tmp_path / "clips" / "door" / "2026-01-01").exists()
    assert (tmp_path / "clips" / "door" / "2026-03-01" / "b.mp4").exists()


def test_missing_data_dir_is_fine(tmp_path: Path) -> None:
    report = enforce(tmp_path / "nowhere", max_age_days=1, max_bytes=1, now=NOW)
    assert report.removed == [] and report.kept_files == 0
