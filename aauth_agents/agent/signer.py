"""Signing every request the agent sends, with what does not change cached.

:func:`aauth_agents.httpsig.sign_request` serialises the ``Signature-Key`` field (an RFC 8941
String holding the whole JWT, checked character by character) and the ``@signature-params``
Inner List on every call. For one token and one list of covered components neither changes
between requests, so :class:`RequestSigner` keeps both -- the same serialisations, computed
by the same functions, once -- and only derives the signature base, signs it and appends
``;created=<int>`` per request. The output is byte-for-byte what ``sign_request`` produces
for the same ``created`` (a test checks this over generated requests).

It also keeps ``created`` strictly increasing per (key, method, authority, path) for
state-changing methods, so a retried ``POST`` within the same second never repeats the
tuple a verifier's replay cache keys on (§Freshness and Replay).
"""

from __future__ import annotations

import base64
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence

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
from ..httpsig.signature_key import serialize_signature_key
from ..keys import PrivateKey

_CACHE_SIZE = 512
#: How far ``created`` may be pushed ahead of the clock to stay unique (well inside the
#: default 60 s signature window).
_MAX_CREATED_LEAD = 5


class _LRU(OrderedDict[object, str]):
    def remember(self, key: object, value: str) -> str:
        self[key] = value
        if len(self) > _CACHE_SIZE:
            self.popitem(last=False)
        return value


class RequestSigner:
    """Signs :class:`~aauth_agents.httpsig.HttpRequest` objects per §Signing (Agent)."""

    def __init__(self, label: str = DEFAULT_LABEL) -> None:
        self.label = label
        self._lock = threading.Lock()
        self._signature_keys = _LRU()
        self._params = _LRU()
        self._created: OrderedDict[tuple[str, str, str, str], int] = OrderedDict()

    def signature_key_header(self, signature_key: SignatureKey) -> str:
        """The ``Signature-Key`` field value for ``signature_key`` (cached)."""
        cache_key = (signature_key.scheme, tuple(sorted(signature_key.params.items())))
        cached = self._signature_keys.get(cache_key)
        if cached is None:
            value = serialize_signature_key(self.label, signature_key)
            with self._lock:
                cached = self._signature_keys.remember(cache_key, value)
        return cached

    def _params_prefix(self, covered: tuple[str, ...]) -> str:
        cached = self._params.get(covered)
        if cached is None:
            value = str(signature_params(covered, {}))
            with self._lock:
                cached = self._params.remember(covered, value)
        return cached

    def created_for(self, request: HttpRequest, thumbprint: str, now: float) -> int:
        """``int(now)``, pushed past the last value used for the same state-changing
        (key, method, authority, path) -- at most a few seconds ahead of the clock."""
        created = int(now)
        method = request.method.upper()
        if method in SAFE_METHODS:
            return created
        target = request.target
        slot = (thumbprint, method, target.authority, target.path)
        with self._lock:
            last = self._created.get(slot)
            if last is not None and created <= last and last - int(now) < _MAX_CREATED_LEAD:
                created = last + 1
            self._created[slot] = created
            self._created.move_to_end(slot)
            while len(self._created) > _CACHE_SIZE:
                self._created.popitem(last=False)
        return created

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
        """The header fields to add (``Signature-Key``, ``Signature-Input``, ``Signature``
        and ``Content-Digest`` when covered) and the covered components."""
        covered: Sequence[str] = default_components(
            request, extra_components=extra_components, cover_body=cover_body
        )
        covered = tuple(covered)
        added = {"Signature-Key": self.signature_key_header(signature_key)}
        if "content-digest" in covered:
            added["Content-Digest"] = content_digest(request.body or b"", ("sha-256",))
        params = f"{self._params_prefix(covered)};created={created}"
        base = build_signature_base(request.with_headers(added), covered, params)
        signature = base64.b64encode(key.sign(base)).decode("ascii")
        added["Signature-Input"] = f"{self.label}={params}"
        added["Signature"] = f"{self.label}=:{signature}:"
        return added, covered


__all__ = ["RequestSigner"]
