"""``httpx.Auth`` classes for agents: :class:`AAuth` handles every AAuth challenge by
itself; :class:`SignedAuth` only signs.

Usage::

    auth = AAuth(identity, prompts=TerminalPrompts())
    with auth.client() as client:                 # httpx.Client(auth=auth, ...)
        client.get("https://resource.example/api")

    async with auth.async_client() as client:     # httpx.AsyncClient(auth=auth, ...)
        await client.get("https://resource.example/api")

Any httpx client works with ``auth=auth`` -- ``httpx.Client(auth=auth)`` with httpx's
defaults included: a long poll (``Prefer: wait=N`` to the PS or a pending URL) is sent with
a read timeout of at least N + 10 s whatever the client's timeout (an unlimited one stays
unlimited), and the person's waits are long polls, so a person taking a minute costs a few
round trips. httpx counts every round trip of an authentication flow against the client's
``max_redirects`` (20 by default): a plain client lasts about six minutes of one person's
wait at a PS that holds polls for 30 s (ours does; a dozen polls at one that does not),
and raises ``httpx.TooManyRedirects`` past that. :meth:`AAuth.client` sets what a wait of up
to ``max_poll_seconds`` needs (:func:`client_options`: ``max_redirects`` of
:data:`MAX_ROUNDS`, a 30 s timeout), and sends through a
:class:`~aauth_agents.agent.reconnect.ReconnectingTransport`, so that a poll cut by a server
restart is repeated with backoff rather than ending the call (a plain
``httpx.Client(auth=auth)`` gets that with ``transport=ReconnectingTransport(...)``).

A sub-agent (§Sub-Agents) is given its parent; every token it needs from the PS is requested
by the parent on its behalf (§Parent-Mediated Authorization)::

    worker = AAuth(sub_identity, parent=auth)
    client.get("https://resource.example/api", auth=worker)

One :class:`AAuth` holds the caches (person tokens, auth tokens, session tokens, metadata)
and can serve any number of clients, sync and async, at once. Its flow is written once
(:mod:`aauth_agents.agent.flow`); ``sync_auth_flow`` and ``async_auth_flow`` only choose the
driver that executes its effects (:mod:`aauth_agents.agent.effects`).

Where the person is asked is a *prompt surface* (:mod:`aauth_agents.prompts`:
terminal, notebook widget, chat; ``AAuth(identity, prompts=TerminalPrompts())``) or the two
callbacks. Given neither, the agent still reaches the person: the link and code go to
stderr (``TerminalPrompts(json_lines=False)``: on a terminal, Enter opens the browser;
elsewhere, plain sentences). ``AAuth(identity, unattended=True)`` says nobody is there: an
interaction then raises :class:`~aauth_agents.agent.errors.UserUnreachableError`, which,
like every error that ends a wait on the person, carries ``interaction_url`` and
``interaction_code``. :meth:`AAuth.derive` gives one call (a tool call, a conversation) its own
surface, event hook and :class:`~aauth_agents.agent.pending.PendingRequests` while sharing
the caches; :meth:`AAuth.withdraw` withdraws what such a call left pending.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import AsyncGenerator, Callable, Generator, Iterable
from typing import TYPE_CHECKING, Any

import httpx

from ..clock import Clock, system_clock
from ..httpsig import SignatureKey
from ..keys import PrivateKey
from ..network import LocalNetwork
from ..protocol.errors import ConfigurationError
from ..protocol.headers import serialize_capabilities
from ..protocol.mission import validate_s256
from ..protocol.registry import validate_device, validate_platform
from ..protocol.wire import WireFormatError
from .callbacks import (
    ClarificationCallback,
    InteractionCallback,
    PromptSurface,
    clarification_handler,
    interaction_handler,
)
from .effects import (
    EventHook,
    Runtime,
    SleepFunction,
    async_resource_flow,
    run_async,
    run_sync,
    sync_resource_flow,
)
from .events import FlowEvent
from .flow import AgentConfig, AgentFlow, CallContext
from .identity import AgentIdentity
from .pending import PendingRequests
from .reconnect import ReconnectingTransport
from .signer import RequestSigner
from .state import AgentState

if TYPE_CHECKING:
    from .governance import AsyncPersonServerClient, MissionApproval, PersonServerClient
    from .httpx2_auth import AAuthHttpx2

log = logging.getLogger("aauth_agents.agent")

#: Round trips one call may take (httpx's ``max_redirects`` counts an auth flow's rounds):
#: enough for ``max_poll_seconds`` of polling at one poll a second.
MAX_ROUNDS = 1000
#: Seconds for connect, write and pool; a long poll's read timeout is raised by the flow
#: to its ``Prefer: wait`` plus a margin.
DEFAULT_TIMEOUT = 30.0


def client_options(**overrides: Any) -> dict[str, Any]:
    """The httpx client options an AAuth agent needs, with ``overrides``: ``max_redirects``
    of :data:`MAX_ROUNDS` (a wait for a person takes many rounds of one request), a
    :data:`DEFAULT_TIMEOUT` second timeout (httpx's default of 5 s is shorter than a PS's
    answer may take), and the ``transport`` (the given one, or the default one) inside a
    :class:`~aauth_agents.agent.reconnect.ReconnectingTransport`, so that polling rides out
    a server restart (for ``httpx`` and ``httpx2`` clients alike)."""
    options = {"timeout": DEFAULT_TIMEOUT, "max_redirects": MAX_ROUNDS, **overrides}
    transport = options.get("transport")
    if not isinstance(transport, ReconnectingTransport):
        options["transport"] = ReconnectingTransport(transport, **options)
    return options


def _checked(name: str, value: str | None, check: Callable[[object], str]) -> str | None:
    if value is None:
        return None
    try:
        return check(value)
    except WireFormatError as exc:
        raise ConfigurationError(f"{name}: {exc.detail}") from exc


class AAuth(httpx.Auth):
    """An AAuth agent for ``httpx.Client`` and ``httpx.AsyncClient``.

    Every request is signed with ``identity``'s key (§HTTP Message Signatures Profile) and
    carries ``AAuth-Capabilities``; challenges are answered as §Requirement Responses and
    §Deferred Responses describe (see :mod:`aauth_agents.agent.flow`).

    ``capabilities`` -- what the agent declares (``AAuth-Capabilities`` on resource requests,
    ``capabilities`` in PS token requests). ``justification``, ``login_hint``, ``tenant``,
    ``domain_hint``, ``prompt``, ``platform``, ``device`` -- sent with token requests
    (§Agent Token Request). ``mission_s256`` -- the mission person tokens are requested under.
    ``prompts`` -- where the person is asked (a
    :class:`~aauth_agents.agent.callbacks.PromptSurface`: ``TerminalPrompts()``,
    ``NotebookPrompts()``, ``ChatPrompts()`` from :mod:`aauth_agents.prompts`); or, instead,
    ``on_interaction(url, code)`` and ``on_clarification(question, options, timeout)`` (see
    :mod:`aauth_agents.agent.callbacks`; sync or async). With neither ``prompts`` nor
    ``on_interaction``, the terminal's prompts on stderr (plain sentences without a
    terminal). ``unattended`` -- no person is at hand: no default prompt, and an interaction
    raises :class:`~aauth_agents.agent.errors.UserUnreachableError` (its
    ``interaction_url`` and ``interaction_code`` say where a person could still decide).
    ``on_event(event)`` -- receives a :class:`~aauth_agents.agent.events.FlowEvent` per
    step. ``max_poll_seconds`` -- the longest the agent polls one pending request.
    ``prefer_wait`` -- ``Prefer: wait=N`` on PS requests and polls (``None``: not sent); such
    a request reads for at least N + 10 s, whatever the client's timeout (httpx's default is
    5 s). ``clock`` -- time source; ``sleep`` -- waits between polls (default ``time.sleep``
    / ``anyio.sleep``; sync or async).
    ``refresh_margin`` -- a cached token is not used within this many seconds of its
    ``exp``. ``verify_token_signatures`` -- also check resource-token and auth-token
    signatures against the issuers' JWKS (the claims are always checked).
    ``metadata_ttl`` -- how long metadata is kept when the server sends no ``max-age``.
    ``anticipate`` -- once a resource has asked for a person or auth token (or declares such
    an ``access_mode``), start every later request to it by obtaining a person token, which
    saves a round trip; ``False``: a request starts with the credential the agent holds and
    waits for the person only when it is itself challenged, so that a request that needs no
    more (a ping, a notification) never waits on another one's consent -- what a proxy
    carrying many callers' requests wants.

    Polls ride out a server restart (§Deferred Responses: a poll is repeated after a
    connection error, ``502``, ``503`` or ``504``, within ``max_poll_seconds``) only through
    a client whose transport is a
    :class:`~aauth_agents.agent.reconnect.ReconnectingTransport`: :meth:`client`,
    :meth:`async_client`, the MCP and LangChain clients. A plain
    ``httpx.Client(auth=AAuth(...))`` needs ``transport=ReconnectingTransport(...)``:
    httpx closes an ``Auth`` flow when its transport raises, so the flow cannot repeat the
    poll itself; the connection error then ends the call and carries a note saying so (an
    async client logs it as a warning).

    ``network`` -- a :class:`~aauth_agents.network.LocalNetwork` (development: identifiers
    mapped to loopback): :meth:`client` and :meth:`async_client` connect through it when no
    ``transport`` is given, and the interaction link the person is given (``on_interaction``,
    ``prompts``) is the one a browser on this machine reaches (its ``browser_url``); what is
    signed and relayed to the PS is unchanged. When ``network`` is not given and
    ``trust_env`` is true (the default, as httpx reads its proxy variables), the network file
    ``$AAUTH_AGENTS_NETWORK`` names is used, if that variable is set (``aauth-agents dev``
    prints it; a variable naming no file is a ``ConfigurationError``); ``trust_env=False``
    ignores the environment.

    ``parent`` -- for a sub-agent (its agent token carries ``parent_agent``, §Sub-Agents): the
    :class:`AAuth` of that parent, a top-level agent with the same PS. The sub-agent never
    calls the PS: the parent's flow makes its person-token and auth-token requests
    (``subagent_token``, §Parent-Mediated Authorization), interaction relays included, with
    the parent's settings and callbacks (consent surfaces for the parent) -- except a
    ``justification`` set here, which is sent instead of the parent's. The tokens are bound
    to the sub-agent's key, checked against it and cached here. ``mission_s256`` defaults to
    the parent's at construction. A sub-agent has no governance calls.
    """

    requires_request_body = True  # the body is signed (content-digest)
    requires_response_body = False  # read only when the flow inspects it: streams flow on

    def __init__(
        self,
        identity: AgentIdentity,
        *,
        parent: AAuth | None = None,
        capabilities: Iterable[str] = ("interaction", "clarification"),
        justification: str | None = None,
        login_hint: str | None = None,
        tenant: str | None = None,
        domain_hint: str | None = None,
        prompt: str | None = None,
        platform: str | None = None,
        device: str | None = None,
        mission_s256: str | None = None,
        prompts: PromptSurface | None = None,
        on_interaction: InteractionCallback | None = None,
        on_clarification: ClarificationCallback | None = None,
        unattended: bool = False,
        on_event: Callable[[FlowEvent], None] | None = None,
        max_poll_seconds: float = 600,
        prefer_wait: int | None = 30,
        clock: Clock = system_clock,
        sleep: SleepFunction | None = None,
        refresh_margin: float = 60,
        verify_token_signatures: bool = True,
        metadata_ttl: float = 3600,
        anticipate: bool = True,
        network: LocalNetwork | None = None,
        trust_env: bool = True,
    ) -> None:
        _check_arguments(identity, parent, max_poll_seconds, prefer_wait)
        if network is None and trust_env:
            network = LocalNetwork.from_env()
        #: The local network clients connect through (``None``: the real one).
        self.network = network
        _check_prompts(prompts, on_interaction, on_clarification)
        if parent is not None and mission_s256 is None:
            mission_s256 = parent.mission_s256
        surface, on_event, every = _hooks(prompts, on_interaction, unattended, parent, on_event)
        self.identity = identity
        self.parent = parent
        self._root: AAuth = self
        self.config = AgentConfig(
            capabilities=tuple(capabilities),
            **_consent(justification, login_hint, tenant, domain_hint, prompt, platform, device),
            mission_s256=_checked_mission(mission_s256),
            on_interaction=_interaction(surface, on_interaction),
            browser_url=network.browser_url if network is not None else None,
            on_clarification=_clarification(surface, on_clarification),
            events=every,
            pending_events=on_event is not None,
            max_poll_seconds=float(max_poll_seconds),
            prefer_wait=prefer_wait,
            clock=clock,
            refresh_margin=float(refresh_margin),
            verify_token_signatures=verify_token_signatures,
            metadata_ttl=float(metadata_ttl),
            anticipate=bool(anticipate),
        )
        self._assemble(sleep, on_event)

    def _assemble(self, sleep: SleepFunction | None, on_event: EventHook | None) -> None:
        """The caches, the flow over them (a sub-agent's runs its parent's inside), and
        what the drivers need to run it."""
        parent = self.parent
        self.state = AgentState()
        self._httpx2: AAuthHttpx2 | None = None
        self.flow: AgentFlow = AgentFlow(
            self.identity,
            self.config,
            self.state,
            RequestSigner(),
            parent=parent.flow if parent is not None else None,
            parent_events=parent.runtime.on_event if parent is not None else None,
        )
        self.runtime: Runtime = Runtime(
            sleep=sleep,
            on_event=on_event,
            thread_flights=self.state.thread_flights,
            async_flights=self.state.async_flights,
        )

    # -- httpx.Auth ------------------------------------------------------------------------

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, Any]:
        return sync_resource_flow(self.flow, self.runtime, request)

    def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        return async_resource_flow(self.flow, self.runtime, request)

    # -- state -------------------------------------------------------------------------------

    @property
    def mission_s256(self) -> str | None:
        """The mission person tokens are requested under (``None``: no mission)."""
        return self.config.mission_s256

    @mission_s256.setter
    def mission_s256(self, value: str | None) -> None:
        checked = _checked_mission(value)
        self.config.mission_s256 = checked
        self._root.config.mission_s256 = checked  # a derived view's mission is its root's

    @property
    def capabilities(self) -> tuple[str, ...]:
        return self.config.capabilities

    @property
    def root(self) -> AAuth:
        """The :class:`AAuth` this one was derived from (itself when it was not)."""
        return self._root

    def adopt_mission(self, approval: MissionApproval) -> None:
        """Work under an approved mission: its ``s256`` names the mission in person token
        requests, the PS's ``capabilities`` are added to the agent's (§AAuth-Capabilities),
        and the approval's ``person_tokens`` are cached (each checked first; one that is not
        for this agent, resource and mission is skipped)."""
        self.mission_s256 = approval.s256
        for config in {id(c): c for c in (self.config, self._root.config)}.values():
            config.set_capabilities((*config.capabilities, *approval.capabilities))
        for resource, token in approval.person_tokens.items():
            try:
                self.flow.adopt_person_token(resource, token, approval.s256)
            except Exception as exc:
                log.warning("mission person token for %s skipped: %s", resource, exc)

    def session_token(self, resource: str) -> str | None:
        """The AAuth-Access session token held for ``resource`` (an identifier), if any."""
        return self.state.session(resource)

    def clear_cache(self) -> None:
        """Forget every person token, auth token, session token and metadata document."""
        self.state.flush()

    # -- one call's view --------------------------------------------------------------------

    def derive(
        self,
        *,
        prompts: PromptSurface | None = None,
        on_interaction: InteractionCallback | None = None,
        on_clarification: ClarificationCallback | None = None,
        on_event: Callable[[FlowEvent], None] | None = None,
        pending: PendingRequests | None = None,
    ) -> AAuth:
        """An :class:`AAuth` for one call or conversation: it shares this one's identity,
        caches and single flights (a token one obtains, the other uses), settings and
        mission, but asks the person through ``prompts`` (or the two callbacks) when given,
        also reports its events to ``on_event`` (besides this one's), and records what it
        leaves pending in ``pending`` (resume it by deriving again with the same store, or
        withdraw it with :meth:`withdraw`). Cheap: no I/O, no key work."""
        _check_prompts(prompts, on_interaction, on_clarification)
        hook = _chain(self.runtime.on_event, on_event, prompts.event if prompts else None)
        every_event = self.config.events or on_event is not None or prompts is not None
        changes: dict[str, Any] = {
            "events": every_event,
            "pending_events": hook is not None,
            "pending": pending,
        }
        if prompts is not None or on_interaction is not None:
            changes["on_interaction"] = _interaction(prompts, on_interaction)
        if prompts is not None or on_clarification is not None:
            changes["on_clarification"] = _clarification(prompts, on_clarification)
        view = object.__new__(AAuth)
        view.identity, view.parent, view.state = self.identity, self.parent, self.state
        view.network = self.network
        view._root = self._root
        view.config = copy.copy(self.config)  # (replace() would serialise the capabilities)
        for name, value in changes.items():
            setattr(view.config, name, value)
        view.flow = self.flow.view(view.config)
        view._httpx2 = None
        view.runtime = copy.copy(self.runtime)
        view.runtime.on_event = hook
        return view

    def withdraw(self, pending: PendingRequests, client: httpx.Client) -> int:
        """Withdraw every request ``pending`` holds (``DELETE``, §Cancel Request) through
        ``client``; returns how many were withdrawn (a refusal is logged, not raised)."""
        call = CallContext({"timeout": client.timeout.as_dict()})
        flow = self.flow_for(client).withdraw(call, pending)
        withdrawn: int = run_sync(flow, client, self.runtime)
        return withdrawn

    async def awithdraw(self, pending: PendingRequests, client: httpx.AsyncClient) -> int:
        """:meth:`withdraw` through an ``httpx.AsyncClient`` (or an ``httpx2`` one)."""
        call = CallContext({"timeout": client.timeout.as_dict()})
        flow = self.flow_for(client).withdraw(call, pending)
        withdrawn: int = await run_async(flow, client, self.runtime)
        return withdrawn

    def flow_for(self, client: object) -> AgentFlow:
        """:attr:`flow`, building the requests of ``client``'s HTTP library (httpx, or
        httpx2: :meth:`httpx2`)."""
        if isinstance(client, (httpx.Client, httpx.AsyncClient)):
            return self.flow
        return self.httpx2().flow

    def client(self, **options: Any) -> httpx.Client:
        """An ``httpx.Client`` signing with this agent (``auth=self``) with
        :func:`client_options`; ``options`` go to ``httpx.Client`` (``transport``,
        ``timeout``, ``headers``, ...). Without a ``transport``, it connects through
        :attr:`network` when there is one."""
        if "transport" not in options and self.network is not None:
            options["transport"] = self.network.transport()
        return httpx.Client(**client_options(auth=self, **options))

    def async_client(self, **options: Any) -> httpx.AsyncClient:
        """:meth:`client` as an ``httpx.AsyncClient``."""
        if "transport" not in options and self.network is not None:
            options["transport"] = self.network.async_transport()
        return httpx.AsyncClient(**client_options(auth=self, **options))

    def httpx2(self) -> AAuthHttpx2:
        """This agent as an ``httpx2.Auth`` (the MCP SDK 2.x line's HTTP library): the same
        flow and caches (:mod:`aauth_agents.agent.httpx2_auth`; needs ``httpx2``)."""
        if self._httpx2 is None:
            from .httpx2_auth import AAuthHttpx2

            self._httpx2 = AAuthHttpx2(self)
        return self._httpx2

    def governance(self, client: httpx.Client) -> PersonServerClient:
        """Governance calls to the agent's PS through ``client`` (see
        :class:`~aauth_agents.agent.governance.PersonServerClient`)."""
        from .governance import PersonServerClient

        return PersonServerClient(self, client)

    def async_governance(self, client: httpx.AsyncClient) -> AsyncPersonServerClient:
        """:meth:`governance` for ``httpx.AsyncClient``."""
        from .governance import AsyncPersonServerClient

        return AsyncPersonServerClient(self, client)


def _check_arguments(
    identity: AgentIdentity,
    parent: AAuth | None,
    max_poll_seconds: float,
    prefer_wait: int | None,
) -> None:
    """What :class:`AAuth` refuses before it builds anything (the prompts aside)."""
    if not isinstance(identity, AgentIdentity):
        raise ConfigurationError("AAuth needs an AgentIdentity")
    if max_poll_seconds <= 0:
        raise ConfigurationError("max_poll_seconds must be positive")
    if prefer_wait is not None and (isinstance(prefer_wait, bool) or prefer_wait < 0):
        raise ConfigurationError("prefer_wait must be a non-negative integer or None")
    _check_parent(identity, parent)


def _check_prompts(
    prompts: PromptSurface | None,
    on_interaction: InteractionCallback | None,
    on_clarification: ClarificationCallback | None,
) -> None:
    if prompts is not None and (on_interaction is not None or on_clarification is not None):
        raise ConfigurationError("give prompts, or on_interaction / on_clarification, not both")


def _surface(
    prompts: PromptSurface | None,
    on_interaction: InteractionCallback | None,
    unattended: bool,
    parent: AAuth | None,
) -> PromptSurface | None:
    """``prompts``, or the prompt of an agent given none (nor ``on_interaction``): the
    person is always shown the link and code -- the terminal's prompts, plain sentences on
    stderr without a terminal. No default for a sub-agent (its parent asks) or an
    ``unattended`` agent."""
    if unattended:
        if prompts is not None or on_interaction is not None:
            raise ConfigurationError("an unattended agent has no prompts or on_interaction")
        return None
    if prompts is not None or on_interaction is not None or parent is not None:
        return prompts
    # The one place the agent takes something from the prompts layer above it: a default.
    from ..prompts.terminal import TerminalPrompts

    return TerminalPrompts(json_lines=False)


def _hooks(
    prompts: PromptSurface | None,
    on_interaction: InteractionCallback | None,
    unattended: bool,
    parent: AAuth | None,
    on_event: EventHook | None,
) -> tuple[PromptSurface | None, EventHook | None, bool]:
    """The surface (:func:`_surface`), the event hook (``on_event`` and the surface's), and
    whether the flow emits every event: only for ``on_event`` or given ``prompts`` -- the
    default prompt needs just a pending request's own events (``pending_events``)."""
    surface = _surface(prompts, on_interaction, unattended, parent)
    hook = _chain(on_event, surface.event if surface is not None else None)
    return surface, hook, on_event is not None or prompts is not None


def _consent(
    justification: str | None,
    login_hint: str | None,
    tenant: str | None,
    domain_hint: str | None,
    prompt: str | None,
    platform: str | None,
    device: str | None,
) -> dict[str, Any]:
    """The :class:`AgentConfig` members sent with token requests (§Agent Token Request),
    ``platform`` and ``device`` checked against their registries."""
    return {
        "justification": justification,
        "login_hint": login_hint,
        "tenant": tenant,
        "domain_hint": domain_hint,
        "prompt": prompt,
        "platform": _checked("platform", platform, validate_platform),
        "device": _checked("device", device, validate_device),
    }


def _check_parent(identity: AgentIdentity, parent: AAuth | None) -> None:
    """§Sub-Agents: a sub-agent (``parent_agent`` in its token) acts only through its parent,
    a top-level agent named by that claim with the same PS (§Single-Level Depth)."""
    if parent is None:
        if identity.parent_agent is not None:
            raise ConfigurationError(
                f"{identity.agent_id} is a sub-agent of {identity.parent_agent}: it MUST NOT "
                "call the person server, so its AAuth needs parent= (its parent's AAuth)"
            )
        return
    if not isinstance(parent, AAuth):
        raise ConfigurationError("parent must be the parent agent's AAuth")
    if parent.identity.parent_agent is not None:
        raise ConfigurationError(
            f"the parent {parent.identity.agent_id} is itself a sub-agent: sub-agents have "
            "no sub-agents (§Single-Level Depth)"
        )
    if identity.parent_agent is None:
        raise ConfigurationError(
            f"{identity.agent_id} is not a sub-agent: its agent token has no parent_agent"
        )
    if identity.parent_agent != parent.identity.agent_id:
        raise ConfigurationError(
            f"{identity.agent_id} is a sub-agent of {identity.parent_agent}, "
            f"not of {parent.identity.agent_id}"
        )
    if identity.ps != parent.identity.ps:
        raise ConfigurationError(
            f"the sub-agent's person server ({identity.ps}) is not its parent's "
            f"({parent.identity.ps})"
        )
    if identity.key.public_key.same_key(parent.identity.key.public_key):
        raise ConfigurationError("a sub-agent has a key of its own, not its parent's")


def _chain(*hooks: EventHook | None) -> EventHook | None:
    """One event hook calling each of ``hooks``, each guarded: an observer's failure breaks
    neither the flow nor the other observers."""
    present = [hook for hook in hooks if hook is not None]
    if len(present) <= 1:
        return present[0] if present else None

    def each(event: FlowEvent) -> None:
        for hook in present:
            try:
                hook(event)
            except Exception:
                log.exception("on_event raised; ignored")

    return each


def _interaction(
    prompts: PromptSurface | None, callback: InteractionCallback | None
) -> Callable[..., Any] | None:
    if prompts is not None:
        return prompts.interaction
    return interaction_handler(callback) if callback is not None else None


def _clarification(
    prompts: PromptSurface | None, callback: ClarificationCallback | None
) -> Callable[..., Any] | None:
    """The callback when given (beside the default prompt, it wins), else the surface's."""
    if callback is not None:
        return clarification_handler(callback)
    return prompts.clarification if prompts is not None else None


def _checked_mission(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return validate_s256(value)
    except WireFormatError as exc:
        raise ConfigurationError(f"mission_s256: {exc.detail}") from exc


class SignedAuth(httpx.Auth):
    """Signs every request (§Signing (Agent)) and handles no challenge -- the counterpart of
    the TypeScript ``createSignedFetch``.

    ``identity`` is an :class:`~aauth_agents.agent.AgentIdentity` (its agent token, refreshed
    as it nears expiry) or a ``(key, signature_key)`` pair, e.g. ``(key,
    SignatureKey.from_jwt(token))`` or a pseudonymous ``SignatureKey.from_public_key(...)``.
    ``capabilities`` are declared in ``AAuth-Capabilities`` (none by default: a client that
    answers no challenge can drive no interaction); ``extra_components`` are covered besides
    the profile's (a resource's ``additional_signature_components``); ``cover_body`` covers
    ``content-type`` and ``content-digest`` on every request with a body (as PS and AS
    requests require).
    """

    requires_request_body = True

    def __init__(
        self,
        identity: AgentIdentity | tuple[PrivateKey, SignatureKey],
        *,
        capabilities: Iterable[str] = (),
        extra_components: Iterable[str] = (),
        cover_body: bool = False,
        clock: Clock = system_clock,
    ) -> None:
        if isinstance(identity, AgentIdentity):
            self._identity: AgentIdentity | None = identity
            self._pair: tuple[PrivateKey, SignatureKey] | None = None
        elif (
            isinstance(identity, tuple)
            and len(identity) == 2
            and isinstance(identity[0], PrivateKey)
            and isinstance(identity[1], SignatureKey)
        ):
            self._identity, self._pair = None, identity
        else:
            raise ConfigurationError(
                "SignedAuth needs an AgentIdentity or (PrivateKey, SignatureKey)"
            )
        caps = tuple(dict.fromkeys(capabilities))
        self._capabilities = serialize_capabilities(caps) if caps else None
        self._extra = tuple(extra_components)
        self._cover_body = cover_body
        self._clock = clock
        self._signer = RequestSigner()

    def _material(self) -> tuple[PrivateKey, SignatureKey]:
        if self._identity is not None:
            token = self._identity.current_token()
            return self._identity.key, SignatureKey.from_jwt(token)
        assert self._pair is not None
        return self._pair

    def sign(self, request: httpx.Request) -> tuple[str, ...]:
        """Add the signature headers to ``request``; returns the covered components."""
        key, signature_key = self._material()
        if self._capabilities is not None:
            request.headers["AAuth-Capabilities"] = self._capabilities
        added, covered = self._signer.sign_message(
            request.method,
            str(request.url),
            self._signer.coverable_headers(request.headers, self._extra),
            request.content or None,
            key=key,
            signature_key=signature_key,
            now=self._clock(),
            key_id=key.kid or "",
            extra_components=self._extra,
            cover_body=self._cover_body,
        )
        for name, value in added.items():
            request.headers[name] = value
        return covered

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        self.sign(request)
        yield request


__all__ = ["DEFAULT_TIMEOUT", "MAX_ROUNDS", "AAuth", "EventHook", "SignedAuth", "client_options"]
