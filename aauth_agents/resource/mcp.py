"""Publishing an MCP server's tools in resource metadata -- EXPLORATORY.

R3 (draft-hardt-aauth-r3, an exploratory draft) names MCP as a vocabulary
(``urn:aauth:vocabulary:mcp``) advertised in ``r3_vocabularies`` and lets each tool carry an
access-mode annotation in its ``_meta`` (``aauth.dev/access-mode``). This module declares each
tool once, as an :class:`McpTool`, and derives from it:

* the metadata members: ``r3_vocabularies`` (R3) and ``mcp_tools`` -- this library's own,
  exploratory listing of each tool's access mode and scopes, so an agent can plan before it
  connects (not part of any specification; names may change);
* the ``_meta`` annotation to put on the tool in ``tools/list`` (:meth:`McpTool.meta`);
* the enforcement rule per tool (:func:`mcp_policy`), via
  :func:`~aauth_agents.resource.mcp_tool_rules`.

Only metadata and policy live here; wiring a FastMCP server is the MCP integration's job.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..protocol.errors import ConfigurationError
from ..protocol.identifiers import validate_https_url
from ..protocol.r3 import MCP_VOCABULARY
from .policy import AccessRule, BodyRule, mcp_tool_rules

ACCESS_MODE_META = "aauth.dev/access-mode"


@dataclass(frozen=True)
class McpTool:
    """A tool and the rule protecting it."""

    name: str
    rule: AccessRule

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ConfigurationError("an MCP tool needs a name")
        if self.rule.level == "session":
            raise ConfigurationError("session-token MUST NOT appear in an annotation (R3)")

    def meta(self) -> dict[str, Any]:
        """The tool's ``_meta`` annotation (R3 §Vocabulary Encodings)."""
        mode = self.rule.access_mode
        return {ACCESS_MODE_META: mode} if mode else {}

    def describe(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"tool": self.name}
        if self.rule.access_mode:
            entry["access_mode"] = self.rule.access_mode
        if self.rule.scopes:
            entry["scopes"] = list(self.rule.scopes)
        return entry


def mcp_metadata(mcp_url: str, tools: Iterable[McpTool]) -> dict[str, Any]:
    """Members to merge into resource metadata (``ResourceConfig.extra_metadata``)."""
    try:
        validate_https_url(mcp_url)
    except ValueError as exc:
        raise ConfigurationError(f"mcp_url: {exc}") from exc
    return {
        "r3_vocabularies": {MCP_VOCABULARY: mcp_url},
        "mcp_tools": [tool.describe() for tool in tools],
    }


def mcp_policy(tools: Iterable[McpTool], *, default: AccessRule) -> BodyRule:
    """The rule for the MCP endpoint: each ``tools/call`` requires its tool's rule, read from
    the body once the signature verified."""
    return mcp_tool_rules({tool.name: tool.rule for tool in tools}, default=default)


__all__ = ["ACCESS_MODE_META", "MCP_VOCABULARY", "McpTool", "mcp_metadata", "mcp_policy"]
