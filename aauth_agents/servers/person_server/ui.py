"""The person's side of the person server, in a browser: interaction page, sign-in, consent,
clarification chat, callback redirect and dashboard (§User Interaction).

Plain HTML forms and one small stylesheet (one column, usable from 360 px wide, visible
keyboard focus, a skip link); no JavaScript at all. Every page names the server
(``config.name``) and speaks the person's language: what an agent wants, what approving
allows and for how long (the request kind's :meth:`~.kinds.RequestKind.wants` and
:meth:`~.kinds.RequestKind.allows`). The pages are Jinja2
templates (``templates/``), autoescaped, rendered by :mod:`.ui_pages`, which also sets the
headers every page carries: a strict Content-Security-Policy (``default-src 'none';
style-src 'self'; img-src https:; form-action 'self'``, plus the agent's callback origin on a
consent page that redirects there), ``frame-ancestors 'none'`` / ``X-Frame-Options: DENY``,
``Referrer-Policy: same-origin`` and ``Cache-Control: no-store``. (``same-origin`` rather than
``no-referrer``: under ``no-referrer`` browsers send ``Origin: null`` on same-origin form
posts, which would defeat the Origin check; ``same-origin`` still never leaks a URL to another
site.) Every route is named; links, form actions and redirects are built from the names
(``url_for``), so a moved interact path holds everywhere. A handler that cannot show its page
raises :class:`~.ui_pages.PageError`; the exception handlers registered on the UI's routes
render it. What the consent page shows and does per kind of request is in
:mod:`.consent_view`.

Routes (:func:`ui_routes`):

* ``GET /interact/{interaction_id}?code=...[&callback=...]`` -- the URL handed to agents,
  and ``POST`` to it: signing in on its signed-out view (:mod:`.ui_links`). Opening it spends
  nothing (§Interaction Code Format: the code correlates until the person's decision
  consumes it): a browser with a session is linked to the request and redirected to
  ``/consent/{id}``; one without (a new browser, a closed tab, a link preview) sees the
  request signed out with a sign-in form, and nothing is stored. Wrong codes count against
  the request and the client address; the callback is checked first.
* ``GET /consent/{pending_id}`` -- for the browser that opened the request with its code, or
  for the signed-in person the request waits for (its ``owner``, from the dashboard); anyone
  else gets the same 404 whether or not it exists. Sign-in form (if needed), then the
  signed-in person engages (:meth:`~.interactions.Interactions.mark_interacting`: the agent
  sees ``interacting``, a new agent's request becomes theirs, another person's is refused)
  and sees the consent screen: agent name/logo/identifier, platform/device, resource
  name/description/access mode, what an R3 document says the request does (its ``display``:
  summary, detail, implications, what cannot be undone; for a per-call proposal the one call
  and its parameters, approved as a whole), scopes with their descriptions, the
  justification, mission and details -- all untrusted text rendered with
  :func:`~aauth_agents.servers.markdown.render_markdown` or escaped -- and the clarification
  chat (while a question is open the page refreshes itself with a ``Refresh`` header, which
  the person can turn off).
  ``POST /consent/{pending_id}`` with ``action`` = ``approve`` | ``deny`` | ``ask``
  (``question``) | ``abandon``, each only for the signed-in person the request waits for
  (§PS Approval Endpoint Authentication: a denial too); the decision consumes the code;
  after it the browser goes to the agent's checked ``callback`` (via
  :func:`callback_redirect`, ``?error=access_denied`` etc.) or sees a completion page.
* ``GET /interact/callback/{pending_id}/{nonce}`` -- return from a resource's own interaction
  (§Resource-Initiated Interaction).
* ``GET/POST /signin``, ``POST /signout`` -- password sign-in against ``ps.accounts`` (scrypt),
  limited per account and per client address with backoff, hashes bounded in number
  (:mod:`.signins`; a refusal is the sign-in page with 429 or 503 and ``Retry-After``).
* ``GET /dashboard`` -- "Waiting for you": the open requests waiting for the person (their
  ``owner``: their agents', a new agent's under a ``default_person``, and the ones they
  opened and claimed), each in words ("<agent> wants access to <site>") with a Review link
  to its consent page; the person's agents with what each may do at which site and until
  when; missions with their latest log entries, each linking to
  ``GET /dashboard/missions/{s256}``, the mission's whole log a page at a time (its owner
  only: the same 404 for anyone else's and for none). Disconnecting an agent
  (``GET /dashboard/revoke``) or ending a mission (``GET /dashboard/end``) shows a
  confirmation page first; only its form's ``POST /dashboard/unbind`` /
  ``POST /dashboard/terminate`` changes anything (:mod:`.ui_dashboard`, words from
  :mod:`.dashboard_view`).
* ``GET /`` -- what this server is (its ``name`` and identifier) and where to go.
* ``GET /ui.css``.

Sessions are opaque random ids (cookie ``aauth_ps_session``: HttpOnly, SameSite=Lax, Path=/,
Secure when the request came over https) mapping to server-side state in the PS database
(:mod:`.ui_sessions`: only the SHA-256 of the id is stored; signed-in account, CSRF token and
the pending requests the browser opened, with their callbacks). They survive a restart,
slide (``session_ttl`` from the last use) and are bounded (``max_sessions``, least recently
used dropped first). The id is rotated on sign-in. Every POST carries the session's CSRF
token and must come with an ``Origin`` (or, failing that, ``Referer``) equal to the request's
own origin -- not the issuer: the UI may be reached over loopback http (:mod:`.csrf`).
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ...protocol.errors import ProtocolError
from ...stores.states import APPROVED, COMPLETED, DENIED, OPEN
from ...tokens import DWK_AGENT
from ..proxies import client_address
from . import csrf
from .accounts import Account
from .config import PersonServerConfig
from .consent_view import MAX_QUESTION, agent_name, consent_context, consent_kind
from .interactions import InteractionView, callback_redirect
from .server import PersonServer
from .signins import SignInRefused, SignIns
from .ui_dashboard import SITE_NAME, DashboardPages
from .ui_links import InteractionLinks
from .ui_pages import PageError, Pages, secure, url_path
from .ui_sessions import Session, UISessions

COOKIE = "aauth_ps_session"
Form = Mapping[str, str]


class PersonServerUI:
    """The browser pages of one :class:`PersonServer`; :meth:`routes` for
    :func:`create_person_server`. Sessions live in the PS database (:mod:`.ui_sessions`)."""

    def __init__(
        self,
        ps: PersonServer,
        *,
        session_ttl: float = 8 * 3600,
        max_sessions: int = 10_000,
        code_failures: int = 20,
        code_window: float = 600.0,
    ) -> None:
        self.ps = ps
        self.session_ttl = session_ttl
        self.max_sessions = max_sessions
        self.sessions = UISessions(ps.db)
        self.pages = Pages(
            csrf_field=csrf.hidden_field,
            agent_name=agent_name,
            site_name=ps.config.name or SITE_NAME,
            server_id=ps.issuer,
        )
        self.signins = SignIns(ps.accounts, ps.attempts, ps.config.signin_limits, ps.clock)
        self.links = InteractionLinks(self, code_failures=code_failures, code_window=code_window)
        self.dashboard = DashboardPages(self)

    # -- sessions ------------------------------------------------------------------------------

    def _now(self) -> float:
        return float(self.ps.clock())

    async def session(self, request: Request) -> Session | None:
        """The browser's live session (its expiry moved on), or ``None``."""
        sid = request.cookies.get(COOKIE)
        if not sid:
            return None
        return await self.ps.run(self.sessions.load, sid, self._now(), self.session_ttl)

    async def _new_session(self) -> Session:
        return await self.ps.run(
            self.sessions.create, self._now(), self.session_ttl, self.max_sessions
        )

    async def _ensure_session(self, request: Request) -> Session:
        found = await self.session(request)
        return found if found is not None else await self._new_session()

    async def _link(
        self,
        session: Session,
        pending_id: str,
        *,
        interaction_id: str | None = None,
        callback: str | None = None,
        arrived: int | None = None,
    ) -> None:
        await self.ps.run(
            self.sessions.link,
            session,
            pending_id,
            self._now(),
            interaction_id=interaction_id,
            callback=callback,
            arrived=arrived,
        )

    def _set_cookie(self, response: Response, request: Request, session: Session) -> None:
        response.set_cookie(
            COOKIE,
            session.id,
            max_age=int(self.session_ttl),
            path="/",
            httponly=True,
            samesite="lax",
            secure=request.url.scheme == "https",
        )

    def _redirect(self, url: str, request: Request, session: Session | None = None) -> Response:
        response = self.pages.redirect(url)
        if session is not None:
            self._set_cookie(response, request, session)
        return response

    # -- the resource's own interaction ---------------------------------------------------------

    async def resource_return(self, request: Request) -> Response:
        pending_id = str(request.path_params["pending_id"])
        nonce = str(request.path_params["nonce"])
        session = await self.session(request)
        if session is None or not session.owns(pending_id):
            raise PageError(404, "Not found", "Unknown interaction.", code="not_found")
        error = request.query_params.get("error")
        try:
            view = await self.ps.interactions.resource_callback(pending_id, nonce, error)
        except ProtocolError as exc:
            raise PageError.cannot_continue(exc, session) from exc
        callback = session.callbacks.get(pending_id)
        if error is not None:
            outcome = "denied" if view.state == DENIED else (view.error or "server_error")
            if callback:
                return self._redirect(callback_redirect(callback, outcome), request)
            return self.pages.message(
                request, "Ended", "The resource ended the request.", code=outcome, session=session
            )
        return self._redirect(url_path(request, "consent", pending_id=pending_id), request)

    # -- sign-in -------------------------------------------------------------------------------

    @staticmethod
    def _safe_next(request: Request, value: str | None) -> str:
        if (
            value
            and value.startswith("/")
            and not value.startswith("//")
            and "\\" not in value
            and len(value) < 512
        ):
            return value
        return url_path(request, "dashboard")

    async def signin_page(self, request: Request) -> Response:
        session = await self._ensure_session(request)
        next_url = self._safe_next(request, request.query_params.get("next"))
        response = self.pages.page(
            request,
            "signin.html",
            title="Sign in",
            signin_session=session,
            next_url=next_url,
            hint=None,
            failed=False,
        )
        self._set_cookie(response, request, session)
        return response

    async def signin(self, request: Request) -> Response:
        session, form = await csrf.checked_post(request, self.session)
        next_url = self._safe_next(request, form.get("next"))
        refused: SignInRefused | None = None
        try:
            username, account = await self.authenticate(request, form)
        except SignInRefused as exc:
            username, account, refused = form.get("username", "")[:256], None, exc
        if account is None:
            response = self.pages.page(
                request,
                "signin.html",
                title="Sign in",
                status=refused.status if refused else 401,
                signin_session=session,
                next_url=next_url,
                hint=username,
                failed=refused.message if refused else True,
            )
            response.headers.update(refused.headers() if refused else {})
            return response
        # A new session id on sign-in (the old one is worthless now), same links.
        session = await self.ps.run(
            self.sessions.sign_in,
            session,
            account.username,
            self._now(),
            self.session_ttl,
            self.max_sessions,
        )
        return self._redirect(next_url, request, session)

    async def authenticate(
        self, request: Request, form: Mapping[str, str]
    ) -> tuple[str, Account | None]:
        """The username a sign-in form gave (shown again as a hint) and its account when the
        password matches; names and passwords are cut to bounded lengths first. Every
        sign-in form comes here: the limits of :mod:`.signins` apply, counted against the
        request's :func:`~aauth_agents.servers.proxies.client_address`
        (:class:`~.signins.SignInRefused` when they refuse)."""
        username = form.get("username", "")[:256]
        password = form.get("password", "")[:1024]
        if not username or not password:
            return username, None
        address = client_address(request)
        return username, await self.signins.authenticate(username, password, address)

    async def signout(self, request: Request) -> Response:
        session, _ = await csrf.checked_post(request, self.session)
        await self.ps.run(self.sessions.delete, session)
        response = self.pages.message(request, "Signed out", "You are signed out.")
        response.delete_cookie(COOKIE, path="/")
        return response

    # -- consent -------------------------------------------------------------------------------

    async def _owned_view(self, request: Request, session: Session | None) -> InteractionView:
        """The pending request of the path, for the browser that opened it with its code or
        for the signed-in person it waits for (from the dashboard). Anyone else gets the
        same 404 whether or not it exists."""
        pending_id = str(request.path_params["pending_id"])
        refused = PageError(
            404, "Not found", "Open the link the agent gave you.", code="not_found", session=session
        )
        if session is None or len(pending_id) > 128:
            raise refused
        if not session.owns(pending_id):
            if session.account is None:
                raise refused
            record = await self.ps.run(self.ps.pending.get, pending_id)
            if (
                record is None
                or record.owner is None
                or not secrets.compare_digest(record.owner.encode(), session.account.encode())
            ):
                raise refused
        view = await self.ps.interactions.get(pending_id)
        if view is None:
            raise PageError(
                404,
                "Not found",
                "This request no longer exists.",
                code="not_found",
                session=session,
            )
        return view

    def _needs_signin(self, session: Session, view: InteractionView) -> bool:
        if session.account is None:
            return True
        return "login" in view.prompt and session.login_seq <= session.arrived.get(view.id, 0)

    async def consent_page(self, request: Request) -> Response:
        session = await self.session(request)
        view = await self._owned_view(request, session)
        assert session is not None
        if view.state not in OPEN:
            return self._finished(request, view, session)
        if view.id not in session.arrived:  # arrived from the dashboard: remember when
            await self._link(session, view.id)
        if self._needs_signin(session, view):
            return self.pages.page(
                request,
                "consent_signin.html",
                title="Sign in to continue",
                session=session,
                signin_session=session,
                view=view,
                provider_description=None,
                next_url=url_path(request, "consent", pending_id=view.id),
                hint=view.login_hint,
                failed=False,
            )
        try:
            view = await self.ps.interactions.mark_interacting(view.id, session.account)
        except ProtocolError as exc:
            raise PageError.cannot_continue(exc, session) from exc
        ri = view.resource_interaction
        if ri is not None and ri.get("state") not in ("done", "failed"):
            try:
                target = await self.ps.interactions.resource_redirect(view.id)
            except ProtocolError as exc:
                raise PageError.cannot_continue(exc, session) from exc
            return self._redirect(target, request)
        callback = session.callbacks.get(view.id)
        described = await self._provider_description(view.agent_issuer)
        return self.pages.page(
            request,
            "consent.html",
            title="Review this request",
            refresh=3 if view.question_open else None,
            form_targets=[csrf.origin_of(callback)] if callback else [],
            session=session,
            **consent_context(view, described),
        )

    def _finished(self, request: Request, view: InteractionView, session: Session) -> Response:
        text = {
            APPROVED: "You approved this request. You can close this window.",
            COMPLETED: "This request is complete. You can close this window.",
            DENIED: "You denied this request. You can close this window.",
        }.get(view.state, "This request has ended.")
        return self.pages.message(
            request,
            "Done",
            text,
            code=None
            if view.state in (APPROVED, COMPLETED, DENIED)
            else (view.error or view.state),
            session=session,
        )

    async def _provider_description(self, iss: str) -> str | None:
        """The agent provider's ``description`` (§Agent Provider Metadata: Markdown, to be
        sanitized), through the PS's discovery cache; ``None`` when unavailable."""
        discovery = self.ps.discovery
        if discovery is None:
            return None
        try:
            document = await discovery.metadata(iss, DWK_AGENT)
        except Exception:
            return None
        value = document.get("description") if isinstance(document, Mapping) else None
        return value if isinstance(value, str) else None

    async def consent_post(self, request: Request) -> Response:
        session, form = await csrf.checked_post(request, self.session)
        view = await self._owned_view(request, session)
        here = url_path(request, "consent", pending_id=view.id)
        # §PS Approval Endpoint Authentication: consent and denial alike need the person.
        if self._needs_signin(session, view):
            return self._redirect(here, request)
        actions: dict[str, Callable[[InteractionView, Session, Form], Awaitable[str | None]]]
        actions = {
            "approve": self._approve,
            "deny": self._deny,
            "abandon": self._abandon,
            "ask": self._ask,
        }
        act = actions.get(form.get("action", ""))
        if act is None:
            raise PageError(
                400, "Bad request", "Unknown action.", code="invalid_request", session=session
            )
        callback = session.callbacks.get(view.id)
        try:
            # Only the person the request waits for decides; a new agent's becomes theirs.
            await self.ps.interactions.mark_interacting(view.id, session.account)
            outcome = await act(view, session, form)
        except ProtocolError as exc:
            if exc.code == "expired" and callback:
                return self._redirect(callback_redirect(callback, "expired"), request)
            raise PageError.cannot_continue(exc, session) from exc
        if outcome is not None and callback:
            return self._redirect(
                callback_redirect(callback, None if outcome == "approved" else outcome), request
            )
        return self._redirect(here, request)

    # Each decision returns how the interaction ended ("approved", "denied", "abandoned";
    # the agent's callback hears of it) or None (the person stays on the page).

    async def _approve(self, view: InteractionView, session: Session, form: Form) -> str:
        await consent_kind(view.kind).approve(self.ps.interactions, view, session, form)
        return "approved"

    async def _deny(self, view: InteractionView, session: Session, form: Form) -> str:
        await self.ps.interactions.deny(view.id)
        return "denied"

    async def _abandon(self, view: InteractionView, session: Session, form: Form) -> str:
        await self.ps.interactions.abandon(view.id)
        return "abandoned"

    async def _ask(self, view: InteractionView, session: Session, form: Form) -> None:
        question = form.get("question", "").strip()
        if not question or len(question) > MAX_QUESTION:
            raise PageError(
                400,
                "Bad question",
                f"Ask a question of at most {MAX_QUESTION} characters.",
                code="invalid_request",
                session=session,
            )
        await self.ps.interactions.ask(view.id, question)

    async def css(self, request: Request) -> Response:
        response = secure(Response(self.pages.css, media_type="text/css"))
        response.headers["Cache-Control"] = "public, max-age=3600"
        return response

    # -- routes ----------------------------------------------------------------------------------

    def routes(self) -> list[BaseRoute]:
        """The UI routes, for ``create_person_server(..., routes=...)``. Each is named (the
        templates and redirects use the names) and carries the exception handlers that
        render a :class:`~.ui_pages.PageError` (and turn anything else into a logged 500
        page), so the routes work in any Starlette app they are added to."""
        handlers = [Middleware(ExceptionMiddleware, handlers=self.pages.exception_handlers())]

        def route(
            path: str, endpoint: Callable[[Request], Awaitable[Response]], method: str, name: str
        ) -> Route:
            return Route(path, endpoint, methods=[method], name=name, middleware=handlers)

        interact = self.ps.config.paths["interact"]
        link = interact if self.ps.config.code_only_interaction else interact + "/{interaction_id}"
        back = interact + "/callback/{pending_id}/{nonce}"
        return [
            route("/", self.dashboard.home, "GET", "home"),
            route(back, self.resource_return, "GET", "resource_return"),
            route(link, self.links.interact, "GET", "interact"),
            route(link, self.links.signin, "POST", "interact_signin"),
            route("/consent/{pending_id}", self.consent_page, "GET", "consent"),
            route("/consent/{pending_id}", self.consent_post, "POST", "decide"),
            route("/signin", self.signin_page, "GET", "signin_form"),
            route("/signin", self.signin, "POST", "signin"),
            route("/signout", self.signout, "POST", "signout"),
            route("/dashboard", self.dashboard.dashboard, "GET", "dashboard"),
            route("/dashboard/missions/{s256}", self.dashboard.mission_page, "GET", "mission_log"),
            route("/dashboard/revoke", self.dashboard.revoke_page, "GET", "revoke_confirm"),
            route("/dashboard/end", self.dashboard.end_page, "GET", "end_confirm"),
            route("/dashboard/unbind", self.dashboard.unbind, "POST", "unbind"),
            route("/dashboard/terminate", self.dashboard.terminate, "POST", "terminate"),
            route("/ui.css", self.css, "GET", "ui_css"),
        ]


def ui_routes(ps: PersonServer, **options: Any) -> list[BaseRoute]:
    """The person's pages for ``ps``: ``create_person_server(ps, routes=ui_routes(ps))``."""
    return PersonServerUI(ps, **options).routes()


def create_person_server_with_ui(
    config: PersonServerConfig | PersonServer, **options: Any
) -> Starlette:
    """A person server app with the person's pages (:func:`ui_routes`) mounted."""
    from .app import create_person_server

    ps = config if isinstance(config, PersonServer) else PersonServer(config)
    ui = PersonServerUI(ps, **options)
    app = create_person_server(ps, routes=ui.routes())
    app.state.person_server_ui = ui
    return app


__all__ = ["COOKIE", "PersonServerUI", "Session", "create_person_server_with_ui", "ui_routes"]
