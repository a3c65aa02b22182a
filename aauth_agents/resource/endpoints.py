"""The endpoints a resource publishes, and their routing: metadata and JWKS (§Resource
Metadata), the authorization endpoint (§Authorization Endpoint Request), the revocation
endpoint (§Token Revocation), per-call proposals at ``r3_uri`` (R3 §R3 Document Access
Restriction); pending URLs and the interaction page are routed to :mod:`.pending` and
:mod:`.interaction`.

:class:`ResourceEndpoints` belongs to one :class:`~aauth_agents.resource.AAuthResource` and
uses its shared steps (challenges, resource tokens, replay, revocation).
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any

from ..httpsig import SCHEME_JWKS_URI, HttpRequest, KeyResolution, SignatureKey, SignatureVerifier
from ..protocol.errors import (
    AAuthError,
    ConfigurationError,
    DiscoveryError,
    InvalidSignatureError,
    ProtocolError,
    SignatureError,
)
from ..protocol.identifiers import is_server_identifier
from ..protocol.metadata import ResourceMetadata
from ..protocol.reply import JSON, Reply
from ..protocol.reply import NO_STORE as _NO_STORE
from ..protocol.requirement import Requirement
from ..protocol.scopes import is_identity_scope
from ..protocol.wire import WireFormatError
from ..tokens import DWK_ACCESS, DWK_AGENT, DWK_PERSON
from . import events as ev
from .config import INTERACTION, TrustedIssuerKeys, maybe_await
from .outcomes import Execute
from .pending_kinds import pending_kind
from .requests import parse_authorization_request, parse_revocation_request
from .verifier import is_signed

if TYPE_CHECKING:
    from .server import AAuthResource


class ResourceEndpoints:
    """What ``resource`` publishes: :meth:`is_endpoint` says whether a path is one of them,
    :meth:`serve` answers it."""

    def __init__(self, resource: AAuthResource) -> None:
        self.resource = resource
        config = self.config = resource.config
        self.stores = resource.stores
        self.clock = resource.clock
        self.events = resource.events
        p = self.paths = config.paths
        #: The exact paths and the prefixes of the published endpoints, for one cheap test
        #: per request (:meth:`is_endpoint`).
        self._exact = frozenset((p.metadata, p.jwks, p.authorization, p.revocation))
        self._prefixes = tuple(prefix + "/" for prefix in (p.pending, p.interaction, p.r3))
        self._metadata = self._build_metadata()
        self._jwks = {
            "keys": [
                config.signing_key.public_key.to_jwk(),
                *(k.to_jwk() for k in config.previous_keys),
            ]
        }
        self._server_verifier = SignatureVerifier(
            window=config.signature_window,
            clock=config.clock,
            accepted_schemes=(SCHEME_JWKS_URI,),
            require_body_digest=True,
            require_query=config.require_query,
        )
        self._server_keys = TrustedIssuerKeys(
            config.issuer_keys, config.trust, own_as=config.access_server
        )

    # -- routing -----------------------------------------------------------------------------

    def is_endpoint(self, method: str, path: str) -> bool:
        if path not in self._exact and not path.startswith(self._prefixes):
            return False  # the common case: an application route
        p = self.paths
        if path in (p.metadata, p.jwks):
            return True
        if path == p.authorization:
            return self.config.publish_authorization_endpoint
        if path == p.revocation:
            return self.config.publish_revocation_endpoint
        return any(
            path.startswith(prefix + "/")
            and "/" not in path[len(prefix) + 1 :]
            and len(path) > len(prefix) + 1
            for prefix in (p.pending, p.interaction, p.r3)
        )

    async def serve(
        self, request: HttpRequest, path: str, starlette_request: Any = None
    ) -> Reply | Execute:
        """Serve one of the resource's own endpoints (``is_endpoint(method, path)``)."""
        p = self.paths
        method = request.method.upper()
        cache = ("Cache-Control", "public, max-age=300")
        if path in (p.metadata, p.jwks):
            if method not in ("GET", "HEAD"):
                return Reply.problem(405, "invalid_request", "use GET", [("Allow", "GET")])
            return Reply.json(200, self.metadata() if path == p.metadata else self.jwks(), [cache])
        if path == p.authorization:
            return await self.authorization(request)
        if path == p.revocation:
            return await self.revocation(request)
        if path.startswith(p.pending + "/"):
            return await self.resource.pending.poll(request, path[len(p.pending) + 1 :])
        if path.startswith(p.r3 + "/"):
            return await self.r3_document(request, path[len(p.r3) + 1 :])
        return await self.resource.interaction.serve(
            request, path[len(p.interaction) + 1 :], starlette_request
        )

    # -- metadata and JWKS -------------------------------------------------------------------

    def _build_metadata(self) -> dict[str, Any]:
        c = self.config
        members: dict[str, Any] = {
            "issuer": c.identifier,
            "jwks_uri": c.url(self.paths.jwks),
            "access_mode": c.access_mode,
            "name": c.name,
            "description": c.description,
            "logo_uri": c.logo_uri,
            "documentation_uri": c.documentation_uri,
            "tos_uri": c.tos_uri,
            "policy_uri": c.policy_uri,
            "scope_descriptions": dict(c.scope_descriptions) or None,
            "signature_window": c.signature_window,
            "additional_signature_components": list(c.additional_signature_components) or None,
            "authorization_endpoint": c.url(self.paths.authorization)
            if c.publish_authorization_endpoint
            else None,
            "revocation_endpoint": c.url(self.paths.revocation)
            if c.publish_revocation_endpoint
            else None,
        }
        clash = set(c.extra_metadata) & {k for k, v in members.items() if v is not None}
        if clash:
            raise ConfigurationError(f"extra_metadata may not override {sorted(clash)}")
        return ResourceMetadata.build(**members, **c.extra_metadata).to_json()

    def metadata(self) -> dict[str, Any]:
        """``/.well-known/aauth-resource.json`` (§Resource Metadata)."""
        return dict(self._metadata)

    def jwks(self) -> dict[str, Any]:
        """The JWKS at ``jwks_uri``: the signing key and ``previous_keys``."""
        return {"keys": [dict(k) for k in self._jwks["keys"]]}

    # -- the authorization endpoint (§Authorization Endpoint Request) ------------------------

    async def authorization(self, request: HttpRequest) -> Reply:
        resource = self.resource
        if request.method.upper() != "POST":
            return Reply.problem(405, "invalid_request", "use POST", [("Allow", "POST")])
        if not is_signed(request):
            return resource._challenge(Requirement.person_token(), None, "unsigned")
        try:
            caller = await resource.verifier.averify(request)
        except AAuthError as exc:
            return Reply.error(exc)
        if not caller.presents_person_token:
            # §Authorization Endpoint Request: the agent MUST present a person token.
            return resource._challenge(Requirement.person_token(), caller, "person_token_required")
        try:
            wanted = parse_authorization_request(request.body)
        except WireFormatError as exc:
            self.events.emit(ev.DENIED, exc.code, endpoint="authorization", caller=caller.label)
            return Reply.error(exc)
        unknown = [
            s
            for s in wanted.scopes
            if s not in self.config.scope_descriptions and not is_identity_scope(s)
        ]
        if unknown:
            self.events.emit(ev.DENIED, "invalid_scope", caller=caller.label, scopes=unknown)
            return Reply.error(
                ProtocolError("a requested scope is not offered here", code="invalid_scope")
            )
        validator = self.config.account_validator
        if wanted.account is not None and (
            validator is None or not await maybe_await(validator(caller, wanted.account))
        ):
            self.events.emit(ev.DENIED, "invalid_account", caller=caller.label)
            return Reply.error(
                ProtocolError("the account is not held by this person", code="invalid_account")
            )
        replayed = await resource._replayed(request, caller)
        if replayed is not None:
            return replayed
        await resource._remember_person(caller)
        if self.config.authorization_mode == INTERACTION:
            return await resource.pending.pend_interaction(
                caller, wanted.scopes, None, extra={"account": wanted.account}
            )
        token = resource.mint_resource_token(
            caller.thumbprint, resource._person_record(caller), wanted.scopes, wanted.account
        )
        return Reply.json(200, {"resource_token": token}, [_NO_STORE])

    # -- the revocation endpoint (§Token Revocation) ------------------------------------------

    async def _server_key(self, key: SignatureKey) -> KeyResolution:
        """``scheme=jwks_uri``: the caller is the server ``id`` (a PS, an AS, an agent
        provider), its key found through ``{id}/.well-known/{dwk}``."""
        server, dwk, kid = key.params.get("id"), key.params.get("dwk"), key.params.get("kid")
        if (
            not is_server_identifier(server)
            or dwk not in (DWK_PERSON, DWK_ACCESS, DWK_AGENT)
            or not isinstance(kid, str)
            or not kid
        ):
            raise DiscoveryError("jwks_uri must name a server identifier, an AAuth dwk and a kid")
        public = await self._server_keys.aget_key(str(server), str(dwk), kid)
        return KeyResolution(jwk=public.to_jwk(), context=str(server))

    async def revocation(self, request: HttpRequest) -> Reply:
        if request.method.upper() != "POST":
            return Reply.problem(405, "invalid_request", "use POST", [("Allow", "POST")])
        try:
            verified = await self._server_verifier.averify(request, self._server_key)
        except SignatureError as exc:
            self.events.emit(ev.DENIED, exc.code, endpoint="revocation")
            return Reply.error(exc)
        caller = str(verified.context)
        try:
            wanted = parse_revocation_request(request.body)
        except WireFormatError as exc:
            self.events.emit(ev.DENIED, exc.code, endpoint="revocation", caller=caller)
            return Reply.error(exc)
        if caller != wanted.iss and caller not in self.config.trusted_revokers:
            self.events.emit(
                ev.DENIED, "not_the_issuer", endpoint="revocation", caller=caller, iss=wanted.iss
            )
            return Reply.problem(403, "access_denied", "only the token's issuer may revoke it")
        now = self.clock()
        if not await self.stores.revocations.ais_known(wanted.iss, wanted.jti, now=now):
            self.events.emit(
                ev.DENIED,
                "unknown_token",
                endpoint="revocation",
                caller=caller,
                iss=wanted.iss,
                jti=wanted.jti,
            )
            return Reply.problem(404, "not_found", "no such token is known here")
        if self.stores.replay is not None and not await self.stores.replay.acheck_and_store(
            verified.replay_key, verified.created + self.config.signature_window
        ):
            return Reply.error(InvalidSignatureError("the signature has been seen before"))
        await self.resource.revoke_token(wanted.iss, wanted.jti, reason="endpoint", by=caller)
        return Reply.json(200, {"revoked": True}, [_NO_STORE])

    # -- per-call proposals at r3_uri (R3 §R3 Document Access Restriction) ---------------------

    async def _r3_reader(self, key: SignatureKey) -> KeyResolution:
        """``scheme=jwks_uri`` of a PS (``aauth-person.json``) or an AS
        (``aauth-access.json``); the context is ``[server, dwk]``."""
        dwk = key.params.get("dwk")
        if dwk not in (DWK_PERSON, DWK_ACCESS):  # refused before any key is fetched
            raise DiscoveryError("an R3 document is read by a person server or access server")
        resolution = await self._server_key(key)
        return KeyResolution(jwk=resolution.jwk, context=[resolution.context, str(dwk)])

    async def r3_document(self, request: HttpRequest, record_id: str) -> Reply:
        """GET ``r3_uri``: the proposal's bytes as serialized (R3 §Content Addressing), to
        the PS named in the resource token's ``ps`` or the AS in its ``aud``, each signing
        as itself (``Signature-Key: sig=jwks_uri``); any other signer -- an agent above all
        -- is refused (R3 §R3 Document Access Restriction)."""
        if request.method.upper() not in ("GET", "HEAD"):
            return Reply.problem(405, "invalid_request", "use GET", [("Allow", "GET")])
        try:
            verified = await self._server_verifier.averify(request, self._r3_reader)
        except SignatureError as exc:
            self.events.emit(ev.DENIED, exc.code, endpoint="r3")
            return Reply.error(exc)
        reader = list(verified.context)
        record = await self.stores.pending.aget(record_id)
        if (
            record is None
            or not pending_kind(record.kind).holds_proposal
            or not isinstance(record.data.get("proposal"), str)
        ):
            return Reply.problem(404, "not_found", "no such R3 document")
        if reader not in record.data.get("readers", []):
            self.events.emit(
                ev.DENIED, "r3_not_entitled", endpoint="r3", caller=reader[0], pending=record.id
            )
            return Reply.problem(
                403, "access_denied", "only the PS or AS the resource token names may read this"
            )
        self.events.emit(ev.VERIFIED, "r3_document", caller=reader[0], pending=record.id)
        return Reply(
            200, (("Content-Type", JSON), _NO_STORE), base64.b64decode(record.data["proposal"])
        )


__all__ = ["ResourceEndpoints"]
