"""Cross-site request forgery protection of the person's pages, all of it in one place.

* :func:`new_token` -- each browser session gets its own random token
  (:mod:`.ui_sessions` stores it; a new one on sign-in).
* :func:`hidden_field` -- the token as the hidden ``csrf`` field every form carries (the
  templates call it as ``csrf_field(session)``).
* :func:`checked_post` -- what every POST handler starts with: the request must come from the
  page's own origin (``Origin``, or failing that ``Referer``, equal to the request's own
  origin -- not the issuer: the UI may be reached over loopback http), from a live session,
  with that session's token in the form. Anything else is refused with a
  :class:`~.ui_pages.PageError` (403, code ``csrf``) before the form does anything.
* :func:`checked_sessionless_post` -- the one form posted before any session exists: signing
  in on the signed-out view of an interaction link (:mod:`.ui_links`), which makes no
  session until the person signs in. The same origin check, and the token is
  double-submitted: the page set it in a cookie and put it in the form; both must match.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from markupsafe import Markup
from starlette.requests import Request

from .ui_pages import PageError

if TYPE_CHECKING:
    from .ui_sessions import Session

#: The form field that carries the token.
FIELD = "csrf"
#: The most bytes one form field may have.
MAX_FIELD = 4096
#: The most fields a form may have.
MAX_FIELDS = 20


def new_token() -> str:
    """A fresh token for a new (or newly signed-in) session."""
    return secrets.token_urlsafe(32)


def hidden_field(session: Session) -> Markup:
    """The hidden form field carrying ``session``'s token."""
    return Markup('<input type="hidden" name="{}" value="{}">').format(FIELD, session.csrf)


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of ``url``."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _same_origin(request: Request) -> bool:
    own = origin_of(str(request.url))
    origin = request.headers.get("origin")
    if origin is not None:
        return origin == own
    referer = request.headers.get("referer")
    return referer is not None and origin_of(referer) == own


async def checked_post(
    request: Request, load_session: Callable[[Request], Awaitable[Session | None]]
) -> tuple[Session, dict[str, str]]:
    """The session and form of a POST that passed the checks, in this order: same origin,
    a live session (``load_session``), a readable form, the session's token in it.
    ``scope`` is multi-valued: the scopes the person left checked, joined by spaces (scope
    values contain none)."""
    if not _same_origin(request):
        raise PageError(403, "Refused", "This form came from another site.", code="csrf")
    session = await load_session(request)
    if session is None:
        raise PageError(
            403, "Session expired", "Your session has expired; open the link again.", code="csrf"
        )
    values = await _form(request)
    _check_token(values, session.csrf)
    return session, values


async def checked_sessionless_post(request: Request, cookie: str) -> dict[str, str]:
    """The form of a POST made without a session: same origin, and the token of the form
    equal to the one in the ``cookie`` the page set (a double-submitted token)."""
    if not _same_origin(request):
        raise PageError(403, "Refused", "This form came from another site.", code="csrf")
    values = await _form(request)
    _check_token(values, request.cookies.get(cookie, ""))
    return values


async def _form(request: Request) -> dict[str, str]:
    try:
        form = await request.form(max_files=0, max_fields=MAX_FIELDS, max_part_size=MAX_FIELD)
    except Exception as exc:
        raise PageError(
            400, "Bad request", "The form could not be read.", code="invalid_request"
        ) from exc
    values = {k: v for k, v in form.items() if isinstance(v, str)}
    values["scope"] = " ".join(v for v in form.getlist("scope") if isinstance(v, str))
    return values


def _check_token(values: dict[str, str], expected: str) -> None:
    token = values.get(FIELD, "")
    if not expected or not secrets.compare_digest(token.encode(), expected.encode()):
        raise PageError(403, "Refused", "The form has expired; reload the page.", code="csrf")


__all__ = [
    "FIELD",
    "MAX_FIELD",
    "checked_post",
    "checked_sessionless_post",
    "hidden_field",
    "new_token",
    "origin_of",
]
