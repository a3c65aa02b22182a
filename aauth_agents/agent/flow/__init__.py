"""The agent's side of AAuth, written once as a sans-I/O flow.

:class:`AgentFlow` turns one resource request into a generator of effects
(:mod:`aauth_agents.agent.effects`): it signs the request per §HTTP Message Signatures
Profile, sends it, and answers whatever the resource asks for --

* ``401 requirement=agent-token`` / ``person-token`` / ``auth-token`` (§Agent Token
  Required, §Person Token Required, §Auth Token Required): retry with the agent token, with
  a person token from the PS's ``person_token_endpoint``, or with an auth token from its
  ``auth_token_endpoint`` after §Resource Challenge Verification and before §Auth Token
  Response Verification; step-up when a request that carried an auth token is challenged;
* ``202`` deferred responses (§Deferred Responses): polling the same-origin ``Location``,
  ``Retry-After`` (default 5 s, +5 s per ``429``), ``Prefer: wait``, ``status:
  interacting``, ``requirement=interaction`` (relayed through the PS's
  ``interaction_endpoint`` first, §Relaying Through the Person Server), ``approval``,
  ``clarification`` (§Clarification Chat) and ``auth-token`` (§Deferred Delivery; a token
  pinned to an R3 document that completes a held call -- an R3 per-call approval -- is used
  for that call only), terminal ``403``/``408``/``410`` as typed errors, and
  ``max_poll_seconds``;
* ``AAuth-Access`` session tokens (§AAuth-Access), sent back as ``Authorization: AAuth``
  and covered by the signature;
* ``invalid_input`` with ``required_input`` (§Covered Components): one retry covering them;
* sub-agents (§Parent-Mediated Authorization): a flow with a ``parent`` never calls the PS
  itself. Its person-token and auth-token requests are made by the parent's flow, run inside
  this one (same driver, same client): signed with the parent's key, the parent's agent token
  in ``Signature-Key``, the sub-agent's agent token as ``subagent_token`` in the body. The
  tokens issued are checked against the sub-agent's key and kept in its own caches.

The same flows serve the governance calls (§Mission, §Permission Endpoint, §Audit
Endpoint, §Interaction Endpoint). Nothing here blocks, sleeps, awaits or opens a socket.

The flow is a stack of layers, one module each, every layer a class on the one below:

* :mod:`.config` -- :class:`AgentConfig`, :class:`CallContext`, the limits;
* :mod:`.base` -- identity, caches, key and credentials, the primitive steps;
* :mod:`.signing` -- building and signing requests to the PS and to resources;
* :mod:`.metadata` -- resource and PS metadata, issuer JWKS;
* :mod:`.deferred` -- PS calls, polling deferred responses, resuming, withdrawing;
* :mod:`.tokens` -- person tokens and auth tokens;
* :mod:`.resource` -- :class:`AgentFlow`: the resource request;

and beside them :mod:`.requirements`, what each ``AAuth-Requirement`` value makes the agent
do: a table per context (a ``401``, a ``202``, a ``401`` to a poll) from the value to its
sub-flow. Adding a value is one sub-flow and one table entry there.
"""

from __future__ import annotations

from .config import (
    CONTROLLED_POLLS,
    CONTROLLED_WAIT,
    JWKS_REFRESH_FLOOR,
    MAX_CHALLENGE_ROUNDS,
    MAX_CLARIFICATION_ROUNDS,
    MAX_METADATA_TTL,
    POLL_READ_MARGIN,
    AgentConfig,
    CallContext,
    resource_identifier,
)
from .requirements import CHALLENGES, PENDING, PENDING_CHALLENGES
from .resource import AgentFlow

__all__ = [
    "CHALLENGES",
    "CONTROLLED_POLLS",
    "CONTROLLED_WAIT",
    "JWKS_REFRESH_FLOOR",
    "MAX_CHALLENGE_ROUNDS",
    "MAX_CLARIFICATION_ROUNDS",
    "MAX_METADATA_TTL",
    "PENDING",
    "PENDING_CHALLENGES",
    "POLL_READ_MARGIN",
    "AgentConfig",
    "AgentFlow",
    "CallContext",
    "resource_identifier",
]
