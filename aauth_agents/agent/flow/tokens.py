"""Person tokens (§Person Token Endpoint) and auth tokens (§Resource Challenge
Verification, the exchange at the ``auth_token_endpoint``, §Auth Token Response
Verification): cached per resource and mission, each obtained once for every concurrent
caller. A sub-agent's token requests are its parent's (§Parent-Mediated Authorization)."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import httpx

from ...httpsig import SignatureKey
from ...protocol.errors import AAuthError, TokenError
from ...protocol.metadata import PersonServerMetadata
from ...protocol.requirement import Requirement
from ...tokens import (
    DWK_PERSON,
    DWK_RESOURCE,
    TYP_PERSON,
    AuthToken,
    ResourceToken,
    check_auth_token_response,
    check_resource_challenge,
    peek,
)
from ...tokens.issuer_keys import IssuerKeys
from ..effects import Flow
from ..errors import (
    AuthTokenVerificationError,
    ChallengeVerificationError,
    NoPersonServerError,
    PersonTokenError,
)
from ..events import TokenObtained
from ..state import HeldToken
from .config import CallContext
from .deferred import DeferredResponses


class TokenRequests(DeferredResponses):
    """The layer that obtains, checks and caches person and auth tokens."""

    # -- person tokens ---------------------------------------------------------------------------

    def person_token(
        self, call: CallContext, resource: str, *, refresh: bool = False
    ) -> Flow[HeldToken]:
        """A person token for ``resource`` under the current mission: cached, or obtained
        once for all concurrent callers."""
        mission = self.config.mission_s256
        if not refresh:
            held = self.state.person_token(
                resource, mission, self.config.clock(), self.config.refresh_margin
            )
            if held is not None:
                return held
        if self.identity.ps is None:
            raise NoPersonServerError(Requirement.person_token())
        key = ("person", resource, mission, self.state.key_thumbprint)
        try:
            token: HeldToken = yield from self.shared(
                key, lambda: self._fetch_person_token(call, resource, mission)
            )
        except AAuthError as exc:
            # Not asked for again by itself: the next request starts with the agent token
            # and gets a person token only if the resource asks (the person may have said no).
            self.state.forget_wants(resource)
            exc.about(resource)
            raise
        return token

    def _fetch_person_token(
        self, call: CallContext, resource: str, mission: str | None
    ) -> Flow[HeldToken]:
        """§Person Token Endpoint."""
        ps = yield from self.person_server(call)
        body: dict[str, Any] = {"resource": resource}
        if mission is not None:
            body["mission_s256"] = mission
        response = yield from self._token_request(call, ps.person_token_endpoint, body)
        raw = self._json(response).get("person_token")
        held = self._accept_person_token(raw, resource, mission)
        self.state.put_person_token(resource, mission, held)
        yield from self._emit(TokenObtained("person", resource, self._shown(held.claims)))
        return held

    def _accept_person_token(self, raw: object, resource: str, mission: str | None) -> HeldToken:
        """The checks an agent can make on a person token it is handed: type, ``iss`` its
        PS, ``aud`` the resource, ``cnf`` its key, the mission it asked for."""
        try:
            header, claims = peek(raw, code="invalid_person_token")
        except TokenError as exc:
            raise PersonTokenError(
                f"the PS returned no readable person token: {exc.detail}"
            ) from exc
        assert isinstance(raw, str)
        cnf = claims.get("cnf")
        jwk = cnf.get("jwk") if isinstance(cnf, dict) else None
        problems = [
            what
            for what, ok in (
                ("typ", header.get("typ") == TYP_PERSON),
                ("iss", claims.get("iss") == self.identity.ps),
                ("aud", claims.get("aud") == resource),
                ("cnf", isinstance(jwk, dict) and self.public_key.same_key(jwk)),
                ("mission_s256", mission is None or claims.get("mission_s256") == mission),
                ("exp", isinstance(claims.get("exp"), (int, float))),
            )
            if not ok
        ]
        if problems:
            raise PersonTokenError(f"person token rejected: wrong {', '.join(problems)}")
        return HeldToken.from_raw("person", raw)

    def adopt_person_token(self, resource: str, raw: str, mission: str | None) -> HeldToken:
        """Cache a person token handed over out of band (a mission approval's
        ``person_tokens``) after the same checks."""
        held = self._accept_person_token(raw, resource, mission)
        self.state.put_person_token(resource, mission, held)
        return held

    # -- auth tokens -----------------------------------------------------------------------------

    def _auth_for_challenge(
        self,
        call: CallContext,
        resource: str,
        requirement: Requirement,
        presented: HeldToken,
        *,
        held: bool = False,
    ) -> Flow[HeldToken]:
        """§Auth Token Required: verify the challenge, then a cached auth token for its
        scope or one exchange shared by every concurrent caller.

        R3: a resource token naming an R3 document (``r3_uri``, ``r3_s256``) is answered
        only by a token drawn from that same document, and a token drawn from one answers
        nothing else. When it completes a held call (``held``, a 202) the token is single
        use: the agent cannot read the document to tell a per-call proposal from a class
        document (R3 §R3 Document Access Restriction), and a per-call grant is consumed by
        the call it approved (R3 §Per-Call Proposals), so it is neither cached nor presented
        again beyond that call's pending URL."""
        if self.identity.ps is None:
            raise NoPersonServerError(requirement)
        raw = requirement.resource_token
        assert raw is not None  # parse_requirement insists on it
        resource_token = yield from self._check_challenge(call, resource, raw, presented.person_sub)
        single_use = held and resource_token.r3_s256 is not None
        cached = self._cached_auth_token(resource, resource_token, single_use)
        if cached is not None and cached.raw != presented.raw:
            self.state.use_auth_token(resource, cached)
            yield from self._emit(
                TokenObtained("auth", resource, self._shown(cached.claims), cached=True)
            )
            return cached
        scopes = frozenset(resource_token.scopes)
        key: Hashable = (
            "auth",
            resource,
            scopes,
            resource_token.mission_s256,
            (resource_token.r3_uri, resource_token.r3_s256),
            self.state.key_thumbprint,
        )
        try:
            token: HeldToken = yield from self.shared(
                key, lambda: self._exchange(call, resource, resource_token, keep=not single_use)
            )
        except AAuthError as exc:
            exc.about(resource, sorted(scopes))
            raise
        return token

    def _cached_auth_token(
        self, resource: str, resource_token: ResourceToken, single_use: bool
    ) -> HeldToken | None:
        """A cached auth token that answers ``resource_token``: its scope, its mission, and
        drawn from the same R3 document (if any) -- never for a single-use answer."""
        cached = self.state.auth_token(
            resource,
            frozenset(resource_token.scopes),
            resource_token.mission_s256,
            self.config.clock(),
            self.config.refresh_margin,
        )
        # Two held calls alike have alike proposals (one r3_s256) at two r3_uri values.
        pinned = (resource_token.r3_uri, resource_token.r3_s256)
        if cached is None or single_use:
            return None
        drawn_from = (cached.claims.get("r3_uri"), cached.claims.get("r3_s256"))
        return cached if drawn_from == pinned else None

    def _check_challenge(
        self, call: CallContext, resource: str, raw: str, person_sub: str | None
    ) -> Flow[ResourceToken]:
        """§Resource Challenge Verification (claims, then the signature when the resource
        publishes its keys)."""
        ps = self.identity.ps
        assert ps is not None
        agent_key = self.public_key
        clock = self.config.clock

        def check(keys: IssuerKeys | None) -> ResourceToken:
            return check_resource_challenge(
                raw,
                resource=resource,
                agent_key=agent_key,
                ps=ps,
                person_sub=person_sub,
                keys=keys,
                clock=clock,
            )

        try:
            token = check(None)
            if self.config.verify_token_signatures:
                info = self.state.resource_info(resource, clock())
                jwks_uri = info.metadata.jwks_uri if info and info.metadata else None
                token = yield from self._with_keys(call, resource, DWK_RESOURCE, jwks_uri, check)
        except TokenError as exc:
            raise ChallengeVerificationError.from_token_error(exc) from exc
        return token

    def _exchange(
        self, call: CallContext, resource: str, resource_token: ResourceToken, *, keep: bool = True
    ) -> Flow[HeldToken]:
        """§Agent Token Request at the PS's ``auth_token_endpoint``, then §Auth Token
        Response Verification; the token is cached unless ``keep`` is false."""
        ps = yield from self.person_server(call)
        body: dict[str, Any] = {"resource_token": resource_token.raw}
        response = yield from self._token_request(call, ps.auth_token_endpoint, body)
        raw = self._json(response).get("auth_token")
        if not isinstance(raw, str):
            raise AuthTokenVerificationError("the PS response has no auth_token")
        auth = yield from self._check_auth_token(call, raw, resource_token, resource, ps)
        held = HeldToken(
            "auth", raw, auth.claims, float(auth.exp), SignatureKey.from_jwt(raw), not keep
        )
        if keep:
            self.state.put_auth_token(resource, resource_token.mission_s256, held)
        yield from self._emit(TokenObtained("auth", resource, self._shown(auth.claims)))
        return held

    def _check_auth_token(
        self,
        call: CallContext,
        raw: str,
        resource_token: ResourceToken,
        resource: str,
        ps: PersonServerMetadata,
    ) -> Flow[AuthToken]:
        agent_key = self.public_key
        clock = self.config.clock

        def check(keys: IssuerKeys | None) -> AuthToken:
            return check_auth_token_response(
                raw,
                resource_token=resource_token,
                resource=resource,
                agent_key=agent_key,
                keys=keys,
                clock=clock,
            )

        try:
            auth = check(None)
            # Only our PS's keys are fetched: an AS named by a resource token is verified by
            # the PS that federated with it.
            if self.config.verify_token_signatures and auth.iss == ps.issuer:
                if self.parent is None:
                    auth = yield from self._with_keys(
                        call, auth.iss, DWK_PERSON, ps.jwks_uri, check
                    )
                else:  # the PS's JWKS, from the parent's cache
                    auth = yield from self._by_parent(
                        self.parent._with_keys(call, auth.iss, DWK_PERSON, ps.jwks_uri, check)
                    )
        except TokenError as exc:
            raise AuthTokenVerificationError.from_token_error(exc) from exc
        return auth

    # -- the request to the PS ---------------------------------------------------------------

    def _token_request(
        self, call: CallContext, url: str, body: dict[str, Any]
    ) -> Flow[httpx.Response]:
        """A request to the PS's ``person_token_endpoint`` or ``auth_token_endpoint`` with
        §Agent Token Request's optional members. A sub-agent's is the parent's request
        (§Parent-Mediated Authorization): the parent signs it and adds its members (it is
        the parent who drives any consent); the body carries ``subagent_token``, and the
        sub-agent's own ``justification`` when it has one."""
        if self.parent is not None:
            body["subagent_token"] = self.identity.current_token()
            if self.config.justification:
                body["justification"] = self.config.justification
            response: httpx.Response = yield from self._by_parent(
                self.parent._token_request(call, url, body)
            )
            return response
        for name, value in self.config.consent_params().items():
            body.setdefault(name, value)
        response = yield from self._ps_call(call, url, body)
        return response


__all__ = ["TokenRequests"]
