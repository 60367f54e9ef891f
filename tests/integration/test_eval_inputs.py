"""The eval scripts on a folder that is not laid out like ../shared/data, or with a counter config
that does not validate: one clear line and a non-zero exit, never a traceback (a fresh user's
``--data /nonexistent`` got a FileNotFoundError, a misspelt zone kind a pydantic traceback)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conftest import REPO_ROOT


def run_eval(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(REPO_ROOT / "eval" / script), *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO_ROOT,
    )


def test_a_folder_without_labels_is_one_line(tmp_path) -> None:
    for script in ("counter.py", "faces.py"):
        res = run_eval(script, "--data", str(tmp_path / "nowhere"))
        assert res.returncode != 0
        assert "Traceback" not in res.stderr
        assert (
            res.stderr.strip()
            == f"error: no labels.yaml in {tmp_path / 'nowhere'} (--data is a folder laid out like ../shared/data)"
        )


def test_an_invalid_counter_config_is_reported_and_the_rest_runs(tmp_path: Path) -> None:
    data, fixtures = tmp_path / "data", tmp_path / "fixtures"
    (data / "desk").mkdir(parents=True)
    fixtures.mkdir()
    (data / "desk" / "a.mp4").write_bytes(b"")  # never decoded: its config fails first
    (data / "labels.yaml").write_text(
        "video:\n  desk/a.mp4:\n    events:\n      - {type: item_placed, start: 1.0, end: 2.0}\n"
        "  desk/b.mp4:\n    events:\n      - {type: drawer_open, start: 1.0, end: 2.0}\n"
    )
    (fixtures / "counter_a.yml").write_text(
        "clip: desk/a.mp4\ncamera:\n  zones:\n"
        "    - {id: desk, kind: showing_are, polygon: [[0.1, 0.1], [0.9, 0.1], [0.9, 0.9]]}\n"
    )
    res = run_eval("counter.py", "--data", str(data), "--fixtures", str(fixtures))
    assert res.returncode == 1, res.stdout + res.stderr
    assert "Traceback" not in res.stderr
    assert (
        f"desk/a.mp4: not evaluated: its counter config {fixtures / 'counter_a.yml'} is invalid:"
        in res.stdout
    )
    assert "zones.0.kind: Input should be" in res.stdout
    assert "desk/b.mp4: not evaluated (no counter config)" in res.stdout
    assert res.stdout.rstrip().endswith("1 without a counter config, 1 with an invalid one")
