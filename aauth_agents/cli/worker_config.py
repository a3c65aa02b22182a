"""The uvicorn configuration of ``serve ... --workers N``, imported only then (it imports
uvicorn): :func:`~aauth_agents.servers.edge.uvicorn_config`'s edge limits for worker
processes."""

from __future__ import annotations

from typing import Any

import uvicorn

from ..servers.edge import edge_protocol, fitted
from ..servers.limits import EdgeGuard, ServerLimits


class WorkerConfig(uvicorn.Config):
    """The edge limits of :func:`~aauth_agents.servers.edge.uvicorn_config` (the app behind
    :class:`~aauth_agents.servers.limits.EdgeGuard`, the limits' protocol, header size,
    keep-alive, backlog) for ``factory``'s app, built in each worker. The parent pickles
    this configuration into every worker, so what does not pickle -- the limits' protocol
    class, made at run time -- is made in the worker, when uvicorn loads the app; each
    worker counts its own connections and requests in flight."""

    def __init__(self, factory: Any, *, limits: ServerLimits | None, **options: Any) -> None:
        self.limits = fitted(limits if limits is not None else ServerLimits())
        super().__init__(
            factory,
            factory=True,
            h11_max_incomplete_event_size=self.limits.max_header_bytes,
            timeout_keep_alive=self.limits.keep_alive_timeout,
            backlog=self.limits.backlog,
            **options,
        )

    def load(self) -> None:
        self.http = edge_protocol(self.limits)
        super().load()
        self.loaded_app = EdgeGuard(self.loaded_app, self.limits)


__all__ = ["WorkerConfig"]
