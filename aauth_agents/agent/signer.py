"""Signing every request the agent sends, with what does not change cached.

:func:`aauth_agents.httpsig.sign_request` serialises the ``Signature-Key`` field (an RFC 8941
String holding the whole JWT, checked character by character) and the ``@signature-params``
Inner List on every call. For one token and one list of covered components neither changes
between requests, so :class:`RequestSigner` keeps both -- the same serialisations, computed
by the same functions, once -- and, for each shape of request (origin, covered fields,
components), the signature base but for the path and query: per request it derives those
two, signs and appends ``;created=<int>``. The output is byte-for-byte what
``sign_request`` produces for the same ``created`` (tests check this over generated
requests).

It also keeps identical state-changing requests apart, so that a verifier's replay cache
(§Freshness and Replay) does not take the second for a replay of the first: ``created`` is
kept strictly increasing per (key, method, authority, path), at most a few seconds ahead of
the clock (this also satisfies a cache keyed on that tuple alone); past that lead, a request
whose signed content was already signed gets a ``nonce`` signature parameter (RFC 9421
§2.3), which a cache keyed on the signed content tells apart. (New MCP sessions each open
with the same ``initialize``: many sessions a second would otherwise repeat themselves.)
"""

from __future__ import annotations

import binascii
import hashlib
import secrets
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from ..httpsig import (
    DEFAULT_LABEL,
    SAFE_METHODS,
    HttpRequest,
    SignatureKey,
    build_signature_base,
    content_digest,
    default_components,
    signature_params,
)
from ..httpsig.request import TARGET_COMPONENTS, Target, split_target, target_component
from ..httpsig.signature_key import serialize_signature_key
from ..keys import PrivateKey

_CACHE_SIZE = 512
#: How far ``created`` may be pushed ahead of the clock to stay unique (well inside the
#: default 60 s signature window).
_MAX_CREATED_LEAD = 5


class _LRU(OrderedDict[object, Any]):
    def remember(self, key: object, value: Any) -> Any:
        self[key] = value
        if len(self) > _CACHE_SIZE:
            self.popitem(last=False)
        return value


class _Prepared(HttpRequest):
    """An :class:`HttpRequest` whose ``signature-key`` value is served from the signer's
    cache, already canonicalised (RFC 9421 §2.1) by :meth:`HttpRequest.header` itself."""

    __slots__ = ("signature_key_value",)

    signature_key_value: str

    def header(self, name: str) -> str | None:
        if name == "signature-key":
            return self.signature_key_value
        return super().header(name)


@dataclass(frozen=True)
class _Shape:
    """What requests of one shape always sign the same way: the covered components, and
    the signature base as constant pieces (``constants``, bytes) between the components
    derived per request from the path and query (``derived``, :data:`TARGET_COMPONENTS`),
    up to the ``@signature-params`` value."""

    covered: tuple[str, ...]
    constants: tuple[bytes, ...]  # one more than ``derived``
    derived: tuple[str, ...]
    params: str  # the ``@signature-params`` value without its parameters
    #: The three constants as text when they are ASCII and ``derived`` is ``@path``,
    #: ``@query`` (what nearly every request covers): one string, encoded once.
    path_query: tuple[str, str, str] | None = None

    @classmethod
    def of(cls, covered: tuple[str, ...], base: bytes) -> _Shape | None:
        """The shape of a base built for ``covered`` (``None``: not one to reuse)."""
        lines = base.split(b"\n")
        if len(lines) != len(covered) + 1 or "content-digest" in covered:
            return None  # (a digest differs per body)
        constants: list[bytes] = []
        derived: list[str] = []
        constant = b""
        for name, line in zip(covered, lines, strict=False):
            if name in TARGET_COMPONENTS:
                identifier, _, _ = line.partition(b": ")
                constants.append(constant + identifier + b": ")
                derived.append(name)
                constant = b"\n"
            else:
                constant += line + b"\n"
        marker = b'"@signature-params": '
        if not lines[-1].startswith(marker):
            return None
        constants.append(constant + marker)
        params = str(signature_params(covered, {}))
        path_query = None
        if derived == ["@path", "@query"] and all(c.isascii() for c in constants):
            first, second, last = (c.decode("ascii") for c in constants)
            path_query = (first, second, last)
        return cls(covered, tuple(constants), tuple(derived), params, path_query)

    def base(self, target: Target, params: str) -> bytes:
        """The signature base of a request to ``target`` with these ``params``."""
        if self.path_query is not None:
            first, second, last = self.path_query
            query = target.query or ""
            return f"{first}{target.path}{second}?{query}{last}{params}".encode()
        constants = self.constants
        parts = [constants[0]]
        for index, name in enumerate(self.derived, 1):
            parts.append(target_component(target, name).encode())
            parts.append(constants[index])
        parts.append(params.encode())
        return b"".join(parts)


def split_url(url: httpx.URL) -> tuple[str, Target] | None:
    """The resource identifier (``scheme://netloc``, as
    :func:`~aauth_agents.agent.flow.config.resource_identifier` spells it) and
    ``split_target(str(url))`` of an httpx (or httpx2) URL, taken from the parts httpx keeps
    -- ``raw_path`` is the request target it sends -- instead of printing the URL and parsing
    it again (tests check the two agree). ``None``: not http(s), which ``split_target``
    refuses."""
    scheme = url.scheme
    if scheme != "https" and scheme != "http":
        return None
    netloc = url.netloc.decode("ascii")
    authority = netloc  # (httpx keeps a default port given with an upper-case scheme)
    default_port = ":443" if scheme == "https" else ":80"
    if authority.endswith(default_port):
        authority = authority[: -len(default_port)]
    path, question, query = url.raw_path.decode("ascii").partition("?")
    return f"{scheme}://{netloc}", Target(scheme, authority, path, query if question else None)


class RequestSigner:
    """Signs requests per §Signing (Agent)."""

    def __init__(self, label: str = DEFAULT_LABEL) -> None:
        self.label = label
        self._lock = threading.Lock()
        self._signature_keys = _LRU()
        self._params = _LRU()
        self._shapes = _LRU()
        self._wanted: dict[tuple[str, ...], frozenset[bytes]] = {}
        self._created: OrderedDict[tuple[str, str, str, str], int] = OrderedDict()
        self._signed = _LRU()  # digests of recently signed state-changing bases
        #: The last Signature-Key object and its two values (one token is used for many
        #: requests in a row: an identity check instead of a cache key).
        self._last_key: tuple[SignatureKey | None, tuple[str, str]] = (None, ("", ""))

    def coverable_headers(
        self, headers: httpx.Headers, extra_components: tuple[str, ...]
    ) -> list[tuple[str, str]]:
        """The fields of ``headers`` a signature may cover: ``authorization``,
        ``content-type`` and the header fields among ``extra_components`` (repeated lines
        combined), in one pass over the raw headers."""
        wanted = self._wanted.get(extra_components)
        if wanted is None:
            wanted = frozenset(
                name.encode("ascii")
                for name in ("authorization", "content-type", *extra_components)
                if name.isascii()
                and not name.startswith("@")
                and name not in ("signature-key", "content-digest")
            )
            with self._lock:
                if len(self._wanted) > _CACHE_SIZE:
                    self._wanted.clear()
                self._wanted[extra_components] = wanted
        matched = [(name, value) for name, value in headers.raw if name.lower() in wanted]
        if not matched:
            return []
        lines: dict[str, list[str]] = {}
        for raw_name, raw_value in matched:
            name = raw_name.lower().decode("ascii")
            lines.setdefault(name, []).append(raw_value.decode("latin-1"))
        return [(name, ", ".join(values)) for name, values in lines.items()]

    def signature_key_header(self, signature_key: SignatureKey) -> tuple[str, str]:
        """The ``Signature-Key`` field value for ``signature_key`` and its canonical form
        as a covered component (both cached)."""
        last, values = self._last_key
        if last is signature_key:
            return values
        jwt = signature_key.params.get("jwt")
        cache_key: object = (
            jwt
            if isinstance(jwt, str) and len(signature_key.params) == 1
            else (signature_key.scheme, tuple(sorted(signature_key.params.items())))
        )
        cached: tuple[str, str] | None = self._signature_keys.get((signature_key.scheme, cache_key))
        if cached is None:
            value = serialize_signature_key(self.label, signature_key)
            canonical = HttpRequest("GET", "https://x.example/", {"signature-key": value}).header(
                "signature-key"
            )
            assert canonical is not None
            with self._lock:
                cached = self._signature_keys.remember(
                    (signature_key.scheme, cache_key), (value, canonical)
                )
        self._last_key = (signature_key, cached)
        return cached

    def _params_prefix(self, covered: tuple[str, ...]) -> str:
        cached: str | None = self._params.get(covered)
        if cached is None:
            value = str(signature_params(covered, {}))
            with self._lock:
                cached = self._params.remember(covered, value)
        return cached

    def created_for(self, request: HttpRequest, thumbprint: str, now: float) -> int:
        """``int(now)``, pushed past the last value used for the same state-changing
        (key, method, authority, path) -- at most a few seconds ahead of the clock."""
        target = request.target
        return self._created_at(request.method, target.authority, target.path, thumbprint, now)

    def _created_at(
        self, method: str, authority: str, path: str, thumbprint: str, now: float
    ) -> int:
        created = int(now)
        method = method.upper()
        if method in SAFE_METHODS:
            return created
        slot = (thumbprint, method, authority, path)
        with self._lock:
            last = self._created.get(slot)
            if last is not None and created <= last and last - int(now) < _MAX_CREATED_LEAD:
                created = last + 1
            self._created[slot] = created
            self._created.move_to_end(slot)
            while len(self._created) > _CACHE_SIZE:
                self._created.popitem(last=False)
        return created

    def sign_message(
        self,
        method: str,
        url: str | httpx.URL,
        headers: Sequence[tuple[str, str]],
        body: bytes | None,
        *,
        key: PrivateKey,
        signature_key: SignatureKey,
        now: float,
        key_id: str,
        extra_components: tuple[str, ...] = (),
        cover_body: bool = True,
        target: Target | None = None,
    ) -> tuple[dict[str, str], tuple[str, ...]]:
        """Sign a request given by its parts. ``headers`` need only hold the fields that
        may be covered (:meth:`coverable_headers`); ``now`` and ``key_id`` choose
        ``created`` (:meth:`created_for`); ``target`` is ``split_target(url)`` when the
        caller has it already (:func:`split_url`; ``url`` is then printed only for a new
        shape).

        Requests of the same shape -- method, origin, whether there is a query, those
        fields, whether there is a body, the key material and the component options -- share
        the signature base but for the path and query (:class:`_Shape`), unless the body is
        covered, whose digest differs per body: after the first, a request to another path of
        the same resource costs the signature and little else."""
        value, canonical = self.signature_key_header(signature_key)
        if target is None:
            target = split_target(str(url))
        scheme, authority, path, query = target
        lines, options = tuple(headers), (extra_components, cover_body)
        shape_key = (method, scheme, authority, not query, lines, not body, value, options)
        shape: _Shape | None = self._shapes.get(shape_key)
        safe = method in SAFE_METHODS  # (else _created_at and _distinct tell)
        created = int(now)
        if not safe:
            created = self._created_at(method, authority, path, key_id, now)
        if shape is not None:
            params = f"{shape.params};created={created}"
            base = shape.base(target, params)
            if not safe:
                params, base = self._distinct(method, params, base)
            return self._finish({"Signature-Key": value}, base, params, key), shape.covered
        request = _Prepared(method, str(url), [*headers, ("signature-key", value)], body)
        request.signature_key_value = canonical
        added, covered, base = self._base(request, value, created, extra_components, cover_body)
        shape = _Shape.of(covered, base)
        if shape is not None:
            with self._lock:
                self._shapes.remember(shape_key, shape)
        params = added.pop("Signature-Input")
        params, base = self._distinct(method, params, base)
        return self._finish(added, base, params, key), covered

    def _distinct(self, method: str, params: str, base: bytes) -> tuple[str, bytes]:
        """``params`` and ``base``, with a ``nonce`` when this exact state-changing content
        was signed before (see the module docstring)."""
        if method.upper() in SAFE_METHODS:
            return params, base
        digest = hashlib.sha256(base).digest()
        with self._lock:
            seen = digest in self._signed
            if not seen:
                self._signed.remember(digest, True)
        if not seen:
            return params, base
        unique = f'{params};nonce="{secrets.token_urlsafe(12)}"'
        return unique, base[: len(base) - len(params)] + unique.encode("ascii")

    def sign(
        self,
        request: HttpRequest,
        *,
        key: PrivateKey,
        signature_key: SignatureKey,
        created: int,
        extra_components: Iterable[str] = (),
        cover_body: bool = True,
    ) -> tuple[dict[str, str], tuple[str, ...]]:
        """The header fields to add to ``request`` (``Signature-Key``, ``Signature-Input``,
        ``Signature`` and ``Content-Digest`` when covered) and the covered components."""
        value, canonical = self.signature_key_header(signature_key)
        kept = [(k, v) for k, v in request.headers if k != "signature-key"]
        prepared = _Prepared(
            request.method, request.url, [*kept, ("signature-key", value)], request.body
        )
        prepared.signature_key_value = canonical
        added, covered, base = self._base(prepared, value, created, extra_components, cover_body)
        params = added.pop("Signature-Input")
        return self._finish(added, base, params, key), covered

    def _base(
        self,
        request: _Prepared,
        signature_key_value: str,
        created: int,
        extra_components: Iterable[str],
        cover_body: bool,
    ) -> tuple[dict[str, str], tuple[str, ...], bytes]:
        """The covered components and the signature base; ``Signature-Input`` in ``added``
        holds the ``@signature-params`` value until :meth:`_finish`."""
        covered = tuple(
            default_components(request, extra_components=extra_components, cover_body=cover_body)
        )
        added = {"Signature-Key": signature_key_value}
        if "content-digest" in covered:
            digest = content_digest(request.body or b"", ("sha-256",))
            added["Content-Digest"] = digest
            request.headers = (
                *[(k, v) for k, v in request.headers if k != "content-digest"],
                ("content-digest", digest),
            )
        params = f"{self._params_prefix(covered)};created={created}"
        added["Signature-Input"] = params
        return added, covered, build_signature_base(request, covered, params)

    def _finish(
        self, added: dict[str, str], base: bytes, params: str, key: PrivateKey
    ) -> dict[str, str]:
        signature = binascii.b2a_base64(key.sign(base), newline=False).decode("ascii")
        added["Signature-Input"] = f"{self.label}={params}"
        added["Signature"] = f"{self.label}=:{signature}:"
        return added


__all__ = ["RequestSigner", "split_url"]
