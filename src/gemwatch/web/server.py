"""Run the web console inside ``gemwatch run``: uvicorn in a thread of the node's main process.

A thread rather than another process: the console needs the bus (camera states, live SSE) and
the node's camera controls (zone reload), which live in the main process, and its own work is
I/O. Analysis runs in the camera processes, so the console never competes with it for the GIL.
On first run (no users) it prints a one-time set-up link instead of creating a default password.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from typing import Any

import uvicorn

from gemwatch.web.app import build_app
from gemwatch.web.auth import issue_setup_token, purge_expired_sessions, user_count
from gemwatch.web.deps import WebContext

log = logging.getLogger(__name__)


class WebStartError(Exception):
    """The console could not start (port taken, bad TLS files); the message says which."""


class WebServer:
    def __init__(self, ctx: WebContext) -> None:
        self.ctx = ctx
        web = ctx.cfg.web
        self.app = build_app(ctx)
        self.config = uvicorn.Config(
            self.app,
            host=web.host,
            port=web.port,
            ssl_certfile=str(web.tls_cert) if web.tls_cert else None,
            ssl_keyfile=str(web.tls_key) if web.tls_key else None,
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=3,
        )
        self.server = uvicorn.Server(self.config)
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        web = self.ctx.cfg.web
        host = "localhost" if web.host in ("127.0.0.1", "::1") else web.host
        return f"{'https' if web.tls else 'http'}://{host}:{web.port}"

    def start(self, timeout_s: float = 15.0) -> None:
        """Start serving; returns once the port is open, raises WebStartError otherwise."""

        web = self.ctx.cfg.web
        try:  # uvicorn reports a taken port only as SystemExit(1): ask the OS first, for its words
            with socket.socket(socket.AF_INET6 if ":" in web.host else socket.AF_INET) as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                probe.bind((web.host, web.port))
        except OSError as exc:
            raise WebStartError(
                f"web console could not listen on {web.host}:{web.port}: {exc.strerror or exc}"
                " (another program uses the port? change web.port in the config)"
            ) from None

        def serve() -> None:
            try:
                self.server.run()
            except BaseException as exc:  # SystemExit from uvicorn when the port is taken
                self._error = exc

        self._thread = threading.Thread(target=serve, name="gemwatch-web", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                reason = self._error or "did not start in time"
                raise WebStartError(
                    f"web console could not listen on {web.host}:{web.port}: {reason}"
                    " (port in use? change web.port in the config)"
                )
            time.sleep(0.05)
        log.info("web console on %s", self.url)
        self.announce_setup()

    def announce_setup(self) -> str | None:
        """Log a one-time set-up link when nobody can log in yet; returns the token."""
        with self.ctx.session() as s:
            purge_expired_sessions(s)
            if user_count(s) > 0:
                return None
            token = issue_setup_token(s)
        log.warning(
            "no users yet: create the owner account at %s/setup?token=%s (one-time link, valid 24 h)",
            self.url,
            token,
        )
        return token

    def stop(self) -> None:
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=8.0)

    def __enter__(self) -> WebServer:
        self.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self.stop()
