"""What the agent does for each ``AAuth-Requirement`` value: one table per place a
requirement can arrive, mapping the value to the sub-flow that answers it.

* :data:`CHALLENGES` -- a resource's ``401`` to a request (§Requirement Responses). The
  sub-flow returns the credential to retry with (``None``: hand the response back as is).
* :data:`PENDING` -- a ``202`` from a resource or the PS (§Deferred Responses). The
  sub-flow moves the pending request along and returns the next response to look at
  (``None``: wait, then poll the pending URL).
* :data:`PENDING_CHALLENGES` -- a resource's ``401`` to a poll of its pending URL. The
  sub-flow renews the credential the polls present.

A value missing from the table of its context is refused with
:class:`~aauth_agents.protocol.requirement.UnsupportedRequirementError` (``claims``, say: an
AS asks it of a PS, never of an agent). **To support a new value:** write its sub-flow
here, and add one entry to the table of each context where it may arrive.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

import httpx

from ...protocol.deferred import PendingBody, clarification_response, updated_request
from ...protocol.errors import AAuthError
from ...protocol.requirement import (
    AGENT_TOKEN,
    APPROVAL,
    AUTH_TOKEN,
    CLARIFICATION,
    INTERACTION,
    PERSON_TOKEN,
    Requirement,
)
from ..callbacks import (
    Answer,
    Cancel,
    ClarificationRequest,
    InteractionRequest,
    PendingControl,
    UpdatedRequest,
    normalize_clarification,
)
from ..effects import Flow, Invoke, Read
from ..errors import (
    ExpiredResourceTokenError,
    InteractionUnavailableError,
    NoPersonServerError,
    RequestCancelledError,
    UserUnreachableError,
)
from ..events import ApprovalPending, ClarificationAnswered, ClarificationAsked, InteractionRequired
from ..state import HeldToken
from .config import CONTROLLED_WAIT, MAX_CLARIFICATION_ROUNDS, CallContext

if TYPE_CHECKING:
    from .deferred import DeferredResponses, PendingPoll
    from .resource import Attempt, ResourceParty
    from .tokens import TokenRequests

log = logging.getLogger("aauth_agents.agent")

ChallengeSubFlow = Callable[["TokenRequests", "Attempt", Requirement], Flow[HeldToken | None]]
PendingSubFlow = Callable[
    ["DeferredResponses", "PendingPoll", Requirement, PendingBody], Flow[httpx.Response | None]
]
PendingChallengeSubFlow = Callable[["ResourceParty", Requirement], Flow[None]]


# -- a resource's 401 -------------------------------------------------------------------------


def agent_token_required(
    flow: TokenRequests, attempt: Attempt, requirement: Requirement
) -> Flow[HeldToken | None]:
    """§Agent Token Required: retry with the agent token -- unless that is what was sent."""
    if attempt.credential.is_agent_token:
        return None  # nothing better to offer
    return flow.agent_credential()
    yield  # pragma: no cover


def person_token_required(
    flow: TokenRequests, attempt: Attempt, requirement: Requirement
) -> Flow[HeldToken | None]:
    """§Person Token Required: a person token from the PS (a fresh one when it was a person
    token the resource refused); later requests to the resource start with one."""
    resource = attempt.info.resource
    flow.state.set_wants(resource, "person")
    if flow.identity.ps is None:
        raise NoPersonServerError(requirement)
    refresh = attempt.credential.refreshed_when_refused
    token: HeldToken = yield from flow.person_token(attempt.call, resource, refresh=refresh)
    return token


def auth_token_required(
    flow: TokenRequests, attempt: Attempt, requirement: Requirement
) -> Flow[HeldToken | None]:
    """§Auth Token Required (step-up too): an auth token for the challenge's resource
    token. §Resource Token: one that expired before the PS saw it is answered by asking the
    resource for a fresh one (the same request again), once."""
    resource = attempt.info.resource
    flow.state.set_wants(resource, "auth")
    try:
        token: HeldToken = yield from flow._auth_for_challenge(
            attempt.call, resource, requirement, attempt.credential
        )
    except ExpiredResourceTokenError:
        if "expired_resource_token" in attempt.retried:
            raise
        attempt.retried.add("expired_resource_token")
        return attempt.credential
    return token


#: A resource's ``401``: requirement value → the sub-flow that finds the credential to
#: retry with.
CHALLENGES: Mapping[str, ChallengeSubFlow] = {
    AGENT_TOKEN: agent_token_required,
    PERSON_TOKEN: person_token_required,
    AUTH_TOKEN: auth_token_required,
}


# -- a 202 -----------------------------------------------------------------------------------


def interaction_required(
    flow: DeferredResponses, poll: PendingPoll, requirement: Requirement, body: PendingBody
) -> Flow[httpx.Response | None]:
    """§Interaction Required: get the person to the interaction URL (see
    :func:`_interaction`); a prompt that keeps a say (a :class:`PendingControl`) caps
    ``Prefer: wait`` so that its cancel takes effect soon."""
    control = yield from _interaction(flow, poll, requirement, body)
    if control is not None:
        poll.control = control
        poll.call.wait_cap = CONTROLLED_WAIT
    return None


def approval_pending(
    flow: DeferredResponses, poll: PendingPoll, requirement: Requirement, body: PendingBody
) -> Flow[httpx.Response | None]:
    """``requirement=approval``: the person is asked by the PS; say so once, and wait."""
    if "approval" not in poll.told:
        poll.told.add("approval")
        yield from flow._emit(ApprovalPending(poll.pending_url))
    return None


def clarification_required(
    flow: DeferredResponses, poll: PendingPoll, requirement: Requirement, body: PendingBody
) -> Flow[httpx.Response | None]:
    """§Clarification Chat: answer (see :func:`_clarify`); the answer's response is next."""
    poll.clarifications += 1
    response = yield from _clarify(flow, poll, body)
    poll.url = poll.pending_url
    return response


def auth_token_delivered(
    flow: DeferredResponses, poll: PendingPoll, requirement: Requirement, body: PendingBody
) -> Flow[httpx.Response | None]:
    """§Deferred Delivery: a resource's pending request needs an auth token, presented on
    the polls (a PS asks for none: refused)."""
    yield from poll.party.on_auth_token(requirement)
    return None


#: A ``202``: requirement value → the sub-flow that moves the pending request along.
PENDING: Mapping[str, PendingSubFlow] = {
    INTERACTION: interaction_required,
    APPROVAL: approval_pending,
    CLARIFICATION: clarification_required,
    AUTH_TOKEN: auth_token_delivered,
}
#: The :data:`PENDING` values whose sub-flow reads the pending body: a malformed one is an
#: error (for the others it is ignored).
NEEDS_BODY = frozenset({CLARIFICATION})


# -- a resource's 401 to a poll ---------------------------------------------------------------


def pending_auth_token_required(party: ResourceParty, requirement: Requirement) -> Flow[None]:
    """A pending URL wants (another) auth token: obtained, and presented on the polls."""
    yield from party.on_auth_token(requirement)


#: A resource's ``401`` to a poll of its pending URL: requirement value → the sub-flow
#: that renews the credential the polls present.
PENDING_CHALLENGES: Mapping[str, PendingChallengeSubFlow] = {
    AUTH_TOKEN: pending_auth_token_required,
}


# -- the person ------------------------------------------------------------------------------


def _interaction(
    flow: DeferredResponses, poll: PendingPoll, requirement: Requirement, body: PendingBody
) -> Flow[PendingControl | None]:
    """§Interaction Required: relay through the PS's interaction endpoint when the
    interaction is not the PS's own, else (or on ``interaction_unavailable``) hand it to
    ``on_interaction``. Once per ``(url, code)``; not at all once the person is there.
    Returns what the handler gave to keep a say (a :class:`PendingControl`)."""
    target = (requirement.url, requirement.code)
    if target in poll.prompted:
        return None
    poll.prompted.add(target)
    url, code = requirement.url, requirement.code
    assert url is not None and code is not None  # parse_requirement insists on both
    shown = url  # what the person opens: the one place the person's link is rewritten
    if flow.config.browser_url is not None:
        shown = flow.config.browser_url(url)
    poll.interaction = (shown, code)
    location = poll.pending_url
    if body.status == "interacting":
        return None
    if not poll.party.is_ps and flow.identity.ps is not None:
        if flow.parent is None:
            relayed = yield from _relay(flow, poll.call, url, code)
        else:  # a sub-agent reaches the PS only through its parent
            relayed = yield from flow._by_parent(_relay(flow.parent, poll.call, url, code))
        if relayed:
            yield from flow._emit(
                InteractionRequired(url, code, relayed=True, pending_url=location)
            )
            return None
    if flow.config.on_interaction is None:
        raise UserUnreachableError(
            "the person must visit an interaction URL, and this agent is unattended (no "
            "prompt, no on_interaction callback, no person server relay)"
        )
    yield from flow._emit(InteractionRequired(shown, code, pending_url=location))
    request = InteractionRequest(
        shown,
        code,
        location,
        resource=poll.call.resource,
        justification=flow.config.justification,
        expires_in=max(0.0, poll.deadline - flow.config.clock()),
    )
    result = yield Invoke(flow.config.on_interaction, (request,))
    if isinstance(result, Cancel):
        yield from flow._withdraw(poll.call, poll.party, location, poll)
        raise RequestCancelledError(result.reason or "the request was cancelled")
    return result if isinstance(result, PendingControl) else None


def _relay(flow: DeferredResponses, call: CallContext, url: str, code: str) -> Flow[bool]:
    """§Relaying Through the Person Server: True when the PS took the interaction on."""
    try:
        ps = yield from flow.person_server(call)
    except AAuthError as exc:
        log.warning("cannot relay the interaction: %s", exc.detail)
        return False
    if ps.interaction_endpoint is None:
        return False
    body: dict[str, object] = {"type": "interaction", "url": url, "code": code}
    if flow.config.mission_s256 is not None:
        body["mission_s256"] = flow.config.mission_s256
    request, sent = flow._ps_request(call, "POST", ps.interaction_endpoint, body, prefer=False)
    response = yield from flow._send(request, sent)
    if response.status_code in (200, 202):
        return True
    yield Read(response)
    error = flow._error(response)
    if isinstance(error, UserUnreachableError):
        raise error
    if not isinstance(error, InteractionUnavailableError):
        log.warning("interaction relay failed (%s); directing the person ourselves", error.code)
    return False


def _clarify(flow: DeferredResponses, poll: PendingPoll, body: PendingBody) -> Flow[httpx.Response]:
    """§Agent Response to Clarification: answer, update or cancel."""
    location, events = poll.pending_url, flow.config.events
    question = body.clarification or ""
    yield from flow._emit(ClarificationAsked(location, question, body.options, body.timeout))
    callback = flow.config.on_clarification
    if callback is None or poll.clarifications > MAX_CLARIFICATION_ROUNDS:
        yield from flow._emit(ClarificationAnswered(location, "cancel") if events else None)
        yield from flow._withdraw(poll.call, poll.party, location, poll)
        why = (
            "no on_clarification callback"
            if callback is None
            else f"more than {MAX_CLARIFICATION_ROUNDS} clarification rounds"
        )
        raise RequestCancelledError(f"clarification asked; {why}: the request was withdrawn")
    request = ClarificationRequest(
        question, location, body.options, body.timeout, resource=poll.call.resource
    )
    result = yield Invoke(callback, (request,))
    action = normalize_clarification(result)
    if isinstance(action, Cancel):
        yield from flow._emit(ClarificationAnswered(location, "cancel") if events else None)
        yield from flow._withdraw(poll.call, poll.party, location, poll)
        raise RequestCancelledError(action.reason or "the request was cancelled")
    if isinstance(action, Answer):
        payload, name = clarification_response(action.text), "clarification_response"
    else:
        assert isinstance(action, UpdatedRequest)
        payload = updated_request(action.resource_token, action.justification)
        name = "updated_request"
    request_, sent = poll.party.build("POST", location, payload)
    response = yield from flow._send(request_, sent)
    yield from flow._emit(
        *poll.party.observe(response), ClarificationAnswered(location, name) if events else None
    )
    if response.status_code >= 400:
        yield Read(response)
        raise flow._error(response)
    return response


__all__ = [
    "CHALLENGES",
    "NEEDS_BODY",
    "PENDING",
    "PENDING_CHALLENGES",
    "ChallengeSubFlow",
    "PendingChallengeSubFlow",
    "PendingSubFlow",
]
