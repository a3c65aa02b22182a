"""ASGI servers: the person server, agent provider and demo resources, a loopback runner, and
the limits every server we run holds at its edge."""

from __future__ import annotations

from .edge import uvicorn_config
from .limits import ServerLimits
from .loopback import LoopbackServer
from .proxies import ForwardedHeaders, TrustedProxies, client_address

__all__ = [
    "ForwardedHeaders",
    "LoopbackServer",
    "ServerLimits",
    "TrustedProxies",
    "client_address",
    "uvicorn_config",
]
