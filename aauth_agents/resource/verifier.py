"""The resource verifier: one call takes a request and says who is calling.

§Verification (the HTTP signature, steps 1-7) first, with the token in ``Signature-Key``
resolved by its ``typ`` -- agent token (§Agent Token Verification), person token (§Person
Token Verification) or auth token (§Auth Token Verification: JWT trust, then request-context
binding: ``aud`` is this resource, ``cnf`` is the signing key). Then a session token in
``Authorization: AAuth`` (§AAuth-Access), then revocation by ``(iss, jti)``, by agent and by
person (§Token Revocation). Matching ``(iss, sub)`` against the resource's records (§Auth
Token Verification step 7) is the application's: :attr:`Caller.person` is the key.

:class:`ResourceVerifier` is usable without ASGI (``verify`` / ``averify`` take an
:class:`~aauth_agents.httpsig.HttpRequest`); it enforces no route policy and writes nothing.
Verified tokens are cached by their compact form (bounded LRU, re-checked against ``exp``
on every hit), so a cached auth token costs one request-signature verification per request.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from ..httpsig import (
    SCHEME_JWT,
    HttpRequest,
    KeyResolution,
    SignatureVerifier,
    VerifiedSignature,
)
from ..protocol.errors import (
    AAuthError,
    InvalidJWTError,
    ProtocolError,
    SignatureError,
    TokenError,
)
from ..protocol.headers import parse_authorization
from ..protocol.wire import WireFormatError
from ..tokens import (
    AgentToken,
    AuthToken,
    PersonToken,
    VerifiedTokenCache,
    async_token_key_resolver,
    token_key_resolver,
)
from .caller import Caller
from .config import ResourceConfig, TrustedIssuerKeys
from .events import DENIED, EventSink
from .session import SessionTokenError, verify_session_token


class TokenRejectedError(SignatureError):
    """The token in ``Signature-Key`` failed verification: a 401 with ``Signature-Error``
    (``invalid_jwt``, ``expired_jwt``, ``unknown_key``, ...) whose body also names the token
    registry's code (``token_error``: ``invalid_auth_token``, ``invalid_person_token``...)
    and ``reason`` the failed check."""

    def __init__(self, error: SignatureError, token_error: TokenError):
        super().__init__(
            error.detail,
            code=error.code,
            accept_schemes=error.accept_schemes,
            accept_algs=error.accept_algs,
        )
        self.token_error = token_error.code
        self.reason = token_error.reason

    def problem(self) -> dict[str, Any]:
        return {**super().problem(), "token_error": self.token_error}


class RevokedError(ProtocolError):
    """A revoked credential (403 ``revoked``; never a Signature-Error). ``which`` says what
    matched -- ``token``, ``agent`` or ``person`` -- for the event hook, not the agent."""

    def __init__(self, which: str):
        super().__init__("the presented credential has been revoked", code="revoked", status=403)
        self.which = which


def _token_error(exc: SignatureError) -> SignatureError:
    cause = exc.__cause__
    return TokenRejectedError(exc, cause) if isinstance(cause, TokenError) else exc


_Resolved = tuple[AgentToken | PersonToken | AuthToken, KeyResolution]


_SIGNATURE_HEADERS = ("signature", "signature-input", "signature-key")


def is_signed(request: HttpRequest) -> bool:
    """Whether ``request`` carries any HTTP-signature header (else it is challenged, not
    verified)."""
    return any(name in _SIGNATURE_HEADERS for name, _ in request.headers)


class ResourceVerifier:
    """Verifies requests at ``config.identifier``; see the module docstring."""

    def __init__(self, config: ResourceConfig, *, events: EventSink | None = None) -> None:
        self.config = config
        self.events = events or EventSink(config.event_hook, clock=config.clock)
        self.keys = TrustedIssuerKeys(config.issuer_keys, config.trust, own_as=config.access_server)
        self.signatures = SignatureVerifier(
            additional_components=config.additional_signature_components,
            window=config.signature_window,
            clock=config.clock,
            accepted_schemes=(SCHEME_JWT,),
            replay_cache=None,  # checked by the resource once a request is accepted
            require_query=config.require_query,
        )
        cache = self.tokens = VerifiedTokenCache(config.token_cache_size, clock=config.clock)
        self._resolve = cache.wrap(
            token_key_resolver(keys=self.keys, audience=config.identifier, clock=config.clock)
        )
        self._aresolve = cache.awrap(
            async_token_key_resolver(keys=self.keys, audience=config.identifier, clock=config.clock)
        )
        self._session_keys = (config.signing_key.public_key, *config.previous_keys)
        #: Callers found not revoked -> until when that answer stands (revocation_recheck).
        self._unrevoked: OrderedDict[tuple[Any, ...], float] = OrderedDict()
        self._unrevoked_lock = threading.Lock()
        #: (id of a verified token, key thumbprint) -> its caller, without a signature.
        self._callers: dict[tuple[int, str], Caller] = {}

    # -- public ----------------------------------------------------------------------------

    def clear_cache(self) -> None:
        """Forget every verified token (they are verified again on next use); the issuers'
        metadata and JWKS are cached by ``config.issuer_keys`` (e.g. Discovery's cache)."""
        self.tokens.clear()
        self._callers.clear()

    def verify(self, request: HttpRequest) -> Caller:
        """Who signed ``request``; raises :class:`~aauth_agents.protocol.errors.AAuthError`
        (:class:`TokenRejectedError` and other ``SignatureError`` s as 401,
        :class:`RevokedError` as 403, a bad session token as 400)."""
        try:
            verified = self.signatures.verify(request, self._resolve)
        except SignatureError as exc:
            raise self._denied(_token_error(exc)) from exc
        caller = self._caller(verified, request)
        assert self.config.stores is not None
        revocations = self.config.stores.revocations
        now = self.config.clock()
        if self._known_unrevoked(caller, now):
            return caller
        for query in self._revocation_queries(caller):
            which = revocations.is_revoked(now=now, **query)
            if which is not None:
                self.tokens.forget(**query)
                raise self._denied(RevokedError(which), caller)
        self._remember_unrevoked(caller, now)
        return caller

    async def averify(self, request: HttpRequest) -> Caller:
        """:meth:`verify`, with key discovery and store lookups awaited."""
        try:
            verified = await self.signatures.averify(request, self._aresolve)
        except SignatureError as exc:
            raise self._denied(_token_error(exc)) from exc
        caller = self._caller(verified, request)
        assert self.config.stores is not None
        revocations = self.config.stores.revocations
        now = self.config.clock()
        if self._known_unrevoked(caller, now):
            return caller
        for query in self._revocation_queries(caller):
            which = await revocations.ais_revoked(now=now, **query)
            if which is not None:
                self.tokens.forget(**query)
                raise self._denied(RevokedError(which), caller)
        self._remember_unrevoked(caller, now)
        return caller

    # -- steps shared by both ---------------------------------------------------------------

    def _denied(self, error: AAuthError, caller: Caller | None = None) -> AAuthError:
        detail: dict[str, Any] = {"code": error.code}
        if isinstance(error, TokenRejectedError):
            detail.update(token_error=error.token_error, check=error.reason)
        if isinstance(error, RevokedError):
            detail["matched"] = error.which
        if caller is not None:
            detail.update(caller=caller.label, iss=caller.issuer, jti=caller.jti)
        self.events.emit(
            DENIED, "revoked" if isinstance(error, RevokedError) else error.code, **detail
        )
        return error

    def _caller(self, verified: VerifiedSignature, request: HttpRequest) -> Caller:
        token = verified.context
        if not isinstance(token, (AgentToken, PersonToken, AuthToken)):
            raise self._denied(InvalidJWTError("Signature-Key did not carry an AAuth token"))
        caller = self._signed_by(token, verified)
        header = request.header("authorization")
        if header is None:
            return caller
        try:
            credential = parse_authorization(header)
        except WireFormatError as exc:
            raise self._denied(exc, caller) from exc
        if credential is None:  # another scheme (Bearer, ...): not ours to judge
            return caller
        try:
            session = verify_session_token(
                credential,
                keys=self._session_keys,
                resource=self.config.identifier,
                agent_jkt=verified.thumbprint,
                now=self.config.clock(),
            )
        except SessionTokenError as exc:
            if exc.expired:  # lapsed: the caller simply has no session any more
                return caller
            raise self._denied(exc, caller) from exc
        return caller.with_session(session, self.config.identifier)

    def _signed_by(
        self, token: AgentToken | PersonToken | AuthToken, verified: VerifiedSignature
    ) -> Caller:
        """The caller for ``token`` and key, built once per (cached) token and copied per
        request with its signature."""
        key = (id(token), verified.thumbprint)
        template = self._callers.get(key)
        if template is None or template.token is not token:  # an id reused: build anew
            template = Caller.from_token(token, verified.thumbprint)
            if len(self._callers) >= max(self.config.token_cache_size, 1):
                self._callers.clear()
            self._callers[key] = template
        return template.with_signature(verified)

    @staticmethod
    def _unrevoked_key(caller: Caller) -> tuple[Any, ...]:
        session = caller.session.jti if caller.session is not None else None
        return (caller.issuer, caller.jti, caller.thumbprint, caller.agent, session)

    def _known_unrevoked(self, caller: Caller, now: float) -> bool:
        """Whether ``caller`` was found not revoked less than ``revocation_recheck`` ago."""
        until = self._unrevoked.get(self._unrevoked_key(caller))
        return until is not None and now < until

    def _remember_unrevoked(self, caller: Caller, now: float) -> None:
        recheck = self.config.revocation_recheck
        if recheck > 0:
            key = self._unrevoked_key(caller)
            with self._unrevoked_lock:
                self._unrevoked[key] = now + recheck
                self._unrevoked.move_to_end(key)
                while len(self._unrevoked) > max(self.config.token_cache_size, 1):
                    self._unrevoked.popitem(last=False)

    def revoked(
        self,
        *,
        token: tuple[str, str] | None = None,
        agents: Sequence[str] = (),
        person: tuple[str, str] | None = None,
    ) -> None:
        """A revocation was recorded here (the arguments of ``is_revoked``): drop the
        verified tokens it matches and ask the store again for every caller."""
        self.tokens.forget(token=token, agents=agents, person=person)
        with self._unrevoked_lock:
            self._unrevoked.clear()

    def _revocation_queries(self, caller: Caller) -> list[dict[str, Any]]:
        agents = [caller.thumbprint]
        agents += [a for a in (caller.agent, caller.parent_agent) if a]
        queries: list[dict[str, Any]] = [
            {
                "token": (caller.issuer, caller.jti),
                "agents": agents,
                "person": caller.person,
            }
        ]
        if caller.session is not None:
            queries.append({"token": (self.config.identifier, caller.session.jti)})
        return queries


__all__ = ["ResourceVerifier", "RevokedError", "TokenRejectedError"]
