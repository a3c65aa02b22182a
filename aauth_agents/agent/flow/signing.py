"""Building and signing the agent's requests (§HTTP Message Signatures Profile): to the PS
(agent token, body covered, no AAuth-Capabilities) and to a resource (the credential held
for it, the AAuth-Access session token, AAuth-Capabilities, the resource's
``additional_signature_components``); and keeping the session tokens resources send."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any, TypeAlias

import httpx

from ...httpsig.request import Target
from ...protocol.headers import format_authorization, parse_aauth_access
from ...protocol.wire import WireFormatError
from ..events import FlowEvent, RequestSent, SessionUpdated
from ..polling import format_prefer_wait
from ..state import HeldToken, ResourceInfo
from .base import FlowBase
from .config import CallContext

log = logging.getLogger("aauth_agents.agent")

#: A request's target URI, split (:func:`~aauth_agents.agent.signer.split_url`), and the
#: time it is signed at.
Addressed: TypeAlias = tuple[Target, float]


class RequestSigning(FlowBase):
    """The layer that builds and signs requests (see the module docstring)."""

    def _new_request(
        self,
        call: CallContext,
        method: str,
        url: str,
        body: Mapping[str, Any] | None,
        *,
        prefer: bool,
    ) -> httpx.Request:
        headers: dict[str, str] = {}
        content: bytes | None = None
        if body is not None:
            content = json.dumps(body, separators=(",", ":")).encode()
            headers["Content-Type"] = "application/json"
        wait = self.config.prefer_wait if prefer else None
        if wait is not None and call.wait_cap is not None:
            wait = min(wait, call.wait_cap)
        if wait is not None:
            headers["Prefer"] = format_prefer_wait(wait)
            extensions = call.long_poll(wait)
        else:
            extensions = dict(call.extensions)
        request: httpx.Request = self.http.Request(
            method, url, headers=headers, content=content, extensions=extensions
        )
        return request

    def _sign(
        self,
        request: httpx.Request,
        credential: HeldToken,
        *,
        extra: tuple[str, ...] = (),
        cover_body: bool,
        at: Addressed | None = None,
    ) -> tuple[str, ...]:
        """Add the signature fields to ``request``; ``at`` is its target URI, split, and the
        time, when the caller has them already."""
        key = self._current_key()
        target, now = at if at is not None else (None, self.config.clock())
        added, covered = self.signer.sign_message(
            request.method,
            request.url,
            self.signer.coverable_headers(request.headers, extra),
            request.content or None,
            key=key,
            signature_key=credential.signature_key,
            now=now,
            key_id=self.state.key_thumbprint or "",
            extra_components=extra,
            cover_body=cover_body,
            target=target,
        )
        headers = request.headers
        for name, value in added.items():  # (Headers.update re-parses; this does not)
            headers[name] = value
        return covered

    def _sent(
        self,
        request: httpx.Request,
        credential: HeldToken,
        covered: tuple[str, ...],
        session: bool = False,
    ) -> FlowEvent | None:
        if not self.config.events:
            return None
        return RequestSent(request.method, str(request.url), credential.kind, covered, session)

    def _ps_request(
        self,
        call: CallContext,
        method: str,
        url: str,
        body: Mapping[str, Any] | None,
        *,
        prefer: bool = True,
    ) -> tuple[httpx.Request, FlowEvent | None]:
        """A request to the PS: agent token, body always covered (§Covered Components), no
        AAuth-Capabilities (§AAuth-Capabilities: not used on PS endpoints)."""
        request = self._new_request(call, method, url, body, prefer=prefer)
        credential = self.agent_credential()
        covered = self._sign(request, credential, cover_body=True)
        return request, self._sent(request, credential, covered)

    def _sign_for_resource(
        self,
        request: httpx.Request,
        info: ResourceInfo,
        credential: HeldToken,
        *,
        cover_body: bool = False,
        at: Addressed | None = None,
    ) -> FlowEvent | None:
        """Session token, capabilities, then the signature with the resource's
        ``additional_signature_components`` (``at``: see :meth:`_sign`)."""
        headers = request.headers
        session = self.state.session(info.resource)
        if session is not None:
            headers["Authorization"] = format_authorization(session)
        if self.config.capabilities_header is not None:
            headers["AAuth-Capabilities"] = self.config.capabilities_header
        covered = self._sign(
            request, credential, extra=info.extra_components, cover_body=cover_body, at=at
        )
        if not self.config.events:
            return None
        return self._sent(request, credential, covered, session is not None)

    def _observe_resource(self, resource: str, response: httpx.Response) -> list[FlowEvent]:
        """§AAuth-Access: keep the newest session token a resource sends."""
        lines = response.headers.get_list("aauth-access")
        if not lines:
            return []
        try:
            token = parse_aauth_access(lines)
        except WireFormatError as exc:
            log.warning("ignoring a malformed AAuth-Access from %s: %s", resource, exc.detail)
            return []
        replaced = self.state.set_session(resource, token)
        return [SessionUpdated(resource, replaced)] if self.config.events else []


__all__ = ["RequestSigning"]
