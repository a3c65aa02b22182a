"""Metadata and keys, fetched through the agent's own client and cached in its
:class:`~aauth_agents.agent.state.AgentState`: §Resource Metadata, §Person Server Metadata,
and the JWKS of the two issuers whose tokens the agent checks (its PS and the resource it
talks to; §JWKS Discovery and Caching)."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import TypeVar

import httpx

from ...protocol.encoding import loads_json_object
from ...protocol.errors import ConfigurationError, DiscoveryError, TokenError
from ...protocol.identifiers import is_server_identifier
from ...protocol.metadata import (
    PersonServerMetadata,
    ResourceMetadata,
    parse_metadata,
    well_known_url,
)
from ...tokens import StaticIssuerKeys
from ...tokens.issuer_keys import IssuerKeys
from ..effects import Flow, Read, Send
from ..events import MetadataFetched
from ..state import ResourceInfo
from .config import JWKS_REFRESH_FLOOR, MAX_METADATA_TTL, CallContext
from .signing import RequestSigning

log = logging.getLogger("aauth_agents.agent")

T = TypeVar("T")

_MAX_AGE = re.compile(r"(?:^|[,\s])max-age\s*=\s*\"?([0-9]{1,9})")


def _max_age(response: httpx.Response, default: float) -> float:
    match = _MAX_AGE.search(response.headers.get("cache-control", ""))
    return min(float(match.group(1)), MAX_METADATA_TTL) if match else default


class MetadataDiscovery(RequestSigning):
    """The layer that fetches and caches metadata documents and JWKS."""

    def _get(self, call: CallContext, url: str) -> Flow[httpx.Response]:
        request: httpx.Request = self.http.Request(
            "GET", url, headers={"Accept": "application/json"}, extensions=dict(call.extensions)
        )
        response: httpx.Response = yield Send(request)
        yield Read(response)
        return response

    def resource_info(self, call: CallContext, resource: str) -> Flow[ResourceInfo]:
        """§Resource Metadata, fetched through the same client and cached."""
        now = self.config.clock()
        info = self.state.resource_info(resource, now)
        if info is not None:
            return info
        metadata: ResourceMetadata | None = None
        ttl = min(300.0, self.config.metadata_ttl)
        if is_server_identifier(resource):
            url = well_known_url(resource, ResourceMetadata.DWK)
            response = yield from self._get(call, url)
            if response.status_code == 200:
                try:
                    metadata = ResourceMetadata.from_json(
                        response.content, expected_issuer=resource
                    )
                    ttl = _max_age(response, self.config.metadata_ttl)
                except (DiscoveryError, ValueError) as exc:
                    log.warning("unusable resource metadata at %s: %s", url, exc)
            yield from self._emit(MetadataFetched(url, metadata is not None))
        info = ResourceInfo(resource, metadata)
        self.state.put_resource_info(info, now + ttl)
        return info

    def person_server(self, call: CallContext) -> Flow[PersonServerMetadata]:
        """§Person Server Metadata of the agent's PS (the agent token's ``ps``; a sub-agent's
        is its parent's, cached there)."""
        if self.parent is not None:
            parents: PersonServerMetadata = yield from self._by_parent(
                self.parent.person_server(call)
            )
            return parents
        ps = self.identity.ps
        if ps is None:
            raise ConfigurationError("the agent token names no person server (no ps claim)")
        now = self.config.clock()
        metadata = self.state.person_server(ps, now)
        if metadata is not None:
            return metadata
        url = well_known_url(ps, PersonServerMetadata.DWK)
        response = yield from self._get(call, url)
        if response.status_code != 200:
            yield from self._emit(MetadataFetched(url, False))
            raise DiscoveryError(f"person server metadata {url}: HTTP {response.status_code}")
        metadata = PersonServerMetadata.from_json(response.content, expected_issuer=ps)
        yield from self._emit(MetadataFetched(url, True))
        self.state.put_person_server(metadata, now + _max_age(response, self.config.metadata_ttl))
        return metadata

    def _issuer_keys(
        self,
        call: CallContext,
        issuer: str,
        dwk: str,
        jwks_uri: str | None,
        *,
        refresh: bool = False,
    ) -> Flow[StaticIssuerKeys | None]:
        """The JWKS of ``issuer`` (only our PS and the resource we talk to), fetched through
        the client and cached; ``None`` when it cannot be had (signatures are then checked
        on the claims only -- the agent-side check is a SHOULD)."""
        now = self.config.clock()
        cached = self.state.issuer_keys(issuer, dwk, now)
        if cached is not None:
            keys, fetched_at = cached
            if not refresh:
                return keys
            if now - fetched_at < JWKS_REFRESH_FLOOR:
                return None
        if jwks_uri is None:
            jwks_uri = yield from self._jwks_uri(call, issuer, dwk)
            if jwks_uri is None:
                return None
        response = yield from self._get(call, jwks_uri)
        try:
            document = loads_json_object(response.content) if response.status_code == 200 else None
        except ValueError:
            document = None
        if document is None or not isinstance(document.get("keys"), list):
            log.warning("no usable JWKS at %s", jwks_uri)
            return None
        keys = StaticIssuerKeys().add_jwks(issuer, dwk, document)
        self.state.put_issuer_keys(
            issuer, dwk, keys, now, now + _max_age(response, self.config.metadata_ttl)
        )
        return keys

    def _jwks_uri(self, call: CallContext, issuer: str, dwk: str) -> Flow[str | None]:
        """The ``jwks_uri`` of ``issuer``'s metadata document ``dwk`` (``None``: none usable)."""
        url = well_known_url(issuer, dwk)
        response = yield from self._get(call, url)
        if response.status_code != 200:
            return None
        try:
            return parse_metadata(dwk, response.content, expected_issuer=issuer).jwks_uri
        except (DiscoveryError, ValueError) as exc:
            log.warning("cannot use %s to verify tokens: %s", url, exc)
            return None

    def _with_keys(
        self,
        call: CallContext,
        issuer: str,
        dwk: str,
        jwks_uri: str | None,
        check: Callable[[IssuerKeys | None], T],
    ) -> Flow[T]:
        """``check(keys)`` with the issuer's JWKS, refreshed once on a failing key."""
        keys = yield from self._issuer_keys(call, issuer, dwk, jwks_uri)
        if keys is None:
            return check(None)
        try:
            return check(keys)
        except TokenError as exc:
            if exc.reason not in ("unknown_key", "signature", "alg"):
                raise
            fresh = yield from self._issuer_keys(call, issuer, dwk, jwks_uri, refresh=True)
            if fresh is None:
                raise
            return check(fresh)


__all__ = ["MetadataDiscovery"]
