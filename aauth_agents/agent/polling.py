"""The parsers the agent's polling loop needs (§Deferred Responses), without I/O.

* :func:`parse_retry_after` -- ``Retry-After`` (RFC 9110 §10.2.3): delay-seconds or an
  HTTP-date; absent or unreadable means the §Polling with GET default of 5 seconds.
* :func:`resolve_location` -- the pending URL of a ``202``: resolved against the request URL
  and refused unless it is on the responding server's origin (§Pending Response).
* :func:`format_prefer_wait` / :func:`parse_prefer_wait` -- ``Prefer: wait=N`` (RFC 7240
  §4.3), which the agent sends on PS requests and polls; the parser is for servers and tests.

Each returns a value or raises :class:`~aauth_agents.agent.errors.DeferredResponseError`
(``resolve_location``) -- never anything else.
"""

from __future__ import annotations

import math
import re
from email.utils import parsedate_to_datetime

import httpx

from ..protocol.deferred import format_prefer_wait, parse_prefer_wait
from .errors import DeferredResponseError

#: §Polling with GET: the interval when a 202 carries no Retry-After.
DEFAULT_POLL_INTERVAL = 5.0
#: §Polling with GET: what a 429 adds to the interval (linear backoff, RFC 8628 §3.5).
SLOW_DOWN_STEP = 5.0
#: The longest wait a Retry-After is taken at (a server cannot park an agent for days).
MAX_RETRY_AFTER = 3600.0

_DIGITS = re.compile(r"[0-9]+")
_DEFAULT_PORTS = {"http": 80, "https": 443}


def parse_retry_after(
    value: str | None,
    *,
    now: float | None = None,
    default: float = DEFAULT_POLL_INTERVAL,
    maximum: float = MAX_RETRY_AFTER,
) -> float:
    """Seconds to wait per ``Retry-After``: a non-negative integer, or an HTTP-date (needs
    ``now``, Unix seconds) counted from ``now`` and floored at 0. Anything else -- absent,
    empty, negative, fractional, a date without ``now`` -- gives ``default``. The result is
    at most ``maximum``."""
    if value is None:
        return min(default, maximum)
    text = value.strip(" \t")
    if _DIGITS.fullmatch(text):  # long digit strings are capped before int() sees them
        return float(min(int(text[:12]) if len(text) <= 12 else maximum, maximum))
    if now is not None and text:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError, OverflowError):
            return min(default, maximum)
        if when.tzinfo is None:  # RFC 9110 dates are GMT; a zone-less one is not a date here
            return min(default, maximum)
        try:
            delay = when.timestamp() - now
        except (OverflowError, ValueError, OSError):
            return min(default, maximum)
        if math.isfinite(delay):
            return min(max(delay, 0.0), maximum)
    return min(default, maximum)


def _origin(url: httpx.URL) -> tuple[str, str, int]:
    return url.scheme, url.host, url.port or _DEFAULT_PORTS.get(url.scheme, 0)


def resolve_location(location: str | None, *, base: str | httpx.URL) -> str:
    """The absolute pending URL for a ``Location`` received in answer to a request to
    ``base``. Relative references are resolved against ``base``; the result must have
    ``base``'s scheme, host and port, and no userinfo or fragment."""
    if location is None or not location.strip():
        raise DeferredResponseError("a 202 response must carry a Location (the pending URL)")
    try:
        base_url = httpx.URL(str(base))
        resolved = base_url.join(location.strip())
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise DeferredResponseError(f"unreadable Location: {exc}") from None
    if resolved.scheme not in _DEFAULT_PORTS or not resolved.host:
        raise DeferredResponseError("the Location is not an http(s) URL")
    if resolved.userinfo or resolved.fragment:
        raise DeferredResponseError("the Location must not carry userinfo or a fragment")
    if _origin(resolved) != _origin(base_url):
        raise DeferredResponseError(
            "the Location is not on the origin of the server that answered 202"
        )
    return str(resolved)


__all__ = [
    "DEFAULT_POLL_INTERVAL",
    "MAX_RETRY_AFTER",
    "SLOW_DOWN_STEP",
    "format_prefer_wait",
    "parse_prefer_wait",
    "parse_retry_after",
    "resolve_location",
]
