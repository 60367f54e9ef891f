"""Staff versus customer on synthetic pictures: people drawn as boxes with a shirt colour,
standing in the staff area, on the customer side, or elsewhere."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from gemwatch.config.counter import Roles, UniformSample
from gemwatch.config.models import Camera, Zone
from gemwatch.perception.roles import RoleAssigner, colour_histogram, hex_histogram, similarity
from gemwatch.types import Person, Role

W, H = 640, 480
TEAL, RED, NAVY = (150, 150, 20), (40, 40, 200), (90, 40, 30)  # BGR
STAFF_AREA = Zone(id="behind", kind="staff_area", polygon=[(0.0, 0.6), (0.5, 0.6), (0.5, 1.0), (0.0, 1.0)])
CUSTOMER_SIDE = Zone(id="front", kind="counter", polygon=[(0.5, 0.0), (1.0, 0.0), (1.0, 0.6), (0.5, 0.6)])
DT = 0.2


def picture(people: list[tuple[tuple[float, float, float, float], tuple[int, int, int]]]) -> np.ndarray:
    img = np.full((H, W, 3), 200, np.uint8)
    for (x1, y1, x2, y2), shirt in people:
        cv2.rectangle(img, (int(x1), int(y1)), (int(x2), int(y2)), (60, 60, 60), -1)  # trousers, arms
        h = y2 - y1
        cv2.rectangle(img, (int(x1) + 4, int(y1 + 0.15 * h)), (int(x2) - 4, int(y1 + 0.55 * h)), shirt, -1)
    return img


AT_STAFF = (60.0, 250.0, 140.0, 460.0)  # feet at y 460: inside the staff area
AT_FRONT = (420.0, 60.0, 500.0, 250.0)  # feet at y 250: on the customer side
ELSEWHERE = (200.0, 20.0, 260.0, 160.0)  # feet in neither zone


class Scene:
    def __init__(
        self, roles: Roles | None = None, zones: tuple[Zone, ...] = (STAFF_AREA, CUSTOMER_SIDE)
    ) -> None:
        self.assigner = RoleAssigner(Camera(id="c", url="x", zones=list(zones)), roles or Roles())
        self.ts = 0.0

    def step(
        self, people: list[tuple[int, tuple[float, float, float, float], tuple[int, int, int]]]
    ) -> dict[int, Role]:
        image = picture([(box, shirt) for _, box, shirt in people])
        persons = tuple(Person(tid, box, 0.8) for tid, box, _ in people)
        out = self.assigner.assign(persons, image, self.ts)
        self.ts = round(self.ts + DT, 6)
        return {p.track_id: p.role for p in out}

    def hold(self, seconds: float, people) -> dict[int, Role]:
        roles: dict[int, Role] = {}
        for _ in range(round(seconds / DT)):
            roles = self.step(people)
        return roles


def test_staff_side_customer_side_and_unknown() -> None:
    s = Scene()
    first = s.step([(1, AT_STAFF, TEAL), (2, AT_FRONT, RED), (3, ELSEWHERE, NAVY)])
    assert first == {1: Role.UNKNOWN, 2: Role.UNKNOWN, 3: Role.UNKNOWN}  # nothing is guessed
    roles = s.hold(2.0, [(1, AT_STAFF, TEAL), (2, AT_FRONT, RED), (3, ELSEWHERE, NAVY)])
    assert roles == {1: Role.STAFF, 2: Role.CUSTOMER, 3: Role.UNKNOWN}
    assert s.assigner.tracks[1].source == "staff area"


@pytest.mark.parametrize(("seconds", "role"), [(0.8, Role.UNKNOWN), (1.2, Role.STAFF)])
def test_entering_in_the_staff_area_makes_staff_after_entry_s(seconds: float, role: Role) -> None:
    s = Scene(Roles(entry_s=1.0, staff_area_s=5.0))
    assert s.hold(seconds, [(1, AT_STAFF, TEAL)])[1] == role


def walk(
    a: tuple[float, ...], b: tuple[float, ...], steps: int = 8
) -> list[tuple[float, float, float, float]]:
    """Boxes from ``a`` to ``b`` in ``steps`` frames: people walk, they do not teleport."""
    return [tuple(x + (y - x) * (i + 1) / steps for x, y in zip(a, b, strict=True)) for i in range(steps)]  # type: ignore[misc]


def test_walking_into_the_staff_area_needs_staff_area_s() -> None:
    s = Scene(Roles(entry_s=1.0, staff_area_s=2.0, customer_s=10.0))
    s.hold(1.0, [(1, ELSEWHERE, NAVY)])  # first seen elsewhere: did not enter there
    for box in walk(ELSEWHERE, AT_STAFF):  # the last five steps (1.0 s) are inside
        s.step([(1, box, NAVY)])
    assert s.hold(0.8, [(1, AT_STAFF, NAVY)])[1] == Role.UNKNOWN  # 1.8 s inside
    assert s.hold(0.2, [(1, AT_STAFF, NAVY)])[1] == Role.STAFF  # 2.0 s


def test_roles_stick() -> None:
    s = Scene()
    s.hold(2.0, [(1, AT_STAFF, TEAL), (2, AT_FRONT, RED)])
    # the customer walks into the staff side, the associate round the counter
    for a, b in zip(walk(AT_STAFF, AT_FRONT), walk(AT_FRONT, AT_STAFF), strict=True):
        s.step([(1, a, TEAL), (2, b, RED)])
    roles = s.hold(4.0, [(1, AT_FRONT, TEAL), (2, AT_STAFF, RED)])
    assert roles == {1: Role.STAFF, 2: Role.CUSTOMER}


@pytest.mark.parametrize("how", ["jump", "look"])
def test_an_id_handed_to_someone_else_loses_its_role(how: str) -> None:
    """Trackers swap ids when people cross: the role belongs to the person, not the number."""
    s = Scene()
    s.hold(2.0, [(1, AT_FRONT, RED)])
    assert s.assigner.role_of(1) == Role.CUSTOMER
    if how == "jump":  # id 1 now sits on the shopkeeper across the counter
        assert s.step([(1, AT_STAFF, TEAL)])[1] == Role.UNKNOWN
    else:  # same place, someone else's shirt for three sightings
        roles = [s.step([(1, AT_FRONT, TEAL)])[1] for _ in range(3)]
        assert roles[:2] == [Role.CUSTOMER, Role.CUSTOMER] and roles[2] == Role.UNKNOWN
    assert s.hold(2.0, [(1, AT_STAFF if how == "jump" else AT_FRONT, TEAL)])[1] != Role.UNKNOWN


def test_a_new_track_where_the_cashier_vanished_keeps_the_role() -> None:
    s = Scene()
    s.hold(2.0, [(1, AT_STAFF, TEAL)])
    s.hold(1.0, [])  # detector gap
    assert s.step([(7, AT_STAFF, TEAL)])[7] == Role.STAFF
    assert "kept from track 1" in (s.assigner.tracks[7].source or "")


def test_a_different_looking_or_late_track_does_not_inherit() -> None:
    s = Scene(Roles(keep_s=3.0, entry_s=5.0, staff_area_s=5.0))
    s.hold(2.0, [(1, AT_STAFF, TEAL)])
    s.assigner.tracks[1].role = Role.STAFF  # given earlier by another source
    assert s.step([(8, AT_STAFF, RED)])[8] == Role.UNKNOWN  # someone else in the same place
    s.hold(3.6, [])
    assert s.step([(9, AT_STAFF, TEAL)])[9] == Role.UNKNOWN  # too long after


def test_uniform_colours_make_staff_anywhere() -> None:
    roles = Roles(
        staff_area=False, uniforms=[UniformSample(name="teal polo", colours=["#149696"])], uniform_s=1.0
    )
    s = Scene(roles, zones=(CUSTOMER_SIDE,))
    got = s.hold(1.6, [(1, ELSEWHERE, TEAL), (2, AT_FRONT, RED)])
    assert got == {1: Role.STAFF, 2: Role.CUSTOMER}
    assert s.assigner.tracks[1].source == "uniform"


def test_uniform_from_a_snapshot_crop(tmp_path) -> None:
    snap = picture([((100.0, 100.0, 200.0, 400.0), TEAL)])
    path = tmp_path / "snap.png"
    cv2.imwrite(str(path), snap)
    sample = UniformSample(name="teal", image=path, box=(110 / W, 160 / H, 190 / W, 250 / H))
    s = Scene(Roles(staff_area=False, uniforms=[sample]), zones=(CUSTOMER_SIDE,))
    got = s.hold(1.6, [(1, AT_FRONT, TEAL), (2, ELSEWHERE, NAVY)])
    assert got == {1: Role.STAFF, 2: Role.UNKNOWN}


def test_colour_similarity_separates_shirts() -> None:
    teal = colour_histogram(np.full((20, 20, 3), TEAL, np.uint8))
    assert similarity(teal, hex_histogram(["#149696"])) > 0.8
    assert similarity(colour_histogram(np.full((20, 20, 3), RED, np.uint8)), teal) < 0.1


class Badge:
    """A stand-in identity source (the watchlist's staff faces plug in the same way)."""

    name = "badge"

    def role_for(self, person: Person, image: np.ndarray, ts: float) -> Role | None:
        return Role.GUARD if person.track_id == 5 else None


def test_identity_sources_win() -> None:
    s = Scene()
    s.assigner.add_source(Badge())
    got = s.hold(2.0, [(5, AT_FRONT, RED), (6, AT_FRONT, RED)])
    assert got == {5: Role.GUARD, 6: Role.CUSTOMER}
    assert s.assigner.tracks[5].source == "badge"


class _StaffGallery:
    """Stands in for the watchlist's FaceStage: track 5's face matched an enrolled guard."""

    def staff_role(self, track_id: int) -> tuple[Role, str] | None:
        return (Role.GUARD, "entry-guard-1") if track_id == 5 else None


def test_enrolled_staff_face_wins_over_zones() -> None:
    from gemwatch.watchlist.runtime import StaffFaceSource

    s = Scene()
    s.assigner.add_source(StaffFaceSource(_StaffGallery()))  # type: ignore[arg-type]
    roles = s.hold(2.0, [(5, AT_FRONT, RED), (6, AT_FRONT, NAVY)])
    assert roles == {5: Role.GUARD, 6: Role.CUSTOMER}  # a guard on the customer side is still a guard
    assert s.assigner.tracks[5].source == "staff face"
