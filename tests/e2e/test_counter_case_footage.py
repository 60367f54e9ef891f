"""The POS desk's cash drawer as a display case (``kind: case``) on real footage
(../shared/data/counter_hands): open or closed from a picture of it shut and one of it pulled
out, while the seated cashier's hands and arms are over it or in it and the phone pans, and a
``case_opened`` record for each opening. Expected times are the clips' ``drawer_open`` labels
in labels.yaml; zones and pictures come from the checked-in counter configs."""

from __future__ import annotations

import sys

import pytest
from ruamel.yaml import YAML
from test_counter_footage import analysed

from conftest import DATA_DIR, REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "eval"))
from counter import ClipRun, label_window

TOLERANCE_S = 1.0
CLIPS = {
    "pos1": ("counter_pos_theft.yml", "counter_hands/pos_counter_theft.mp4"),
    "pos2": ("counter_pos_theft2.yml", "counter_hands/pos_counter_theft2.mp4"),
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, ClipRun]:
    return {key: analysed(name, clip, tmp_path_factory) for key, (name, clip) in CLIPS.items()}


def drawer_labels(clip: str) -> list[tuple[float, float]]:
    labels = YAML(typ="safe").load((DATA_DIR / "labels.yaml").read_text(encoding="utf-8"))
    events = labels["video"][clip]["events"]
    return [label_window(e) for e in events if e["type"] == "drawer_open"]


@pytest.mark.parametrize("key", sorted(CLIPS))
def test_each_drawer_opening_is_recorded_from_open_to_shut(key: str, runs: dict[str, ClipRun]) -> None:
    """One case_opened per labelled opening, starting and ending within a second of the label,
    and no other: the cashier's hands over the shut drawer and the pans are not openings."""
    run, clip = runs[key], CLIPS[key][1]
    expected = drawer_labels(clip)
    assert expected, f"{clip}: no drawer_open label"
    openings = sorted((d for d in run.events if d.type == "case_opened"), key=lambda d: d.start)
    assert len(openings) == len(expected), [(d.start, d.end) for d in openings]
    for d, (start, end) in zip(openings, expected, strict=True):
        assert abs(d.start - start) <= TOLERANCE_S, (d.start, start)
        assert d.end is not None and abs(d.end - end) <= TOLERANCE_S, (d.end, end)
        assert d.detected - d.start <= TOLERANCE_S  # reported promptly, dated from its first sight
        assert d.description == "Cash drawer opened"  # first report, when it is seen open


@pytest.mark.parametrize("key", sorted(CLIPS))
def test_drawer_state_frame_by_frame(key: str, runs: dict[str, ClipRun]) -> None:
    """Every analysed frame: open well inside the labelled window, never open well outside it
    (a second either side is left to the tolerance), known closed soon after the start."""
    run, clip = runs[key], CLIPS[key][1]
    (start, end), *_ = drawer_labels(clip)
    inside = outside = 0
    for pts, obs in sorted(run.frames.items()):
        state = obs.zones.get("drawer")
        assert state is not None
        if start + TOLERANCE_S <= pts <= end - TOLERANCE_S:
            inside += 1
            assert state.open is True, (pts, state)
        elif pts < start - TOLERANCE_S or pts > end + TOLERANCE_S:
            outside += 1
            assert state.open is not True, (pts, state)
            if pts >= 1.0:
                assert state.open is False, (pts, state)
    assert inside >= 1 and outside >= 10
