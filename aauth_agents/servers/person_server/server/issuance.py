"""Issuance: minting person tokens (§Person Token Structure) and auth tokens (§Auth Token
Structure; R3 §Auth Token Extensions), bound to the key of the agent (or sub-agent) that
asked, never outliving the agent token presenting the request nor the mission, recorded for
revocation and resource token verification, and logged with the mission."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

from ....keys import PublicKey
from ....protocol.errors import ProtocolError
from ....protocol.scopes import IDENTITY_SCOPES
from ....tokens import mint_auth_token, mint_person_token
from .. import events as ev
from ..pending import PendingRequest
from ..state import IssuedAuthToken, IssuedPersonToken
from .core import AgentContext
from .verification import Verification


def _claim_exp(token: str) -> int:
    from ....tokens import peek

    _, claims = peek(token)
    return int(claims["exp"])


def _r3_pin(r3: Mapping[str, Any]) -> dict[str, Any]:
    """R3 §Auth Token Extensions: the document approved, its operations granted (a per-call
    proposal's one operation: R3 §Per-Call Proposals, Flow step 2)."""
    if not r3:
        return {}
    return {
        "r3_uri": r3["uri"],
        "r3_s256": r3["s256"],
        "r3_granted": {"vocabulary": r3["vocabulary"], "operations": r3["operations"]},
    }


class Issuance(Verification):
    """:meth:`issue_person_token` and :meth:`issue_auth_token`."""

    def _not_after(self, req: PendingRequest, ctx: AgentContext) -> float:
        bound = ctx.exp
        if req.subagent_exp is not None:
            bound = min(bound, req.subagent_exp)
        return bound

    async def _mission_bound(self, req: PendingRequest, s256: str | None) -> float | None:
        if s256 is None:
            return None
        mission = await self.owned_mission(req.agent_iss, req.agent_id, s256)
        return mission.expires_at

    async def issue_person_token(
        self,
        req: PendingRequest,
        account: str,
        resource: str,
        ctx: AgentContext,
        *,
        mission: str | None = None,
    ) -> tuple[str, int]:
        """§Person Token Endpoint: a person token for ``resource`` with a directed ``sub``,
        and its ``expires_in``."""
        s256 = mission if mission is not None else req.mission_s256
        mission_expires = await self._mission_bound(req, s256)
        acct = await self.account(account)
        if acct is None:
            raise ProtocolError("the person's account is gone", code="server_error")
        now = self.clock()
        sub = await self.run(self.state.directed_sub, account, resource, now)
        jti = secrets.token_urlsafe(16)
        subject = PublicKey.from_jwk(req.subject_jwk)
        await self.fresh_keys()
        token = mint_person_token(
            self.keys.current,
            iss=self.issuer,
            aud=resource,
            sub=sub,
            cnf=subject,
            not_after=self._not_after(req, ctx),
            mission_s256=s256,
            mission_expires_at=mission_expires,
            tenant=acct.tenant,
            lifetime=self.config.person_token_lifetime,
            jti=jti,
            clock=self.clock,
        )
        iat = int(now)
        exp = _claim_exp(token)
        record = IssuedPersonToken(
            jti=jti,
            aud=resource,
            sub=sub,
            account=account,
            agent_id=req.subagent or req.agent_id,
            requested_by=req.agent_id,
            mission_s256=s256,
            tenant=acct.tenant,
            iat=iat,
            exp=exp,
        )
        await self._record_person_token(req, record)
        return token, exp - iat

    async def _record_person_token(self, req: PendingRequest, record: IssuedPersonToken) -> None:
        """Keep the issued token's record (resource token verification needs it for as long
        as a resource token naming it may live), log it with the mission and report it."""
        await self.run(
            self.state.record_person_token,
            record,
            record.exp + self.config.resource_token_max_lifetime,
        )
        if record.mission_s256:
            await self.log_mission(
                record.mission_s256,
                "person_token",
                {
                    "resource": record.aud,
                    "jti": record.jti,
                    "justification": req.params.justification,
                },
            )
        self.emit(
            ev.ISSUED_PERSON_TOKEN,
            agent=record.agent_id,
            account=record.account,
            resource=record.aud,
            mission=record.mission_s256,
            jti=record.jti,
        )

    async def issue_auth_token(
        self, req: PendingRequest, account: str, result: Mapping[str, Any], ctx: AgentContext
    ) -> tuple[str, int]:
        """§PS Response: an auth token for the granted scopes (identity claims for identity
        scopes), and its ``expires_in``."""
        r = req.request
        mission_expires = await self._mission_bound(req, req.mission_s256)
        acct = await self.account(account)
        if acct is None:
            raise ProtocolError("the person's account is gone", code="server_error")
        scopes = tuple(result.get("scopes", r.get("scopes", ())))
        claims = acct.released_claims(tuple(s for s in scopes if s in IDENTITY_SCOPES))
        jti = secrets.token_urlsafe(16)
        now = self.clock()
        r3 = r.get("r3") or {}
        await self.fresh_keys()
        token = mint_auth_token(
            self.keys.current,
            iss=self.issuer,
            aud=r["resource"],
            ps=self.issuer,
            sub=r["sub"],
            cnf=PublicKey.from_jwk(req.subject_jwk),
            scope=scopes or None,
            account=r.get("account"),
            mission_s256=req.mission_s256,
            mission_expires_at=mission_expires,
            tenant=r.get("tenant"),
            not_after=self._not_after(req, ctx),
            lifetime=self.config.auth_token_lifetime,
            jti=jti,
            clock=self.clock,
            extra=claims or None,
            **_r3_pin(r3),
        )
        iat = int(now)
        exp = _claim_exp(token)
        await self.run(
            self.state.record_auth_token,
            IssuedAuthToken(
                jti=jti,
                aud=r["resource"],
                sub=r["sub"],
                account=account,
                agent_id=req.subagent or req.agent_id,
                requested_by=req.agent_id,
                mission_s256=req.mission_s256,
                scope=" ".join(scopes) or None,
                iat=iat,
                exp=exp,
            ),
        )
        await self._log_auth_token(req, account, scopes, jti, r3)
        return token, exp - iat

    async def _log_auth_token(
        self,
        req: PendingRequest,
        account: str,
        scopes: tuple[str, ...],
        jti: str,
        r3: Mapping[str, Any],
    ) -> None:
        resource = req.request["resource"]
        if req.mission_s256:
            await self.log_mission(
                req.mission_s256,
                "auth_token",
                {
                    "resource": resource,
                    "scope": " ".join(scopes),
                    "jti": jti,
                    "justification": req.params.justification,
                    "r3_uri": r3.get("uri"),
                    "r3_s256": r3.get("s256"),
                },
            )
        self.emit(
            ev.ISSUED_AUTH_TOKEN,
            agent=req.subagent or req.agent_id,
            account=account,
            resource=resource,
            mission=req.mission_s256,
            jti=jti,
            detail={
                "scope": " ".join(scopes),
                **({"r3_uri": r3["uri"], "r3_s256": r3["s256"]} if r3 else {}),
            },
        )


__all__ = ["Issuance"]
