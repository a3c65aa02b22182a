"""AAuth and Signature-Key header fields other than ``AAuth-Requirement``.

* ``AAuth-Capabilities`` (§AAuth-Capabilities Request Header): a List of Tokens.
* ``AAuth-Access`` and ``Authorization: AAuth <token68>`` (§AAuth-Access Response Header).
* ``Signature-Error`` (Signature-Key §Signature-Error): a Dictionary with an ``error`` Token
  and, for ``invalid_input``, a ``required_input`` Inner List of Strings.
* ``Accept-Signature-Scheme`` / ``Accept-Signature-Alg`` (-11 §Authentication Errors, as
  ``@hellocoop/httpsig`` 2.x writes them): Lists of Tokens.

Serialisation matches ``@hellocoop/httpsig``: ``error=invalid_input, required_input=("@method")``
and ``jwt, hwk``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from http_sfv.dictionary import Dictionary
from http_sfv.item import InnerList, Item
from http_sfv.types import Token

from .errors import SIGNATURE_ERROR_CODES, ConfigurationError
from .registry import CAPABILITY_VALUES
from .wire import (
    FieldInput,
    MalformedHeaderError,
    field_lines,
    parse_dictionary,
    parse_list,
    serialize,
    string_inner_list,
    token_list,
    token_members,
)

#: The request header in which an agent lists what it can do (§AAuth-Capabilities).
AAUTH_CAPABILITIES = "AAuth-Capabilities"
#: The response header carrying a resource's session token (§AAuth-Access).
AAUTH_ACCESS = "AAuth-Access"
#: The request header an agent presents a session token in (``AAuth`` scheme).
AUTHORIZATION = "Authorization"
#: The response header naming why a signature was refused (Signature-Key draft).
SIGNATURE_ERROR = "Signature-Error"
#: The response header listing the Signature-Key schemes a server accepts.
ACCEPT_SIGNATURE_SCHEME = "Accept-Signature-Scheme"
#: The response header listing the signature algorithms a server accepts.
ACCEPT_SIGNATURE_ALG = "Accept-Signature-Alg"

#: The ``Authorization`` scheme of session tokens (§AAuth-Access).
AUTH_SCHEME = "AAuth"

# RFC 9110 §11.2: token68 = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
_TOKEN68 = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
# RFC 9110 §11.1: credentials = auth-scheme [ 1*SP ( token68 / #auth-param ) ]
_CREDENTIALS = re.compile(r"([!#$%&'*+\-.^_`|~0-9A-Za-z]+)(?: +(.*))?", re.DOTALL)
_OWS = " \t"


# --- AAuth-Capabilities ---------------------------------------------------------------


def parse_capabilities(header: FieldInput) -> frozenset[str]:
    """The known capabilities an agent declared. Unknown values, parameters and non-Token
    members are ignored (§AAuth-Capabilities: recipients MUST ignore them). A field that is
    not a List raises :class:`MalformedHeaderError`; RFC 8941 says to then ignore the field,
    which leaves no capabilities."""
    values = token_members(parse_list(AAUTH_CAPABILITIES, header))
    return frozenset(v for v in values if v in CAPABILITY_VALUES)


def serialize_capabilities(capabilities: Iterable[str]) -> str:
    """``interaction, clarification`` -- in the given order, duplicates dropped."""
    return token_list(AAUTH_CAPABILITIES, dict.fromkeys(capabilities))


# --- AAuth-Access and Authorization: AAuth ---------------------------------------------


def validate_token68(value: str, *, what: str = AAUTH_ACCESS) -> str:
    """Return ``value`` if it is a non-empty token68 (RFC 9110 §11.2), else raise.

    Error messages never contain the value: it is a credential."""
    if not isinstance(value, str) or not value:
        raise MalformedHeaderError(what, "empty credential")
    if "," in value:
        raise MalformedHeaderError(what, "more than one credential")
    if any(c.isspace() for c in value):
        raise MalformedHeaderError(what, "embedded whitespace in credential")
    if not _TOKEN68.fullmatch(value):
        raise MalformedHeaderError(what, "credential is not a token68")
    return value


def _single_line(header: FieldInput, what: str) -> str:
    lines = field_lines(header)
    if len(lines) > 1:
        raise MalformedHeaderError(what, "more than one credential")
    if not lines:
        raise MalformedHeaderError(what, "empty credential")
    return lines[0].strip(_OWS)


def parse_aauth_access(header: FieldInput) -> str:
    """The session token in an ``AAuth-Access`` response header (§AAuth-Access)."""
    return validate_token68(_single_line(header, AAUTH_ACCESS), what=AAUTH_ACCESS)


def serialize_aauth_access(session_token: str) -> str:
    """The ``AAuth-Access`` value carrying ``session_token`` (a token68, checked)."""
    try:
        return validate_token68(session_token)
    except MalformedHeaderError as exc:
        raise ConfigurationError(f"session token: {exc.detail}") from exc


def parse_authorization(header: FieldInput) -> str | None:
    """The token68 of ``Authorization: AAuth <token68>`` (scheme case-insensitive).

    ``None`` when the credentials use another scheme. More than one field line, a comma,
    embedded whitespace or an empty credential raise :class:`MalformedHeaderError`."""
    line = _single_line(header, AUTHORIZATION)
    match = _CREDENTIALS.fullmatch(line)
    if match is None:
        raise MalformedHeaderError(AUTHORIZATION, "not an auth-scheme followed by credentials")
    scheme, credential = match.group(1), match.group(2)
    if scheme.lower() != AUTH_SCHEME.lower():
        return None
    return validate_token68((credential or "").lstrip(" "), what=AUTHORIZATION)


def format_authorization(session_token: str) -> str:
    """``AAuth <token68>``, the value an agent sends back (§AAuth-Access)."""
    return f"{AUTH_SCHEME} {serialize_aauth_access(session_token)}"


# --- Signature-Error and Accept-Signature-* ---------------------------------------------


@dataclass(frozen=True)
class SignatureErrorInfo:
    """A parsed ``Signature-Error``: the code and, for ``invalid_input``, the components
    the verifier requires. ``known`` is False for codes outside Signature-Key §Error Codes."""

    code: str
    required_input: tuple[str, ...] | None = None

    @property
    def known(self) -> bool:
        return self.code in SIGNATURE_ERROR_CODES


def parse_signature_error(header: FieldInput) -> SignatureErrorInfo:
    """Parse ``Signature-Error``. Unknown members are ignored; unknown codes are kept."""
    members = parse_dictionary(SIGNATURE_ERROR, header)
    error = members.get("error")
    if not isinstance(error, Item) or not isinstance(error.value, Token):
        raise MalformedHeaderError(SIGNATURE_ERROR, "error must be a Token")
    required = members.get("required_input")
    if required is None:
        return SignatureErrorInfo(str(error.value))
    if not isinstance(required, InnerList) or not all(
        isinstance(i.value, str) and not isinstance(i.value, Token) for i in required
    ):
        raise MalformedHeaderError(SIGNATURE_ERROR, "required_input must list Strings")
    return SignatureErrorInfo(str(error.value), tuple(str(i.value) for i in required))


def serialize_signature_error(code: str, required_input: Sequence[str] | None = None) -> str:
    """``error=<code>[, required_input=("..." ...)]``."""
    members = Dictionary()
    members["error"] = Item(Token(code))
    if required_input:
        members["required_input"] = string_inner_list(required_input)
    return serialize(SIGNATURE_ERROR, members)


def parse_accept_signature_scheme(header: FieldInput) -> tuple[str, ...]:
    """Schemes in preference order; unknown ones kept, non-Tokens skipped."""
    return tuple(token_members(parse_list(ACCEPT_SIGNATURE_SCHEME, header)))


def serialize_accept_signature_scheme(schemes: Iterable[str]) -> str:
    """The ``Accept-Signature-Scheme`` value listing ``schemes``."""
    return token_list(ACCEPT_SIGNATURE_SCHEME, schemes)


def parse_accept_signature_alg(header: FieldInput) -> tuple[str, ...]:
    """JWS algorithm names the verifier accepts; unknown ones kept, non-Tokens skipped."""
    return tuple(token_members(parse_list(ACCEPT_SIGNATURE_ALG, header)))


def serialize_accept_signature_alg(algs: Iterable[str]) -> str:
    """The ``Accept-Signature-Alg`` value listing ``algs``."""
    return token_list(ACCEPT_SIGNATURE_ALG, algs)


__all__ = [
    "AAUTH_ACCESS",
    "AAUTH_CAPABILITIES",
    "ACCEPT_SIGNATURE_ALG",
    "ACCEPT_SIGNATURE_SCHEME",
    "AUTHORIZATION",
    "AUTH_SCHEME",
    "SIGNATURE_ERROR",
    "SignatureErrorInfo",
    "format_authorization",
    "parse_aauth_access",
    "parse_accept_signature_alg",
    "parse_accept_signature_scheme",
    "parse_authorization",
    "parse_capabilities",
    "parse_signature_error",
    "serialize_aauth_access",
    "serialize_accept_signature_alg",
    "serialize_accept_signature_scheme",
    "serialize_capabilities",
    "serialize_signature_error",
    "validate_token68",
]
