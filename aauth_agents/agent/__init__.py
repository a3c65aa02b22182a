"""The agent side of AAuth: identity, the challenge-handling client, governance calls."""

from __future__ import annotations

from .identity import AgentIdentity, TokenSource

__all__ = ["AgentIdentity", "TokenSource"]
