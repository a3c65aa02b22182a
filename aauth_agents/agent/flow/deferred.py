"""Calls to the PS and §Deferred Responses: a ``202`` is followed by polling its pending URL
(``Retry-After``, default 5 s, +5 s per ``429``; ``Prefer: wait``; ``max_poll_seconds``)
until a final response; a poll whose connection failed, or that a ``502``, ``503`` or
``504`` answered, is repeated with backoff (:mod:`~aauth_agents.agent.reconnect`: a server
restart only delays the flow); a requirement it carries is answered by the sub-flow
:data:`~.requirements.PENDING` names; a pending URL is recorded in the call's
:class:`~aauth_agents.agent.pending.PendingRequests` while open, resumed from there, and
withdrawn (§Cancel Request) when the agent gives up."""

from __future__ import annotations

import logging
from collections.abc import Hashable, Mapping
from typing import Any

import httpx

from ...protocol.deferred import MalformedBodyError, PendingBody, parse_pending_body
from ...protocol.errors import AAuthError, ConfigurationError
from ...protocol.requirement import Requirement, UnsupportedRequirementError
from ..callbacks import PendingControl
from ..effects import Emit, Flow, Read, Sleep
from ..errors import (
    DeferredResponseError,
    PollTimeoutError,
    RequestCancelledError,
    error_for_response,
)
from ..events import FlowEvent, FlowFailed, PendingEnded, Polling, Reconnecting
from ..pending import PendingRequests
from ..polling import SLOW_DOWN_STEP, parse_retry_after, resolve_location
from ..reconnect import RETRY_STATUSES, backoff, failure_of, retryable
from .config import CONTROLLED_POLLS, CallContext
from .metadata import MetadataDiscovery
from .requirements import NEEDS_BODY, PENDING

log = logging.getLogger("aauth_agents.agent")


def _outcome_of_error(error: AAuthError) -> str:
    """The :class:`PendingEnded` outcome of a flow that ended with ``error``."""
    if error.code in ("denied", "abandoned", "expired", "cancelled"):
        return error.code
    return "failed"


def _final_outcome(response: httpx.Response) -> str:
    """The :class:`PendingEnded` outcome of a pending request's final response."""
    status = response.status_code
    if status < 400:
        return PendingEnded.outcome_of(status)
    error = error_for_response(status, response.headers.multi_items(), response.content)
    return PendingEnded.outcome_of(status, error.code)


class Party:
    """Who a deferred response came from, and how to sign requests to its pending URL."""

    is_ps = False
    location: str | None = None

    def build(
        self, method: str, url: str, body: Mapping[str, Any] | None = None
    ) -> tuple[httpx.Request, FlowEvent | None]:
        raise NotImplementedError

    def observe(self, response: httpx.Response) -> list[FlowEvent]:
        return []

    def on_auth_token(self, requirement: Requirement) -> Flow[None]:
        raise UnsupportedRequirementError(requirement)
        yield  # pragma: no cover


class PersonServerParty(Party):
    is_ps = True

    def __init__(self, flow: DeferredResponses, call: CallContext) -> None:
        self.flow, self.call = flow, call

    def build(
        self, method: str, url: str, body: Mapping[str, Any] | None = None
    ) -> tuple[httpx.Request, FlowEvent | None]:
        return self.flow._ps_request(self.call, method, url, body, prefer=method != "DELETE")


class PendingPoll:
    """One poll loop: the call and party it serves, the URL last answered, the pending URL,
    the deadline, the prompt's :class:`PendingControl`, what has been told or asked (the
    :data:`~.requirements.PENDING` sub-flows read and change these), and the outcome once
    it is over -- which must outlive an exception."""

    __slots__ = (
        "attempt",
        "call",
        "clarifications",
        "control",
        "deadline",
        "failure",
        "failures",
        "interaction",
        "key",
        "location",
        "outcome",
        "party",
        "prompted",
        "slowdown",
        "told",
        "url",
    )

    def __init__(
        self, call: CallContext, party: Party, key: Hashable | None, url: str, deadline: float
    ) -> None:
        self.call, self.party, self.key, self.url = call, party, key, url
        self.deadline = deadline
        self.location: str | None = None
        self.control: PendingControl | None = None
        self.outcome: str | None = None
        self.slowdown = 0.0
        self.attempt = 0
        #: Polls in a row that failed to connect or met a 502/503/504, and the last
        #: connection error (chained to the error that ends the wait).
        self.failures = 0
        self.failure: BaseException | None = None
        self.clarifications = 0
        self.prompted: set[tuple[str | None, str | None]] = set()
        self.told: set[str] = set()
        #: The interaction the person was last sent to, ``(url, code)``: every error that
        #: ends this wait carries it (:meth:`~aauth_agents.protocol.errors.AAuthError.awaiting`).
        self.interaction: tuple[str, str] | None = None

    @property
    def pending_url(self) -> str:
        """The pending URL (known once a ``202`` has been seen)."""
        assert self.location is not None
        return self.location

    def finish(self, outcome: str) -> None:
        """Record the outcome once, and tell the prompt (if any)."""
        if self.outcome is not None:
            return
        self.outcome = outcome
        if self.control is not None:
            try:
                self.control.finish(outcome)
            except Exception:  # a prompt must not break the flow
                log.exception("PendingControl.finish raised; ignored")


class DeferredResponses(MetadataDiscovery):
    """The layer that calls the PS and follows deferred responses."""

    def ps_endpoint_call(
        self,
        call: CallContext,
        endpoint: str,
        body: Mapping[str, Any] | None,
        *,
        suffix: str = "",
        expect: tuple[int, ...] = (200,),
        method: str = "POST",
    ) -> Flow[httpx.Response]:
        """POST ``body`` to the PS endpoint named ``endpoint`` (a metadata member) plus
        ``suffix``; deferred responses followed; typed errors raised. A sub-agent makes no
        governance calls: it MUST NOT call the PS (§Parent-Mediated Authorization)."""
        try:
            if self.parent is not None:
                raise ConfigurationError(
                    "a sub-agent does not call the person server; make governance calls "
                    "with its parent"
                )
            ps = yield from self.person_server(call)
            base = getattr(ps, endpoint, None)
            if not isinstance(base, str):
                raise ConfigurationError(f"the person server {ps.issuer} publishes no {endpoint}")
            response: httpx.Response = yield from self._ps_call(
                call, base + suffix, body, method=method, expect=expect
            )
            return response
        except AAuthError as exc:
            if self.config.events:
                yield Emit(FlowFailed(exc.code, exc.detail))
            raise

    def _ps_call(
        self,
        call: CallContext,
        url: str,
        body: Mapping[str, Any] | None,
        *,
        method: str = "POST",
        expect: tuple[int, ...] = (200,),
    ) -> Flow[httpx.Response]:
        """A signed call to a PS endpoint, followed through any deferred response; raises
        the typed error of a non-``expect`` final response. A call that left this request
        pending before (its :class:`PendingRequests`) polls that instead of asking again."""
        party = PersonServerParty(self, call)
        key = ("ps", method, url)
        resumed = call.pending.location(key) if call.pending is not None else None
        response = yield from self._resume(call, party, key)
        if response is None:
            resumed = None
            request, sent = self._ps_request(call, method, url, body)
            response = yield from self._send(request, sent)
        response = yield from self.poll(call, party, response, url, key=key, resumed=resumed)
        if response.status_code not in expect:
            error = self._error(response)
            if call.interaction is not None:  # (denied, expired, ... at the person's page)
                error.awaiting(*call.interaction)
            raise error
        return response

    def _resume(
        self, call: CallContext, party: Party, key: Hashable
    ) -> Flow[httpx.Response | None]:
        """Poll the pending URL the call recorded under ``key``, if any (the first poll of a
        resumed call); ``None`` when there is none, or when the server no longer knows it
        (``404``: the request is made again)."""
        location = call.pending.location(key) if call.pending is not None else None
        if location is None:
            return None
        request, sent = party.build("GET", location)
        response = yield from self._send(retryable(request), sent)
        yield from self._emit(*party.observe(response))
        if response.status_code == 404:
            log.info("the pending request %s is unknown to its server; asking again", location)
            assert call.pending is not None
            call.pending.forget(key)
            return None
        return response

    # -- polling -----------------------------------------------------------------------------

    def poll(
        self,
        call: CallContext,
        party: Party,
        response: httpx.Response,
        url: str,
        *,
        key: Hashable | None = None,
        resumed: str | None = None,
    ) -> Flow[httpx.Response]:
        """§Deferred Responses: follow ``response`` until a final (non-202) response, which
        is returned whatever its status; the caller interprets it. The pending URL is
        recorded under ``key`` in the call's :class:`PendingRequests` while it is open;
        ``resumed`` is that URL when ``response`` answered a poll of it."""
        state = PendingPoll(
            call, party, key, url, self.config.clock() + self.config.max_poll_seconds
        )
        state.location = resumed
        try:
            final: httpx.Response = yield from self._poll(state, response)
        except GeneratorExit:  # abandoned: a network error, an interrupt (no more effects)
            state.finish("aborted")
            raise
        except AAuthError as exc:
            if state.interaction is not None:
                exc.awaiting(*state.interaction)
            if state.location is not None and state.outcome is None:
                yield from self._emit_pending(PendingEnded(state.location, _outcome_of_error(exc)))
            state.finish(_outcome_of_error(exc))
            raise
        except BaseException:
            state.finish("aborted")
            raise
        finally:
            call.wait_cap = None
            call.interaction = state.interaction
        if key is not None and call.pending is not None:
            call.pending.forget(key)
        if state.location is not None:
            outcome = _final_outcome(final)
            state.finish(outcome)
            yield from self._emit_pending(PendingEnded(state.location, outcome, final.status_code))
        return final

    def _poll(self, state: PendingPoll, response: httpx.Response) -> Flow[httpx.Response]:
        """Answer, wait and poll again until a final response."""
        while True:
            status = response.status_code
            if state.party.is_ps or status == 202 or status >= 400:
                # (a resource's own answer stays unread: it may be a stream)
                yield Read(response)
            if status in RETRY_STATUSES and state.location is not None:
                response = yield from self._reconnect(state, response)
                continue
            state.failures = 0
            if status == 202:
                answered, pending = yield from self._pending(state, response)
                if answered is not None:  # (a clarification answered: its response next)
                    response = answered
                    continue
            elif status == 429 and state.location is not None:
                state.slowdown += SLOW_DOWN_STEP
                pending = "pending"
            else:
                return response
            wait = parse_retry_after(response.headers.get("retry-after"), now=self.config.clock())
            response = yield from self._poll_again(state, wait + state.slowdown, pending)

    def _pending(
        self, state: PendingPoll, response: httpx.Response
    ) -> Flow[tuple[httpx.Response | None, str]]:
        """A ``202``: note its pending URL, and answer its requirement (if any) with the
        sub-flow :data:`~.requirements.PENDING` names. Returns that sub-flow's response
        (``None``: wait and poll) and the body's ``status``."""
        if "location" in response.headers or state.location is None:
            location = resolve_location(response.headers.get("location"), base=state.url)
            if location != state.location:
                state.location = location
                if state.key is not None and state.call.pending is not None:
                    state.call.pending.remember(state.key, location, state.party)
        state.party.location = state.location
        requirement = self._requirement(response, strict=True)
        body = self._pending_body(response, requirement)
        if requirement is None:
            return None, body.status
        seen = f"{requirement.value}:{requirement.code}"
        if seen not in state.told:
            state.told.add(seen)
            yield from self._emit(self._challenge_event(state.url, 202, requirement))
        sub_flow = PENDING.get(requirement.value)
        if sub_flow is None:  # claims (an AS asks a PS, not an agent), or unknown
            raise UnsupportedRequirementError(requirement)
        answered = yield from sub_flow(self, state, requirement, body)
        return answered, body.status

    def _reconnect(self, state: PendingPoll, response: httpx.Response) -> Flow[httpx.Response]:
        """A poll whose connection failed (a :func:`~..reconnect.failure_response`) or that
        a ``502``, ``503`` or ``504`` answered: poll again after ``Retry-After`` when the
        server sent one, else after :func:`~..reconnect.backoff` -- the last try at the
        deadline itself -- reporting :class:`Reconnecting`."""
        state.failures += 1
        error = failure_of(response)
        if error is not None:
            state.failure = error
        now = self.config.clock()
        after = response.headers.get("retry-after")
        wait = parse_retry_after(after, now=now) if after is not None else backoff(state.failures)
        wait += state.slowdown
        remaining = state.deadline - now
        if 0 < remaining < wait:
            wait = remaining
        reason = type(error).__name__ if error is not None else f"HTTP {response.status_code}"
        event = Reconnecting(state.pending_url, state.failures, wait, reason)
        polled: httpx.Response = yield from self._poll_again(state, wait, "reconnecting", event)
        return polled

    def _poll_again(
        self, state: PendingPoll, wait: float, pending: str, event: FlowEvent | None = None
    ) -> Flow[httpx.Response]:
        """Wait ``wait`` seconds and poll the pending URL -- unless the person cancelled or
        the wait would pass ``max_poll_seconds``: then withdraw the request. ``event`` is
        reported instead of :class:`Polling`."""
        location = state.pending_url
        if state.control is not None and state.control.cancel_requested:
            yield from self._withdraw(state.call, state.party, location, state)
            raise RequestCancelledError("the person cancelled the request")
        if self.config.clock() + wait > state.deadline:
            # §Cancel Request: the agent gives up, so it withdraws the request.
            yield from self._withdraw(state.call, state.party, location, state, outcome="expired")
            unreachable = (
                f"; the last {state.failures} poll(s) failed: {getattr(event, 'reason', '')}"
                if state.failures
                else ""
            )
            raise PollTimeoutError(
                f"no final response from {location} within {self.config.max_poll_seconds:g}"
                f" s (max_poll_seconds){unreachable}"
            ) from state.failure
        state.attempt += 1
        if state.attempt > CONTROLLED_POLLS:
            state.call.wait_cap = None  # long polls again (see CONTROLLED_POLLS)
        yield from self._emit_pending(event or Polling(location, state.attempt, wait, pending))
        yield Sleep(wait)
        request, sent = state.party.build("GET", location)
        response = yield from self._send(retryable(request), sent)
        yield from self._emit(*state.party.observe(response))
        state.url = location
        return response

    @staticmethod
    def _pending_body(response: httpx.Response, requirement: Requirement | None) -> PendingBody:
        try:
            return parse_pending_body(response.content or None, requirement)
        except MalformedBodyError as exc:
            if requirement is not None and requirement.value in NEEDS_BODY:
                raise DeferredResponseError(exc.detail) from exc
            return PendingBody()

    # -- withdrawing -------------------------------------------------------------------------

    def _withdraw(
        self,
        call: CallContext,
        party: Party,
        location: str,
        state: PendingPoll | None = None,
        *,
        outcome: str = "cancelled",
    ) -> Flow[bool]:
        """§Cancel Request: ``DELETE`` the pending URL; the request is then over. ``False``
        when the server could not be reached (logged: the agent gives up all the same)."""
        request, sent = party.build("DELETE", location)
        response = yield from self._send(retryable(request), sent)
        unreachable = failure_of(response)
        if unreachable is not None:
            log.warning("withdrawing %s failed: %s", location, unreachable)
        elif response.status_code >= 400 and response.status_code != 410:
            log.warning("withdrawing %s: HTTP %s", location, response.status_code)
        if call.pending is not None:
            for key, open_location, _ in call.pending.entries():
                if open_location == location:
                    call.pending.forget(key)
        if state is not None:
            state.finish(outcome)
        yield from self._emit_pending(PendingEnded(location, outcome, response.status_code))
        return unreachable is None

    def withdraw(self, call: CallContext, pending: PendingRequests) -> Flow[int]:
        """Withdraw every request ``pending`` still holds (§Cancel Request); returns how
        many were withdrawn. A refusal is logged, never raised: the requests are over for
        this agent either way."""
        withdrawn = 0
        for key, location, party in pending.entries():
            pending.forget(key)
            try:
                reached = yield from self._withdraw(call, party, location)
            except Exception as exc:  # a refused signature, ...
                log.warning("withdrawing %s failed: %s", location, exc)
                continue
            withdrawn += reached
        return withdrawn


__all__ = ["DeferredResponses", "Party", "PendingPoll", "PersonServerParty"]
