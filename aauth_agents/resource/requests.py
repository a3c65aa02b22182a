"""Parsers for the JSON bodies the resource's own endpoints receive. Each returns a typed
value or raises a :class:`~aauth_agents.protocol.wire.WireFormatError` (400), never anything
else."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from ..protocol.deferred import MalformedBodyError
from ..protocol.encoding import loads_json_object
from ..protocol.scopes import parse_scope

MAX_ACCOUNT_LENGTH = 256
MAX_JTI_LENGTH = 512


def _object(body: bytes | None) -> Mapping[str, Any]:
    if not body:
        raise MalformedBodyError("a JSON object body is required")
    try:
        return loads_json_object(body)
    except ValueError as exc:
        raise MalformedBodyError(str(exc)) from exc


@dataclass(frozen=True)
class AuthorizationRequest:
    """§Authorization Endpoint Request: ``scope`` (REQUIRED) and ``account`` (OPTIONAL)."""

    scopes: tuple[str, ...]
    account: str | None = None


def parse_authorization_request(body: bytes | None) -> AuthorizationRequest:
    """The body of a request to the resource's authorization endpoint; raises
    :class:`MalformedBodyError` on a bad one."""
    data = _object(body)
    scope = data.get("scope")
    if not isinstance(scope, str):
        raise MalformedBodyError("scope is required and must be a string")
    scopes = parse_scope(scope)  # InvalidScopeError (invalid_scope) on bad syntax
    account = data.get("account")
    if account is not None and (
        not isinstance(account, str)
        or not account
        or len(account) > MAX_ACCOUNT_LENGTH
        or not account.isprintable()
    ):
        raise MalformedBodyError("account must be a short printable string")
    return AuthorizationRequest(scopes, account)


@dataclass(frozen=True)
class RevocationRequest:
    """§Token Revocation: the pair ``(iss, jti)``, both REQUIRED."""

    iss: str
    jti: str


def parse_revocation_request(body: bytes | None) -> RevocationRequest:
    """The body of a request to the resource's revocation endpoint (``iss``, ``jti``); raises
    :class:`MalformedBodyError` on a bad one."""
    data = _object(body)
    iss, jti = data.get("iss"), data.get("jti")
    if not isinstance(iss, str) or not iss:
        raise MalformedBodyError("iss is required")
    if not isinstance(jti, str) or not jti or len(jti) > MAX_JTI_LENGTH:
        raise MalformedBodyError("jti is required")
    return RevocationRequest(iss, jti)


@dataclass(frozen=True)
class InteractionDecision:
    """The person's answer on the interaction page: ``approve`` or ``deny``, with the
    page token the page was rendered with and the agent's ``callback`` it carried."""

    decision: str
    page_token: str
    callback: str | None = None


def parse_interaction_form(body: bytes | None) -> InteractionDecision:
    """An ``application/x-www-form-urlencoded`` decision form."""
    try:
        text = (body or b"").decode("ascii")
        fields = parse_qs(text, keep_blank_values=True, strict_parsing=bool(text), max_num_fields=8)
    except (UnicodeDecodeError, ValueError) as exc:
        raise MalformedBodyError("not a form") from exc
    decision = fields.get("decision", [])
    token = fields.get("page_token", [])
    if len(decision) != 1 or decision[0] not in ("approve", "deny"):
        raise MalformedBodyError("decision must be approve or deny")
    if len(token) != 1 or not token[0]:
        raise MalformedBodyError("page_token is required")
    callback = fields.get("callback", [])
    if len(callback) > 1:
        raise MalformedBodyError("at most one callback")
    return InteractionDecision(decision[0], token[0], callback[0] if callback else None)


__all__ = [
    "AuthorizationRequest",
    "InteractionDecision",
    "RevocationRequest",
    "parse_authorization_request",
    "parse_interaction_form",
    "parse_revocation_request",
]
