"""Typed errors carrying the codes of the AAuth and Signature-Key registries.

Every failure in aauth_agents is an :class:`AAuthError` with a stable ``code`` taken from
the specification (draft-hardt-oauth-aauth-protocol-11, §Error Responses; Signature-Key
§Error Codes). A server renders one with :meth:`AAuthError.to_response`: the right status,
the headers that status needs and an ``application/problem+json`` body (RFC 9457). A ``403``
never carries ``Signature-Error`` or ``Accept-Signature-*`` (§Verification).

The whole tree (module in brackets when not this one)::

    AAuthError
    ├── SignatureError             401 + Signature-Error: the request's signature (§Verification)
    │   ├── MissingSignatureError, InvalidInputError, InvalidSignatureError,
    │   │   UnsupportedSchemeError, UnsupportedAlgorithmError, InvalidKeyError,
    │   │   UnknownKeyError, InvalidJWTError, ExpiredJWTError
    │   ├── UnrecognizedSignatureError   a received code this library does not know [problem]
    │   └── TokenRejectedError           the resource refused the Signature-Key token [resource]
    ├── DiscoveryError             metadata or JWKS unavailable; a verifier makes it a
    │   │                          SignatureError (as_signature_error) [discovery raises it]
    │   ├── IssuerMissingError, IssuerMismatchError, EgressDeniedError
    │   └── InvalidMetadataError         [protocol.metadata]
    ├── TokenError                 an AAuth JWT failed verification; ``reason`` says which check
    ├── ProtocolError              a code of an endpoint registry, with its status
    │   ├── WireFormatError              unparseable header or body [protocol.wire]
    │   │   └── MalformedHeaderError, MalformedBodyError, MalformedProblemError,
    │   │       InvalidScopeError, InvalidMissionError (MissionMismatchError),
    │   │       InvalidInteractionCodeError
    │   ├── UnexpectedResponseError      a response that is not AAuth [protocol.problem]
    │   ├── AgentProtocolError           what a PS or resource answered the agent [agent.errors]
    │   │   └── DeniedError, AbandonedError, ExpiredError (PollTimeoutError), SlowDownError,
    │   │       InvalidCodeError, UserUnreachableError, InteractionUnavailableError,
    │   │       InvalidRequestError, InvalidAgentTokenError, ExpiredAgentTokenError,
    │   │       InvalidResourceTokenError, ExpiredResourceTokenError,
    │   │       UnknownPersonTokenError, MissionNotFoundError, MissionTerminatedError,
    │   │       DeferredResponseError, RequestCancelledError, ServerError
    │   ├── RevokedError, SessionTokenError           [resource]
    │   ├── InteractionError, BindingConflictError    [servers.person_server]
    │   └── InvalidTransitionError       an illegal pending-record move [stores.states]
    ├── StoreUnavailableError      503: Redis or PostgreSQL unreachable [stores]
    ├── ChallengeVerificationError, AuthTokenVerificationError, PersonTokenError
    │                              a token the agent received is not acceptable [agent.errors]
    ├── UnsupportedRequirementError  an AAuth-Requirement the agent cannot meet
    │   └── NoPersonServerError          [agent.errors]
    ├── KeyStoreError              the agent's key storage [agent.storage]
    │   └── KeyStoreUnavailableError, InsecureKeyStoreError, AgentExistsError,
    │       AgentNotFoundError
    └── ConfigurationError         a local programming error (also a ValueError)
        └── ComponentError [httpsig.request], AccountError [servers.person_server]

Catch :class:`AAuthError` for "anything AAuth refused"; a family for one kind of failure.
Every constructor takes the human-readable ``detail`` first and the registry ``code`` (and
``status``) by keyword: ``ProtocolError("the request was denied", code="denied")``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

#: The media type of error bodies (RFC 9457).
PROBLEM_JSON = "application/problem+json"

#: §Error Responses, §Authorization Endpoint Error Responses, §Mission Endpoint Errors,
#: §Interaction Endpoint Errors: every AAuth error code and the status it is sent with.
ERROR_STATUS: Mapping[str, int] = {
    # token endpoint (§Token Endpoint Error Codes)
    "invalid_request": 400,
    "invalid_agent_token": 400,
    "expired_agent_token": 400,
    "invalid_resource_token": 400,
    "expired_resource_token": 400,
    "unknown_person_token": 400,
    "user_unreachable": 403,
    "server_error": 500,
    # polling (§Polling Error Codes)
    "denied": 403,
    "abandoned": 403,
    "expired": 408,
    "invalid_code": 410,
    "slow_down": 429,
    # authorization endpoint (§Authorization Endpoint Error Responses)
    "invalid_person_token": 400,
    "invalid_scope": 400,
    "invalid_account": 400,
    # missions (§Mission Endpoint Errors, §Mission Status Errors)
    "mission_not_found": 404,
    "mission_terminated": 403,
    # interaction endpoint (§Interaction Endpoint Errors)
    "interaction_unavailable": 424,
    # resource-side refusals after a verified signature
    "invalid_auth_token": 401,
    "expired_auth_token": 401,
    "insufficient_scope": 403,
    "revoked": 403,
}

#: Signature-Key §Error Codes as extended by -11 §Verification. All are sent with 401.
SIGNATURE_ERROR_CODES: frozenset[str] = frozenset(
    {
        "unsupported_algorithm",
        "unsupported_scheme",
        "invalid_signature",
        "invalid_input",
        "invalid_request",
        "invalid_key",
        "unknown_key",
        "invalid_jwt",
        "expired_jwt",
        "issuer_missing",
        "issuer_mismatch",
    }
)


class AAuthError(Exception):
    """Base of every aauth_agents error: a registry ``code``, a ``status`` and a ``detail``."""

    code: str = "server_error"
    status: int = 500
    #: What the agent was asking for when this error ended its request (set by the agent's
    #: flow, for messages to a person or a model): the resource, and the scopes of the
    #: authorization it requested (empty when it asked for none).
    resource: str | None = None
    scopes: tuple[str, ...] = ()
    #: The interaction the person was sent to (§Interaction Required) when this error ended
    #: a request waiting on it (set by the agent's flow): where the person goes and the code
    #: they check there. In ``str(error)``, for a person; never in ``detail``, ``repr`` or
    #: :meth:`problem` (logs, a model, the wire).
    interaction_url: str | None = None
    interaction_code: str | None = None

    def __init__(self, detail: str = "", *, code: str | None = None, status: int | None = None):
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.detail = detail or self.code
        super().__init__(self.detail)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, detail={self.detail!r})"

    def about(self, resource: str, scopes: Sequence[str] = ()) -> AAuthError:
        """Record what was being asked for (kept when already recorded); returns self."""
        if self.resource is None:
            self.resource, self.scopes = resource, tuple(scopes)
        return self

    def awaiting(self, url: str, code: str) -> AAuthError:
        """Record the interaction the person was sent to (kept when already recorded) and
        say in ``str(self)`` where the person goes; returns self."""
        if self.interaction_url is None:
            self.interaction_url, self.interaction_code = url, code
            link = f"{url}?{urlencode({'code': code})}"
            self.args = (f"{self.detail} (the person's page: {link}, code {code})",)
        return self

    def headers(self) -> dict[str, str]:
        """Response headers the error's status needs, besides Content-Type."""
        return {}

    def problem(self) -> dict[str, Any]:
        """The RFC 9457 body: ``error`` is the machine-readable member (§Error Response Format)."""
        return {"error": self.code, "detail": self.detail}

    def to_response(self) -> tuple[int, dict[str, str], bytes]:
        """``(status, headers, body)`` ready to send."""
        headers = {"Content-Type": PROBLEM_JSON, **self.headers()}
        if self.status == 403:  # §Verification: a 403 never carries signature headers
            for name in ("Signature-Error", "Accept-Signature-Scheme", "Accept-Signature-Alg"):
                headers.pop(name, None)
        return self.status, headers, json.dumps(self.problem()).encode()


class ProtocolError(AAuthError):
    """An error of one of the AAuth endpoint registries; status from :data:`ERROR_STATUS`."""

    def __init__(self, detail: str = "", *, code: str, status: int | None = None, **extra: Any):
        super().__init__(detail, code=code, status=status or ERROR_STATUS.get(code, 400))
        self.extra = extra

    def problem(self) -> dict[str, Any]:
        return {**super().problem(), **self.extra}


class ConfigurationError(AAuthError, ValueError):
    """The caller configured something the specification forbids (a local programming error)."""

    code = "invalid_configuration"
    status = 500


class SignatureError(AAuthError):
    """The HTTP message signature failed verification (§Verification): always 401.

    ``code`` is the Signature-Error code. ``required_input`` (for ``invalid_input``),
    ``accept_schemes`` (for ``unsupported_scheme``) and ``accept_algs`` (for
    ``unsupported_algorithm``) become the headers that let the agent recover in one round trip.
    """

    code = "invalid_signature"
    status = 401

    def __init__(
        self,
        detail: str = "",
        *,
        code: str | None = None,
        required_input: Sequence[str] | None = None,
        accept_schemes: Sequence[str] | None = None,
        accept_algs: Sequence[str] | None = None,
    ):
        super().__init__(detail, code=code, status=401)
        if self.code not in SIGNATURE_ERROR_CODES:
            raise ConfigurationError(f"{self.code!r} is not a Signature-Error code")
        self.required_input = tuple(required_input) if required_input else None
        self.accept_schemes = tuple(accept_schemes) if accept_schemes else None
        self.accept_algs = tuple(accept_algs) if accept_algs else None

    def headers(self) -> dict[str, str]:
        # One serialisation for both directions lives in headers.py (imported here, late,
        # because headers.py builds on these error classes).
        from .headers import (
            serialize_accept_signature_alg,
            serialize_accept_signature_scheme,
            serialize_signature_error,
        )

        headers = {"Signature-Error": serialize_signature_error(self.code, self.required_input)}
        if self.accept_schemes:
            headers["Accept-Signature-Scheme"] = serialize_accept_signature_scheme(
                self.accept_schemes
            )
        if self.accept_algs:
            headers["Accept-Signature-Alg"] = serialize_accept_signature_alg(self.accept_algs)
        return headers

    def problem(self) -> dict[str, Any]:
        body = super().problem()
        if self.required_input:
            body["required_input"] = list(self.required_input)
        return body


class MissingSignatureError(SignatureError):
    """§Verification step 1: Signature, Signature-Input or Signature-Key missing or malformed."""

    code = "invalid_request"


class InvalidInputError(SignatureError):
    """§Verification step 2: a required covered component is missing."""

    code = "invalid_input"


class InvalidSignatureError(SignatureError):
    """§Verification steps 3 and 7: stale ``created``, past ``expires``, or a bad signature."""

    code = "invalid_signature"


class UnsupportedSchemeError(SignatureError):
    """§Verification step 4: a Signature-Key scheme the verifier does not accept."""

    code = "unsupported_scheme"


class InvalidKeyError(SignatureError):
    """A key that cannot be parsed, or whose ``kty``/``crv`` disagrees with its ``alg``."""

    code = "invalid_key"


class UnsupportedAlgorithmError(SignatureError):
    """A key without ``alg``, with a polymorphic (``EdDSA``), forbidden (``none``, ``HS*``)
    or unimplemented algorithm (§Signature Algorithms)."""

    code = "unsupported_algorithm"


class UnknownKeyError(SignatureError):
    """No key with the requested ``kid`` at the issuer's ``jwks_uri``."""

    code = "unknown_key"


class InvalidJWTError(SignatureError):
    """The JWT in Signature-Key is malformed or its signature failed."""

    code = "invalid_jwt"


class ExpiredJWTError(SignatureError):
    """The JWT in Signature-Key has expired."""

    code = "expired_jwt"


class DiscoveryError(AAuthError):
    """A metadata document or JWKS could not be fetched or used (§JWKS Discovery and Caching).

    Not a :class:`SignatureError`: a failed fetch says nothing about a signature. Where the
    key was wanted to verify one, the verifier turns it into the Signature-Error it calls for
    (:meth:`as_signature_error`: ``invalid_jwt``, or ``issuer_missing`` /
    ``issuer_mismatch``, §Verification step 5); rendered as is, it answers the same 401."""

    code = "invalid_jwt"
    status = 401

    def __init__(self, detail: str = "", *, code: str | None = None):
        super().__init__(detail, code=code, status=401)

    def as_signature_error(self) -> SignatureError:
        """The 401 a verifier sends when this failure kept it from a signature's key."""
        error = SignatureError(self.detail, code=self.code)
        error.__cause__ = self
        return error

    def to_response(self) -> tuple[int, dict[str, str], bytes]:
        return self.as_signature_error().to_response()


class IssuerMissingError(DiscoveryError):
    """§Metadata Documents: the document has no ``issuer``."""

    code = "issuer_missing"


class IssuerMismatchError(DiscoveryError):
    """§Metadata Documents: ``issuer`` differs from the identifier it was fetched under."""

    code = "issuer_mismatch"


class EgressDeniedError(DiscoveryError):
    """Egress admission refused to fetch a URL a token named (non-https, or a private,
    loopback or link-local address the caller did not allow)."""

    code = "invalid_jwt"


class TokenError(AAuthError):
    """An AAuth JWT failed verification (§Agent Token Verification, §Person Token
    Verification, §Resource Token Verification, §Auth Token Verification).

    ``code`` is the token registry's (``invalid_agent_token``, ``expired_resource_token``,
    ``invalid_person_token``, ``invalid_auth_token``, ``unknown_person_token``, ...).
    ``reason`` names the failed check (``typ``, ``dwk``, ``exp``, ``iat``, ``aud``,
    ``cnf_missing``, ``cnf_incomplete``, ``cnf_invalid``, ``cnf_mismatch``, ``signature``,
    ``claims``, ``lifetime``, ...). ``signature_error`` is the Signature-Error code the failure
    becomes when the token was presented in Signature-Key.
    """

    status = 400

    def __init__(
        self,
        detail: str = "",
        *,
        code: str,
        reason: str,
        signature_error: str = "invalid_jwt",
        status: int | None = None,
    ):
        super().__init__(detail, code=code, status=status or ERROR_STATUS.get(code, 400))
        self.reason = reason
        self.signature_error = signature_error

    def as_signature_error(self) -> SignatureError:
        """The 401 a verifier sends when this token was the request's Signature-Key."""
        err = SignatureError(self.detail, code=self.signature_error)
        err.__cause__ = self
        return err


__all__ = [
    "ERROR_STATUS",
    "PROBLEM_JSON",
    "SIGNATURE_ERROR_CODES",
    "AAuthError",
    "ConfigurationError",
    "DiscoveryError",
    "EgressDeniedError",
    "ExpiredJWTError",
    "InvalidInputError",
    "InvalidJWTError",
    "InvalidKeyError",
    "InvalidSignatureError",
    "IssuerMismatchError",
    "IssuerMissingError",
    "MissingSignatureError",
    "ProtocolError",
    "SignatureError",
    "TokenError",
    "UnknownKeyError",
    "UnsupportedAlgorithmError",
    "UnsupportedSchemeError",
]
