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
"""

from __future__ import annotations

from .accounts import Account, AccountError, Accounts, hash_password, verify_password
from .app import create_person_server, person_server_of
from .config import PATHS, PersonServerConfig, RelayChannel, RelayNotice
from .events import EventHook, PSEvent
from .interactions import (
    CALLBACK_ERRORS,
    ClarificationView,
    InteractionError,
    Interactions,
    InteractionView,
    MissionView,
    ScopeView,
    callback_redirect,
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
from .state import Binding, BindingConflictError, Mission, MissionLogEntry

__all__ = [
    "CALLBACK_ERRORS",
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
    "RelayChannel",
    "RelayNotice",
    "Reply",
    "ResourceInfo",
    "RevocationReport",
    "ScopeView",
    "SigningKeys",
    "callback_redirect",
    "create_person_server",
    "hash_password",
    "person_server_of",
    "verify_password",
]
