"""Verification (draft-hardt-oauth-aauth-protocol-11 §Verification, §Freshness and Replay).

:class:`SignatureVerifier` runs the seven steps of §Verification in order; every failure is
a :class:`~aauth_agents.protocol.errors.SignatureError` whose ``to_response()`` is the 401
with the right ``Signature-Error`` (and ``Accept-Signature-*``) header. The steps are written
once: :meth:`SignatureVerifier.verify` and :meth:`SignatureVerifier.averify` differ only in
whether the key resolver of step 5 is awaited.

Choices the specification leaves open, made here:

* A ``Signature``, ``Signature-Input`` or ``Signature-Key`` field that is present but not a
  well-formed structured field, a ``Signature-Key`` with other than exactly one member, or a
  label (taken from that member) missing from ``Signature-Input`` or ``Signature`` is
  treated like a missing field: ``invalid_request``.
* A covered component that cannot be derived (unknown derived component, absent header,
  component parameters such as ``;sf`` or ``;key``) is ``invalid_signature``.
* ``alg`` in ``Signature-Input`` is ignored (reproduced in ``@signature-params`` only). A
  ``keyid``, if present, must name the ``Signature-Key`` key: its ``kid``, its RFC 7638
  thumbprint, or the thumbprint URI (§Signature Parameters) -- else ``invalid_signature``.
* A body digest is checked whenever ``content-digest`` is covered; a mismatch is
  ``invalid_signature``.
"""

from __future__ import annotations

import base64
import hashlib
import inspect
import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, NamedTuple, NoReturn, Protocol

from http_sfv.dictionary import Dictionary
from http_sfv.item import Item

from ..clock import Clock, system_clock
from ..keys import SUPPORTED_ALGORITHMS, PublicKey
from ..protocol.encoding import b64url_decode
from ..protocol.errors import (
    AAuthError,
    DiscoveryError,
    InvalidInputError,
    InvalidJWTError,
    InvalidKeyError,
    InvalidSignatureError,
    MissingSignatureError,
    SignatureError,
    TokenError,
    UnsupportedSchemeError,
)
from .base import SignatureInput, build_signature_base, signature_input_member
from .digest import content_digest, verify_content_digest
from .request import ComponentError, HttpRequest, component_value, derived_component
from .sfv import canonical_bytes_item, parse_dictionary
from .sign import BODY_COMPONENTS
from .signature_key import check_signature_key, hwk_jwk, parse_signature_key_member
from .types import (
    SCHEME_HWK,
    SCHEME_JKT_JWT,
    SCHEME_JWT,
    AnyKeyResolver,
    KeyResolution,
    KeyResolver,
    SignatureKey,
)

logger = logging.getLogger("aauth_agents.httpsig")

#: §Covered Components: what every AAuth signature covers.
DEFAULT_REQUIRED_COMPONENTS = ("@method", "@authority", "@path", "signature-key")
#: Methods the replay cache skips: §Freshness and Replay asks for it on state-changing requests.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
_THUMBPRINT_URI = "urn:ietf:params:oauth:jwk-thumbprint:sha-256:"

#: What the replay cache remembers of a signature: (signing-key thumbprint, created,
#: @method, @authority, digest of the signature base). §Freshness and Replay allows a cache
#: keyed by (thumbprint, created, @method, @authority, @path); the digest of everything
#: signed stands in for the path so that distinct requests to one path in one second (an MCP
#: session's POSTs, each MCP session's identical ``initialize``, told apart by the agent's
#: signature parameters) are not replays of each other, while a replay -- the same signed
#: content again -- still is. Not the signature value: an ECDSA signature can be altered
#: into another valid one for the same content.
ReplayKey = tuple[str, int, str, str, str]


class ReplayCache(Protocol):
    """Remembers signatures seen within the validity window."""

    def check_and_store(self, key: ReplayKey, expires_at: float) -> bool:
        """Store ``key`` until ``expires_at``; False when it is already stored (a replay)."""
        ...


class MemoryReplayCache:
    """A bounded in-process :class:`ReplayCache`.

    Entries expire when their window closes. When more than ``max_entries`` signatures arrive
    within one window the oldest entries are evicted (logged, at most once a minute, with how
    many): memory stays bounded, at the price of not detecting a replay of an evicted
    signature. Each check is amortised O(1) whatever the cache holds: entries are kept in
    insertion order, expired from the front and evicted from the front.
    """

    #: Seconds between two "cache full" warnings: a flood of signatures does not flood the log.
    WARN_EVERY = 60.0

    def __init__(self, max_entries: int = 10_000, *, clock: Clock = system_clock) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be positive")
        self.max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[ReplayKey, float] = OrderedDict()
        self._lock = threading.Lock()
        self._evicted = 0
        self._warned_at: float | None = None

    def __len__(self) -> int:
        return len(self._entries)

    def check_and_store(self, key: ReplayKey, expires_at: float) -> bool:
        now = self._clock()
        entries = self._entries
        with self._lock:
            # Expire from the front, oldest first, stopping at the first live entry (an entry
            # expiring before one ahead of it is dropped when it reaches the front; until then
            # the expiry comparison below ignores it, and it counts towards the bound).
            while entries:
                until = entries[next(iter(entries))]
                if until >= now:
                    break
                entries.popitem(last=False)
            stored = entries.get(key)
            if stored is not None and stored >= now:
                return False
            entries[key] = expires_at
            entries.move_to_end(key)
            while len(entries) > self.max_entries:
                entries.popitem(last=False)
                self._evicted += 1
            if self._evicted and (
                self._warned_at is None or now - self._warned_at >= self.WARN_EVERY
            ):
                logger.warning(
                    "replay cache full (%d entries): evicted %d signature(s), oldest first",
                    self.max_entries,
                    self._evicted,
                )
                self._evicted, self._warned_at = 0, now
            return True


@dataclass(frozen=True)
class VerifiedSignature:
    """A request signature that passed every step of §Verification.

    ``context`` is what the key resolver returned with the key (for ``scheme=jwt`` the
    verified token); ``None`` for ``hwk``.
    """

    label: str
    scheme: str
    public_key: PublicKey
    thumbprint: str
    created: int
    expires: int | None
    components: tuple[str, ...]
    context: Any
    signature_key: SignatureKey
    #: The signature base, for :attr:`replay_key`.
    base: bytes = field(default=b"", repr=False)
    #: ``@method`` and ``@authority``, for :attr:`replay_key`.
    method_authority: tuple[str, str] = ("", "")

    @classmethod
    def _make(cls, **members: Any) -> VerifiedSignature:
        """An instance from every member, built without the generated ``__init__``'s one
        ``object.__setattr__`` per field (a frozen dataclass's cost, paid per request)."""
        verified = object.__new__(cls)
        verified.__dict__.update(members)
        return verified

    @cached_property
    def replay_key(self) -> ReplayKey:
        """The :data:`ReplayKey` of this signature (§Freshness and Replay), computed when
        asked for: a replay cache needs it for unsafe methods only."""
        digest = base64.urlsafe_b64encode(hashlib.sha256(self.base).digest()).decode("ascii")
        # 32 bytes: 43 characters and one "="
        return (self.thumbprint, self.created, *self.method_authority, digest[:-1])


class _Checked(NamedTuple):
    """What steps 1-4 established, before the key is resolved."""

    request: HttpRequest
    label: str
    signature_key: SignatureKey
    signature_input: SignatureInput
    signature: bytes
    created: int
    expires: int | None
    inline: KeyResolution | None
    #: Component values already derived (RFC 9421 §2.1), not derived again for the base.
    known: dict[str, str]


def _resolver_failed(scheme: str, exc: AAuthError) -> NoReturn:
    """Step 5: a resolver's failure becomes the Signature-Error its cause calls for."""
    if isinstance(exc, SignatureError):
        raise exc
    if isinstance(exc, (TokenError, DiscoveryError)):
        raise exc.as_signature_error() from exc
    jwt_scheme = scheme in (SCHEME_JWT, SCHEME_JKT_JWT)
    error = InvalidJWTError if jwt_scheme else InvalidKeyError
    raise error(exc.detail) from exc


def _resolution(value: object) -> KeyResolution:
    if type(value) is KeyResolution:
        return value
    if inspect.iscoroutine(value):
        value.close()
        raise TypeError("an async key resolver needs averify()")
    if not isinstance(value, KeyResolution):
        raise TypeError("a key resolver must return a KeyResolution")
    return value


#: :meth:`SignatureVerifier._covers` answers by (required, covered) components.
_COVERS: dict[tuple[tuple[str, ...], tuple[str, ...]], bool] = {}


def _dedupe(names: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(names))


class SignatureVerifier:
    """Verifies AAuth request signatures (§Verification steps 1-7).

    ``required_components`` are always required (§Covered Components); ``additional_components``
    are a resource's ``additional_signature_components`` (``content-type``/``content-digest``
    among them apply only to requests with a body). ``@query`` is required when the URL has a
    query and ``require_query`` (turn it off only to accept signers, such as
    ``@hellocoop/httpsig`` 2.x, that do not cover the query); ``authorization`` when the
    request carries one and ``require_authorization``; ``content-type`` and
    ``content-digest`` on a request with a body when
    ``require_body_digest`` (set it for PS and AS endpoints). ``window`` is the ``created``
    tolerance in seconds, in both directions. ``replay_cache``, when given, rejects a repeated
    (key, created, method, authority, path) on methods outside :data:`SAFE_METHODS`.
    """

    def __init__(
        self,
        *,
        required_components: Iterable[str] = DEFAULT_REQUIRED_COMPONENTS,
        additional_components: Iterable[str] = (),
        window: int = 60,
        clock: Clock = system_clock,
        accepted_schemes: Iterable[str] = (SCHEME_JWT,),
        accepted_algorithms: Iterable[str] = SUPPORTED_ALGORITHMS,
        replay_cache: ReplayCache | None = None,
        require_body_digest: bool = False,
        require_authorization: bool = True,
        require_query: bool = True,
    ) -> None:
        if window < 0:
            raise ValueError("window must not be negative")
        self.required_components = tuple(required_components)
        self.additional_components = tuple(additional_components)
        self.window = window
        self.clock = clock
        self.accepted_schemes = tuple(accepted_schemes)
        self.accepted_algorithms = tuple(accepted_algorithms)
        self.replay_cache = replay_cache
        self.require_body_digest = require_body_digest
        self.require_authorization = require_authorization
        self.require_query = require_query
        self._required_settings: tuple[object, ...] = ()
        self._required: dict[tuple[bool, bool, bool], tuple[str, ...]] = {}

    def verify(
        self, request: HttpRequest, resolver: KeyResolver | None = None
    ) -> VerifiedSignature:
        """Verify ``request``; ``resolver`` supplies keys for schemes other than ``hwk``."""
        checked = self._check(request, resolver is not None)
        resolution = checked.inline
        if resolution is None:
            assert resolver is not None  # _check refused the scheme otherwise
            try:
                resolution = _resolution(resolver(checked.signature_key))
            except AAuthError as exc:
                _resolver_failed(checked.signature_key.scheme, exc)
        return self._finish(checked, resolution)

    async def averify(
        self, request: HttpRequest, resolver: AnyKeyResolver | None = None
    ) -> VerifiedSignature:
        """:meth:`verify` with a resolver that may be a coroutine function."""
        checked = self._check(request, resolver is not None)
        resolution = checked.inline
        if resolution is None:
            assert resolver is not None
            try:
                result: object = resolver(checked.signature_key)
                if inspect.isawaitable(result):
                    result = await result
                resolution = _resolution(result)
            except AAuthError as exc:
                _resolver_failed(checked.signature_key.scheme, exc)
        return self._finish(checked, resolution)

    # -- steps 1-4 (and 5 for the inline hwk scheme) ---------------------------------------

    def required_for(self, request: HttpRequest) -> tuple[str, ...]:
        """Step 2: the components this request's signature must cover, as ``required_input``.

        The answer depends on the request only through three booleans: each combination is
        worked out once (again should the verifier's settings be changed)."""
        settings = (
            self.required_components,
            self.additional_components,
            self.require_query,
            self.require_authorization,
            self.require_body_digest,
        )
        if settings != self._required_settings:
            self._required_settings, self._required = settings, {}
        shape = (
            bool(request.target.query),  # HttpRequest.has_query, one call fewer
            request.header("authorization") is not None,
            bool(request.body),  # HttpRequest.has_body
        )
        required = self._required.get(shape)
        if required is None:
            required = self._required[shape] = self._required_for(*shape)
        return required

    def _required_for(
        self, has_query: bool, has_authorization: bool, has_body: bool
    ) -> tuple[str, ...]:
        names = [n for n in self.required_components if n != "signature-key"]
        if self.require_query and has_query:
            names.append("@query")
        if self.require_authorization and has_authorization:
            names.append("authorization")
        if self.require_body_digest and has_body:
            names.extend(BODY_COMPONENTS)
        names.extend(n for n in self.additional_components if has_body or n not in BODY_COMPONENTS)
        if "signature-key" in self.required_components:
            names.append("signature-key")
        return _dedupe(names)

    def _covers(self, required: tuple[str, ...], covered: tuple[str, ...]) -> bool:
        """Whether ``covered`` includes every ``required`` component (once per pair: an agent
        covers the same components on every request; bounded, cleared when full)."""
        answer = _COVERS.get((required, covered))
        if answer is None:
            if len(_COVERS) >= 256:
                _COVERS.clear()
            answer = _COVERS[required, covered] = set(required) <= set(covered)
        return answer

    def _inline_schemes(self) -> list[str]:
        return [s for s in self.accepted_schemes if s == SCHEME_HWK]

    def _check(self, request: HttpRequest, has_resolver: bool) -> _Checked:
        try:
            return self._check_steps(request, has_resolver)
        except ComponentError as exc:
            raise InvalidSignatureError(exc.detail) from exc

    def _check_steps(self, request: HttpRequest, has_resolver: bool) -> _Checked:
        # Step 1: the three fields, the label from Signature-Key's single member.
        signature_field = request.header("signature")
        if signature_field is None:
            raise MissingSignatureError("missing signature header")
        input_field = request.header("signature-input")
        if input_field is None:
            raise MissingSignatureError("missing signature-input header")
        key_field = request.header("signature-key")
        if key_field is None:
            raise MissingSignatureError("missing signature-key header")
        label, key = parse_signature_key_member(key_field)
        signature_input = signature_input_member(input_field, label)
        if signature_input is None:
            raise MissingSignatureError(f"no Signature-Input for label {label!r}")
        signature = self._signature(signature_field, label)

        # Step 2: covered components, and the body digest when it is covered.
        covered = signature_input.components
        if any(signature_input.component_params):
            raise InvalidSignatureError("component parameters (;sf, ;key, ...) are not supported")
        required = self.required_for(request)
        if not self._covers(required, covered):
            raise InvalidInputError(
                "the signature does not cover the required components", required_input=required
            )
        known: dict[str, str] = {}
        if "content-digest" in covered:
            digest = known["content-digest"] = component_value(request, "content-digest")
            if digest != content_digest(request.body or b""):  # else: what a signer sends
                verify_content_digest(digest, request.body)
        known["signature-key"] = key_field

        # Step 3: created within the window; expires not past.
        created = signature_input.created
        if created is None:
            raise InvalidSignatureError("created is missing or not an integer")
        now = self.clock()
        if abs(now - created) > self.window:
            raise InvalidSignatureError("created is outside the signature window")
        expires = signature_input.expires
        if "expires" in signature_input.params:
            if expires is None:
                raise InvalidSignatureError("expires is not an integer")
            if now > expires:
                raise InvalidSignatureError("the signature has expired")

        # Step 4: a scheme this verifier accepts and can resolve.
        usable = self.accepted_schemes if has_resolver else self._inline_schemes()
        if key.scheme not in usable:
            raise UnsupportedSchemeError(
                f"Signature-Key scheme {key.scheme!r} is not accepted",
                accept_schemes=list(usable),
            )
        check_signature_key(key)
        inline = KeyResolution(jwk=hwk_jwk(key)) if key.scheme == SCHEME_HWK else None
        return _Checked(
            request, label, key, signature_input, signature, created, expires, inline, known
        )

    @staticmethod
    def _signature(header: str, label: str) -> bytes:
        canonical = canonical_bytes_item(header)
        if canonical is not None and canonical[0] == label:
            return canonical[1]
        members = parse_dictionary(header)
        if members is not None:
            for name, (value, _params) in members:
                if name == label:
                    if type(value) is not bytes:
                        raise MissingSignatureError("a Signature member must be a Byte Sequence")
                    return value
            raise MissingSignatureError(f"no Signature for label {label!r}")
        parsed = Dictionary()
        try:
            parsed.parse(header.encode("latin-1"))
        except (ValueError, UnicodeEncodeError) as exc:
            raise MissingSignatureError("Signature is not a structured Dictionary") from exc
        member = parsed.get(label)
        if member is None:
            raise MissingSignatureError(f"no Signature for label {label!r}")
        if not isinstance(member, Item) or not isinstance(member.value, bytes):
            raise MissingSignatureError("a Signature member must be a Byte Sequence")
        return member.value

    # -- steps 6-7 and the replay cache -----------------------------------------------------

    def _public_key(self, resolution: KeyResolution) -> tuple[PublicKey, str]:
        """Step 6 (:meth:`PublicKey.from_jwk`, which remembers the keys it loaded; or the key
        the resolver loaded from that JWK, when its algorithm is accepted here -- what
        ``from_jwk`` would give) and the key's thumbprint."""
        public = resolution.key
        if public is None or public.alg not in self.accepted_algorithms:
            public = PublicKey.from_jwk(resolution.jwk, accepted=self.accepted_algorithms)
        return public, public.thumbprint()

    def _finish(self, checked: _Checked, resolution: KeyResolution) -> VerifiedSignature:
        public, thumbprint = self._public_key(resolution)  # step 6
        keyid = checked.signature_input.params.get("keyid")
        if keyid is not None and keyid not in (
            public.kid,
            thumbprint,
            _THUMBPRINT_URI + thumbprint,
        ):
            raise InvalidSignatureError("keyid does not identify the Signature-Key key")
        request, covered = checked.request, checked.signature_input.components
        try:
            base = build_signature_base(
                request, covered, checked.signature_input.value, checked.known
            )
            method_authority = (
                derived_component(request, "@method"),
                request.target.authority,  # @authority (RFC 9421 §2.2.3)
            )
        except ComponentError as exc:
            raise InvalidSignatureError(exc.detail) from exc
        if not public.verify(checked.signature, base):  # step 7
            raise InvalidSignatureError("the signature does not verify")
        verified = VerifiedSignature._make(
            label=checked.label,
            scheme=checked.signature_key.scheme,
            public_key=public,
            thumbprint=thumbprint,
            created=checked.created,
            expires=checked.expires,
            components=covered,
            context=resolution.context,
            signature_key=checked.signature_key,
            base=base,
            method_authority=method_authority,
        )
        if self.replay_cache is not None and request.method.upper() not in SAFE_METHODS:
            replay_key = verified.replay_key
            if not self.replay_cache.check_and_store(replay_key, checked.created + self.window):
                raise InvalidSignatureError("the signature has been seen before")
        return verified


def unverified_jwt_cnf_resolver(key: SignatureKey) -> KeyResolution:
    """Take ``cnf.jwk`` out of a ``jwt`` / ``jkt-jwt`` Signature-Key WITHOUT verifying the JWT.

    For interop tests and debugging only -- never for production: anyone can mint such a
    token, so a signature checked with this key proves nothing about who signed. Use the
    token layer's verifying resolver instead. ``context`` is the unverified payload.
    """
    token = key.jwt
    if key.scheme not in (SCHEME_JWT, SCHEME_JKT_JWT) or token is None:
        raise InvalidJWTError(f"scheme {key.scheme!r} carries no JWT")
    try:
        payload = json.loads(b64url_decode(token.split(".")[1]))
        jwk = payload["cnf"]["jwk"]
    except (ValueError, IndexError, KeyError, TypeError) as exc:
        raise InvalidJWTError("the JWT has no readable cnf.jwk") from exc
    if not isinstance(jwk, dict):
        raise InvalidJWTError("cnf.jwk is not a JSON object")
    return KeyResolution(jwk=jwk, context=payload)


__all__ = [
    "DEFAULT_REQUIRED_COMPONENTS",
    "SAFE_METHODS",
    "MemoryReplayCache",
    "ReplayCache",
    "ReplayKey",
    "SignatureVerifier",
    "VerifiedSignature",
    "unverified_jwt_cnf_resolver",
]
