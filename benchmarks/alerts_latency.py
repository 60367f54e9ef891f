"""Alert latency on a real clip replayed at real time, to real receivers on localhost.

The pedestrian clip (vtest.avi, people stand around for long stretches) runs through the
live pipeline with a whole-picture zone and a 2 s loitering threshold, paced like a live
camera (each frame is handed over when its wall-clock time comes; a frame whose time has
passed while perception was busy is dropped, as a live source keeps only the latest).
Every loitering event alerts one manager on four channels: a push service (Apprise json://
to a local HTTP server), e-mail (aiosmtpd), a signed webhook, and MQTT (a private Mosquitto).

First stage: triggering frame's timestamp → that channel's send returned.
Clip stage: end of the clip's post-roll → the clip's send returned ("latency minus post-roll").
Prints p50/p95/max per channel and overall; asserts nothing.

    .venv/bin/python benchmarks/alerts_latency.py [--data ../shared/data] [--fps 5] [--post-roll 5]
"""

from __future__ import annotations

import argparse
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from sqlalchemy import select

from gemwatch.alerts.dispatcher import AlertDispatcher
from gemwatch.alerts.schema import OutboxRow
from gemwatch.config.models import GemwatchConfig
from gemwatch.events.bus import FanoutSink, StoreSink
from gemwatch.events.store import EventStore
from gemwatch.perception.plugins import build_detector
from gemwatch.pipeline import CameraPipeline
from gemwatch.types import uuid7

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Ok(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        return None


def http_receiver() -> tuple[ThreadingHTTPServer, int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, int(server.server_address[1])


def smtp_receiver() -> tuple[Any, int]:
    from aiosmtpd.controller import Controller

    class Sink:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            return "250 OK"

    port = free_port()
    controller = Controller(Sink(), hostname="127.0.0.1", port=port)
    controller.start()
    return controller, port


def broker(tmp: Path) -> tuple[subprocess.Popen[bytes], int]:
    exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    port = free_port()
    conf = tmp / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    proc = subprocess.Popen([exe, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    return proc, port


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))]


def summary(label: str, values: list[float]) -> str:
    if not values:
        return f"  {label:<22} n=0"
    return (
        f"  {label:<22} n={len(values):<4} p50={statistics.median(values):6.3f} s  "
        f"p95={pct(values, 0.95):6.3f} s  max={max(values):6.3f} s"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--fps", type=float, default=5.0)
    ap.add_argument("--post-roll", type=float, default=5.0)
    args = ap.parse_args()
    video = args.data / "pedestrians" / "vtest.avi"
    if not video.exists():
        print(f"real footage not found at {video}", file=sys.stderr)
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="gemwatch-alerts-bench-"))
    http, http_port = http_receiver()
    smtp, smtp_port = smtp_receiver()
    mosq, mqtt_port = broker(tmp)
    cfg = GemwatchConfig.model_validate(
        {
            "store": {"name": "Bench Jewellers", "timezone": "Europe/London"},
            "storage": {"data_dir": str(tmp / "data")},
            "recorder": {"pre_roll_s": 2.0, "post_roll_s": args.post_roll},
            "cameras": [
                {
                    "id": "walkway",
                    "name": "Walkway",
                    "url": str(video),
                    "fps": args.fps,
                    "zones": [
                        {
                            "id": "all",
                            "name": "Walkway",
                            "kind": "counter",
                            "polygon": [[0, 0], [1, 0], [1, 1], [0, 1]],
                            "loitering": {"dwell_s": 2.0, "grace_s": 1.0},
                        }
                    ],
                }
            ],
            "alerts": {
                "public_url": "http://127.0.0.1:7480",
                "mqtt": {"host": "127.0.0.1", "port": mqtt_port, "node_id": "bench"},
                "recipients": [
                    {
                        "id": "manager",
                        "apprise": [
                            f"json://127.0.0.1:{http_port}/push",
                            f"mailto://127.0.0.1:{smtp_port}?from=gw@example.com&to=m@example.com&mode=insecure",
                        ],
                        "webhooks": [{"url": f"http://127.0.0.1:{http_port}/hook"}],
                        "mqtt": True,
                    }
                ],
                "routes": [{"id": "all", "recipients": ["manager"], "cooldown_s": 0}],
            },
        }
    )
    store = EventStore(cfg.storage.resolved_database_url(), cfg.store.tz)
    run_id = uuid7()
    store.start_run(run_id, "bench", [str(video)])
    dispatcher = AlertDispatcher(cfg, store.engine, secret=b"bench-secret").start()
    if dispatcher.mqtt is not None:
        dispatcher.mqtt.wait_connected(10)
    detector = build_detector(cfg.perception.detector)
    camera = cfg.cameras[0]
    sink = FanoutSink(StoreSink(store, run_id), dispatcher)
    start = datetime.now(UTC)
    pipeline = CameraPipeline(cfg, camera, sink, detector=detector, start_time=start)
    raw_frames = pipeline.source.frames
    dropped = 0
    lags: list[float] = []

    def paced() -> Any:
        """Hand each frame over at its wall-clock time; drop frames already late by more
        than one frame interval (a live source keeps only the latest picture)."""
        nonlocal dropped
        for frame in raw_frames():
            wait = frame.ts - time.time()
            if wait > 0:
                time.sleep(wait)
            elif -wait > 1.0 / args.fps:
                dropped += 1
                continue
            lags.append(max(0.0, time.time() - frame.ts))
            yield frame

    pipeline.source.frames = paced  # type: ignore[method-assign]
    print(
        f"replaying {video.name} at real time ({args.fps:g} fps analysed), post-roll {args.post_roll:g} s ..."
    )
    result = pipeline.run()
    end_wall = time.time()
    drained = dispatcher.close(drain_s=60.0)
    with store.engine.connect() as c:
        q = select(
            OutboxRow.stage,
            OutboxRow.channel,
            OutboxRow.state,
            OutboxRow.frame_ts,
            OutboxRow.created_ts,
            OutboxRow.sent_ts,
            OutboxRow.latency_s,
        )
        rows = list(c.execute(q))
    store.close()
    http.shutdown()
    smtp.stop()
    mosq.terminate()

    first = [r for r in rows if r.stage == "alert"]
    clips = [r for r in rows if r.stage == "clip"]
    flushed = [r for r in clips if r.frame_ts > end_wall]  # written at end of file, before post-roll
    clips = [r for r in clips if r.frame_ts <= end_wall]
    print(
        f"frames analysed {result.frames} (dropped {dropped} late), events {result.events}, "
        f"perception lag p95 {pct(lags, 0.95):.3f} s, outbox drained: {drained}"
    )
    print(f"first-stage alerts: {len(first)} deliveries, {sum(r.state == 'sent' for r in first)} sent")
    print("first stage: triggering frame -> send returned")
    for ch in ("apprise", "webhook", "mqtt"):
        print(summary(ch, [r.latency_s for r in first if r.channel == ch and r.latency_s is not None]))
    print(summary("all channels", [r.latency_s for r in first if r.latency_s is not None]))
    print(
        "  where it goes: frame -> queued in the outbox (perception, rules, snapshot, SQL) and queued -> sent"
    )
    print(summary("frame -> queued", [r.created_ts - r.frame_ts for r in first]))
    print(summary("queued -> sent", [r.sent_ts - r.created_ts for r in first if r.sent_ts is not None]))
    print("clip stage: end of post-roll -> send returned (clip latency minus post-roll)")
    for ch in ("apprise", "webhook", "mqtt"):
        print(summary(ch, [r.latency_s for r in clips if r.channel == ch and r.latency_s is not None]))
    print(summary("all channels", [r.latency_s for r in clips if r.latency_s is not None]))
    print(summary("post-roll -> queued", [r.created_ts - r.frame_ts for r in clips]))
    print(summary("queued -> sent", [r.sent_ts - r.created_ts for r in clips if r.sent_ts is not None]))
    print(f"  ({len(flushed)} clip deliveries of events still open at the end of the file left out)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
