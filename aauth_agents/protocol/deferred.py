"""Bodies of deferred responses and of the agent's answers (§Deferred Responses,
§Clarification Chat, §Claims Required).

A ``202`` body has ``status`` (``pending``, or ``interacting`` once the user arrived;
anything else counts as ``pending``) and, by requirement, ``clarification`` / ``timeout`` /
``options`` or ``required_claims``. The agent answers a clarification by POSTing an
``action`` to the pending URL; the server rejects a missing or unknown action with 400.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .encoding import loads_json_object
from .requirement import CLAIMS, CLARIFICATION, Requirement
from .wire import WireFormatError

#: The ``status`` of a deferred response body while nobody has decided (§Deferred Responses).
STATUS_PENDING = "pending"
#: The ``status`` of a deferred response body while the person is at the interaction page.
STATUS_INTERACTING = "interacting"

#: The ``action`` of an agent's answer to a clarification (§Clarification Chat).
CLARIFICATION_RESPONSE = "clarification_response"
#: The ``action`` of an agent's updated request (§Clarification Chat).
UPDATED_REQUEST = "updated_request"
#: The ``action`` values an agent may post to a pending URL.
PENDING_ACTIONS = frozenset({CLARIFICATION_RESPONSE, UPDATED_REQUEST})


class MalformedBodyError(WireFormatError):
    """A JSON body lacking what its requirement or action needs (``invalid_request``)."""

    def __init__(self, detail: str):
        super().__init__("body", detail)


@dataclass(frozen=True)
class PendingBody:
    """A parsed ``202`` body. ``members`` keeps everything, including unknown members."""

    status: str = STATUS_PENDING
    clarification: str | None = None
    timeout: int | None = None
    options: tuple[str, ...] | None = None
    required_claims: tuple[str, ...] | None = None
    members: Mapping[str, Any] = field(default_factory=dict, repr=False)


def _object(body: bytes | str | Mapping[str, Any] | None) -> Mapping[str, Any]:
    if body is None or body in (b"", ""):
        return {}
    if isinstance(body, Mapping):
        return body
    try:
        return loads_json_object(body)
    except ValueError as exc:
        raise MalformedBodyError(str(exc)) from exc


def _strings(data: Mapping[str, Any], name: str) -> tuple[str, ...] | None:
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise MalformedBodyError(f"{name} must be an array of strings")
    return tuple(value)


def parse_pending_body(
    body: bytes | str | Mapping[str, Any] | None, requirement: Requirement | None = None
) -> PendingBody:
    """Parse a ``202`` body; the members ``requirement`` makes REQUIRED are checked."""
    data = _object(body)
    status = data.get("status")
    clarification = data.get("clarification")
    timeout = data.get("timeout")
    if clarification is not None and not isinstance(clarification, str):
        raise MalformedBodyError("clarification must be a string")
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, int) or timeout < 0
    ):
        raise MalformedBodyError("timeout must be a non-negative integer")
    parsed = PendingBody(
        status=STATUS_INTERACTING if status == STATUS_INTERACTING else STATUS_PENDING,
        clarification=clarification,
        timeout=timeout,
        options=_strings(data, "options"),
        required_claims=_strings(data, "required_claims"),
        members=dict(data),
    )
    value = requirement.value if requirement else None
    if value == CLARIFICATION and parsed.clarification is None:
        raise MalformedBodyError("requirement=clarification needs a clarification")
    if value == CLAIMS and parsed.required_claims is None:
        raise MalformedBodyError("requirement=claims needs required_claims")
    return parsed


def clarification_body(
    question: str, *, timeout: int | None = None, options: list[str] | None = None
) -> dict[str, Any]:
    """The ``202`` body a server sends with ``requirement=clarification``."""
    body: dict[str, Any] = {"status": STATUS_PENDING, "clarification": question}
    if timeout is not None:
        body["timeout"] = timeout
    if options is not None:
        body["options"] = list(options)
    return body


def clarification_response(answer: str) -> dict[str, Any]:
    """§Clarification Response: the agent's answer, POSTed to the pending URL."""
    return {"action": CLARIFICATION_RESPONSE, CLARIFICATION_RESPONSE: answer}


def updated_request(resource_token: str, justification: str | None = None) -> dict[str, Any]:
    """§Updated Request: a replacement resource token, POSTed to the pending URL."""
    body = {"action": UPDATED_REQUEST, "resource_token": resource_token}
    if justification is not None:
        body["justification"] = justification
    return body


def parse_pending_action(body: bytes | str | Mapping[str, Any]) -> tuple[str, Mapping[str, Any]]:
    """Server side: ``(action, body)`` for a POST to a pending URL. A missing or unknown
    ``action``, or one without its string member, is a 400 ``invalid_request``."""
    data = _object(body)
    action = data.get("action")
    if not isinstance(action, str) or action not in PENDING_ACTIONS:
        raise MalformedBodyError("action is missing or not recognized")
    member = CLARIFICATION_RESPONSE if action == CLARIFICATION_RESPONSE else "resource_token"
    if not isinstance(data.get(member), str) or not data[member]:
        raise MalformedBodyError(f"{action} needs a non-empty string {member}")
    justification = data.get("justification")
    if justification is not None and not isinstance(justification, str):
        raise MalformedBodyError("justification must be a string")
    return action, data


_PREFERENCE_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def parse_prefer_wait(header: str | None) -> int | None:
    """The ``wait`` preference of a ``Prefer`` field (RFC 7240 §4.3; §Deferred Responses):
    a non-negative number of seconds, or ``None`` when absent or unreadable (preferences a
    recipient cannot read are ignored, RFC 7240 §2). Case-insensitive, quoted or not; the
    first ``wait`` wins. Agents and servers both read it through this one function."""
    if not header or not isinstance(header, str):
        return None
    for preference in header.split(","):
        head = preference.split(";", 1)[0].strip()
        name, sep, value = head.partition("=")
        name, value = name.strip(), value.strip()
        if not _PREFERENCE_NAME.fullmatch(name) or name.lower() != "wait":
            continue
        if not sep:
            return None
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        if not value.isascii() or not value.isdigit() or len(value) > 9:
            return None
        return int(value)
    return None


def format_prefer_wait(seconds: int) -> str:
    """``Prefer: wait=N`` for an agent willing to wait ``N`` seconds for a long poll."""
    if isinstance(seconds, bool) or not isinstance(seconds, int) or not 0 <= seconds < 10**9:
        raise ValueError("Prefer: wait takes a non-negative integer of at most nine digits")
    return f"wait={seconds}"


__all__ = [
    "CLARIFICATION_RESPONSE",
    "PENDING_ACTIONS",
    "STATUS_INTERACTING",
    "STATUS_PENDING",
    "UPDATED_REQUEST",
    "MalformedBodyError",
    "PendingBody",
    "clarification_body",
    "clarification_response",
    "format_prefer_wait",
    "parse_pending_action",
    "parse_pending_body",
    "parse_prefer_wait",
    "updated_request",
]
