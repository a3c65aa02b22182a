"""The person server's protocol core: every PS endpoint of draft-hardt-oauth-aauth-protocol-11.

:class:`PersonServer` holds the state (SQLite), the signing keys and the consent policy, and
answers requests given as :class:`~aauth_agents.httpsig.HttpRequest` with a
:class:`~aauth_agents.servers.person_server.pending.Reply`. The ASGI layer
(:mod:`..app`) only moves bytes; the person's side (sign-in, consent page, dashboard) is built
on :attr:`PersonServer.interactions` and :attr:`PersonServer.accounts`.

Endpoints (§Person Server Metadata):

* ``/person`` -- §Person Token Endpoint: a directed ``sub`` per resource, mission checks,
  ``subagent_token``, consent on first issuance, retention of every issued token's record;
* ``/token`` -- §PS Token Endpoint (three-party): §Resource Token Verification steps 1-7,
  scope never broader than the resource token's, identity claims for identity scopes,
  parent-mediated sub-agent requests and the single-level rule; a resource token carrying
  ``r3_uri`` / ``r3_s256`` (R3, exploratory) makes the PS fetch that document signed as
  itself, verify its hash over the bytes received, show its ``display`` on the consent page
  and, approved, issue a token echoing ``r3_uri`` / ``r3_s256`` with the document's
  operations in ``r3_granted`` (:meth:`PersonServer.fetch_r3`);
* ``/pending/{id}`` -- §Deferred Responses: ``GET`` (``Prefer: wait``), ``POST``
  (clarification response, updated request), ``DELETE`` (withdraw);
* ``/mission`` and ``/mission/{s256}`` -- §Mission: propose, update, complete;
* ``/permission``, ``/audit``, ``/interaction`` -- §Permission/Audit/Interaction Endpoint;
* ``/revoke`` -- §Token Revocation: an agent provider revokes an agent token, and the PS
  revokes the auth tokens it issued for that agent at each resource.

Every request is verified per §Verification (``content-type`` and ``content-digest`` covered
on bodies) with the agent token in ``Signature-Key``; a revoked agent token is refused. A
request signed by a sub-agent is refused everywhere (§Single-Level Depth, §Parent-Mediated
Authorization: a sub-agent never calls the PS itself).

The class is assembled from layers, each a module of this package and each building only on
those before it:

=====================  ===================================================================
:mod:`.core`           state, stores, keys, policy, events, bindings, others' metadata
:mod:`.housekeeping`   purging expired records in the background
:mod:`.revocation`     revoking agent and auth tokens, notifying resources
:mod:`.missions`       the mission log and lifecycle
:mod:`.verification`   agent, sub-agent and resource tokens; scopes; R3 documents
:mod:`.issuance`       minting person and auth tokens
:mod:`.outcomes`       apply / complete / refuse, dispatched to the request kind
:mod:`.deferred`       pending records, ``202`` replies, polling
:mod:`.decisions`      policy + remembered consent -> now or pending
:mod:`.endpoints`      the thin ``handle_*`` endpoint handlers
=====================  ===================================================================

What each kind of request (person token, auth token, mission, permission, question, ...)
does when approved, answers, lets the person edit and shows on the consent page lives in
its class in :mod:`..kinds`.
"""

from __future__ import annotations

from typing import Any

from ..config import PersonServerConfig
from ..formats import iso8601
from ..interactions import Interactions
from .core import AgentContext, AgentTokenRevocation, RevocationReport
from .endpoints import Endpoints


class PersonServer(Endpoints):
    """A persistent AAuth person server. See the module docstring; build the ASGI app with
    :meth:`app` or :func:`~aauth_agents.servers.person_server.create_person_server`."""

    def __init__(self, config: PersonServerConfig) -> None:
        super().__init__(config)
        self.interactions = Interactions(self)

    def app(self) -> Any:
        """The ASGI app serving every endpoint (see :mod:`..app`)."""
        from ..app import create_person_server

        return create_person_server(self)


__all__ = [
    "AgentContext",
    "AgentTokenRevocation",
    "PersonServer",
    "RevocationReport",
    "iso8601",
]
