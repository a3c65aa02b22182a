"""Signing (draft-hardt-oauth-aauth-protocol-11 §Signing (Agent)).

:func:`sign_request` returns the header fields to add to a request: ``Signature-Key``,
``Signature-Input``, ``Signature`` and, when ``content-digest`` is covered,
``Content-Digest``. The only signature parameters are ``created`` and optionally
``expires`` -- never ``alg`` or ``keyid`` (§Signature Parameters): the key and its algorithm
travel in ``Signature-Key``.
"""

from __future__ import annotations

import binascii
from collections.abc import Iterable, Sequence
from typing import Any

from http_sfv.dictionary import Dictionary

from ..clock import Clock, system_clock
from ..keys import PrivateKey
from ..protocol.errors import ConfigurationError
from .base import build_signature_base, signature_params
from .digest import content_digest
from .request import HttpRequest
from .sfv import serialize_inner_list, serialize_key, serialize_params
from .signature_key import serialize_signature_key
from .types import SignatureKey

#: RFC 8941 §3.3.1: the largest Integer magnitude.
_MAX_INTEGER = 999_999_999_999_999
#: The signature label AAuth requests use (``Signature-Input: sig=...``).
DEFAULT_LABEL = "sig"
#: Components that only make sense on a request with a body.
BODY_COMPONENTS = ("content-type", "content-digest")


def default_components(
    request: HttpRequest, *, extra_components: Iterable[str] = (), cover_body: bool = True
) -> list[str]:
    """The covered components §Covered Components asks for, in a stable order.

    ``@method`` ``@authority`` ``@path``; ``@query`` when the URL has a query;
    ``authorization`` when the request carries one (a session token must be bound,
    §AAuth-Access); ``content-type`` ``content-digest`` when there is a body and
    ``cover_body`` (always so for PS and AS requests); then ``extra_components`` (a resource's
    ``additional_signature_components``; its body components apply only to requests with a
    body); ``signature-key`` always last.
    """
    return list(_covered(request, extra_components, cover_body))


#: :func:`default_components` by request shape (query, authorization, body), ``cover_body``
#: and a tuple of ``extra_components``: a signer meets a handful (bounded: cleared when full).
_COVERED: dict[tuple[object, ...], tuple[str, ...]] = {}


def _covered(
    request: HttpRequest, extra_components: Iterable[str], cover_body: bool
) -> tuple[str, ...]:
    """:func:`default_components` as a tuple, worked out once per request shape."""
    has_body = bool(request.body)
    shape = (
        bool(request.target.query),
        request.header("authorization") is not None,
        has_body,
        cover_body,
    )
    if type(extra_components) is not tuple:
        return _components(*shape, tuple(extra_components))
    key = (*shape, *extra_components)
    covered = _COVERED.get(key)
    if covered is None:
        if len(_COVERED) >= 256:
            _COVERED.clear()
        covered = _COVERED[key] = _components(*shape, extra_components)
    return covered


def _components(
    has_query: bool,
    has_authorization: bool,
    has_body: bool,
    cover_body: bool,
    extra_components: tuple[str, ...],
) -> tuple[str, ...]:
    covered = ["@method", "@authority", "@path"]
    if has_query:
        covered.append("@query")
    if has_authorization:
        covered.append("authorization")
    if has_body and cover_body:
        covered.extend(BODY_COMPONENTS)
    for name in extra_components:
        if name in BODY_COMPONENTS and not has_body:
            continue
        if name not in covered and name != "signature-key":
            covered.append(name)
    covered.append("signature-key")
    return tuple(covered)


def _timestamp(name: str, value: Any) -> int:
    if type(value) is not int:
        raise ConfigurationError(f"{name} must be an integer Unix time")
    return value


def sign_request(
    request: HttpRequest,
    *,
    key: PrivateKey,
    signature_key: SignatureKey,
    components: Sequence[str] | None = None,
    label: str = DEFAULT_LABEL,
    created: int | None = None,
    expires: int | None = None,
    clock: Clock = system_clock,
    extra_components: Iterable[str] = (),
    cover_body: bool = True,
    digest_algorithms: Iterable[str] = ("sha-256",),
) -> dict[str, str]:
    """Sign ``request`` and return the header fields to add to it.

    ``components`` overrides the profile's default list (:func:`default_components`) and is
    used verbatim -- an escape hatch for tests and interop, not for AAuth requests.
    ``Content-Digest`` is (re)computed from the body whenever ``content-digest`` is covered.
    Raises :class:`~aauth_agents.protocol.errors.ConfigurationError` (a ``ComponentError``
    when a covered component cannot be derived, e.g. a body without ``Content-Type``).
    """
    if components is None:
        covered = _covered(request, extra_components, cover_body)
    else:
        covered = tuple(components)
    signature_key_value = serialize_signature_key(label, signature_key)
    added = {"Signature-Key": signature_key_value}
    # The fields added here, as covered components (RFC 9421 §2.1: a serialised structured
    # field has no surrounding whitespace or line breaks): the request is not copied.
    known = {"signature-key": signature_key_value}
    if "content-digest" in covered:
        digest = content_digest(request.body or b"", digest_algorithms)
        added["Content-Digest"] = known["content-digest"] = digest
    params: dict[str, int] = {
        "created": int(clock()) if created is None else _timestamp("created", created)
    }
    if expires is not None:
        params["expires"] = _timestamp("expires", expires)
    inner = _signature_params(covered, params)
    if inner is None or serialize_key(label) is None:
        return _sign_slow(request, key, covered, label, params, added, known)
    base = build_signature_base(request, covered, inner, known)
    # base64.b64encode without its wrapper: the same characters
    signature = binascii.b2a_base64(key.sign(base), newline=False).decode("ascii")
    added["Signature-Input"] = f"{label}={inner}"
    added["Signature"] = f"{label}=:{signature}:"
    return added


#: The Inner List of each list of covered components, parameters aside: a signer covers
#: a handful of lists (bounded: cleared when full).
_INNER_LISTS: dict[tuple[str, ...], str] = {}


def _signature_params(covered: tuple[str, ...], params: dict[str, int]) -> str | None:
    """:func:`~.sfv.serialize_inner_list` of ``covered`` and ``params``, the list part
    serialised once per list of components."""
    inner = _INNER_LISTS.get(covered)
    if inner is None:
        inner = serialize_inner_list(covered, {})
        if inner is None:
            return None
        if len(_INNER_LISTS) >= 256:
            _INNER_LISTS.clear()
        _INNER_LISTS[covered] = inner
    if len(params) == 1:  # ``created`` alone: an Integer (RFC 8941 §4.1.4)
        created = params["created"]
        if -_MAX_INTEGER <= created <= _MAX_INTEGER:
            return f"{inner};created={created}"
    suffix = serialize_params(params)
    return None if suffix is None else inner + suffix


def _sign_slow(
    request: HttpRequest,
    key: PrivateKey,
    covered: Sequence[str],
    label: str,
    params: dict[str, int],
    added: dict[str, str],
    known: dict[str, str],
) -> dict[str, str]:
    """:func:`sign_request` through ``http_sfv``, for what :mod:`.sfv` does not serialise
    (it raises the ``ConfigurationError`` an invalid label or component calls for)."""
    inner = signature_params(covered, params)
    base = build_signature_base(request, covered, str(inner), known)
    signature_input, signature = Dictionary(), Dictionary()
    signature_input[label] = inner
    signature[label] = key.sign(base)
    added["Signature-Input"] = str(signature_input)
    added["Signature"] = str(signature)
    return added


__all__ = ["BODY_COMPONENTS", "DEFAULT_LABEL", "default_components", "sign_request"]
