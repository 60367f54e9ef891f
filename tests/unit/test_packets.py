"""The encoded-packet ring: time/GOP trimming, byte cap, snapshots, cursors, thread safety."""

from __future__ import annotations

import itertools
import threading
from fractions import Fraction

import pytest

from gemwatch.sources.packets import PacketRing, RingPacket, StreamParams

TB = Fraction(1, 90_000)


def params() -> StreamParams:
    return StreamParams(
        codec_name="h264",
        width=64,
        height=48,
        time_base=TB,
        pix_fmt="yuv420p",
        extradata=None,
        average_rate=Fraction(10),
        template=b"",
    )


def packet(t: float, *, key: bool, p: StreamParams, size: int = 100) -> RingPacket:
    ticks = round(t / TB)
    return RingPacket(
        data=bytes(size), pts=ticks, dts=ticks, duration=9000, pts_s=t, dts_s=t, keyframe=key, params=p
    )


def feed(ring: PacketRing, seconds: float, *, fps: int = 10, gop_s: float = 1.0, start: float = 0.0) -> None:
    """Push ``seconds`` of packets at ``fps`` with a keyframe every ``gop_s`` seconds."""
    p = ring.params or params()
    per_gop = round(gop_s * fps)
    for i in range(round(seconds * fps)):
        ring.push(packet(start + i / fps, key=i % per_gop == 0, p=p))


def test_ring_keeps_capacity_back_to_a_keyframe() -> None:
    ring = PacketRing(capacity_s=3.0)
    feed(ring, 10.0, gop_s=1.0)
    oldest, newest = ring.oldest_pts, ring.newest_pts
    assert newest == pytest.approx(9.9)
    # Cutoff is 6.9 s; the window starts at the keyframe at or before it.
    assert oldest == pytest.approx(6.0)
    snap = ring.snapshot(0.0)
    assert snap[0].keyframe
    assert len(snap) == len(ring) == 40  # 6.0 … 9.9 s


def test_ring_never_trims_inside_a_long_gop() -> None:
    ring = PacketRing(capacity_s=2.0)
    feed(ring, 8.0, gop_s=5.0)
    # Keyframes at 0 and 5: the window needs 5.9 s back, so the GOP from 5 s stays whole and
    # the one from 0 s is dropped only once the 5 s keyframe is itself older than the cutoff.
    assert ring.oldest_pts == pytest.approx(5.0)
    assert ring.snapshot(6.5)[0].pts_s == pytest.approx(5.0)


def test_packets_before_the_first_keyframe_are_dropped() -> None:
    ring = PacketRing()
    p = params()
    for i in range(5):
        ring.push(packet(i / 10, key=False, p=p))
    assert len(ring) == 0
    ring.push(packet(0.5, key=True, p=p))
    ring.push(packet(0.6, key=False, p=p))
    assert len(ring) == 2
    assert ring.snapshot(0.0)[0].keyframe


def test_snapshot_starts_at_keyframe_at_or_before_start_and_stops_at_end() -> None:
    ring = PacketRing(capacity_s=30.0)
    feed(ring, 10.0, gop_s=2.0)
    snap = ring.snapshot(5.3, 7.05)
    assert snap[0].pts_s == pytest.approx(4.0) and snap[0].keyframe
    assert snap[-1].dts_s == pytest.approx(7.0)
    assert all(a.dts_s < b.dts_s for a, b in itertools.pairwise(snap))
    # Exactly on a keyframe: starts there, not a GOP earlier.
    assert ring.snapshot(6.0)[0].pts_s == pytest.approx(6.0)
    # Before the ring's reach: the oldest keyframe.
    assert ring.snapshot(-10.0)[0].pts_s == pytest.approx(0.0)


def test_byte_cap_drops_oldest_gops_first() -> None:
    ring = PacketRing(capacity_s=100.0, max_bytes=25 * 100)
    feed(ring, 5.0, gop_s=1.0)  # 50 packets of 100 bytes, 10 per GOP
    assert ring.nbytes <= 25 * 100
    assert ring.snapshot(0.0)[0].keyframe
    assert ring.oldest_pts == pytest.approx(3.0)


def test_one_gop_larger_than_the_cap_empties_the_ring_until_the_next_keyframe() -> None:
    ring = PacketRing(capacity_s=100.0, max_bytes=1000)
    p = params()
    ring.push(packet(0.0, key=True, p=p, size=600))
    ring.push(packet(0.1, key=False, p=p, size=600))
    assert len(ring) == 0 and ring.nbytes == 0
    ring.push(packet(0.2, key=False, p=p))
    assert len(ring) == 0
    ring.push(packet(0.3, key=True, p=p))
    assert len(ring) == 1


def test_since_follows_new_packets_and_reveals_gaps() -> None:
    ring = PacketRing(capacity_s=2.0)
    feed(ring, 1.0)
    got, cursor = ring.since(-1)
    assert len(got) == 10 and cursor == 9
    feed(ring, 0.5, start=1.0)
    got, cursor2 = ring.since(cursor)
    assert [round(p.pts_s, 1) for p in got] == [1.0, 1.1, 1.2, 1.3, 1.4]
    assert cursor2 == 14
    assert ring.since(cursor2) == ([], 14)
    # The reader falls behind by more than the ring holds: the gap is visible.
    feed(ring, 10.0, start=1.5)
    assert ring.first_seq > cursor2 + 1
    got, _ = ring.since(cursor2)
    assert got[0].keyframe and got[0].pts_s > 5.0


def test_new_session_parameters_wait_for_a_keyframe() -> None:
    ring = PacketRing()
    feed(ring, 1.0)
    other = params()
    ring.push(packet(1.0, key=False, p=other))
    assert ring.params is not other
    ring.push(packet(1.1, key=True, p=other))
    assert ring.params is other


def test_snapshot_with_cursor_is_consistent() -> None:
    ring = PacketRing()
    feed(ring, 2.0)
    snap, cursor = ring.snapshot_with_cursor(0.5)
    assert cursor == ring.cursor == 19
    feed(ring, 0.3, start=2.0)
    new, _ = ring.since(cursor)
    assert [round(p.pts_s, 1) for p in new] == [2.0, 2.1, 2.2]
    assert snap[-1].pts_s == pytest.approx(1.9)


def test_concurrent_writer_and_readers() -> None:
    ring = PacketRing(capacity_s=1.0)
    p = params()
    errors: list[BaseException] = []
    seen: list[float] = []
    done = threading.Event()

    def writer() -> None:
        for i in range(20_000):
            ring.push(packet(i / 100, key=i % 25 == 0, p=p, size=10))
        done.set()

    def reader() -> None:
        cursor = -1
        try:
            while not done.is_set() or ring.cursor > cursor:
                got, cursor = ring.since(cursor)
                seen.extend(x.pts_s for x in got)
                snap = ring.snapshot(0.0)
                assert not snap or snap[0].keyframe
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer), threading.Thread(target=reader)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    assert seen == sorted(seen)
    assert seen[-1] == pytest.approx(199.99)
    assert len(ring) <= 150


def test_capacity_must_be_positive() -> None:
    with pytest.raises(ValueError):
        PacketRing(capacity_s=0)
