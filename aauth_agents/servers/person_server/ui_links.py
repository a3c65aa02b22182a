"""The interaction link of the person's pages: ``GET {interact}/{interaction_id}?code=...``
(§User Interaction) and signing in on its signed-out view.

§Interaction Code Format makes the code a correlation identifier, not an authorization
credential: opening the link spends nothing and changes nothing
(:meth:`~.interactions.Interactions.lookup`); the person's decision consumes the code. So a
link survives a chat app's preview, a second browser and a closed tab, for as long as the
request waits:

* A browser with a session (signed in, or anonymous from an earlier visit) is linked to the
  request and redirected to ``/consent/{id}``, so the code leaves the address bar; the same
  browser re-opening the link goes straight there.
* A browser without one -- a new browser, a closed private window, and every link preview
  (Slackbot, iMessage: a ``GET`` or ``HEAD`` without cookies) -- sees the request signed out,
  with a sign-in form, and nothing is stored: no session (sessions are bounded, and a flood
  of previews must not push out people's), no state change, the code unspent. The form has
  no session to carry a CSRF token, so the page double-submits one (a cookie scoped to the
  link and the form's hidden field, :func:`~.csrf.checked_sessionless_post`). Signing in
  there (``POST`` to the link) checks the code again, makes the signed-in session, links
  the request (seen before this sign-in, which therefore satisfies ``prompt=login``) and
  goes on to ``/consent/{id}``. There the signed-in person engages: the agent's polls say
  ``interacting`` and a new agent's request becomes theirs
  (:meth:`~.interactions.Interactions.mark_interacting`).

A ``callback`` is checked before anything else with
:meth:`~.interactions.Interactions.check_callback` (its provider must publish it, §User
Interaction); otherwise ``invalid_request`` and the browser is never sent there. A wrong code
for a real interaction counts against the request (``code_attempts``, then it fails for
good) and against the client address (``code_failures`` per ``code_window`` seconds, then
429 with ``Retry-After``); a made-up interaction id guesses nobody's code and counts against
nothing, so one client cannot lock out everyone behind its NAT. The address is
:func:`~aauth_agents.servers.proxies.client_address` (forwarding headers only from a
configured trusted proxy) and the count lives in ``ps.attempts``, shared by every worker on
the PS database. An expired request says so (or sends the browser to the callback with
``interaction_expired``). With ``code_only_interaction`` the link is the fixed
``{interact}?code=...`` and the interaction id is derived from the code
(:func:`~.interactions.code_interaction_id`); a wrong code names no interaction, so there
every code that finds nothing counts against the address -- the only limit left.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response

from ...protocol.interaction import InvalidInteractionCodeError
from ..proxies import address_bucket, client_address
from . import csrf
from .errors import WrongCodeError
from .interactions import InteractionError, InteractionView, callback_redirect, code_interaction_id
from .signins import SignInRefused
from .ui_pages import PageError, url_path
from .ui_sessions import Session

if TYPE_CHECKING:
    from .ui import PersonServerUI

#: The cookie carrying the sign-in form's token of a signed-out interaction page.
LINK_COOKIE = "aauth_ps_link"

Opened = tuple[InteractionView, str | None]


class InteractionLinks:
    """The interaction link routes of one :class:`~.ui.PersonServerUI`."""

    def __init__(self, ui: PersonServerUI, *, code_failures: int, code_window: float) -> None:
        self.ui = ui
        self.ps = ui.ps
        self.code_failures = code_failures
        self.code_window = code_window

    # -- wrong codes per client address -----------------------------------------------------------

    @staticmethod
    def _key(address: str) -> str:
        return "interact:" + address_bucket(address)

    async def _check_address(self, address: str) -> None:
        """Refuse (429) an address that gave ``code_failures`` wrong codes this window."""
        now = float(self.ps.clock())
        if await self.ps.attempts.acount(self._key(address), now=now) >= self.code_failures:
            raise PageError(
                429,
                "Too many attempts",
                "Too many wrong codes; try again later.",
                code="rate_limited",
                headers={"Retry-After": str(math.ceil(self.code_window))},
            )

    async def _count_failure(self, address: str, exc: InteractionError | None = None) -> None:
        """Count a wrong code against ``address``: one that named a real, open interaction
        (:class:`~.errors.WrongCodeError`) -- a made-up interaction id is no guess at
        anyone's code, and counting it would let one client lock out everyone behind its
        NAT. With ``code_only_interaction`` the code is all there is: every code that finds
        nothing counts (``exc`` is ``None`` for one that is malformed)."""
        if isinstance(exc, WrongCodeError) or (
            self.ps.config.code_only_interaction and (exc is None or exc.code == "invalid_code")
        ):
            now = float(self.ps.clock())
            await self.ps.attempts.ahit(self._key(address), now=now, window=self.code_window)

    # -- routes ----------------------------------------------------------------------------------

    async def interact(self, request: Request) -> Response:
        """``GET``/``HEAD`` of the link: see the module docstring."""
        code = request.query_params.get("code", "")
        interaction_id = self._interaction_of(request, code)
        ui = self.ui
        session = await ui.session(request)
        known = (
            session.interactions.get(interaction_id)
            if session is not None and interaction_id
            else None
        )
        if known is not None:  # a reload by a browser that already opened it
            return ui._redirect(url_path(request, "consent", pending_id=known), request, session)
        opened = await self._open(
            request, interaction_id, code, request.query_params.get("callback")
        )
        if isinstance(opened, Response):
            return opened
        view, callback = opened
        if session is None:
            return self._signed_out(request, view, code, callback)
        await ui._link(session, view.id, interaction_id=interaction_id, callback=callback)
        return ui._redirect(url_path(request, "consent", pending_id=view.id), request, session)

    async def signin(self, request: Request) -> Response:
        """``POST`` to the link: sign in on the signed-out view, then on to the consent page."""
        form = await csrf.checked_sessionless_post(request, LINK_COOKIE)
        code = form.get("code", "")
        interaction_id = self._interaction_of(request, code)
        opened = await self._open(request, interaction_id, code, form.get("callback") or None)
        if isinstance(opened, Response):
            return opened
        view, callback = opened
        try:
            username, account = await self.ui.authenticate(request, form)
        except SignInRefused as refused:
            response = self._signed_out(
                request,
                view,
                code,
                callback,
                hint=form.get("username", "")[:256],
                failed=refused.message,
                status=refused.status,
            )
            response.headers.update(refused.headers())
            return response
        if account is None:
            return self._signed_out(request, view, code, callback, hint=username, failed=True)
        ui = self.ui
        # The session is made now, signed in (from a session that was never stored).
        session = await self.ps.run(
            ui.sessions.sign_in,
            Session(id="", csrf=""),
            account.username,
            float(self.ps.clock()),
            ui.session_ttl,
            ui.max_sessions,
        )
        # Seen before this sign-in (login_seq 0): the sign-in counts for prompt=login.
        await ui._link(
            session, view.id, interaction_id=interaction_id, callback=callback, arrived=0
        )
        return ui._redirect(url_path(request, "consent", pending_id=view.id), request, session)

    # -- internals -------------------------------------------------------------------------------

    def _interaction_of(self, request: Request, code: str) -> str:
        """The interaction id of a link (from its path, or from the code alone)."""
        if not self.ps.config.code_only_interaction:
            return str(request.path_params["interaction_id"])
        try:
            return code_interaction_id(code) if 0 < len(code) <= 64 else ""
        except InvalidInteractionCodeError:
            return ""

    async def _open(
        self, request: Request, interaction_id: str, code: str, callback: str | None
    ) -> Opened | Response:
        """The request behind the link and its checked callback; nothing is spent. A refusal
        is a :class:`PageError` (or, for an expired request with a callback, the redirect
        there)."""
        client = client_address(request)
        await self._check_address(client)
        if (
            not code
            or len(code) > 64
            or (not self.ps.config.code_only_interaction and len(interaction_id) > 128)
        ):
            await self._count_failure(client)
            raise PageError(
                400, "Invalid code", "This link has no valid code.", code="invalid_code"
            )
        if callback is not None:
            callback = await self._checked_callback(interaction_id, callback, client)
        try:
            view = await self.ps.interactions.lookup(interaction_id, code)
        except InteractionError as exc:
            await self._count_failure(client, exc)
            if callback is not None and exc.code == "expired":
                return self.ui._redirect(callback_redirect(callback, "expired"), request)
            raise code_refused(exc) from exc
        return view, callback

    async def _checked_callback(self, interaction_id: str, callback: str, client: str) -> str:
        try:
            return await self.ps.interactions.check_callback(interaction_id, callback)
        except InteractionError as exc:
            if exc.code != "invalid_request":
                await self._count_failure(client, exc)
                raise code_refused(exc) from exc
            raise PageError(
                400,
                "Bad request",
                "The agent sent an address to return to that its provider does not publish.",
                code="invalid_request",
            ) from exc

    def _signed_out(
        self,
        request: Request,
        view: InteractionView,
        code: str,
        callback: str | None,
        *,
        hint: str | None = None,
        failed: bool | str = False,
        status: int | None = None,
    ) -> Response:
        """The request as a browser without a session sees it: who asks, and a sign-in form
        posting back to the link. Stores nothing; the form's token goes in a cookie."""
        token = csrf.new_token()
        fields = [("code", code)] + ([("callback", callback)] if callback else [])
        response = self.ui.pages.page(
            request,
            "consent_signin.html",
            title="Sign in to continue",
            status=status or (401 if failed else 200),
            signin_session=Session(id="", csrf=token),
            signin_action=request.url.path,
            signin_fields=fields,
            view=view,
            provider_description=None,
            next_url="",
            hint=hint if hint is not None else view.login_hint,
            failed=failed,
        )
        response.set_cookie(
            LINK_COOKIE,
            token,
            max_age=int(self.ui.session_ttl),
            path=request.url.path,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        return response


def code_refused(exc: InteractionError) -> PageError:
    """A refused code as a page: gone (410) when wrong, used up or expired."""
    text = {
        "expired": "This request has expired.",
        "invalid_code": "This code is not valid (wrong, already used, or the request has ended).",
    }.get(exc.code, exc.detail)
    # Never 408 to a browser: Chromium silently retries a 408 on a reused connection.
    status = 410 if exc.code in ("expired", "invalid_code") else exc.status
    return PageError(status, "Cannot continue", text, code=exc.code)


__all__ = ["LINK_COOKIE", "InteractionLinks", "code_refused"]
