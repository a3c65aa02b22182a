"""The token request kinds: a person token (§Person Token Endpoint) and an auth token
(§PS Token Endpoint, three-party; with R3 documents, draft-hardt-aauth-r3)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ....keys import PublicKey
from ....protocol.errors import ProtocolError
from ....protocol.reply import Reply
from ..pending import PendingRequest
from ..policy import AUTH_TOKEN, PERSON_TOKEN, Decision
from .base import Edits, RequestKind, Terms, Wants, account_of, duration_words, resource_name

if TYPE_CHECKING:
    from ..server.core import AgentContext
    from ..server.issuance import Issuance


class PersonTokenKind(RequestKind):
    """§Person Token Endpoint: a person token for one resource, consent remembered on first
    issuance."""

    name = PERSON_TOKEN
    lists_details = False
    title = "Sign in to a site"
    remembered = "may sign in as you at"

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
        if remember:
            await ps.run(
                ps.state.remember_consent,
                account,
                req.agent_iss,
                req.agent_id,
                req.request["resource"],
                PERSON_TOKEN,
                req.mission_s256,
                (),
                ps.clock(),
            )
        return {}

    async def complete(
        self, ps: Issuance, req: PendingRequest, result: Mapping[str, Any], ctx: AgentContext
    ) -> Reply:
        """§Person Token Response."""
        token, expires_in = await ps.issue_person_token(
            req, account_of(req, result), req.request["resource"], ctx
        )
        return Reply.json(200, {"person_token": token, "expires_in": expires_in})

    def summary(self, req: PendingRequest) -> tuple[str, ...]:
        return (f"The agent asks to be known to {req.request['resource']} as acting for you.",)

    def wants(self, req: PendingRequest) -> Wants:
        return Wants("wants to sign in as you at", resource_name(req))

    def allows(self, req: PendingRequest, terms: Terms) -> tuple[str, ...]:
        name = resource_name(req)
        return (
            f"{name} will know the agent acts for you. It sees an identifier made for you "
            "at this site only, not your password.",
            f"Each sign-in lasts up to {duration_words(terms.person_token)}. It may sign in "
            "again without asking you until you disconnect it from your dashboard.",
        )


class AuthTokenKind(RequestKind):
    """§PS Token Endpoint: an auth token for the scopes of a resource token, which the
    person may narrow (never widen); an R3 document is approved as a whole, each time."""

    name = AUTH_TOKEN
    lists_details = False
    title = "Access to a site"
    remembered = "may use"
    editable = frozenset({"scopes"})

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
        r = req.request
        requested = tuple(r.get("scopes", ()))
        narrowed = overrides.get("scopes") or (decision.scopes if decision else None)
        granted = (
            requested if narrowed is None else tuple(s for s in requested if s in set(narrowed))
        )
        if (remember or narrowed is not None) and not r.get("r3"):
            await ps.run(
                ps.state.remember_consent,
                account,
                req.agent_iss,
                req.agent_id,
                r["resource"],
                AUTH_TOKEN,
                req.mission_s256,
                granted,
                ps.clock(),
            )
        return {"scopes": list(granted)}

    async def complete(
        self, ps: Issuance, req: PendingRequest, result: Mapping[str, Any], ctx: AgentContext
    ) -> Reply:
        """§PS Response: the auth token."""
        token, expires_in = await ps.issue_auth_token(req, account_of(req, result), result, ctx)
        return Reply.json(200, {"auth_token": token, "expires_in": expires_in})

    def edit(self, req: PendingRequest, edits: Edits, now: float) -> dict[str, Any]:
        if edits.scopes is None:
            return {}
        return {"scopes": [s for s in edits.scopes if s in req.request.get("scopes", ())]}

    async def update(
        self, ps: Issuance, req: PendingRequest, ctx: AgentContext, data: Mapping[str, Any]
    ) -> PendingRequest:
        """§Updated Request: a new resource token from the same resource for the same key."""
        subject = PublicKey.from_jwk(req.subject_jwk)
        rt = await ps.verify_resource_token(
            str(data["resource_token"]), ctx, subject, req.account, req.subagent
        )
        if rt.iss != req.request["resource"]:
            raise ProtocolError(
                "the updated resource token is from another resource", code="invalid_resource_token"
            )
        if rt.mission_s256 != req.mission_s256:
            raise ProtocolError(
                "the updated resource token names another mission", code="invalid_resource_token"
            )
        ps.check_scopes(rt, req.resource)
        justification = data.get("justification")
        params = replace(
            req.params,
            justification=justification
            if isinstance(justification, str)
            else req.params.justification,
        )
        conversation = req.conversation
        question = req.open_question
        if question is not None:
            conversation = (
                *conversation[:-1],
                {
                    **question,
                    "answer": justification or "",
                    "updated_request": True,
                    "answered_at": ps.clock(),
                },
            )
        return req.evolve(
            request=await ps.token_request_members(rt), params=params, conversation=conversation
        )

    def wants(self, req: PendingRequest) -> Wants:
        return Wants("wants access to", resource_name(req))

    def allows(self, req: PendingRequest, terms: Terms) -> tuple[str, ...]:
        name = resource_name(req)
        r3 = req.request.get("r3")
        lasts = duration_words(terms.auth_token)
        if isinstance(r3, Mapping) and r3.get("per_call"):
            return (f"Approving lets the agent make this one call at {name}, once.",)
        if isinstance(r3, Mapping):  # approved as a whole, each time (never remembered)
            return (
                f"Approving lets the agent do what {name} describes on this page, as you.",
                f"Its access lasts up to {lasts}. It asks you again next time.",
            )
        return (
            f"Approving lets the agent use {name} as you, only for what this page lists.",
            f"Its access lasts up to {lasts} at a time. It may renew it without asking you "
            "again until you disconnect it from your dashboard.",
        )

    def summary(self, req: PendingRequest) -> tuple[str, ...]:
        r = req.request
        lines = [f"The agent asks for access to {r['resource']}."]
        if r.get("scopes"):
            lines.append("Scopes: " + " ".join(r["scopes"]))
        return tuple(lines)


__all__ = ["AuthTokenKind", "PersonTokenKind"]
