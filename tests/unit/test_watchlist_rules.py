"""Track-level watchlist decisions, pure: no lucky frame, open set, negatives, one hit per appearance."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from gemwatch.rules.watchlist import EVENT_TYPE, Decision, WatchlistRule, judge
from gemwatch.types import FaceSighting, Observation, Person
from gemwatch.watchlist.config import WatchlistConfig
from gemwatch.watchlist.gallery import GallerySnapshot

RNG = np.random.default_rng(7)


def unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v)).astype(np.float32)


A, B = unit(RNG.normal(size=128)), unit(RNG.normal(size=128))  # two people, ~1.4 apart


def near(v: np.ndarray, d: float) -> np.ndarray:
    """A point at distance ``d`` from ``v``."""
    noise = RNG.normal(size=128)
    noise -= noise @ v * v
    return (v + d * noise / np.linalg.norm(noise)).astype(np.float32)


def gallery(*, negatives: list[tuple[int, np.ndarray]] | None = None) -> GallerySnapshot:
    negatives = negatives or []
    return GallerySnapshot(
        entry_ids=("a", "b"),
        labels=("Person A", "Person B"),
        roles=(None, None),
        positives=np.stack([A, B]),
        owner=np.array([0, 1]),
        negatives=np.stack([n for _, n in negatives]) if negatives else np.zeros((0, 128), np.float32),
        neg_owner=np.array([k for k, _ in negatives], np.int64),
        thumbs=(None, None),
        version="1",
    )


def test_one_lucky_frame_never_matches() -> None:
    v = judge([(0.0, near(A, 0.3))], gallery(), match_distance=0.6, min_shots=2, min_gap_s=0.2)
    assert v.decision == Decision.UNKNOWN


def test_two_shots_too_close_in_time_count_once() -> None:
    shots = [(0.0, near(A, 0.3)), (0.05, near(A, 0.3))]
    assert (
        judge(shots, gallery(), match_distance=0.6, min_shots=2, min_gap_s=0.2).decision == Decision.UNKNOWN
    )
    shots.append((0.4, near(A, 0.35)))
    v = judge(shots, gallery(), match_distance=0.6, min_shots=2, min_gap_s=0.2)
    assert (v.decision, v.entry, v.shots) == (Decision.MATCH, 0, 2)


@pytest.mark.parametrize("d", [0.65, 0.9, 1.2])
def test_stranger_is_no_match(d: float) -> None:
    shots = [(0.0, near(A, d)), (0.5, near(A, d)), (1.0, near(B, d))]
    assert (
        judge(shots, gallery(), match_distance=0.6, min_shots=2, min_gap_s=0.2).decision == Decision.NO_MATCH
    )


def test_a_closer_negative_vetoes_the_entry() -> None:
    face = near(A, 0.45)
    shots = [(0.0, face), (0.5, face)]
    assert judge(shots, gallery(), match_distance=0.6, min_shots=2, min_gap_s=0.2).decision == Decision.MATCH
    g = gallery(negatives=[(0, near(face, 0.05))])
    assert judge(shots, g, match_distance=0.6, min_shots=2, min_gap_s=0.2).decision != Decision.MATCH


def _obs(ts: float, people: tuple[int, ...], faces: list[tuple[int, np.ndarray]]) -> Observation:
    return Observation(
        camera_id="door",
        ts=ts,
        width=640,
        height=360,
        people=tuple(Person(t, (10.0, 10.0, 110.0, 300.0), 0.9) for t in people),
        detector_ran=True,
        faces=tuple(FaceSighting(t, ts, (30.0, 20.0, 90.0, 90.0), e, 0.8, True) for t, e in faces),
    )


def test_rule_raises_one_hit_per_appearance() -> None:
    rule = WatchlistRule("door", gallery, appearance_gap_s=2.0)
    events = []
    # Appearance 1: track 1 matches at its second shot, then a second track of the same person.
    events += rule.update(_obs(0.0, (1,), [(1, near(A, 0.3))]))
    assert not events
    events += rule.update(_obs(0.4, (1,), [(1, near(A, 0.3))]))
    assert [e.type for e in events] == [EVENT_TYPE]
    events += rule.update(_obs(0.8, (1, 2), [(2, near(A, 0.3))]))
    events += rule.update(_obs(1.2, (2,), [(2, near(A, 0.3))]))
    assert len([e for e in events if not e.ended]) == 1  # the second track folds in
    # Gone for longer than the gap: the appearance ends; a later sighting is a new hit.
    events += rule.update(_obs(1.6, (), []))
    events += rule.update(_obs(4.0, (), []))
    ended = [e for e in events if e.ended]
    assert len(ended) == 1 and ended[0].id == events[0].id
    events += rule.update(_obs(10.0, (5,), [(5, near(A, 0.3))]))
    events += rule.update(_obs(10.4, (5,), [(5, near(A, 0.3))]))
    assert len([e for e in events if not e.ended]) == 2
    assert events[0].scores["shots"] >= 2 and "Check before acting" in events[0].description
    # A stranger alongside never raises anything.
    assert rule.update(_obs(11.0, (6,), [(6, near(B, 0.9))])) == []
    assert rule.decision(6) == Decision.UNKNOWN
    rule.update(_obs(11.5, (6,), [(6, near(B, 0.9))]))
    assert rule.decision(6) == Decision.NO_MATCH


def test_unusable_faces_are_ignored() -> None:
    rule = WatchlistRule("door", gallery)
    bad = [FaceSighting(1, t, (0, 0, 10, 10), near(A, 0.2), 0.1, False) for t in (0.0, 0.5, 1.0)]
    for s in bad:
        obs = Observation(
            "door", s.ts, 640, 360, (Person(1, (0, 0, 50, 100), 0.9),), detector_ran=True, faces=(s,)
        )
        assert rule.update(obs) == []


def test_policy_switches_follow_the_law() -> None:
    with pytest.raises(ValidationError, match="dpia_reference"):
        WatchlistConfig(policy="face_matching")
    with pytest.raises(ValidationError, match="Portland"):
        WatchlistConfig(policy="face_matching", jurisdiction="us-portland", dpia_reference="D")
    with pytest.raises(ValidationError, match="legal_basis"):
        WatchlistConfig(policy="face_matching", jurisdiction="us-il", dpia_reference="D")
    ok = WatchlistConfig(
        policy="face_matching", jurisdiction="us-il", dpia_reference="D", legal_basis="written consent"
    )
    assert ok.matching and ok.sharing
    assert WatchlistConfig(policy="description_only", jurisdiction="eu").sharing
    assert not WatchlistConfig().sharing  # off by default
