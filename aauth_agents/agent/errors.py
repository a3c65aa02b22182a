"""The errors the agent side raises, each an :class:`~aauth_agents.protocol.errors.AAuthError`
whose ``code`` comes from the specification's registries.

* Errors a server sent -- a token endpoint's problem+json (§Token Endpoint Error Codes), a
  terminal poll response (§Polling Error Codes), a mission or interaction endpoint error --
  are read with :func:`~aauth_agents.protocol.error_from_response` and then given the class
  their code names (:func:`error_for_response`): ``denied`` -> :class:`DeniedError`,
  ``expired_resource_token`` -> :class:`ExpiredResourceTokenError`, and so on. Unknown codes
  stay a plain :class:`~aauth_agents.protocol.errors.ProtocolError` with the received code.
* Errors the agent decides on itself: a resource challenge that fails §Resource Challenge
  Verification (:class:`ChallengeVerificationError`), an auth token that fails §Auth Token
  Response Verification (:class:`AuthTokenVerificationError`), a requirement it cannot
  satisfy (:class:`NoPersonServerError`, the protocol's
  :class:`~aauth_agents.protocol.UnsupportedRequirementError`), a poll that ran past
  ``max_poll_seconds`` (:class:`PollTimeoutError`), a malformed deferred response
  (:class:`DeferredResponseError`) and a request the caller cancelled
  (:class:`RequestCancelledError`).

Messages never contain tokens.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from ..protocol.errors import AAuthError, ProtocolError, TokenError
from ..protocol.problem import error_from_response
from ..protocol.requirement import Requirement, UnsupportedRequirementError


class AgentProtocolError(ProtocolError):
    """A registry error with a fixed ``code``; what a server answered, or what the agent
    concluded. ``extra`` keeps the problem body's other members (e.g. ``mission_status``)."""

    CODE: ClassVar[str] = "server_error"

    def __init__(self, detail: str = "", *, status: int | None = None, **extra: Any):
        super().__init__(detail, code=self.CODE, status=status, **extra)


# -- §Token Endpoint Error Codes ---------------------------------------------------------------


class InvalidRequestError(AgentProtocolError):
    """``invalid_request`` (400): malformed JSON or a missing or malformed parameter."""

    CODE = code = "invalid_request"


class InvalidAgentTokenError(AgentProtocolError):
    """``invalid_agent_token`` (400)."""

    CODE = code = "invalid_agent_token"


class ExpiredAgentTokenError(AgentProtocolError):
    """``expired_agent_token`` (400)."""

    CODE = code = "expired_agent_token"


class InvalidResourceTokenError(AgentProtocolError):
    """``invalid_resource_token`` (400): the PS refused the resource token."""

    CODE = code = "invalid_resource_token"


class ExpiredResourceTokenError(AgentProtocolError):
    """``expired_resource_token`` (400): the agent obtains a fresh resource token and retries
    (the client does so once by itself before surfacing this)."""

    CODE = code = "expired_resource_token"


class UnknownPersonTokenError(AgentProtocolError):
    """``unknown_person_token`` (400): the PS retains no person token with ``presented_jti``."""

    CODE = code = "unknown_person_token"


class UserUnreachableError(AgentProtocolError):
    """``user_unreachable`` (403, terminal): nobody can reach the person. Also raised by the
    agent when an interaction is required and neither the PS relay nor an ``on_interaction``
    callback can take the person to it."""

    CODE = code = "user_unreachable"


class ServerError(AgentProtocolError):
    """``server_error`` (500)."""

    CODE = code = "server_error"


# -- §Polling Error Codes ----------------------------------------------------------------------


class DeniedError(AgentProtocolError):
    """``denied`` (403): the person or approver declined."""

    CODE = code = "denied"


class AbandonedError(AgentProtocolError):
    """``abandoned`` (403): the person opened the interaction but did not finish it."""

    CODE = code = "abandoned"


class ExpiredError(AgentProtocolError):
    """``expired`` (408): the pending request timed out; a fresh request MAY be made."""

    CODE = code = "expired"


class InvalidCodeError(AgentProtocolError):
    """``invalid_code`` (410): the pending request is gone; it MUST NOT be retried."""

    CODE = code = "invalid_code"


class SlowDownError(AgentProtocolError):
    """``slow_down`` (429). Handled inside polling (the interval grows by 5 s); raised only
    when a non-polling endpoint answers with it."""

    CODE = code = "slow_down"


class PollTimeoutError(ExpiredError):
    """The agent's own limit, ``max_poll_seconds``, ran out before a terminal response.

    Code ``expired`` ("timed out"), raised by the agent rather than received."""


# -- §Interaction Endpoint Errors, §Mission Endpoint Errors ------------------------------------


class InteractionUnavailableError(AgentProtocolError):
    """``interaction_unavailable`` (424): the PS cannot relay this interaction (non-terminal:
    the agent directs the person itself)."""

    CODE = code = "interaction_unavailable"


class MissionNotFoundError(AgentProtocolError):
    """``mission_not_found`` (404): no such mission, or not this agent's."""

    CODE = code = "mission_not_found"


class MissionTerminatedError(AgentProtocolError):
    """``mission_terminated`` (403): the mission is permanently ended; the agent MUST stop
    acting on it. ``termination_reason`` (``completed``, ``revoked``, ``expired``, ...) when
    the PS gave one."""

    CODE = code = "mission_terminated"

    @property
    def termination_reason(self) -> str | None:
        reason = self.extra.get("termination_reason")
        return reason if isinstance(reason, str) else None


# -- decided by the agent ----------------------------------------------------------------------


class ChallengeVerificationError(AAuthError):
    """A ``requirement=auth-token`` challenge whose resource token fails §Resource Challenge
    Verification (wrong ``iss``, ``agent_jkt``, ``ps`` or ``sub``, expired, bad signature).
    Nothing was sent to the PS. ``reason`` is the failed check (see
    :class:`~aauth_agents.protocol.errors.TokenError`)."""

    code = "invalid_resource_token"
    status = 400

    def __init__(self, detail: str, *, reason: str = "claims"):
        super().__init__(detail)
        self.reason = reason

    @classmethod
    def from_token_error(cls, error: TokenError) -> ChallengeVerificationError:
        made = cls(f"resource challenge rejected: {error.detail}", reason=error.reason)
        made.__cause__ = error
        return made


class AuthTokenVerificationError(AAuthError):
    """An auth token from the PS that fails §Auth Token Response Verification (``iss`` not
    the resource token's ``aud``, ``aud`` not the resource, ``cnf`` not the agent's key,
    ``sub`` not the person's). It is discarded, never presented."""

    code = "invalid_auth_token"
    status = 400

    def __init__(self, detail: str, *, reason: str = "claims"):
        super().__init__(detail)
        self.reason = reason

    @classmethod
    def from_token_error(cls, error: TokenError) -> AuthTokenVerificationError:
        made = cls(f"auth token rejected: {error.detail}", reason=error.reason)
        made.__cause__ = error
        return made


class PersonTokenError(AAuthError):
    """A person token from the PS that is not for this agent, resource or mission (wrong
    ``typ``, ``iss``, ``aud``, ``cnf`` or ``mission_s256``); it is discarded."""

    code = "invalid_person_token"
    status = 400


class NoPersonServerError(UnsupportedRequirementError):
    """§Person Token Required / §Requirement Values: the resource asked for a person token or
    an auth token and the agent token names no person server (no ``ps`` claim), so the
    requirement cannot be satisfied."""

    def __init__(self, requirement: Requirement):
        super().__init__(requirement)
        self.detail = (
            f"requirement={requirement.value} needs a person server, and the agent token "
            "has no ps claim"
        )
        self.args = (self.detail,)


class DeferredResponseError(AgentProtocolError):
    """A ``202`` the agent cannot follow: no ``Location``, a ``Location`` on another origin
    (§Pending Response: it MUST be on the responding server's origin), or a body its
    requirement needs but lacks."""

    CODE = code = "invalid_request"


class RequestCancelledError(AgentProtocolError):
    """The agent withdrew a pending request (``DELETE`` on the pending URL, §Cancel Request)
    because ``on_clarification`` asked it to or could not answer."""

    CODE = code = "cancelled"


_BY_CODE: Mapping[str, type[AgentProtocolError]] = {
    cls.CODE: cls
    for cls in (
        InvalidRequestError,
        InvalidAgentTokenError,
        ExpiredAgentTokenError,
        InvalidResourceTokenError,
        ExpiredResourceTokenError,
        UnknownPersonTokenError,
        UserUnreachableError,
        ServerError,
        DeniedError,
        AbandonedError,
        ExpiredError,
        InvalidCodeError,
        SlowDownError,
        InteractionUnavailableError,
        MissionNotFoundError,
        MissionTerminatedError,
    )
}


def typed_error(error: AAuthError) -> AAuthError:
    """``error`` as the class its registry code names (same code, status, detail, extras)."""
    cls = _BY_CODE.get(error.code)
    if cls is None or isinstance(error, cls) or not isinstance(error, ProtocolError):
        return error
    extra = dict(getattr(error, "extra", {}))
    typed = cls(error.detail if error.detail != error.code else "", status=error.status, **extra)
    typed.__cause__ = error.__cause__
    return typed


def error_for_response(
    status: int,
    headers: Mapping[str, str] | Iterable[tuple[str, str]],
    body: bytes | None,
) -> AAuthError:
    """The typed error an error response stands for (to raise, not raised here)."""
    return typed_error(error_from_response(status, headers, body))


__all__ = [
    "AbandonedError",
    "AgentProtocolError",
    "AuthTokenVerificationError",
    "ChallengeVerificationError",
    "DeferredResponseError",
    "DeniedError",
    "ExpiredAgentTokenError",
    "ExpiredError",
    "ExpiredResourceTokenError",
    "InteractionUnavailableError",
    "InvalidAgentTokenError",
    "InvalidCodeError",
    "InvalidRequestError",
    "InvalidResourceTokenError",
    "MissionNotFoundError",
    "MissionTerminatedError",
    "NoPersonServerError",
    "PersonTokenError",
    "PollTimeoutError",
    "RequestCancelledError",
    "ServerError",
    "SlowDownError",
    "UnknownPersonTokenError",
    "UnsupportedRequirementError",
    "UserUnreachableError",
    "error_for_response",
    "typed_error",
]
