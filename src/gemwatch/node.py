"""``gemwatch run``: one process per camera, one bus and one SQL writer in the main process.

A camera process that dies (bad stream, crash in a model) is logged and restarted with
backoff; the others keep running. SIGINT/SIGTERM stop every camera cleanly: open events get
their final duration and pending clips are written before the processes exit.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import signal
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gemwatch.config.models import Camera, GemwatchConfig
from gemwatch.events.bus import FanoutSink, StoreSink, drain
from gemwatch.events.retention import enforce
from gemwatch.events.store import EventStore
from gemwatch.types import uuid7

log = logging.getLogger(__name__)

RETENTION_EVERY_S = 600.0


def _camera_main(cfg: GemwatchConfig, camera: Camera, q: Any, stop: Any, start_time: datetime | None) -> None:
    """Entry point of a camera process: build models, run the pipeline until ``stop``."""
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s %(levelname)s [{camera.id}] %(message)s")
    from gemwatch.events.bus import QueueSink
    from gemwatch.perception.plugins import build_detector, build_pose
    from gemwatch.pipeline import CameraPipeline

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    detector = build_detector(cfg.perception.detector)
    pose = build_pose(cfg.perception.pose) if cfg.perception.pose is not None else None
    pipeline = CameraPipeline(cfg, camera, QueueSink(q), detector=detector, pose=pose, start_time=start_time)

    def watch_stop() -> None:
        stop.wait()
        pipeline.stop()

    threading.Thread(target=watch_stop, daemon=True).start()
    signal.signal(signal.SIGTERM, lambda *_: pipeline.stop())
    result = pipeline.run()
    log.info(
        "camera %s stopped after %d frames%s", camera.id, result.frames, f": {result.error}" if result.error else ""
    )


@dataclass(slots=True)
class _Worker:
    camera: Camera
    process: Any
    started: float
    restarts: int = 0
    finished: bool = False


def _is_file(camera: Camera) -> bool:
    url = camera.detect_url or camera.url
    return "://" not in url and not url.startswith("/dev/")


def run_node(cfg: GemwatchConfig, *, start_time: datetime | None = None, stop_after_s: float | None = None) -> int:
    """Run until SIGINT/SIGTERM (or every file camera has ended); returns the exit code."""
    store = EventStore(cfg.storage.resolved_database_url(), cfg.store.tz)
    run_id = uuid7()
    cameras = [c for c in cfg.cameras if c.enabled]
    store.start_run(run_id, "run", [c.url for c in cameras])
    from gemwatch.alerts.dispatcher import from_config as alert_dispatcher

    alerts = alert_dispatcher(cfg, store.engine)  # None without alert routes
    sink = FanoutSink(StoreSink(store, run_id), *([alerts] if alerts else []))
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    stop = ctx.Event()
    workers: dict[str, _Worker] = {}

    def spawn(camera: Camera, restarts: int = 0) -> None:
        p = ctx.Process(
            target=_camera_main, args=(cfg, camera, q, stop, start_time), name=f"gemwatch-{camera.id}", daemon=False
        )
        p.start()
        workers[camera.id] = _Worker(camera, p, time.monotonic(), restarts)

    stopping = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        log.info("received %s, stopping cameras", signal.Signals(signum).name)
        stopping.set()
        stop.set()

    old_int = signal.signal(signal.SIGINT, on_signal)
    old_term = signal.signal(signal.SIGTERM, on_signal)
    for camera in cameras:
        spawn(camera)
    log.info("gemwatch node running %d camera(s); data in %s", len(cameras), cfg.storage.data_dir)
    started = time.monotonic()
    next_retention = 0.0
    try:
        while True:
            drain(q, sink)
            now = time.monotonic()
            if stop_after_s is not None and now - started > stop_after_s and not stopping.is_set():
                stopping.set()
                stop.set()
            if now >= next_retention:
                _retention(cfg, store)
                next_retention = now + RETENTION_EVERY_S
            alive = 0
            for cam_id, w in list(workers.items()):
                if w.process.is_alive():
                    alive += 1
                    continue
                if w.finished:
                    continue
                code = w.process.exitcode
                if stopping.is_set() or (code == 0 and _is_file(w.camera)):
                    w.finished = True
                    continue
                delay = min(60.0, 2.0 ** min(w.restarts, 6))
                if now - w.started < delay:
                    alive += 1
                    continue
                log.error("camera %s process exited with code %s; restarting (attempt %d)", cam_id, code, w.restarts + 1)
                spawn(w.camera, w.restarts + 1)
                alive += 1
            if alive == 0:
                break
    finally:
        stop.set()
        deadline = time.monotonic() + 15.0
        for w in workers.values():
            w.process.join(timeout=max(0.1, deadline - time.monotonic()))
            if w.process.is_alive():
                log.warning("camera %s did not stop in time; terminating", w.camera.id)
                w.process.terminate()
        drain(q, sink, timeout=0.5)
        if alerts is not None:
            alerts.close(drain_s=5.0)  # what is left is sent after the next start
        store.end_run(run_id, "stopped" if stopping.is_set() else "done")
        store.close()
        signal.signal(signal.SIGINT, old_int)
        signal.signal(signal.SIGTERM, old_term)
    return 0


def _retention(cfg: GemwatchConfig, store: EventStore) -> None:
    try:
        report = enforce(
            cfg.storage.data_dir,
            max_age_days=cfg.retention.max_age_days,
            max_bytes=int(cfg.retention.max_gb * 1e9),
        )
        removed = [str(p) for p in report.removed]
        if removed:
            store.forget_evidence(removed)
            log.info("retention removed %d file(s)", len(removed))
    except Exception:
        log.exception("retention pass failed; will retry")
