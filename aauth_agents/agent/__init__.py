"""The agent side of AAuth: identity, the challenge-handling client, governance calls.

* :class:`AAuth` -- an ``httpx.Auth`` that signs every request and answers every AAuth
  challenge (person tokens, auth tokens, deferred responses, interaction, clarification,
  session tokens), for ``httpx.Client`` and ``httpx.AsyncClient`` alike; a sub-agent's
  ``AAuth(sub, parent=auth)`` obtains its tokens through its parent (§Sub-Agents);
* :class:`SignedAuth` -- signing only;
* :class:`PersonServerClient` / :class:`AsyncPersonServerClient` -- missions, permission,
  audit and questions to the person, from :meth:`AAuth.governance` /
  :meth:`AAuth.async_governance`;
* the typed errors (:mod:`.errors`), events (:mod:`.events`) and callback values
  (:mod:`.callbacks`).
"""

from __future__ import annotations

from .callbacks import (
    CANCEL,
    Answer,
    Cancel,
    ClarificationRequest,
    FutureAnswer,
    InteractionRequest,
    PendingControl,
    PromptSurface,
    UpdatedRequest,
)
from .client import AAuth, SignedAuth, client_options
from .errors import (
    AbandonedError,
    AgentProtocolError,
    AuthTokenVerificationError,
    ChallengeVerificationError,
    DeferredResponseError,
    DeniedError,
    ExpiredAgentTokenError,
    ExpiredError,
    ExpiredResourceTokenError,
    InteractionUnavailableError,
    InvalidAgentTokenError,
    InvalidCodeError,
    InvalidRequestError,
    InvalidResourceTokenError,
    MissionNotFoundError,
    MissionTerminatedError,
    NoPersonServerError,
    PersonTokenError,
    PollTimeoutError,
    RequestCancelledError,
    ServerError,
    SlowDownError,
    UnknownPersonTokenError,
    UnsupportedRequirementError,
    UserUnreachableError,
    error_for_response,
)
from .events import (
    ApprovalPending,
    ChallengeReceived,
    ClarificationAnswered,
    ClarificationAsked,
    FlowEvent,
    FlowFailed,
    InteractionRequired,
    MetadataFetched,
    PendingEnded,
    Polling,
    Reconnecting,
    RequestSent,
    ResponseReceived,
    SessionUpdated,
    TokenObtained,
)
from .governance import (
    AsyncPersonServerClient,
    MissionApproval,
    PermissionResult,
    PersonServerClient,
)
from .identity import AgentIdentity, TokenSource
from .pending import PendingRequests
from .polling import format_prefer_wait, parse_prefer_wait, parse_retry_after, resolve_location
from .provider import (
    AgentExistsError,
    AgentNotFoundError,
    LocalAgent,
    LocalAgentProvider,
    init_local_agent,
    load_identity,
    load_local_agent,
)
from .reconnect import ReconnectingTransport
from .storage import (
    DirectoryKeyStore,
    InsecureKeyStoreError,
    KeyringKeyStore,
    KeyStore,
    KeyStoreError,
    KeyStoreUnavailableError,
    MemoryKeyStore,
    read_private_key,
    write_private_key,
)

__all__ = [
    "CANCEL",
    "AAuth",
    "AbandonedError",
    "AgentIdentity",
    "AgentProtocolError",
    "Answer",
    "ApprovalPending",
    "AsyncPersonServerClient",
    "AuthTokenVerificationError",
    "Cancel",
    "ChallengeReceived",
    "ChallengeVerificationError",
    "ClarificationAnswered",
    "ClarificationAsked",
    "ClarificationRequest",
    "DeferredResponseError",
    "DeniedError",
    "ExpiredAgentTokenError",
    "ExpiredError",
    "ExpiredResourceTokenError",
    "FlowEvent",
    "FlowFailed",
    "FutureAnswer",
    "InteractionRequest",
    "InteractionRequired",
    "InteractionUnavailableError",
    "InvalidAgentTokenError",
    "InvalidCodeError",
    "InvalidRequestError",
    "InvalidResourceTokenError",
    "MetadataFetched",
    "MissionApproval",
    "MissionNotFoundError",
    "MissionTerminatedError",
    "NoPersonServerError",
    "PendingControl",
    "PendingEnded",
    "PendingRequests",
    "PermissionResult",
    "PersonServerClient",
    "PersonTokenError",
    "PollTimeoutError",
    "Polling",
    "PromptSurface",
    "Reconnecting",
    "ReconnectingTransport",
    "RequestCancelledError",
    "RequestSent",
    "ResponseReceived",
    "ServerError",
    "SessionUpdated",
    "SignedAuth",
    "SlowDownError",
    "TokenObtained",
    "TokenSource",
    "UnknownPersonTokenError",
    "UnsupportedRequirementError",
    "UpdatedRequest",
    "UserUnreachableError",
    "client_options",
    "error_for_response",
    "format_prefer_wait",
    "parse_prefer_wait",
    "parse_retry_after",
    "resolve_location",
]

# Key material and the self-hosted agent provider (storage.py, provider.py).
__all__ += [
    "AgentExistsError",
    "AgentNotFoundError",
    "DirectoryKeyStore",
    "InsecureKeyStoreError",
    "KeyStore",
    "KeyStoreError",
    "KeyStoreUnavailableError",
    "KeyringKeyStore",
    "LocalAgent",
    "LocalAgentProvider",
    "MemoryKeyStore",
    "init_local_agent",
    "load_identity",
    "load_local_agent",
    "read_private_key",
    "write_private_key",
]
