"""``aauth-agents serve ... --workers N``: N processes serving one listening socket.

The parent binds ``--host``/``--port`` once and starts N worker processes with uvicorn's
supervisor (``multiprocessing`` spawn, the socket passed to each). Every worker builds its
own app from the same options with an :class:`AppFactory` -- a builder function and plain
data, so it pickles -- and therefore has the same keys and the same shared stores (a
database or Redis) as the others: nothing a worker acknowledged lives only in its memory.
The parent restarts a worker that dies (``kill -9`` of one worker loses nothing but the
requests it was answering) and stops them all on SIGINT or SIGTERM; a worker that cannot
build its app stops the parent instead of being restarted forever.
"""

from __future__ import annotations

import inspect
import logging
import socket
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

from .common import EXIT_NETWORK, EXIT_OK, Failure, log_to

if TYPE_CHECKING:
    from ..servers.limits import ServerLimits

log = logging.getLogger("aauth_agents.cli.workers")

#: The uvicorn settings of the workers beside the edge limits (as ``uvicorn_config``'s).
SERVER_OPTIONS: Mapping[str, Any] = {
    "log_level": "warning",
    "access_log": False,
    "proxy_headers": False,  # forwarding headers: servers.proxies, trusted ones only
}
#: Seconds a stopping worker lets open requests (a long poll) finish.
GRACEFUL_SHUTDOWN = 5
#: Seconds a worker has to answer the parent's health check before it is replaced as hung.
HEALTHCHECK = 10
#: The exit status uvicorn's supervisor reads as "this worker cannot start" (no restart).
STARTUP_FAILURE = 3


@dataclass(frozen=True)
class Built:
    """What a builder returns: the ASGI app and what closes its resources (``None``: none)."""

    app: Any
    close: Callable[[], Any] | None = None


@dataclass(frozen=True)
class AppFactory:
    """Builds a worker's app: ``build(options)`` in the worker process. ``build`` is a
    module-level function and ``options`` plain data, so the factory pickles into a spawned
    worker; the app closes what it built when the server shuts down (ASGI lifespan)."""

    build: Callable[[Mapping[str, Any]], Built]
    options: Mapping[str, Any]

    def __call__(self) -> Any:
        log_to(sys.stderr)
        try:
            built = self.build(self.options)
        except Exception:
            log.exception("a worker could not build its app")
            raise SystemExit(STARTUP_FAILURE) from None
        return closing(built.app, built.close) if built.close is not None else built.app


def closing(app: Any, close: Callable[[], Any]) -> Any:
    """``app``, calling ``close()`` (awaited when it returns an awaitable) when the server
    shuts down, before it reports the shutdown complete (ASGI lifespan)."""

    async def wrapped(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "lifespan":
            await app(scope, receive, send)
            return

        async def on_send(message: Any) -> None:
            if message["type"] in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
                try:
                    result = close()
                    if inspect.isawaitable(result):
                        await result
                except Exception:
                    log.exception("closing the app failed")
            await send(message)

        await app(scope, receive, on_send)

    return wrapped


def serve_workers(
    factory: AppFactory,
    *,
    workers: int,
    host: str,
    port: int,
    announce: Callable[[int], None],
    limits: ServerLimits | None = None,
) -> int:
    """Serve ``factory``'s app on ``host``:``port`` with ``workers`` processes until SIGINT
    or SIGTERM, each under the edge ``limits`` (default
    :class:`~aauth_agents.servers.ServerLimits`); ``announce(port)`` once every worker
    serves. A worker that dies is replaced; one that fails to build its app ends the run
    with a :class:`Failure`."""
    from .worker_config import WorkerConfig

    config = WorkerConfig(
        factory,
        limits=limits,
        host=host,
        port=port,
        workers=workers,
        lifespan="on",
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN,
        timeout_worker_healthcheck=HEALTHCHECK,
        **SERVER_OPTIONS,
    )
    try:
        sock = config.bind_socket()
    except SystemExit:  # uvicorn logged why
        raise Failure(EXIT_NETWORK, f"could not listen on {host}:{port}") from None

    supervisor = _supervisor(config, sock, announce)
    try:
        supervisor.run()
    finally:
        sock.close()
    if not supervisor.started:
        raise Failure(EXIT_NETWORK, "the workers could not start (the log above says why)")
    return EXIT_OK


def _supervisor(config: Any, sock: socket.socket, announce: Callable[[int], None]) -> Any:
    """uvicorn's supervisor of ``config.workers`` processes on ``sock``, announcing once they
    all serve (checked with its health checks, every half second), replacing one that
    dies."""
    from uvicorn.supervisors.multiprocess import Multiprocess, Process

    class Supervisor(Multiprocess):
        started = False

        def keep_subprocess_alive(self) -> None:
            """Replace each dead or hung worker. Before the first start a worker that could
            not build its app ends the run; afterwards it is replaced like any other (a
            database may be restarting)."""
            for index, process in enumerate(self.processes):
                if self.should_exit.is_set():
                    return
                if process.is_alive(timeout=self.config.timeout_worker_healthcheck):
                    continue
                process.kill()
                process.join()
                if process.exitcode == STARTUP_FAILURE and not self.started:
                    self.should_exit.set()
                    return
                log.warning(
                    "worker %s exited (%s): starting another", process.pid, process.exitcode
                )
                replacement = Process(self.config, self.sockets)
                replacement.start()
                self.processes[index] = replacement
            if not self.started and all(p.is_ready(timeout=1) for p in self.processes):
                self.started = True  # however long building the apps took (a loaded machine)
                announce(int(sock.getsockname()[1]))

    return Supervisor(config, [sock])


def listening_line(command: str, issuer: str, host: str, port: int) -> str:
    """``aauth-agents: COMMAND ISSUER listening on http://HOST:PORT``."""
    shown = f"[{host}]" if ":" in host else host
    return f"aauth-agents: {command} {issuer} listening on http://{shown}:{port}"


def announcer(
    out: IO[str], command: str, issuer: str, host: str, lines: Sequence[str], workers: int
) -> Callable[[int], None]:
    """What the parent prints once the workers serve: the URL, ``lines``, the workers."""

    def announce(port: int) -> None:
        print(listening_line(command, issuer, host, port), file=out, flush=True)
        for line in lines:
            print(f"  {line}", file=out, flush=True)
        print(f"  workers   {workers} processes", file=out, flush=True)

    return announce


__all__ = [
    "GRACEFUL_SHUTDOWN",
    "SERVER_OPTIONS",
    "AppFactory",
    "Built",
    "announcer",
    "closing",
    "listening_line",
    "serve_workers",
]
