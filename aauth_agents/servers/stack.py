"""The three parties of AAuth on loopback, for demos, notebooks and end-to-end tests.

:class:`LocalStack` starts, each as a real HTTP server on 127.0.0.1 under its real
identifier (only connections are mapped, :mod:`aauth_agents.transport`):

* an agent provider, ``https://agent.example`` (enrolment by one-time code);
* a person server, ``https://ps.example``, with its pages (sign-in, consent, dashboard) and
  one person account;
* the demo resource, ``https://resource.example``
  (:func:`~aauth_agents.servers.demo_resource.demo_resource`);

and serves any other party added with :meth:`LocalStack.add` (a self-hosted agent provider,
your own resource) -- every party finds every other through the one
:class:`~aauth_agents.network.LocalNetwork` (:attr:`LocalStack.network`), which grows as
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
from collections.abc import Coroutine
from types import TracebackType
from typing import Any, TypeVar

import httpx

from ..agent import AgentIdentity, client_options
from ..discovery import AsyncDiscovery
from ..network import LocalNetwork
from .loopback import LoopbackServer
from .person_server.events import PSEvent

T = TypeVar("T")

#: The identifier of the stack's agent provider.
AGENT_PROVIDER = "https://agent.example"
#: The identifier of the stack's person server.
PERSON_SERVER = "https://ps.example"
#: The identifier of the stack's demo resource.
RESOURCE = "https://resource.example"


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
    :class:`~aauth_agents.servers.person_server.PersonServerConfig`.

    ``network`` -- the :class:`~aauth_agents.network.LocalNetwork` the parties share (default:
    a new one reaching only them); ``port`` -- a base port: the PS listens on it, the
    agent provider on the next, the demo resource on the one after (0: any free ports);
    ``enrolment=False`` -- no enrolling agent provider (serve a self-hosted one with
    :meth:`add`); ``demo=False`` -- no demo resource."""

    def __init__(
        self,
        *,
        person: str = "alice",
        password: str | None = None,
        person_name: str = "Alice Example",
        network: LocalNetwork | None = None,
        port: int = 0,
        enrolment: bool = True,
        demo: bool = True,
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
        #: Every party served, by identifier (grows with :meth:`add`).
        self.network = network if network is not None else LocalNetwork(strict=True)
        self.port = port
        self._servers: list[LoopbackServer] = []
        self.ap = (
            AgentProviderServer(
                AgentProviderConfig(issuer=AGENT_PROVIDER, ps=PERSON_SERVER, name="Local agents")
            )
            if enrolment
            else None
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
                transport=self.network.async_transport(),
                **ps_options,
            )
        )
        self.ps.accounts.create_account(person, self.password, claims={"name": person_name})
        self._ps_site = OnItsLoop(create_person_server(self.ps, routes=ui_routes(self.ps)))
        self._resource_app = demo_resource(RESOURCE, issuer_keys=self.discovery()) if demo else None

    # -- parties ---------------------------------------------------------------------------

    @property
    def mapping(self) -> dict[str, str]:
        """Identifier -> loopback origin, for every party served."""
        return self.network.origins()

    def discovery(self) -> AsyncDiscovery:
        """Discovery reaching the local parties (loopback admitted for their hosts only)."""
        return self.network.discovery()

    def add(self, identifier: str, app: Any, *, port: int = 0) -> str:
        """Serve ``app`` as the party ``identifier`` (``https://host``) on ``port`` (0: any);
        returns its loopback origin. Every party reaches it from now on."""
        server = LoopbackServer(app, port=port).start()
        self._servers.append(server)
        self.network.add(identifier, server.url)
        return server.url

    def start(self) -> LocalStack:
        base = self.port
        try:
            self.add(PERSON_SERVER, self._ps_site, port=base)
            if self.ap is not None:
                self.add(AGENT_PROVIDER, self.ap.app(), port=base and base + 1)
                self.ap.config.connect = {PERSON_SERVER: self.mapping[PERSON_SERVER]}
            if self._resource_app is not None:
                self.add(RESOURCE, self._resource_app, port=base and base + 2)
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
        if self.ap is not None:
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
        return self.network.transport()

    def async_transport(self) -> httpx.AsyncBaseTransport:
        """An ``httpx.AsyncClient`` transport reaching every local party."""
        return self.network.async_transport()

    def enroll(self, agent_id: str = "aauth:assistant@agent.example") -> AgentIdentity:
        """A new agent enrolled at the agent provider (a one-time code, then the agent's
        own key proves itself, §Agent Token Acquisition)."""
        from .agent_provider import AgentProviderClient

        if self.ap is None:
            raise RuntimeError("this stack has no enrolment agent provider (enrolment=False)")
        code = self.ap.create_enrollment(agent_id)
        with httpx.Client(**client_options(transport=self.transport())) as client:
            return AgentProviderClient(AGENT_PROVIDER, client).enroll(code)

    # -- the person ------------------------------------------------------------------------

    def browser_url(self, url: str) -> str:
        """``url`` of a local party (an interaction link) as a browser on this machine
        reaches it: the same path and query on the party's loopback origin."""
        return self.network.browser_url(url)

    def call(self, coroutine: Coroutine[Any, Any, T], timeout: float = 20.0) -> T:
        """Run ``coroutine`` on the PS's event loop (``stack.call(stack.ps.mission_log(s))``)."""
        return self._ps_site.call(coroutine, timeout)

    def open(self, url: str, code: str) -> Any:
        """The person opens the interaction link: its view (nothing is spent; the decision
        consumes the code, §Interaction Code Format)."""
        interaction_id = httpx.URL(url).path.rstrip("/").rsplit("/", 1)[-1]
        return self.call(self.ps.interactions.lookup(interaction_id, code))

    def _engage(self, url: str, code: str) -> tuple[Any, str]:
        """The person opens the link, signs in and looks at the request (the PS then
        reports ``interacting``), as on the consent page: its view and the account."""
        view = self.open(url, code)
        account = self._sign_in()
        self.call(self.ps.interactions.mark_interacting(view.id, account))
        return view, account

    def _sign_in(self) -> str:
        """The person signs in with their password: their account name."""
        account = self.call(self.ps.accounts.aauthenticate(self.person, self.password))
        if account is None:
            raise RuntimeError("the person could not sign in")
        return account.username

    def approve(self, url: str, code: str) -> Any:
        """The person opens the link, signs in, looks at the request and approves."""
        view, account = self._engage(url, code)
        return self.call(self.ps.interactions.approve(view.id, account))

    def deny(self, url: str, code: str, reason: str = "the person said no") -> Any:
        """The person opens the link, signs in and declines."""
        view, _ = self._engage(url, code)
        return self.call(self.ps.interactions.deny(view.id, reason))

    def ask(self, url: str, code: str, question: str) -> Any:
        """The person opens the link, signs in and asks the agent ``question``
        (§Clarification Chat); returns the interaction's view (its ``id`` for
        :meth:`answer_of` and :meth:`approve_open`)."""
        view, _ = self._engage(url, code)
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
        return self.call(self.ps.interactions.approve(pending_id, self._sign_in()))


__all__ = [
    "AGENT_PROVIDER",
    "PERSON_SERVER",
    "RESOURCE",
    "LocalStack",
    "OnItsLoop",
]
