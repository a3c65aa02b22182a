"""The resource request, the top of the flow: :class:`AgentFlow`.

A request is signed with the best credential held for its resource and sent; a ``401``
with a requirement is answered by the sub-flow :data:`~.requirements.CHALLENGES` names,
a ``401`` with a ``Signature-Error`` by covering what ``required_input`` names or dropping
a token the resource no longer takes (each once), a ``202`` by following it
(:mod:`~.deferred`) -- presenting an auth token obtained meanwhile on the polls
(:data:`~.requirements.PENDING_CHALLENGES`). Anything else is the response."""

from __future__ import annotations

import logging
from collections.abc import Hashable, Mapping
from typing import Any, TypeVar

import httpx

from ...protocol.errors import AAuthError
from ...protocol.headers import parse_signature_error
from ...protocol.requirement import Requirement, UnsupportedRequirementError
from ...protocol.wire import WireFormatError
from ..effects import Emit, Flow, Send
from ..events import FlowEvent, FlowFailed
from ..signer import split_url
from ..state import HeldToken, ResourceInfo
from .config import MAX_CHALLENGE_ROUNDS, AgentConfig, CallContext, resource_identifier
from .deferred import Party
from .requirements import CHALLENGES, PENDING_CHALLENGES
from .tokens import TokenRequests

log = logging.getLogger("aauth_agents.agent")

T = TypeVar("T")
#: What :meth:`AgentFlow.steady` signed a request with: the resource and the credential.
Signed = tuple[ResourceInfo, HeldToken]


class ResourceParty(Party):
    """A resource's pending URL: polled with the credential the request was sent with (or
    the auth token obtained for it since), covering what the resource asks to be covered."""

    def __init__(
        self, flow: AgentFlow, call: CallContext, info: ResourceInfo, credential: HeldToken
    ) -> None:
        self.flow, self.call, self.info, self.credential = flow, call, info, credential

    def build(
        self, method: str, url: str, body: Mapping[str, Any] | None = None
    ) -> tuple[httpx.Request, FlowEvent | None]:
        request = self.flow._new_request(self.call, method, url, body, prefer=method != "DELETE")
        event = self.flow._sign_for_resource(
            request, self.info, self.credential, cover_body=body is not None
        )
        return request, event

    def observe(self, response: httpx.Response) -> list[FlowEvent]:
        return self.flow._observe_resource(self.info.resource, response)

    def on_auth_token(self, requirement: Requirement) -> Flow[None]:
        self.credential = yield from self.flow._auth_for_challenge(
            self.call, self.info.resource, requirement, self.credential, held=True
        )


class Attempt:
    """One resource request between challenge rounds: what the
    :data:`~.requirements.CHALLENGES` sub-flows read and change."""

    __slots__ = ("call", "credential", "info", "retried")

    def __init__(self, call: CallContext, info: ResourceInfo, credential: HeldToken) -> None:
        self.call, self.info, self.credential = call, info, credential
        #: the one-time retries already made (``input``, ``stale``, ``expired_resource_token``)
        self.retried: set[str] = set()


def _is_deferred(response: httpx.Response) -> bool:
    """§Deferred Responses: an AAuth ``202`` always carries ``Location`` (REQUIRED) and often
    ``AAuth-Requirement``. A ``202`` with neither is the resource's own answer (MCP's
    streamable HTTP acknowledges notifications that way) and goes back to the caller."""
    headers = response.headers
    return "location" in headers or "aauth-requirement" in headers


class AgentFlow(TokenRequests):
    """The flows of one agent identity over one set of caches. Stateless itself: each
    method returns a fresh generator; what persists lives in :class:`AgentState`.

    ``parent`` makes this a sub-agent's flow (§Sub-Agents): everything it needs from the PS
    goes through the parent's flow, whose events go to ``parent_events`` (the parent's
    ``on_event``). The caller has checked the pair (:class:`~aauth_agents.agent.AAuth`).

    ``http`` is the HTTP library whose ``Request`` the flow builds: ``httpx``, or ``httpx2``
    (the MCP SDK 2.x line's; same API) -- the flow itself is the same."""

    def view(self, config: AgentConfig | None = None, *, http: Any = None) -> AgentFlow:
        """The same agent and caches under other settings (one call's handlers and
        :class:`PendingRequests`, ``AAuth.derive``) or building another library's requests
        (``http``; a sub-agent's parent flow follows)."""
        http = self.http if http is None else http
        parent = self.parent
        if parent is not None and parent.http is not http:
            parent = parent.view(http=http)
        flow = AgentFlow(
            self.identity,
            config if config is not None else self.config,
            self.state,
            self.signer,
            parent=parent,
            parent_events=self.parent_events,
            http=http,
        )
        flow._key, flow._public = self._key, self._public
        return flow

    def resource_request(self, request: httpx.Request) -> Flow[httpx.Response]:
        """Send ``request`` to its resource, answering every AAuth challenge."""
        if not self.config.events:
            return self._resource_request(request)
        return self._reporting(self._resource_request(request))

    def _reporting(self, flow: Flow[T]) -> Flow[T]:
        try:
            return (yield from flow)
        except AAuthError as exc:
            yield Emit(FlowFailed(exc.code, exc.detail))
            raise

    def _resource_request(self, request: httpx.Request) -> Flow[httpx.Response]:
        self._current_key()
        resource = resource_identifier(request.url)
        call = CallContext(request.extensions, resource=resource, pending=self.config.pending)
        info = self.state.resource_info(resource, self.config.clock())
        if info is None:
            info = yield from self.resource_info(call, resource)
        credential = self._cached_credential(resource)
        if credential is None:
            credential = yield from self._first_credential(call, info)
        key = ("resource", request.method, str(request.url))
        resumed = call.pending.location(key) if call.pending is not None else None
        if resumed is not None:
            party = ResourceParty(self, call, info, credential)
            answer = yield from self._resume(call, party, key)
            if answer is not None:
                done: httpx.Response = yield from self._deferred(
                    call, request, answer, party, key, resumed
                )
                return done
        response: httpx.Response = yield from self._rounds(
            request, Attempt(call, info, credential), key
        )
        return response

    def steady(self, request: httpx.Request) -> Signed | None:
        """The steady state -- no events wanted, no pending store, the resource's metadata and
        a credential cached: sign ``request`` as :meth:`resource_request` would first, with
        no flow, and return what it was signed with (``None``: run :meth:`resource_request`
        instead).
        The response goes to :meth:`settled`."""
        config = self.config
        if config.events or config.pending is not None:
            return None
        self._current_key()
        addressed = split_url(request.url)
        if addressed is None:
            return None  # (the flow raises, where it always did)
        resource, target = addressed
        now = config.clock()
        info = self.state.resource_info(resource, now)
        if info is None:
            return None
        credential = self._cached_credential(resource, now)
        if credential is None:
            return None
        self._sign_for_resource(request, info, credential, at=(target, now))
        return info, credential

    def settled(self, signed: Signed, response: httpx.Response) -> bool:
        """True when ``response`` to the request :meth:`steady` signed is the caller's as it
        is, as :meth:`_rounds` would decide at once; else :meth:`resource_response` takes it
        (a 401, a deferred 202, a session token to keep)."""
        status = response.status_code
        if (
            status == 401
            or "aauth-access" in response.headers
            or (status == 202 and _is_deferred(response))
        ):
            return False
        info, credential = signed
        self._succeeded(info.resource, credential, status)
        return True

    def resource_response(
        self, request: httpx.Request, signed: Signed, response: httpx.Response
    ) -> Flow[httpx.Response]:
        """The flow of a request :meth:`steady` signed and sent, from its ``response`` on."""
        info, credential = signed
        call = CallContext(request.extensions, resource=info.resource)
        key = ("resource", request.method, str(request.url))
        return self._rounds(request, Attempt(call, info, credential), key, response)

    def _succeeded(self, resource: str, credential: HeldToken, status: int) -> None:
        """A response that is the caller's: an auth token it succeeded with is presented
        first next time."""
        if status < 400 and credential.reusable_auth:
            self.state.use_auth_token(resource, credential)

    def _first_credential(self, call: CallContext, info: ResourceInfo) -> Flow[HeldToken]:
        """With nothing cached: a person token when the resource asked for one before (or
        declares such an ``access_mode``) and ``anticipate`` is on; else the agent token."""
        wants = self.state.wants(info.resource) or (
            "person" if info.access_mode in ("person-token", "auth-token") else None
        )
        if wants is not None and self.config.anticipate and self.identity.ps is not None:
            token: HeldToken = yield from self.person_token(call, info.resource)
            return token
        return self.agent_credential()

    def _rounds(
        self,
        request: httpx.Request,
        attempt: Attempt,
        key: Hashable,
        received: httpx.Response | None = None,
    ) -> Flow[httpx.Response]:
        """Sign, send, and answer challenges until a response is the caller's (starting
        from ``received`` when the request was signed and sent already)."""
        resource = attempt.info.resource
        rounds = 0
        while True:
            credential = attempt.credential
            response: httpx.Response
            if received is not None:
                response, received = received, None
            else:
                sent = self._sign_for_resource(request, attempt.info, credential)
                if sent is None:  # no events wanted: the shortest path
                    response = yield Send(request)
                else:
                    response = yield from self._send(request, sent)
            observed = self._observe_resource(resource, response)
            if observed:
                yield from self._emit(*observed)
            status = response.status_code
            if status == 202 and _is_deferred(response):
                party = ResourceParty(self, attempt.call, attempt.info, credential)
                final: httpx.Response = yield from self._deferred(
                    attempt.call, request, response, party, key
                )
                return final
            if status != 401:
                self._succeeded(resource, credential, status)
                return response
            requirement = self._requirement(response)
            if requirement is None:
                retry = self._after_signature_error(response, attempt)
                if retry is None:
                    return response
                attempt.credential = retry
                continue
            yield from self._emit(self._challenge_event(str(request.url), status, requirement))
            rounds += 1
            if rounds > MAX_CHALLENGE_ROUNDS:
                log.warning("giving up on %s after %d challenges", request.url, rounds - 1)
                return response
            sub_flow = CHALLENGES.get(requirement.value)
            if sub_flow is None:
                raise UnsupportedRequirementError(requirement)
            retry = yield from sub_flow(self, attempt, requirement)
            if retry is None:
                return response
            attempt.credential = retry

    def _after_signature_error(
        self, response: httpx.Response, attempt: Attempt
    ) -> HeldToken | None:
        """A 401 without a requirement: cover what ``required_input`` names, or drop a
        cached token the resource no longer accepts -- each once."""
        lines = response.headers.get_list("signature-error")
        if not lines:
            return None
        try:
            error = parse_signature_error(lines)
        except WireFormatError:
            return None
        info, credential, retried = attempt.info, attempt.credential, attempt.retried
        if error.code == "invalid_input" and error.required_input and "input" not in retried:
            retried.add("input")
            missing = tuple(c for c in error.required_input if c not in info.extra_components)
            if missing:
                info.learn(missing)
                return credential
            return None
        if (
            not credential.is_agent_token
            and error.code in ("expired_jwt", "invalid_jwt", "unknown_key")
            and "stale" not in retried
        ):
            retried.add("stale")
            self.state.drop(info.resource, credential)
            return self._cached_credential(info.resource) or self.agent_credential()
        return None

    def _deferred(
        self,
        call: CallContext,
        request: httpx.Request,
        response: httpx.Response,
        party: ResourceParty,
        key: Hashable,
        resumed: str | None = None,
    ) -> Flow[httpx.Response]:
        """A resource's 202 (or the answer to a resumed poll of its pending URL): poll its
        pending URL; an auth token obtained meanwhile (§Deferred Delivery) is presented on
        the polls."""
        final = yield from self.poll(
            call, party, response, str(request.url), key=key, resumed=resumed
        )
        rounds = 0
        while final.status_code == 401 and party.location is not None:
            requirement = self._requirement(final)
            rounds += 1
            sub_flow = (
                PENDING_CHALLENGES.get(requirement.value) if requirement is not None else None
            )
            if sub_flow is None or rounds > MAX_CHALLENGE_ROUNDS:
                break
            assert requirement is not None
            yield from sub_flow(party, requirement)
            poll, sent = party.build("GET", party.location)
            final = yield from self._send(poll, sent)
            yield from self._emit(*party.observe(final))
            final = yield from self.poll(call, party, final, party.location, key=key)
        if final.status_code in (403, 408, 410):
            raise self._error(final)
        credential = party.credential
        if final.status_code < 400 and credential.reusable_auth:
            self.state.use_auth_token(party.info.resource, credential)
        return final


__all__ = ["AgentFlow", "Attempt", "ResourceParty"]
