"""The resource's own interaction page (§Resource-Managed Authorization): the person opens
the interaction URL with the code the agent showed, sees what the agent asks, and approves
or denies; the decision resolves the pending record (:mod:`.pending`).

Pages come from Jinja2 templates (``templates/``, autoescaped), are never cached or framed
and load nothing (``Content-Security-Policy: default-src 'none'``). The code is checked in
constant time; a wrong code counts against its record (§Interaction Code Format), and a
decision needs the page token of the page the person saw and, to approve, a signed-in
person (:attr:`ResourceConfig.person_authenticator`).

The code is a correlation identifier (§Interaction Code Format): opening the page stores
nothing and spends nothing, so a link preview (a cookie-less ``GET`` or ``HEAD``), a second
browser or a re-opened tab show the same request while it waits. The page token is derived
from the record's code (an HMAC of the record id keyed with it), so it is the same on every
showing and dies with the code when the decision consumes it
(:data:`~aauth_agents.stores.states.CODE_ENDS`); the agent's ``callback`` travels in the form.
A ``GET`` by a person the authenticator recognises marks the record ``interacting``.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from ..httpsig import HttpRequest
from ..protocol.encoding import b64url_encode
from ..protocol.errors import ConfigurationError
from ..protocol.identifiers import LOOPBACK_HOSTS
from ..protocol.interaction import codes_match
from ..protocol.reply import NO_STORE as _NO_STORE
from ..protocol.reply import Reply
from ..protocol.wire import WireFormatError
from ..stores import OPEN, PENDING, Event, PendingRecord, advance
from . import events as ev
from .config import maybe_await
from .pending_kinds import pending_kind
from .requests import parse_interaction_form

if TYPE_CHECKING:
    from jinja2 import Environment

    from .server import AAuthResource

_HTML = "text/html; charset=utf-8"
_PAGE_HEADERS = (
    ("Content-Type", _HTML),
    _NO_STORE,
    ("Content-Security-Policy", "default-src 'none'"),
    ("X-Frame-Options", "DENY"),
)


def templates() -> Environment:
    """The page templates (package data), autoescaped."""
    from jinja2 import Environment, PackageLoader

    return Environment(
        loader=PackageLoader("aauth_agents.resource", "templates"),
        autoescape=True,
        auto_reload=False,
    )


class InteractionPage:
    """The interaction page of ``resource``: :meth:`serve` answers
    ``{paths.interaction}/{interaction_id}``."""

    def __init__(self, resource: AAuthResource) -> None:
        self.resource = resource
        self.config = resource.config
        self.stores = resource.stores
        self.clock = resource.clock
        self.events = resource.events
        self._templates: Environment | None = None

    def page(
        self,
        status: int,
        title: str,
        message: str | None = None,
        headers: Iterable[tuple[str, str]] = (),
        *,
        template: str = "page.html",
        **context: Any,
    ) -> Reply:
        """A page of the resource's own: ``template`` with ``title``, ``message`` (a
        paragraph) and ``context``."""
        if self._templates is None:
            self._templates = templates()
        document = self._templates.get_template(template).render(
            title=title, message=message, **context
        )
        return Reply(status, (*_PAGE_HEADERS, *headers), document.encode())

    async def serve(
        self, request: HttpRequest, interaction_id: str, starlette_request: Any = None
    ) -> Reply:
        """GET: check the code and show the consent page; POST: the person's decision."""
        record = await self.stores.pending.aget_by_interaction(interaction_id)
        if record is None or not pending_kind(record.kind).consent_page:
            return self.page(404, "Not found", "There is no such request.")
        if request.method.upper() == "POST":
            return await self._decision(request, record, starlette_request)
        if request.method.upper() not in ("GET", "HEAD"):
            return self.page(405, "Method not allowed", None, [("Allow", "GET, POST")])
        query = dict(_query_pairs(request.query))
        now = self.clock()
        if now >= record.expires_at:
            return self.page(408, "Expired", "This request has expired.")
        if record.state not in OPEN or record.code is None:
            return self.page(410, "Already used", "This code has been used or is no longer valid.")
        refusal = await self._check_code(record, query.get("code", ""))
        if refusal is not None:
            return refusal
        callback = query.get("callback")
        kept = callback if _safe_callback(callback) else None
        if (
            request.method.upper() == "GET"
            and record.state == PENDING
            and await self._person(starlette_request)
        ):  # the signed-in person is here: the agent's polls say interacting
            record = await self.stores.pending.areplace(advance(record, Event.ARRIVE)) or record
        return self._consent(record, _page_token(record), kept)

    async def _person(self, starlette_request: Any) -> str | None:
        """The person signed in at the resource, if any."""
        authenticate = self.config.person_authenticator
        if authenticate is None or starlette_request is None:
            return None
        subject = await maybe_await(authenticate(starlette_request))
        return str(subject) if subject else None

    async def _check_code(self, record: PendingRecord, presented: str) -> Reply | None:
        """``None`` when ``presented`` is the record's code; else count the attempt (the
        record fails at ``max_code_attempts``) and answer."""
        assert record.code is not None
        try:
            matches = codes_match(record.code, presented)
        except ConfigurationError:  # pragma: no cover - stored codes are normalized
            matches = False
        if matches:
            return None
        attempts = record.code_attempts + 1
        failed = attempts >= self.config.max_code_attempts
        await self.stores.pending.areplace(
            advance(record, Event.FAIL, code_attempts=attempts)
            if failed
            else record.evolve(code_attempts=attempts)
        )
        self.events.emit(ev.DENIED, "invalid_code", pending=record.id, attempts=attempts)
        return self.page(
            410 if failed else 400, "Invalid code", "That code is not valid for this request."
        )

    def _consent(self, record: PendingRecord, page_token: str, callback: str | None) -> Reply:
        name = self.config.name or self.config.identifier
        describe = self.config.scope_descriptions
        return self.page(
            200,
            f"Allow access to {name}?",
            template="consent.html",
            name=name,
            agent=str(record.data.get("agent") or "an AI agent"),
            scopes=[(s, describe.get(s, "")) for s in record.data.get("scopes", [])],
            action=self.resource.interaction_url(record.interaction_id or ""),
            page_token=page_token,
            callback=callback,
        )

    async def _decision(
        self, request: HttpRequest, record: PendingRecord, starlette_request: Any
    ) -> Reply:
        try:
            form = parse_interaction_form(request.body)
        except WireFormatError as exc:
            return self.page(400, "Bad request", exc.detail)
        if (
            record.state not in OPEN
            or record.code is None
            or not hmac.compare_digest(_page_token(record).encode(), form.page_token.encode())
        ):
            return self.page(410, "Already used", "This page is no longer valid.")
        if self.clock() >= record.expires_at:
            return self.page(408, "Expired", "This request has expired.")
        callback = form.callback if _safe_callback(form.callback) else None
        if form.decision == "deny":
            await self.resource.reject(record.id)
            return self._finish(callback, "access_denied", "You denied the request.")
        subject = await self._person(starlette_request)
        if not subject:
            return self.page(
                401, "Sign in required", "Sign in to this service, then approve again."
            )
        await self.resource.resolve(record.id, subject=str(subject))
        return self._finish(callback, None, "Done. You can close this page.")

    def _finish(self, callback: object, error: str | None, text: str) -> Reply:
        """Back to the agent's callback (with ``error`` when denied), else a last page."""
        if isinstance(callback, str) and _safe_callback(callback):
            target = callback
            if error is not None:
                target += ("&" if urlsplit(callback).query else "?") + urlencode({"error": error})
            return Reply(303, (("Location", target), _NO_STORE), b"")
        return self.page(200, "Thank you", text)


def _page_token(record: PendingRecord) -> str:
    """The page token of ``record`` while it has a code: the same on every showing, and
    worthless once the decision consumed the code."""
    assert record.code is not None
    digest = hmac.new(record.code.encode(), record.id.encode(), hashlib.sha256).digest()
    return b64url_encode(digest)


def _query_pairs(query: str) -> list[tuple[str, str]]:
    try:
        return parse_qsl(query, keep_blank_values=True, max_num_fields=16)
    except ValueError:
        return []


def _safe_callback(url: object) -> bool:
    """A callback we may redirect a browser to: https, or http on the loopback host
    (§User Interaction: the agent's ``callback_endpoint``, or a localhost callback)."""
    if not isinstance(url, str) or len(url) > 2048:
        return False
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    if parts.username or parts.password or not parts.hostname:
        return False
    return parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS)


__all__ = ["InteractionPage"]
