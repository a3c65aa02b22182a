"""What the consent page shows and does for each kind of request, in one place.

The consent page (``templates/consent.html``) is the same for every kind of request; what
differs is said by the kind's class (:mod:`.kinds`: what the person may edit, whether it is
a relay, whether its members are listed) and looked up here, in :data:`KINDS` -- a table from
the request's kind to a :class:`ConsentKind` -- never decided by comparing kind names:

* whether the kind's own members (update description, completion summary, permission
  action, question, relay URL, ...) are listed as "Details";
* whether the person types an answer (a question the agent asked);
* whether the person may grant fewer scopes than asked (an auth token request without an R3
  document: an R3 document -- a per-call proposal above all -- is approved as a whole);
* what approving does (:meth:`ConsentKind.approve`).

:func:`consent_context` builds the template's context from an
:class:`~.interactions.InteractionView`.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ...protocol.r3 import is_digest
from .interactions import Interactions, InteractionView, R3View
from .kinds import KINDS as REQUEST_KINDS
from .kinds import RequestKind, kind_of
from .ui_pages import PageError
from .ui_sessions import Session

#: The longest question (or answer) the person may type.
MAX_QUESTION = 2000
#: The most characters of one R3 parameter value shown.
MAX_PARAMETER = 4096
#: The request members a "Details" table may show.
DETAIL_MEMBERS = ("description", "summary", "action", "question", "url", "parameters", "resource")

Approver = Callable[[Interactions, InteractionView, Session, Mapping[str, str]], Awaitable[None]]


def _account(session: Session) -> str:
    assert session.account is not None, "only a signed-in person decides"
    return session.account


async def _approve(
    interactions: Interactions, view: InteractionView, session: Session, form: Mapping[str, str]
) -> None:
    await interactions.approve(view.id, _account(session))


async def _approve_with_answer(
    interactions: Interactions, view: InteractionView, session: Session, form: Mapping[str, str]
) -> None:
    await interactions.approve(
        view.id, _account(session), answer=form.get("answer", "")[:MAX_QUESTION]
    )


async def _approve_relay(
    interactions: Interactions, view: InteractionView, session: Session, form: Mapping[str, str]
) -> None:
    await interactions.relay_engaged(view.id, _account(session))


async def _approve_scopes(
    interactions: Interactions, view: InteractionView, session: Session, form: Mapping[str, str]
) -> None:
    """Approve the scopes the person left checked (never more than asked); all of them when
    the page offered no choice."""
    if form.get("scopes_offered") != "1":
        await _approve(interactions, view, session, form)
        return
    requested = [s.scope for s in view.scopes]
    chosen = set(form.get("scope", "").split())
    granted = [s for s in requested if s in chosen]
    if not granted:
        raise PageError(
            400,
            "Nothing chosen",
            "Choose at least one kind of access, or deny the request.",
            code="invalid_request",
            session=session,
        )
    await interactions.approve(
        view.id, _account(session), scopes=granted if granted != requested else None
    )


@dataclass(frozen=True)
class ConsentKind:
    """What the consent page does differently for one kind of request."""

    #: List the request's own members under "Details".
    shows_details: bool = True
    #: The person answers in a text field (the answer goes to the agent).
    asks_answer: bool = False
    #: The person may uncheck scopes (unless an R3 document is approved as a whole).
    narrows_scopes: bool = False
    #: What approving does.
    approve: Approver = _approve

    def offers_scopes(self, view: InteractionView) -> bool:
        """The page shows a checkbox for each scope."""
        return self.narrows_scopes and view.r3 is None


def _consent_kind(kind: RequestKind) -> ConsentKind:
    """What the page does for a request kind, as its class says (:mod:`.kinds`)."""
    asks_answer, narrows = "answer" in kind.editable, "scopes" in kind.editable
    approve = (
        _approve_relay
        if kind.relayed
        else _approve_with_answer
        if asks_answer
        else _approve_scopes
        if narrows
        else _approve
    )
    return ConsentKind(kind.lists_details, asks_answer, narrows, approve)


#: The consent page of each kind of request, derived from the kind classes.
KINDS: Mapping[str, ConsentKind] = {name: _consent_kind(k) for name, k in REQUEST_KINDS.items()}


def consent_kind(kind: str) -> ConsentKind:
    """The :class:`ConsentKind` of requests of ``kind``."""
    return KINDS[kind_of(kind).name]


def kind_label(kind: str) -> str:
    """How a kind of request is named to the person."""
    return kind.replace("_", " ")


def agent_name(provider_name: str | None, agent_id: str) -> str:
    """What the person calls an agent: its provider's ``name`` (§Agent Provider Metadata),
    else its identifier."""
    return provider_name or agent_id


@dataclass(frozen=True)
class Parameter:
    """One parameter of an R3 per-call proposal as shown: a digest by its ``excerpt`` and
    ``s256``, any other value as ``text`` (JSON unless a string)."""

    name: str
    text: str | None = None
    excerpt: Any = None
    s256: str | None = None


def r3_parameters(r3: R3View) -> list[Parameter]:
    """The parameters of ``r3``'s call, as the page lists them."""
    out = []
    for name, value in r3.parameters.items():
        if is_digest(value):
            out.append(Parameter(name, excerpt=value.get("excerpt"), s256=str(value["s256"])))
        else:
            text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
            out.append(Parameter(name, text=text[:MAX_PARAMETER]))
    return out


def consent_context(view: InteractionView, provider_description: str | None) -> dict[str, Any]:
    """The context of ``consent.html`` for ``view``; ``provider_description`` is the agent
    provider's (untrusted Markdown) description, if any."""
    kind = consent_kind(view.kind)
    page = view.consent
    assert page is not None, "build_view describes every request"
    details = (
        [(f.label, str(f.value)) for f in page.fields if f.name in DETAIL_MEMBERS]
        if kind.shows_details
        else []
    )
    return {
        "view": view,
        "kind": kind,
        "consent": page,
        "label": kind_label(view.kind),
        "choose_scopes": kind.offers_scopes(view),
        "offer_scopes": kind.offers_scopes(view) and bool(view.scopes),
        "details": details,
        "parameters": r3_parameters(view.r3) if view.r3 is not None else [],
        "provider_description": provider_description,
        "max_question": MAX_QUESTION,
    }


__all__ = [
    "KINDS",
    "MAX_QUESTION",
    "ConsentKind",
    "Parameter",
    "agent_name",
    "consent_context",
    "consent_kind",
    "kind_label",
    "r3_parameters",
]
