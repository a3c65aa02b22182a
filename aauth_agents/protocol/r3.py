"""R3 (draft-hardt-aauth-r3, an exploratory draft) on the wire, without I/O: vocabulary
operations, R3 documents and per-call proposals, their content address, and the comparison
of a call's parameters with a proposal's.

* :func:`r3_s256` -- §Content Addressing: ``BASE64URL(SHA-256(bytes as served))``; there
  is no canonicalization, so a document is hashed (and kept) as the bytes it was served as.
* :class:`R3Operations` / :func:`parse_r3_operations` -- ``{"vocabulary", "operations"}``,
  the shape of an R3 document's operations and of the auth token claims ``r3_granted`` and
  ``r3_per_call`` (§Auth Token Extensions).
* :class:`R3Document` / :func:`parse_r3_document` -- §R3 Document, and §Per-Call Proposals
  when ``parameters`` is present (then exactly one operation, §Proposal Document).
* :class:`Display` -- the ``display`` member: ``summary`` (REQUIRED when ``display`` is
  present), ``implications``, ``data_accessed``, ``irreversible`` and, for a proposal,
  ``detail`` (Markdown). All of it is untrusted text for whoever renders it.
* :func:`parameters_match` -- §Per-Call Proposals, Flow step 3: inline values compared as
  JSON values, digested values by ``s256`` of the presented value.
* :func:`check_r3_uri` -- an ``r3_uri`` is an https URL on the origin of the resource that
  serves it (§R3 Document: "MUST be served over HTTPS"; the resource publishes it).

Decisions where the draft is silent:

* A digest object (§Proposal Document: ``s256`` REQUIRED, ``excerpt`` and ``media_type``
  OPTIONAL) cannot be told from an inline object value that happens to have those members.
  :func:`is_digest` reads an object as a digest when its members are a subset of those three
  and ``s256`` is a well-formed digest; a resource that builds proposals records which
  parameters it digested rather than guessing (:func:`parameters_match` takes the names).
* "value-bytes" of a digested parameter: a JSON string's UTF-8 bytes; any other JSON value is
  never digested here (its bytes would depend on a serialization the draft does not fix).
* JSON value equality: numbers compare by value (``1`` equals ``1.0``), ``true`` is not
  ``1``, member order does not matter.
* Bounds, because a fetched document is untrusted input: at most :data:`MAX_DOCUMENT_BYTES`
  bytes, :data:`MAX_OPERATIONS` operations, text members of at most :data:`MAX_TEXT` characters.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from .encoding import b64url_encode, loads_json_object
from .mission import is_s256
from .wire import WireFormatError

#: The R3 vocabulary of MCP tools.
MCP_VOCABULARY = "urn:aauth:vocabulary:mcp"
#: The largest R3 document a party reads (64 KiB): a proposal carries digests, not payloads.
MAX_DOCUMENT_BYTES = 64 * 1024
MAX_OPERATIONS = 256
MAX_TEXT = 20_000
#: Members of a digest object (§Proposal Document).
DIGEST_MEMBERS = frozenset({"s256", "excerpt", "media_type"})
_DISPLAY_MEMBERS = ("summary", "detail", "implications", "data_accessed", "irreversible")


def r3_s256(document: bytes) -> str:
    """§Content Addressing: the R3 hash of ``document``, the bytes exactly as served."""
    if not isinstance(document, bytes | bytearray):
        raise TypeError("an R3 document is hashed as bytes")
    return b64url_encode(hashlib.sha256(document).digest())


def s256_of(value: str) -> str:
    """The ``s256`` of a digested parameter: ``BASE64URL(SHA-256(UTF-8 bytes))``."""
    return b64url_encode(hashlib.sha256(value.encode("utf-8")).digest())


def check_r3_uri(value: object, origin: str) -> str:
    """``value`` if it is an https URL on ``origin`` (a server identifier), no userinfo, port
    or fragment; else ``ValueError``."""
    if not isinstance(value, str) or len(value) > 2048:
        raise ValueError("r3_uri must be a URL of at most 2048 characters")
    try:
        parts = urlsplit(value)
    except ValueError as exc:
        raise ValueError("r3_uri is not a URL") from exc
    if (
        parts.scheme != "https"
        or f"https://{parts.netloc}" != origin
        or parts.fragment
        or "#" in value
        or not parts.path.startswith("/")
    ):
        raise ValueError(f"r3_uri must be an https URL on {origin}")
    return value


def _text(value: object, what: str, *, required: bool = False) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value or len(value) > MAX_TEXT:
        raise WireFormatError(what, f"must be a non-empty string of at most {MAX_TEXT} characters")
    return value


@dataclass(frozen=True)
class Display:
    """§R3 Document ``display`` (and a proposal's ``detail``, §Proposal Document)."""

    summary: str
    detail: str | None = None
    implications: str | None = None
    data_accessed: str | None = None
    irreversible: str | None = None

    def __post_init__(self) -> None:
        for name in _DISPLAY_MEMBERS:
            _text(getattr(self, name), f"display.{name}", required=name == "summary")

    def to_json(self) -> dict[str, str]:
        return {
            name: value for name in _DISPLAY_MEMBERS if (value := getattr(self, name)) is not None
        }

    @classmethod
    def from_json(cls, value: object) -> Display:
        if not isinstance(value, Mapping):
            raise WireFormatError("display", "must be a JSON object")
        summary = _text(value.get("summary"), "display.summary", required=True)
        assert summary is not None
        return cls(
            summary, *(_text(value.get(name), f"display.{name}") for name in _DISPLAY_MEMBERS[1:])
        )


@dataclass(frozen=True)
class R3Operations:
    """Operations in one vocabulary: an R3 document's, or ``r3_granted`` / ``r3_per_call``."""

    vocabulary: str
    operations: tuple[Mapping[str, Any], ...]

    def to_json(self) -> dict[str, Any]:
        return {"vocabulary": self.vocabulary, "operations": [dict(o) for o in self.operations]}

    def covers(self, operation: Mapping[str, Any]) -> bool:
        """True when ``operation`` is one of these (as a JSON value)."""
        return any(json_equal(o, operation) for o in self.operations)


def parse_r3_operations(value: object, what: str = "operations") -> R3Operations:
    """``{"vocabulary": URI, "operations": [object, ...]}``; :class:`WireFormatError`
    otherwise. Operation entries are vocabulary-specific (§Standard Vocabularies): each must
    be a non-empty JSON object; an MCP operation must name its ``tool``."""
    if not isinstance(value, Mapping):
        raise WireFormatError(what, "must be a JSON object")
    return _operations(value, what)


def _operations(value: Mapping[str, Any], what: str) -> R3Operations:
    vocabulary = value.get("vocabulary")
    if (
        not isinstance(vocabulary, str)
        or ":" not in vocabulary
        or len(vocabulary) > 256
        or not vocabulary.isprintable()
        or " " in vocabulary
    ):
        raise WireFormatError(f"{what}.vocabulary", "must be a vocabulary URI")
    operations = value.get("operations")
    if not isinstance(operations, list) or len(operations) > MAX_OPERATIONS:
        raise WireFormatError(
            f"{what}.operations", f"must be an array of at most {MAX_OPERATIONS} operations"
        )
    for operation in operations:
        if not isinstance(operation, dict) or not operation:
            raise WireFormatError(f"{what}.operations", "each operation is a non-empty object")
        if vocabulary == MCP_VOCABULARY:
            tool = operation.get("tool")
            if not isinstance(tool, str) or not tool or len(tool) > 256:
                raise WireFormatError(f"{what}.operations", "an MCP operation names its tool")
    return R3Operations(vocabulary, tuple(operations))


@dataclass(frozen=True)
class Digest:
    """A digest object standing in for a parameter value (§Proposal Document)."""

    s256: str
    excerpt: str | None = None
    media_type: str | None = None

    def to_json(self) -> dict[str, str]:
        out = {"s256": self.s256}
        if self.excerpt is not None:
            out["excerpt"] = self.excerpt
        if self.media_type is not None:
            out["media_type"] = self.media_type
        return out


def is_digest(value: object) -> bool:
    """True when ``value`` reads as a digest object (see the module docstring)."""
    return (
        isinstance(value, Mapping)
        and bool(value)
        and set(value) <= DIGEST_MEMBERS
        and is_s256(value.get("s256"))
        and all(isinstance(value.get(m), str) for m in value)
    )


@dataclass(frozen=True)
class R3Document:
    """A parsed R3 document; ``parameters`` is not ``None`` for a per-call proposal."""

    vocabulary: str
    operations: tuple[Mapping[str, Any], ...]
    display: Display | None = None
    account: str | None = None
    parameters: Mapping[str, Any] | None = None

    @property
    def per_call(self) -> bool:
        return self.parameters is not None

    @property
    def granted(self) -> R3Operations:
        """The document's operations, as ``r3_granted`` would list them."""
        return R3Operations(self.vocabulary, self.operations)


def parse_r3_document(data: bytes) -> R3Document:
    """Parse the bytes of an R3 document or proposal; :class:`WireFormatError` for anything
    that is not one (too large, not a JSON object, a malformed member)."""
    if not isinstance(data, bytes | bytearray):
        raise WireFormatError("r3 document", "expected bytes")
    if len(data) > MAX_DOCUMENT_BYTES:
        raise WireFormatError("r3 document", f"larger than {MAX_DOCUMENT_BYTES} bytes")
    try:
        value = loads_json_object(bytes(data))
    except ValueError as exc:
        raise WireFormatError("r3 document", str(exc)) from exc
    ops = _operations(value, "r3 document")
    display = value.get("display")
    parameters = value.get("parameters")
    if parameters is not None:
        if not isinstance(parameters, dict):
            raise WireFormatError("r3 document.parameters", "must be a JSON object")
        if len(ops.operations) != 1:
            raise WireFormatError(
                "r3 document.operations", "a per-call proposal names exactly one operation"
            )
    return R3Document(
        vocabulary=ops.vocabulary,
        operations=ops.operations,
        display=None if display is None else Display.from_json(display),
        account=_text(value.get("account"), "r3 document.account"),
        parameters=parameters,
    )


def json_equal(a: object, b: object) -> bool:
    """JSON value equality (see the module docstring)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a is b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, str) and isinstance(b, str):
        return a == b
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if (
        isinstance(a, Sequence)
        and isinstance(b, Sequence)
        and not isinstance(a, str | bytes)
        and not isinstance(b, str | bytes)
    ):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    return False


def parameters_match(
    proposed: Mapping[str, Any], digested: frozenset[str] | set[str], presented: Mapping[str, Any]
) -> bool:
    """§Per-Call Proposals, Flow step 3: the same parameter names; for each name in
    ``digested`` the presented value is a string whose ``s256`` is the proposal's; every
    other value equal as a JSON value."""
    if not isinstance(presented, Mapping) or proposed.keys() != presented.keys():
        return False
    for name, value in proposed.items():
        given = presented[name]
        if name in digested:
            if not is_digest(value) or not isinstance(given, str):
                return False
            if not hmac.compare_digest(s256_of(given), str(value["s256"])):
                return False
        elif not json_equal(value, given):
            return False
    return True


__all__ = [
    "DIGEST_MEMBERS",
    "MAX_DOCUMENT_BYTES",
    "MCP_VOCABULARY",
    "Digest",
    "Display",
    "R3Document",
    "R3Operations",
    "check_r3_uri",
    "is_digest",
    "json_equal",
    "parameters_match",
    "parse_r3_document",
    "parse_r3_operations",
    "r3_s256",
    "s256_of",
]
