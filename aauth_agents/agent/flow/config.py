"""The agent flow's settings (:class:`AgentConfig`), one call's settings
(:class:`CallContext`), and the limits every layer of the flow observes."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from ...clock import Clock, system_clock
from ...protocol.headers import serialize_capabilities
from ..callbacks import ClarificationRequest, InteractionRequest
from ..pending import PendingRequests

#: Challenges answered for one request before the response is handed back as is.
MAX_CHALLENGE_ROUNDS = 6
#: §Clarification Limits: rounds answered before the agent withdraws the request.
MAX_CLARIFICATION_ROUNDS = 10
#: ``Prefer: wait`` while a prompt can cancel the request (:class:`PendingControl`): a
#: cancel then takes effect within this many seconds -- for the first
#: :data:`CONTROLLED_POLLS` polls, when a person who changes their mind usually does.
CONTROLLED_WAIT = 5
#: Polls kept short for a prompt's cancel; later ones are long (``prefer_wait``) again:
#: httpx counts every poll against the client's ``max_redirects`` (20 by default), and a
#: person who takes minutes must not use them up.
CONTROLLED_POLLS = 3
#: A long poll's read timeout is at least its ``Prefer: wait`` plus this margin.
POLL_READ_MARGIN = 10.0
#: §JWKS Discovery and Caching: an issuer's JWKS is refetched at most once a minute.
JWKS_REFRESH_FLOOR = 60.0
MAX_METADATA_TTL = 24 * 3600.0
_CONSENT_PARAMS = (
    "justification",
    "login_hint",
    "tenant",
    "domain_hint",
    "prompt",
    "platform",
    "device",
)


@dataclass
class AgentConfig:
    """The settings of an :class:`~aauth_agents.agent.AAuth` (see its docstring)."""

    capabilities: tuple[str, ...] = ("interaction", "clarification")
    justification: str | None = None
    login_hint: str | None = None
    tenant: str | None = None
    domain_hint: str | None = None
    prompt: str | None = None
    platform: str | None = None
    device: str | None = None
    mission_s256: str | None = None
    on_interaction: Callable[[InteractionRequest], Any] | None = None
    #: An interaction URL as the person's browser reaches it (a local network's
    #: ``browser_url``); ``None``: as the server sent it.
    browser_url: Callable[[str], str] | None = None
    on_clarification: Callable[[ClarificationRequest], Any] | None = None
    #: Emit every step's event (an ``on_event`` hook or a prompt surface wants them).
    events: bool = False
    #: Emit a pending request's own events (polling, its end) even without ``events``: the
    #: default prompt's live status needs only those, and the warm path then emits nothing.
    pending_events: bool = False
    max_poll_seconds: float = 600.0
    prefer_wait: int | None = 30
    clock: Clock = system_clock
    refresh_margin: float = 60.0
    verify_token_signatures: bool = True
    metadata_ttl: float = 3600.0
    anticipate: bool = True
    pending: PendingRequests | None = None
    capabilities_header: str | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.set_capabilities(self.capabilities)

    def set_capabilities(self, capabilities: tuple[str, ...]) -> None:
        self.capabilities = tuple(dict.fromkeys(capabilities))
        self.capabilities_header = (
            serialize_capabilities(self.capabilities) if self.capabilities else None
        )

    def consent_params(self) -> dict[str, Any]:
        """§Agent Token Request's optional members, those that are set."""
        params: dict[str, Any] = {
            name: getattr(self, name) for name in _CONSENT_PARAMS if getattr(self, name)
        }
        if self.capabilities:
            params["capabilities"] = list(self.capabilities)
        return params


def resource_identifier(url: httpx.URL) -> str:
    """The origin of ``url`` as a server identifier would spell it (``https://host``, with
    ``:port`` only when not the default)."""
    return f"{url.scheme}://{url.netloc.decode('ascii')}"


class CallContext:
    """Per-call settings: the httpx extensions (timeouts) every request of one call
    inherits, the resource it is for (``None``: a governance call), the
    :class:`~aauth_agents.agent.pending.PendingRequests` it records its pending URLs in,
    the cap on ``Prefer: wait`` while a prompt can cancel, and the interaction ``(url,
    code)`` of the last wait (for the error that ends it)."""

    __slots__ = ("extensions", "interaction", "pending", "resource", "wait_cap")

    def __init__(
        self,
        extensions: Mapping[str, Any] | None,
        *,
        resource: str | None = None,
        pending: PendingRequests | None = None,
    ) -> None:
        timeout = (extensions or {}).get("timeout")
        self.extensions: dict[str, Any] = {"timeout": timeout} if timeout is not None else {}
        self.resource = resource
        self.pending = pending
        self.wait_cap: int | None = None
        self.interaction: tuple[str, str] | None = None

    def long_poll(self, wait: int) -> dict[str, Any]:
        """The extensions for a request sent with ``Prefer: wait=wait``: a read timeout of
        at least ``wait`` + :data:`POLL_READ_MARGIN` (the agent asked the server to hold
        the response that long)."""
        timeout = self.extensions.get("timeout")
        if not isinstance(timeout, Mapping):
            return dict(self.extensions)
        read = timeout.get("read")
        if read is None or read >= wait + POLL_READ_MARGIN:
            return dict(self.extensions)
        return {**self.extensions, "timeout": {**timeout, "read": wait + POLL_READ_MARGIN}}


__all__ = [
    "CONTROLLED_POLLS",
    "CONTROLLED_WAIT",
    "JWKS_REFRESH_FLOOR",
    "MAX_CHALLENGE_ROUNDS",
    "MAX_CLARIFICATION_ROUNDS",
    "MAX_METADATA_TTL",
    "POLL_READ_MARGIN",
    "AgentConfig",
    "CallContext",
    "resource_identifier",
]
