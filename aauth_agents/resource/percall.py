"""Per-call proposals at the resource, for MCP tools (R3 §Per-Call Proposals) -- EXPLORATORY.

A tool under :meth:`AccessRule.per_call <aauth_agents.resource.AccessRule.per_call>` is
approved one call at a time. For each call the resource builds a *proposal*: an R3 document
(R3 §R3 Document) naming the one operation (``{"tool": name}`` in the MCP vocabulary), the
call's ``parameters`` and a ``display`` saying what this call will do. It is serialized once
(R3 §Content Addressing: the bytes are the document), hashed into ``r3_s256``, kept with the
held call in its pending record and served, byte for byte, only to the person server or
access server the resource token names (R3 §R3 Document Access Restriction).

* :class:`ProposedCall` -- what a ``display`` function sees: the tool, its arguments and the
  verified caller (so it can describe the call in terms of the resource's state: *which*
  file, how large).
* :func:`read_mcp_call` -- the one ``tools/call`` a per-call request carries.
* :func:`build_proposal` -- the proposal's bytes, hash and the parameters carried as digests.
* :func:`md_code` -- a value as inert Markdown, for ``display`` functions: arguments come from
  the agent, and a value must not be able to forge a heading or a link on the consent page.

Decisions where the draft leaves room: a string argument over :data:`DIGEST_OVER` UTF-8
bytes goes in the proposal as a digest (``s256`` of those bytes, an ``excerpt`` of
:data:`EXCERPT` characters, ``media_type: text/plain``); other values are inline. A
``display`` without ``detail`` gets the default detail (the action and every argument), so
the person always sees the arguments of the call they approve.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, TypeAlias

from ..protocol.encoding import loads_json
from ..protocol.r3 import (
    MAX_DOCUMENT_BYTES,
    MCP_VOCABULARY,
    Digest,
    Display,
    r3_s256,
    s256_of,
)
from ..protocol.wire import WireFormatError
from .caller import Caller

#: String arguments longer than this many UTF-8 bytes are proposed as digests.
DIGEST_OVER = 512
#: Characters of a digested value shown as its ``excerpt``.
EXCERPT = 80
_BACKTICKS = re.compile(r"`+")


@dataclass(frozen=True)
class ProposedCall:
    """One call of a per-call tool, as the resource received it."""

    tool: str
    arguments: Mapping[str, Any]
    caller: Caller


#: A rule's ``display``: fixed, or computed from the call (in a worker thread, so the
#: function may read a database or a file).
DisplaySource: TypeAlias = Display | Callable[[ProposedCall], Display]


@dataclass(frozen=True)
class Proposal:
    """A serialized proposal: ``document`` (the bytes served), ``s256`` (their hash), the
    ``tool`` and the names of the parameters carried as digests."""

    document: bytes
    s256: str
    tool: str
    digested: frozenset[str]


def read_mcp_call(body: bytes | None) -> tuple[str, dict[str, Any]]:
    """``(tool, arguments)`` of the single JSON-RPC ``tools/call`` in ``body``;
    :class:`WireFormatError` otherwise (a batch, another method, arguments that are not an
    object). A per-call tool is called alone: a proposal describes one call."""
    try:
        message = loads_json(body or b"")
    except (ValueError, TypeError) as exc:
        raise WireFormatError("tools/call", "the body is not JSON") from exc
    if not isinstance(message, dict) or message.get("method") != "tools/call":
        raise WireFormatError(
            "tools/call", "a per-call tool is called alone, in one tools/call message"
        )
    params = message.get("params")
    name = params.get("name") if isinstance(params, dict) else None
    arguments = params.get("arguments", {}) if isinstance(params, dict) else None
    if not isinstance(name, str) or not name or not isinstance(arguments, dict):
        raise WireFormatError(
            "tools/call", "params must name the tool and give its arguments as an object"
        )
    return name, arguments


def md_code(value: object) -> str:
    """``value`` (a string, or any JSON value shown compactly) as a Markdown code span, or a
    fenced block when it has several lines: nothing in it is read as Markdown."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    longest = max((len(m) for m in _BACKTICKS.findall(text)), default=0)
    if "\n" in text or "\r" in text:
        fence = "`" * max(3, longest + 1)
        return f"\n{fence}\n{text}\n{fence}\n"
    fence = "`" * (longest + 1)
    if not text or text[0] in "` " or text[-1] in "` ":  # CommonMark strips one space
        return f"{fence} {text} {fence}"
    return f"{fence}{text}{fence}"


def _excerpt(text: str) -> str:
    return text if len(text) <= EXCERPT else text[:EXCERPT] + "…"


def proposed_parameters(arguments: Mapping[str, Any]) -> tuple[dict[str, Any], frozenset[str]]:
    """The proposal's ``parameters`` for ``arguments`` and the names carried as digests."""
    parameters: dict[str, Any] = {}
    digested = set()
    for name, value in arguments.items():
        if isinstance(value, str) and len(value.encode("utf-8")) > DIGEST_OVER:
            parameters[name] = Digest(s256_of(value), _excerpt(value), "text/plain").to_json()
            digested.add(name)
        else:
            parameters[name] = value
    return parameters, frozenset(digested)


def default_detail(tool: str, parameters: Mapping[str, Any], digested: frozenset[str]) -> str:
    """``## Action`` and ``## Details`` (R3 §Proposal Document's convention): the tool and
    every argument, digested ones by excerpt, size and hash."""
    lines = [f"## Action\nCall {md_code(tool)}, once.", "", "## Details"]
    if not parameters:
        lines.append("No arguments.")
    for name, value in parameters.items():
        if name in digested:
            lines.append(
                f"- {md_code(name)}: {md_code(value.get('excerpt', ''))} "
                f"(a long text, SHA-256 {md_code(value['s256'])})"
            )
        else:
            lines.append(f"- {md_code(name)}: {md_code(value)}")
    return "\n".join(lines)


def build_proposal(call: ProposedCall, display: DisplaySource | None) -> Proposal:
    """The proposal for ``call`` (R3 §Proposal Document), serialized once. Raises
    :class:`WireFormatError` when even with digests it would exceed the size a party reads
    (:data:`~aauth_agents.protocol.r3.MAX_DOCUMENT_BYTES`)."""
    parameters, digested = proposed_parameters(call.arguments)
    shown = display(call) if callable(display) else display
    if shown is not None and not isinstance(shown, Display):
        raise TypeError("a per-call display function returns a Display")
    detail = default_detail(call.tool, parameters, digested)
    if shown is None:
        shown = Display(summary=f"Call {call.tool} once, with the arguments below", detail=detail)
    elif shown.detail is None:
        shown = replace(shown, detail=detail)
    document = json.dumps(
        {
            "vocabulary": MCP_VOCABULARY,
            "operations": [{"tool": call.tool}],
            "parameters": parameters,
            "display": shown.to_json(),
        },
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode("utf-8")
    if len(document) > MAX_DOCUMENT_BYTES:
        raise WireFormatError("tools/call", "the call's arguments are too large to propose")
    return Proposal(document, r3_s256(document), call.tool, digested)


async def abuild_proposal(call: ProposedCall, display: DisplaySource | None) -> Proposal:
    """:func:`build_proposal` for the event loop: a display function is user code that may
    block (it reads the resource's own data), so it runs in a worker thread."""
    if callable(display):
        return await asyncio.to_thread(build_proposal, call, display)
    return build_proposal(call, display)


__all__ = [
    "DIGEST_OVER",
    "EXCERPT",
    "DisplaySource",
    "Proposal",
    "ProposedCall",
    "abuild_proposal",
    "build_proposal",
    "default_detail",
    "md_code",
    "proposed_parameters",
    "read_mcp_call",
]
