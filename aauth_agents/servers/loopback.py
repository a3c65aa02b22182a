"""Run an ASGI app with uvicorn on 127.0.0.1 in a background thread.

Used by the demo and by tests that need a real HTTP server: the port is chosen by the OS
(``port=0``, the default) or given, the server only ever listens on loopback, holds the
limits of every server we run (``limits``, default :class:`ServerLimits`: head and body
timeouts, connection and concurrency caps, 431/413 problem+json), and leaving the ``with``
block stops it.
"""

from __future__ import annotations

import threading
import time
from types import TracebackType
from typing import Any

import uvicorn

from .edge import uvicorn_config
from .limits import ServerLimits


class LoopbackServer:
    """``with LoopbackServer(app) as server: server.url`` -- ``http://127.0.0.1:PORT``."""

    def __init__(
        self,
        app: Any,
        *,
        port: int = 0,
        startup_timeout: float = 10.0,
        log_level: str = "warning",
        limits: ServerLimits | None = None,
    ):
        config = uvicorn_config(app, port=port, limits=limits, log_level=log_level)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="aauth-loopback", daemon=True)
        self._startup_timeout = startup_timeout
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LoopbackServer:
        self._thread.start()
        deadline = time.monotonic() + self._startup_timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                where = f"127.0.0.1:{self._server.config.port}"
                raise RuntimeError(f"uvicorn did not start on {where} (is the port in use?)")
            time.sleep(0.01)
        self.port = self._server.servers[0].sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def __enter__(self) -> LoopbackServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
