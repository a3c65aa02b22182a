"""The page layer of the person's pages: templates, security headers and error pages.

Pages are Jinja2 templates (``templates/``, package data) rendered through Starlette's
:class:`~starlette.templating.Jinja2Templates` with autoescape on: every value is escaped
unless it is :class:`~markupsafe.Markup` -- which only the ``markdown`` filter
(:func:`~aauth_agents.servers.markdown.render_markdown`, sanitized), the ``when`` filter (a
time as ``<time>``, digits and month names only) and ``csrf_field`` produce. ``None`` renders as
nothing. ``url_for(name, **params)`` in a template gives the *path* of a named route (links
stay on whatever origin the browser used), so the configured paths hold in every link and
form; ``link_prefix(name, param)`` gives it once for a list of items whose links differ in
their last parameter.

Templates are written one element a line; :class:`OneLine` drops every line break and the
indentation after it when a template is loaded, so pages go out as one line, as before. Text
that needs a space keeps it within one line.

Every response carries the same headers (:func:`secure`): a strict Content-Security-Policy
(``form-action`` widened to the agent's callback origin on a consent page that redirects
there), ``X-Frame-Options: DENY``, ``nosniff``, ``Referrer-Policy: same-origin``,
``Cache-Control: no-store`` and ``Cross-Origin-Opener-Policy: same-origin``.

Errors are exceptions: a handler raises :class:`PageError` and the exception handlers of
:meth:`Pages.exception_handlers` (registered on the UI's routes) render it; a shared store
that cannot be reached (:class:`~aauth_agents.stores.StoreUnavailableError`) becomes a 503
page with ``Retry-After``; any other exception becomes a logged 500 page.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from importlib.resources import files
from typing import TYPE_CHECKING, Any

import jinja2
from jinja2.ext import Extension
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.templating import Jinja2Templates

from ...protocol.errors import ProtocolError
from ...stores import StoreUnavailableError
from ..markdown import render_markdown
from .formats import html_time

if TYPE_CHECKING:
    from .ui_sessions import Session

log = logging.getLogger("aauth_agents.ps.ui")

_LINE_BREAK = re.compile(r"[ \t]*\r?\n[ \t]*")


class PageError(Exception):
    """Show a message page instead of the one asked for: ``status``, ``title``, the
    ``message`` and the error ``code`` (shown as ``#error-code``). With ``session`` the page
    shows who is signed in; ``headers`` go on the response (``Retry-After``)."""

    def __init__(
        self,
        status: int,
        title: str,
        message: str,
        *,
        code: str | None = None,
        session: Session | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.title = title
        self.message = message
        self.code = code
        self.session = session
        self.headers = dict(headers or {})

    @classmethod
    def cannot_continue(cls, exc: ProtocolError, session: Session | None = None) -> PageError:
        """A protocol error as a page. Never 408, which browsers retry on their own (and the
        retry would find the request changed)."""
        return cls(
            410 if exc.status == 408 else exc.status,
            "Cannot continue",
            exc.detail,
            code=exc.code,
            session=session,
        )


class OneLine(Extension):
    """Drop each line break of a template and the indentation around it (see the module
    docstring)."""

    def preprocess(self, source: str, name: str | None, filename: str | None = None) -> str:
        return _LINE_BREAK.sub("", source)


def url_path(request: Request, name: str, /, **params: Any) -> str:
    """The path of the route called ``name`` (Starlette's ``url_for`` without scheme and
    host)."""
    return request.url_for(name, **params).path


@jinja2.pass_context
def _url_for(context: Mapping[str, Any], name: str, /, **params: Any) -> str:
    return url_path(context["request"], name, **params)


@jinja2.pass_context
def _link_prefix(context: Mapping[str, Any], name: str, param: str, /) -> str:
    """The path of route ``name`` up to its parameter ``param``, which must end the path: a
    page listing many items builds it once (``url_for`` walks the routes), and each item's
    link is the prefix and the item's value -- what ``url_for`` would give (Starlette puts a
    path parameter in as it is)."""
    mark = "{" + param + "}"
    path = url_path(context["request"], name, **{param: mark})
    if not path.endswith(mark):
        raise ValueError(f"{param} does not end the path of route {name}")
    return path[: -len(mark)]


#: Texts whose rendering the pages remember (a dashboard shows the same descriptions and log
#: entries on every visit), and the longest text remembered.
MARKDOWN_MEMO = 2048
MARKDOWN_MEMO_LENGTH = 4096


def _markdown_filter() -> Callable[[str | None], Markup]:
    """The ``markdown`` filter of one :class:`Pages`: :func:`render_markdown` (a pure
    function of the text), remembering the latest renderings of short texts."""
    remembered = functools.lru_cache(maxsize=MARKDOWN_MEMO)(render_markdown)

    def markdown(text: str | None) -> Markup:
        short = text is None or len(text) <= MARKDOWN_MEMO_LENGTH
        html = remembered(text) if short else render_markdown(text)
        return Markup(html)  # noqa: S704 -- sanitized by render_markdown

    return markdown


def _when(moment: float | None) -> Markup:
    """A time as ``<time datetime=RFC 3339>7 Dec 2026, 15:04 UTC</time>``."""
    if moment is None:
        return Markup("")
    return Markup(html_time(moment))  # noqa: S704 -- digits and month names: nothing to escape


def _finalize(value: Any) -> Any:
    return "" if value is None else value


def secure(response: Response, form_targets: Sequence[str] = ()) -> Response:
    """``response`` with the headers every page carries; ``form_targets`` are origins forms
    may submit to besides the PS itself."""
    form_action = " ".join(["'self'", *form_targets])
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'self'; img-src https:; "
        f"form-action {form_action}; frame-ancestors 'none'; base-uri 'none'"
    )
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Cache-Control"] = "no-store"
    response.headers["Cross-Origin-Opener-Policy"] = "same-origin"
    return response


class Pages:
    """The templates of the person's pages and the responses made from them. ``globals``
    are added to every template's context (the UI adds ``csrf_field``)."""

    def __init__(self, **globals: Any) -> None:
        env = jinja2.Environment(
            loader=jinja2.PackageLoader(__package__ or __name__, "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            finalize=_finalize,
            extensions=[OneLine],
        )
        env.globals.update(globals, url_for=_url_for, link_prefix=_link_prefix)
        env.filters["markdown"] = _markdown_filter()
        env.filters["when"] = _when
        self.templates = Jinja2Templates(env=env)
        self.css = (
            files(__package__ or __name__)
            .joinpath("templates")
            .joinpath("ui.css")
            .read_text("utf-8")
        )

    def page(
        self,
        request: Request,
        template: str,
        *,
        title: str,
        status: int = 200,
        refresh: int | None = None,
        form_targets: Sequence[str] = (),
        session: Session | None = None,
        **context: Any,
    ) -> Response:
        """``template`` (which extends ``base.html``) as a page. A page with ``refresh``
        reloads itself every ``refresh`` seconds (a ``Refresh`` header: no script, no
        ``<meta>`` refresh) and says so, with a link that turns it off (``?refresh=off``,
        WCAG 2.2.1) and one that checks now."""
        stopped = refresh is not None and request.query_params.get("refresh") == "off"
        response = self.templates.TemplateResponse(
            request,
            template,
            {
                "title": title,
                "refresh": None if stopped else refresh,
                "refresh_stopped": stopped,
                "session": session,
                **context,
            },
            status_code=status,
        )
        if refresh is not None and not stopped:
            response.headers["Refresh"] = str(refresh)
        return secure(response, form_targets)

    def message(
        self,
        request: Request,
        title: str,
        text: str,
        *,
        status: int = 200,
        code: str | None = None,
        session: Session | None = None,
    ) -> Response:
        """A page with one message: an error when ``code`` is given, else a confirmation."""
        return self.page(
            request,
            "message.html",
            title=title,
            status=status,
            session=session,
            text=text,
            code=code,
        )

    @staticmethod
    def redirect(url: str) -> Response:
        """``303 See Other`` to ``url``."""
        return secure(RedirectResponse(url, status_code=303))

    async def page_error(self, request: Request, exc: Exception) -> Response:
        """The exception handler for :class:`PageError`."""
        assert isinstance(exc, PageError)
        response = self.message(
            request, exc.title, exc.message, status=exc.status, code=exc.code, session=exc.session
        )
        response.headers.update(exc.headers)
        return response

    async def unavailable(self, request: Request, exc: Exception) -> Response:
        """The exception handler for a shared store that cannot be reached: a 503 page with
        ``Retry-After`` (nothing was changed; the person may simply try again)."""
        assert isinstance(exc, StoreUnavailableError)
        log.warning("%s %s: %s", request.method, request.url.path, exc)
        response = self.message(
            request,
            "Try again",
            "The server cannot reach its storage right now; try again in a moment.",
            status=503,
            code=exc.code,
        )
        response.headers.update(exc.headers())
        return response

    async def server_error(self, request: Request, exc: Exception) -> Response:
        """The exception handler for everything else: logged, and a 500 page."""
        log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        return self.message(
            request, "Error", "Something went wrong.", status=500, code="server_error"
        )

    def exception_handlers(
        self,
    ) -> dict[type[Exception], Callable[[Request, Exception], Any]]:
        """The handlers to register for the pages' routes."""
        return {
            PageError: self.page_error,
            StoreUnavailableError: self.unavailable,
            Exception: self.server_error,
        }


__all__ = ["OneLine", "PageError", "Pages", "secure", "url_path"]
