"""ASGI servers: the person server, agent provider and demo resources, and a loopback runner."""

from __future__ import annotations

from .loopback import LoopbackServer

__all__ = ["LoopbackServer"]
