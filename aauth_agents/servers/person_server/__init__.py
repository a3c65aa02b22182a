"""A real, persistent AAuth person server (draft-hardt-oauth-aauth-protocol-11 §Person Server).

Every PS endpoint, persistent in SQLite::

    from aauth_agents.servers.person_server import (
        AutoApprove, PersonServerConfig, create_person_server)

    app = create_person_server(PersonServerConfig(
        issuer="https://ps.example", database="/var/lib/aauth-ps", discovery=discovery,
        policy=AutoApprove(), default_person="alice"))
    ps = app.state.person_server
    ps.accounts.create_account("alice", "correct horse battery staple")

The person's side (sign-in, the consent page, the clarification chat, the dashboard) is
built on :class:`Interactions` (``ps.interactions``) and :class:`Accounts`
(``ps.accounts``); policies (:class:`ConsentPolicy`) decide what needs the person at all.

What the UI adds (as ``routes`` of :func:`create_person_server`):

* ``GET /interact/{interaction_id}?code=...`` -- the URL the PS hands agents
  (``AAuth-Requirement: requirement=interaction; url=".../interact/{id}"; code="..."``).
  With ``PersonServerConfig.code_only_interaction`` it is one fixed ``GET /interact?code=...``
  whose interaction id is ``code_interaction_id(code)`` (``PersonServerConfig.paths``
  may move ``/interact`` and every protocol endpoint; the metadata path is fixed).
  Call ``await ps.interactions.lookup(interaction_id, code)`` (it enforces the attempt
  limit and spends nothing: the decision consumes the code; map :class:`InteractionError`
  ``.code``/``.status`` to the page), keep the returned ``view.id`` in the person's
  session, and use ``ps.interactions.get(view.id)`` afterwards; once the person is signed
  in and sees it, ``mark_interacting(view.id, account)`` (the agent sees ``interacting``;
  a new agent's request becomes theirs).
* Sign-in: ``await ps.accounts.aauthenticate(username, password)`` (scrypt in a bounded
  pool; ``None`` on any failure), through the limits of :class:`SignInLimits` (``SignIns``
  in ``signins.py``: per account and per client address, counted in ``ps.attempts``).
  Only then ``approve(view.id, account.username, ...)`` / ``deny(view.id)`` /
  ``abandon(view.id)`` / ``ask(view.id, question)``; CSRF tokens on those forms.
* Render ``view.justification``, ``view.resource.name/description``, ``view.scopes[*]
  .description``, ``view.details``, ``view.clarifications`` as sanitized Markdown (all of
  it is untrusted input). ``view.new_agent`` marks a new-agent enrollment.
* After the decision, redirect to the agent's ``callback`` (if it gave one) with
  :func:`callback_redirect`.
* Resource-initiated interaction (``view.resource_interaction``): redirect the browser to
  ``await ps.interactions.resource_redirect(view.id)``; serve
  ``GET /interact/callback/{pending_id}/{nonce}[?error=...]`` calling
  ``ps.interactions.resource_callback(pending_id, nonce, error)``.
* Approvals without a browser: :class:`ApprovalPolicy` (``requirement=approval``); the
  approver later calls ``approve``/``deny`` with the pending id it was given.

The browser UI (:mod:`.ui`) implements all of the above::

    from aauth_agents.servers.person_server import create_person_server_with_ui, ui_routes

    app = create_person_server_with_ui(config)        # or, with a PersonServer ``ps``:
    app = create_person_server(ps, routes=ui_routes(ps))

Routes: ``GET /interact/{id}?code=...[&callback=...]`` (checks the callback against the agent
provider's metadata and the code once, then redirects to ``/consent/{pending_id}``),
``GET/POST /consent/{pending_id}`` (sign-in if needed; approve, deny, ask a question,
abandon), ``GET /interact/callback/{pending_id}/{nonce}``, ``GET/POST /signin``,
``POST /signout``, ``GET /dashboard`` (requests waiting for the person, connected agents,
missions and their logs) with ``POST /dashboard/unbind`` and ``POST /dashboard/terminate``,
``GET /ui.css``. Sessions are opaque ids in an HttpOnly, SameSite=Lax cookie (Secure over
https) mapping to state kept in the PS database (only the id's SHA-256 is stored, so sessions
survive a restart); every POST needs the session's CSRF token
and a same-origin ``Origin``/``Referer``; every page has a strict CSP and no JavaScript.
Untrusted text is rendered with :func:`aauth_agents.servers.markdown.render_markdown`.
"""

from __future__ import annotations

from .accounts import Account, AccountError, Accounts, hash_password, verify_password
from .app import create_person_server, person_server_of
from .config import FIXED_PATHS, PATHS, PersonServerConfig, RelayChannel, RelayNotice
from .events import EventHook, PSEvent
from .interactions import (
    CALLBACK_ERRORS,
    ClarificationView,
    InteractionError,
    Interactions,
    InteractionView,
    MissionView,
    R3View,
    ScopeView,
    callback_redirect,
    code_interaction_id,
)
from .keyring import SigningKeys
from .pending import Reply
from .policy import (
    ApprovalPolicy,
    AutoApprove,
    ConsentPolicy,
    ConsentRequest,
    Decision,
    InteractiveConsent,
    ResourceInfo,
)
from .server import AgentContext, AgentTokenRevocation, PersonServer, RevocationReport
from .signins import SignInLimits
from .state import Binding, BindingConflictError, Mission, MissionLogEntry
from .ui import PersonServerUI, create_person_server_with_ui, ui_routes

__all__ = [
    "CALLBACK_ERRORS",
    "FIXED_PATHS",
    "PATHS",
    "Account",
    "AccountError",
    "Accounts",
    "AgentContext",
    "AgentTokenRevocation",
    "ApprovalPolicy",
    "AutoApprove",
    "Binding",
    "BindingConflictError",
    "ClarificationView",
    "ConsentPolicy",
    "ConsentRequest",
    "Decision",
    "EventHook",
    "InteractionError",
    "InteractionView",
    "Interactions",
    "InteractiveConsent",
    "Mission",
    "MissionLogEntry",
    "MissionView",
    "PSEvent",
    "PersonServer",
    "PersonServerConfig",
    "PersonServerUI",
    "R3View",
    "RelayChannel",
    "RelayNotice",
    "Reply",
    "ResourceInfo",
    "RevocationReport",
    "ScopeView",
    "SignInLimits",
    "SigningKeys",
    "callback_redirect",
    "code_interaction_id",
    "create_person_server",
    "create_person_server_with_ui",
    "hash_password",
    "person_server_of",
    "ui_routes",
    "verify_password",
]
