"""The agent's side of AAuth, written once as a sans-I/O flow.

:class:`AgentFlow` turns one resource request into a generator of effects
(:mod:`aauth_agents.agent.effects`): it signs the request per §HTTP Message Signatures
Profile, sends it, and answers whatever the resource asks for --

* ``401 requirement=agent-token`` / ``person-token`` / ``auth-token`` (§Agent Token
  Required, §Person Token Required, §Auth Token Required): retry with the agent token, with
  a person token from the PS's ``person_token_endpoint``, or with an auth token from its
  ``auth_token_endpoint`` after §Resource Challenge Verification and before §Auth Token
  Response Verification; step-up when a request that carried an auth token is challenged;
* ``202`` deferred responses (§Deferred Responses): polling the same-origin ``Location``,
  ``Retry-After`` (default 5 s, +5 s per ``429``), ``Prefer: wait``, ``status:
  interacting``, ``requirement=interaction`` (relayed through the PS's
  ``interaction_endpoint`` first, §Relaying Through the Person Server), ``approval``,
  ``clarification`` (§Clarification Chat) and ``auth-token`` (§Deferred Delivery; a token
  pinned to an R3 document that completes a held call -- an R3 per-call approval -- is used
  for that call only), terminal ``403``/``408``/``410`` as typed errors, and
  ``max_poll_seconds``;
* ``AAuth-Access`` session tokens (§AAuth-Access), sent back as ``Authorization: AAuth``
  and covered by the signature;
* ``invalid_input`` with ``required_input`` (§Covered Components): one retry covering them;
* sub-agents (§Parent-Mediated Authorization): a flow with a ``parent`` never calls the PS
  itself. Its person-token and auth-token requests are made by the parent's flow, run inside
  this one (same driver, same client): signed with the parent's key, the parent's agent token
  in ``Signature-Key``, the sub-agent's agent token as ``subagent_token`` in the body. The
  tokens issued are checked against the sub-agent's key and kept in its own caches.

The same flows serve the governance calls (§Mission, §Permission Endpoint, §Audit
Endpoint, §Interaction Endpoint). Nothing here blocks, sleeps, awaits or opens a socket.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

import httpx

from ..clock import Clock, system_clock
from ..httpsig import SignatureKey
from ..keys import PrivateKey, PublicKey
from ..protocol.deferred import (
    MalformedBodyError,
    PendingBody,
    clarification_response,
    parse_pending_body,
    updated_request,
)
from ..protocol.encoding import loads_json_object
from ..protocol.errors import AAuthError, ConfigurationError, DiscoveryError, TokenError
from ..protocol.headers import (
    format_authorization,
    parse_aauth_access,
    parse_signature_error,
    serialize_capabilities,
)
from ..protocol.identifiers import is_server_identifier
from ..protocol.metadata import (
    PersonServerMetadata,
    ResourceMetadata,
    parse_metadata,
    well_known_url,
)
from ..protocol.requirement import (
    AGENT_TOKEN,
    APPROVAL,
    AUTH_TOKEN,
    CLARIFICATION,
    INTERACTION,
    PERSON_TOKEN,
    Requirement,
    UnsupportedRequirementError,
    parse_requirement,
)
from ..protocol.wire import WireFormatError
from ..tokens import (
    DWK_PERSON,
    DWK_RESOURCE,
    TYP_PERSON,
    AuthToken,
    ResourceToken,
    StaticIssuerKeys,
    check_auth_token_response,
    check_resource_challenge,
    peek,
)
from ..tokens.issuer_keys import IssuerKeys
from .callbacks import (
    Answer,
    Cancel,
    ClarificationRequest,
    InteractionRequest,
    PendingControl,
    UpdatedRequest,
    normalize_clarification,
)
from .effects import Emit, EventHook, Flow, Invoke, JoinFlight, Read, Send, Sleep, WaitFlight
from .errors import (
    AuthTokenVerificationError,
    ChallengeVerificationError,
    DeferredResponseError,
    ExpiredResourceTokenError,
    InteractionUnavailableError,
    NoPersonServerError,
    PersonTokenError,
    PollTimeoutError,
    RequestCancelledError,
    UserUnreachableError,
    error_for_response,
)
from .events import (
    ApprovalPending,
    ChallengeReceived,
    ClarificationAnswered,
    ClarificationAsked,
    FlowEvent,
    FlowFailed,
    InteractionRequired,
    MetadataFetched,
    PendingEnded,
    Polling,
    RequestSent,
    ResponseReceived,
    SessionUpdated,
    TokenObtained,
)
from .identity import AgentIdentity
from .pending import PendingRequests
from .polling import (
    SLOW_DOWN_STEP,
    format_prefer_wait,
    parse_retry_after,
    resolve_location,
)
from .signer import RequestSigner
from .state import AgentState, Flight, HeldToken, Outcome, ResourceInfo

log = logging.getLogger("aauth_agents.agent")

T = TypeVar("T")

#: Challenges answered for one request before the response is handed back as is.
MAX_CHALLENGE_ROUNDS = 6
#: §Clarification Limits: rounds answered before the agent withdraws the request.
MAX_CLARIFICATION_ROUNDS = 10
#: ``Prefer: wait`` while a prompt can cancel the request (:class:`PendingControl`): a
#: cancel then takes effect within this many seconds.
CONTROLLED_WAIT = 5
#: A long poll's read timeout is at least its ``Prefer: wait`` plus this margin.
POLL_READ_MARGIN = 10.0
#: §JWKS Discovery and Caching: an issuer's JWKS is refetched at most once a minute.
JWKS_REFRESH_FLOOR = 60.0
MAX_METADATA_TTL = 24 * 3600.0
_MAX_AGE = re.compile(r"(?:^|[,\s])max-age\s*=\s*\"?([0-9]{1,9})")
_CONSENT_PARAMS = (
    "justification",
    "login_hint",
    "tenant",
    "domain_hint",
    "prompt",
    "platform",
    "device",
)
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


@dataclass
class AgentConfig:
    """The settings of an :class:`~aauth_agents.agent.AAuth` (see its docstring)."""

    capabilities: tuple[str, ...] = ("interaction", "clarification")
    justification: str | None = None
    login_hint: str | None = None
    tenant: str | None = None
    domain_hint: str | None = None
    prompt: str | None = None
    platform: str | None = None
    device: str | None = None
    mission_s256: str | None = None
    on_interaction: Callable[[InteractionRequest], Any] | None = None
    on_clarification: Callable[[ClarificationRequest], Any] | None = None
    events: bool = False
    max_poll_seconds: float = 600.0
    prefer_wait: int | None = 30
    clock: Clock = system_clock
    refresh_margin: float = 60.0
    verify_token_signatures: bool = True
    metadata_ttl: float = 3600.0
    anticipate: bool = True
    pending: PendingRequests | None = None
    capabilities_header: str | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.set_capabilities(self.capabilities)

    def set_capabilities(self, capabilities: tuple[str, ...]) -> None:
        self.capabilities = tuple(dict.fromkeys(capabilities))
        self.capabilities_header = (
            serialize_capabilities(self.capabilities) if self.capabilities else None
        )

    def consent_params(self) -> dict[str, Any]:
        """§Agent Token Request's optional members, those that are set."""
        params: dict[str, Any] = {
            name: getattr(self, name) for name in _CONSENT_PARAMS if getattr(self, name)
        }
        if self.capabilities:
            params["capabilities"] = list(self.capabilities)
        return params


def resource_identifier(url: httpx.URL) -> str:
    """The origin of ``url`` as a server identifier would spell it (``https://host``, with
    ``:port`` only when not the default)."""
    return f"{url.scheme}://{url.netloc.decode('ascii')}"


def _max_age(response: httpx.Response, default: float) -> float:
    match = _MAX_AGE.search(response.headers.get("cache-control", ""))
    return min(float(match.group(1)), MAX_METADATA_TTL) if match else default


class CallContext:
    """Per-call settings: the httpx extensions (timeouts) every request of one call
    inherits, the resource it is for (``None``: a governance call), the
    :class:`~aauth_agents.agent.pending.PendingRequests` it records its pending URLs in, and
    the cap on ``Prefer: wait`` while a prompt can cancel."""

    __slots__ = ("extensions", "pending", "resource", "wait_cap")

    def __init__(
        self,
        extensions: Mapping[str, Any] | None,
        *,
        resource: str | None = None,
        pending: PendingRequests | None = None,
    ) -> None:
        timeout = (extensions or {}).get("timeout")
        self.extensions: dict[str, Any] = {"timeout": timeout} if timeout is not None else {}
        self.resource = resource
        self.pending = pending
        self.wait_cap: int | None = None

    def long_poll(self, wait: int) -> dict[str, Any]:
        """The extensions for a request sent with ``Prefer: wait=wait``: a read timeout of
        at least ``wait`` + :data:`POLL_READ_MARGIN` (the agent asked the server to hold
        the response that long)."""
        timeout = self.extensions.get("timeout")
        if not isinstance(timeout, Mapping):
            return dict(self.extensions)
        read = timeout.get("read")
        if read is None or read >= wait + POLL_READ_MARGIN:
            return dict(self.extensions)
        return {**self.extensions, "timeout": {**timeout, "read": wait + POLL_READ_MARGIN}}


class _Waiting:
    """What one poll loop knows that must outlive an exception: the pending URL, the
    deadline, the prompt's :class:`PendingControl`, and the outcome once it is over."""

    __slots__ = ("control", "deadline", "location", "outcome")

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.location: str | None = None
        self.control: PendingControl | None = None
        self.outcome: str | None = None

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


class _Party:
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


class _PersonServerParty(_Party):
    is_ps = True

    def __init__(self, flow: AgentFlow, call: CallContext) -> None:
        self.flow, self.call = flow, call

    def build(
        self, method: str, url: str, body: Mapping[str, Any] | None = None
    ) -> tuple[httpx.Request, FlowEvent | None]:
        return self.flow._ps_request(self.call, method, url, body, prefer=method != "DELETE")


class _ResourceParty(_Party):
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


class AgentFlow:
    """The flows of one agent identity over one set of caches. Stateless itself: each
    method returns a fresh generator; what persists lives in :class:`AgentState`.

    ``parent`` makes this a sub-agent's flow (§Sub-Agents): everything it needs from the PS
    goes through the parent's flow, whose events go to ``parent_events`` (the parent's
    ``on_event``). The caller has checked the pair (:class:`~aauth_agents.agent.AAuth`).

    ``http`` is the HTTP library whose ``Request`` the flow builds: ``httpx``, or ``httpx2``
    (the MCP SDK 2.x line's; same API) -- the flow itself is the same."""

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

    def _cached_credential(self, resource: str) -> HeldToken | None:
        now = self.config.clock()
        margin = self.config.refresh_margin
        held = self.state.current_auth_token(resource, now, margin)
        if held is None:
            held = self.state.person_token(resource, self.config.mission_s256, now, margin)
        return held

    # -- building and signing requests ----------------------------------------------------------

    def _new_request(
        self,
        call: CallContext,
        method: str,
        url: str,
        body: Mapping[str, Any] | None,
        *,
        prefer: bool,
    ) -> httpx.Request:
        headers: dict[str, str] = {}
        content: bytes | None = None
        if body is not None:
            content = json.dumps(body, separators=(",", ":")).encode()
            headers["Content-Type"] = "application/json"
        wait = self.config.prefer_wait if prefer else None
        if wait is not None and call.wait_cap is not None:
            wait = min(wait, call.wait_cap)
        if wait is not None:
            headers["Prefer"] = format_prefer_wait(wait)
            extensions = call.long_poll(wait)
        else:
            extensions = dict(call.extensions)
        request: httpx.Request = self.http.Request(
            method, url, headers=headers, content=content, extensions=extensions
        )
        return request

    def _sign(
        self,
        request: httpx.Request,
        credential: HeldToken,
        *,
        extra: tuple[str, ...] = (),
        cover_body: bool,
    ) -> tuple[str, ...]:
        key = self._current_key()
        added, covered = self.signer.sign_message(
            request.method,
            str(request.url),
            self.signer.coverable_headers(request.headers, extra),
            request.content or None,
            key=key,
            signature_key=credential.signature_key,
            now=self.config.clock(),
            key_id=self.state.key_thumbprint or "",
            extra_components=extra,
            cover_body=cover_body,
        )
        headers = request.headers
        for name, value in added.items():  # (Headers.update re-parses; this does not)
            headers[name] = value
        return covered

    def _sent(
        self,
        request: httpx.Request,
        credential: HeldToken,
        covered: tuple[str, ...],
        session: bool = False,
    ) -> FlowEvent | None:
        if not self.config.events:
            return None
        return RequestSent(request.method, str(request.url), credential.kind, covered, session)

    def _ps_request(
        self,
        call: CallContext,
        method: str,
        url: str,
        body: Mapping[str, Any] | None,
        *,
        prefer: bool = True,
    ) -> tuple[httpx.Request, FlowEvent | None]:
        """A request to the PS: agent token, body always covered (§Covered Components), no
        AAuth-Capabilities (§AAuth-Capabilities: not used on PS endpoints)."""
        request = self._new_request(call, method, url, body, prefer=prefer)
        credential = self.agent_credential()
        covered = self._sign(request, credential, cover_body=True)
        return request, self._sent(request, credential, covered)

    def _sign_for_resource(
        self,
        request: httpx.Request,
        info: ResourceInfo,
        credential: HeldToken,
        *,
        cover_body: bool = False,
    ) -> FlowEvent | None:
        """Session token, capabilities, then the signature with the resource's
        ``additional_signature_components``."""
        headers = request.headers
        session = self.state.session(info.resource)
        if session is not None:
            headers["Authorization"] = format_authorization(session)
        if self.config.capabilities_header is not None:
            headers["AAuth-Capabilities"] = self.config.capabilities_header
        covered = self._sign(
            request, credential, extra=info.extra_components, cover_body=cover_body
        )
        return self._sent(request, credential, covered, session is not None)

    def _observe_resource(self, resource: str, response: httpx.Response) -> list[FlowEvent]:
        """§AAuth-Access: keep the newest session token a resource sends."""
        lines = response.headers.get_list("aauth-access")
        if not lines:
            return []
        try:
            token = parse_aauth_access(lines)
        except WireFormatError as exc:
            log.warning("ignoring a malformed AAuth-Access from %s: %s", resource, exc.detail)
            return []
        replaced = self.state.set_session(resource, token)
        return [SessionUpdated(resource, replaced)] if self.config.events else []

    def _emit(self, *events: FlowEvent | None) -> Flow[None]:
        if self.config.events:
            for event in events:
                if event is not None:
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

    # -- metadata and keys -----------------------------------------------------------------------

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
            url = well_known_url(issuer, dwk)
            response = yield from self._get(call, url)
            if response.status_code != 200:
                return None
            try:
                jwks_uri = parse_metadata(dwk, response.content, expected_issuer=issuer).jwks_uri
            except (DiscoveryError, ValueError) as exc:
                log.warning("cannot use %s to verify tokens: %s", url, exc)
                return None
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
        nothing else. When it completes a held call (``held``, a 202) the token is single use: the
        agent cannot read the document to tell a per-call proposal from a class document
        (R3 §R3 Document Access Restriction), and a per-call grant is consumed by the call
        it approved (R3 §Per-Call Proposals), so it is neither cached nor presented again
        beyond that call's pending URL."""
        if self.identity.ps is None:
            raise NoPersonServerError(requirement)
        raw = requirement.resource_token
        assert raw is not None  # parse_requirement insists on it
        person_sub = presented.sub if presented.kind in ("person", "auth") else None
        resource_token = yield from self._check_challenge(call, resource, raw, person_sub)
        scopes = frozenset(resource_token.scopes)
        cached = self.state.auth_token(
            resource,
            scopes,
            resource_token.mission_s256,
            self.config.clock(),
            self.config.refresh_margin,
        )
        # Two held calls alike have alike proposals (one r3_s256) at two r3_uri values.
        pinned = (resource_token.r3_uri, resource_token.r3_s256)
        single_use = held and resource_token.r3_s256 is not None
        if cached is not None and (
            single_use or (cached.claims.get("r3_uri"), cached.claims.get("r3_s256")) != pinned
        ):
            cached = None
        if cached is not None and cached.raw != presented.raw:
            self.state.use_auth_token(resource, cached)
            yield from self._emit(
                TokenObtained("auth", resource, self._shown(cached.claims), cached=True)
            )
            return cached
        key = (
            "auth",
            resource,
            scopes,
            resource_token.mission_s256,
            pinned,
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

    @staticmethod
    def _shown(claims: Mapping[str, Any]) -> dict[str, Any]:
        return {k: claims[k] for k in _EVENT_CLAIMS if k in claims}

    # -- PS calls and deferred responses -----------------------------------------------------

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
        party = _PersonServerParty(self, call)
        key = ("ps", method, url)
        resumed = call.pending.location(key) if call.pending is not None else None
        response = yield from self._resume(call, party, key)
        if response is None:
            resumed = None
            request, sent = self._ps_request(call, method, url, body)
            response = yield from self._send(request, sent)
        response = yield from self.poll(call, party, response, url, key=key, resumed=resumed)
        if response.status_code not in expect:
            raise self._error(response)
        return response

    def _resume(
        self, call: CallContext, party: _Party, key: Hashable
    ) -> Flow[httpx.Response | None]:
        """Poll the pending URL the call recorded under ``key``, if any (the first poll of a
        resumed call); ``None`` when there is none, or when the server no longer knows it
        (``404``: the request is made again)."""
        location = call.pending.location(key) if call.pending is not None else None
        if location is None:
            return None
        request, sent = party.build("GET", location)
        response = yield from self._send(request, sent)
        yield from self._emit(*party.observe(response))
        if response.status_code == 404:
            log.info("the pending request %s is unknown to its server; asking again", location)
            assert call.pending is not None
            call.pending.forget(key)
            return None
        return response

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

    def poll(
        self,
        call: CallContext,
        party: _Party,
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
        waiting = _Waiting(self.config.clock() + self.config.max_poll_seconds)
        waiting.location = resumed
        try:
            final: httpx.Response = yield from self._poll(call, party, response, url, key, waiting)
        except GeneratorExit:  # abandoned: a network error, an interrupt (no more effects)
            waiting.finish("aborted")
            raise
        except AAuthError as exc:
            if waiting.location is not None and waiting.outcome is None:
                yield from self._emit(PendingEnded(waiting.location, _outcome_of_error(exc)))
            waiting.finish(_outcome_of_error(exc))
            raise
        except BaseException:
            waiting.finish("aborted")
            raise
        finally:
            call.wait_cap = None
        if key is not None and call.pending is not None:
            call.pending.forget(key)
        if waiting.location is not None:
            outcome = _final_outcome(final)
            waiting.finish(outcome)
            yield from self._emit(PendingEnded(waiting.location, outcome, final.status_code))
        return final

    def _poll(
        self,
        call: CallContext,
        party: _Party,
        response: httpx.Response,
        url: str,
        key: Hashable | None,
        waiting: _Waiting,
    ) -> Flow[httpx.Response]:
        clock = self.config.clock
        slowdown = 0.0
        attempt = 0
        clarifications = 0
        prompted: set[tuple[str | None, str | None]] = set()
        told: set[str] = set()
        while True:
            status = response.status_code
            if party.is_ps or status == 202 or status >= 400:
                # (a resource's own answer stays unread: it may be a stream)
                yield Read(response)
            pending = "pending"
            if status == 202:
                if "location" in response.headers or waiting.location is None:
                    location = resolve_location(response.headers.get("location"), base=url)
                    if location != waiting.location:
                        waiting.location = location
                        if key is not None and call.pending is not None:
                            call.pending.remember(key, location, party)
                location = waiting.location
                party.location = location
                requirement = self._requirement(response, strict=True)
                body = self._pending_body(response, requirement)
                pending = body.status
                if requirement is not None:
                    seen = f"{requirement.value}:{requirement.code}"
                    if seen not in told:
                        told.add(seen)
                        yield from self._emit(self._challenge_event(url, status, requirement))
                    value = requirement.value
                    if value == INTERACTION:
                        control = yield from self._interaction(
                            call, party, requirement, body, prompted, waiting
                        )
                        if control is not None:
                            waiting.control = control
                            call.wait_cap = CONTROLLED_WAIT
                    elif value == APPROVAL:
                        if "approval" not in told:
                            told.add("approval")
                            yield from self._emit(ApprovalPending(location))
                    elif value == CLARIFICATION:
                        clarifications += 1
                        response = yield from self._clarify(
                            call, party, location, body, clarifications, waiting
                        )
                        url = location
                        continue
                    elif value == AUTH_TOKEN and not party.is_ps:
                        yield from party.on_auth_token(requirement)
                    else:  # claims (an AS asks a PS, not an agent), or unknown
                        raise UnsupportedRequirementError(requirement)
                wait = parse_retry_after(response.headers.get("retry-after"), now=clock())
            elif status in (429, 503) and waiting.location is not None:
                if status == 429:
                    slowdown += SLOW_DOWN_STEP
                wait = parse_retry_after(response.headers.get("retry-after"), now=clock())
            else:
                return response
            location = waiting.location
            wait += slowdown
            if waiting.control is not None and waiting.control.cancel_requested:
                yield from self._withdraw(call, party, location, waiting)
                raise RequestCancelledError("the person cancelled the request")
            if clock() + wait > waiting.deadline:
                # §Cancel Request: the agent gives up, so it withdraws the request.
                yield from self._withdraw(call, party, location, waiting, outcome="expired")
                raise PollTimeoutError(
                    f"no final response from {location} within {self.config.max_poll_seconds:g}"
                    " s (max_poll_seconds)"
                )
            attempt += 1
            yield from self._emit(Polling(location, attempt, wait, pending))
            yield Sleep(wait)
            request, sent = party.build("GET", location)
            response = yield from self._send(request, sent)
            yield from self._emit(*party.observe(response))
            url = location

    @staticmethod
    def _pending_body(response: httpx.Response, requirement: Requirement | None) -> PendingBody:
        try:
            return parse_pending_body(response.content or None, requirement)
        except MalformedBodyError as exc:
            if requirement is not None and requirement.value == CLARIFICATION:
                raise DeferredResponseError(exc.detail) from exc
            return PendingBody()

    def _interaction(
        self,
        call: CallContext,
        party: _Party,
        requirement: Requirement,
        body: PendingBody,
        prompted: set[tuple[str | None, str | None]],
        waiting: _Waiting,
    ) -> Flow[PendingControl | None]:
        """§Interaction Required: relay through the PS's interaction endpoint when the
        interaction is not the PS's own, else (or on ``interaction_unavailable``) hand it to
        ``on_interaction``. Once per ``(url, code)``; not at all once the person is there.
        Returns what the handler gave to keep a say (a :class:`PendingControl`)."""
        target = (requirement.url, requirement.code)
        if target in prompted:
            return None
        prompted.add(target)
        url, code = requirement.url, requirement.code
        assert url is not None and code is not None  # parse_requirement insists on both
        assert waiting.location is not None
        if body.status == "interacting":
            return None
        if not party.is_ps and self.identity.ps is not None:
            if self.parent is None:
                relayed = yield from self._relay(call, url, code)
            else:  # a sub-agent reaches the PS only through its parent
                relayed = yield from self._by_parent(self.parent._relay(call, url, code))
            if relayed:
                yield from self._emit(
                    InteractionRequired(url, code, relayed=True, pending_url=waiting.location)
                )
                return None
        if self.config.on_interaction is None:
            raise UserUnreachableError(
                "the person must visit an interaction URL, and there is no on_interaction "
                "callback or person server relay to take them there"
            )
        yield from self._emit(InteractionRequired(url, code, pending_url=waiting.location))
        request = InteractionRequest(
            url,
            code,
            waiting.location,
            resource=call.resource,
            justification=self.config.justification,
            expires_in=max(0.0, waiting.deadline - self.config.clock()),
        )
        result = yield Invoke(self.config.on_interaction, (request,))
        if isinstance(result, Cancel):
            yield from self._withdraw(call, party, waiting.location, waiting)
            raise RequestCancelledError(result.reason or "the request was cancelled")
        return result if isinstance(result, PendingControl) else None

    def _relay(self, call: CallContext, url: str, code: str) -> Flow[bool]:
        """§Relaying Through the Person Server: True when the PS took the interaction on."""
        try:
            ps = yield from self.person_server(call)
        except AAuthError as exc:
            log.warning("cannot relay the interaction: %s", exc.detail)
            return False
        if ps.interaction_endpoint is None:
            return False
        body: dict[str, Any] = {"type": "interaction", "url": url, "code": code}
        if self.config.mission_s256 is not None:
            body["mission_s256"] = self.config.mission_s256
        request, sent = self._ps_request(call, "POST", ps.interaction_endpoint, body, prefer=False)
        response = yield from self._send(request, sent)
        if response.status_code in (200, 202):
            return True
        yield Read(response)
        error = self._error(response)
        if isinstance(error, UserUnreachableError):
            raise error
        if not isinstance(error, InteractionUnavailableError):
            log.warning("interaction relay failed (%s); directing the person ourselves", error.code)
        return False

    def _clarify(
        self,
        call: CallContext,
        party: _Party,
        location: str,
        body: PendingBody,
        rounds: int,
        waiting: _Waiting,
    ) -> Flow[httpx.Response]:
        """§Agent Response to Clarification: answer, update or cancel."""
        question = body.clarification or ""
        yield from self._emit(ClarificationAsked(location, question, body.options, body.timeout))
        callback = self.config.on_clarification
        if callback is None or rounds > MAX_CLARIFICATION_ROUNDS:
            yield from self._emit(
                ClarificationAnswered(location, "cancel") if self.config.events else None
            )
            yield from self._withdraw(call, party, location, waiting)
            why = (
                "no on_clarification callback"
                if callback is None
                else f"more than {MAX_CLARIFICATION_ROUNDS} clarification rounds"
            )
            raise RequestCancelledError(f"clarification asked; {why}: the request was withdrawn")
        request = ClarificationRequest(
            question, location, body.options, body.timeout, resource=call.resource
        )
        result = yield Invoke(callback, (request,))
        action = normalize_clarification(result)
        if isinstance(action, Cancel):
            yield from self._emit(
                ClarificationAnswered(location, "cancel") if self.config.events else None
            )
            yield from self._withdraw(call, party, location, waiting)
            raise RequestCancelledError(action.reason or "the request was cancelled")
        if isinstance(action, Answer):
            payload, name = clarification_response(action.text), "clarification_response"
        else:
            assert isinstance(action, UpdatedRequest)
            payload = updated_request(action.resource_token, action.justification)
            name = "updated_request"
        request_, sent = party.build("POST", location, payload)
        response = yield from self._send(request_, sent)
        yield from self._emit(
            *party.observe(response),
            ClarificationAnswered(location, name) if self.config.events else None,
        )
        if response.status_code >= 400:
            yield Read(response)
            raise self._error(response)
        return response

    def _withdraw(
        self,
        call: CallContext,
        party: _Party,
        location: str,
        waiting: _Waiting | None = None,
        *,
        outcome: str = "cancelled",
    ) -> Flow[None]:
        """§Cancel Request: ``DELETE`` the pending URL; the request is then over."""
        request, sent = party.build("DELETE", location)
        response = yield from self._send(request, sent)
        if response.status_code >= 400 and response.status_code != 410:
            log.warning("withdrawing %s: HTTP %s", location, response.status_code)
        if call.pending is not None:
            for key, open_location, _ in call.pending.entries():
                if open_location == location:
                    call.pending.forget(key)
        if waiting is not None:
            waiting.finish(outcome)
        yield from self._emit(PendingEnded(location, outcome, response.status_code))

    def withdraw(self, call: CallContext, pending: PendingRequests) -> Flow[int]:
        """Withdraw every request ``pending`` still holds (§Cancel Request); returns how
        many were withdrawn. A refusal is logged, never raised: the requests are over for
        this agent either way."""
        withdrawn = 0
        for key, location, party in pending.entries():
            pending.forget(key)
            try:
                yield from self._withdraw(call, party, location)
            except Exception as exc:  # unreachable server, refused signature, ...
                log.warning("withdrawing %s failed: %s", location, exc)
                continue
            withdrawn += 1
        return withdrawn

    # -- the resource request -----------------------------------------------------------------

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
            wants = self.state.wants(resource) or (
                "person" if info.access_mode in ("person-token", "auth-token") else None
            )
            if wants is not None and self.config.anticipate and self.identity.ps is not None:
                credential = yield from self.person_token(call, resource)
            else:
                credential = self.agent_credential()
        key = ("resource", request.method, str(request.url))
        resumed = call.pending.location(key) if call.pending is not None else None
        if resumed is not None:
            party = _ResourceParty(self, call, info, credential)
            answer = yield from self._resume(call, party, key)
            if answer is not None:
                done: httpx.Response = yield from self._deferred(
                    call, request, answer, party, key, resumed
                )
                return done
        rounds = 0
        retried: set[str] = set()
        while True:
            sent = self._sign_for_resource(request, info, credential)
            response: httpx.Response
            if sent is None:  # no events wanted: the shortest path
                response = yield Send(request)
            else:
                response = yield from self._send(request, sent)
            observed = self._observe_resource(resource, response)
            if observed:
                yield from self._emit(*observed)
            status = response.status_code
            if status == 202 and _is_deferred(response):
                party = _ResourceParty(self, call, info, credential)
                final: httpx.Response = yield from self._deferred(
                    call, request, response, party, key
                )
                return final
            if status != 401:
                if status < 400 and credential.kind == "auth":
                    self.state.use_auth_token(resource, credential)
                return response
            requirement = self._requirement(response)
            if requirement is None:
                retry = self._after_signature_error(response, info, credential, retried)
                if retry is None:
                    return response
                credential = retry
                continue
            yield from self._emit(self._challenge_event(str(request.url), status, requirement))
            rounds += 1
            if rounds > MAX_CHALLENGE_ROUNDS:
                log.warning("giving up on %s after %d challenges", request.url, rounds - 1)
                return response
            value = requirement.value
            if value == AGENT_TOKEN:
                if credential.kind == "agent":
                    return response  # it was the agent token: nothing better to offer
                credential = self.agent_credential()
            elif value == PERSON_TOKEN:
                self.state.set_wants(resource, "person")
                if self.identity.ps is None:
                    raise NoPersonServerError(requirement)
                credential = yield from self.person_token(
                    call, resource, refresh=credential.kind == "person"
                )
            elif value == AUTH_TOKEN:
                self.state.set_wants(resource, "auth")
                try:
                    credential = yield from self._auth_for_challenge(
                        call, resource, requirement, credential
                    )
                except ExpiredResourceTokenError:
                    # §Resource Token: expired before the PS saw it -- ask the resource for
                    # a fresh one, once.
                    if "expired_resource_token" in retried:
                        raise
                    retried.add("expired_resource_token")
            else:
                raise UnsupportedRequirementError(requirement)

    def _after_signature_error(
        self, response: httpx.Response, info: ResourceInfo, credential: HeldToken, retried: set[str]
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
        if error.code == "invalid_input" and error.required_input and "input" not in retried:
            retried.add("input")
            missing = tuple(c for c in error.required_input if c not in info.extra_components)
            if missing:
                info.learn(missing)
                return credential
            return None
        if (
            credential.kind != "agent"
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
        party: _ResourceParty,
        key: Hashable,
        resumed: str | None = None,
    ) -> Flow[httpx.Response]:
        """A resource's 202 (or the answer to a resumed poll of its pending URL): poll its
        pending URL; an auth token obtained meanwhile (§Deferred Delivery) is presented on
        the polls."""
        info = party.info
        final = yield from self.poll(
            call, party, response, str(request.url), key=key, resumed=resumed
        )
        rounds = 0
        while final.status_code == 401 and party.location is not None:
            requirement = self._requirement(final)
            rounds += 1
            if (
                requirement is None
                or requirement.value != AUTH_TOKEN
                or rounds > MAX_CHALLENGE_ROUNDS
            ):
                break
            yield from party.on_auth_token(requirement)
            poll, sent = party.build("GET", party.location)
            final = yield from self._send(poll, sent)
            yield from self._emit(*party.observe(final))
            final = yield from self.poll(call, party, final, party.location, key=key)
        if final.status_code in (403, 408, 410):
            raise self._error(final)
        credential = party.credential
        if final.status_code < 400 and credential.kind == "auth" and not credential.single_use:
            self.state.use_auth_token(info.resource, credential)
        return final

    # -- governance -------------------------------------------------------------------------

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



def _is_deferred(response: httpx.Response) -> bool:
    """§Deferred Responses: an AAuth ``202`` always carries ``Location`` (REQUIRED) and often
    ``AAuth-Requirement``. A ``202`` with neither is the resource's own answer (MCP's
    streamable HTTP acknowledges notifications that way) and goes back to the caller."""
    headers = response.headers
    return "location" in headers or "aauth-requirement" in headers

__all__ = [
    "AgentConfig",
    "AgentFlow",
    "resource_identifier",
]
