"""The AAuth value registries (§IANA Considerations) and the token request's ``device``.

Registry values are extension points: parsers keep values they do not know and say so,
rather than rejecting them, except where the specification makes membership a MUST
(``platform``, §PS Token Endpoint).
"""

from __future__ import annotations

from collections.abc import Mapping

from .wire import WireFormatError

#: §AAuth Requirement Value Registry, with the status each value goes with
#: (§Requirement Values). ``auth-token`` may also come as a deferred 202 or with 402.
REQUIREMENT_STATUS: Mapping[str, int] = {
    "agent-token": 401,
    "person-token": 401,
    "auth-token": 401,
    "interaction": 202,
    "approval": 202,
    "clarification": 202,
    "claims": 202,
}
#: Every registered ``requirement`` value (§AAuth Requirement Value Registry).
REQUIREMENT_VALUES: frozenset[str] = frozenset(REQUIREMENT_STATUS)

#: §AAuth Capability Value Registry.
CAPABILITY_VALUES: frozenset[str] = frozenset({"interaction", "clarification", "payment"})

#: §AAuth Platform Value Registry.
PLATFORM_VALUES: frozenset[str] = frozenset({"web", "mobile", "desktop", "workload", "self-hosted"})

#: §AAuth Access Mode Value Registry, plus ``per-call`` registered by R3.
ACCESS_MODE_VALUES: frozenset[str] = frozenset(
    {"agent-token", "person-token", "session-token", "auth-token", "per-call"}
)

#: §Resource Metadata: the ``access_mode`` a resource has when it declares none.
DEFAULT_ACCESS_MODE = "agent-token"

#: The longest ``device`` string a token request may carry.
DEVICE_MAX_LENGTH = 64


def validate_platform(value: object) -> str:
    """§PS Token Endpoint: ``platform`` MUST be a registered value."""
    if not isinstance(value, str) or value not in PLATFORM_VALUES:
        raise WireFormatError("platform", f"not a registered platform value: {value!r}")
    return value


def validate_device(value: object) -> str:
    """§PS Token Endpoint: ``device`` is printable UTF-8, no control characters, <= 64 chars.

    Receivers display it, so anything that could reshape a dashboard line is refused.
    """
    if not isinstance(value, str) or not value:
        raise WireFormatError("device", "must be a non-empty string")
    if len(value) > DEVICE_MAX_LENGTH:
        raise WireFormatError("device", f"longer than {DEVICE_MAX_LENGTH} characters")
    if not value.isprintable():  # rejects Cc, Cf, separators other than space, surrogates
        raise WireFormatError("device", "contains control or non-printable characters")
    return value


__all__ = [
    "ACCESS_MODE_VALUES",
    "CAPABILITY_VALUES",
    "DEFAULT_ACCESS_MODE",
    "DEVICE_MAX_LENGTH",
    "PLATFORM_VALUES",
    "REQUIREMENT_STATUS",
    "REQUIREMENT_VALUES",
    "validate_device",
    "validate_platform",
]
