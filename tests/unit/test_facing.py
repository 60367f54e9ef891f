"""Which way a person faces (rules/facing.py), on synthetic COCO keypoints: the front from the
shoulder line and its left/right labels, at, below and above every threshold, and unknown
(None) whenever the keypoints do not settle it."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gemwatch.rules.facing import (
    AWAY_DEG,
    FACE_ABSENT,
    MIN_SCORE,
    MIN_SPAN,
    UNKNOWN_GAP_S,
    TurnWatch,
    chest_point,
    facing_angle,
    front_direction,
    turned_away,
)
from gemwatch.types import LEFT_SHOULDER, RIGHT_SHOULDER, Person

BOX = (100.0, 100.0, 300.0, 900.0)  # 800 px tall
HEIGHT = BOX[3] - BOX[1]
CHEST = (200.0, 300.0)


def pose(front_deg: float, *, span: float = 160.0, shoulder: float = 0.6, face: float = 0.5) -> np.ndarray:
    """Keypoints of a person whose chest faces ``front_deg`` (picture angle: 0 = right, 90 =
    down the picture, toward the camera), shoulders ``span`` px apart around CHEST."""
    kp = np.zeros((17, 3), dtype=np.float32)
    kp[:5, 2] = face  # nose, eyes, ears
    a = math.radians(front_deg)
    front = np.array([math.cos(a), math.sin(a)])
    # front = (S_y, -S_x) with S = right - left, so S = (-front_y, front_x)
    s = np.array([-front[1], front[0]]) * span
    kp[LEFT_SHOULDER, :2] = np.array(CHEST) - s / 2
    kp[RIGHT_SHOULDER, :2] = np.array(CHEST) + s / 2
    kp[[LEFT_SHOULDER, RIGHT_SHOULDER], 2] = shoulder
    return kp


def person(kp: np.ndarray | None) -> Person:
    return Person(1, BOX, 0.9, keypoints=kp)


def toward(deg: float, dist: float = 400.0) -> tuple[float, float]:
    a = math.radians(deg)
    return CHEST[0] + dist * math.cos(a), CHEST[1] + dist * math.sin(a)


def test_front_follows_the_left_right_labels() -> None:
    # facing the camera: right shoulder on the picture's left → front down the picture
    kp = np.zeros((17, 3), dtype=np.float32)
    kp[:3, 2] = 0.5
    kp[LEFT_SHOULDER] = (260, 300, 0.6)
    kp[RIGHT_SHOULDER] = (140, 300, 0.6)
    assert front_direction(kp, HEIGHT) == pytest.approx([0.0, 1.0])
    # back to the camera: the labels the other way round → front up the picture
    kp[[LEFT_SHOULDER, RIGHT_SHOULDER]] = kp[[RIGHT_SHOULDER, LEFT_SHOULDER]]
    assert front_direction(kp, HEIGHT) == pytest.approx([0.0, -1.0])


@pytest.mark.parametrize(
    ("off_deg", "expected"),
    [
        (0.0, False),
        (90.0, False),
        (AWAY_DEG - 1.0, False),
        (AWAY_DEG, True),
        (AWAY_DEG + 1.0, True),
        (180.0, True),
    ],
)
def test_turned_away_at_below_and_above_the_angle(off_deg: float, expected: bool) -> None:
    for front in (0.0, 45.0, 170.0, -90.0):  # any orientation in the picture
        p = person(pose(front))
        assert facing_angle(p, toward(front + off_deg)) == pytest.approx(off_deg, abs=1e-3)
        assert turned_away(p, toward(front + off_deg)) is expected
        assert turned_away(p, toward(front - off_deg)) is expected


@pytest.mark.parametrize(("score", "known"), [(MIN_SCORE - 0.01, False), (MIN_SCORE, True), (0.9, True)])
def test_unsure_shoulders_are_unknown(score: float, known: bool) -> None:
    kp = pose(180.0)
    kp[RIGHT_SHOULDER, 2] = score
    assert (turned_away(person(kp), toward(0.0)) is not None) is known
    if known:
        assert turned_away(person(kp), toward(0.0)) is True


@pytest.mark.parametrize(
    ("span", "known"), [(MIN_SPAN * HEIGHT - 1, False), (MIN_SPAN * HEIGHT + 1e-3, True)]
)
def test_profile_view_short_shoulder_line_is_unknown(span: float, known: bool) -> None:
    verdict = turned_away(person(pose(180.0, span=span)), toward(0.0))
    assert verdict is (True if known else None)


@pytest.mark.parametrize(("face", "known"), [(0.0, False), (FACE_ABSENT - 0.01, False), (FACE_ABSENT, True)])
def test_front_toward_the_camera_without_a_face_is_unknown(face: float, known: bool) -> None:
    """A front pointing at the camera with no nose and no eye seen: the labels are probably
    swapped on a back view, so the front is unknown rather than reversed."""
    verdict = turned_away(person(pose(90.0, face=face)), toward(-90.0))  # customer up the picture
    assert verdict is (True if known else None)


def test_front_away_from_the_camera_needs_no_face() -> None:
    # back to the camera, the face unseen: the usual case of an associate seen from behind
    assert turned_away(person(pose(-90.0, face=0.0)), toward(-90.0)) is False
    assert turned_away(person(pose(-90.0, face=0.0)), toward(90.0)) is True


def test_no_keypoints_or_target_on_the_chest_is_unknown() -> None:
    assert turned_away(person(None), toward(0.0)) is None
    assert turned_away(person(pose(0.0)), toward(0.0, dist=MIN_SPAN * HEIGHT - 1)) is None
    assert turned_away(person(pose(0.0)), toward(180.0, dist=MIN_SPAN * HEIGHT + 1)) is True


def test_chest_point_between_the_shoulders_else_a_third_down_the_box() -> None:
    assert chest_point(person(pose(0.0))) == pytest.approx(CHEST)
    assert chest_point(person(None)) == pytest.approx((200.0, 100.0 + HEIGHT / 3))
    unsure = pose(0.0, shoulder=MIN_SCORE - 0.01)
    assert chest_point(person(unsure)) == pytest.approx((200.0, 100.0 + HEIGHT / 3))


# ------------------------------------------------------------------------------ TurnWatch


def feed(watch: TurnWatch, timeline: list[tuple[float, bool | None]]) -> float:
    for ts, away in timeline:
        watch.update(ts, away)
    return watch.away_for(timeline[-1][0])


def test_run_measures_only_seen_turned_away_time() -> None:
    assert feed(TurnWatch(), [(t / 5, True) for t in range(16)]) == pytest.approx(3.0)
    # facing again ends the run
    assert feed(TurnWatch(), [(0.0, True), (2.0, True), (2.2, False)]) == 0.0
    assert feed(TurnWatch(), [(0.0, True), (2.0, True), (2.2, False), (2.4, True)]) == 0.0


@pytest.mark.parametrize(
    ("gap", "bridged"), [(UNKNOWN_GAP_S - 0.2, True), (UNKNOWN_GAP_S, True), (UNKNOWN_GAP_S + 0.2, False)]
)
def test_unknown_gap_is_bridged_only_briefly(gap: float, bridged: bool) -> None:
    timeline: list[tuple[float, bool | None]] = [(0.0, True), (1.0, True)]
    timeline += [(1.0 + gap * k / 4, None) for k in range(1, 4)]  # nothing known in between
    timeline += [(1.0 + gap, True)]
    # bridged: the run spans from 0; not bridged: a new run starts at the last sighting
    assert feed(TurnWatch(), timeline) == pytest.approx(1.0 + gap if bridged else 0.0)
    # the same without the unknown sightings (the person out of view)
    assert feed(TurnWatch(), [(0.0, True), (1.0, True), (1.0 + gap, True)]) == pytest.approx(
        1.0 + gap if bridged else 0.0
    )


def test_unknown_alone_never_makes_a_run() -> None:
    assert feed(TurnWatch(), [(t / 5, None) for t in range(50)]) == 0.0
    # a run gone stale (unknown for longer than the gap) reads as none
    watch = TurnWatch()
    feed(watch, [(0.0, True), (3.0, True)])
    assert watch.away_for(3.0 + UNKNOWN_GAP_S + 0.1) == 0.0
