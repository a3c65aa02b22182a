"""Revocation (§Token Revocation): refusing a revoked agent token, revoking the auth tokens
issued for an agent (or a mission, or an unbound agent) and telling each resource at its
``revocation_endpoint``, signed as this PS."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import httpx

from ....httpsig import HttpRequest, KeyResolution, SignatureKey
from ....protocol.errors import AAuthError, InvalidKeyError
from ....protocol.identifiers import validate_server_identifier
from ....tokens import AGENT_TOKEN_MAX_LIFETIME, DWK_AGENT
from .. import events as ev
from ..formats import compact
from ..state import IssuedAuthToken
from .core import AgentTokenRevocation, RevocationReport, log
from .housekeeping import Housekeeping


class Revocation(Housekeeping):
    """Revoking agent tokens, bindings and auth tokens, and notifying resources."""

    async def unbind_agent(self, agent_id: str, *, issuer: str | None = None) -> RevocationReport:
        """Revoke an agent's binding: it can obtain nothing more until a person binds it again,
        and the auth tokens issued for it are revoked at their resources (§Agent-Person
        Binding, §Token Revocation)."""
        from ....protocol.identifiers import agent_domain

        iss = issuer or f"https://{agent_domain(agent_id)}"
        binding = await self.run(self.state.unbind, iss, agent_id)
        if binding is not None:
            self.emit(ev.UNBOUND, agent=agent_id, account=binding.account)
        tokens = await self.run(self.state.live_auth_tokens_for_agent, agent_id, self.clock())
        return await self.revoke_auth_tokens(tokens)

    async def _jwks_uri_resolver(self, signature_key: SignatureKey) -> KeyResolution:
        """§Token Revocation: the revocation request is signed by the agent provider
        (``Signature-Key: sig=jwks_uri; dwk="aauth-agent.json"``)."""
        params = signature_key.params
        issuer, dwk, kid = params.get("id"), params.get("dwk"), params.get("kid")
        try:
            issuer = validate_server_identifier(issuer)
        except ValueError as exc:
            raise InvalidKeyError(f"jwks_uri id: {exc}") from exc
        if dwk != DWK_AGENT:
            raise InvalidKeyError("only agent providers revoke tokens at this PS")
        key = await self.issuer_keys.aget_key(issuer, str(dwk), str(kid))
        return KeyResolution(jwk=key.to_jwk(), context=issuer)

    async def revoke_agent_token(self, iss: str, jti: str) -> AgentTokenRevocation:
        """Refuse agent token ``(iss, jti)`` from now on and revoke every auth token this PS
        issued for its agent at the resources they were issued for."""
        now = self.clock()
        agent_id = await self.run(self.state.seen_agent_token, iss, jti)
        await self.run(self.revocations.revoke_token, iss, jti, now + AGENT_TOKEN_MAX_LIFETIME)
        self.tokens.forget(token=(iss, jti))
        if agent_id is None:
            log.info("revocation of an agent token this PS never saw (%s)", iss)
            return AgentTokenRevocation(iss, jti, False, None, RevocationReport())
        self.emit(ev.REVOKED, agent=agent_id, jti=jti, detail={"token": "agent", "iss": iss})
        tokens = await self.run(self.state.live_auth_tokens_for_agent, agent_id, now)
        report = await self.revoke_auth_tokens(tokens)
        return AgentTokenRevocation(iss, jti, True, agent_id, report)

    async def retry_revocations(self) -> RevocationReport:
        """Tell resources again about revoked tokens they have not acknowledged."""
        tokens = await self.run(self.state.unnotified_revocations, self.clock())
        return await self._notify_revocations(tokens, tuple(t.jti for t in tokens))

    async def revoke_auth_tokens(self, tokens: Sequence[IssuedAuthToken]) -> RevocationReport:
        """Mark ``tokens`` revoked and notify their resources (those not revoked before)."""
        if not tokens:
            return RevocationReport()
        newly = await self.run(self.state.mark_revoked, [t.jti for t in tokens], self.clock())
        fresh = [t for t in tokens if t.jti in set(newly)]
        for token in fresh:
            self.emit(
                ev.REVOKED,
                agent=token.agent_id,
                account=token.account,
                resource=token.aud,
                mission=token.mission_s256,
                jti=token.jti,
                detail={"token": "auth"},
            )
        return await self._notify_revocations(fresh, tuple(newly))

    async def _notify_revocations(
        self, tokens: Sequence[IssuedAuthToken], revoked: tuple[str, ...]
    ) -> RevocationReport:
        results = await asyncio.gather(*(self._notify_one(t) for t in tokens))
        notified = tuple(t.jti for t, error in zip(tokens, results, strict=True) if error is None)
        failed = {
            t.jti: error for t, error in zip(tokens, results, strict=True) if error is not None
        }
        return RevocationReport(revoked=revoked, notified=notified, failed=failed)

    async def _notify_one(self, token: IssuedAuthToken) -> str | None:
        """POST ``{iss, jti}`` to the resource's revocation endpoint, signed by this PS
        (``Signature-Key: sig=jwks_uri; id=<PS>; dwk="aauth-person.json"``)."""
        error: str | None = None
        try:
            info = await self.resource_info(token.aud)
            endpoint = info.revocation_endpoint if info else None
            if endpoint is None:
                error = "the resource publishes no revocation_endpoint"
            else:
                if self.discovery is not None:
                    await self.discovery.egress.aadmit(endpoint)
                body = compact({"iss": self.issuer, "jti": token.jti})
                outgoing = HttpRequest("POST", endpoint, {"content-type": "application/json"}, body)
                headers = self._signed_headers(outgoing)
                response = await asyncio.wait_for(
                    self._client().post(
                        endpoint,
                        content=body,
                        headers={"content-type": "application/json", **headers},
                    ),
                    self.config.revocation_timeout,
                )
                if response.status_code not in (200, 204, 404):
                    error = f"the resource answered {response.status_code}"
        except (AAuthError, httpx.HTTPError, OSError, asyncio.TimeoutError) as exc:
            error = f"{type(exc).__name__}: {exc}"
        await self.run(self.state.mark_notified, token.jti, self.clock(), error)
        if error is None:
            self.emit(ev.REVOCATION_SENT, resource=token.aud, jti=token.jti)
        else:
            log.warning("revocation of an auth token at %s failed: %s", token.aud, error)
        return error


__all__ = ["Revocation"]
