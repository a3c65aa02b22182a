"""Verifying what agents send the PS: the request signature with the agent token in
``Signature-Key`` (§Verification, §Agent Token Verification), sub-agent tokens
(§Parent-Mediated Authorization, §Single-Level Depth), resource tokens (§Resource Token
Verification steps 1-7) and their scopes (§Scopes), and the R3 documents they reference
(draft-hardt-aauth-r3 §R3 Processing, §Hash Verification)."""

from __future__ import annotations

import asyncio
import hmac
from typing import Any

import httpx

from ....httpsig import SAFE_METHODS, HttpRequest, VerifiedSignature
from ....keys import PublicKey
from ....protocol.errors import (
    AAuthError,
    InvalidJWTError,
    InvalidSignatureError,
    ProtocolError,
    TokenError,
)
from ....protocol.r3 import MAX_DOCUMENT_BYTES, parse_r3_document, r3_s256
from ....protocol.scopes import IDENTITY_SCOPES
from ....protocol.wire import WireFormatError
from ....tokens import AgentToken, ResourceToken, averify_agent_token, averify_resource_token
from .. import events as ev
from ..policy import ResourceInfo
from ..state import IssuedPersonToken
from .core import AgentContext, log
from .missions import Missions

_SEEN_CACHE = 4096


def _resource_request(rt: ResourceToken) -> dict[str, Any]:
    return {
        "resource": rt.iss,
        "sub": rt.sub,
        "scopes": list(rt.scopes),
        "account": rt.account,
        "tenant": rt.tenant,
        "presented_jti": rt.presented_jti,
        "rt_jti": rt.jti,
    }


class Verification(Missions):
    """Every check an incoming request and the tokens it carries must pass."""

    async def verify_agent(self, request: HttpRequest, *, replay: bool = True) -> AgentContext:
        """§Verification with the agent token in Signature-Key; refuses revoked agent tokens,
        sub-agents (§Single-Level Depth) and, unless ``replay`` is false, replays
        (:meth:`_fresh`)."""
        verified = await self.verifier.averify(request, self._resolve_agent_token)
        token = verified.context
        assert isinstance(token, AgentToken)
        now = self.clock()
        revoked = await self.run(self.revocations.is_revoked, now=now, token=(token.iss, token.jti))
        if revoked is not None:
            self.tokens.forget(token=(token.iss, token.jti))
            raise InvalidJWTError("the agent token has been revoked")
        if token.parent_agent is not None:
            raise ProtocolError(
                "a sub-agent never calls the person server: its parent requests on its behalf",
                code="invalid_agent_token",
            )
        if replay:
            await self._fresh(request, verified, token.sub)
        key = (token.iss, token.jti)
        with self._seen_lock:
            seen = key in self._seen
        if not seen:
            await self.run(
                self.state.remember_agent_token, token.iss, token.jti, token.sub, float(token.exp)
            )
            with self._seen_lock:
                self._seen[key] = None
                while len(self._seen) > _SEEN_CACHE:
                    self._seen.popitem(last=False)
        return AgentContext(token, verified.public_key, verified.thumbprint)

    async def _fresh(self, request: HttpRequest, verified: VerifiedSignature, agent: str) -> None:
        """§Freshness and Replay: a state-changing request -- a mission, permission, audit
        or interaction request, an answer to or withdrawal of a pending request -- is
        refused when its signature was seen within the window: a replay changes nothing
        (writes no second log entry). The cache (:attr:`replay`) lives in the database every
        worker shares, so a replay to another worker is refused too. Polls (``GET``) are
        safe. The token endpoints keep no cache: what they give is bound to the agent's key
        (useless to whoever replays it), a resource token is spent once, and an agent run as
        several processes on one key may well send the same person-token request twice in a
        second, as different requests (Ed25519 signatures are deterministic)."""
        if request.method.upper() in SAFE_METHODS:
            return
        fresh = await self.run(
            self.replay.check_and_store,
            verified.replay_key,
            verified.created + self.config.signature_window,
        )
        if not fresh:
            self.emit(ev.REJECTED, agent=agent, detail={"reason": "replay"})
            raise InvalidSignatureError("the signature has been seen before")

    async def subagent(self, ctx: AgentContext, subagent_token: str | None) -> AgentToken | None:
        """§Parent-Mediated Authorization: the sub-agent's token verified, naming the signer
        as its ``parent_agent``."""
        if subagent_token is None:
            return None
        try:
            sub = await averify_agent_token(
                subagent_token, keys=self.issuer_keys, signing_key=None, clock=self.clock
            )
        except TokenError as exc:
            raise ProtocolError(f"subagent_token: {exc.detail}", code=exc.code) from exc
        if sub.parent_agent is None:
            raise ProtocolError(
                "subagent_token is not a sub-agent's token (no parent_agent)",
                code="invalid_agent_token",
            )
        if sub.parent_agent != ctx.agent_id:
            raise ProtocolError(
                "subagent_token's parent_agent is not the signing agent", code="invalid_agent_token"
            )
        revoked = await self.run(
            self.revocations.is_revoked, now=self.clock(), token=(sub.iss, sub.jti)
        )
        if revoked is not None:
            raise ProtocolError("subagent_token has been revoked", code="invalid_agent_token")
        return sub

    async def verify_resource_token(
        self,
        token: str,
        ctx: AgentContext,
        subject: PublicKey,
        account: str | None,
        subagent: str | None,
    ) -> ResourceToken:
        """§Resource Token Verification steps 1-7 at this PS."""
        try:
            rt = await averify_resource_token(
                token,
                keys=self.issuer_keys,
                audience=self.issuer,
                agent_jkt=subject.thumbprint(),
                clock=self.clock,
                max_lifetime=self.config.resource_token_max_lifetime,
            )
        except TokenError as exc:
            raise ProtocolError(exc.detail, code=exc.code) from exc
        record = await self.run(self.state.person_token, rt.presented_jti, self.clock())
        if record is None:
            raise ProtocolError(
                "the resource token names a person token this PS has no record of",
                code="unknown_person_token",
            )
        self._check_against_record(rt, record, ctx)
        if record.requested_by != ctx.agent_id or record.agent_id != (subagent or ctx.agent_id):
            raise ProtocolError(
                "the person token it names was issued to another agent",
                code="invalid_resource_token",
            )
        if account is None or record.account != account:
            raise ProtocolError(
                "the person token it names is not this agent's person's",
                code="invalid_resource_token",
            )
        if rt.mission_s256 is not None:
            await self.owned_mission(ctx.iss, ctx.agent_id, rt.mission_s256)
        return rt

    def _check_against_record(
        self, rt: ResourceToken, record: IssuedPersonToken, ctx: AgentContext
    ) -> None:
        """§Resource Token Verification: the resource token agrees with the record of the
        person token it names (a mismatch is tampering, e.g. a mission stripped)."""
        mismatches = [
            name
            for name, token_value, recorded in (
                ("ps", rt.ps, self.issuer),
                ("sub", rt.sub, record.sub),
                ("mission_s256", rt.mission_s256, record.mission_s256),
                ("tenant", rt.tenant, record.tenant),
                ("iss", rt.iss, record.aud),
            )
            if token_value != recorded
        ]
        if mismatches:
            log.warning(
                "resource token from %s disagrees with person token record on %s: "
                "possible tampering (e.g. mission stripping)",
                rt.iss,
                mismatches,
            )
            self.emit(
                ev.TAMPERING,
                agent=ctx.agent_id,
                resource=rt.iss,
                jti=rt.presented_jti,
                detail={"mismatch": mismatches},
            )
            raise ProtocolError(
                f"the resource token disagrees with the person token it names: {mismatches}",
                code="invalid_resource_token",
            )

    def check_scopes(self, rt: ResourceToken, info: ResourceInfo | None) -> None:
        """§Scopes: identity scopes this PS supports, resource scopes its metadata
        describes."""
        supported = set(self.config.scopes_supported)
        unsupported = [s for s in rt.scopes if s in IDENTITY_SCOPES and s not in supported]
        if unsupported:
            raise ProtocolError(
                f"identity scopes this PS does not support: {unsupported}", code="invalid_scope"
            )
        if info is not None and info.scope_descriptions:
            undefined = [
                s
                for s in rt.scopes
                if s not in IDENTITY_SCOPES and s not in info.scope_descriptions
            ]
            if undefined:
                raise ProtocolError(
                    f"scopes the resource's metadata does not describe: {undefined}",
                    code="invalid_scope",
                )

    # -- R3 documents (draft-hardt-aauth-r3, exploratory) ---------------------------------------

    async def _read_bounded(self, url: str) -> bytes:
        headers = self._signed_headers(HttpRequest("GET", url))
        async with self._client().stream(
            "GET", url, headers={"accept": "application/json", **headers}
        ) as response:
            if response.status_code != 200:
                raise ProtocolError(
                    f"r3_uri answered {response.status_code}", code="invalid_resource_token"
                )
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > MAX_DOCUMENT_BYTES:
                    raise ProtocolError(
                        f"the R3 document exceeds {MAX_DOCUMENT_BYTES} bytes",
                        code="invalid_resource_token",
                    )
                chunks.append(chunk)
        return b"".join(chunks)

    async def fetch_r3(self, rt: ResourceToken) -> dict[str, Any] | None:
        """The R3 document ``rt`` references, for consent (R3 §R3 Processing: the PS reads
        ``display``), or ``None`` when it references none.

        Fetched from ``r3_uri`` -- on the resource's own origin (checked when the token was
        verified), admitted by egress policy, signed by this PS (R3 §R3 Document Access
        Restriction), without redirects, within ``r3_timeout`` seconds and
        :data:`~aauth_agents.protocol.r3.MAX_DOCUMENT_BYTES` -- then its SHA-256 over the
        bytes received compared with ``r3_s256`` (R3 §Hash Verification) and parsed as
        untrusted input. Any failure refuses the resource token (``invalid_resource_token``):
        without the document the person cannot be told what they approve. Not cached: a
        per-call proposal is read once, and a class document's fetch is cheap."""
        if rt.r3_uri is None or rt.r3_s256 is None:
            return None
        url = rt.r3_uri
        try:
            if self.discovery is not None:
                await self.discovery.egress.aadmit(url)
            body = await asyncio.wait_for(self._read_bounded(url), self.config.r3_timeout)
        except ProtocolError:
            raise
        except (AAuthError, httpx.HTTPError, OSError, asyncio.TimeoutError) as exc:
            log.warning("cannot fetch the R3 document of %s: %s", rt.iss, exc)
            raise ProtocolError(
                "the R3 document at r3_uri could not be fetched", code="invalid_resource_token"
            ) from exc
        if not hmac.compare_digest(r3_s256(body), rt.r3_s256):
            self.emit(ev.TAMPERING, resource=rt.iss, jti=rt.jti, detail={"mismatch": ["r3_s256"]})
            raise ProtocolError(
                "the R3 document does not match the resource token's r3_s256",
                code="invalid_resource_token",
            )
        try:
            document = parse_r3_document(body)
        except WireFormatError as exc:
            raise ProtocolError(
                f"the R3 document is malformed: {exc.detail}", code="invalid_resource_token"
            ) from exc
        return {
            "uri": url,
            "s256": rt.r3_s256,
            "vocabulary": document.vocabulary,
            "operations": [dict(o) for o in document.operations],
            "display": document.display.to_json() if document.display else None,
            "account": document.account,
            "parameters": document.parameters,
            "per_call": document.per_call,
        }

    async def token_request_members(self, rt: ResourceToken) -> dict[str, Any]:
        """What a pending auth-token request keeps of its resource token (and R3 document)."""
        members = _resource_request(rt)
        r3 = await self.fetch_r3(rt)
        if r3 is not None:
            members["r3"] = r3
        return members


__all__ = ["Verification"]
