"""The counter's protocol rules through the CLI on real footage (../shared/data), with the zones
and thresholds in checked-in configs (tests/fixtures/counter_protocol_*.yml, zones drawn by hand
on the clips' frames). One ``gemwatch analyze --json`` run per clip, shared by the tests.

Times measured by eye on frames every 0.2 s (ffmpeg, upright view), seconds into the clip:

- classroom_bag_taken_from_desk.mp4: the owner puts his bag on the desk and stands at it 0-2.5 s,
  nobody at the desk 2.6-10.4 s (a hand passes the right edge at 10.4 s), the owner at the desk
  again from 10.6 s, lifts the bag 11.8-12.4 s, off the desk at 12.6 s, out of the picture at
  about 13.6 s. No staff anywhere.
- pos_counter_theft.mp4: the customer (orange T-shirt) stands at the desk from the first frame,
  the cashier sits behind it the whole clip; the customer lifts his laptop sleeve 6.6-7.0 s and
  has left the desk at 7.2 s; the drawer opens 6.6 s (open at 6.8 s) and is shut at 12.8-12.9 s.
- pos_counter_theft2.mp4: the customer reaches the desk at 0.8 s and stays the whole clip, puts
  his earphones on it at 1.3-1.9 s (the desk is never clear before; it is armed at 4.6 s with
  them on it and presumed bare where they lie, so their placement is reported then:
  tests/e2e/test_counter_footage.py); the cashier faces him throughout; the drawer opens at
  6.6 s and is shut at 8.3 s.
- vtest.avi: the man in black stands on the paved patch 50.7-63.2 s (tests/e2e/test_cli_footage.py,
  frames every 0.1 s); the others cross it in well under 5 s. Analysed at 2 fps (``--fps 2``):
  at the default 5 fps this 80 s clip at 768x576 takes about three minutes on this machine. At
  2 fps the tracker loses him at 55 s, so the event's end is not asserted (at 5 fps, on a 25 s
  cut of the clip, not_served ran 51.0-63.0 s).

Covered by a real event: ``customer_alone`` (classroom: the owner alone at his bag with no staff,
from 10.6 s), ``not_served`` (vtest: the man waiting on the patch from 50.7 s), ``showing_session``
and its compliance record (both POS clips), and the cash drawer as a ``case`` zone (zone and
pictures as in counter_pos_theft*.yml): ``case_open_too_long`` on pos_counter_theft (open 6.3 s,
above ``open_max_s: 4``), quiet on pos_counter_theft2 (open 1.7 s, below it), and
``case_unattended`` (1 s) quiet on both because the cashier's hands are in the drawer.

Only checked to stay quiet where it must, because the situation is not on any clip we have:

- ``too_many_pieces``: nobody shows more than two pieces anywhere (the POS desk holds a sleeve or
  earphones, the classroom desk a bag); with ``max_pieces_s: 1`` a miscount of more than two
  confident new pieces for a second would fire, and must not.
- ``tray_on_counter``: no clip shows a tray of pieces; the one ``tray`` zone (the classroom bag)
  has no showing around it (no staff), so the strict policy must stay quiet. The laptop sleeve on
  the POS desk was tried as a stand-in tray and does not work: the cashier's hand rests on it
  from the first frame, and a tray arms only in full view, so it is learned only once it has gone.
- ``item_outside_boundary``: no piece lies beside a pad on any clip. Pieces beside the POS desk
  are never counted (the band around it always holds a moving arm or body), so there the check
  only shows that the rule invents nothing; around the classroom desk they are counted (0) only
  while nobody is at it.
- ``counter_obstruction``: no case the rule can see. The classroom backpack and the POS laptop
  sleeve are the only bags on a counter, and NanoDet never calls them a bag at its threshold
  (0.4 raw): on frames every 0.5 s the classroom bag scores at most 0.20 as handbag and 0.15 as
  backpack (at 1.0 s), 0.15-0.16 as suitcase (4.0 and 10.5 s); the sleeve never reaches 0.15 as
  any bag class. The other way the rule sees a new object, a change in the band beside the pad,
  is measured with a customer present in one analysed frame of the classroom clip (5.7 s, a
  hand at the picture's edge) and never on pos_counter_theft. Not asserted either way on those
  clips (a quiet rule there is a miss, not a pass). On pos_counter_theft2 the band is never
  measured at all (people stand round the desk the whole clip, so it never arms): no test there.

``customer_alone`` is quiet on both POS clips with nothing reported on the desk, so a quiet rule
there would prove nothing; what keeps it quiet while a piece is out, the cashier facing the
customer, is checked on every pose sighting of both clips in tests/e2e/test_counter_footage.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine

from conftest import data_file
from fixtures.counter_runs import EPOCH, FIXTURES, analyse_cli
from gemwatch.events.compliance import session_rows, violations_by_kind

TOL = 1.0  # an event's time against the time measured by eye

# Rules that must never fire on a clip where nobody shows more than two pieces, no tray of
# pieces leaves its place during a showing, and nothing lies beside a pad.
ABSENT_SITUATIONS = ("too_many_pieces", "tray_on_counter", "item_outside_boundary")


def analyse(config: str, clip: str, tmp_path_factory, *options: str) -> dict:
    """``gemwatch analyze --json`` on ``clip`` with the checked-in counter config ``config``."""
    work = tmp_path_factory.mktemp(Path(config).stem)
    return analyse_cli(FIXTURES / config, data_file(clip), work, *options)


@pytest.fixture(scope="module")
def classroom(tmp_path_factory) -> dict:
    return analyse(
        "counter_protocol_classroom.yml", "counter_hands/classroom_bag_taken_from_desk.mp4", tmp_path_factory
    )


@pytest.fixture(scope="module")
def pos1(tmp_path_factory) -> dict:
    return analyse("counter_protocol_pos_theft.yml", "counter_hands/pos_counter_theft.mp4", tmp_path_factory)


@pytest.fixture(scope="module")
def pos2(tmp_path_factory) -> dict:
    return analyse(
        "counter_protocol_pos_theft2.yml", "counter_hands/pos_counter_theft2.mp4", tmp_path_factory
    )


@pytest.fixture(scope="module")
def vtest(tmp_path_factory) -> dict:
    return analyse("counter_protocol_vtest.yml", "pedestrians/vtest.avi", tmp_path_factory, "--fps", "2")


def events(doc: dict, kind: str) -> list[dict]:
    return [e for e in doc["events"] if e["type"] == kind]


def start(e: dict) -> float:
    return e["start_ts"] - EPOCH


def end(e: dict) -> float:
    return (e["end_ts"] if e["end_ts"] is not None else e["start_ts"]) - EPOCH


def compliance(doc: dict) -> tuple[list[dict], dict[str, int]]:
    """The showing sessions and violations by kind the run wrote to its database."""
    engine = create_engine(f"sqlite:///{(doc['data_dir'] / 'gemwatch.db').as_posix()}")
    try:
        return session_rows(engine), violations_by_kind(engine)
    finally:
        engine.dispose()


# ------------------------------------------------------------------------------ customer_alone


def test_customer_alone_with_the_bag_when_the_owner_comes_back(classroom) -> None:
    """The owner stands at his bag on the desk (a piece out on the pad) from 10.6 s with no staff
    anywhere: after ``alone_s`` (1 s) that is a customer alone with a piece, dated from when he
    came (10.6 s) and over once he has carried it out of the picture (13.6 s)."""
    back = [e for e in events(classroom, "customer_alone") if start(e) >= 10.6 - 2 * TOL]
    assert len(back) == 1, [(e["type"], start(e)) for e in classroom["events"]]
    ev = back[0]
    assert abs(start(ev) - 10.6) <= TOL, start(ev)
    assert ev["zone"] == "owner_side" and "no staff within reach" in ev["description"]
    assert ev["severity"] == "high" and ev["people"]
    assert 12.6 - TOL <= end(ev) <= 13.6 + TOL  # the bag is off the desk; he walks off with it


def test_customer_alone_only_while_the_owner_is_at_the_desk(classroom) -> None:
    """Nobody stands at the desk 2.6-10.4 s: a bag lying there alone is item_unattended, never a
    customer alone with it. (The owner's first stay, 0-2.5 s, is not reported: the desk's load is
    known only once it is seen clear, at about 4.8 s; the bag is then dated unattended from when
    nobody was seen at the desk, which the detector says a few tenths early as he walks off.)"""
    for e in events(classroom, "customer_alone"):
        assert start(e) <= 2.6 or start(e) >= 10.4 - TOL, e
    unattended = events(classroom, "item_unattended")
    assert unattended and all(2.6 - TOL <= start(e) <= 10.4 for e in unattended)


# ---------------------------------------------------------------------------------- not_served


def test_not_served_while_the_man_waits_on_the_patch(vtest) -> None:
    """The man in black stands on the patch from 50.7 s with no staff in the picture: not_served
    (5 s) dated from when he arrived. The passers-by who cross it do not wait 5 s."""
    waits = events(vtest, "not_served")
    assert len(waits) == 1, [(start(e), end(e)) for e in waits]
    ev = waits[0]
    assert abs(start(ev) - 50.7) <= TOL, start(ev)
    assert ev["zone"] == "patch" and ev["people"]
    assert ev["scores"]["threshold_s"] == 5.0 and end(ev) - start(ev) >= 5.0 - 0.01
    assert not events(vtest, "showing_session") and not events(vtest, "customer_alone")


@pytest.mark.parametrize("clip", ["pos1", "pos2"])
def test_not_served_quiet_when_the_cashier_is_in_reach(clip: str, request) -> None:
    """The customer stands at the desk for 7 s (pos_counter_theft) and 8.6 s (pos_counter_theft2)
    with the cashier behind it all the time: never 3 s unserved."""
    doc = request.getfixturevalue(clip)
    assert not events(doc, "not_served")


# ---------------------------------------------------------------------------- showing_session


def test_session_formed_when_the_customer_reaches_the_desk(pos2) -> None:
    """The customer reaches the desk at 0.8 s and stays to the end; the cashier serves him: one
    session from his arrival, with both of them, written to the compliance records."""
    sessions = events(pos2, "showing_session")
    assert len(sessions) == 1
    s = sessions[0]
    assert abs(start(s) - 0.8) <= TOL, start(s)
    assert end(s) >= 8.0 and len(s["people"]) >= 2
    rows, violations = compliance(pos2)
    assert len(rows) == 1 and rows[0]["id"] == s["id"]
    assert rows[0]["staff_track"] is not None and rows[0]["customers"]
    assert rows[0]["staff_track"] not in rows[0]["customers"]
    assert set(s["people"]) >= {rows[0]["staff_track"], *rows[0]["customers"]}
    mine = {"too_many_pieces", "tray_on_counter", "customer_alone", "not_served", "item_outside_boundary",
            "counter_obstruction", "case_open_too_long", "case_unattended"}  # fmt: skip
    assert not mine & set(rows[0]["violations"]) and not mine & set(violations)


def test_session_ends_when_the_customer_leaves(pos1) -> None:
    """The customer is at the desk from the first frame and has left at 7.2 s: one session,
    formed within a second and a bit (the roles need 0.6 s of sightings, then 2 s of facing
    each other, dated back) and ended when he left."""
    sessions = events(pos1, "showing_session")
    assert len(sessions) == 1
    s = sessions[0]
    assert start(s) <= 1.0 + TOL, start(s)
    assert abs(end(s) - 7.2) <= TOL, end(s)
    rows, _ = compliance(pos1)
    assert [r["id"] for r in rows] == [s["id"]]
    assert rows[0]["staff_track"] is not None and rows[0]["customers"]
    assert rows[0]["time_to_serve_s"] is not None and rows[0]["time_to_serve_s"] <= 1.0 + TOL


# ------------------------------------------------------------------------------- the drawer


def test_drawer_open_too_long_while_the_cashier_counts_notes(pos1) -> None:
    """The cash drawer (a ``case`` zone) is open 6.6-12.9 s, 6.3 s, above ``open_max_s`` (4 s):
    case_open_too_long from its opening to its shutting. The cashier sits at it with his hands
    in it the whole time, so ``case_unattended`` (1 s) stays quiet."""
    too_long = events(pos1, "case_open_too_long")
    assert len(too_long) == 1, [(start(e), end(e)) for e in too_long]
    ev = too_long[0]
    assert ev["zone"] == "drawer" and "Cash drawer" in ev["description"]
    assert abs(start(ev) - 6.6) <= TOL, start(ev)
    assert abs(end(ev) - 12.9) <= TOL, end(ev)
    assert ev["scores"]["threshold_s"] == 4.0
    assert not events(pos1, "case_unattended")


def test_drawer_opened_briefly_is_not_too_long(pos2) -> None:
    """The same drawer on the other clip is open 6.6-8.3 s, 1.7 s: its opening is seen
    (case_opened) but stays under ``open_max_s`` (4 s), and the cashier's hands are in it."""
    opened = events(pos2, "case_opened")
    assert len(opened) == 1 and opened[0]["zone"] == "drawer"
    assert abs(start(opened[0]) - 6.6) <= TOL and abs(end(opened[0]) - 8.3) <= TOL
    assert not events(pos2, "case_open_too_long")
    assert not events(pos2, "case_unattended")


# ---------------------------------------------------------------------- rules with no situation


@pytest.mark.parametrize("clip", ["classroom", "pos1", "pos2"])
def test_no_event_for_situations_not_on_the_footage(clip: str, request) -> None:
    """No clip shows more than two pieces out, a tray of pieces on the counter during a showing,
    or a piece beside a pad (module docstring): those rules stay quiet even at 0.5-1 s."""
    doc = request.getfixturevalue(clip)
    for kind in ABSENT_SITUATIONS:
        assert not events(doc, kind), (kind, events(doc, kind))


def test_no_showing_so_no_tray_on_counter(classroom) -> None:
    """The classroom bag is a ``tray`` zone; nobody serves its owner (no staff), so no showing
    forms and the strict tray policy has nothing to report when the bag leaves."""
    assert not events(classroom, "showing_session")
    assert not events(classroom, "tray_on_counter")
