"""The counter on real POS footage (../shared/data/counter_hands): the seated cashier is staff and
the person at the desk a customer, for the whole clip, a showing session forms between them, and
what leaves the desk top is seen. Zones come from the checked-in counter configs."""

from __future__ import annotations

import sys

import pytest

from conftest import REPO_ROOT, data_file

sys.path.insert(0, str(REPO_ROOT / "eval"))
from counter import ClipRun, check_roles, load_setup, run_clip
from gemwatch.rules.facing import chest_point, turned_away
from gemwatch.types import Role

FIXTURES = REPO_ROOT / "tests" / "fixtures"


def analysed(name: str, clip: str, tmp_path_factory) -> ClipRun:
    video = data_file(clip)
    return run_clip(load_setup(FIXTURES / name, video.parents[1], tmp_path_factory.mktemp(name)))


@pytest.fixture(scope="module")
def pos1(tmp_path_factory) -> ClipRun:
    return analysed("counter_pos_theft.yml", "counter_hands/pos_counter_theft.mp4", tmp_path_factory)


@pytest.fixture(scope="module")
def pos2(tmp_path_factory) -> ClipRun:
    return analysed("counter_pos_theft2.yml", "counter_hands/pos_counter_theft2.mp4", tmp_path_factory)


def cashier_like(obs, p) -> bool:
    """The seated cashier: lower left of the picture (both clips)."""
    x1, y1, _x2, y2 = p.box
    return x1 < 0.1 * obs.width and y2 > 0.7 * obs.height and y1 > 0.3 * obs.height


def standing_at_the_desk(obs, p) -> bool:
    """The customer: standing beyond the desk, upper right."""
    x1, _, x2, y2 = p.box
    return (x1 + x2) / 2 > 0.5 * obs.width and y2 < 0.7 * obs.height


@pytest.mark.parametrize("clip", ["pos1", "pos2"])
def test_roles_right_at_every_hand_labelled_instant(clip: str, request) -> None:
    run: ClipRun = request.getfixturevalue(clip)
    checks = check_roles(run)
    assert len(checks) >= 6
    tracked = [c for c in checks if c.got is not None]
    assert len(tracked) >= 6
    assert all(c.got == c.role for c in tracked), [(c.t, c.role, c.got) for c in tracked]


@pytest.mark.parametrize("clip", ["pos1", "pos2"])
def test_roles_never_wrong_and_known_after_a_second(clip: str, request) -> None:
    """Over the whole clip: the cashier is never a customer and the customer never staff; each
    is known within about a second of being tracked (a role is never guessed)."""
    run: ClipRun = request.getfixturevalue(clip)
    cashier_seen = cashier_staff = customer_seen = customer_known = 0
    first_seen: dict[int, float] = {}
    for pts in sorted(run.frames):
        obs = run.frames[pts]
        for p in obs.people:
            first_seen.setdefault(p.track_id, pts)
            settled = pts - first_seen[p.track_id] >= 1.2
            if cashier_like(obs, p):
                assert p.role != Role.CUSTOMER, (pts, p)
                if settled:
                    cashier_seen += 1
                    cashier_staff += p.role == Role.STAFF
            elif standing_at_the_desk(obs, p):
                assert p.role != Role.STAFF, (pts, p)
                if settled:
                    customer_seen += 1
                    customer_known += p.role == Role.CUSTOMER
    assert cashier_seen > 20 and cashier_staff == cashier_seen
    assert customer_seen > 5 and customer_known / customer_seen >= 0.9


def test_bystanders_are_not_given_a_role(pos2) -> None:
    """People standing far off at the top of the picture are neither staff nor customers."""
    for obs in pos2.frames.values():
        for p in obs.people:
            if p.box[3] < 0.12 * obs.height:
                assert p.role == Role.UNKNOWN, p


@pytest.mark.parametrize(("clip", "start", "end"), [("pos1", 1.0, 6.5), ("pos2", 1.0, 9.0)])
def test_a_showing_session_forms(clip: str, start: float, end: float, request) -> None:
    run: ClipRun = request.getfixturevalue(clip)
    assert len(run.sessions) == 1
    s, e = run.sessions[0]
    assert abs(s - start) <= 1.0 and e >= end - 1.0
    final = next(d for d in run.events if d.type == "showing_session")
    assert "staff" in final.description and "customer" in final.description


def test_laptop_sleeve_lifted_from_the_desk_is_seen(pos1) -> None:
    """The customer's laptop sleeve lies on the desk from the start and is lifted about 6.5 s
    in (MANIFEST); the camera pans right after, the desk top is measured again at about 8 s."""
    lifted = [d for d in pos1.events if d.type == "item_removed"]
    assert len(lifted) == 1
    assert lifted[0].start <= 7.0 <= lifted[0].detected <= 10.0
    assert not [
        d
        for d in pos1.events
        if d.type not in ("item_removed", "showing_session", "hand_over", "case_opened")
    ]


def test_earphones_put_on_the_desk_under_the_cashiers_arms_are_seen(pos2) -> None:
    """The earphones are put on the desk at 1.3-1.9 s (labels.yaml), where the cashier's arms
    rested when watching began, and lie under his arms until they are lifted at 8.6-9.0 s: the
    desk is first seen clear enough to arm it with the earphones on it. Their placement is
    reported once (the desk's resting look is presumed bare where something appeared since the
    first look: zones.presume_clear), within a few seconds; arms and sleeves over them are no
    removal, and nothing else is raised."""
    placed = [d for d in pos2.events if d.type == "item_placed"]
    assert len(placed) == 1, [(d.type, d.start) for d in pos2.events]
    assert placed[0].start <= 1.9 + 1.0 and placed[0].detected <= 6.0
    assert not [d for d in pos2.events if d.type in ("item_removed", "item_missing", "tray_removed")]
    allowed = ("showing_session", "hand_over", "case_opened", "item_placed")
    assert not [d for d in pos2.events if d.type not in allowed], [d.type for d in pos2.events]


def test_the_cashier_is_never_judged_turned_away_from_the_customer(pos1, pos2) -> None:
    """The seated cashier faces the desk and the customer the whole clip (both clips): whenever
    the pose keypoints tell, he faces the customer (rules/facing.py), so customer_alone cannot be
    raised by a turned back here. Most sightings lack good shoulder keypoints (the cashier's
    right shoulder is at the picture's edge), so the two clips are pooled."""
    verdicts: list[bool] = []
    for obs in [*pos1.frames.values(), *pos2.frames.values()]:
        staff = [p for p in obs.people if p.role == Role.STAFF]
        customers = [p for p in obs.people if p.role == Role.CUSTOMER]
        for s in staff:
            for c in customers:
                v = turned_away(s, chest_point(c))
                if v is not None:
                    verdicts.append(v)
    assert len(verdicts) >= 5, len(verdicts)  # most sightings lack good shoulders (docs/counter.md)
    assert not any(verdicts), f"{sum(verdicts)} of {len(verdicts)} sightings turned away"
