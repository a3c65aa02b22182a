"""The page a server answers ``GET /`` with, for a person who opened its address.

What the server is (name, role, identifier) and where to go (its metadata, its endpoints,
the person server), where a browser would otherwise find a bare 404.

Plain HTML from a template (``templates/home.html``, autoescaped), no script, no style, no
external resource, under ``Content-Security-Policy: default-src 'none'`` like the other
pages. Links to the server's own paths are relative, so they work wherever the browser
reached it (a loopback port under a development mapping); other servers are named by
their identifiers. It is no protocol path: nothing here is signed or verified.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

#: The headers of the page: nothing loads, nothing frames it, nothing is kept.
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


@dataclass(frozen=True)
class Item:
    """One line of a section: ``label`` (a link when ``href`` is given, else code) and what
    it is."""

    label: str
    text: str | None = None
    href: str | None = None


@dataclass(frozen=True)
class Section:
    heading: str
    text: str | None = None
    items: Sequence[Item] = ()


@dataclass(frozen=True)
class HomePage:
    """What the page says: the server's ``name``, its ``role`` ("An AAuth agent
    provider"), ``identifier``, an optional ``description``, and ``sections``."""

    name: str
    role: str
    identifier: str
    description: str | None = None
    sections: Sequence[Section] = field(default_factory=tuple)

    def render(self) -> str:
        from jinja2 import Environment, PackageLoader

        environment = Environment(
            loader=PackageLoader("aauth_agents.servers", "templates"),
            autoescape=True,
            auto_reload=False,
        )
        return environment.get_template("home.html").render(page=self)

    def response(self) -> Response:
        """The page (an ASGI app answering any request with it)."""
        return HTMLResponse(self.render(), headers=HEADERS)

    def route(self) -> Route:
        """``GET /`` (and ``HEAD``) answered with this page, rendered once."""
        text = self.render()

        async def home(request: Request) -> Response:
            return HTMLResponse(text, headers=HEADERS)

        return Route("/", home, methods=["GET"])


__all__ = ["HEADERS", "HomePage", "Item", "Section"]
