"""Our person server behind the interface of :class:`support.interop.Mockin` (the ``mockin``
fixture of tests/interop/conftest.py), so the scenarios written against @hellocoop/mockin run
unchanged against it.

:class:`AAuthPS` serves a real :class:`~aauth_agents.servers.person_server.PersonServer`
with the person's pages over loopback HTTP (:class:`~aauth_agents.servers.LoopbackServer`) as
``https://ps.example``, laid out like mockin: its endpoint paths (``PersonServerConfig.paths``)
and one fixed interaction URL, ``{PS}/aauth/consent?code=...`` (``code_only_interaction``).

* ``trust(issuer, metadata, jwks)`` -- what mockin's ``trusted_servers`` preload does: the
  PS's discovery fetches agent-provider and resource documents from an in-process directory
  holding exactly the trusted documents (nothing else resolves).
* ``configure(**settings)`` -- mockin's mock settings, mapped onto the PS's consent policy
  (``auto_approve``, ``requirement``, ``person_requirement``, ``clarification``,
  ``permission``, ``permission_reason``), its relay channel (``/aauth/interaction``: the
  person is reached, relays complete, questions get mockin's canned answer) and, for
  ``error`` / ``error_endpoint``, a fault-injecting ASGI wrapper that answers the token
  endpoints with the PS's own error rendering (``Reply.error``: problem+json).
* ``consent(code)`` -- the person's browser: opens the interaction URL with the code, signs
  in as the test account and approves on the real consent pages (CSRF token and ``Origin``
  as the UI requires); returns the final page's status.
* ``reset()`` -- a fresh PS (new database, keys, sessions) and mockin's default settings.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlsplit

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from aauth_agents.discovery import AsyncDiscovery, DiscoveryCache, EgressPolicy
from aauth_agents.protocol.errors import ProtocolError
from aauth_agents.servers import LoopbackServer
from aauth_agents.servers.person_server import (
    ConsentRequest,
    Decision,
    PersonServer,
    PSEvent,
    RelayNotice,
    person_server_of,
)
from aauth_agents.servers.person_server import events as ev
from aauth_agents.servers.person_server.config import PersonServerConfig
from aauth_agents.servers.person_server.interactions import InteractionError
from aauth_agents.servers.person_server.pending import Reply
from aauth_agents.servers.person_server.policy import AUTH_TOKEN, PERMISSION, PERSON_TOKEN
from aauth_agents.servers.person_server.ui import create_person_server_with_ui

log = logging.getLogger("tests.support.ps_backend")

ISSUER = "https://ps.example"
ACCOUNT = "mock-person"
PASSWORD = "correct horse battery staple"

#: mockin 2.x's endpoint layout (its /.well-known/aauth-person.json), plus our endpoints
#: mockin lacks (missions, revocation) under the same prefix.
MOCKIN_PATHS = {
    "jwks": "/aauth/jwks.json",
    "person_token": "/aauth/token/person",
    "auth_token": "/aauth/token/auth",
    "pending": "/aauth/pending",
    "mission": "/aauth/mission",
    "permission": "/aauth/permission",
    "audit": "/aauth/audit",
    "interaction": "/aauth/interaction",
    "revocation": "/aauth/revoke",
    "interact": "/aauth/consent",
}

#: mockin's defaults for the settings this adapter maps (mockin src/aauth/mock.js).
DEFAULTS: dict[str, Any] = {
    "auto_approve": True,
    "requirement": None,
    "clarification": None,
    "person_requirement": None,
    "error": None,
    "error_endpoint": None,
    "permission": "granted",
    "permission_reason": None,
}
#: What mockin answers a question with (src/aauth/interaction.js).
MOCK_ANSWER = "Mock answer: yes, proceed."
#: mockin's fixed clarification timeout: our PS reports the request's remaining lifetime.
PENDING_LIFETIME = 120

ASGIApp = Callable[[MutableMapping[str, Any], Any, Any], Awaitable[None]]


class TrustedDirectory:
    """The documents of trusted issuers, served to the PS's discovery in process: metadata
    at any ``/.well-known/`` path of the issuer's host, the JWKS at its ``jwks_uri`` path."""

    def __init__(self) -> None:
        self.trusted: dict[str, dict[str, Any]] = {}
        self.app = Starlette(routes=[Route("/{path:path}", self._serve, methods=["GET"])])

    def resolve(self, host: str) -> list[str]:
        """Egress resolver: trusted hosts only (they are served in process)."""
        if f"https://{host.lower()}" in self.trusted:
            return ["127.0.0.1"]
        raise OSError(f"{host} is not trusted")

    async def _serve(self, request: Request) -> Response:
        entry = self.trusted.get(f"https://{request.url.hostname}")
        if entry is None:
            return Response(status_code=404)
        metadata = entry["metadata"]
        if request.url.path.startswith("/.well-known/aauth-"):
            return JSONResponse(metadata)
        if request.url.path == urlsplit(str(metadata.get("jwks_uri", ""))).path:
            return JSONResponse(entry["jwks"])
        return Response(status_code=404)


class _FormReader(HTMLParser):
    """The fields a browser submits with one form: its inputs (checked boxes only) and those
    outside it that name it with ``form=``."""

    def __init__(self, form_id: str) -> None:
        super().__init__()
        self.form_id = form_id
        self.inside = False
        self.found = False
        self.fields: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.inside = a.get("id") == self.form_id
            self.found = self.found or self.inside
        elif tag == "input" and "name" in a and (self.inside or a.get("form") == self.form_id):
            if a.get("type") in ("checkbox", "radio") and "checked" not in a:
                return
            self.fields.append((a["name"], a.get("value", "")))

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.inside = False


def form_fields(html: str, form_id: str) -> list[tuple[str, str]] | None:
    """The fields of form ``form_id`` in ``html``, or ``None`` when there is no such form."""
    reader = _FormReader(form_id)
    reader.feed(html)
    return reader.fields if reader.found else None


class AAuthPS:
    """Our PS as a drop-in for the ``Mockin`` fixture: ``url``, ``mapping``,
    ``configure``, ``trust``, ``reset``, ``consent`` (see the module docstring)."""

    def __init__(self) -> None:
        self.settings: dict[str, Any] = dict(DEFAULTS)
        self.directory = TrustedDirectory()
        self.ps: PersonServer | None = None
        self._app: ASGIApp | None = None
        self._discovery: AsyncDiscovery | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task[None]] = set()  # the mock person's acts in progress
        self._cache = DiscoveryCache()

        async def app(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
            await self._dispatch(scope, receive, send)  # a function: uvicorn sees ASGI 3

        self._server = LoopbackServer(app).start()
        self.url = self._server.url
        self.mapping = {ISSUER: self.url}
        self.reset()

    # -- the mockin interface ------------------------------------------------------------------

    def configure(self, **settings: Any) -> dict[str, Any]:
        """mockin's ``PUT /mock/aauth`` for the settings mapped onto our PS; others raise
        ``ValueError`` (they would otherwise be silently ignored)."""
        unknown = set(settings) - set(DEFAULTS) - {"trusted_servers"}
        if unknown:
            raise ValueError(f"not mapped onto our PS: {', '.join(sorted(unknown))}")
        if "trusted_servers" in settings:  # replaced wholesale, as mockin does
            self.directory.trusted = dict(settings.pop("trusted_servers") or {})
            self._cache.clear()
        self.settings.update(settings)  # None resets a setting, as in mockin
        return {**self.settings, "trusted_servers": dict(self.directory.trusted)}

    def trust(self, issuer: str, metadata: dict[str, Any], jwks: dict[str, Any]) -> None:
        self.directory.trusted[issuer] = {"metadata": metadata, "jwks": jwks}
        self._cache.clear()  # effective at once, as in mockin (no remembered failures)

    def reset(self) -> None:
        """A fresh PS and mockin's default settings; nothing trusted."""
        old, old_discovery = self.ps, self._discovery
        self.settings = dict(DEFAULTS)
        self.directory.trusted = {}
        self._cache = DiscoveryCache()
        self._discovery = AsyncDiscovery(
            transport=httpx.ASGITransport(app=self.directory.app),
            cache=self._cache,
            egress=EgressPolicy(resolver=self.directory.resolve, allow_loopback=True),
        )
        config = PersonServerConfig(
            issuer=ISSUER,
            discovery=self._discovery,
            policy=self._decide,
            default_person=ACCOUNT,
            relay_channel=self._relay,
            events=self._on_event,
            paths=MOCKIN_PATHS,
            code_only_interaction=True,
            pending_lifetime=PENDING_LIFETIME,
            password_log2_n=14,
            # mockin answers every request at once (no Prefer: wait) with Retry-After: 0.
            max_wait=0,
            retry_after=0,
            name="aauth-agents Person Server (mockin layout)",
        )
        app = create_person_server_with_ui(config)
        ps = person_server_of(app)
        ps.accounts.create_account(ACCOUNT, PASSWORD, claims={"name": "Mock Person"})
        self.ps, self._app = ps, app
        if old is not None:
            self._close(old, old_discovery)

    def consent(self, code: str) -> int:
        """The person's browser: open the interaction URL with ``code`` (signed out: the
        request and a sign-in form), sign in, approve; the status of the last page (``200``
        once approved)."""
        assert self.ps is not None
        with httpx.Client(base_url=self.url, timeout=10) as browser:
            origin = {"origin": self.url}
            link = self.ps.config.paths["interact"]
            opened = browser.get(link, params={"code": code})
            signin = form_fields(opened.text, "signin") if opened.status_code == 200 else None
            if signin is not None:  # signed out: the request is shown; sign in right there
                fields = dict(signin) | {"username": ACCOUNT, "password": PASSWORD}
                opened = browser.post(link, data=fields, headers=origin)
            if opened.status_code != 303:
                return opened.status_code
            consent = opened.headers["location"]
            page = browser.get(consent)
            signin = form_fields(page.text, "signin")
            if signin is not None:
                fields = dict(signin) | {"username": ACCOUNT, "password": PASSWORD}
                signed = browser.post("/signin", data=fields, headers=origin)
                if signed.status_code != 303:
                    return signed.status_code
                page = browser.get(consent)
            decide = form_fields(page.text, "decide")
            if decide is None:
                return page.status_code if page.status_code != 200 else 409
            data: dict[str, Any] = {}
            for name, value in [*decide, ("action", "approve")]:
                if name == "scope":
                    data.setdefault("scope", []).append(value)
                else:
                    data[name] = value
            decided = browser.post(consent, data=data, headers=origin)
            if decided.status_code != 303:
                return decided.status_code
            return browser.get(decided.headers["location"]).status_code

    def close(self) -> None:
        if self.ps is not None:
            self._close(self.ps, self._discovery)
            self.ps = None
        self._server.stop()

    # -- the PS's hooks --------------------------------------------------------------------------

    def _decide(self, request: ConsentRequest) -> Decision:
        """The consent policy: mockin's settings for the request's kind."""
        s = self.settings
        if request.kind == PERMISSION:
            if s["permission"] == "denied":
                return Decision.deny(s["permission_reason"] or "Mock denial")
            return Decision.approve()
        requirement = {PERSON_TOKEN: s["person_requirement"], AUTH_TOKEN: s["requirement"]}.get(
            request.kind
        )
        if requirement == "interaction":
            return Decision.interaction()  # approved at once by _on_event if auto_approve
        if requirement == "approval":
            return Decision.approval(lambda _: Decision.approve())
        if requirement == "clarification":
            return Decision.approval(self._clarify)
        return Decision.approve()

    async def _clarify(self, request: ConsentRequest) -> Decision | None:
        """The person asks mockin's question, waits for the agent's answer, approves."""
        ps, pending_id = self.ps, request.pending_id
        assert ps is not None and pending_id is not None
        question = self.settings["clarification"] or "Why do you need access to this resource?"
        try:
            await ps.interactions.ask(pending_id, question)
        except InteractionError as exc:
            return Decision.deny(f"the question could not be asked: {exc.detail}")
        while True:
            entry = ps.notifier.register(pending_id)
            try:
                view = await ps.interactions.get(pending_id)
                if view is None or view.state not in ("pending", "interacting"):
                    return None
                if view.clarifications and view.clarifications[-1].answer is not None:
                    return Decision.approve()
                await ps.notifier.wait(entry, 1.0)
            finally:
                ps.notifier.unregister(pending_id, entry)

    def _relay(self, notice: RelayNotice) -> bool:
        """The interaction endpoint's channel: the person is always reached; a relayed
        interaction is opened at once, a question gets mockin's canned answer."""
        ps = self.ps
        assert ps is not None
        if notice.type == "question":
            self._spawn(ps.interactions.answer(notice.pending_id, None, MOCK_ANSWER))
        else:
            self._spawn(ps.interactions.relay_engaged(notice.pending_id))
        return True

    def _on_event(self, event: PSEvent) -> None:
        """mockin's ``auto_approve``: an interaction it asks for is approved at once."""
        detail = event.detail or {}
        if (
            event.name == ev.PENDING
            and detail.get("requirement") == "interaction"
            and detail.get("kind") in (PERSON_TOKEN, AUTH_TOKEN)
            and self.settings["auto_approve"]
            and self.ps is not None
        ):
            self._spawn(self.ps.interactions.approve(str(detail["pending"]), None))

    def _spawn(self, work: Awaitable[Any]) -> None:
        async def run() -> None:
            try:
                await work
            except ProtocolError as exc:
                log.warning("mock person could not act: %s", exc.detail)

        task = asyncio.get_running_loop().create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- serving ---------------------------------------------------------------------------------

    def _injected(self, scope: MutableMapping[str, Any]) -> str | None:
        """The error mockin would inject for this request (``mockErrorFor``)."""
        error = self.settings["error"]
        if not error or scope.get("type") != "http" or scope.get("method") != "POST":
            return None
        assert self.ps is not None
        paths = self.ps.config.paths
        endpoint = {paths["auth_token"]: "token", paths["person_token"]: "person"}.get(
            scope.get("path", "")
        )
        if endpoint is None:
            return None
        scoped = self.settings["error_endpoint"]
        return None if scoped and scoped != endpoint else str(error)

    async def _dispatch(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        self._loop = asyncio.get_running_loop()
        error = self._injected(scope)
        if error is not None:
            reply = Reply.error(ProtocolError(f"Mock error: {error}", code=error))
            response = Response(reply.body, status_code=reply.status, headers=dict(reply.headers))
            await response(scope, receive, send)
            return
        assert self._app is not None
        await self._app(scope, receive, send)

    def _close(self, ps: PersonServer, discovery: AsyncDiscovery | None) -> None:
        async def close() -> None:
            for task in list(self._tasks):  # acts of the mock person on the old PS
                task.cancel()
            await ps.aclose()
            if discovery is not None:
                await discovery.aclose()

        if self._loop is not None and self._loop.is_running():
            asyncio.run_coroutine_threadsafe(close(), self._loop).result(timeout=10)
        else:
            ps.close()
