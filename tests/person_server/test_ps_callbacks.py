"""Which interaction callbacks the PS accepts (:func:`callback_allowed`): exactly the agent
provider's ``callback_endpoint`` (plus a query of the agent's own), or a localhost URL when
the provider sets ``localhost_callback_allowed`` (§User Interaction, §Endpoint URLs)."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aauth_agents.protocol.metadata import AgentProviderMetadata
from aauth_agents.servers.person_server.interactions import callback_allowed

ENDPOINT = "https://agent.example/callback"


def meta(endpoint: str | None = ENDPOINT, localhost: bool = False) -> AgentProviderMetadata:
    return AgentProviderMetadata.build(
        issuer="https://agent.example",
        jwks_uri="https://agent.example/jwks.json",
        callback_endpoint=endpoint,
        localhost_callback_allowed=True if localhost else None,
    )


BOTH = meta(localhost=True)
ENDPOINT_ONLY = meta()
LOCAL_ONLY = meta(endpoint=None, localhost=True)

query_text = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E, blacklist_characters="#\\"),
    max_size=40,
)


@pytest.mark.parametrize(
    "callback",
    [
        ENDPOINT,
        f"{ENDPOINT}?state=1",
        f"{ENDPOINT}?a=1&b=%2F",
        f"{ENDPOINT}?",
    ],
)
def test_the_endpoint_with_or_without_a_query(callback: str) -> None:
    assert callback_allowed(callback, ENDPOINT_ONLY)
    assert callback_allowed(callback, BOTH)
    assert not callback_allowed(callback, LOCAL_ONLY)


@pytest.mark.parametrize(
    "callback",
    [
        "http://localhost/cb",
        "http://localhost:8765/cb?state=x",
        "http://127.0.0.1:1/",
        "http://[::1]:9000/done",
        "https://localhost/x",
        "http://LOCALHOST/x",
    ],
)
def test_localhost_only_when_allowed(callback: str) -> None:
    assert callback_allowed(callback, BOTH) and callback_allowed(callback, LOCAL_ONLY)
    assert not callback_allowed(callback, ENDPOINT_ONLY)


@pytest.mark.parametrize(
    "callback",
    [
        "javascript:alert(1)",
        "JAVASCRIPT:alert(1)",
        " javascript:alert(1)",
        "data:text/html,<script>1</script>",
        "vbscript:x",
        "//agent.example/callback",
        "/callback",
        "",
        "https://agent.example/callback#x",
        "https://agent.example/callback/",
        "https://agent.example/callback/../callback",
        "https://agent.example/./callback",
        "https://agent.example/Callback",
        "HTTPS://agent.example/callback",
        "https://Agent.example/callback",
        "https://agent.example:443/callback",
        "https://agent.example:8443/callback",
        "http://agent.example/callback",
        "https://agent.example/callbac%6B",
        "https://agent.example/callback%3Fx",
        "https://agent.example/callback%2F..",
        "https://user@agent.example/callback",
        "https://user:pw@agent.example/callback",
        "https://agent.example.evil/callback",
        "https://evil.example/https://agent.example/callback",
        "https://agent.example\\@evil.example/callback",
        "https://agent.example/call back",
        "https://agent.example/callback\n",
        "https://agent.example/callbäck",
        "http://localhost@evil.example/",
        "http://evil.example@localhost/",
        "http://localhost.evil.example/",
        "http://127.0.0.1.evil.example/",
        "http://127.1/",
        "http://0.0.0.0/",
        "http://[::ffff:127.0.0.1]/",
        "http://localhost:99999/",
        "http://localhost:x/",
        "ftp://localhost/",
        "http:/localhost/",
        "http:localhost",
        "http://%6cocalhost/",
        "http://localhost\\x/",
        "http://localhost/#frag",
        "https://agent.example/callback" + "?" + "a" * 2100,
    ],
)
def test_refused(callback: str) -> None:
    assert not callback_allowed(callback, BOTH)


def test_nothing_without_metadata() -> None:
    assert not callback_allowed(ENDPOINT, None)
    assert not callback_allowed("http://localhost/", None)
    assert not callback_allowed(ENDPOINT, meta(endpoint=None))


@given(query=query_text)
def test_any_query_on_the_endpoint(query: str) -> None:
    assert callback_allowed(f"{ENDPOINT}?{query}", ENDPOINT_ONLY)


@given(suffix=st.text(min_size=1, max_size=30))
def test_nothing_else_on_the_endpoints_path(suffix: str) -> None:
    """Anything appended to the endpoint other than a query (path, traversal, encoded
    characters, a fragment, a port...) is another URL."""
    candidate = ENDPOINT + suffix
    expected = suffix.startswith("?") and all(
        0x21 <= ord(c) <= 0x7E and c not in "#\\" for c in suffix
    )
    assert callback_allowed(candidate, ENDPOINT_ONLY) == expected


@given(prefix=st.text(min_size=1, max_size=30), query=query_text)
def test_nothing_before_the_endpoint(prefix: str, query: str) -> None:
    assert not callback_allowed(prefix + ENDPOINT + "?" + query, ENDPOINT_ONLY)


@given(
    index=st.integers(min_value=0, max_value=len(ENDPOINT) - 1),
    char=st.characters(min_codepoint=0x21, max_codepoint=0x7E),
)
def test_any_change_to_the_endpoint_is_refused(index: int, char: str) -> None:
    changed = ENDPOINT[:index] + char + ENDPOINT[index + 1 :]
    if changed == ENDPOINT:
        return
    assert not callback_allowed(changed, ENDPOINT_ONLY)


@given(
    userinfo=st.text(
        alphabet=st.characters(
            min_codepoint=0x21, max_codepoint=0x7E, blacklist_characters="/?#@\\"
        ),
        min_size=1,
        max_size=20,
    ),
    host=st.sampled_from(["agent.example", "localhost", "127.0.0.1", "[::1]"]),
)
def test_userinfo_is_always_refused(userinfo: str, host: str) -> None:
    for scheme in ("http", "https"):
        assert not callback_allowed(f"{scheme}://{userinfo}@{host}/callback", BOTH)


@given(
    port=st.integers(min_value=1, max_value=65535),
    host=st.sampled_from(["localhost", "127.0.0.1", "[::1]"]),
    path=st.text(
        alphabet=st.characters(
            min_codepoint=0x21, max_codepoint=0x7E, blacklist_characters="#\\?@"
        ),
        max_size=20,
    ),
)
def test_any_loopback_port_and_path(port: int, host: str, path: str) -> None:
    callback = f"http://{host}:{port}/{path}"
    assert callback_allowed(callback, LOCAL_ONLY)
    assert not callback_allowed(callback, ENDPOINT_ONLY)


@given(
    host=st.from_regex(r"[a-z0-9.-]{1,30}", fullmatch=True),
    port=st.integers(min_value=1, max_value=65535),
)
def test_other_hosts_need_the_endpoint(host: str, port: int) -> None:
    allowed = callback_allowed(f"http://{host}:{port}/callback", BOTH)
    assert allowed == (host in ("localhost", "127.0.0.1"))


@given(text=st.text(max_size=60))
def test_encoded_endpoint_is_another_url(text: str) -> None:
    """Percent-encoding any part of the path makes a different URL."""
    encoded = "https://agent.example/" + quote("callback" + text, safe="")
    if encoded == ENDPOINT:
        return
    assert not callback_allowed(encoded, ENDPOINT_ONLY)


@given(
    scheme=st.from_regex(r"[a-zA-Z][a-zA-Z0-9+.-]{0,10}", fullmatch=True), rest=st.text(max_size=40)
)
def test_only_https_endpoint_or_loopback_schemes(scheme: str, rest: str) -> None:
    callback = f"{scheme}:{rest}"
    if callback_allowed(callback, BOTH):
        assert scheme.lower() in ("http", "https")
