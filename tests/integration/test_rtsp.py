"""Live RTSP: frames flow, the camera dies, the source reconnects, frames flow again.

FFmpeg's command-line tool cannot serve RTSP to a player (its ``-rtsp_flags listen`` only
receives a pushed stream), so this test brings its own small RTSP server: it serves a real
H.264 clip (RTP over the RTSP TCP connection, RFC 2326 §10.12 interleaving, RFC 6184
packetisation) in real time, from the start of the clip on every PLAY, the way an on-demand
camera stream behaves. The client side is the product's own PyAV code, unmodified.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import random
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import av
import pytest
from av.bitstream import BitStreamFilterContext

from conftest import DATA_DIR
from fixtures.clips import write_clip
from gemwatch.events.recorder import ClipRecorder
from gemwatch.sources.packets import PacketRing
from gemwatch.sources.video import CameraState, CameraStatus, VideoSource

pytestmark = [pytest.mark.rtsp, pytest.mark.timeout(120)]

REAL_CLIP = "shop/stock_artshop_browsing_normal.mp4"  # 640×360 H.264, 25 fps, keyframe every 3 s
MTU = 1400


@dataclass(frozen=True, slots=True)
class AccessUnit:
    """One picture's NAL units (Annex B start codes removed) and its presentation time."""

    pts: float
    nals: tuple[bytes, ...]


def load_access_units(clip: Path) -> tuple[list[AccessUnit], bytes, bytes]:
    """Demux ``clip`` to Annex B access units; return them with the first SPS and PPS."""
    units: list[AccessUnit] = []
    sps = pps = b""
    with av.open(str(clip)) as container:
        stream = container.streams.video[0]
        bsf = BitStreamFilterContext("h264_mp4toannexb", stream)
        for packet in container.demux(stream):
            for out in bsf.filter(packet if packet.size else None):
                if out.pts is None or out.time_base is None:
                    continue
                nals = tuple(n for n in _split_annexb(bytes(out)) if n)
                for nal in nals:
                    kind = nal[0] & 0x1F
                    if kind == 7 and not sps:
                        sps = nal
                    elif kind == 8 and not pps:
                        pps = nal
                units.append(AccessUnit(float(out.pts * out.time_base), nals))
    assert sps and pps, "clip has no in-band SPS/PPS after h264_mp4toannexb"
    return units, sps, pps


def _split_annexb(data: bytes) -> list[bytes]:
    parts: list[bytes] = []
    i, n = 0, len(data)
    start = -1
    while i + 3 <= n:
        if data[i : i + 3] == b"\x00\x00\x01":
            if start >= 0:
                parts.append(data[start:i].rstrip(b"\x00"))
            i += 3
            start = i
        else:
            i += 1
    if start >= 0:
        parts.append(data[start:])
    return parts


def rtp_packets(unit: AccessUnit, seq: int, timestamp: int, ssrc: int) -> list[bytes]:
    """RTP packets for one access unit: single-NAL packets or FU-A fragments, marker on the last."""
    payloads: list[bytes] = []
    for nal in unit.nals:
        if len(nal) <= MTU:
            payloads.append(nal)
            continue
        indicator = (nal[0] & 0xE0) | 28
        kind = nal[0] & 0x1F
        body = nal[1:]
        chunks = [body[i : i + MTU] for i in range(0, len(body), MTU)]
        for j, chunk in enumerate(chunks):
            header = kind | (0x80 if j == 0 else 0) | (0x40 if j == len(chunks) - 1 else 0)
            payloads.append(bytes([indicator, header]) + chunk)
    out = []
    for k, payload in enumerate(payloads):
        marker = 0x80 if k == len(payloads) - 1 else 0
        head = struct.pack("!BBHII", 0x80, marker | 96, (seq + k) & 0xFFFF, timestamp & 0xFFFFFFFF, ssrc)
        out.append(head + payload)
    return out


class MiniRtspServer:
    """Serves one H.264 clip, looped, over RTSP with RTP interleaved on the TCP connection."""

    def __init__(self, units: list[AccessUnit], sps: bytes, pps: bytes, port: int = 0) -> None:
        self.units = units
        self.sps, self.pps = sps, pps
        self.duration = units[-1].pts + 0.04
        # create_server sets SO_REUSEADDR, so a restarted server gets the same port at once.
        self._listener = socket.create_server(("127.0.0.1", port))
        self.port = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._clients: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self.sessions = 0

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}/cam"

    def start(self) -> MiniRtspServer:
        t = threading.Thread(target=self._accept, daemon=True)
        t.start()
        self._threads.append(t)
        return self

    def stop(self) -> None:
        """Kill the 'camera': close the listener and every connection at once."""
        self._stop.set()
        with contextlib.suppress(OSError):
            self._listener.close()
        for conn in list(self._clients):
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                conn.close()
        for t in self._threads:
            t.join(timeout=5)

    def _accept(self) -> None:
        self._listener.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._clients.append(conn)
            t = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            t.start()
            self._threads.append(t)

    def _sdp(self) -> bytes:
        sprop = ",".join(base64.b64encode(x).decode() for x in (self.sps, self.pps))
        profile = self.sps[1:4].hex()
        return (
            "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=gemwatch test camera\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\n"
            "m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n"
            f"a=fmtp:96 packetization-mode=1;profile-level-id={profile};sprop-parameter-sets={sprop}\r\n"
            "a=control:track1\r\n"
        ).encode()

    def _serve(self, conn: socket.socket) -> None:
        reader = conn.makefile("rb")
        lock = threading.Lock()
        try:
            while not self._stop.is_set():
                first = reader.read(1)
                if not first:
                    return
                if first == b"$":  # interleaved RTCP from the client: skip it
                    _, size = struct.unpack("!BH", reader.read(3))
                    reader.read(size)
                    continue
                lines = [first + reader.readline()]
                while lines[-1] not in (b"\r\n", b"\n", b""):
                    lines.append(reader.readline())
                method, url = lines[0].decode().split()[:2]
                headers = {}
                for raw in lines[1:]:
                    if b":" in raw:
                        k, v = raw.decode().split(":", 1)
                        headers[k.strip().lower()] = v.strip()
                if int(headers.get("content-length", "0")):
                    reader.read(int(headers["content-length"]))
                reply = [f"RTSP/1.0 200 OK\r\nCSeq: {headers.get('cseq', '0')}\r\n"]
                body = b""
                if method == "OPTIONS":
                    reply.append("Public: OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN, GET_PARAMETER\r\n")
                elif method == "DESCRIBE":
                    body = self._sdp()
                    reply.append(f"Content-Base: {url.rstrip('/')}/\r\nContent-Type: application/sdp\r\n")
                elif method == "SETUP":
                    if "interleaved" not in headers.get("transport", ""):
                        reply = [f"RTSP/1.0 461 Unsupported Transport\r\nCSeq: {headers.get('cseq')}\r\n"]
                    else:
                        reply.append(
                            "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\nSession: 4242;timeout=60\r\n"
                        )
                elif method in ("PLAY", "GET_PARAMETER"):
                    reply.append("Session: 4242\r\n")
                elif method == "TEARDOWN":
                    self._send(conn, lock, "".join(reply).encode() + b"\r\n")
                    return
                reply.append(f"Content-Length: {len(body)}\r\n\r\n")
                self._send(conn, lock, "".join(reply).encode() + body)
                if method == "PLAY":
                    self.sessions += 1
                    t = threading.Thread(target=self._stream, args=(conn, lock), daemon=True)
                    t.start()
                    self._threads.append(t)
        except (OSError, ValueError):
            return
        finally:
            with contextlib.suppress(OSError):
                conn.close()

    @staticmethod
    def _send(conn: socket.socket, lock: threading.Lock, data: bytes) -> None:
        with lock:
            conn.sendall(data)

    def _stream(self, conn: socket.socket, lock: threading.Lock) -> None:
        """Send the clip from its start, looping, in real time, until stopped or disconnected."""
        ssrc = random.getrandbits(32)
        seq = random.getrandbits(16)
        t0 = time.monotonic()
        try:
            for loop in itertools.count():
                for unit in self.units:
                    due = t0 + loop * self.duration + unit.pts
                    if self._stop.wait(max(0.0, due - time.monotonic())):
                        return
                    ts = round((loop * self.duration + unit.pts) * 90_000)
                    for pkt in rtp_packets(unit, seq, ts, ssrc):
                        self._send(conn, lock, struct.pack("!cBH", b"$", 0, len(pkt)) + pkt)
                        seq += 1
        except OSError:
            return


@pytest.fixture(scope="module")
def stream_source(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[AccessUnit], bytes, bytes]:
    clip = DATA_DIR / REAL_CLIP
    if not clip.exists():  # no shared footage: a generated H.264 clip does the same job
        clip = write_clip(tmp_path_factory.mktemp("rtsp") / "cam.mp4", seconds=6.0, fps=25).path
    return load_access_units(clip)


def wait_for(predicate: Callable[[], object], timeout: float, step: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return bool(predicate())


class Consumer:
    """Iterates a source's frames in a thread, recording what arrives and any exception."""

    def __init__(self, source: VideoSource) -> None:
        self.source = source
        self.frames: list[tuple[float, float, float]] = []  # (monotonic, pts, ts)
        self.errors: list[BaseException] = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            for frame in self.source.frames():
                assert frame.image.ndim == 3
                self.frames.append((time.monotonic(), frame.pts, frame.ts))
        except BaseException as exc:
            self.errors.append(exc)


def test_rtsp_reconnects_after_the_camera_dies(
    stream_source: tuple[list[AccessUnit], bytes, bytes], tmp_path: Path
) -> None:
    units, sps, pps = stream_source
    server = MiniRtspServer(units, sps, pps).start()
    port = server.port
    statuses: list[CameraStatus] = []
    ring = PacketRing(capacity_s=8.0)
    source = VideoSource(
        "door", server.url, 5.0, ring=ring, backoff_initial_s=0.2, backoff_max_s=1.0,
        open_timeout_s=3.0, read_timeout_s=2.0,
    )  # fmt: skip
    source.on_status(statuses.append)
    consumer = Consumer(source)
    try:
        assert wait_for(lambda: len(consumer.frames) >= 8, 15.0), f"no frames; statuses: {statuses}"
        assert source.status.state == CameraState.ONLINE
        # RTSP leaves the first keyframe untimed while its reorder buffer fills, so the ring
        # starts at the next keyframe (3 s into this clip).
        assert wait_for(lambda: ring.params is not None, 5.0)
        first_session = ring.params
        assert first_session is not None and first_session.codec_name == "h264"
        assert ring.snapshot(0.0)[0].keyframe
        gaps = [b[1] - a[1] for a, b in itertools.pairwise(consumer.frames[2:])]
        assert 0.15 < sum(gaps) / len(gaps) < 0.3  # paced at ~5 fps, latest frame only

        server.stop()
        assert wait_for(lambda: source.status.state == CameraState.RECONNECTING, 8.0), statuses
        assert source.status.reason
        time.sleep(1.0)
        before = len(consumer.frames)
        last_pts = consumer.frames[-1][1]

        restarted_at = time.monotonic()
        server = MiniRtspServer(units, sps, pps, port=port).start()
        assert wait_for(lambda: len(consumer.frames) > before + 2, 5.0), (
            f"no frames after restart: {statuses}"
        )
        resumed_after = consumer.frames[before][0] - restarted_at
        assert resumed_after < 5.0
        assert source.status.state == CameraState.ONLINE
        assert [s.state for s in statuses].count(CameraState.ONLINE) >= 2
        # The pts clock keeps running across the reconnect, outage included (compared once the
        # new session's opening burst has been decoded); ts follows wall-clock.
        assert wait_for(lambda: len(consumer.frames) > before + 5, 3.0)
        assert consumer.frames[before][1] > last_pts
        wall_gap = consumer.frames[before + 5][0] - consumer.frames[before - 1][0]
        assert consumer.frames[before + 5][1] - last_pts == pytest.approx(wall_gap, abs=0.5)
        assert abs(consumer.frames[-1][2] - time.time()) < 3.0
        # A new session brings its own parameters, once its first timed keyframe is in.
        assert wait_for(lambda: ring.params is not first_session, 5.0)

        # A clip from the live ring after the reconnect holds the whole span, pre-roll included.
        time.sleep(1.5)
        rec = ClipRecorder("door", ring, tmp_path, pre_roll_s=1.0, post_roll_s=1.0)
        trigger = consumer.frames[-1][1]
        rec.request("live", trigger, consumer.frames[-1][2])
        assert wait_for(lambda: consumer.frames[-1][1] >= trigger + 1.2, 5.0)
        written = rec.poll(consumer.frames[-1][1])
        assert [e for e, _ in written] == ["live"]
        with av.open(str(written[0][1])) as clip:
            assert sum(1 for _ in clip.decode(video=0)) >= 45  # ≥ 2 s at 25 fps
        print(f"\nRTSP: frames resumed {resumed_after:.2f} s after the server restarted")
    finally:
        source.stop()
        consumer.thread.join(timeout=3.0)
        server.stop()
    assert not consumer.thread.is_alive()
    assert not consumer.errors, consumer.errors


def test_unreachable_rtsp_camera_reports_reconnecting_then_offline() -> None:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]  # closed again at once: nothing listens there
    source = VideoSource(
        "vault", f"rtsp://admin:secret@127.0.0.1:{port}/cam", 5.0, backoff_initial_s=0.1, backoff_max_s=0.3,
        open_timeout_s=1.0, offline_after_s=1.0,
    )  # fmt: skip
    statuses: list[CameraStatus] = []
    source.on_status(statuses.append)
    consumer = Consumer(source)
    try:
        assert wait_for(lambda: source.status.state == CameraState.RECONNECTING, 3.0), statuses
        reason = source.status.reason or ""
        assert "cannot open" in reason and "refused" in reason.lower()
        assert "secret" not in reason
        assert wait_for(lambda: source.status.state == CameraState.OFFLINE, 4.0), statuses
    finally:
        t0 = time.monotonic()
        source.stop()
        consumer.thread.join(timeout=3.0)
    assert time.monotonic() - t0 < 1.0
    assert not consumer.frames and not consumer.errors


def test_silent_rtsp_camera_times_out_instead_of_hanging() -> None:
    """A host that accepts the connection and never answers (a hung camera)."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept_and_ignore() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError, OSError):
                held.append(listener.accept()[0])

    threading.Thread(target=accept_and_ignore, daemon=True).start()
    source = VideoSource("till", f"rtsp://127.0.0.1:{port}/cam", 5.0, open_timeout_s=1.0, read_timeout_s=1.0)
    consumer = Consumer(source)
    started = time.monotonic()
    try:
        assert wait_for(lambda: source.status.state == CameraState.RECONNECTING, 6.0), source.status
        assert time.monotonic() - started < 1.0 + 3.0
        assert "cannot open" in (source.status.reason or "")
        assert "timed out" in (source.status.reason or "")
    finally:
        t0 = time.monotonic()
        source.stop()
        consumer.thread.join(timeout=3.0)
        stop.set()
        listener.close()
        for s in held:
            s.close()
    assert time.monotonic() - t0 < 1.0
    assert not consumer.errors
