"""The web console in headless Debian Chromium (Playwright), over a real ``gemwatch run``.

A live camera: FFmpeg serves OpenCV's real ``vtest.avi`` footage as an endless real-time
H.264 MPEG-TS stream over HTTP (one client per FFmpeg run; the fixture restarts it, the way a
camera accepts a reconnect). ``gemwatch run`` analyses it in a camera process and serves the
console. The browser sets up the owner with the one-time link from the log, watches the live
picture with boxes drawn, opens an event the pipeline produced, plays its clip to the end,
acknowledges it, draws a zone and saves it, and the test sees the YAML change (comments kept)
and the zone's rule fire on the frames analysed right after. A second test replays the clip
across the 2026 spring-forward change in Europe/London and checks the times on the pages.

Screenshots of every page go to the test's tmp directory (printed); look at them.
Chromium: ``/usr/bin/chromium`` (``scripts/system-deps.sh`` installs Debian's package); no
browser is ever downloaded.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import cv2
import numpy as np
import pytest

from conftest import REPO_ROOT, data_file
from fixtures.clips import trim

pytestmark = [pytest.mark.slow, pytest.mark.timeout(420)]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
GEMWATCH = [sys.executable, "-c", "from gemwatch.cli import main; main()"]
OWNER = ("owner", "jewels-and-gems-2026")
LONDON = ZoneInfo("Europe/London")
SPRING_FORWARD_UTC = datetime(2026, 3, 29, 1, 0, tzinfo=UTC).timestamp()

CONFIG = """\
# gemwatch e2e test store — comments must survive the zone editor
store:
  name: Test jewellers
  timezone: Europe/London   # the store's clock
storage:
  data_dir: {data}
web:
  host: 127.0.0.1
  port: {port}
  live_fps: 4
recorder:
  pre_roll_s: 2
  post_roll_s: 2
cameras:
  - id: door
    name: Front door
    url: {url}
    fps: 5
    zones:
      # people who linger on the walkway
      - id: walkway
        name: Walkway
        kind: entrance
        polygon: [[0.0, 0.35], [1.0, 0.35], [1.0, 1.0], [0.0, 1.0]]
        loitering:
          dwell_s: 2
          grace_s: 1
rules:
  presence:
    - id: vault_watch   # anyone in a vault zone
      zone_kinds: [vault]
      min_s: 0.4
      grace_s: 1
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def need_browser() -> None:
    """Debian's chromium, installed by ``scripts/system-deps.sh`` (apt) when missing and allowed."""
    if not CHROMIUM.exists() and os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["bash", str(REPO_ROOT / "scripts" / "system-deps.sh")], check=False, timeout=900)
    if not CHROMIUM.exists():
        pytest.skip(
            "Debian chromium is not installed at /usr/bin/chromium (run scripts/system-deps.sh as root)"
        )
    pytest.importorskip("playwright.sync_api", reason="playwright (Python package) is not installed")


class LiveCamera:
    """FFmpeg serving ``clip`` in a loop, in real time, as H.264 MPEG-TS over HTTP."""

    def __init__(self, clip: Path) -> None:
        self.clip = clip
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/live.ts"
        self._stop = threading.Event()
        self._proc: subprocess.Popen[bytes] | None = None
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        cmd = [
            "ffmpeg", "-hide_banner", "-loglevel", "error", "-re", "-stream_loop", "-1", "-i", str(self.clip),
            "-an", "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "10",
            "-pix_fmt", "yuv420p", "-f", "mpegts", "-listen", "1", self.url,
        ]  # fmt: skip
        while not self._stop.is_set():
            self._proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            while self._proc.poll() is None and not self._stop.is_set():
                time.sleep(0.2)

    def __enter__(self) -> LiveCamera:
        self._thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self._stop.set()
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(5)
        self._thread.join(5)


@dataclass
class Node:
    proc: subprocess.Popen[bytes]
    base: str
    config: Path
    data: Path
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_log(self, pattern: str, timeout: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = re.search(pattern, self.log_text())
            if m:
                return m
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"gemwatch run exited ({self.proc.returncode}):\n{self.log_text()[-3000:]}"
                )
            time.sleep(0.2)
        raise AssertionError(f"no {pattern!r} in the log after {timeout} s:\n{self.log_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def start_node(tmp: Path, config_text: str, *extra: str) -> Node:
    config = tmp / "gemwatch.yml"
    config.write_text(config_text, encoding="utf-8")
    log = tmp / "node.log"
    port = int(re.search(r"port: (\d+)", config_text).group(1))  # type: ignore[union-attr]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*GEMWATCH, "run", "-c", str(config), *extra],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=tmp,
            env=env,
        )
    return Node(proc, f"http://localhost:{port}", config, tmp / "data", log)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    need_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


def shots_dir(tmp_path: Path) -> Path:
    """Under the test's tmp directory, or ``$GEMWATCH_SCREENSHOTS`` to keep them after the run."""
    keep = os.environ.get("GEMWATCH_SCREENSHOTS")
    out = Path(keep) / tmp_path.name if keep else tmp_path / "screenshots"
    out.mkdir(parents=True, exist_ok=True)
    print(f"\nscreenshots: {out}")
    return out


def shot(page: Any, out: Path, name: str) -> Path:
    path = out / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def setup_owner(page: Any, node: Node) -> None:
    token = node.wait_log(r"/setup\?token=([A-Za-z0-9_-]+)", 60).group(1)
    page.goto(f"{node.base}/setup?token={token}")
    page.fill("input[name=username]", OWNER[0])
    page.fill("input[name=password]", OWNER[1])
    page.fill("input[name=password2]", OWNER[1])
    page.click("button[type=submit]")
    page.wait_for_url(f"{node.base}/")


def api(page: Any, path: str) -> Any:
    r = page.request.get(page.url.split("/", 3)[0] + "//" + page.url.split("/", 3)[2] + path)
    assert r.ok, f"GET {path}: {r.status} {r.text()[:300]}"
    return r.json() if "json" in r.headers.get("content-type", "") else r.body()


def wait_for(fn: Any, timeout: float, what: str, every: float = 1.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def boxes_drawn(jpeg: bytes, info: dict[str, Any]) -> float:
    """Share of the people in ``info`` whose box outline is drawn in their colour in the JPEG."""
    img = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert img.shape[1] == info["width"] and img.shape[0] == info["height"]
    good = 0
    for person in info["people"]:
        x1, y1, x2, _ = person["box"]
        r, g, b = person["colour"]
        y = min(max(y1, 0), img.shape[0] - 1)
        row = img[y, max(x1, 0) : min(x2, img.shape[1])].astype(np.int32)
        if len(row) < 4:
            continue
        distance = np.abs(row - np.array([b, g, r])).sum(axis=1)
        good += float(np.mean(distance < 60)) > 0.6
    return good / max(1, len(info["people"]))


@pytest.fixture
def live_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    clip = data_file("pedestrians/vtest.avi")
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is not installed (scripts/system-deps.sh)")
    tmp = tmp_path_factory.mktemp("web-live")
    with LiveCamera(clip) as cam:
        node = start_node(tmp, CONFIG.format(data=tmp / "data", port=free_port(), url=cam.url))
        try:
            yield node
        finally:
            node.stop()
    print(f"\nnode log: {node.log}")


def test_console_end_to_end(live_node: Node, browser: Any, tmp_path: Path) -> None:
    node = live_node
    out = shots_dir(tmp_path)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    console_errors: list[str] = []
    page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)

    # First run: the one-time set-up link from the log creates the owner and logs in.
    setup_owner(page, node)
    wait_for(lambda: api(page, "/api/v1/cameras/door")["state"] == "online", 60, "the camera to be online")
    page.reload()
    page.wait_for_selector(".camera .state-online")
    assert "Front door" in page.inner_text("#cameras")
    shot(page, out, "01-overview")

    # Live view: the picture refreshes (footage plays) and shows tracked people with boxes.
    page.goto(f"{node.base}/live/door")
    page.wait_for_function(
        "() => parseInt(document.getElementById('live').dataset.people || '0') > 0", timeout=30000
    )
    first_ts = float(page.get_attribute("#live", "data-frame-ts") or 0)
    page.wait_for_function(
        f"() => parseFloat(document.getElementById('live').dataset.frameTs) > {first_ts + 1}"
    )
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d (GMT|BST)", page.inner_text("#live-info"))
    shot(page, out, "02-live")
    r = page.request.get(f"{node.base}/api/v1/cameras/door/live.jpg")
    info = json.loads(r.headers["x-gemwatch-live"])
    assert info["people"], "the live picture lists no people"
    assert boxes_drawn(r.body(), info) >= 0.6, "people's boxes are not drawn on the live picture"
    mjpeg = page.request.get(f"{node.base}/api/v1/cameras/door/live.mjpeg?seconds=2").body()
    assert mjpeg.count(b"--frame\r\nContent-Type: image/jpeg") >= 3 and mjpeg.count(b"\xff\xd8") >= 3

    # An event the pipeline produced, with its clip.
    def event_with_clip() -> Any:
        items = api(page, "/api/v1/events?camera=door&per_page=100")["items"]
        return next((e for e in items if e["has_clip"] and e["type"] == "loitering"), None)

    ev = wait_for(event_with_clip, 120, "a loitering event with a clip", every=2.0)
    page.goto(f"{node.base}/events")
    page.wait_for_selector(f"a[href='/events/{ev['id']}']")
    shot(page, out, "03-events")
    page.click(f"a[href='/events/{ev['id']}'] >> nth=0")
    page.wait_for_selector("#clip")
    assert ev["start_local"] in page.inner_text("#ev-start")
    played = page.evaluate(
        """async () => {
            const v = document.getElementById('clip');
            v.muted = true;
            if (v.readyState < 1)
                await new Promise(r => v.addEventListener('loadedmetadata', r, {once: true}));
            v.currentTime = v.duration / 3;
            await new Promise(r => v.addEventListener('seeked', r, {once: true}));
            v.playbackRate = 4;
            await v.play();
            if (!v.ended) await new Promise(r => v.addEventListener('ended', r, {once: true}));
            return {ended: v.ended, t: v.currentTime, d: v.duration, w: v.videoWidth};
        }"""
    )
    assert played["ended"] and played["w"] > 0 and played["d"] > 1.0, played
    assert abs(played["t"] - played["d"]) < 0.5, played
    shot(page, out, "04-event-played")

    # Acknowledge it.
    page.click("#btn-ack")
    page.wait_for_selector("#ack-by:has-text('owner at')")
    assert api(page, f"/api/v1/events/{ev['id']}")["status"] == "acknowledged"
    shot(page, out, "05-acknowledged")

    # Draw a vault zone over the walkway and save it.
    page.goto(f"{node.base}/cameras/door/zones")
    page.wait_for_function("() => document.getElementById('zone-image').naturalWidth > 0", timeout=20000)
    box = page.locator("#zone-svg").bounding_box()
    page.click("#zone-new")
    for fx, fy in ((0.02, 0.3), (0.98, 0.3), (0.98, 0.98), (0.02, 0.98)):
        page.mouse.click(box["x"] + fx * box["width"], box["y"] + fy * box["height"])
    page.click("#zone-finish")
    page.fill("#zone-id", "vault1")
    page.fill("#zone-name", "Vault door")
    page.select_option("#zone-kind", "vault")
    shot(page, out, "06-zone-drawn")
    saved_at = time.time()
    page.click("#zone-save")
    page.wait_for_selector("#zone-result.saved", timeout=15000)
    assert "next analysed frame" in page.inner_text("#zone-result")
    shot(page, out, "07-zone-saved")

    text = node.config.read_text()
    assert "id: vault1" in text and "kind: vault" in text and "name: Vault door" in text
    for comment in (
        "# gemwatch e2e test store",
        "# the store's clock",
        "# people who linger",
        "# anyone in a vault",
    ):
        assert comment in text, f"the zone editor lost the comment {comment!r}"

    def vault_event() -> Any:
        items = api(page, "/api/v1/events?camera=door&type=presence.vault_watch")["items"]
        return next((e for e in items if e["zone"] == "vault1"), None)

    vault = wait_for(vault_event, 30, "the vault rule to fire", every=0.5)
    # min_s 0.4 s of presence plus one 0.2 s frame: the first frames after the save already use it.
    assert saved_at - 1.0 <= vault["start_ts"] <= saved_at + 3.0, (vault["start_ts"] - saved_at, vault)
    log = node.log_text()
    assert "new zones applied" in log
    assert "restarting" not in log, "the camera process was restarted to apply the zones"

    page.goto(f"{node.base}/live/door")
    page.wait_for_function(
        "() => (document.getElementById('live-info').textContent || '').includes('vault1')", timeout=20000
    )
    shot(page, out, "08-live-new-zone")

    # The audit log shows what happened.
    page.goto(f"{node.base}/audit")
    audit_text = page.inner_text("table.audit")
    for action in ("auth.login", "user.create", "clip.view", "event.ack", "config.zones"):
        assert action in audit_text, f"{action} missing from the audit log"
    shot(page, out, "09-audit")
    assert not [e for e in console_errors if "Content Security Policy" in e], console_errors
    context.close()


DST_ZONES = """\
store:
  name: DST store
  timezone: Europe/London
storage:
  data_dir: {data}
web:
  port: {port}
cameras:
  - id: replay
    url: {url}
    fps: 2
    zones:
      - id: walkway
        kind: entrance
        polygon: [[0.0, 0.35], [1.0, 0.35], [1.0, 1.0], [0.0, 1.0]]
        loitering: {{dwell_s: 2, grace_s: 1}}
"""


def test_times_across_dst_change(browser: Any, tmp_path: Path) -> None:
    """Replay 26 s of vtest.avi with ``gemwatch run --start-time`` as if it started at 00:59:48
    UTC on 2026-03-29: London's clocks jump from 01:00 GMT to 02:00 BST 12 s in. Every time
    shown must be the right local time, and filters read store time."""
    need_browser()
    clip = trim(data_file("pedestrians/vtest.avi"), tmp_path / "vtest-26s.avi", 26.0)
    port = free_port()
    node = start_node(
        tmp_path,
        DST_ZONES.format(data=tmp_path / "data", port=port, url=clip),
        "--start-time",
        "2026-03-29T00:59:48+00:00",
    )
    try:
        node.wait_log(r"/setup\?token=", 60)
        node.proc.wait(180)  # a file camera ends; the node then stops by itself
    finally:
        node.stop()
    assert node.proc.returncode == 0, node.log_text()[-2000:]

    # Review the replay in the console served over the same database.
    from gemwatch.config.loader import load
    from gemwatch.events.store import EventStore
    from gemwatch.web.deps import WebContext
    from gemwatch.web.server import WebServer

    out = shots_dir(tmp_path)
    cfg = load(node.config)
    store = EventStore(cfg.storage.resolved_database_url(), cfg.store.tz)
    server = WebServer(WebContext(cfg=cfg, store=store, config_path=node.config))
    server.start()
    try:
        token = server.announce_setup()
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(f"{server.url}/setup?token={token}")
        page.fill("input[name=username]", OWNER[0])
        page.fill("input[name=password]", OWNER[1])
        page.fill("input[name=password2]", OWNER[1])
        page.click("button[type=submit]")
        page.wait_for_url(f"{server.url}/")
        items = api(page, "/api/v1/events?per_page=500")["items"]
        before = [e for e in items if e["start_ts"] < SPRING_FORWARD_UTC]
        after = [e for e in items if e["start_ts"] >= SPRING_FORWARD_UTC]
        assert before and after, f"need events on both sides of the change: {len(before)} / {len(after)}"
        for e in items:
            expected = datetime.fromtimestamp(e["start_ts"], LONDON).strftime("%Y-%m-%d %H:%M:%S %Z")
            assert e["start_local"] == expected
            assert expected.startswith(("2026-03-29 00:59", "2026-03-29 02:00"))
            assert expected.endswith("GMT") == (e["start_ts"] < SPRING_FORWARD_UTC)

        page.goto(f"{server.url}/events?per_page=200")
        table = page.inner_text("#event-table")
        for e in items:
            assert e["start_local"] in table
        assert "GMT" in table and "BST" in table
        shot(page, out, "dst-01-events")
        # Filtering by store time: 02:00 local exists only as BST on that day.
        page.goto(f"{server.url}/events?since=2026-03-29T02:00&until=2026-03-29T03:00")
        filtered = page.inner_text("#event-table")
        assert "GMT" not in filtered and f"{len(after)} event" in filtered
        shot(page, out, "dst-02-filtered")
        straddling = next(
            (e for e in before if e["end_ts"] and e["end_ts"] >= SPRING_FORWARD_UTC), before[-1]
        )
        page.goto(f"{server.url}/events/{straddling['id']}")
        assert straddling["start_local"] in page.inner_text("#ev-start")
        if straddling["end_local"]:
            assert straddling["end_local"] in page.inner_text("#ev-end")
        # A file camera's clip keeps vtest's MS-MPEG-4 (Matroska); the page plays a WebM copy.
        if straddling["has_clip"]:
            assert page.get_attribute("#clip source", "type") == "video/webm"
            played = page.evaluate(
                """async () => {
                    const v = document.getElementById('clip');
                    v.muted = true;
                    if (v.readyState < 1)
                await new Promise(r => v.addEventListener('loadedmetadata', r, {once: true}));
                    v.playbackRate = 8;
                    await v.play();
                    if (!v.ended) await new Promise(r => v.addEventListener('ended', r, {once: true}));
                    return {ended: v.ended, d: v.duration, w: v.videoWidth};
                }"""
            )
            assert played["ended"] and played["w"] == 768, played
        shot(page, out, "dst-03-event")
        page.close()
    finally:
        server.stop()
        store.close()
