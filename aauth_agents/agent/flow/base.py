"""What every layer of the agent flow stands on: the agent's identity, settings and caches,
its signing key and credentials, and the primitive steps -- send, emit, read a
requirement, run one exchange for every concurrent caller, run a parent's flow inside this
one.

The flow is built in layers, each a class on the one below, each in its own module:
:class:`FlowBase` (here) → :class:`~.signing.RequestSigning` →
:class:`~.metadata.MetadataDiscovery` → :class:`~.deferred.DeferredResponses` →
:class:`~.tokens.TokenRequests` → :class:`~.resource.AgentFlow`. A layer calls only
what it or a layer below defines; what the AAuth-Requirement values decide is in
:mod:`~.requirements`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

import httpx

from ...keys import PrivateKey, PublicKey
from ...protocol.encoding import loads_json_object
from ...protocol.errors import AAuthError
from ...protocol.requirement import Requirement, parse_requirement
from ...protocol.wire import WireFormatError
from ...sansio import Flight, Outcome
from ..effects import Emit, EventHook, Flow, JoinFlight, Send, WaitFlight
from ..errors import DeferredResponseError, error_for_response
from ..events import ChallengeReceived, FlowEvent, ResponseReceived
from ..identity import AgentIdentity
from ..signer import RequestSigner
from ..state import AgentState, HeldToken
from .config import AgentConfig

if TYPE_CHECKING:
    from .resource import AgentFlow

log = logging.getLogger("aauth_agents.agent")

T = TypeVar("T")

_EVENT_CLAIMS = (
    "iss",
    "aud",
    "sub",
    "scope",
    "exp",
    "iat",
    "mission_s256",
    "tenant",
    "account",
    "ps",
    "dwk",
)


class FlowBase:
    """The state of the flows of one agent identity over one set of caches, and the
    primitive steps every layer uses. Stateless itself: each flow method returns a fresh
    generator; what persists lives in :class:`AgentState`."""

    def __init__(
        self,
        identity: AgentIdentity,
        config: AgentConfig,
        state: AgentState,
        signer: RequestSigner,
        *,
        parent: AgentFlow | None = None,
        parent_events: EventHook | None = None,
        http: Any = httpx,
    ) -> None:
        self.identity = identity
        self.config = config
        self.state = state
        self.signer = signer
        self.parent = parent
        self.parent_events = parent_events
        self.http = http
        self._key: PrivateKey | None = None
        self._public: PublicKey | None = None

    # -- keys and credentials ------------------------------------------------------------------

    def _current_key(self) -> PrivateKey:
        """The signing key; caches are flushed when it changed (§Re-authorization)."""
        key: PrivateKey = self.identity.key
        if key is not self._key:
            self._public = key.public_key
            self._key = key
            if self.state.check_key(self._public.thumbprint()):
                log.info("signing key rotated: person and auth tokens flushed")
        return key

    @property
    def public_key(self) -> PublicKey:
        self._current_key()
        assert self._public is not None
        return self._public

    def agent_credential(self) -> HeldToken:
        return self.state.agent_token(self.identity.current_token())

    def _cached_credential(self, resource: str, now: float | None = None) -> HeldToken | None:
        if now is None:
            now = self.config.clock()
        margin = self.config.refresh_margin
        held = self.state.current_auth_token(resource, now, margin)
        if held is None:
            held = self.state.person_token(resource, self.config.mission_s256, now, margin)
        return held

    # -- primitive steps -----------------------------------------------------------------------

    def _emit(self, *events: FlowEvent | None) -> Flow[None]:
        if self.config.events:
            for event in events:
                if event is not None:
                    yield Emit(event)

    def _emit_pending(self, event: FlowEvent) -> Flow[None]:
        """A pending request's own event (:class:`Polling`, :class:`PendingEnded`)."""
        if self.config.events or self.config.pending_events:
            yield Emit(event)

    def _send(self, request: httpx.Request, sent: FlowEvent | None) -> Flow[httpx.Response]:
        if sent is not None:
            yield Emit(sent)
        response: httpx.Response = yield Send(request)
        if self.config.events:
            yield Emit(ResponseReceived(request.method, str(request.url), response.status_code))
        return response

    def _error(self, response: httpx.Response) -> AAuthError:
        return error_for_response(
            response.status_code, response.headers.multi_items(), response.content
        )

    @staticmethod
    def _json(response: httpx.Response) -> dict[str, Any]:
        try:
            return loads_json_object(response.content)
        except ValueError as exc:
            raise DeferredResponseError(f"{response.request.url}: the response is {exc}") from None

    @staticmethod
    def _shown(claims: Mapping[str, Any]) -> dict[str, Any]:
        return {k: claims[k] for k in _EVENT_CLAIMS if k in claims}

    def _requirement(self, response: httpx.Response, *, strict: bool = False) -> Requirement | None:
        lines = response.headers.get_list("aauth-requirement")
        if not lines:
            return None
        try:
            return parse_requirement(lines)
        except WireFormatError as exc:
            if strict:
                raise DeferredResponseError(f"unreadable AAuth-Requirement: {exc.detail}") from exc
            log.warning("ignoring a malformed AAuth-Requirement: %s", exc.detail)
            return None

    def _challenge_event(self, url: str, status: int, requirement: Requirement) -> FlowEvent | None:
        if not self.config.events:
            return None
        params = {k: str(v) for k, v in requirement.params.items() if k != "resource-token"}
        return ChallengeReceived(url, status, requirement.value, params)

    # -- single flight ---------------------------------------------------------------------------

    def shared(self, key: Hashable, make: Callable[[], Flow[T]]) -> Flow[T]:
        """Run ``make()`` once for all concurrent callers with the same ``key``."""
        while True:
            flight: Flight
            flight, leader = yield JoinFlight(key)
            if leader:
                try:
                    value = yield from make()
                except BaseException as exc:
                    flight.finish(error=exc)
                    raise
                flight.finish(value=value)
                return value
            outcome: Outcome[T] = yield WaitFlight(flight)
            if not outcome.retry:
                result: T = outcome.get()
                return result

    # -- a parent's flow, run inside this one ------------------------------------------------

    def _by_parent(self, flow: Flow[T]) -> Flow[T]:
        """Run one of the parent's flows inside this one: the same driver and client send
        its requests; the events it reports go to the parent's ``on_event``."""
        hook = self.parent_events
        if hook is None:  # the parent reports no events
            return (yield from flow)
        value: Any = None
        error: BaseException | None = None
        while True:
            try:
                effect = flow.send(value) if error is None else flow.throw(error)
            except StopIteration as stop:
                return cast(T, stop.value)
            if isinstance(effect, Emit):
                effect = Emit(effect.event, hook)
            value, error = None, None
            try:
                value = yield effect
            except GeneratorExit:
                flow.close()
                raise
            except BaseException as exc:  # thrown into the parent's flow, which decides
                error = exc


__all__ = ["FlowBase"]
