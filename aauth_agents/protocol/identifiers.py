"""Server and agent identifiers (§Server Identifiers, §Endpoint URLs, §Agent Identifiers).

Server identifiers are ``https://host``: lowercase, ACE-form host, no port, path, query,
fragment or trailing slash, compared as exact strings. Agent identifiers are
``aauth:local@domain`` with ``local`` from ``[a-z0-9._+-]`` (at most 255 characters, ``+``
only as the sub-agent delimiter) and ``domain`` a server identifier's host.

Each validator returns the value unchanged or raises ``ValueError`` -- it never normalises,
because the specification requires byte equality, not equivalence.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

# An ACE (A-label) host: LDH labels of 1-63 characters, at least one dot, no leading or
# trailing hyphen. Lowercase only (§Server Identifiers: MUST be lowercase).
_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
_HOST = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})+$")
_SERVER_ID = re.compile(r"^https://([^/?#:@]+)$")
_LOCAL = re.compile(r"^[a-z0-9._+-]{1,255}$")
_IP_LITERAL = re.compile(r"[0-9.]+")
#: Hosts that passed :func:`is_valid_host`: a verifier meets the same few issuer and agent
#: provider hosts on every token (bounded: cleared when full).
_VALID_HOSTS: set[str] = set()
#: Server identifiers that passed :func:`validate_server_identifier` (bounded likewise).
_VALID_SERVER_IDS: set[str] = set()

#: The hosts of a localhost callback (§Endpoint URLs: ``localhost_callback_allowed``), as
#: ``urlsplit(...).hostname`` gives them.
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


def is_valid_host(host: str) -> bool:
    """True for a lowercase ACE domain name with at least two labels."""
    if host in _VALID_HOSTS:
        return True
    if not _HOST.match(host) or _is_ip_literal(host):
        return False
    if len(_VALID_HOSTS) >= 1024:
        _VALID_HOSTS.clear()
    _VALID_HOSTS.add(host)
    return True


def _is_ip_literal(host: str) -> bool:
    return _IP_LITERAL.fullmatch(host) is not None


def validate_server_identifier(value: object) -> str:
    """Return ``value`` if it is a server identifier (§Server Identifiers), else raise."""
    if not isinstance(value, str):
        raise ValueError("a server identifier must be a string")
    if value in _VALID_SERVER_IDS:
        return value
    match = _SERVER_ID.match(value)
    if not match or not is_valid_host(match.group(1)):
        raise ValueError(
            f"not a server identifier (https://lowercase-host, no port or path): {value!r}"
        )
    if len(_VALID_SERVER_IDS) >= 1024:
        _VALID_SERVER_IDS.clear()
    _VALID_SERVER_IDS.add(value)
    return value


def is_server_identifier(value: object) -> bool:
    """Whether ``value`` is a valid server identifier (:func:`validate_server_identifier`)."""
    try:
        validate_server_identifier(value)
    except ValueError:
        return False
    return True


def server_identifier_of(url: str) -> str:
    """The identifier a URL's origin would have, e.g. ``https://ps.example/token`` ->
    ``https://ps.example``. Raises ``ValueError`` when the origin is not an identifier."""
    parts = urlsplit(url)
    return validate_server_identifier(f"{parts.scheme}://{parts.netloc}")


def validate_endpoint_url(value: object) -> str:
    """§Endpoint URLs: https, no query, no fragment."""
    if not isinstance(value, str):
        raise ValueError("an endpoint URL must be a string")
    parts = urlsplit(value)
    if parts.scheme != "https" or not parts.hostname:
        raise ValueError(f"endpoint URL must use https: {value!r}")
    if parts.query or parts.fragment or "?" in value or "#" in value:
        raise ValueError(f"endpoint URL must not have a query or fragment: {value!r}")
    return value


def validate_https_url(value: object) -> str:
    """§Other URLs: ``jwks_uri``, logos, tos and policy URLs use https."""
    if not isinstance(value, str):
        raise ValueError("a URL must be a string")
    parts = urlsplit(value)
    if parts.scheme != "https" or not parts.hostname:
        raise ValueError(f"URL must use https: {value!r}")
    return value


def validate_agent_identifier(value: object) -> str:
    """Return ``value`` if it is an agent identifier (§Agent Identifiers), else raise."""
    if not isinstance(value, str) or not value.startswith("aauth:"):
        raise ValueError(f"not an agent identifier: {value!r}")
    local, sep, domain = value[len("aauth:") :].rpartition("@")
    if not sep or not _LOCAL.match(local):
        raise ValueError(f"agent identifier local part is invalid: {value!r}")
    if local.startswith("+") or local.endswith("+") or local.count("+") > 1:
        raise ValueError(f"agent identifier has a malformed sub-agent part: {value!r}")
    if not is_valid_host(domain):
        raise ValueError(f"agent identifier domain is invalid: {value!r}")
    return value


def is_agent_identifier(value: object) -> bool:
    """Whether ``value`` is a valid agent identifier (:func:`validate_agent_identifier`)."""
    try:
        validate_agent_identifier(value)
    except ValueError:
        return False
    return True


def agent_domain(agent_id: str) -> str:
    """The agent provider's host named by an agent identifier."""
    return validate_agent_identifier(agent_id).rpartition("@")[2]


def is_sub_agent_of(child: str, parent: str) -> bool:
    """The naming convention for sub-agents (``parent+x@domain``): operational display only.

    §Agent Identifiers: parties MUST NOT make protocol decisions from it -- ``parent_agent``
    is authoritative. Provided for logs and dashboards.
    """
    c_local, _, c_domain = child[len("aauth:") :].rpartition("@")
    p_local, _, p_domain = parent[len("aauth:") :].rpartition("@")
    return c_domain == p_domain and c_local.startswith(p_local + "+")


__all__ = [
    "LOOPBACK_HOSTS",
    "agent_domain",
    "is_agent_identifier",
    "is_server_identifier",
    "is_sub_agent_of",
    "is_valid_host",
    "server_identifier_of",
    "validate_agent_identifier",
    "validate_endpoint_url",
    "validate_https_url",
    "validate_server_identifier",
]
