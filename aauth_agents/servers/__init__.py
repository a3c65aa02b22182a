"""ASGI servers: the person server, agent provider and demo resources, and a loopback runner."""

from __future__ import annotations

from .loopback import LoopbackServer
from .proxies import ForwardedHeaders, TrustedProxies, client_address

__all__ = ["ForwardedHeaders", "LoopbackServer", "TrustedProxies", "client_address"]
