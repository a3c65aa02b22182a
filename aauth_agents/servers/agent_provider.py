"""An agent provider server (§Agent Token, §Sub-Agents, §Token Revocation): enrolment of an
agent's key, agent and sub-agent tokens, metadata, JWKS, and the revocation call to the PS.

It builds on :class:`~aauth_agents.agent.provider.LocalAgentProvider` (which mints the tokens
and enforces the identifier rules) and keeps what it must remember in SQLite (a data
directory, or ``":memory:"``; :mod:`.agent_provider_store`)::

    ap = AgentProviderServer(AgentProviderConfig(
        issuer="https://agent.example", ps="https://ps.example", database="/var/lib/aauth-ap"))
    code = ap.create_enrollment("aauth:assistant@agent.example")   # the operator hands it over
    app = ap.app()                                                 # ASGI

The enrolment ceremony (§Agent Token Acquisition leaves it to the platform) is deliberately
small:

* ``POST /enroll`` -- body ``{"code": "..."}``, signed by the agent's *new* key with
  ``Signature-Key: sig=hwk`` (the key inline), covering ``@method @authority @path
  content-type content-digest signature-key``. The one-time code, created by the operator for
  one agent identifier and valid for ``enrollment_lifetime`` seconds, authorizes binding that
  identifier to the key that signed. Answer: ``{"agent_id", "agent_token", "expires_in"}``.
No replay cache is kept: a replayed enrolment finds its code spent, and a replayed refresh
yields a token bound to a key only the agent holds.

* ``POST /token`` -- refresh: signed by the same key presenting its current (unexpired) agent
  token from this provider (``scheme=jwt``); a new token for the same identifier and key,
  as long as the agent is not revoked and the key is the one enrolled.
* ``POST /subagent`` -- body ``{"name": DISCRIMINATOR, "jwk": PUBLIC_JWK}``, signed by a
  top-level agent with its agent token: a sub-agent ``aauth:LOCAL+NAME@domain`` bound to that
  key, with ``parent_agent`` (§Sub-Agents; sub-agents never have sub-agents). The parent
  vouches for the key; the sub-agent refreshes its own token at ``POST /token``.

:meth:`AgentProviderServer.revoke_agent` stops issuing for an agent (and its sub-agents) and
calls the ``revocation_endpoint`` of the PS named in each unexpired token (§Token Revocation):
``POST`` with body ``{"iss", "jti"}``, signed by the provider's key with
``Signature-Key: sig=jwks_uri; id=ISSUER; dwk="aauth-agent.json"; kid=KID``.

:class:`AgentProviderClient` is the agent's side: :meth:`~AgentProviderClient.enroll` returns
an :class:`~aauth_agents.agent.identity.AgentIdentity` whose token is refreshed at
``/token`` before it expires.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..agent.identity import AgentIdentity
from ..agent.provider import JWKS_PATH, WELL_KNOWN_PATH, LocalAgentProvider
from ..clock import Clock, Every, system_clock
from ..httpsig import (
    HttpRequest,
    SignatureKey,
    SignatureVerifier,
    sign_request,
)
from ..keys import PrivateKey, PublicKey
from ..protocol.encoding import loads_json_object
from ..protocol.errors import AAuthError, ConfigurationError, ProtocolError
from ..protocol.identifiers import validate_server_identifier
from ..resource.body import BodyTooLarge, read_body
from ..tokens import DWK_AGENT, TYP_AGENT, StaticIssuerKeys, async_token_key_resolver, peek
from ..tokens.types import AgentToken
from ..transport import AsyncMappedTransport
from .agent_provider_store import (
    AgentRecord,
    RevocationOutcome,
    RevocationResult,
    open_database,
)
from .home import HomePage, Item, Section

log = logging.getLogger("aauth_agents.servers.agent_provider")

ENROLL_PATH = "/enroll"
TOKEN_PATH = "/token"  # noqa: S105 - a path, not a secret
SUBAGENT_PATH = "/subagent"
DATABASE_FILE = "ap.sqlite3"
KEY_FILE = "provider-key.jwk"
PS_METADATA = "aauth-person.json"

#: Enrol (or re-enrol, after a revocation) an agent: its record, unrevoked.
_UPSERT_AGENT = (
    "INSERT INTO ap_agents VALUES (?, ?, ?, ?, ?, ?, NULL) ON CONFLICT (agent_id) DO UPDATE "
    "SET jkt = excluded.jkt, jwk = excluded.jwk, ps = excluded.ps, parent = excluded.parent, "
    "created = excluded.created, revoked = NULL"
)

#: How long past its ``exp`` an agent token's record is kept (beyond any verifier's leeway).
_TOKEN_RECORD_GRACE = 300


@dataclass
class AgentProviderConfig:
    """Everything an :class:`AgentProviderServer` needs.

    * ``issuer`` -- the provider's identifier (``https://agent.example``); agent identifiers
      it issues are ``aauth:LOCAL@agent.example``.
    * ``database`` -- a directory (``ap.sqlite3`` and the signing key inside),
      ``":memory:"`` (a fresh key each run), or a ``postgresql://`` URL (several provider
      processes share it and the signing key kept in it; the ``postgres`` extra).
    * ``signing_key`` -- the provider key (needs a ``kid``); omitted, it is generated (and
      kept in the data directory).
    * ``ps`` -- the person server written into tokens when an enrolment names none.
    * ``connect`` -- where connections for an origin go (``{"https://ps.example":
      "http://127.0.0.1:8123"}``, the CLI's ``--map``; an ASGI app also works): used for
      the PS metadata fetch and the revocation call, a fresh client per revocation. What is
      signed is unchanged.
    """

    issuer: str
    database: str | os.PathLike[str] = ":memory:"
    signing_key: PrivateKey | None = None
    ps: str | None = None
    name: str | None = "aauth-agents agent provider"
    lifetime: int = 3600
    enrollment_lifetime: int = 900
    connect: Mapping[str, Any] = field(default_factory=dict)
    clock: Clock = system_clock
    signature_window: int = 60
    max_body: int = 64 * 1024
    revocation_timeout: float = 10.0
    #: Seconds between housekeeping passes (:meth:`AgentProviderServer.purge`), made by the
    #: first request after one is due; 0: never.
    purge_interval: float = 600.0

    def __post_init__(self) -> None:
        try:
            self.issuer = validate_server_identifier(self.issuer)
            if self.ps is not None:
                self.ps = validate_server_identifier(self.ps)
        except ValueError as exc:
            raise ConfigurationError(str(exc)) from exc
        if self.purge_interval < 0:
            raise ConfigurationError("purge_interval must be 0 (off) or positive")
        if self.enrollment_lifetime <= 0:
            raise ConfigurationError("enrollment_lifetime must be positive")


def _problem(error: AAuthError) -> Response:
    status, headers, body = error.to_response()
    return Response(body, status_code=status, headers=headers)


class AgentProviderServer:
    """The agent provider: see the module docstring. ``provider`` is the
    :class:`LocalAgentProvider` that mints; ``app()`` the ASGI app."""

    def __init__(self, config: AgentProviderConfig) -> None:
        self.config = config
        self.clock = config.clock
        self.db, key = open_database(
            os.fspath(config.database), config.signing_key, DATABASE_FILE, KEY_FILE
        )
        self.provider = LocalAgentProvider(
            config.issuer,
            key,
            ps=config.ps,
            clock=config.clock,
            lifetime=config.lifetime,
            name=config.name,
        )
        self._own_keys = StaticIssuerKeys().add(config.issuer, DWK_AGENT, key.public_key)
        self._purges = Every(self.clock, config.purge_interval)

    @property
    def issuer(self) -> str:
        return self.provider.issuer

    def close(self) -> None:
        self.db.close()

    def purge(self) -> int:
        """Forget expired enrolment codes and the records of agent tokens that expired more
        than :data:`_TOKEN_RECORD_GRACE` seconds ago (no verifier accepts them any more, so
        neither a refresh nor a revocation needs them); returns how many."""
        now = self.clock()
        counts = self.db.transaction(
            [
                ("DELETE FROM ap_enrollments WHERE expires <= ?", (now,)),
                ("DELETE FROM ap_tokens WHERE exp <= ?", (now - _TOKEN_RECORD_GRACE,)),
            ]
        )
        return sum(counts)

    def _housekeeping(self) -> None:
        """:meth:`purge` once ``purge_interval`` seconds have passed since the last pass."""
        if self._purges.due() is None:
            return
        try:
            self.purge()
        except Exception:  # housekeeping never fails the request that triggered it
            log.exception("housekeeping failed")

    # -- the operator's side ------------------------------------------------------------------

    def create_enrollment(self, agent_id: str, *, ps: str | None = None) -> str:
        """A one-time code that lets one key enrol as ``agent_id`` (a top-level agent in this
        provider's domain) within ``enrollment_lifetime`` seconds. ``ps`` overrides the
        default person server for its tokens. An agent already enrolled (and not revoked)
        cannot be enrolled again."""
        self.provider.check_agent_id(agent_id)
        if ps is not None:
            try:
                ps = validate_server_identifier(ps)
            except ValueError as exc:
                raise ConfigurationError(str(exc)) from exc
        existing = self.agent(agent_id)
        if existing is not None and existing.revoked is None:
            raise ConfigurationError(f"{agent_id} is already enrolled")
        code = secrets.token_urlsafe(24)
        self.db.execute(
            "INSERT INTO ap_enrollments VALUES (?, ?, ?, ?)",
            (
                code,
                agent_id,
                ps or self.provider.ps,
                self.clock() + self.config.enrollment_lifetime,
            ),
        )
        log.info("enrolment code created for %s", agent_id)
        return code

    def agent(self, agent_id: str) -> AgentRecord | None:
        rows = self.db.execute(
            "SELECT agent_id, jkt, ps, parent, created, revoked FROM ap_agents WHERE agent_id = ?",
            (agent_id,),
        )
        return AgentRecord(*rows[0]) if rows else None

    def agents(self) -> list[AgentRecord]:
        rows = self.db.execute(
            "SELECT agent_id, jkt, ps, parent, created, revoked FROM ap_agents ORDER BY agent_id"
        )
        return [AgentRecord(*row) for row in rows]

    async def revoke_agent(self, agent_id: str) -> RevocationResult:
        """Stop issuing tokens for ``agent_id`` and its sub-agents, and ask each PS named in
        their unexpired tokens to revoke them (§Token Revocation). Idempotent."""
        now = self.clock()
        ids, tokens = await self.db.run(self._revoke_records, agent_id, now)
        result = RevocationResult(revoked_agents=ids)
        async with httpx.AsyncClient(
            transport=AsyncMappedTransport(dict(self.config.connect)),
            timeout=self.config.revocation_timeout,
            follow_redirects=False,
            trust_env=False,
        ) as client:
            for jti, owner, ps in tokens:
                outcome = None if ps is None else await self._notify_ps(client, owner, jti, ps)
                if outcome is not None:
                    result.calls.append(outcome)
                if outcome is None or outcome.ok:
                    await self.db.run(
                        self.db.execute,
                        "UPDATE ap_tokens SET revoked = ? WHERE jti = ?",
                        (now, jti),
                    )
        log.info("revoked %s (%d agents, %d PS calls)", agent_id, len(ids), len(result.calls))
        return result

    def _revoke_records(self, agent_id: str, now: float) -> tuple[list[str], list[Any]]:
        """Mark ``agent_id`` and its sub-agents revoked; their agents and unexpired tokens."""
        rows = self.db.execute(
            "SELECT agent_id FROM ap_agents WHERE agent_id = ? OR parent = ?", (agent_id, agent_id)
        )
        if not rows:
            raise ConfigurationError(f"{agent_id} is not enrolled here")
        ids = [row[0] for row in rows]
        self.db.transaction(
            [
                (
                    "UPDATE ap_agents SET revoked = ? WHERE revoked IS NULL AND agent_id = ?",
                    (now, one),
                )
                for one in ids
            ]
        )
        tokens = [
            row
            for one in ids
            for row in self.db.execute(
                "SELECT jti, agent_id, ps FROM ap_tokens WHERE revoked IS NULL AND exp > ? "
                "AND agent_id = ?",
                (now, one),
            )
        ]
        return ids, tokens

    async def _notify_ps(
        self, client: httpx.AsyncClient, agent_id: str, jti: str, ps: str
    ) -> RevocationOutcome:
        try:
            found = await client.get(ps + "/.well-known/" + PS_METADATA)
            metadata = found.json() if found.status_code == 200 else None
            if not isinstance(metadata, dict) or metadata.get("issuer") != ps:
                return RevocationOutcome(
                    agent_id, jti, ps, None, f"no PS metadata for {ps} (HTTP {found.status_code})"
                )
            endpoint = metadata.get("revocation_endpoint")
            if not isinstance(endpoint, str) or not endpoint.startswith(ps + "/"):
                return RevocationOutcome(
                    agent_id, jti, ps, None, "the PS has no revocation endpoint"
                )
            body = json.dumps({"iss": self.issuer, "jti": jti}).encode()
            headers = {"content-type": "application/json"}
            key = self.provider.key
            signed = sign_request(
                HttpRequest("POST", endpoint, headers, body),
                key=key,
                clock=self.clock,
                signature_key=SignatureKey.from_jwks_uri(
                    id=self.issuer, dwk=DWK_AGENT, kid=str(key.kid)
                ),
            )
            response = await client.post(endpoint, content=body, headers={**headers, **signed})
        except (AAuthError, httpx.HTTPError, ValueError) as exc:
            log.warning("revocation of %s at %s failed: %s", jti, ps, exc)
            return RevocationOutcome(agent_id, jti, ps, None, str(exc))
        try:
            answer = response.json()
        except ValueError:
            answer = None
        return RevocationOutcome(
            agent_id,
            jti,
            ps,
            response.status_code,
            answer=answer if isinstance(answer, dict) else None,
        )

    # -- issuing ------------------------------------------------------------------------------

    def _issue(
        self, public: PublicKey, agent_id: str, ps: str | None, parent: str | None
    ) -> dict[str, Any]:
        token = self.provider.mint(public, agent_id, parent_agent=parent, ps=ps)
        claims = peek(token)[1]
        self.db.execute(
            "INSERT INTO ap_tokens VALUES (?, ?, ?, ?, NULL)",
            (claims["jti"], agent_id, claims.get("ps"), claims["exp"]),
        )
        return {
            "agent_id": agent_id,
            "agent_token": token,
            "expires_in": int(claims["exp"] - self.clock()),
        }

    def _verifier(self, scheme: str) -> SignatureVerifier:
        return SignatureVerifier(
            clock=self.clock,
            window=self.config.signature_window,
            accepted_schemes=(scheme,),
            require_body_digest=True,
        )

    async def _request(self, request: Request) -> HttpRequest:
        try:
            body = await read_body(request.stream(), self.config.max_body)
        except BodyTooLarge:
            raise ProtocolError(
                "the body is too large", code="invalid_request", status=413
            ) from None
        url = self.issuer + request.url.path
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw]
        return HttpRequest(request.method, url, headers, body or None)

    @staticmethod
    def _json(request: HttpRequest) -> dict[str, Any]:
        try:
            return loads_json_object(request.body or b"")
        except ValueError as exc:
            raise ProtocolError(f"the body is {exc}", code="invalid_request") from None

    async def _verified_agent(self, http: HttpRequest) -> tuple[AgentToken, PublicKey, AgentRecord]:
        resolver = async_token_key_resolver(
            keys=self._own_keys, audience=None, accept=(TYP_AGENT,), clock=self.clock
        )
        verified = await self._verifier("jwt").averify(http, resolver)
        token: AgentToken = verified.context
        record = await self.db.run(self._enrolled, token, verified.thumbprint)
        return token, verified.public_key, record

    def _enrolled(self, token: AgentToken, thumbprint: str) -> AgentRecord:
        """The record of the agent ``token`` names, when ``thumbprint`` is its enrolled key
        and neither it, its parent nor the token is revoked."""
        record = self.agent(token.sub)
        if record is None or record.thumbprint != thumbprint:
            raise ProtocolError(
                f"this key is not enrolled for {token.sub}", code="invalid_agent_token", status=403
            )
        if record.revoked is not None:
            raise ProtocolError(f"{token.sub} is revoked", code="revoked", status=403)
        revoked = self.db.execute("SELECT revoked FROM ap_tokens WHERE jti = ?", (token.jti,))
        if revoked and revoked[0][0] is not None:
            raise ProtocolError("this agent token is revoked", code="revoked", status=403)
        if record.parent is not None:
            parent = self.agent(record.parent)
            if parent is None or parent.revoked is not None:
                raise ProtocolError(f"{record.parent} is revoked", code="revoked", status=403)
        return record

    async def handle_enroll(self, http: HttpRequest) -> dict[str, Any]:
        verified = await self._verifier("hwk").averify(http)
        code = self._json(http).get("code")
        if not isinstance(code, str) or not code:
            raise ProtocolError("code is required", code="invalid_request")
        return await self.db.run(self._enroll, code, verified.public_key, verified.thumbprint)

    def _enroll(self, code: str, public: PublicKey, thumbprint: str) -> dict[str, Any]:
        """Spend enrolment ``code`` on ``public``: the agent's record and first token."""
        now = self.clock()
        rows = self.db.execute(
            "SELECT agent_id, ps FROM ap_enrollments WHERE code = ? AND expires > ?", (code, now)
        )
        if not rows:
            raise ProtocolError(
                "unknown, used or expired enrolment code", code="invalid_code", status=403
            )
        agent_id, ps = rows[0]
        if public.same_key(self.provider.key.public_key):
            raise ProtocolError("not an agent key", code="invalid_request")
        existing = self.agent(agent_id)
        if existing is not None and existing.revoked is None:
            raise ProtocolError(f"{agent_id} is already enrolled", code="invalid_code", status=403)
        consumed = self.db.transaction(
            [
                ("DELETE FROM ap_enrollments WHERE code = ?", (code,)),
                (
                    _UPSERT_AGENT,
                    (
                        agent_id,
                        thumbprint,
                        json.dumps(public.to_jwk(kid=False)),
                        ps or self.provider.ps,
                        None,
                        now,
                    ),
                ),
            ]
        )
        if consumed[0] != 1:  # a concurrent enrolment took the code first
            raise ProtocolError(
                "unknown, used or expired enrolment code", code="invalid_code", status=403
            )
        log.info("enrolled %s (key %s)", agent_id, thumbprint)
        return self._issue(public, agent_id, ps or self.provider.ps, None)

    async def handle_refresh(self, http: HttpRequest) -> dict[str, Any]:
        token, public, record = await self._verified_agent(http)
        return await self.db.run(self._issue, public, token.sub, record.ps, record.parent)

    async def handle_subagent(self, http: HttpRequest) -> dict[str, Any]:
        token, _, record = await self._verified_agent(http)
        if record.parent is not None:
            raise ProtocolError(
                "a sub-agent cannot have sub-agents (§Sub-Agents, Single-Level Depth)",
                code="invalid_request",
                status=403,
            )
        data = self._json(http)
        name, jwk = data.get("name"), data.get("jwk")
        if not isinstance(name, str) or not isinstance(jwk, dict):
            raise ProtocolError('the body is {"name": ..., "jwk": {...}}', code="invalid_request")
        try:
            public = PublicKey.from_jwk(jwk)
        except (AAuthError, ValueError) as exc:
            raise ProtocolError(f"jwk: {exc}", code="invalid_request") from exc
        local, _, domain = token.sub[len("aauth:") :].rpartition("@")
        sub_id = f"aauth:{local}+{name}@{domain}"
        try:
            self.provider.check_agent_id(sub_id, parent_agent=token.sub)
        except ConfigurationError as exc:
            raise ProtocolError(exc.detail, code="invalid_request") from exc
        return await self.db.run(self._add_subagent, sub_id, public, token.sub, record.ps)

    def _add_subagent(
        self, sub_id: str, public: PublicKey, parent: str, ps: str | None
    ) -> dict[str, Any]:
        """Record sub-agent ``sub_id`` of ``parent`` with ``public``; its first token."""
        existing = self.agent(sub_id)
        if existing is not None and existing.revoked is not None:
            raise ProtocolError(f"{sub_id} is revoked", code="revoked", status=403)
        if existing is not None and existing.thumbprint != public.thumbprint():
            raise ProtocolError(
                f"{sub_id} exists with another key", code="invalid_request", status=409
            )
        self.db.execute(
            _UPSERT_AGENT,
            (
                sub_id,
                public.thumbprint(),
                json.dumps(public.to_jwk(kid=False)),
                ps,
                parent,
                self.clock(),
            ),
        )
        return self._issue(public, sub_id, ps, parent)

    # -- the app ------------------------------------------------------------------------------

    def home_page(self) -> HomePage:
        """What ``GET /`` shows a person: this provider, its metadata, how agents enrol,
        and the person server its agents ask."""
        config = self.config
        ps = (
            Section(
                "Person server",
                "Agents enrolled here without a person server of their own ask this one "
                "for people's consent:",
                (Item(config.ps, href=config.ps),),
            )
            if config.ps
            else Section("Person server", "Each agent names its person server when enrolled.")
        )
        return HomePage(
            name=config.name or config.issuer,
            role="An AAuth agent provider",
            identifier=config.issuer,
            description="It vouches for agents' keys: it issues agent tokens (§Agent Token).",
            sections=(
                Section(
                    "For agents",
                    items=(
                        Item(WELL_KNOWN_PATH, "the provider's metadata", href=WELL_KNOWN_PATH),
                        Item(JWKS_PATH, "the keys its tokens are signed with", href=JWKS_PATH),
                        Item(
                            f"POST {ENROLL_PATH}",
                            "enrol a new key with a one-time code from the operator "
                            "(aauth-agents serve ap --enroll AGENT_ID prints one)",
                        ),
                        Item(f"POST {TOKEN_PATH}", "a fresh agent token for an enrolled key"),
                        Item(f"POST {SUBAGENT_PATH}", "a sub-agent's token (§Sub-Agents)"),
                    ),
                ),
                ps,
            ),
        )

    def app(self) -> Starlette:
        """The ASGI app: ``/`` (a page for a person), metadata, JWKS, ``/enroll``,
        ``/token``, ``/subagent``."""
        published = self.provider.app()

        def endpoint(handler: Any) -> Any:
            async def run(request: Request) -> Response:
                await self.db.run(self._housekeeping)
                try:
                    http = await self._request(request)
                    return JSONResponse(await handler(http), headers={"Cache-Control": "no-store"})
                except AAuthError as exc:
                    return _problem(exc)
                except Exception:
                    log.exception("%s %s failed", request.method, request.url.path)
                    return _problem(ProtocolError("internal error", code="server_error"))

            return run

        app = Starlette(
            routes=[
                self.home_page().route(),
                *published.routes,
                Route(ENROLL_PATH, endpoint(self.handle_enroll), methods=["POST"]),
                Route(TOKEN_PATH, endpoint(self.handle_refresh), methods=["POST"]),
                Route(SUBAGENT_PATH, endpoint(self.handle_subagent), methods=["POST"]),
            ]
        )
        app.state.agent_provider = self
        return app


# -- the agent's side ---------------------------------------------------------------------------


class AgentProviderClient:
    """Talks to an :class:`AgentProviderServer` as an agent: ``issuer`` is the provider's
    identifier, ``client`` the ``httpx.Client`` to use (a mapped transport in development)."""

    def __init__(self, issuer: str, client: httpx.Client, *, clock: Clock = system_clock):
        try:
            self.issuer = validate_server_identifier(issuer)
        except ValueError as exc:
            raise ConfigurationError(str(exc)) from exc
        self.client = client
        self.clock = clock

    def _post(
        self, path: str, body: dict[str, Any], key: PrivateKey, signature_key: SignatureKey
    ) -> dict[str, Any]:
        url = self.issuer + path
        content = json.dumps(body).encode()
        headers = {"content-type": "application/json"}
        signed = sign_request(
            HttpRequest("POST", url, headers, content),
            key=key,
            signature_key=signature_key,
            clock=self.clock,
        )
        response = self.client.post(url, content=content, headers={**headers, **signed})
        try:
            data = response.json()
        except ValueError:
            data = {}
        if response.status_code != 200 or not isinstance(data.get("agent_token"), str):
            raise ProtocolError(
                str(data.get("detail") or f"HTTP {response.status_code}"),
                code=str(data.get("error") or "server_error"),
                status=response.status_code,
            )
        return dict(data)

    def _identity(self, key: PrivateKey, token: str, refresh_margin: float) -> AgentIdentity:
        holder: dict[str, AgentIdentity] = {}

        def source(new_key: PrivateKey) -> str:
            identity = holder["identity"]
            if not new_key.public_key.same_key(identity.key.public_key):
                raise ConfigurationError("this provider refreshes the enrolled key only")
            return self.refresh(identity.key, identity.agent_token)

        identity = AgentIdentity(
            key, token, token_source=source, refresh_margin=refresh_margin, clock=self.clock
        )
        holder["identity"] = identity
        return identity

    def enroll(
        self, code: str, key: PrivateKey | None = None, *, refresh_margin: float = 300.0
    ) -> AgentIdentity:
        """Enrol ``key`` (a fresh Ed25519 key by default) with the operator's one-time
        ``code``; the identity refreshes its token at the provider."""
        key = key or PrivateKey.generate()
        data = self._post(
            ENROLL_PATH, {"code": code}, key, SignatureKey.from_public_key(key.public_key)
        )
        return self._identity(key, data["agent_token"], refresh_margin)

    def refresh(self, key: PrivateKey, agent_token: str) -> str:
        """A fresh agent token for ``key``, presenting the current one."""
        return str(
            self._post(TOKEN_PATH, {}, key, SignatureKey.from_jwt(agent_token))["agent_token"]
        )

    def subagent(
        self,
        parent: AgentIdentity,
        name: str,
        key: PrivateKey | None = None,
        *,
        refresh_margin: float = 300.0,
    ) -> AgentIdentity:
        """A sub-agent of ``parent`` named ``name`` (the discriminator) with ``key`` (fresh by
        default); it refreshes its own token."""
        key = key or PrivateKey.generate()
        data = self._post(
            SUBAGENT_PATH,
            {"name": name, "jwk": key.public_key.to_jwk(kid=False)},
            parent.key,
            SignatureKey.from_jwt(parent.current_token()),
        )
        return self._identity(key, data["agent_token"], refresh_margin)


__all__ = [
    "ENROLL_PATH",
    "JWKS_PATH",
    "SUBAGENT_PATH",
    "TOKEN_PATH",
    "WELL_KNOWN_PATH",
    "AgentProviderClient",
    "AgentProviderConfig",
    "AgentProviderServer",
    "AgentRecord",
    "RevocationOutcome",
    "RevocationResult",
]
