"""Compliance records through a real database (migration 0005): showing sessions and protocol
violations written by the bus listener from the counter rule's own events, and the summary per
staff member and shift the reports read. SQLite always, PostgreSQL when it is running."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from gemwatch.config.counter import CounterProtocol
from gemwatch.config.models import Camera, Zone
from gemwatch.events.compliance import (
    ComplianceSink,
    Shift,
    compliance_summary,
    session_rows,
    violations_by_kind,
)
from gemwatch.events.store import EventStore
from gemwatch.rules.counter import CounterRule, counters_of
from gemwatch.types import Event, Observation, Person, Role, ZoneState

TZ = ZoneInfo("Europe/London")
SQUARE = [(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0)]
# 2026-06-01 10:00 London (BST, UTC+1)
T0 = datetime(2026, 6, 1, 10, 0, tzinfo=TZ).timestamp()


def showing(
    t0: float, staff: int, customer: int, *, wait: float, pieces: list[int], identity: str | None = None
):
    """A customer waits ``wait`` s, is served with the given pieces out (one value per second),
    then leaves. Yields observations at 5 fps."""

    def tray(n: int) -> dict[str, ZoneState]:
        return {
            "pad": ZoneState(
                "pad", measured=True, change=0.0, count=n, reference_count=0, count_confidence=1.0
            )
        }

    cust = Person(customer, (600.0, 100.0, 800.0, 900.0), 0.9, Role.CUSTOMER)
    clerk = Person(staff, (100.0, 100.0, 300.0, 900.0), 0.9, Role.STAFF, identity=identity)
    t = t0
    for _ in range(round(wait * 5)):
        yield Observation(
            "cam", t, 1000, 1000, people=(cust,), zone_people={"front": (customer,)}, zones=tray(0)
        )
        t += 0.2
    for n in pieces:
        for _ in range(5):
            yield Observation(
                "cam", t, 1000, 1000, people=(cust, clerk),
                zone_people={"front": (customer,), "behind": (staff,)}, zones=tray(n),
            )  # fmt: skip
            t += 0.2
    for _ in range(10 * 5):  # the customer has gone; the associate stays
        yield Observation(
            "cam", t, 1000, 1000, people=(clerk,), zone_people={"behind": (staff,)}, zones=tray(0)
        )
        t += 0.2


def run_counter(sink: ComplianceSink) -> list[Event]:
    cam = Camera(
        id="cam",
        url="x",
        zones=[
            Zone(
                id="front",
                kind="counter",
                polygon=SQUARE,
                protocol=CounterProtocol(max_pieces=2, max_pieces_s=2.0),
            ),
            Zone(id="behind", kind="staff_area", polygon=SQUARE),
            Zone(id="pad", kind="showing_area", polygon=SQUARE),
        ],
    )
    rule = CounterRule(cam, counters_of(cam)[0])
    events: list[Event] = []
    frames = [
        *showing(T0, staff=7, customer=1, wait=4.0, pieces=[1, 1, 2, 2], identity="anna"),
        *showing(T0 + 600, staff=7, customer=2, wait=10.0, pieces=[1, 3, 3, 3, 3, 1], identity="anna"),
        *showing(T0 + 8 * 3600, staff=9, customer=3, wait=2.0, pieces=[1, 1, 1, 1]),  # 18:00, the late shift
    ]
    for obs in frames:
        for ev in rule.update(obs):
            events.append(ev)
            sink.event(ev)
    for ev in rule.finish(frames[-1].ts):
        events.append(ev)
        sink.event(ev)
    return events


def check_records(url: str) -> None:
    store = EventStore(url, TZ)
    try:
        sink = ComplianceSink(store.engine, TZ)
        events = run_counter(sink)
        assert [e.type for e in events if e.type == "too_many_pieces" and not e.ended] == ["too_many_pieces"]
        rows = session_rows(store.engine)
        assert len(rows) == 3
        first = rows[0]
        assert first["staff_identity"] == "anna" and first["staff_track"] == 7 and first["customers"] == [1]
        assert first["time_to_serve_s"] == pytest.approx(4.0, abs=0.3)
        assert first["max_pieces"] == 2 and first["violations"] == {}
        assert first["start_local"].startswith("2026-06-01T10:00") and first["start_local"].endswith("+01:00")
        assert rows[1]["max_pieces"] == 3 and rows[1]["violations"] == {"too_many_pieces": 1}
        assert [p[1] for p in rows[1]["pieces"]] == [1, 3, 1, 0]
        assert rows[2]["staff_identity"] is None and rows[2]["staff_track"] == 9
        assert violations_by_kind(store.engine) == {"too_many_pieces": 1}

        shifts = (Shift("early", 6, 14), Shift("late", 14, 22), Shift("night", 22, 6))
        summary = compliance_summary(store.engine, TZ, T0 - 3600, T0 + 86400, shifts)
        assert [(s.staff, s.date, s.shift, s.sessions) for s in summary] == [
            ("anna", "2026-06-01", "early", 2),
            ("track 9@cam", "2026-06-01", "late", 1),
        ]
        anna = summary[0]
        assert anna.violations == {"too_many_pieces": 1}
        assert anna.median_time_to_serve_s == pytest.approx(7.0, abs=0.3)  # 4 s and 10 s
        # writing the same final reports again (a replayed queue) changes nothing
        for ev in events:
            sink.event(ev)
        assert len(session_rows(store.engine)) == 3 and violations_by_kind(store.engine) == {
            "too_many_pieces": 1
        }
    finally:
        store.close()


def test_compliance_records_sqlite(tmp_path) -> None:
    check_records(f"sqlite:///{(tmp_path / 'gemwatch.db').as_posix()}")


def test_compliance_records_postgresql(postgres_url: str) -> None:
    check_records(postgres_url)


def test_night_shift_counts_for_the_day_it_started(tmp_path) -> None:
    store = EventStore(f"sqlite:///{(tmp_path / 'g.db').as_posix()}", TZ)
    try:
        sink = ComplianceSink(store.engine, TZ)
        late = datetime(2026, 6, 2, 1, 30, tzinfo=TZ).timestamp()  # 01:30, still the night of 1 June
        ev = Event(
            "showing_session", "info", "cam", late, "Showing", end_ts=late + 60, ended=True,  # type: ignore[arg-type]
            extra={"staff": 4, "customers": [1], "arrived_ts": late - 5, "pieces": [], "violations": {}},
        )  # fmt: skip
        sink.event(ev)
        night = compliance_summary(store.engine, TZ, late - 86400, late + 86400, (Shift("night", 22, 6),))
        assert [(s.date, s.shift, s.sessions) for s in night] == [("2026-06-01", "night", 1)]
    finally:
        store.close()
