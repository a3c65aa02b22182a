"""Consent policies: who decides a request, and how (§Person Server, §Requirement Responses).

For every request that needs the person's say -- a person token for a resource, an auth token
for a scope, a mission proposal, update or completion, a permission, a question -- the PS
builds a :class:`ConsentRequest` and asks its :class:`ConsentPolicy`, which answers with a
:class:`Decision`:

* ``Decision.approve()`` -- grant now (``200``), optionally narrowing the scope or naming the
  person for an agent not yet bound to one;
* ``Decision.deny(reason)`` -- refuse now (``403 denied``; ``permission: denied`` at the
  permission endpoint);
* ``Decision.interaction()`` -- the person decides in a browser: ``202`` with
  ``requirement=interaction`` and an interaction URL and code (§Interaction Required);
* ``Decision.approval(decide)`` -- decided later without a browser (an administrator, a push
  notification, a rules engine): ``202`` with ``requirement=approval`` (§Approval Pending).
  ``decide`` is called with the request (``pending_id`` set); it may return (or resolve to) a
  ``Decision`` at once, or ``None`` and decide later through
  :meth:`~aauth_agents.servers.person_server.Interactions.approve` /
  :meth:`~aauth_agents.servers.person_server.Interactions.deny`.

Built-in policies: :class:`InteractiveConsent` (the default: remembered consent is honoured,
anything new goes to the person), :class:`AutoApprove` (unattended runs),
:class:`ApprovalPolicy` (a callable decides without a browser). A policy is any object with a
``decide(request)`` method, sync or async; a plain function works too (:func:`as_policy`).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from ...protocol.errors import ConfigurationError

# Request kinds.
PERSON_TOKEN = "person_token"  # noqa: S105 (a kind, not a secret)
AUTH_TOKEN = "auth_token"  # noqa: S105
MISSION = "mission"
MISSION_UPDATE = "mission_update"
MISSION_COMPLETION = "mission_completion"
PERMISSION = "permission"
QUESTION = "question"
#: A relayed interaction or payment (§Interaction Endpoint): never put to a policy.
RELAY = "relay"
KINDS = frozenset(
    {PERSON_TOKEN, AUTH_TOKEN, MISSION, MISSION_UPDATE, MISSION_COMPLETION, PERMISSION, QUESTION}
)

#: Kinds only a person can decide: :class:`AutoApprove` still routes them to the person.
PERSON_ONLY = frozenset({QUESTION})

# Decision outcomes.
APPROVE = "approve"
DENY = "deny"
INTERACTION = "interaction"
APPROVAL = "approval"
OUTCOMES = frozenset({APPROVE, DENY, INTERACTION, APPROVAL})


@dataclass(frozen=True)
class ResourceInfo:
    """What the consent screen shows about a resource, from its metadata (§Resource
    Metadata). ``name``/``description`` are untrusted Markdown/text: sanitize before display.
    ``scope_descriptions`` maps scope values to their descriptions."""

    identifier: str
    name: str | None = None
    description: str | None = None
    access_mode: str | None = None
    logo_uri: str | None = None
    scope_descriptions: Mapping[str, str] = field(default_factory=dict)
    revocation_endpoint: str | None = None


@dataclass(frozen=True)
class ConsentRequest:
    """A request the PS asks its policy about.

    ``account`` is the person the agent is bound to (§Agent-Person Binding), ``None`` when
    it is not bound yet. ``consented`` is True when a decision the person made before already
    covers this request (same agent, resource, kind, mission and scopes). ``subagent`` names
    the sub-agent a parent asks for (§Parent-Mediated Authorization). ``description`` is the
    mission description, update, completion summary, permission description or question.
    """

    kind: str
    agent_id: str
    agent_issuer: str
    account: str | None
    consented: bool = False
    resource: ResourceInfo | None = None
    scopes: tuple[str, ...] = ()
    subagent: str | None = None
    mission_s256: str | None = None
    justification: str | None = None
    description: str | None = None
    action: str | None = None
    parameters: Mapping[str, Any] | None = None
    tools: tuple[Mapping[str, str], ...] = ()
    resources: tuple[str, ...] = ()
    capabilities: tuple[str, ...] | None = None
    platform: str | None = None
    device: str | None = None
    pending_id: str | None = None
    #: R3 (exploratory): the R3 document an auth token request references, as fetched and
    #: verified -- ``uri``, ``s256``, ``vocabulary``, ``operations``, ``display``,
    #: ``parameters`` (a per-call proposal's, for policies that evaluate them) and
    #: ``per_call``. Untrusted text throughout.
    r3: Mapping[str, Any] | None = None


ApprovalDecider = Callable[[ConsentRequest], "Decision | Awaitable[Decision | None] | None"]


@dataclass(frozen=True)
class Decision:
    """A policy's answer; build one with the class methods."""

    outcome: str
    account: str | None = None
    scopes: tuple[str, ...] | None = None
    reason: str | None = None
    decide: ApprovalDecider | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.outcome not in OUTCOMES:
            raise ConfigurationError(f"unknown decision outcome {self.outcome!r}")

    @classmethod
    def approve(
        cls, *, account: str | None = None, scopes: tuple[str, ...] | None = None
    ) -> Decision:
        """Grant now. ``scopes`` narrows an auth token's scope (never widens: scopes outside
        the request are dropped); ``account`` names the person for an unbound agent."""
        return cls(APPROVE, account=account, scopes=None if scopes is None else tuple(scopes))

    @classmethod
    def deny(cls, reason: str | None = None) -> Decision:
        return cls(DENY, reason=reason)

    @classmethod
    def interaction(cls) -> Decision:
        return cls(INTERACTION)

    @classmethod
    def approval(cls, decide: ApprovalDecider | None = None) -> Decision:
        return cls(APPROVAL, decide=decide)


@runtime_checkable
class ConsentPolicy(Protocol):
    """Decides each :class:`ConsentRequest`; may be sync or async."""

    def decide(self, request: ConsentRequest) -> Decision | Awaitable[Decision]: ...


class InteractiveConsent:
    """The default: what the person already consented to is granted; everything else --
    a new resource, broader scope, a mission, a permission, a question -- goes to the person
    in a browser (``requirement=interaction``)."""

    def decide(self, request: ConsentRequest) -> Decision:
        if request.consented:
            return Decision.approve()
        return Decision.interaction()


class AutoApprove:
    """Grant everything at once (unattended runs, benchmarks, tests). ``account`` names the
    person to bind unbound agents to (otherwise the PS's ``default_person``). Questions are
    still routed to a person: there is nobody to answer them automatically."""

    def __init__(self, account: str | None = None) -> None:
        self.account = account

    def decide(self, request: ConsentRequest) -> Decision:
        if request.kind in PERSON_ONLY:
            return Decision.interaction()
        return Decision.approve(account=self.account)


class ApprovalPolicy:
    """What the person consented to before is granted; anything else is decided by
    ``decide`` without a browser (``requirement=approval``)."""

    def __init__(self, decide: ApprovalDecider, *, honour_consent: bool = True) -> None:
        self._decide = decide
        self.honour_consent = honour_consent

    def decide(self, request: ConsentRequest) -> Decision:
        if self.honour_consent and request.consented:
            return Decision.approve()
        return Decision.approval(self._decide)


class _FunctionPolicy:
    def __init__(self, fn: Callable[[ConsentRequest], Decision | Awaitable[Decision]]) -> None:
        self.fn = fn

    def decide(self, request: ConsentRequest) -> Decision | Awaitable[Decision]:
        return self.fn(request)


def as_policy(
    policy: ConsentPolicy | Callable[[ConsentRequest], Decision | Awaitable[Decision]],
) -> ConsentPolicy:
    """A :class:`ConsentPolicy` from a policy object or a plain (async) function."""
    if isinstance(policy, ConsentPolicy):
        return policy
    if callable(policy):
        return _FunctionPolicy(policy)
    raise ConfigurationError("a consent policy has a decide(request) method or is callable")


async def resolve(value: Any) -> Any:
    """Await ``value`` if it is awaitable (policies and deciders may be sync or async)."""
    if inspect.isawaitable(value):
        return await value
    return value


__all__ = [
    "APPROVAL",
    "APPROVE",
    "AUTH_TOKEN",
    "DENY",
    "INTERACTION",
    "KINDS",
    "MISSION",
    "MISSION_COMPLETION",
    "MISSION_UPDATE",
    "PERMISSION",
    "PERSON_ONLY",
    "PERSON_TOKEN",
    "QUESTION",
    "RELAY",
    "ApprovalDecider",
    "ApprovalPolicy",
    "AutoApprove",
    "ConsentPolicy",
    "ConsentRequest",
    "Decision",
    "InteractiveConsent",
    "ResourceInfo",
    "as_policy",
    "resolve",
]
