"""What the person's dashboard says, in plain words: the requests waiting for them, each of their
agents with what it may do at which site and until when (§Agent-Person Binding: the
person's view of their bindings and remembered consent), and their missions with a
readable log (§Mission Log).

:func:`dashboard_context` builds the context of ``dashboard.html``, a page of each list at a
time (:mod:`.dashboard_queries`: a count and one page per list, and one query for what a
page shows about all of its items); :func:`log_line` words one mission log entry. Names
come from metadata the PS already fetches (an agent provider's ``name``, a resource's
``name``), falling back to identifiers; everything taken from an agent or a resource is
untrusted text, escaped or sanitized by the templates.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from ...protocol.encoding import loads_json
from .consent_view import agent_name
from .dashboard_queries import LOG_PAGE_SIZE, RECENT_LOG, DashboardQueries, Page
from .interaction_views import terms_of
from .kinds import Wants, kind_of
from .pending import PendingRequest
from .policy import ResourceInfo
from .server import PersonServer
from .state import ACTIVE, Binding, Consent, IssuedAuthToken, Mission, MissionLogEntry

#: The query parameter naming the page of each dashboard list (and its section's heading).
LISTS = ("waiting", "agents", "missions")

#: How a mission ended, in words (``termination_reason``, §Mission Management).
ENDINGS = {
    "revoked": "you ended it",
    "completed": "done",
    "expired": "it expired",
    "administrative": "the server's administrator ended it",
    "superseded": "a newer mission replaced it",
}


@dataclass(frozen=True)
class Waiting:
    """One open request on the dashboard (§Deferred Responses): who asks what, in words;
    ``scopes`` with the resource's descriptions."""

    id: str
    agent_id: str
    agent: str
    wants: Wants
    title: str
    resource: ResourceInfo | None
    scopes: tuple[tuple[str, str | None], ...]
    summary: str | None
    created: float
    expires: float


@dataclass(frozen=True)
class Grant:
    """What the person allowed an agent at one site: ``words`` ("may use"), the site,
    the scopes with their descriptions, and since when."""

    words: str
    resource: str
    resource_name: str
    scopes: tuple[tuple[str, str | None], ...]
    mission_s256: str | None
    since: float


@dataclass(frozen=True)
class Access:
    """Access an agent holds now at one site: its latest unexpired, unrevoked auth token."""

    resource: str
    resource_name: str
    scope: str | None
    until: float


@dataclass(frozen=True)
class AgentCard:
    """One connected agent: its binding, name, grants, current access and missions."""

    binding: Binding
    name: str
    grants: tuple[Grant, ...]
    access: tuple[Access, ...]
    active_missions: int


@dataclass(frozen=True)
class LogLine:
    """One mission log entry in words; ``detail`` is the entry's own text (untrusted
    Markdown from the agent, sanitized when shown)."""

    seq: int
    at: float
    words: str
    detail: str | None


@dataclass(frozen=True)
class MissionCard:
    """One mission: who works on it, its state in words, its latest log entries and how
    many it has in all (``entries``)."""

    mission: Mission
    agent: str
    state: str
    active: bool
    log: tuple[LogLine, ...]
    entries: int


@dataclass(frozen=True)
class Pager:
    """Where one list stands (``page``) and the links to its neighbouring pages (``None``
    at either end); each link keeps the other lists at their pages."""

    page: Page
    previous: str | None
    next: str | None


def pager(base: str, name: str, pages: Mapping[str, Page], lists: Sequence[str] = LISTS) -> Pager:
    """The :class:`Pager` of list ``name`` on the page at ``base`` that shows ``lists``
    (each a query parameter naming its page, and its section's heading ``{name}-heading``)."""

    def link(number: int) -> str:
        numbers = {n: p.number for n, p in pages.items() if p.number > 1}
        numbers[name] = number
        query = urlencode({n: numbers[n] for n in lists if numbers.get(n, 1) > 1})
        return f"{base}?{query}#{name}-heading" if query else f"{base}#{name}-heading"

    page = pages[name]
    return Pager(
        page,
        link(page.number - 1) if page.number > 1 else None,
        link(page.number + 1) if page.number < page.pages else None,
    )


#: Each mission log kind: a sentence (``{member}`` filled from the entry) and the member
#: shown beneath it as the agent's or person's own words.
LOG_WORDS: Mapping[str, tuple[str, str | None]] = {
    "approved": ("You approved the mission.", None),
    "person_token_request": ("Asked to sign in as you at {resource}.", None),
    "person_token": ("Signed in as you at {resource}.", None),
    "auth_token_request": ("Asked for access to {resource}.", None),
    "auth_token": ("Was given access to {resource}.", None),
    "clarification_question": ("You asked the agent a question.", "question"),
    "clarification": ("You asked a question and the agent answered.", "answer"),
    "update_proposed": ("Proposed a change to the mission.", "description"),
    "update": ("The mission was changed.", "description"),
    "completion_proposed": ("Reported the mission done.", "summary"),
    "completion": ("The mission was completed.", "summary"),
    "permission_request": ("Asked permission to {action}.", "description"),
    "permission_response": ("Permission to {action}: {permission}.", "reason"),
    "question_answer": ("You answered a question.", "answer"),
    "audit": ("Reported doing {action}.", "description"),
    "interaction_request": ("Asked you to complete a step at another site.", "description"),
    "terminated": ("The mission ended: {reason}.", None),
}


class _Members(dict[str, str]):
    """An entry's members for ``str.format_map``: text as is, anything missing as "?"."""

    def __missing__(self, key: str) -> str:
        return "?"


#: Log entries whose wording is remembered (a mission's log never changes, and the dashboard
#: shows the same latest entries on each visit), and the longest entry remembered.
LOG_MEMO = 1024
LOG_MEMO_LENGTH = 2048


def log_line(entry: MissionLogEntry) -> LogLine:
    """``entry`` in words (§Mission Log); an unknown kind is named as it is."""
    if len(entry.entry) <= LOG_MEMO_LENGTH:
        words, detail = _remembered_words(entry.kind, entry.entry)
    else:
        words, detail = _log_words(entry.kind, entry.entry)
    return LogLine(entry.seq, entry.at, words, detail)


def _log_words(kind: str, entry: bytes) -> tuple[str, str | None]:
    """The sentence and the detail of a log entry: a function of its kind and bytes only."""
    parsed = loads_json(entry)
    data: Mapping[str, Any] = parsed if isinstance(parsed, dict) else {}
    sentence, member = LOG_WORDS.get(kind, (kind.replace("_", " ").capitalize(), None))
    members = _Members({k: str(v) for k, v in data.items() if isinstance(v, str | int)})
    if "reason" in members:
        members["reason"] = ENDINGS.get(members["reason"], members["reason"])
    detail = data.get(member) if member else None
    return sentence.format_map(members), detail if isinstance(detail, str) and detail else None


_remembered_words = functools.lru_cache(maxsize=LOG_MEMO)(_log_words)


def mission_state(mission: Mission, now: float) -> str:
    """A mission's state in words."""
    if mission.active_at(now):
        return "Active"
    if mission.state == ACTIVE:  # past its expires_at, not yet swept
        return "Ended: it expired"
    reason = mission.termination_reason or "ended"
    return "Ended: " + ENDINGS.get(reason, reason)


def waiting(pending_id: str, data: Mapping[str, Any], created: float, expires: float) -> Waiting:
    """A request waiting for the person, in the words of its kind's consent page."""
    req = PendingRequest.from_json(data)
    r3 = req.request.get("r3")
    summary = (r3.get("display") or {}).get("summary") if isinstance(r3, Mapping) else None
    kind = kind_of(req.kind)  # its heading and title only, not its whole consent page
    return Waiting(
        id=pending_id,
        agent_id=req.agent_id,
        agent=agent_name(req.provider_name, req.agent_id),
        wants=kind.wants(req),
        title=kind.title,
        resource=req.resource,
        scopes=tuple(
            (str(s), req.resource.scope_descriptions.get(s) if req.resource else None)
            for s in req.request.get("scopes", ())
        ),
        # What the resource says this call does (R3).
        summary=summary if isinstance(summary, str) else None,
        created=created,
        expires=expires,
    )


class _Names:
    """Names of agents and resources from their metadata, each fetched once per page
    (:meth:`fetch`, before the page's cards are made; the cards then read them here)."""

    def __init__(self, ps: PersonServer) -> None:
        self.ps = ps
        self.agents: dict[str, str | None] = {}
        self.resources: dict[str, ResourceInfo | None] = {}

    async def fetch(self, issuers: Iterable[str] = (), resources: Iterable[str] = ()) -> None:
        """Fetch what the cards about to be made will name, each not fetched yet once."""
        for iss in issuers:
            if iss not in self.agents:
                meta = await self.ps.provider_metadata(iss)
                self.agents[iss] = meta.name if meta is not None else None
        for resource in resources:
            if resource not in self.resources:
                self.resources[resource] = await self.ps.resource_info(resource)

    async def agent(self, iss: str, agent_id: str) -> str:
        await self.fetch((iss,))
        return self.agent_name(iss, agent_id)

    def agent_name(self, iss: str, agent_id: str) -> str:
        return agent_name(self.agents[iss], agent_id)

    def resource_name(self, resource: str) -> str:
        info = self.resources[resource]
        return (info.name if info is not None else None) or resource


def _grant(names: _Names, consent: Consent) -> Grant:
    info = names.resources[consent.resource]
    descriptions = info.scope_descriptions if info is not None else {}
    return Grant(
        kind_of(consent.kind).remembered,
        consent.resource,
        names.resource_name(consent.resource),
        tuple([(s, descriptions.get(s)) for s in consent.scopes]),
        consent.mission_s256,
        consent.created_at,
    )


def _access(names: _Names, tokens: Iterable[IssuedAuthToken]) -> tuple[Access, ...]:
    latest: dict[str, IssuedAuthToken] = {}
    for token in tokens:
        if token.aud not in latest or token.exp > latest[token.aud].exp:
            latest[token.aud] = token
    return tuple(
        [Access(t.aud, names.resource_name(t.aud), t.scope, t.exp) for t in latest.values()]
    )


def _agent_cards(
    names: _Names,
    bindings: Sequence[Binding],
    consents: Sequence[Consent],
    tokens: Sequence[IssuedAuthToken],
    active_missions: Mapping[tuple[str, str], int],
) -> list[AgentCard]:
    """A card for each of ``bindings`` (names fetched), each item given to its agents'
    cards in one pass."""
    grants: dict[tuple[str, str], list[Grant]] = {}
    for c in consents:
        grants.setdefault((c.agent_iss, c.agent_id), []).append(_grant(names, c))
    held: dict[str, list[IssuedAuthToken]] = {}
    for t in tokens:
        for agent_id in {t.agent_id, t.requested_by}:
            held.setdefault(agent_id, []).append(t)
    return [
        AgentCard(
            b,
            names.agent_name(b.agent_iss, b.agent_id),
            tuple(grants.get((b.agent_iss, b.agent_id), ())),
            _access(names, held.get(b.agent_id, ())),
            active_missions.get((b.agent_iss, b.agent_id), 0),
        )
        for b in bindings
    ]


@dataclass(frozen=True)
class Confirm:
    """A confirmation page: its ``title``, what will happen (``effects``, one sentence a
    line), the form's hidden ``fields`` and the ``button`` that does it; ``about`` says
    which one (plain text), ``described`` shows it in its own untrusted Markdown."""

    title: str
    effects: tuple[str, ...]
    fields: Mapping[str, str]
    button: str
    about: str | None = None
    described: str | None = None


async def agent_label(ps: PersonServer, iss: str, agent_id: str) -> str:
    """An agent's name from its provider's metadata, else its identifier."""
    return await _Names(ps).agent(iss, agent_id)


def disconnect_confirm(binding: Binding, name: str) -> Confirm:
    """Disconnecting an agent (§Agent-Person Binding, §Token Revocation), said first."""
    return Confirm(
        f"Disconnect {name}?",
        (
            f"{name} will no longer be able to act for you anywhere.",
            "Access it holds now is revoked at each site, and what you allowed it before "
            "is forgotten.",
            "If it asks again later, you will be asked again, as for a new agent.",
        ),
        {"agent_iss": binding.agent_iss, "agent_id": binding.agent_id},
        "Disconnect",
        about=f"Agent {binding.agent_id}, from {binding.agent_iss}",
    )


def end_confirm(mission: Mission) -> Confirm:
    """Ending a mission (§Mission Management), said first."""
    return Confirm(
        "End this mission?",
        (
            "The agent can no longer act under this mission, and access it got for the "
            "mission is revoked.",
            "This cannot be undone: the agent must propose a new mission.",
        ),
        {"s256": mission.s256},
        "End mission",
        about=f"Agent {mission.agent_id}",
        described=mission.description,
    )


async def _waiting(
    ps: PersonServer, account: str, requested: Mapping[str, str], now: float
) -> tuple[Page, list[Waiting]]:
    total = await ps.run(ps.pending.count_open_for_owner, account, now)
    page = Page.of(requested.get("waiting"), total)
    records = await ps.run(ps.pending.open_for_owner, account, now, page.size, page.offset)
    return page, [waiting(r.id, r.data, r.created_at, r.expires_at) for r in records]


async def _agents(
    ps: PersonServer,
    queries: DashboardQueries,
    names: _Names,
    account: str,
    requested: Mapping[str, str],
    now: float,
) -> tuple[Page, list[AgentCard]]:
    page = Page.of(requested.get("agents"), await ps.run(queries.count_bindings, account))
    bindings = await ps.run(queries.bindings_page, account, page)
    agents = [(b.agent_iss, b.agent_id) for b in bindings]
    consents = await ps.run(queries.consents_of, account, agents)
    ids = sorted({b.agent_id for b in bindings})
    tokens = await ps.run(queries.live_tokens_of, account, ids, now)
    active = await ps.run(queries.active_missions_of, account, agents, now)
    await names.fetch(
        (b.agent_iss for b in bindings), [c.resource for c in consents] + [t.aud for t in tokens]
    )
    return page, _agent_cards(names, bindings, consents, tokens, active)


async def _missions(
    ps: PersonServer,
    queries: DashboardQueries,
    names: _Names,
    account: str,
    requested: Mapping[str, str],
    now: float,
) -> tuple[Page, list[MissionCard]]:
    page = Page.of(requested.get("missions"), await ps.run(queries.count_missions, account))
    missions = await ps.run(queries.missions_page, account, page)
    s256s = [m.s256 for m in missions]
    counts = await ps.run(queries.log_counts, s256s)
    logs = await ps.run(queries.recent_logs, s256s, RECENT_LOG)
    await names.fetch(m.agent_iss for m in missions)
    cards = [
        MissionCard(
            m,
            names.agent_name(m.agent_iss, m.agent_id),
            mission_state(m, now),
            m.active_at(now),
            tuple(log_line(e) for e in logs.get(m.s256, ())),
            counts.get(m.s256, 0),
        )
        for m in missions
    ]
    return page, cards


async def mission_log_context(
    ps: PersonServer,
    queries: DashboardQueries,
    mission: Mission,
    requested: Mapping[str, str],
    base: str,
    now: float,
) -> dict[str, Any]:
    """The context of ``mission.html``: ``mission`` with the page of its whole log (§Mission
    Log) that ``requested`` names (query parameter ``log``; the first page otherwise), in
    log order and in the dashboard's words, with links (to the page at ``base``) beside."""
    counts = await ps.run(queries.log_counts, [mission.s256])
    page = Page.of(requested.get("log"), counts.get(mission.s256, 0), LOG_PAGE_SIZE)
    entries = await ps.run(queries.log_page, mission.s256, page)
    card = MissionCard(
        mission,
        await agent_label(ps, mission.agent_iss, mission.agent_id),
        mission_state(mission, now),
        mission.active_at(now),
        tuple(log_line(e) for e in entries),
        page.total,
    )
    return {"card": card, "pager": pager(base, "log", {"log": page}, ("log",))}


async def dashboard_context(
    ps: PersonServer,
    queries: DashboardQueries,
    account: str,
    requested: Mapping[str, str],
    base: str,
    now: float,
) -> dict[str, Any]:
    """The context of ``dashboard.html`` for ``account`` at ``now``: the page of each list
    that ``requested`` names (query parameters ``waiting``, ``agents``, ``missions``; the
    first page otherwise), with links (to the dashboard at ``base``) to the pages beside."""
    names = _Names(ps)
    waiting_page, waiting_now = await _waiting(ps, account, requested, now)
    agents_page, agents = await _agents(ps, queries, names, account, requested, now)
    missions_page, missions = await _missions(ps, queries, names, account, requested, now)
    pages = {"waiting": waiting_page, "agents": agents_page, "missions": missions_page}
    return {
        "waiting": waiting_now,
        "agents": agents,
        "missions": missions,
        "pagers": {name: pager(base, name, pages) for name in LISTS},
        "terms": terms_of(ps.config),
    }


__all__ = [
    "LISTS",
    "LOG_WORDS",
    "Access",
    "AgentCard",
    "Confirm",
    "Grant",
    "LogLine",
    "MissionCard",
    "Pager",
    "Waiting",
    "agent_label",
    "dashboard_context",
    "disconnect_confirm",
    "end_confirm",
    "log_line",
    "mission_log_context",
    "mission_state",
    "pager",
    "waiting",
]
