"""The person's side of the person server, in a browser: interaction page, sign-in, consent,
clarification chat, callback redirect and dashboard (§User Interaction).

Plain HTML forms and one small stylesheet; no JavaScript at all. Every page is sent with a
strict Content-Security-Policy (``default-src 'none'; style-src 'self'; img-src https:;
form-action 'self'``, plus the agent's callback origin on a consent page that redirects there),
``frame-ancestors 'none'`` / ``X-Frame-Options: DENY``, ``Referrer-Policy: same-origin`` and
``Cache-Control: no-store``. (``same-origin`` rather than ``no-referrer``: under
``no-referrer`` browsers send ``Origin: null`` on same-origin form posts, which would defeat the
Origin check; ``same-origin`` still never leaks a URL to another site.)

Routes (:func:`ui_routes`):

* ``GET /interact/{interaction_id}?code=...[&callback=...]`` -- the URL handed to agents. A
  ``callback`` is checked first, before the code is spent, with
  :meth:`~.interactions.Interactions.check_callback` (:func:`~.interactions.callback_allowed`):
  it must be the ``callback_endpoint`` the agent's provider publishes (§User Interaction;
  exactly, plus a query of the agent's own) or, when the provider sets
  ``localhost_callback_allowed``, a localhost URL; anything else is ``invalid_request``
  (400) and the browser is never sent there. The code is checked once with
  :meth:`Interactions.lookup` (single use, case-, hyphen- and alias-insensitive, failing the
  interaction after ``code_attempts`` wrong codes); the pending id is linked to the browser's
  session and the browser is redirected to ``/consent/{id}`` so the code leaves the address
  bar. Besides the per-interaction limit, wrong codes are rate-limited per client address
  (``code_failures`` per ``code_window`` seconds, then 429). A refused link makes no session.
  With ``code_only_interaction`` the URL is the fixed ``GET /interact?code=...`` (the
  interact path may be moved by ``config.paths``) and the interaction id is derived from the
  code (:func:`~.interactions.code_interaction_id`); a wrong code names no interaction, so
  only the per-address limit applies there.
* ``GET /consent/{pending_id}`` -- for the browser that opened the request with its code, or
  for the signed-in person the request waits for (its ``owner``, from the dashboard); anyone
  else gets the same 404 whether or not it exists. Sign-in form (if needed), then the consent
  screen: agent name/logo/identifier, platform/device, resource name/description/access mode,
  what an R3 document says the request does (its ``display``: summary, detail,
  implications, what cannot be undone; for a per-call proposal the one call and its
  parameters, approved as a whole), scopes with their descriptions, the justification,
  mission and details -- all untrusted text rendered with
  :func:`~aauth_agents.servers.markdown.render_markdown` or escaped -- and the
  clarification chat (the page refreshes itself with ``<meta http-equiv=refresh>`` while a
  question is open).
  ``POST /consent/{pending_id}`` with ``action`` = ``approve`` | ``deny`` | ``ask``
  (``question``) | ``abandon``, each only for the signed-in person (§PS Approval Endpoint
  Authentication: a denial too); after the decision the browser goes to the agent's checked
  ``callback`` (via :func:`callback_redirect`, ``?error=access_denied`` etc.) or sees a
  completion page.
* ``GET /interact/callback/{pending_id}/{nonce}`` -- return from a resource's own interaction
  (§Resource-Initiated Interaction).
* ``GET/POST /signin``, ``POST /signout`` -- password sign-in against ``ps.accounts`` (scrypt).
* ``GET /dashboard`` -- "Waiting for you": the open requests of the person's agents (agent,
  resource, scope, requirement, since when), each with a Review link to its consent page;
  connected agents (revoke: unbind, which revokes their auth tokens), missions with their
  logs (terminate); ``POST /dashboard/unbind``, ``POST /dashboard/terminate``.
* ``GET /ui.css``.

Sessions are opaque random ids (cookie ``aauth_ps_session``: HttpOnly, SameSite=Lax, Path=/,
Secure when the request came over https) mapping to server-side state in the PS database
(:mod:`.ui_sessions`: only the SHA-256 of the id is stored; signed-in account, CSRF token and
the pending requests the browser opened, with their callbacks). They survive a restart,
slide (``session_ttl`` from the last use) and are bounded (``max_sessions``, least recently
used dropped first). The id is rotated on sign-in. Every POST carries the session's CSRF
token and must come with an ``Origin`` (or, failing that, ``Referer``) equal to the request's
own origin -- not the issuer: the UI may be reached over loopback http.
"""

from __future__ import annotations

import html
import json
import secrets
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote, urlsplit

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from ...protocol.errors import ProtocolError
from ...protocol.interaction import InvalidInteractionCodeError
from ...protocol.r3 import is_digest
from ...tokens import DWK_AGENT
from ..markdown import render_markdown
from .config import PersonServerConfig
from .interactions import (
    InteractionError,
    InteractionView,
    R3View,
    callback_redirect,
    code_interaction_id,
)
from .pending import PendingRequest
from .server import PersonServer
from .ui_sessions import Session, UISessions

COOKIE = "aauth_ps_session"
#: The most requests the dashboard lists under "Waiting for you".
WAITING_LIMIT = 100
MAX_QUESTION = 2000
MAX_FIELD = 4096

CSS = """\
body{font-family:system-ui,sans-serif;max-width:44rem;margin:2rem auto;padding:0 1rem;
color:#1b1b1b;line-height:1.45}
h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:1.6rem}
.box{border:1px solid #ccc;border-radius:6px;padding:.8rem 1rem;margin:.8rem 0}
.untrusted{background:#fafafa}.muted{color:#666;font-size:.9rem}
.error{border-color:#c33;background:#fff4f4}.ok{border-color:#393;background:#f4fff4}
button{font-size:1rem;padding:.4rem 1rem;margin:.2rem .4rem .2rem 0}
input[type=text],input[type=password],textarea{width:100%;box-sizing:border-box;
font-size:1rem;padding:.3rem}
.logo{max-height:48px;max-width:48px;vertical-align:middle}
table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:.2rem .5rem}
#r3-parameters code{white-space:pre-wrap;word-break:break-word}
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _page_status(exc: ProtocolError) -> int:
    """The status of an error page: never 408, which browsers retry on their own."""
    return 410 if exc.status == 408 else exc.status


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class PersonServerUI:
    """The browser pages of one :class:`PersonServer`; :meth:`routes` for
    :func:`create_person_server`. Sessions live in the PS database (:mod:`.ui_sessions`)."""

    def __init__(self, ps: PersonServer, *, session_ttl: float = 8 * 3600,
                 max_sessions: int = 10_000, code_failures: int = 20,
                 code_window: float = 600.0) -> None:
        self.ps = ps
        self.session_ttl = session_ttl
        self.max_sessions = max_sessions
        self.code_failures = code_failures
        self.code_window = code_window
        self.sessions = UISessions(ps.db)
        self._failures: dict[str, list[float]] = {}

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
        return await self.ps.run(self.sessions.create, self._now(), self.session_ttl,
                                 self.max_sessions)

    async def _ensure_session(self, request: Request) -> tuple[Session, bool]:
        found = await self.session(request)
        if found is not None:
            return found, False
        return await self._new_session(), True

    async def _link(self, session: Session, pending_id: str, *,
                    interaction_id: str | None = None, callback: str | None = None) -> None:
        await self.ps.run(self.sessions.link, session, pending_id, self._now(),
                          interaction_id=interaction_id, callback=callback)

    def _set_cookie(self, response: Response, request: Request, session: Session) -> None:
        response.set_cookie(COOKIE, session.id, max_age=int(self.session_ttl), path="/",
                            httponly=True, samesite="lax",
                            secure=request.url.scheme == "https")

    # -- responses -----------------------------------------------------------------------------

    @staticmethod
    def _headers(response: Response, form_targets: Sequence[str] = ()) -> Response:
        form_action = " ".join(["'self'", *form_targets])
        response.headers["Content-Security-Policy"] = (
            "default-src 'none'; style-src 'self'; img-src https:; "
            f"form-action {form_action}; frame-ancestors 'none'; base-uri 'none'")
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers["Cache-Control"] = "no-store"
        response.headers["Cross-Origin-Opener-Policy"] = "same-origin"
        return response

    def _page(self, title: str, body: str, *, status: int = 200, refresh: int | None = None,
              form_targets: Sequence[str] = (), session: Session | None = None) -> Response:
        meta = f'<meta http-equiv="refresh" content="{refresh}">' if refresh else ""
        nav = ""
        if session is not None and session.account:
            nav = (f'<p class="muted">Signed in as <b>{_e(session.account)}</b> · '
                   '<a href="/dashboard">Dashboard</a></p>'
                   f'<form method="post" action="/signout">{self._csrf(session)}'
                   '<button type="submit" name="signout">Sign out</button></form>')
        page = (
            '<!doctype html><html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width,initial-scale=1">'
            f'{meta}<title>{_e(title)}</title><link rel="stylesheet" href="/ui.css"></head>'
            f'<body><h1>{_e(title)}</h1>{body}{nav}</body></html>')
        return self._headers(Response(page, status_code=status,
                                      media_type="text/html; charset=utf-8"), form_targets)

    def _message(self, title: str, text: str, *, status: int = 200, error: str | None = None,
                 session: Session | None = None) -> Response:
        code = f' <span class="muted">(<code id="error-code">{_e(error)}</code>)</span>' \
            if error else ""
        cls = "box error" if error else "box ok"
        return self._page(title, f'<div class="{cls}" id="message"><p>{_e(text)}{code}</p>'
                                 '</div>', status=status, session=session)

    @staticmethod
    def _csrf(session: Session) -> str:
        return f'<input type="hidden" name="csrf" value="{_e(session.csrf)}">'

    def _redirect(self, url: str, request: Request, session: Session | None = None
                  ) -> Response:
        response = self._headers(RedirectResponse(url, status_code=303))
        if session is not None:
            self._set_cookie(response, request, session)
        return response

    # -- CSRF ------------------------------------------------------------------------------------

    async def _post(self, request: Request) -> tuple[Session, Mapping[str, str]] | Response:
        """The session and form of a POST, or the refusal: same origin (Origin, else Referer),
        an existing session, and its CSRF token."""
        own = _origin(str(request.url))
        origin = request.headers.get("origin")
        if origin is not None:
            if origin != own:
                return self._message("Refused", "This form came from another site.",
                                     status=403, error="csrf")
        else:
            referer = request.headers.get("referer")
            if referer is None or _origin(referer) != own:
                return self._message("Refused", "This form came from another site.",
                                     status=403, error="csrf")
        session = await self.session(request)
        if session is None:
            return self._message("Session expired", "Your session has expired; open the link "
                                 "again.", status=403, error="csrf")
        try:
            form = await request.form(max_files=0, max_fields=20, max_part_size=MAX_FIELD)
        except Exception:
            return self._message("Bad request", "The form could not be read.", status=400,
                                 error="invalid_request")
        values = {k: v for k, v in form.items() if isinstance(v, str)}
        # Multi-valued: the scopes the person left checked (scope values contain no spaces).
        values["scope"] = " ".join(v for v in form.getlist("scope") if isinstance(v, str))
        token = values.get("csrf", "")
        if not secrets.compare_digest(token.encode(), session.csrf.encode()):
            return self._message("Refused", "The form has expired; reload the page.",
                                 status=403, error="csrf")
        return session, values

    # -- interaction page ------------------------------------------------------------------------

    def _rate_limited(self, client: str) -> bool:
        now = self._now()
        recent = [t for t in self._failures.get(client, []) if now - t < self.code_window]
        self._failures[client] = recent
        return len(recent) >= self.code_failures

    def _count_failure(self, client: str) -> None:
        self._failures.setdefault(client, []).append(self._now())
        if len(self._failures) > self.max_sessions:
            self._failures.pop(next(iter(self._failures)))

    async def interact(self, request: Request) -> Response:
        code_only = self.ps.config.code_only_interaction
        code = request.query_params.get("code", "")
        if code_only:  # one URL for every interaction: the code is the key
            try:
                interaction_id = code_interaction_id(code) if 0 < len(code) <= 64 else ""
            except InvalidInteractionCodeError:
                interaction_id = ""
        else:
            interaction_id = str(request.path_params["interaction_id"])
        callback = request.query_params.get("callback")
        # A session is only made once a code opened something: refused links never add one
        # (sessions are bounded, and a flood must not push out people's real ones).
        session = await self.session(request)
        known = (session.interactions.get(interaction_id)
                 if session is not None and interaction_id else None)
        if known is not None:  # a reload by the browser that already used the code
            return self._redirect(f"/consent/{quote(known, safe='')}", request, session)
        client = request.client.host if request.client else "unknown"
        if self._rate_limited(client):
            return self._message("Too many attempts", "Too many wrong codes; try again later.",
                                 status=429, error="rate_limited")
        if not code or len(code) > 64 or (not code_only and len(interaction_id) > 128):
            self._count_failure(client)
            return self._message("Invalid code", "This link has no valid code.", status=400,
                                 error="invalid_code")
        if callback is not None:
            # Checked before the code is spent, and before anything redirects there.
            try:
                callback = await self.ps.interactions.check_callback(interaction_id, callback)
            except InteractionError as exc:
                if exc.code != "invalid_request":
                    self._count_failure(client)
                    return self._code_refused(exc)
                return self._message("Bad request", "The agent sent an address to return to "
                                     "that its provider does not publish.", status=400,
                                     error="invalid_request")
        try:
            view = await self.ps.interactions.lookup(interaction_id, code)
        except InteractionError as exc:
            if exc.code != "expired":
                self._count_failure(client)
            if callback is not None and exc.code == "expired":
                return self._redirect(callback_redirect(callback, "expired"), request)
            return self._code_refused(exc)
        if session is None:
            session = await self._new_session()
        await self._link(session, view.id, interaction_id=interaction_id, callback=callback)
        return self._redirect(f"/consent/{quote(view.id, safe='')}", request, session)

    def _code_refused(self, exc: InteractionError) -> Response:
        text = {"expired": "This request has expired.",
                "invalid_code": "This code is not valid (wrong, already used, or the "
                                "request has ended)."}.get(exc.code, exc.detail)
        # Never 408 to a browser: Chromium silently retries a 408 on a reused connection
        # (and the retry would see the code already spent).
        status = 410 if exc.code in ("expired", "invalid_code") else exc.status
        return self._message("Cannot continue", text, status=status, error=exc.code)

    async def resource_return(self, request: Request) -> Response:
        pending_id = str(request.path_params["pending_id"])
        nonce = str(request.path_params["nonce"])
        session = await self.session(request)
        if session is None or not session.owns(pending_id):
            return self._message("Not found", "Unknown interaction.", status=404,
                                 error="not_found")
        error = request.query_params.get("error")
        try:
            view = await self.ps.interactions.resource_callback(pending_id, nonce, error)
        except ProtocolError as exc:
            return self._message("Cannot continue", exc.detail, status=_page_status(exc),
                                 error=exc.code, session=session)
        callback = session.callbacks.get(pending_id)
        if error is not None:
            outcome = "denied" if view.state == "denied" else (view.error or "server_error")
            if callback:
                return self._redirect(callback_redirect(callback, outcome), request)
            return self._message("Ended", "The resource ended the request.", error=outcome,
                                 session=session)
        return self._redirect(f"/consent/{quote(pending_id, safe='')}", request)

    # -- sign-in -------------------------------------------------------------------------------

    def _signin_form(self, session: Session, next_url: str, hint: str | None = None,
                     failed: bool = False) -> str:
        warn = ('<div class="box error" id="signin-error"><p>Wrong username or password.</p>'
                '</div>') if failed else ""
        return (
            f'{warn}<form method="post" action="/signin" class="box" id="signin">'
            f'{self._csrf(session)}<input type="hidden" name="next" value="{_e(next_url)}">'
            '<p><label>Username <input type="text" name="username" autocomplete="username" '
            f'value="{_e(hint)}" required></label></p>'
            '<p><label>Password <input type="password" name="password" '
            'autocomplete="current-password" required></label></p>'
            '<button type="submit" name="signin">Sign in</button></form>')

    @staticmethod
    def _safe_next(value: str | None) -> str:
        if value and value.startswith("/") and not value.startswith("//") \
                and "\\" not in value and len(value) < 512:
            return value
        return "/dashboard"

    async def signin_page(self, request: Request) -> Response:
        session, _ = await self._ensure_session(request)
        next_url = self._safe_next(request.query_params.get("next"))
        response = self._page("Sign in", self._signin_form(session, next_url))
        self._set_cookie(response, request, session)
        return response

    async def signin(self, request: Request) -> Response:
        checked = await self._post(request)
        if isinstance(checked, Response):
            return checked
        session, form = checked
        next_url = self._safe_next(form.get("next"))
        username = form.get("username", "")[:256]
        password = form.get("password", "")[:1024]
        account = await self.ps.accounts.aauthenticate(username, password) \
            if username and password else None
        if account is None:
            return self._page("Sign in", self._signin_form(session, next_url, username, True),
                              status=401)
        # A new session id on sign-in (the old one is worthless now), same links.
        session = await self.ps.run(self.sessions.sign_in, session, account.username,
                                    self._now(), self.session_ttl, self.max_sessions)
        return self._redirect(next_url, request, session)

    async def signout(self, request: Request) -> Response:
        checked = await self._post(request)
        if isinstance(checked, Response):
            return checked
        session, _ = checked
        await self.ps.run(self.sessions.delete, session)
        response = self._message("Signed out", "You are signed out.")
        response.delete_cookie(COOKIE, path="/")
        return response

    # -- consent -------------------------------------------------------------------------------

    async def _owned_view(self, request: Request, session: Session | None
                          ) -> InteractionView | Response:
        """The pending request of the path, for the browser that opened it with its code or
        for the signed-in person it waits for (from the dashboard). Anyone else gets the
        same 404 whether or not it exists."""
        pending_id = str(request.path_params["pending_id"])
        refused = self._message("Not found", "Open the link the agent gave you.", status=404,
                                error="not_found", session=session)
        if session is None or len(pending_id) > 128:
            return refused
        if not session.owns(pending_id):
            if session.account is None:
                return refused
            record = await self.ps.run(self.ps.pending.get, pending_id)
            if record is None or record.owner is None or not secrets.compare_digest(
                    record.owner.encode(), session.account.encode()):
                return refused
        view = await self.ps.interactions.get(pending_id)
        if view is None:
            return self._message("Not found", "This request no longer exists.", status=404,
                                 error="not_found", session=session)
        return view

    def _needs_signin(self, session: Session, view: InteractionView) -> bool:
        if session.account is None:
            return True
        return "login" in view.prompt and session.login_seq <= session.arrived.get(view.id, 0)

    async def consent_page(self, request: Request) -> Response:
        session = await self.session(request)
        found = await self._owned_view(request, session)
        if isinstance(found, Response):
            return found
        assert session is not None
        view = found
        if view.state not in ("pending", "interacting"):
            return self._finished(view, session)
        if view.id not in session.arrived:  # arrived from the dashboard: remember when
            await self._link(session, view.id)
        if self._needs_signin(session, view):
            intro = self._summary(view)
            return self._page("Sign in to continue",
                              intro + self._signin_form(session, f"/consent/{view.id}",
                                                        view.login_hint), session=session)
        ri = view.resource_interaction
        if ri is not None and ri.get("state") not in ("done", "failed"):
            try:
                target = await self.ps.interactions.resource_redirect(view.id)
            except ProtocolError as exc:
                return self._message("Cannot continue", exc.detail, status=_page_status(exc),
                                     error=exc.code, session=session)
            return self._redirect(target, request)
        callback = session.callbacks.get(view.id)
        targets = [_origin(callback)] if callback else []
        described = await self._provider_description(view.agent_issuer)
        return self._page("Review this request",
                          self._consent_body(view, session, described),
                          refresh=3 if view.question_open else None, form_targets=targets,
                          session=session)

    def _finished(self, view: InteractionView, session: Session) -> Response:
        text = {"approved": "You approved this request. You can close this window.",
                "completed": "This request is complete. You can close this window.",
                "denied": "You denied this request. You can close this window."}.get(
            view.state, "This request has ended.")
        return self._message("Done", text, error=None if view.state in (
            "approved", "completed", "denied") else (view.error or view.state), session=session)

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

    def _summary(self, view: InteractionView, provider_description: str | None = None) -> str:
        logo = ""
        if view.provider_logo and view.provider_logo.startswith("https://"):
            logo = f'<img class="logo" alt="" src="{_e(view.provider_logo)}"> '
        provider = _e(view.provider_name or view.agent_issuer)
        parts = [f'<div class="box" id="agent"><p>{logo}<b id="provider-name">{provider}</b>'
                 f' agent <code id="agent-id">{_e(view.agent_id)}</code></p>']
        if provider_description:
            parts.append('<div class="untrusted" id="provider-description">'
                         f'{render_markdown(provider_description)}</div>')
        if view.subagent:
            parts.append(f'<p>on behalf of sub-agent <code>{_e(view.subagent)}</code></p>')
        if view.platform or view.device:
            parts.append(f'<p class="muted">Running on {_e(view.platform or "")} '
                         f'{_e(view.device or "")}</p>')
        if view.new_agent:
            parts.append('<p><b>This agent is new:</b> approving connects it to your account. '
                         'Only continue if you started this yourself.</p>')
        parts.append("</div>")
        return "".join(parts)

    def _consent_body(self, view: InteractionView, session: Session,
                      provider_description: str | None = None) -> str:
        out = [self._summary(view, provider_description)]
        out.append(f'<p>Request: <b id="kind">{_e(view.kind.replace("_", " "))}</b></p>')
        if view.resource is not None:
            r = view.resource
            out.append(
                f'<h2>Resource</h2><div class="box" id="resource"><p><b>'
                f'{_e(r.name or r.identifier)}</b> <code>{_e(r.identifier)}</code>'
                f'{" · " + _e(r.access_mode) if r.access_mode else ""}</p>'
                f'<div class="untrusted" id="resource-description">'
                f'{render_markdown(r.description)}</div></div>')
        if view.r3 is not None:
            out.append(self._r3(view.r3))
        if view.scopes:
            # For an auth token the person may grant less than asked (never more); an R3
            # document (a per-call proposal above all) is approved or denied as a whole.
            choose = view.kind == "auth_token" and view.r3 is None
            items = "".join(
                '<li>' + (f'<label><input type="checkbox" form="decide" name="scope" '
                          f'value="{_e(s.scope)}" checked> ' if choose else "")
                + f'<code>{_e(s.scope)}</code>{" (about you)" if s.identity else ""}'
                + ("</label>" if choose else "")
                + f'<div class="untrusted">{render_markdown(s.description)}</div></li>'
                for s in view.scopes)
            out.append(f'<h2>Access requested</h2><ul id="scopes">{items}</ul>')
        if view.justification:
            out.append('<h2>Why, according to the agent</h2><div class="box untrusted" '
                       f'id="justification">{render_markdown(view.justification)}</div>')
        if view.mission is not None:
            m = view.mission
            tools = "".join(f"<li><code>{_e(t.get('name'))}</code></li>" for t in m.tools)
            out.append('<h2>Mission</h2><div class="box untrusted" id="mission">'
                       f'{render_markdown(m.description)}'
                       f'{"<ul>" + tools + "</ul>" if tools else ""}</div>')
        shown = {k: v for k, v in view.details.items()
                 if k in ("description", "summary", "action", "question", "url",
                          "parameters", "resource")}
        if shown and view.kind not in ("auth_token", "person_token", "mission"):
            rows = "".join(f"<tr><th>{_e(k)}</th><td>{render_markdown(str(v))}</td></tr>"
                           for k, v in shown.items())
            out.append(f'<h2>Details</h2><table id="details">{rows}</table>')
        out.append(self._chat(view, session))
        if view.account is not None and view.account != session.account:
            out.append('<div class="box error" id="other-person"><p>This agent acts for '
                       'another person; you cannot approve for it.</p></div>')
        offered = ('<input type="hidden" name="scopes_offered" value="1">'
                   if view.kind == "auth_token" and view.scopes and view.r3 is None else "")
        answer = ""
        if view.kind == "question":
            answer = ('<p><label>Your answer <textarea name="answer" rows="3" maxlength="2000">'
                      '</textarea></label></p>')
        out.append(
            f'<form method="post" action="/consent/{_e(view.id)}" class="box" id="decide">'
            f'{self._csrf(session)}{answer}'
            f'{offered}'
            '<button type="submit" name="action" value="approve" id="approve">Approve</button>'
            '<button type="submit" name="action" value="deny" id="deny">Deny</button>'
            '</form>')
        return "".join(out)

    @staticmethod
    def _r3(r3: R3View) -> str:
        """What the resource says the request does (R3 ``display``): for a per-call proposal,
        this one call and its parameters. The summary is text, the other members sanitized
        Markdown, parameter values escaped text -- all of it from the resource."""
        title = "This call" if r3.per_call else "What the resource says this allows"
        out = [f'<h2>{title}</h2><div class="box untrusted" id="r3">']
        if r3.summary:
            out.append(f'<p id="r3-summary"><b>{_e(r3.summary)}</b></p>')
        if r3.detail:
            out.append(f'<div id="r3-detail">{render_markdown(r3.detail)}</div>')
        for name, label in (("implications", "Implications"),
                            ("data_accessed", "Data accessed")):
            value = getattr(r3, name)
            if value:
                out.append(f'<p><b>{label}:</b></p><div id="r3-{name.replace("_", "-")}">'
                           f'{render_markdown(value)}</div>')
        if r3.irreversible:
            out.append('<div class="box error" id="r3-irreversible"><p><b>Cannot be undone:'
                       f'</b></p>{render_markdown(r3.irreversible)}</div>')
        if r3.per_call:
            rows = "".join(
                f'<tr><th><code>{_e(name)}</code></th><td>{_parameter(value)}</td></tr>'
                for name, value in r3.parameters.items())
            out.append('<p><b>Parameters</b> (as the resource will run the call):</p>'
                       f'<table id="r3-parameters">{rows}</table>'
                       '<p class="muted" id="r3-once">Approving allows this one call, once.'
                       '</p>')
        operations = ", ".join(f"<code>{_e(o)}</code>" for o in r3.operations)
        out.append(f'<p class="muted">Operations: {operations} · document SHA-256 '
                   f'<code id="r3-s256">{_e(r3.s256)}</code></p></div>')
        return "".join(out)

    def _chat(self, view: InteractionView, session: Session) -> str:
        if not view.can_clarify and not view.clarifications:
            return ""
        rounds = []
        for n, c in enumerate(view.clarifications):
            answer = (f'<div class="untrusted answer" id="answer-{n}">'
                      f'{render_markdown(c.answer)}</div>' if c.answer is not None else
                      f'<p class="muted" id="waiting-{n}">Waiting for the agent\'s answer…</p>')
            rounds.append(f'<div class="box"><p><b>You:</b></p><div class="question">'
                          f'{render_markdown(c.question)}</div><p><b>Agent:</b></p>'
                          f'{answer}</div>')
        form = ""
        if view.can_clarify and not view.question_open and view.rounds_left > 0:
            form = (f'<form method="post" action="/consent/{_e(view.id)}" id="ask">'
                    f'{self._csrf(session)}<p><label>Ask the agent a question '
                    f'<textarea name="question" rows="2" maxlength="{MAX_QUESTION}" required>'
                    '</textarea></label></p><button type="submit" name="action" value="ask">'
                    f'Ask</button> <span class="muted">{view.rounds_left} question(s) left'
                    '</span></form>')
        elif view.can_clarify and view.rounds_left == 0:
            form = '<p class="muted" id="no-more-questions">No more questions allowed.</p>'
        return f'<h2>Questions</h2><div id="chat">{"".join(rounds)}{form}</div>'

    async def consent_post(self, request: Request) -> Response:
        checked = await self._post(request)
        if isinstance(checked, Response):
            return checked
        session, form = checked
        found = await self._owned_view(request, session)
        if isinstance(found, Response):
            return found
        view = found
        action = form.get("action")
        callback = session.callbacks.get(view.id)
        here = f"/consent/{quote(view.id, safe='')}"
        interactions = self.ps.interactions
        # §PS Approval Endpoint Authentication: consent and denial alike need the person.
        if self._needs_signin(session, view):
            return self._redirect(here, request)
        assert session.account is not None
        try:
            if action == "deny":
                await interactions.deny(view.id)
                if callback:
                    return self._redirect(callback_redirect(callback, "denied"), request)
                return self._redirect(here, request)
            if action == "abandon":
                await interactions.abandon(view.id)
                if callback:
                    return self._redirect(callback_redirect(callback, "abandoned"), request)
                return self._redirect(here, request)
            if action == "ask":
                question = form.get("question", "").strip()
                if not question or len(question) > MAX_QUESTION:
                    return self._message("Bad question", "Ask a question of at most "
                                         f"{MAX_QUESTION} characters.", status=400,
                                         error="invalid_request", session=session)
                await interactions.ask(view.id, question)
                return self._redirect(here, request)
            if action == "approve":
                if view.kind == "question":
                    await interactions.approve(view.id, session.account,
                                               answer=form.get("answer", "")[:MAX_QUESTION])
                elif view.kind == "relay":
                    await interactions.relay_engaged(view.id, session.account)
                elif view.kind == "auth_token" and form.get("scopes_offered") == "1":
                    requested = [s.scope for s in view.scopes]
                    chosen = set(form.get("scope", "").split())
                    granted = [s for s in requested if s in chosen]
                    if not granted:
                        return self._message("Nothing chosen", "Choose at least one kind of "
                                             "access, or deny the request.", status=400,
                                             error="invalid_request", session=session)
                    await interactions.approve(view.id, session.account,
                                               scopes=granted if granted != requested
                                               else None)
                else:
                    await interactions.approve(view.id, session.account)
                if callback:
                    return self._redirect(callback_redirect(callback), request)
                return self._redirect(here, request)
        except ProtocolError as exc:
            if exc.code == "expired" and callback:
                return self._redirect(callback_redirect(callback, "expired"), request)
            return self._message("Cannot continue", exc.detail,
                                 status=_page_status(exc),
                                 error=exc.code, session=session)
        return self._message("Bad request", "Unknown action.", status=400,
                             error="invalid_request", session=session)

    # -- dashboard -------------------------------------------------------------------------------

    async def dashboard(self, request: Request) -> Response:
        session = await self.session(request)
        if session is None or session.account is None:
            return self._redirect("/signin?next=/dashboard", request)
        ps = self.ps
        account = session.account
        bindings = await ps.run(ps.state.bindings_for, account)
        missions = await ps.missions_for(account)
        out = [await self._waiting(account)]
        out.append('<h2>Connected agents</h2>')
        if not bindings:
            out.append('<p class="muted" id="no-agents">No agents are connected.</p>')
        out.append('<ul id="agents">')
        for b in bindings:
            out.append(
                f'<li class="box"><code>{_e(b.agent_id)}</code> '
                f'<span class="muted">from {_e(b.agent_iss)} ({_e(b.how)})</span>'
                f'<form method="post" action="/dashboard/unbind">{self._csrf(session)}'
                f'<input type="hidden" name="agent_iss" value="{_e(b.agent_iss)}">'
                f'<input type="hidden" name="agent_id" value="{_e(b.agent_id)}">'
                '<button type="submit">Revoke</button></form></li>')
        out.append('</ul><h2>Missions</h2>')
        if not missions:
            out.append('<p class="muted" id="no-missions">No missions.</p>')
        out.append('<ul id="missions">')
        for m in missions:
            log = await ps.mission_log(m.s256)
            entries = "".join(
                f'<li><span class="muted">#{e.seq}</span> <b>{_e(e.kind)}</b> '
                f'{render_markdown(_log_text(e.data))}</li>' for e in log)
            terminate = ""
            if m.state == "active":
                terminate = (f'<form method="post" action="/dashboard/terminate">'
                             f'{self._csrf(session)}<input type="hidden" name="s256" '
                             f'value="{_e(m.s256)}"><button type="submit">Terminate</button>'
                             '</form>')
            reason = f" ({_e(m.termination_reason)})" if m.termination_reason else ""
            out.append(
                f'<li class="box mission"><div class="untrusted">'
                f'{render_markdown(m.description)}</div><p class="muted">'
                f'<code>{_e(m.agent_id)}</code> · {_e(m.state)}{reason}</p>'
                f'<details><summary>Log ({len(log)})</summary><ul>{entries}</ul></details>'
                f'{terminate}</li>')
        out.append('</ul>')
        return self._page("Your agents", "".join(out), session=session)

    async def _waiting(self, account: str) -> str:
        """"Waiting for you": the open requests of agents bound to ``account`` (§Deferred
        Responses), each with a link to its consent page -- no code needed by their owner."""
        ps = self.ps
        records = await ps.run(ps.pending.open_for_owner, account, self._now(), WAITING_LIMIT)
        out = ['<h2>Waiting for you</h2>']
        if not records:
            out.append('<p class="muted" id="nothing-waiting">Nothing is waiting for you.</p>')
        out.append('<ul id="waiting">')
        for record in records:
            req = PendingRequest.from_json(record.data)
            resource = req.resource
            where = ""
            if resource is not None:
                where = (f' at <b>{_e(resource.name or resource.identifier)}</b> '
                         f'<code>{_e(resource.identifier)}</code>')
            scopes = " ".join(str(s) for s in req.request.get("scopes", ()))
            scope = f' · scope <code class="scope">{_e(scopes)}</code>' if scopes else ""
            r3 = req.request.get("r3")
            summary = (r3.get("display") or {}).get("summary") if isinstance(r3, Mapping) \
                else None
            if isinstance(summary, str):  # what the resource says this call does (R3)
                scope += f'<p class="untrusted r3-summary">{_e(summary)}</p>'

            created = datetime.fromtimestamp(record.created_at, timezone.utc)
            out.append(
                f'<li class="box waiting" data-pending="{_e(record.id)}">'
                f'<code class="agent">{_e(req.agent_id)}</code> asks: '
                f'<b>{_e(req.kind.replace("_", " "))}</b>{where}{scope}'
                f'<p class="muted">needs {_e(req.requirement)} · since '
                f'<time datetime="{created.isoformat()}">'
                f'{created.strftime("%Y-%m-%d %H:%M UTC")}</time></p>'
                f'<a class="review" href="/consent/{_e(quote(record.id, safe=""))}">Review</a>'
                '</li>')
        out.append('</ul>')
        return "".join(out)

    async def unbind(self, request: Request) -> Response:
        checked = await self._post(request)
        if isinstance(checked, Response):
            return checked
        session, form = checked
        if session.account is None:
            return self._redirect("/signin?next=/dashboard", request)
        ps = self.ps
        binding = await ps.run(ps.state.binding, form.get("agent_iss", ""),
                               form.get("agent_id", ""))
        if binding is None or binding.account != session.account:
            return self._message("Not found", "No such agent.", status=404, error="not_found",
                                 session=session)
        await ps.unbind_agent(binding.agent_id, issuer=binding.agent_iss)
        return self._redirect("/dashboard", request)

    async def terminate(self, request: Request) -> Response:
        checked = await self._post(request)
        if isinstance(checked, Response):
            return checked
        session, form = checked
        if session.account is None:
            return self._redirect("/signin?next=/dashboard", request)
        mission = await self.ps.mission(form.get("s256", ""))
        if mission is None or mission.account != session.account:
            return self._message("Not found", "No such mission.", status=404,
                                 error="not_found", session=session)
        await self.ps.terminate_mission(mission.s256, "revoked")
        return self._redirect("/dashboard", request)

    async def css(self, request: Request) -> Response:
        response = Response(CSS, media_type="text/css")
        self._headers(response)
        response.headers["Cache-Control"] = "public, max-age=3600"
        return response

    # -- routes ----------------------------------------------------------------------------------

    def routes(self) -> list[BaseRoute]:
        """The UI routes, for ``create_person_server(..., routes=...)``."""

        def guard(handler: Callable[[Request], Awaitable[Response]]
                  ) -> Callable[[Request], Awaitable[Response]]:
            async def endpoint(request: Request) -> Response:
                try:
                    return await handler(request)
                except Exception:
                    import logging

                    logging.getLogger("aauth_agents.ps.ui").exception(
                        "%s %s failed", request.method, request.url.path)
                    return self._message("Error", "Something went wrong.", status=500,
                                         error="server_error")
            return endpoint

        interact = self.ps.config.paths["interact"]
        return [
            Route(interact + "/callback/{pending_id}/{nonce}", guard(self.resource_return),
                  methods=["GET"]),
            Route(interact if self.ps.config.code_only_interaction
                  else interact + "/{interaction_id}", guard(self.interact), methods=["GET"]),
            Route("/consent/{pending_id}", guard(self.consent_page), methods=["GET"]),
            Route("/consent/{pending_id}", guard(self.consent_post), methods=["POST"]),
            Route("/signin", guard(self.signin_page), methods=["GET"]),
            Route("/signin", guard(self.signin), methods=["POST"]),
            Route("/signout", guard(self.signout), methods=["POST"]),
            Route("/dashboard", guard(self.dashboard), methods=["GET"]),
            Route("/dashboard/unbind", guard(self.unbind), methods=["POST"]),
            Route("/dashboard/terminate", guard(self.terminate), methods=["POST"]),
            Route("/ui.css", self.css, methods=["GET"]),
        ]


def _parameter(value: Any) -> str:
    """A proposal's parameter value as escaped text; a digest by its excerpt and hash."""
    if is_digest(value):
        excerpt = value.get("excerpt")
        shown = f"<code>{_e(excerpt)}</code> " if excerpt else ""
        return f'{shown}<span class="muted">(SHA-256 <code>{_e(value["s256"])}</code>)</span>'
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return f"<code>{_e(text[:MAX_FIELD])}</code>"


def _log_text(data: Mapping[str, Any]) -> str:
    for key in ("description", "summary", "question", "clarification", "answer", "reason",
                "action"):
        value = data.get(key)
        if isinstance(value, str):
            return value
    return ""


def ui_routes(ps: PersonServer, **options: Any) -> list[BaseRoute]:
    """The person's pages for ``ps``: ``create_person_server(ps, routes=ui_routes(ps))``."""
    return PersonServerUI(ps, **options).routes()


def create_person_server_with_ui(config: PersonServerConfig | PersonServer,
                                 **options: Any) -> Starlette:
    """A person server app with the person's pages (:func:`ui_routes`) mounted."""
    from .app import create_person_server

    ps = config if isinstance(config, PersonServer) else PersonServer(config)
    ui = PersonServerUI(ps, **options)
    app = create_person_server(ps, routes=ui.routes())
    app.state.person_server_ui = ui
    return app


__all__ = ["COOKIE", "PersonServerUI", "Session", "create_person_server_with_ui", "ui_routes"]
