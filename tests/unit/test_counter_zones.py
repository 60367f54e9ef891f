"""Zone appearance on synthetic counters: a dark tray with bright pieces, arms reaching over it,
lighting that drifts by a third, camera noise. Perception and the tray rule together, as in
the pipeline (ZoneWatcher → Observation → rules)."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from fixtures.counter_scenes import (
    HEIGHT,
    PAD_POLYGON,
    SLOTS,
    TRAY,
    TRAY_POLYGON,
    WIDTH,
    Arm,
    CounterScene,
)
from gemwatch.config.counter import CaseParams, ZoneAnalysis
from gemwatch.config.models import Camera, Zone
from gemwatch.perception.zones import (
    ZoneWatcher,
    bare_pad,
    count_pieces,
    feature_match,
    paint_bare,
    parse_sensor_payload,
    presume_clear,
    structural_change,
    zone_window,
)
from gemwatch.rules.counter import build_counter_rules
from gemwatch.types import Event, Observation, Person, ZoneState

FPS = 5.0
DT = 1.0 / FPS


class Counter:
    """A camera with zones, its ZoneWatcher and its counter rules, fed picture by picture."""

    def __init__(self, *zones: Zone, cfg: ZoneAnalysis | None = None) -> None:
        self.camera = Camera(id="cam", url="synthetic", zones=list(zones))
        self.watcher = ZoneWatcher(self.camera, cfg or ZoneAnalysis())
        self.rules = build_counter_rules(self.camera)
        self.events: list[Event] = []
        self.ts = 0.0
        self.states: list[tuple[float, dict[str, ZoneState]]] = []

    def show(
        self, image: np.ndarray, people: tuple[Person, ...] = (), seconds: float = DT
    ) -> ZoneState | None:
        """Show the same scene for ``seconds`` (frames at 5 fps, fresh camera noise each)."""
        state = None
        for _ in range(max(1, round(seconds * FPS))):
            states = self.watcher.update(image, self.ts, people)
            self.states.append((self.ts, states))
            obs = Observation("cam", self.ts, WIDTH, HEIGHT, people=people, zones=states)
            for rule in self.rules:
                self.events.extend(rule.update(obs))
            state = next(iter(states.values()), None)
            self.ts = round(self.ts + DT, 6)
        return state

    def found(self, kind: str) -> list[Event]:
        return [e for e in self.events if e.type == kind]


def tray_zone(**kw) -> Zone:
    return Zone(id="tray", name="Tray A", kind="tray", polygon=TRAY_POLYGON, **kw)


@pytest.fixture(scope="module")
def scene() -> CounterScene:
    return CounterScene(seed=7)


# ------------------------------------------------------------------------------- counting


@pytest.mark.parametrize("n", range(13))
def test_counts_are_exact_for_0_to_12_pieces_in_any_light(scene: CounterScene, n: int) -> None:
    rng = np.random.default_rng(n)
    pieces = rng.choice(12, n, replace=False)
    for gain in (0.7, 1.0, 1.3):
        counter = Counter(tray_zone())
        image = scene.render(pieces, gain=gain, slope=0.15, noise=4.0)
        state = counter.show(image, seconds=2.0)
        assert state is not None and state.measured and state.armed
        assert state.count == n, f"gain {gain}: counted {state.count}"
        assert state.reference_count == n
        assert state.count_confidence >= 0.8


def test_count_confidence_drops_for_a_piece_near_the_contrast_limit() -> None:
    grey = np.full((100, 100), 60.0, np.float32)
    mask = np.ones((100, 100), bool)
    grey[20:28, 20:28] = 200.0  # clear piece
    grey[60:68, 60:68] = 60.0 * 1.2  # barely brighter than the tray
    count = count_pieces(grey, mask, (0.002, 0.05), 0.18)
    assert count.count == 2 and count.confidence < 0.3
    grey[60:68, 60:68] = 200.0
    assert count_pieces(grey, mask, (0.002, 0.05), 0.18).confidence == pytest.approx(1.0)


def test_an_arm_reaching_in_from_the_edge_is_not_a_piece() -> None:
    grey = np.full((100, 100), 60.0, np.float32)
    grey[40:48, 0:60] = 180.0  # from the edge
    assert count_pieces(grey, np.ones((100, 100), bool), (0.002, 0.05), 0.18).count == 0


# ----------------------------------------------------------------------------- structure


def test_structure_ignores_lighting_but_sees_a_tray_leave(scene: CounterScene) -> None:
    win = zone_window(TRAY_POLYGON, WIDTH, HEIGHT, 256)

    def grey(img: np.ndarray) -> np.ndarray:
        import cv2

        return cv2.GaussianBlur(
            cv2.cvtColor(win.sample(img, win.base), cv2.COLOR_BGR2GRAY).astype(np.float32), (0, 0), 1.0
        )

    ref = grey(scene.render(range(12)))
    for gain, slope in ((0.7, 0.0), (1.3, 0.0), (0.7, 0.2), (1.3, -0.2)):
        assert (
            structural_change(
                ref, grey(scene.render(range(12), gain=gain, slope=slope, noise=4.0)), win.mask
            ).score
            < 0.02
        )
    gone = scene.base.copy()
    x1, y1, x2, y2 = TRAY
    gone[y1 - 6 : y2 + 6, x1 - 6 : x2 + 6] = scene.base[10:20, 10:20].mean(axis=(0, 1))
    change = structural_change(ref, grey(np.clip(gone, 0, 255).astype(np.uint8)), win.mask)
    assert change.score > 0.6


# ------------------------------------------------------------------ occlusion and missing


def test_no_event_while_an_arm_is_over_the_tray_and_missing_within_1s_after(scene: CounterScene) -> None:
    counter = Counter(tray_zone())
    counter.show(scene.render(range(12)), seconds=2.0)
    assert counter.watcher._tracks["tray"].ref is not None
    # a hand reaches in, lingers and takes piece 5 (moving arm, person box from the detector)
    for i in range(15):
        arm = Arm((SLOTS[5][0] + 20 - 3 * i, SLOTS[5][1] + (i % 3)))
        state = counter.show(
            scene.render([p for p in range(12) if p != 5 or i < 8], arms=[arm]), (Person(1, arm.box, 0.8),)
        )
        assert state is not None and not state.measured
    assert not counter.events
    visible_again = counter.ts
    for _ in range(10):
        counter.show(scene.render([p for p in range(12) if p != 5]))
    missing = counter.found("item_missing")
    assert len(missing) == 1
    assert missing[0].end_ts is not None and missing[0].end_ts - visible_again <= 1.0
    assert "Tray A" in missing[0].description and "12 → 11" in missing[0].description


def test_an_arm_without_a_person_box_is_caught_by_motion(scene: CounterScene) -> None:
    counter = Counter(tray_zone())
    counter.show(scene.render(range(12)), seconds=2.0)
    for i in range(6):  # the detector missed the person: the moving arm alone hides the tray
        state = counter.show(scene.render(range(12), arms=[Arm((250 + 25 * i, 240))]))
        assert state is not None and not state.measured and state.moving
    assert not counter.events


def test_a_piece_put_back_while_hidden_is_no_event(scene: CounterScene) -> None:
    counter = Counter(tray_zone())
    counter.show(scene.render(range(12)), seconds=2.0)
    for i in range(10):
        arm = Arm((300 + 4 * i, 240))
        counter.show(scene.render(range(12), arms=[arm]), (Person(1, arm.box, 0.8),))
    counter.show(scene.render(range(12)), seconds=3.0)
    assert not counter.events


def test_tray_removed_and_returned(scene: CounterScene) -> None:
    counter = Counter(tray_zone())
    counter.show(scene.render(range(12)), seconds=2.0)
    empty = scene.base.copy()
    x1, y1, x2, y2 = TRAY
    empty[y1 - 6 : y2 + 6, x1 - 6 : x2 + 6] = scene.base[10:20, 10:20].mean(axis=(0, 1))
    counter.show(np.clip(empty, 0, 255).astype(np.uint8), seconds=2.0)
    removed = counter.found("tray_removed")
    assert len(removed) == 1 and not removed[0].ended
    counter.show(scene.render(range(12)), seconds=2.0)
    assert counter.found("tray_removed")[-1].ended
    assert not counter.found("item_missing")


def test_no_false_event_across_two_hours_of_lighting_drift(scene: CounterScene) -> None:
    """Daylight and lamps over two hours: gain ±30 %, a tilt across the counter, noise; a pair
    of frames every two minutes (so motion checks run), the tray full the whole time."""
    counter = Counter(tray_zone(), zone_pad())
    for step in range(61):
        t = step / 60.0
        gain = 1.0 + 0.3 * math.sin(2 * math.pi * t * 1.5)
        slope = 0.15 * math.cos(2 * math.pi * t)
        image = scene.render(range(12), gain=gain, slope=slope, noise=3.0)
        counter.ts = step * 120.0
        counter.show(image, seconds=0.4)
    assert counter.watcher._tracks["tray"].ref is not None
    last = counter.states[-1][1]
    assert last["tray"].count == 12 and last["tray"].change is not None and last["tray"].change < 0.05
    assert not [e for e in counter.events if e.type not in ("showing_session",)]


def zone_pad() -> Zone:
    return Zone(id="pad", name="Pad", kind="showing_area", polygon=PAD_POLYGON)


def test_sudden_light_switch_is_not_a_change(scene: CounterScene) -> None:
    counter = Counter(tray_zone(), zone_pad())
    counter.show(scene.render(range(12)), seconds=2.0)
    counter.show(scene.render(range(12), gain=1.3), seconds=2.0)
    counter.show(scene.render(range(12), gain=0.7), seconds=2.0)
    assert not counter.events


# ---------------------------------------------------------------------------- showing pad


def test_piece_put_on_the_pad_and_taken_away(scene: CounterScene) -> None:
    counter = Counter(zone_pad())
    counter.show(scene.render(range(12)), seconds=2.0)
    arm = Arm((300, 410))
    counter.show(scene.render(range(12), arms=[arm]), (Person(1, arm.box, 0.8),), seconds=1.0)
    counter.show(scene.render(range(12), on_pad=[(300, 400)]), seconds=2.0)
    counter.show(scene.render(range(12), arms=[arm]), (Person(1, arm.box, 0.8),), seconds=1.0)
    counter.show(scene.render(range(12)), seconds=2.0)
    kinds = [e.type for e in counter.events if e.type in ("item_placed", "item_removed")]
    assert kinds == ["item_placed", "item_removed"]
    placed = counter.found("item_placed")[0]
    assert placed.start_ts == pytest.approx(2.0)  # the reach that put it there


def test_a_piece_covered_by_a_resting_sleeve_is_not_taken_away(scene: CounterScene) -> None:
    """A piece on the pad, then a customer's sleeve resting over it (the rest of the pad in view
    and still, so the pad is measured): the piece's cells keep what they last showed, so no
    ``item_removed``; it is reported only once the pad is seen without it."""
    counter = Counter(zone_pad())
    counter.show(scene.render(range(12)), seconds=2.0)
    arm = Arm((300, 410))
    reach = (Person(1, arm.box, 0.8),)
    counter.show(scene.render(range(12), arms=[arm]), reach, seconds=1.0)
    counter.show(scene.render(range(12), on_pad=[(300, 400)]), seconds=2.0)
    assert [e.type for e in counter.events if e.type.startswith("item_")] == ["item_placed"]
    sleeve = (Person(2, (265.0, 365.0, 335.0, float(HEIGHT)), 0.8),)
    covered_from = counter.ts
    counter.show(scene.render(range(12), on_pad=[(300, 400)], bag=(272, 372, 328, 450)), sleeve, seconds=3.0)
    measured = [s["pad"] for t, s in counter.states if t >= covered_from and s["pad"].measured]
    assert len(measured) >= 5  # the pad was compared while the sleeve hid the piece
    counter.show(scene.render(range(12), on_pad=[(300, 400)]), seconds=2.0)
    assert [e.type for e in counter.events if e.type.startswith("item_")] == ["item_placed"]
    counter.show(scene.render(range(12), arms=[arm]), reach, seconds=1.0)
    counter.show(scene.render(range(12)), seconds=2.0)
    assert [e.type for e in counter.events if e.type.startswith("item_")] == ["item_placed", "item_removed"]


def test_a_piece_put_down_under_a_resting_arm_before_the_pad_is_first_seen_clear(scene: CounterScene) -> None:
    """Watching begins with an arm resting on the pad; a piece is put down under it; the arm
    moves aside and the pad is armed with the piece in view (pos_counter_theft2's earphones).
    The pad is plain and was hidden there at the first look, so its resting look is presumed
    bare: the placement is reported once the pad is armed, and the lift after it."""
    counter = Counter(zone_pad())
    arm = Arm((300, 410))  # across most of the pad: too little in view to arm it
    aside = Arm((395, 445), from_x=395)
    counter.show(scene.render(range(12), arms=[arm]), (Person(1, arm.box, 0.8),), seconds=1.0)
    counter.show(
        scene.render(range(12), arms=[arm], on_pad=[(300, 400)]), (Person(1, arm.box, 0.8),), seconds=1.0
    )
    counter.show(
        scene.render(range(12), arms=[aside], on_pad=[(300, 400)]), (Person(1, aside.box, 0.8),), seconds=3.0
    )
    assert [e.type for e in counter.events if e.type.startswith("item_")] == ["item_placed"]
    counter.show(scene.render(range(12), arms=[arm]), (Person(1, arm.box, 0.8),), seconds=1.0)
    counter.show(scene.render(range(12)), seconds=2.0)
    assert [e.type for e in counter.events if e.type.startswith("item_")] == ["item_placed", "item_removed"]


def test_a_piece_on_the_pad_from_the_first_look_is_learned_as_it_lies(scene: CounterScene) -> None:
    """An arm on the pad at the first look, but the piece lies in view beside it from then on (a
    laptop sleeve on the desk all along): it is no placement; taking it away is a removal."""
    counter = Counter(zone_pad())
    arm = Arm((360, 425))
    counter.show(
        scene.render(range(12), arms=[arm], on_pad=[(262, 385)]), (Person(1, arm.box, 0.8),), seconds=1.0
    )
    counter.show(scene.render(range(12), on_pad=[(262, 385)]), seconds=3.0)
    assert counter.states[-1][1]["pad"].armed
    assert not [e for e in counter.events if e.type.startswith("item_")]
    taker = Arm((262, 385))
    counter.show(scene.render(range(12), arms=[taker]), (Person(1, taker.box, 0.8),), seconds=1.0)
    counter.show(scene.render(range(12)), seconds=2.0)
    assert [e.type for e in counter.events if e.type.startswith("item_")] == ["item_removed"]


def _pad(texture: float = 0.0, seed: int = 3) -> np.ndarray:
    """A pale plain pad (grey 200, sensor noise), or one with a fine grain of ``texture`` levels."""
    rng = np.random.default_rng(seed)
    grey = np.full((96, 160), 200.0, np.float32) + rng.normal(0.0, 2.0, (96, 160)).astype(np.float32)
    if texture:
        grey += np.sin(np.arange(160, dtype=np.float32) * 1.3)[None, :] * texture
    return grey


def test_presume_clear_paints_only_what_appeared_since_the_first_look() -> None:
    """Pure: a dark piece hidden at the first look is painted out of the resting look, without
    seams (no blob left for the piece counter); one in view then and unchanged is kept; on a
    textured pad (folded velvet, wood grain) nothing is presumed."""
    first = _pad()
    cv2.circle(first, (30, 30), 8, 60.0, -1)  # lay there from the start
    first_visible = np.ones(first.shape, bool)
    first_visible[40:90, 90:150] = False  # an arm over this part at the first look
    now = first + np.random.default_rng(9).normal(0.0, 1.0, first.shape).astype(np.float32)
    cv2.circle(now, (120, 65), 9, 50.0, -1)  # put down under the arm
    resting = now.copy()
    everywhere = np.ones(now.shape, bool)
    painted = presume_clear(resting, everywhere, first, first_visible)
    assert 1 <= painted <= 9
    assert abs(float(resting[65, 120]) - 200.0) < 12.0  # the new piece is gone
    assert float(resting[30, 30]) < 90.0  # the old one stays
    assert count_pieces(now, everywhere, (0.0004, 0.04), 0.18).count == 2
    assert count_pieces(resting, everywhere, (0.0004, 0.04), 0.18).count == 1  # no seams counted

    textured = _pad(texture=12.0)
    cv2.circle(textured, (120, 65), 9, 50.0, -1)
    assert presume_clear(textured, everywhere, _pad(texture=12.0), first_visible) == 0
    cells = (6, 10)
    busy = bare_pad(np.full(cells, 10.0), np.full(cells, 200.0), np.ones(cells, bool), np.ones(cells, bool))
    assert busy is None


def test_paint_bare_fills_from_the_pad_around() -> None:
    grey = np.full((64, 64), 180.0, np.float32)
    grey[:, 32:] = 120.0  # two shades of pad: the fill follows the side it is on
    grey[8:16, 8:16] = 30.0
    cells = np.zeros((8, 8), bool)
    cells[1, 1] = True
    paint_bare(grey, cells, 8)
    assert np.abs(grey[8:16, 8:16] - 180.0).max() < 10.0
    assert float(grey[40, 40]) == 120.0  # untouched outside the painted cells


def test_features_give_a_start_for_a_picture_taken_from_elsewhere() -> None:
    """A reference picture taken with the camera moved (rotated 6°, shifted 40 px): ORB features
    in the zone's surroundings recover the affine closely enough for ECC to refine."""
    import cv2

    rng = np.random.default_rng(3)
    view = cv2.GaussianBlur(rng.integers(0, 255, (HEIGHT, WIDTH), dtype=np.uint8), (0, 0), 2.0)
    view = cv2.normalize(view, None, 0, 255, cv2.NORM_MINMAX)
    truth = cv2.getRotationMatrix2D((WIDTH / 2, HEIGHT / 2), 6.0, 1.05)
    truth[:, 2] += (40.0, -25.0)
    picture = cv2.warpAffine(view, truth, (WIDTH, HEIGHT))
    region = np.zeros((HEIGHT, WIDTH), np.uint8)
    region[120:360, 160:480] = 255
    match = feature_match(view, picture, region)
    guess = match.warp
    assert guess is not None and not match.other_scene
    pts = np.array([[200.0, 150.0], [450.0, 330.0], [320.0, 240.0]])
    moved = pts @ guess[:, :2].T + guess[:, 2]
    expected = pts @ truth[:, :2].T + truth[:, 2]
    assert np.abs(moved - expected).max() < 2.0
    assert feature_match(view, np.full_like(view, 128), region).warp is None  # nothing to match
    # another textured place: plenty of features around the zone, hardly any of them there
    elsewhere = cv2.GaussianBlur(rng.integers(0, 255, (HEIGHT, WIDTH), dtype=np.uint8), (0, 0), 2.0)
    other = feature_match(view, cv2.normalize(elsewhere, None, 0, 255, cv2.NORM_MINMAX), region)
    assert other.features >= 150 and other.other_scene, other


# ---------------------------------------------------------------------------------- cases

CASE_POLY = [(0.05, 0.05), (0.25, 0.05), (0.25, 0.25), (0.05, 0.25)]


def case_scene(scene: CounterScene, open_: bool) -> np.ndarray:
    import cv2

    img = scene.render(range(12), noise=2.0).copy()
    x1, y1, x2, y2 = 40, 30, 150, 110
    cv2.rectangle(img, (x1, y1), (x2, y2), (60, 60, 60), 3)  # the case's frame
    if open_:  # the sliding door pulled aside shows the dark inside with its hinge bars
        cv2.rectangle(img, (x1 + 4, y1 + 4), (x2 - 40, y2 - 4), (35, 30, 30), -1)
        for y in range(y1 + 12, y2 - 4, 12):
            cv2.line(img, (x1 + 6, y), (x2 - 44, y), (120, 120, 120), 1)
    else:
        for x in range(x1 + 10, x2 - 4, 16):
            cv2.line(img, (x, y1 + 4), (x, y2 - 4), (200, 200, 210), 2)  # glass reflections
    return img


def test_case_open_by_appearance_and_too_long(scene: CounterScene) -> None:
    case = Zone(id="case", name="Case 1", kind="case", polygon=CASE_POLY, case=CaseParams(open_max_s=3.0))
    counter = Counter(case)
    counter.show(case_scene(scene, False), seconds=2.0)
    assert counter.states[-1][1]["case"].open is False
    counter.show(case_scene(scene, True), seconds=4.0)
    assert counter.states[-1][1]["case"].open is True
    counter.show(case_scene(scene, False), seconds=1.0)
    too_long = counter.found("case_open_too_long")
    assert len(too_long) == 2 and too_long[-1].ended and 3.0 <= too_long[-1].scores["open_s"] <= 4.6


def test_case_sensor_overrides_appearance(scene: CounterScene) -> None:
    case = Zone(id="case", kind="case", polygon=CASE_POLY, case=CaseParams(sensor_topic="store/case1"))
    counter = Counter(case)
    counter.watcher.set_sensor("case", True)
    counter.show(case_scene(scene, False), seconds=1.0)
    state = counter.states[-1][1]["case"]
    assert state.open is True and state.open_source == "sensor"


@pytest.mark.parametrize(
    ("payload", "is_open"),
    [
        ("open", True),
        (b"OPEN", True),
        ("closed", False),
        ('{"contact": false}', True),
        ('{"contact": true}', False),
        ('{"state": "unlocked"}', True),
        ("garbage{", False),
    ],
)
def test_case_sensor_payloads(payload: str | bytes, is_open: bool) -> None:
    assert parse_sensor_payload(payload, CaseParams().sensor_open_payloads) is is_open
