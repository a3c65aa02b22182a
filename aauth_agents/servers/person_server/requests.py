"""Parsers for what agents send the person server, sans I/O.

Every parser returns a typed value or raises :class:`~aauth_agents.protocol.WireFormatError`
(``invalid_request``, 400; §Token Endpoint Error Codes) -- never anything else -- so a bad
request is refused before it changes anything (ARCHITECTURE.md: bad input changes nothing).

* request bodies: :func:`parse_json_object` (JSON object, ``application/json``), then one
  parser per endpoint (§Person Token Endpoint, §Agent Token Request, §Mission Creation,
  §Mission Update/Completion, §Permission Request, §Audit Request, §Interaction Request,
  §Token Revocation);
* :func:`parse_prefer_wait`: the ``wait`` preference of RFC 7240 ``Prefer`` (§Deferred
  Responses), ignored when malformed, as RFC 7240 asks of preferences a server cannot read.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ...protocol.deferred import parse_prefer_wait
from ...protocol.encoding import loads_json_object
from ...protocol.identifiers import validate_https_url, validate_server_identifier
from ...protocol.mission import is_s256
from ...protocol.registry import CAPABILITY_VALUES, validate_device, validate_platform
from ...protocol.wire import WireFormatError

#: Longest Markdown member accepted (justification, descriptions, questions, answers).
MAX_TEXT = 16_384
#: Longest short string member (hints, tenant, action names, tokens are capped elsewhere).
MAX_SHORT = 1024
MAX_TOKEN = 32_768
MAX_LIST = 100

PROMPT_VALUES = frozenset({"none", "login", "consent", "select_account"})
INTERACTION_TYPES = frozenset({"interaction", "payment", "question"})
MISSION_ACTIONS = frozenset({"update", "completion"})


def _fail(what: str, detail: str) -> WireFormatError:
    return WireFormatError(what, detail)


def parse_json_object(
    body: bytes | None, content_type: str | None = "application/json"
) -> dict[str, Any]:
    """A request body that is a JSON object sent as ``application/json``."""
    if content_type is not None:
        media = content_type.split(";", 1)[0].strip().lower()
        if media != "application/json":
            raise _fail("content-type", "the body must be application/json")
    if not body:
        raise _fail("body", "a JSON object is required")
    try:
        value = loads_json_object(body)
    except ValueError as exc:
        raise _fail("body", str(exc)) from exc
    return value


def _string(
    data: Mapping[str, Any], name: str, *, required: bool = False, limit: int = MAX_SHORT
) -> str | None:
    value = data.get(name)
    if value is None:
        if required:
            raise _fail(name, "is required")
        return None
    if not isinstance(value, str) or not value:
        raise _fail(name, "must be a non-empty string")
    if len(value) > limit:
        raise _fail(name, f"longer than {limit} characters")
    return value


def _required(data: Mapping[str, Any], name: str, limit: int = MAX_SHORT) -> str:
    value = _string(data, name, required=True, limit=limit)
    assert value is not None
    return value


def _s256(
    data: Mapping[str, Any], name: str = "mission_s256", *, required: bool = False
) -> str | None:
    value = data.get(name)
    if value is None:
        if required:
            raise _fail(name, "is required")
        return None
    if not is_s256(value):
        raise _fail(name, "must be a base64url SHA-256 digest (43 characters)")
    return str(value)


def _object(data: Mapping[str, Any], name: str) -> dict[str, Any] | None:
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _fail(name, "must be a JSON object")
    return value


@dataclass(frozen=True)
class RequestParams:
    """The consent-flow parameters of §Agent Token Request (also taken at the person token
    endpoint and with a mission proposal). ``capabilities`` keeps recognized values only
    (§AAuth-Capabilities: recipients ignore unknown ones); ``None`` when not sent."""

    justification: str | None = None
    login_hint: str | None = None
    tenant: str | None = None
    domain_hint: str | None = None
    prompt: tuple[str, ...] = ()
    platform: str | None = None
    device: str | None = None
    capabilities: tuple[str, ...] | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in ("justification", "login_hint", "tenant", "domain_hint", "platform", "device"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        if self.prompt:
            out["prompt"] = list(self.prompt)
        if self.capabilities is not None:
            out["capabilities"] = list(self.capabilities)
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RequestParams:
        caps = data.get("capabilities")
        return cls(
            justification=data.get("justification"),
            login_hint=data.get("login_hint"),
            tenant=data.get("tenant"),
            domain_hint=data.get("domain_hint"),
            prompt=tuple(data.get("prompt", ())),
            platform=data.get("platform"),
            device=data.get("device"),
            capabilities=None if caps is None else tuple(caps),
        )


def parse_capabilities(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    if (
        not isinstance(value, list)
        or len(value) > MAX_LIST
        or not all(isinstance(v, str) for v in value)
    ):
        raise _fail("capabilities", "must be an array of strings")
    return tuple(dict.fromkeys(v for v in value if v in CAPABILITY_VALUES))


def parse_request_params(data: Mapping[str, Any]) -> RequestParams:
    """§Agent Token Request: ``justification``, ``login_hint``, ``tenant``, ``domain_hint``,
    ``prompt``, ``platform``, ``device``, ``capabilities``."""
    prompt: tuple[str, ...] = ()
    raw_prompt = _string(data, "prompt")
    if raw_prompt is not None:
        values = raw_prompt.split(" ")
        if any(v not in PROMPT_VALUES for v in values):
            raise _fail(
                "prompt", f"values are space-separated, each one of {sorted(PROMPT_VALUES)}"
            )
        prompt = tuple(dict.fromkeys(values))
        if "none" in prompt and len(prompt) > 1:
            raise _fail("prompt", "none cannot be combined with other values")
    platform = data.get("platform")
    device = data.get("device")
    platform = None if platform is None else validate_platform(platform)
    device = None if device is None else validate_device(device)
    return RequestParams(
        justification=_string(data, "justification", limit=MAX_TEXT),
        login_hint=_string(data, "login_hint"),
        tenant=_string(data, "tenant"),
        domain_hint=_string(data, "domain_hint"),
        prompt=prompt,
        platform=platform,
        device=device,
        capabilities=parse_capabilities(data.get("capabilities")),
    )


@dataclass(frozen=True)
class PersonTokenRequest:
    """§Person Token Endpoint request parameters."""

    resource: str
    mission_s256: str | None = None
    subagent_token: str | None = None
    upstream_token: str | None = None
    params: RequestParams = field(default_factory=RequestParams)


def parse_person_token_request(data: Mapping[str, Any]) -> PersonTokenRequest:
    resource = data.get("resource")
    if resource is None:
        raise _fail("resource", "is required")
    try:
        resource = validate_server_identifier(resource)
    except ValueError as exc:
        raise _fail("resource", str(exc)) from exc
    return PersonTokenRequest(
        resource=resource,
        mission_s256=_s256(data),
        subagent_token=_string(data, "subagent_token", limit=MAX_TOKEN),
        upstream_token=_string(data, "upstream_token", limit=MAX_TOKEN),
        params=parse_request_params(data),
    )


@dataclass(frozen=True)
class AuthTokenRequest:
    """§Agent Token Request parameters."""

    resource_token: str
    subagent_token: str | None = None
    upstream_token: str | None = None
    params: RequestParams = field(default_factory=RequestParams)


def parse_auth_token_request(data: Mapping[str, Any]) -> AuthTokenRequest:
    return AuthTokenRequest(
        resource_token=_required(data, "resource_token", MAX_TOKEN),
        subagent_token=_string(data, "subagent_token", limit=MAX_TOKEN),
        upstream_token=_string(data, "upstream_token", limit=MAX_TOKEN),
        params=parse_request_params(data),
    )


_TOOL_NAME = re.compile(r"[^\x00-\x1f\x7f]{1,128}")


def parse_tools(value: Any, name: str = "tools") -> tuple[dict[str, str], ...]:
    """An array of ``{"name", "description"}`` tool objects (§Mission Creation)."""
    if value is None:
        return ()
    if not isinstance(value, list) or len(value) > MAX_LIST:
        raise _fail(name, f"must be an array of at most {MAX_LIST} tool objects")
    tools: list[dict[str, str]] = []
    seen: set[str] = set()
    for item in value:
        if not isinstance(item, dict):
            raise _fail(name, "each tool is a JSON object")
        tool_name = item.get("name")
        if not isinstance(tool_name, str) or not _TOOL_NAME.fullmatch(tool_name):
            raise _fail(name, "each tool has a name of 1..128 printable characters")
        description = item.get("description", "")
        if not isinstance(description, str) or len(description) > MAX_TEXT:
            raise _fail(name, "a tool description is a string")
        if tool_name in seen:
            raise _fail(name, f"tool {tool_name!r} is listed twice")
        seen.add(tool_name)
        tools.append({"name": tool_name, "description": description})
    return tuple(tools)


def parse_resources(value: Any, name: str = "resources") -> tuple[str, ...]:
    """An array of server identifiers (§Mission Creation ``resources``)."""
    if value is None:
        return ()
    if not isinstance(value, list) or len(value) > MAX_LIST:
        raise _fail(name, f"must be an array of at most {MAX_LIST} resource identifiers")
    out: list[str] = []
    for item in value:
        try:
            out.append(validate_server_identifier(item))
        except ValueError as exc:
            raise _fail(name, str(exc)) from exc
    return tuple(dict.fromkeys(out))


@dataclass(frozen=True)
class MissionProposal:
    """§Mission Creation: a Markdown ``description``, optional ``tools`` and ``resources``,
    and the agent's ``capabilities`` (captured at approval, §PS Token Endpoint)."""

    description: str
    tools: tuple[dict[str, str], ...] = ()
    resources: tuple[str, ...] = ()
    params: RequestParams = field(default_factory=RequestParams)


def parse_mission_proposal(data: Mapping[str, Any]) -> MissionProposal:
    return MissionProposal(
        description=_required(data, "description", MAX_TEXT),
        tools=parse_tools(data.get("tools")),
        resources=parse_resources(data.get("resources")),
        params=parse_request_params(data),
    )


def parse_mission_action(data: Mapping[str, Any]) -> tuple[str, str]:
    """§Mission Update / §Mission Completion: ``(action, text)`` -- ``update`` with its
    ``description``, ``completion`` with its ``summary``. A missing or unknown action is
    ``invalid_request`` (§Mission Endpoint Errors)."""
    action = data.get("action")
    if not isinstance(action, str) or action not in MISSION_ACTIONS:
        raise _fail("action", "is missing or not recognized (update, completion)")
    member = "description" if action == "update" else "summary"
    return action, _required(data, member, MAX_TEXT)


@dataclass(frozen=True)
class PermissionRequest:
    """§Permission Request."""

    action: str
    description: str | None = None
    parameters: dict[str, Any] | None = None
    mission_s256: str | None = None


def parse_permission_request(data: Mapping[str, Any]) -> PermissionRequest:
    return PermissionRequest(
        action=_required(data, "action"),
        description=_string(data, "description", limit=MAX_TEXT),
        parameters=_object(data, "parameters"),
        mission_s256=_s256(data),
    )


@dataclass(frozen=True)
class AuditRequest:
    """§Audit Request: ``mission_s256`` and ``action`` are REQUIRED."""

    mission_s256: str
    action: str
    description: str | None = None
    parameters: dict[str, Any] | None = None
    result: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"action": self.action}
        for name in ("description", "parameters", "result"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out


def parse_audit_request(data: Mapping[str, Any]) -> AuditRequest:
    mission = _s256(data, required=True)
    assert mission is not None
    return AuditRequest(
        mission_s256=mission,
        action=_required(data, "action"),
        description=_string(data, "description", limit=MAX_TEXT),
        parameters=_object(data, "parameters"),
        result=_object(data, "result"),
    )


@dataclass(frozen=True)
class InteractionRequest:
    """§Interaction Request: ``type`` is ``interaction``, ``payment`` or ``question``."""

    type: str
    description: str | None = None
    url: str | None = None
    code: str | None = None
    max_wait: int | None = None
    question: str | None = None
    mission_s256: str | None = None


def parse_interaction_request(data: Mapping[str, Any]) -> InteractionRequest:
    type_ = data.get("type")
    if not isinstance(type_, str) or type_ not in INTERACTION_TYPES:
        raise _fail("type", f"must be one of {sorted(INTERACTION_TYPES)}")
    url = _string(data, "url", limit=2048)
    if url is not None:
        try:
            validate_https_url(url)
        except ValueError as exc:
            raise _fail("url", str(exc)) from exc
    max_wait = data.get("max_wait")
    if max_wait is not None and (
        isinstance(max_wait, bool) or not isinstance(max_wait, int) or not 0 < max_wait <= 86400
    ):
        raise _fail("max_wait", "must be a positive number of seconds")
    request = InteractionRequest(
        type=type_,
        description=_string(data, "description", limit=MAX_TEXT),
        url=url,
        code=_string(data, "code", limit=128),
        max_wait=max_wait,
        question=_string(data, "question", limit=MAX_TEXT),
        mission_s256=_s256(data),
    )
    if type_ in ("interaction", "payment") and request.url is None:
        raise _fail("url", f"is required for type {type_}")
    if type_ == "question" and request.question is None:
        raise _fail("question", "is required for type question")
    return request


def parse_revocation_request(data: Mapping[str, Any]) -> tuple[str, str]:
    """§Token Revocation: ``(iss, jti)``, both REQUIRED."""
    iss = _required(data, "iss")
    try:
        iss = validate_server_identifier(iss)
    except ValueError as exc:
        raise _fail("iss", str(exc)) from exc
    return iss, _required(data, "jti")


__all__ = [
    "MAX_TEXT",
    "AuditRequest",
    "AuthTokenRequest",
    "InteractionRequest",
    "MissionProposal",
    "PermissionRequest",
    "PersonTokenRequest",
    "RequestParams",
    "parse_audit_request",
    "parse_auth_token_request",
    "parse_capabilities",
    "parse_interaction_request",
    "parse_json_object",
    "parse_mission_action",
    "parse_mission_proposal",
    "parse_permission_request",
    "parse_person_token_request",
    "parse_prefer_wait",
    "parse_request_params",
    "parse_resources",
    "parse_revocation_request",
    "parse_tools",
]
