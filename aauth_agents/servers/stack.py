"""The three parties of AAuth on loopback, for demos, notebooks and end-to-end tests.

:class:`LocalStack` starts, each as a real HTTP server on 127.0.0.1 under its real
identifier (only connections are mapped, :mod:`aauth_agents.transport`):

* an agent provider, ``https://agent.example`` (enrolment by one-time code);
* a person server, ``https://ps.example``, with its pages (sign-in, consent, dashboard) and
  one person account;
* the demo resource, ``https://resource.example``
  (:func:`~aauth_agents.servers.demo_resource.demo_resource`);

and serves any other party added with :meth:`LocalStack.add` (a self-hosted agent provider,
your own resource) -- every party finds every other through the one mapping, which grows as
parties are added. The person can decide through the PS's own interaction path
(:meth:`LocalStack.approve`, :meth:`~LocalStack.deny`, :meth:`~LocalStack.ask`), exactly
what the consent page calls, or in a browser at :meth:`LocalStack.browser_url`.

::

    with LocalStack() as stack:
        auth = AAuth(stack.enroll("aauth:assistant@agent.example"), prompts=...)
        with auth.client(transport=stack.transport()) as client:
            client.get(f"{stack.resource}/files")
"""

from __future__ import annotations

import asyncio
import secrets
from collections import deque
from collections.abc import Coroutine, Mapping
from types import TracebackType
from typing import Any, TypeVar

import httpx

from ..agent import AgentIdentity, client_options
from ..discovery import AsyncDiscovery, EgressPolicy
from ..transport import origin_of, retarget
from .loopback import LoopbackServer
from .person_server.events import PSEvent

T = TypeVar("T")

AGENT_PROVIDER = "https://agent.example"
PERSON_SERVER = "https://ps.example"
RESOURCE = "https://resource.example"


class LateTransport(httpx.AsyncBaseTransport):
    """Connections for each identifier go to the loopback origin ``targets`` holds for it
    when the request is sent (parties start one after another and find each other later;
    the mapping may grow)."""

    def __init__(self, targets: Mapping[str, str]) -> None:
        self.targets = targets
        self._inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        origin = f"{request.url.scheme}://{request.url.host}"
        target = self.targets.get(origin)
        if target is None:
            raise httpx.ConnectError(f"{origin} is not one of the local parties")
        scheme, host, port = origin_of(target)
        return await self._inner.handle_async_request(retarget(request, scheme, host, port))

    async def aclose(self) -> None:
        await self._inner.aclose()


class _SyncLateTransport(httpx.BaseTransport):
    """:class:`LateTransport` for ``httpx.Client``."""

    def __init__(self, targets: Mapping[str, str]) -> None:
        self.targets = targets
        self._inner = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        origin = f"{request.url.scheme}://{request.url.host}"
        target = self.targets.get(origin)
        if target is None:
            raise httpx.ConnectError(f"{origin} is not one of the local parties")
        scheme, host, port = origin_of(target)
        return self._inner.handle_request(retarget(request, scheme, host, port))

    def close(self) -> None:
        self._inner.close()


class OnItsLoop:
    """An ASGI app wrapper that remembers the event loop its server runs on, so that the
    person can act at the PS (``ps.interactions``) on the PS's own loop, as its pages do."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.loop: asyncio.AbstractEventLoop | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.loop = asyncio.get_running_loop()
        await self.app(scope, receive, send)

    def call(self, coroutine: Coroutine[Any, Any, T], timeout: float = 20.0) -> T:
        if self.loop is None:
            coroutine.close()
            raise RuntimeError("the server has not handled a request yet")
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)


class LocalStack:
    """An agent provider, a person server with its pages, and the demo resource on loopback
    (see the module docstring). ``person`` / ``password`` -- the PS's one account (a random
    password when not given: :attr:`password`); ``ps_options`` go to
    :class:`~aauth_agents.servers.person_server.PersonServerConfig`."""

    def __init__(
        self,
        *,
        person: str = "alice",
        password: str | None = None,
        person_name: str = "Alice Example",
        **ps_options: Any,
    ) -> None:
        from .agent_provider import AgentProviderConfig, AgentProviderServer
        from .demo_resource import demo_resource
        from .person_server import PersonServer, PersonServerConfig, create_person_server
        from .person_server.ui import ui_routes

        self.agent_provider, self.person_server, self.resource = (
            AGENT_PROVIDER,
            PERSON_SERVER,
            RESOURCE,
        )
        self.person = person
        self.password = password or secrets.token_urlsafe(12)
        #: identifier -> loopback origin, for every party served (grows with :meth:`add`).
        self.mapping: dict[str, str] = {}
        self._hosts: dict[str, str] = {}
        self._servers: list[LoopbackServer] = []
        self.ap = AgentProviderServer(
            AgentProviderConfig(issuer=AGENT_PROVIDER, ps=PERSON_SERVER, name="Local agents")
        )
        ps_options.setdefault("password_log2_n", 14)
        ps_options.setdefault("name", "Local person server")
        #: The PS's audit events, newest last (the last 1,000).
        self.events: deque[PSEvent] = deque(maxlen=1000)
        ps_options.setdefault("events", self.events.append)
        self.ps = PersonServer(
            PersonServerConfig(
                issuer=PERSON_SERVER,
                discovery=self.discovery(),
                transport=LateTransport(self.mapping),
                **ps_options,
            )
        )
        self.ps.accounts.create_account(person, self.password, claims={"name": person_name})
        self._ps_site = OnItsLoop(create_person_server(self.ps, routes=ui_routes(self.ps)))
        self._resource_app = demo_resource(RESOURCE, issuer_keys=self.discovery())

    # -- parties ---------------------------------------------------------------------------

    def discovery(self) -> AsyncDiscovery:
        """Discovery reaching the local parties (loopback admitted for their hosts only)."""
        return AsyncDiscovery(transport=LateTransport(self.mapping), egress=self._egress())

    def _egress(self) -> EgressPolicy:
        hosts = self._hosts

        def resolve(host: str) -> list[str]:  # read at each fetch: the mapping grows
            address = hosts.get(host.lower())
            if address is None:
                raise OSError(f"{host} is not one of the local parties")
            return [address]

        return EgressPolicy(resolver=resolve, allow_loopback=True)

    def add(self, identifier: str, app: Any) -> str:
        """Serve ``app`` as the party ``identifier`` (``https://host``); returns its
        loopback origin. Every party reaches it from now on."""
        server = LoopbackServer(app).start()
        self._servers.append(server)
        self.mapping[identifier] = server.url
        self._hosts[httpx.URL(identifier).host] = "127.0.0.1"
        return server.url

    def start(self) -> LocalStack:
        try:
            self.add(AGENT_PROVIDER, self.ap.app())
            self.add(PERSON_SERVER, self._ps_site)
            self.add(RESOURCE, self._resource_app)
            self.ap.config.connect = {PERSON_SERVER: self.mapping[PERSON_SERVER]}
            # One request, so the person can act on the PS's loop from the start.
            with httpx.Client(transport=self.transport()) as client:
                client.get(f"{PERSON_SERVER}/.well-known/aauth-person.json").raise_for_status()
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        for server in reversed(self._servers):
            server.stop()
        self._servers.clear()
        self.ap.close()
        self.ps.close()

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- agents ----------------------------------------------------------------------------

    def transport(self) -> httpx.BaseTransport:
        """An ``httpx.Client`` transport reaching every local party."""
        return _SyncLateTransport(self.mapping)

    def async_transport(self) -> httpx.AsyncBaseTransport:
        """An ``httpx.AsyncClient`` transport reaching every local party."""
        return LateTransport(self.mapping)

    def enroll(self, agent_id: str = "aauth:assistant@agent.example") -> AgentIdentity:
        """A new agent enrolled at the agent provider (a one-time code, then the agent's
        own key proves itself, §Agent Token Acquisition)."""
        from .agent_provider import AgentProviderClient

        code = self.ap.create_enrollment(agent_id)
        with httpx.Client(**client_options(transport=self.transport())) as client:
            return AgentProviderClient(AGENT_PROVIDER, client).enroll(code)

    # -- the person ------------------------------------------------------------------------

    def browser_url(self, url: str) -> str:
        """``url`` of a local party (an interaction link) as a browser on this machine
        reaches it: the same path and query on the party's loopback origin."""
        parsed = httpx.URL(url)
        origin = self.mapping[f"{parsed.scheme}://{parsed.host}"]
        return origin + parsed.raw_path.decode("ascii")

    def call(self, coroutine: Coroutine[Any, Any, T], timeout: float = 20.0) -> T:
        """Run ``coroutine`` on the PS's event loop (``stack.call(stack.ps.mission_log(s))``)."""
        return self._ps_site.call(coroutine, timeout)

    def open(self, url: str, code: str) -> Any:
        """The person opens the interaction link: its view (nothing is spent; the decision
        consumes the code, §Interaction Code Format)."""
        interaction_id = httpx.URL(url).path.rstrip("/").rsplit("/", 1)[-1]
        return self.call(self.ps.interactions.lookup(interaction_id, code))

    def approve(self, url: str, code: str) -> Any:
        """The person opens the link, signs in, looks at the request and approves."""
        view = self.open(url, code)
        account = self.call(self.ps.accounts.aauthenticate(self.person, self.password))
        if account is None:
            raise RuntimeError("the person could not sign in")
        self.call(self.ps.interactions.mark_interacting(view.id, account.username))
        return self.call(self.ps.interactions.approve(view.id, account.username))

    def deny(self, url: str, code: str, reason: str = "the person said no") -> Any:
        """The person opens the link and declines."""
        view = self.open(url, code)
        return self.call(self.ps.interactions.deny(view.id, reason))

    def ask(self, url: str, code: str, question: str) -> Any:
        """The person opens the link and asks the agent ``question`` (§Clarification Chat);
        returns the interaction's view (its ``id`` for :meth:`answer_of` and
        :meth:`approve_open`)."""
        view = self.open(url, code)
        self.call(self.ps.interactions.ask(view.id, question))
        return view

    def answer_of(self, pending_id: str) -> str | None:
        """The agent's answer to the latest question on ``pending_id``, once it came."""
        view = self.call(self.ps.interactions.get(pending_id))
        if view is None or not view.clarifications:
            return None
        answer: str | None = view.clarifications[-1].answer
        return answer

    def approve_open(self, pending_id: str) -> Any:
        """Approve a request the person already opened (after a question, say)."""
        account = self.call(self.ps.accounts.aauthenticate(self.person, self.password))
        if account is None:
            raise RuntimeError("the person could not sign in")
        return self.call(self.ps.interactions.approve(pending_id, account.username))


__all__ = [
    "AGENT_PROVIDER",
    "PERSON_SERVER",
    "RESOURCE",
    "LateTransport",
    "LocalStack",
    "OnItsLoop",
]
