"""``GET /`` of the agent provider and of the demo resource, over real HTTP (the parties of
:class:`~aauth_agents.servers.stack.LocalStack` on loopback): a small page saying what the
server is and where to go -- plain, escaped HTML with nothing to load or run, under the
same strict headers as the other pages -- opened in Chromium as a person would; and ``/``
stays out of the protocol: a signed request to the demo resource's ``/`` is verified as
before."""

from __future__ import annotations

from collections.abc import Iterator
from html.parser import HTMLParser

import httpx
import pytest
from support.browser import CHROMIUM, CHROMIUM_ARGS, require_chromium

from aauth_agents.agent import SignedAuth
from aauth_agents.keys import PrivateKey
from aauth_agents.servers import LoopbackServer
from aauth_agents.servers.agent_provider import AgentProviderConfig, AgentProviderServer
from aauth_agents.servers.stack import LocalStack
from aauth_agents.transport import MappedTransport


class Page(HTMLParser):
    """The elements, links and text of a page."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.links: list[str] = []
        self.text: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag == "a":
            self.links.extend(value or "" for name, value in attrs if name == "href")
        if any(name.startswith("on") or name == "style" for name, _ in attrs):
            self.tags.append("inline-handler-or-style")

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    @property
    def words(self) -> str:
        return " ".join(" ".join(self.text).split())


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack() as running:
        yield running


def _home(stack: LocalStack, identifier: str) -> tuple[httpx.Response, Page]:
    with httpx.Client(transport=stack.transport()) as client:
        response = client.get(f"{identifier}/")
    return response, Page(response.text)


def _plain_and_locked(response: httpx.Response, page: Page) -> None:
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    csp = response.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-store"
    # nothing to run, load or style
    loading = {"script", "link", "img", "iframe", "style", "object", "embed", "form"}
    assert not loading & set(page.tags) and "inline-handler-or-style" not in page.tags


def test_the_agent_provider_says_what_it_is(stack: LocalStack) -> None:
    response, page = _home(stack, stack.agent_provider)
    _plain_and_locked(response, page)
    assert "An AAuth agent provider, identifier https://agent.example" in page.words
    assert "POST /enroll" in page.words
    assert page.links == [
        "/.well-known/aauth-agent.json",
        "/.well-known/jwks.json",
        stack.person_server,
    ]
    with httpx.Client(transport=stack.transport()) as client:  # the links work as given
        for link in page.links[:2]:
            assert client.get(f"{stack.agent_provider}{link}").status_code == 200


def test_the_demo_resource_says_what_it_is(stack: LocalStack) -> None:
    response, page = _home(stack, stack.resource)
    _plain_and_locked(response, page)
    assert "identifier https://resource.example" in page.words
    for route in ("GET /whoami", "GET /profile", "GET /files", "POST /files", "/mcp"):
        assert route in page.words
    assert page.links == ["/.well-known/aauth-resource.json"]


def test_the_page_escapes_what_it_shows() -> None:
    name = '<script>alert("x")</script> & co'
    ap = AgentProviderServer(AgentProviderConfig(issuer="https://agent.example", name=name))
    with LoopbackServer(ap.app()) as server:
        response = httpx.get(f"{server.url}/")
    page = Page(response.text)
    assert "script" not in page.tags and name in page.words
    assert "&lt;script&gt;" in response.text
    assert "Each agent names its person server" in page.words  # no PS configured
    ap.close()


def test_a_signed_request_to_the_resources_root_is_verified_as_before(
    stack: LocalStack,
) -> None:
    """Only an unsigned GET is a person's browser. A request signed with a key the resource
    cannot trust is refused by the middleware (its 401, not the page); an unsigned POST or
    HEAD is challenged as before."""
    key = PrivateKey.generate()
    from aauth_agents.httpsig import SignatureKey

    stranger = SignedAuth((key, SignatureKey.from_public_key(key.public_key)))
    with httpx.Client(transport=stack.transport()) as client:
        signed = client.get(f"{stack.resource}/", auth=stranger)
        assert signed.status_code == 401 and "<html" not in signed.text
        assert signed.headers.get("aauth-requirement") or signed.headers.get("signature-error")
        for method in ("POST", "HEAD"):
            unsigned = client.request(method, f"{stack.resource}/")
            assert unsigned.status_code == 401 and "aauth-requirement" in unsigned.headers


def test_a_person_opens_the_pages_in_chromium(stack: LocalStack) -> None:
    require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            problems: list[str] = []
            loaded: list[tuple[str, int]] = []
            page.on("pageerror", lambda error: problems.append(str(error)))
            page.on("response", lambda response: loaded.append((response.url, response.status)))
            page.goto(stack.mapping[stack.resource] + "/")
            assert page.title() == "aauth-agents demo resource"
            page.get_by_role("link", name="/.well-known/aauth-resource.json").click()
            assert '"issuer":"https://resource.example"' in page.content().replace(" ", "")
            page.goto(stack.mapping[stack.agent_provider] + "/")
            assert page.locator("h1").inner_text() == "Local agents"
            assert problems == []
            # (the browser's own favicon request is the one a page does not make)
            assert all(status == 200 for url, status in loaded if "favicon" not in url)
            assert len([url for url, _ in loaded if "favicon" not in url]) == 3
        finally:
            browser.close()


def test_a_plain_transport_reaches_the_page_under_its_identifier(stack: LocalStack) -> None:
    """The identifier-mapped route a development mapping uses (``MappedTransport``)."""
    mapping = {stack.resource: stack.mapping[stack.resource]}
    with httpx.Client(transport=MappedTransport(mapping, strict=True)) as client:
        assert client.get(f"{stack.resource}/").status_code == 200
