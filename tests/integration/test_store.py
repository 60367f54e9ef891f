"""The SQL event store against real SQLite and PostgreSQL, including a kill -9 durability check."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from gemwatch.events.store import EventStore, StoreError, TrackSummary
from gemwatch.types import Event, Severity

T0 = 1_774_746_000.0  # 2026-03-29 01:00 UTC: the UK clocks go forward at this instant


def _event(**kw) -> Event:
    base = dict(
        type="loitering", severity=Severity.MEDIUM, camera_id="door", start_ts=T0 - 600, description="x"
    )
    base.update(kw)
    return Event(**base)


@pytest.fixture(params=["sqlite", "postgres"])
def store(request, tmp_path) -> EventStore:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'db' / 'gemwatch.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    s = EventStore(url, "Europe/London")
    yield s
    s.close()


def test_write_update_and_query(store: EventStore) -> None:
    ev = _event(zone_id="entrance", people=(3,), scores={"dwell_s": 61.0})
    store.write(ev)
    ev2 = _event(id=ev.id, zone_id="entrance", end_ts=T0 + 600, ended=True, people=(3,), description="final")
    store.write(ev2)
    store.set_evidence(ev.id, snapshot_path="/d/s.jpg", clip_path="/d/c.mp4")
    rows = store.events(camera_id="door")
    assert len(rows) == 1
    row = rows[0]
    assert row.description == "final" and row.ended and row.people == [3]
    assert row.scores == {"dwell_s": 61.0}
    assert row.clip_path == "/d/c.mp4" and row.snapshot_path == "/d/s.jpg"
    # local times carry the offset, correct on both sides of the DST change
    assert row.start_local == "2026-03-29T00:50:00+00:00"
    assert row.end_local == "2026-03-29T02:10:00+01:00"
    assert store.forget_evidence(["/d/c.mp4"]) == 1
    assert store.get(ev.id).clip_path is None


def test_filters(store: EventStore) -> None:
    for i in range(5):
        store.write(
            _event(
                start_ts=T0 + i,
                camera_id="a" if i % 2 else "b",
                type="presence.vault" if i == 4 else "loitering",
            )
        )
    assert len(store.events(camera_id="a")) == 2
    assert [r.type for r in store.events(type="presence.vault")] == ["presence.vault"]
    assert len(store.events(since_ts=T0 + 2, until_ts=T0 + 4)) == 2
    assert len(store.events(limit=2, offset=4)) == 1


def test_runs_and_tracks(store: EventStore) -> None:
    store.start_run("r1", "analyze", ["v.mp4"])
    store.save_tracks("r1", [TrackSummary("door", 1, "unknown", T0, T0 + 5, 25, 0.8)])
    store.save_tracks("r1", [TrackSummary("door", 1, "unknown", T0, T0 + 9, 45, 0.9)])
    store.end_run("r1", "done")
    tracks = store.tracks("r1")
    assert len(tracks) == 1 and tracks[0].last_ts == T0 + 9 and tracks[0].observations == 45


def test_migration_is_idempotent(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'g.db'}"
    EventStore(url).close()
    s = EventStore(url)
    s.write(_event())
    assert len(s.events()) == 1
    s.close()


def test_unwritable_database_is_a_clear_error(tmp_path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError) as info:
        EventStore(f"sqlite:///{blocker / 'sub' / 'g.db'}")
    assert "cannot open database" in str(info.value)


WRITER = textwrap.dedent(
    """
    import sys, time
    from gemwatch.events.store import EventStore
    from gemwatch.types import Event, Severity
    store = EventStore(sys.argv[1])
    i = 0
    while True:
        ev = Event(type="loitering", severity=Severity.LOW, camera_id="c", start_ts=1e9 + i, description=str(i))
        store.write(ev)
        print(ev.id, flush=True)   # reported as written only after commit returned
        i += 1
    """
)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_kill_9_never_loses_a_reported_event(backend, tmp_path, request) -> None:
    url = f"sqlite:///{tmp_path / 'k.db'}" if backend == "sqlite" else request.getfixturevalue("postgres_url")
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    proc = subprocess.Popen([sys.executable, str(script), url], stdout=subprocess.PIPE, text=True)
    reported: list[str] = []
    deadline = time.monotonic() + 60
    assert proc.stdout is not None
    while len(reported) < 40 and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line:
            reported.append(line.strip())
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert len(reported) >= 40
    store = EventStore(url)
    stored = {r.id for r in store.events(limit=100000)}
    store.close()
    missing = [r for r in reported if r not in stored]
    assert missing == []
    assert Path(tmp_path).exists()
