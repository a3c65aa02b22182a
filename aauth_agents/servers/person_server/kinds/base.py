"""What every kind of PS request has in common: :class:`RequestKind`, the class each kind
subclasses, and the small data objects it works with.

Modelled on authlib's grant classes (``oauth2/rfc6749/grants/``): one class per kind of
request, registered with the server (:data:`~.KINDS`), each knowing

* what approving does -- :meth:`RequestKind.apply`, run once when the decision is taken
  (§Person Server: consent remembered, mission created, update logged, ...);
* the terminal response to the agent -- :meth:`RequestKind.complete` (tokens are minted when
  the agent collects them, §Deferred Responses) and :meth:`RequestKind.refusal`;
* what the person may change when approving -- :attr:`RequestKind.editable` and
  :meth:`RequestKind.overrides` (§Mission Creation: the approved mission MAY differ from the
  proposal; §PS Token Endpoint: the scope is never broader than requested);
* how it is shown on the consent page -- :meth:`RequestKind.describe` returns a
  :class:`ConsentPage` (§User Interaction): in plain words, what the agent wants
  (:meth:`RequestKind.wants`) and what approving allows, for how long
  (:meth:`RequestKind.allows`, with the server's :class:`Terms`).

Dispatch is a lookup in the registry, never a test of the kind's name. The server is
passed to each method as ``ps``: what a kind may use of it is the server up to its issuance
layer (:class:`~..server.issuance.Issuance`: state, missions, verification, minting).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from ....protocol.errors import ProtocolError
from ....protocol.reply import Reply
from ..errors import InteractionError
from ..pending import PendingRequest
from ..policy import Decision

if TYPE_CHECKING:
    from ..server.core import AgentContext
    from ..server.issuance import Issuance

#: The edits that change a mission proposal (§Mission Creation), in the order they are read.
MISSION_EDITS = ("description", "tools", "resources", "expires_at")
#: Every edit a person may make when approving.
EDITS = ("scopes", *MISSION_EDITS, "answer")


@dataclass(frozen=True)
class Edits:
    """What the person changed when approving (``None``: unchanged). ``scopes`` narrows an
    auth token request; ``description``, ``tools``, ``resources`` and ``expires_at`` edit a
    mission proposal; ``answer`` answers a question."""

    scopes: Sequence[str] | None = None
    description: str | None = None
    tools: Sequence[Mapping[str, str]] | None = None
    resources: Sequence[str] | None = None
    expires_at: float | None = None
    answer: str | None = None


@dataclass(frozen=True)
class Terms:
    """How long what the person approves lasts, in seconds (the server's configuration):
    each person token, each auth token, and a mission (``None``: until it ends)."""

    person_token: int = 3600
    auth_token: int = 3600
    mission: int | None = None


@dataclass(frozen=True)
class Wants:
    """What an agent asks, in words for the person: "<agent> ``verb`` ``target``" --
    ``target`` (a resource's name, an action) is untrusted text, escaped when shown."""

    verb: str
    target: str | None = None


def duration_words(seconds: float) -> str:
    """``seconds`` as a person says it: "1 hour", "10 minutes", "2 days"."""
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute")):
        if seconds >= size:
            count = round(seconds / size)
            return f"{count} {unit}{'' if count == 1 else 's'}"
    count = max(1, round(seconds))
    return f"{count} second{'' if count == 1 else 's'}"


def resource_name(req: PendingRequest) -> str:
    """The name of the resource a request is about: its metadata's ``name``, else its
    identifier."""
    info = req.resource
    if info is not None and info.name:
        return info.name
    return str(req.request.get("resource") or (info.identifier if info else "") or "a resource")


@dataclass(frozen=True)
class ConsentField:
    """One member of the request as the consent page shows it. ``markdown``: untrusted
    Markdown from the agent or the resource, to sanitize before rendering (§Untrusted Input).
    ``editable``: the person may change it when approving (see :class:`Edits`)."""

    name: str
    label: str
    value: Any
    markdown: bool = True
    editable: bool = False


@dataclass(frozen=True)
class ConsentPage:
    """How a request kind presents one request to the person: a ``title``, ``summary``
    lines (plain text, built from untrusted members: escape them), the request ``fields`` it
    shows, what the person may edit (``editable``, names of :class:`Edits` members), whether
    they pick scopes one by one (``choose_scopes``), whether approving needs an answer
    (``asks_answer``) and whether the request's own members are listed as details
    (``lists_details``)."""

    kind: str
    title: str
    summary: tuple[str, ...]
    fields: tuple[ConsentField, ...]
    editable: frozenset[str]
    choose_scopes: bool = False
    asks_answer: bool = False
    lists_details: bool = True
    #: What the agent wants, in plain words.
    wants: Wants = Wants("asks you to decide")
    #: What approving allows and for how long, one plain sentence a line.
    allows: tuple[str, ...] = ()
    #: The labels of the two buttons.
    approve_label: str = "Approve"
    deny_label: str = "Deny"


class MissionLog(Protocol):
    """Where a refusal is recorded (§Mission Log): the server, or the person's side."""

    async def log_mission(self, s256: str, kind: str, entry: Mapping[str, Any]) -> int: ...


def account_of(req: PendingRequest, result: Mapping[str, Any]) -> str:
    """The person an approved request was decided for."""
    return str(result.get("account") or req.account or "")


class RequestKind:
    """One kind of request the PS decides. Subclasses set :attr:`name` and override what
    differs; the defaults are those of a request that only needs a yes or a no."""

    #: The kind's name, as stored in pending records and shown to policies.
    name: ClassVar[str]
    #: A short title for the consent page.
    title: ClassVar[str]
    #: What the person may change when approving (names of :class:`Edits` members).
    editable: ClassVar[frozenset[str]] = frozenset()
    #: The request members the consent page lists, with their labels.
    shown: ClassVar[tuple[tuple[str, str], ...]] = ()
    #: A relayed interaction or payment (§Interaction Endpoint), not a decision.
    relayed: ClassVar[bool] = False
    #: The consent page lists the request's own members as details; kinds with a
    #: presentation of their own (the scopes of a token, a mission) do not.
    lists_details: ClassVar[bool] = True
    #: What a remembered consent of this kind lets the agent do at a resource, in words.
    remembered: ClassVar[str] = "may act at"
    #: The labels of the approve and deny buttons.
    approve_label: ClassVar[str] = "Approve"
    deny_label: ClassVar[str] = "Deny"

    # -- deciding ------------------------------------------------------------------------------

    async def apply(
        self,
        ps: Issuance,
        req: PendingRequest,
        account: str,
        decision: Decision | None,
        overrides: Mapping[str, Any],
        *,
        remember: bool,
    ) -> dict[str, Any]:
        """The effects of an approval for ``account``, made once; returns what the terminal
        response needs (stored as the record's ``result`` with the account)."""
        return {}

    async def complete(
        self, ps: Issuance, req: PendingRequest, result: Mapping[str, Any], ctx: AgentContext
    ) -> Reply:
        """The ``200`` of an approved request, built when the agent collects it."""
        raise ProtocolError(f"{self.name} requests have no response", code="server_error")

    def refusal(self, req: PendingRequest, reason: str | None) -> Reply:
        """The terminal response of a refused request: ``403 denied`` (§Polling Error
        Codes)."""
        return Reply.error(
            ProtocolError(reason or "the person declined the request", code="denied")
        )

    async def record_denial(self, ps: MissionLog, req: PendingRequest, reason: str | None) -> None:
        """Log a refusal where the kind keeps a record of it (the mission log)."""

    async def update(
        self, ps: Issuance, req: PendingRequest, ctx: AgentContext, data: Mapping[str, Any]
    ) -> PendingRequest:
        """§Updated Request: the request replaced by the agent while it is pending."""
        raise ProtocolError("only a token request can be updated", code="invalid_request")

    # -- the person's edits --------------------------------------------------------------------

    def overrides(self, req: PendingRequest, edits: Edits, now: float) -> dict[str, Any]:
        """``edits`` checked against what this kind lets the person change: the overrides
        :meth:`apply` receives, or :class:`~..errors.InteractionError`."""
        if edits.scopes is not None and "scopes" not in self.editable:
            raise InteractionError("scopes narrow a token request only", code="invalid_request")
        changed = any(getattr(edits, name) is not None for name in MISSION_EDITS)
        if changed and not self.editable.issuperset(MISSION_EDITS):
            raise InteractionError("only a mission proposal is edited", code="invalid_request")
        return self.edit(req, edits, now)

    def edit(self, req: PendingRequest, edits: Edits, now: float) -> dict[str, Any]:
        """The overrides of edits this kind accepts (checked by :meth:`overrides`)."""
        return {}

    # -- the consent page ----------------------------------------------------------------------

    def proposed_mission(
        self, req: PendingRequest
    ) -> tuple[str, tuple[Mapping[str, Any], ...], tuple[str, ...]] | None:
        """``(description, tools, resources)`` of the mission this request proposes."""
        return None

    def summary(self, req: PendingRequest) -> tuple[str, ...]:
        """Plain-text lines saying what is asked (untrusted members: escape them)."""
        return ()

    def wants(self, req: PendingRequest) -> Wants:
        """What the agent asks, in plain words (the page's heading)."""
        return Wants("asks you to decide")

    def allows(self, req: PendingRequest, terms: Terms) -> tuple[str, ...]:
        """What approving allows and for how long, in plain sentences."""
        return ()

    def describe(self, req: PendingRequest, terms: Terms | None = None) -> ConsentPage:
        """What the consent page shows about ``req`` (§User Interaction); ``terms`` are the
        server's lifetimes (defaults when not given)."""
        r = req.request
        fields = tuple(
            ConsentField(name, label, r[name], editable=name in self.editable)
            for name, label in self.shown
            if r.get(name) is not None
        )
        return ConsentPage(
            kind=self.name,
            title=self.title,
            summary=self.summary(req),
            fields=fields,
            editable=self.editable,
            choose_scopes="scopes" in self.editable and not r.get("r3"),
            asks_answer="answer" in self.editable,
            lists_details=self.lists_details,
            wants=self.wants(req),
            allows=self.allows(req, terms or Terms()),
            approve_label=self.approve_label,
            deny_label=self.deny_label,
        )


__all__ = [
    "EDITS",
    "MISSION_EDITS",
    "ConsentField",
    "ConsentPage",
    "Edits",
    "MissionLog",
    "RequestKind",
    "Terms",
    "Wants",
    "account_of",
    "duration_words",
    "resource_name",
]
