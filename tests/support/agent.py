"""Real servers for the agent tests: a resource and a person server, as Starlette apps.

Both verify every signed request with :class:`~aauth_agents.httpsig.SignatureVerifier` and the
token layer's resolvers, mint real tokens, and count what they receive -- the tests prove
caching by those counts. Nothing here stubs the protocol: the resource issues 401/202
challenges with the protocol serializers, resource tokens with ``mint_resource_token``,
rolling AAuth-Access session tokens and deferred auth-token deliveries; the PS issues person
and auth tokens, deferred responses with interaction / approval / clarification, missions,
permission, audit and question answers. The PS also takes ``subagent_token``
(§Parent-Mediated Authorization): signed by the parent, tokens bound to the sub-agent's key.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.to_thread
import httpx
import httpx2
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from aauth_agents.agent import AAuth, AgentIdentity, parse_prefer_wait
from aauth_agents.clock import Clock, FrozenClock
from aauth_agents.httpsig import HttpRequest, SignatureVerifier, VerifiedSignature
from aauth_agents.keys import PrivateKey, PublicKey
from aauth_agents.protocol import (
    PROBLEM_JSON,
    AAuthError,
    Requirement,
    build_mission_blob,
    clarification_body,
    generate_code,
    mission_approval_response,
    mission_s256,
    parse_authorization,
    problem_body,
    serialize_aauth_access,
)
from aauth_agents.protocol.errors import DiscoveryError, TokenError, UnknownKeyError
from aauth_agents.tokens import (
    AgentToken,
    AuthToken,
    IssuerKeys,
    PersonToken,
    StaticIssuerKeys,
    async_token_key_resolver,
    mint_agent_token,
    mint_auth_token,
    mint_person_token,
    mint_resource_token,
    verify_agent_token,
    verify_resource_token,
)
from aauth_agents.transport import AsyncMappedTransport, MappedTransport
from aauth_agents.transport_httpx2 import Httpx2Transport

AP = "https://agent.example"
PS = "https://ps.example"
RESOURCE = "https://resource.example"
AGENT_ID = "aauth:assistant@agent.example"


def problem(status: int, error: str, detail: str = "", **members: Any) -> Response:
    return Response(
        json.dumps(problem_body(error, detail or None, **members)),
        status_code=status,
        media_type=PROBLEM_JSON,
    )


def aauth_error(err: AAuthError) -> Response:
    status, headers, content = err.to_response()
    return Response(content, status_code=status, headers=headers)


def directed_sub(resource: str) -> str:
    return hashlib.sha256(f"person-1|{resource}".encode()).hexdigest()[:32]


class ChainKeys:
    """Issuer keys from several sources: the first that knows the issuer answers."""

    def __init__(self, *sources: IssuerKeys) -> None:
        self.sources = sources

    def get_key(self, iss: str, dwk: str, kid: str) -> PublicKey:
        error: AAuthError = UnknownKeyError(f"no source knows {iss}")
        for source in self.sources:
            try:
                return source.get_key(iss, dwk, kid)
            except (UnknownKeyError, DiscoveryError) as exc:
                error = exc
        raise error

    async def aget_key(self, iss: str, dwk: str, kid: str) -> PublicKey:
        error: AAuthError = UnknownKeyError(f"no source knows {iss}")
        for source in self.sources:
            try:
                return await source.aget_key(iss, dwk, kid)
            except (UnknownKeyError, DiscoveryError) as exc:
                error = exc
        raise error


async def verify_request(
    request: Request, issuer: str, verifier: SignatureVerifier, resolver: Any
) -> VerifiedSignature | Response:
    body = await request.body()
    target = issuer + request.url.path + (f"?{request.url.query}" if request.url.query else "")
    http = HttpRequest(request.method, target, request.headers.items(), body)
    try:
        return await verifier.averify(http, resolver)
    except AAuthError as err:
        return aauth_error(err)


# -- the resource ------------------------------------------------------------------------------


@dataclass
class Seen:
    path: str
    method: str
    credential: str
    covered: tuple[str, ...]
    authorization: str | None
    capabilities: str | None
    prefer: int | None
    jkt: str = ""  # thumbprint of the key that signed


@dataclass
class ResourcePending:
    kind: str  # "auth" (deferred auth-token) or "session" (two-party interaction)
    scope: str = ""
    person: PersonToken | None = None
    agent_jkt: str = ""
    code: str | None = None
    resource_token: str | None = None


class TestResource:
    """``https://resource.example``: identity, person and auth-token endpoints, deferred
    auth-token delivery, two-party interaction with rolling AAuth-Access sessions."""

    __test__ = False

    def __init__(
        self,
        *,
        key: PrivateKey,
        keys: IssuerKeys,
        clock: Clock,
        issuer: str = RESOURCE,
        additional_components: Iterable[str] = (),
        access_mode: str | None = None,
    ) -> None:
        self.issuer = issuer
        self.key = key
        self.clock = clock
        self.additional_components = tuple(additional_components)
        self.access_mode = access_mode
        self.verifier = SignatureVerifier(
            additional_components=self.additional_components, clock=clock
        )
        self.strict_verifier = SignatureVerifier(
            required_components=(
                "@method",
                "@authority",
                "@path",
                "aauth-capabilities",
                "signature-key",
            ),
            clock=clock,
        )
        self.resolver = async_token_key_resolver(keys=keys, audience=issuer, clock=clock)
        self.hits: Counter[str] = Counter()
        self.seen: list[Seen] = []
        self.persons: dict[tuple[str, str], PersonToken] = {}
        self.challenges: Counter[str] = Counter()
        self.executions: Counter[str] = Counter()
        self.results: dict[str, dict[str, Any]] = {}
        self.pending: dict[str, ResourcePending] = {}
        self.approved_codes: set[str] = set()
        self.sessions: dict[str, int] = {}  # valid session tokens -> request count
        self.issued_sessions: list[str] = []
        self.rt_overrides: dict[str, Any] = {}
        self.rt_issuer: str | None = None
        self.fresh_rt_on_poll = False
        self.malformed_session = False
        self.lock = threading.Lock()
        self.metadata = {
            "issuer": issuer,
            "jwks_uri": f"{issuer}/.well-known/jwks.json",
            "name": "Test resource",
            "scope_descriptions": {"data.read": "Read data", "data.write": "Write data"},
        }
        if self.additional_components:
            self.metadata["additional_signature_components"] = list(self.additional_components)
        if access_mode is not None:
            self.metadata["access_mode"] = access_mode
        self.jwks = {"keys": [key.public_key.to_jwk()]}
        self.app = Starlette(
            routes=[
                Route("/.well-known/aauth-resource.json", self.well_known),
                Route("/.well-known/jwks.json", self.jwks_endpoint),
                Route("/agent", self.agent_only),
                Route("/profile", self.profile),
                Route("/data", self.data, methods=["GET"]),
                Route("/write", self.write, methods=["POST"]),
                Route("/slow", self.slow),
                Route("/session", self.session),
                Route("/interact", self.interact),
                Route("/pending/{id}", self.pending_get, methods=["GET"]),
                Route("/echo", self.echo, methods=["POST", "PUT", "GET"]),
                Route("/strict", self.strict),
            ]
        )

    # helpers

    async def well_known(self, request: Request) -> Response:
        self.hits["metadata"] += 1
        return JSONResponse(self.metadata)

    async def jwks_endpoint(self, request: Request) -> Response:
        self.hits["jwks"] += 1
        return JSONResponse(self.jwks)

    async def _verified(
        self, request: Request, name: str, verifier: SignatureVerifier | None = None
    ) -> tuple[VerifiedSignature | None, Response | None]:
        self.hits[name] += 1
        result = await verify_request(
            request, self.issuer, verifier or self.verifier, self.resolver
        )
        if isinstance(result, Response):
            return None, result
        typ = {AgentToken: "agent", PersonToken: "person", AuthToken: "auth"}[type(result.context)]
        self.seen.append(
            Seen(
                name,
                request.method,
                typ,
                result.components,
                request.headers.get("authorization"),
                request.headers.get("aauth-capabilities"),
                parse_prefer_wait(request.headers.get("prefer")),
                result.thumbprint,
            )
        )
        if isinstance(result.context, PersonToken):
            token = result.context
            self.persons[(token.iss, token.sub)] = token
        return result, None

    def resource_token(self, verified: VerifiedSignature, scope: str, person: PersonToken) -> str:
        overrides = dict(self.rt_overrides)
        agent_jkt = overrides.pop("agent_jkt", verified.thumbprint)
        return mint_resource_token(
            self.key,
            iss=self.rt_issuer or self.issuer,
            aud=person.iss,
            agent_jkt=agent_jkt,
            scope=scope,
            person=person if self.rt_issuer is None else None,
            ps=None if self.rt_issuer is None else person.iss,
            sub=None if self.rt_issuer is None else person.sub,
            presented_jti=None if self.rt_issuer is None else person.jti,
            clock=self.clock,
            **overrides,
        )

    def challenge(
        self,
        verified: VerifiedSignature,
        scope: str,
        *,
        status: int = 401,
        location: str | None = None,
    ) -> Response:
        """401 person-token for an agent token; 401 auth-token with a resource token for a
        person token, or for an auth token lacking ``scope`` (step-up)."""
        token = verified.context
        if isinstance(token, AgentToken):
            self.challenges["person-token"] += 1
            return Response(status_code=401, headers=Requirement.person_token().headers())
        if isinstance(token, AuthToken):
            person = self.persons[(token.ps, token.sub)]
            scope = " ".join(dict.fromkeys([*token.scopes, *scope.split()]))
        else:
            person = token
        self.challenges["auth-token"] += 1
        rt = self.resource_token(verified, scope, person)
        headers = Requirement.auth_token(rt).headers()
        if location is not None:
            headers.update({"Location": location, "Retry-After": "0", "Cache-Control": "no-store"})
            return JSONResponse({"status": "pending"}, status_code=202, headers=headers)
        return Response(status_code=status, headers=headers)

    # endpoints

    async def agent_only(self, request: Request) -> Response:
        verified, failure = await self._verified(request, "agent")
        if failure is not None:
            return failure
        assert verified is not None
        if not isinstance(verified.context, AgentToken):
            return Response(status_code=401, headers=Requirement.agent_token().headers())
        return JSONResponse({"agent": verified.context.sub})

    async def profile(self, request: Request) -> Response:
        verified, failure = await self._verified(request, "profile")
        if failure is not None:
            return failure
        assert verified is not None
        token = verified.context
        if isinstance(token, AgentToken):
            self.challenges["person-token"] += 1
            return Response(status_code=401, headers=Requirement.person_token().headers())
        return JSONResponse({"sub": token.sub, "mission_s256": token.mission_s256})

    async def _scoped(self, request: Request, name: str, scope: str) -> Response:
        verified, failure = await self._verified(request, name)
        if failure is not None:
            return failure
        assert verified is not None
        token = verified.context
        if isinstance(token, AuthToken) and scope in token.scopes:
            body = await request.body()
            return JSONResponse(
                {"sub": token.sub, "scope": token.scope, "echo": body.decode() if body else None}
            )
        return self.challenge(verified, scope)

    async def data(self, request: Request) -> Response:
        return await self._scoped(request, "data", "data.read")

    async def write(self, request: Request) -> Response:
        return await self._scoped(request, "write", "data.write")

    async def slow(self, request: Request) -> Response:
        """§Deferred Delivery: the invocation is held; the auth-token requirement comes
        with a 202 and the agent completes at the pending URL."""
        verified, failure = await self._verified(request, "slow")
        if failure is not None:
            return failure
        assert verified is not None
        token = verified.context
        if isinstance(token, AuthToken) and "data.read" in token.scopes:
            return JSONResponse(self._execute("slow", token))
        if isinstance(token, AgentToken):
            return self.challenge(verified, "data.read")
        pending_id = secrets.token_urlsafe(8)
        self.pending[pending_id] = ResourcePending("auth", "data.read", token, verified.thumbprint)
        return self.challenge(verified, "data.read", location=f"{self.issuer}/pending/{pending_id}")

    def _execute(self, name: str, token: AuthToken) -> dict[str, Any]:
        with self.lock:
            if token.jti not in self.results:  # a repeated presentation is answered, not re-run
                self.executions[name] += 1
                self.results[token.jti] = {"result": f"{name} done", "sub": token.sub}
            return self.results[token.jti]

    async def session(self, request: Request) -> Response:
        """Two-party: the resource runs its own interaction and issues AAuth-Access session
        tokens, replacing the session token on every response."""
        _verified, failure = await self._verified(request, "session")
        if failure is not None:
            return failure
        header = request.headers.get("authorization")
        session = parse_authorization(header) if header else None
        with self.lock:
            if session is not None and session in self.sessions:
                count = self.sessions.pop(session) + 1
                new = self._new_session(count)
                return JSONResponse(
                    {"count": count}, headers={"AAuth-Access": serialize_aauth_access(new)}
                )
        pending_id = secrets.token_urlsafe(8)
        code = generate_code()
        self.pending[pending_id] = ResourcePending("session", code=code)
        requirement = Requirement.interaction(f"{self.issuer}/interact", code)
        return JSONResponse(
            {"status": "pending"},
            status_code=202,
            headers={
                **requirement.headers(),
                "Location": f"/pending/{pending_id}",
                "Retry-After": "0",
                "Cache-Control": "no-store",
            },
        )

    def _new_session(self, count: int) -> str:
        token = secrets.token_urlsafe(24)
        self.sessions[token] = count
        self.issued_sessions.append(token)
        return token

    def approve(self, code: str) -> None:
        """The person completes the resource's interaction."""
        self.approved_codes.add(code)

    async def interact(self, request: Request) -> Response:
        self.approve(request.query_params.get("code", ""))
        return Response("done", media_type="text/plain")

    async def pending_get(self, request: Request) -> Response:
        pending = self.pending.get(request.path_params["id"])
        if pending is None:
            return problem(410, "invalid_code")
        verified, failure = await self._verified(request, "pending")
        if failure is not None:
            return failure
        assert verified is not None
        if pending.kind == "session":
            if pending.code not in self.approved_codes:
                return JSONResponse(
                    {"status": "pending"},
                    status_code=202,
                    headers={"Retry-After": "0", "Cache-Control": "no-store"},
                )
            with self.lock:
                token = self._new_session(0)
            value = f"{token} {token}" if self.malformed_session else serialize_aauth_access(token)
            return JSONResponse({"status": "authorized"}, headers={"AAuth-Access": value})
        token = verified.context
        if isinstance(token, AuthToken) and pending.scope in token.scopes:
            return JSONResponse(self._execute("slow", token))
        assert pending.person is not None
        headers = {"Retry-After": "0", "Cache-Control": "no-store"}
        if self.fresh_rt_on_poll:
            headers.update(
                Requirement.auth_token(
                    self.resource_token(verified, pending.scope, pending.person)
                ).headers()
            )
        return JSONResponse({"status": "pending"}, status_code=202, headers=headers)

    async def echo(self, request: Request) -> Response:
        verified, failure = await self._verified(request, "echo")
        if failure is not None:
            return failure
        assert verified is not None
        body = await request.body()
        return JSONResponse(
            {"covered": list(verified.components), "body": body.decode() if body else None}
        )

    async def strict(self, request: Request) -> Response:
        verified, failure = await self._verified(request, "strict", self.strict_verifier)
        if failure is not None:
            return failure
        assert verified is not None
        return JSONResponse({"covered": list(verified.components)})


# -- the person server -------------------------------------------------------------------------


@dataclass
class PsPending:
    kind: str
    requirement: str | None
    resolve: Callable[[], Response]
    code: str | None = None
    approved: bool = False
    polls: int = 0
    clarification: str | None = None
    answers: list[dict[str, Any]] = field(default_factory=list)
    cancelled: bool = False


class TestPS:
    """``https://ps.example``: person and auth tokens (immediate or deferred), missions,
    permission, audit, interaction relay and questions."""

    __test__ = False

    def __init__(
        self,
        *,
        key: PrivateKey,
        agent_keys: IssuerKeys,
        resource_keys: IssuerKeys,
        clock: Clock,
        issuer: str = PS,
    ) -> None:
        self.issuer = issuer
        self.key = key
        self.clock = clock
        self.resource_keys = resource_keys
        self.verifier = SignatureVerifier(require_body_digest=True, clock=clock)
        self.agent_keys = agent_keys
        self.resolver = async_token_key_resolver(
            keys=agent_keys, audience=None, accept=("aa-agent+jwt",), clock=clock
        )
        self.hits: Counter[str] = Counter()
        self.bodies: dict[str, list[dict[str, Any]]] = {}
        self.covered: list[tuple[str, ...]] = []
        self.prefer: list[int | None] = []
        self.person_records: dict[str, dict[str, Any]] = {}
        self.pending: dict[str, PsPending] = {}
        self.missions: dict[str, dict[str, Any]] = {}
        # behaviour switches
        self.person_requirement: str | None = None
        self.token_requirement: str | None = None
        self.token_error: tuple[int, str] | None = None
        self.token_errors_left = 1_000_000
        self.poll_outcome: tuple[int, str] | None = None
        self.approval_rounds = 1
        self.retry_after: str | None = "0"
        self.pending_location: Callable[[str], str] | None = None
        self.clarification = "Why do you need this?"
        self.clarification_options: list[str] | None = ["yes", "no"]
        self.clarification_timeout = 120
        self.mission_clarification: str | None = None
        self.interaction_mode = "relay"  # or "unavailable" / "unreachable"
        self.on_relay: Callable[[str, str], None] | None = None
        self.answer = "Yes, go ahead."
        self.permission = "granted"
        self.auth_overrides: dict[str, Any] = {}
        self.barrier: Callable[[], bool] | None = None
        self.tamper_mission = False
        self.auth_signing_key: PrivateKey | None = None  # sign auth tokens with another key
        self.slow_downs = 0
        self.interacting = False
        self.capability_headers: list[str | None] = []
        self.signers: list[str] = []  # the agent (sub) of every verified request
        self.bind_to_signer = False  # ignore subagent_token's key (a misbehaving PS)
        self.app = Starlette(
            routes=[
                Route("/.well-known/aauth-person.json", self.well_known),
                Route("/.well-known/jwks.json", self.jwks),
                Route("/person", self.person, methods=["POST"]),
                Route("/token", self.token, methods=["POST"]),
                Route("/pending/{id}", self.pending_route, methods=["GET", "POST", "DELETE"]),
                Route("/consent", self.consent_route),
                Route("/interaction", self.interaction, methods=["POST"]),
                Route("/permission", self.permission_route, methods=["POST"]),
                Route("/audit", self.audit, methods=["POST"]),
                Route("/mission", self.mission, methods=["POST"]),
                Route("/mission/{s256}", self.mission_action, methods=["POST"]),
            ]
        )

    @property
    def metadata(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "jwks_uri": f"{self.issuer}/.well-known/jwks.json",
            "auth_token_endpoint": f"{self.issuer}/token",
            "person_token_endpoint": f"{self.issuer}/person",
            "mission_endpoint": f"{self.issuer}/mission",
            "permission_endpoint": f"{self.issuer}/permission",
            "audit_endpoint": f"{self.issuer}/audit",
            "interaction_endpoint": f"{self.issuer}/interaction",
        }

    async def well_known(self, request: Request) -> Response:
        self.hits["metadata"] += 1
        return JSONResponse(self.metadata)

    async def jwks(self, request: Request) -> Response:
        self.hits["jwks"] += 1
        return JSONResponse({"keys": [self.key.public_key.to_jwk()]})

    async def _agent(
        self, request: Request, name: str
    ) -> tuple[VerifiedSignature | None, dict[str, Any], Response | None]:
        self.hits[name] += 1
        result = await verify_request(request, self.issuer, self.verifier, self.resolver)
        if isinstance(result, Response):
            return None, {}, result
        agent_token: AgentToken = result.context
        if agent_token.parent_agent is not None:  # §Single-Level Depth
            return None, {}, problem(400, "invalid_agent_token", "a sub-agent signed")
        self.signers.append(agent_token.sub)
        self.covered.append(result.components)
        self.capability_headers.append(request.headers.get("aauth-capabilities"))
        self.prefer.append(parse_prefer_wait(request.headers.get("prefer")))
        raw = await request.body()
        body = json.loads(raw) if raw else {}
        self.bodies.setdefault(name, []).append(body)
        return result, body, None

    def _defer(
        self, kind: str, requirement: str | None, resolve: Callable[[], Response], **extra: Any
    ) -> Response:
        pending_id = secrets.token_urlsafe(8)
        code = generate_code() if requirement == "interaction" else None
        entry = PsPending(kind, requirement, resolve, code=code, **extra)
        if requirement == "clarification":
            entry.clarification = entry.clarification or self.clarification
        self.pending[pending_id] = entry
        return self._pending_response(pending_id, entry)

    def _location(self, pending_id: str) -> str:
        if self.pending_location is not None:
            return self.pending_location(pending_id)
        return f"/pending/{pending_id}"

    def _pending_response(self, pending_id: str, entry: PsPending) -> Response:
        headers = {"Location": self._location(pending_id), "Cache-Control": "no-store"}
        if self.retry_after is not None:
            headers["Retry-After"] = self.retry_after
        body: dict[str, Any] = {"status": "interacting" if self.interacting else "pending"}
        if entry.requirement == "interaction":
            assert entry.code is not None
            headers.update(Requirement.interaction(f"{self.issuer}/consent", entry.code).headers())
        elif entry.requirement == "clarification" and not entry.answers:
            headers.update(Requirement.clarification().headers())
            body = clarification_body(
                entry.clarification or "",
                timeout=self.clarification_timeout,
                options=self.clarification_options,
            )
        elif entry.requirement is not None and entry.requirement != "clarification":
            headers["AAuth-Requirement"] = f"requirement={entry.requirement}"
        return JSONResponse(body, status_code=202, headers=headers)

    def consent(self, code: str) -> bool:
        """The person approves at the PS's consent page."""
        for entry in self.pending.values():
            if entry.code == code:
                entry.approved = True
                return True
        return False

    async def consent_route(self, request: Request) -> Response:
        ok = self.consent(request.query_params.get("code", ""))
        return Response("approved" if ok else "unknown code", status_code=200 if ok else 400)

    def subject(self, agent: AgentToken, body: dict[str, Any]) -> AgentToken | Response:
        """The agent a token is for: the signer, or the sub-agent its ``subagent_token``
        names, whose ``parent_agent`` must be the signer."""
        raw = body.get("subagent_token")
        if raw is None:
            return agent
        try:
            sub = verify_agent_token(raw, keys=self.agent_keys, signing_key=None, clock=self.clock)
        except TokenError as err:
            return problem(400, err.code, err.detail)
        if sub.parent_agent != agent.sub:
            return problem(400, "invalid_agent_token", "not the signer's sub-agent")
        return sub

    async def person(self, request: Request) -> Response:
        verified, body, failure = await self._agent(request, "person")
        if failure is not None:
            return failure
        assert verified is not None
        subject = self.subject(verified.context, body)
        if isinstance(subject, Response):
            return subject
        agent: AgentToken = verified.context if self.bind_to_signer else subject
        resource = body.get("resource")
        mission = body.get("mission_s256")
        if mission is not None and self.missions.get(mission, {}).get("terminated"):
            return problem(
                403,
                "mission_terminated",
                mission_status="terminated",
                termination_reason="completed",
            )

        def issue() -> Response:
            return JSONResponse(self.issue_person_token(agent, resource, mission))

        if self.person_requirement is not None:
            return self._defer("person", self.person_requirement, issue)
        return issue()

    def issue_person_token(
        self, agent: AgentToken, resource: str, mission: str | None
    ) -> dict[str, Any]:
        jti = secrets.token_urlsafe(12)
        token = mint_person_token(
            self.key,
            iss=self.issuer,
            aud=resource,
            sub=directed_sub(resource),
            cnf=agent.cnf,
            not_after=agent.exp,
            mission_s256=mission,
            jti=jti,
            clock=self.clock,
        )
        self.person_records[jti] = {"sub": directed_sub(resource), "mission_s256": mission}
        return {"person_token": token, "expires_in": 3600}

    async def token(self, request: Request) -> Response:
        verified, body, failure = await self._agent(request, "token")
        if failure is not None:
            return failure
        assert verified is not None
        if self.barrier is not None:
            with anyio.move_on_after(5):
                while not self.barrier():
                    await anyio.sleep(0.01)
        if self.token_error is not None and self.token_errors_left > 0:
            self.token_errors_left -= 1
            return problem(*self.token_error)
        subject = self.subject(verified.context, body)
        if isinstance(subject, Response):
            return subject
        agent: AgentToken = verified.context if self.bind_to_signer else subject
        try:
            rt = verify_resource_token(
                body.get("resource_token"),
                keys=self.resource_keys,
                audience=self.issuer,
                agent_jkt=subject.cnf.thumbprint(),  # §Resource Token Verification, step 5
                clock=self.clock,
            )
        except TokenError as err:
            return problem(400, err.code, err.detail)
        record = self.person_records.get(rt.presented_jti)
        if record is None or record["sub"] != rt.sub or record["mission_s256"] != rt.mission_s256:
            return problem(400, "unknown_person_token")

        def issue() -> Response:
            claims: dict[str, Any] = dict(
                aud=rt.iss, sub=rt.sub, scope=rt.scopes, mission_s256=rt.mission_s256
            )
            claims.update(self.auth_overrides)
            token = mint_auth_token(
                self.auth_signing_key or self.key,
                iss=self.issuer,
                ps=self.issuer,
                cnf=agent.cnf,
                not_after=agent.exp,
                clock=self.clock,
                **claims,
            )
            return JSONResponse({"auth_token": token, "expires_in": 3600})

        if self.token_requirement is not None:
            return self._defer("token", self.token_requirement, issue)
        return issue()

    async def pending_route(self, request: Request) -> Response:
        pending_id = request.path_params["id"]
        entry = self.pending.get(pending_id)
        if entry is None:
            return problem(404, "not_found")
        _verified, body, failure = await self._agent(request, f"pending-{request.method}")
        if failure is not None:
            return failure
        if entry.cancelled:
            return problem(410, "invalid_code")
        if request.method == "DELETE":
            entry.cancelled = True
            return Response(status_code=204)
        if request.method == "POST":
            action = body.get("action")
            if action not in ("clarification_response", "updated_request"):
                return problem(400, "invalid_request", "action is missing or not recognized")
            entry.answers.append(body)
            return JSONResponse({"status": "pending"}, status_code=202)
        entry.polls += 1
        if self.slow_downs > 0:
            self.slow_downs -= 1
            return problem(429, "slow_down")
        if self.poll_outcome is not None:
            return problem(*self.poll_outcome)
        if entry.requirement == "interaction" and not entry.approved:
            return self._pending_response(pending_id, entry)
        if entry.requirement == "clarification" and not entry.answers:
            return self._pending_response(pending_id, entry)
        if entry.requirement in ("approval", None) and entry.polls < self.approval_rounds:
            return self._pending_response(pending_id, entry)
        del self.pending[pending_id]
        return entry.resolve()

    async def interaction(self, request: Request) -> Response:
        _verified, body, failure = await self._agent(request, "interaction")
        if failure is not None:
            return failure
        if body.get("type") == "question":
            return JSONResponse({"answer": self.answer})
        if self.interaction_mode == "unavailable":
            return problem(424, "interaction_unavailable")
        if self.interaction_mode == "unreachable":
            return problem(403, "user_unreachable")
        if self.on_relay is not None:
            self.on_relay(body["url"], body["code"])
        return self._defer("relay", "approval", lambda: JSONResponse({"status": "completed"}))

    async def permission_route(self, request: Request) -> Response:
        _verified, _body, failure = await self._agent(request, "permission")
        if failure is not None:
            return failure
        if self.permission == "granted":
            return JSONResponse({"permission": "granted"})
        return JSONResponse({"permission": "denied", "reason": "Not today."})

    async def audit(self, request: Request) -> Response:
        _verified, body, failure = await self._agent(request, "audit")
        if failure is not None:
            return failure
        mission = self.missions.get(body.get("mission_s256", ""))
        if mission is None:
            return problem(404, "mission_not_found")
        if mission.get("terminated"):
            return problem(
                403,
                "mission_terminated",
                mission_status="terminated",
                termination_reason="completed",
            )
        return Response(status_code=201)

    async def mission(self, request: Request) -> Response:
        verified, body, failure = await self._agent(request, "mission")
        if failure is not None:
            return failure
        assert verified is not None
        agent: AgentToken = verified.context

        def approve() -> Response:
            resources = body.get("resources") or []
            blob = build_mission_blob(
                approver=self.issuer,
                agent=agent.sub,
                approved_at="2026-04-07T14:30:00Z",
                description=body["description"],
                approved_resources=resources or None,
                approved_tools=body.get("tools"),
            )
            s256 = mission_s256(blob)
            self.missions[s256] = {"blob": blob, "updates": []}
            tokens = {r: self.issue_person_token(agent, r, s256)["person_token"] for r in resources}
            answer = mission_approval_response(
                blob, capabilities=["interaction", "payment"], person_tokens=tokens
            )
            if self.tamper_mission:
                answer["s256"] = mission_s256(blob + b" ")
            return JSONResponse(answer)

        if self.mission_clarification is not None:
            return self._defer(
                "mission", "clarification", approve, clarification=self.mission_clarification
            )
        return approve()

    async def mission_action(self, request: Request) -> Response:
        _verified, body, failure = await self._agent(request, "mission-action")
        if failure is not None:
            return failure
        mission = self.missions.get(request.path_params["s256"])
        if mission is None:
            return problem(404, "mission_not_found")
        if mission.get("terminated"):
            return problem(
                403,
                "mission_terminated",
                mission_status="terminated",
                termination_reason="completed",
            )
        if body.get("action") == "update":
            raw = json.dumps({"description": body["description"]}).encode()
            mission["updates"].append(raw)
            return JSONResponse({"s256": mission_s256(raw)})
        if body.get("action") == "completion":
            mission["terminated"] = True
            return JSONResponse({"status": "terminated", "termination_reason": "completed"})
        return problem(400, "invalid_request", "action is missing or not recognized")


# -- a world of keys, tokens and servers --------------------------------------------------------


class World:
    """Keys, an agent identity, a PS and a resource, all sharing one frozen clock."""

    def __init__(
        self,
        *,
        ps_claim: bool = True,
        additional_components: Iterable[str] = (),
        access_mode: str | None = None,
        clock: FrozenClock | None = None,
    ) -> None:
        self.clock = clock or FrozenClock()
        self.ap_key = PrivateKey.generate()
        self.ps_key = PrivateKey.generate()
        self.resource_key = PrivateKey.generate()
        self.agent_key = PrivateKey.generate()
        self.ps_claim = ps_claim
        issuer_keys = StaticIssuerKeys(
            {
                (AP, "aauth-agent.json"): [self.ap_key.public_key],
                (PS, "aauth-person.json"): [self.ps_key.public_key],
            }
        )
        self.resource = TestResource(
            key=self.resource_key,
            keys=issuer_keys,
            clock=self.clock,
            additional_components=additional_components,
            access_mode=access_mode,
        )
        self.ps = TestPS(
            key=self.ps_key,
            agent_keys=StaticIssuerKeys({(AP, "aauth-agent.json"): [self.ap_key.public_key]}),
            resource_keys=StaticIssuerKeys(
                {(RESOURCE, "aauth-resource.json"): [self.resource_key.public_key]}
            ),
            clock=self.clock,
        )
        self.sleeps: list[float] = []
        self.identity = AgentIdentity(
            self.agent_key,
            self.agent_token(self.agent_key),
            token_source=self.agent_token,
            clock=self.clock,
        )

    def agent_token(self, key: PrivateKey) -> str:
        return mint_agent_token(
            self.ap_key,
            iss=AP,
            sub=AGENT_ID,
            cnf=key.public_key,
            ps=PS if self.ps_claim else None,
            lifetime=24 * 3600,
            clock=self.clock,
        )

    def sub_identity(
        self, discriminator: str = "worker", *, parent_agent: str | None = AGENT_ID
    ) -> AgentIdentity:
        """A sub-agent of the agent (§Sub-Agents): its own key, ``parent_agent`` (``None``: a
        top-level agent with a ``+`` name, for the configuration checks)."""
        local, domain = AGENT_ID.removeprefix("aauth:").split("@")
        sub_id = f"aauth:{local}+{discriminator}@{domain}"

        def source(key: PrivateKey) -> str:
            return mint_agent_token(
                self.ap_key,
                iss=AP,
                sub=sub_id,
                cnf=key.public_key,
                ps=PS if self.ps_claim else None,
                parent_agent=parent_agent,
                lifetime=24 * 3600,
                clock=self.clock,
            )

        key = PrivateKey.generate()
        return AgentIdentity(key, source(key), token_source=source, clock=self.clock)

    def sleep(self, seconds: float) -> None:
        """Time passes (the frozen clock moves); nothing actually waits."""
        self.sleeps.append(seconds)
        self.clock.advance(seconds)

    @property
    def mapping(self) -> dict[str, Any]:
        return {RESOURCE: self.resource.app, PS: self.ps.app}

    def auth(self, **options: Any) -> AAuth:
        options.setdefault("clock", self.clock)
        options.setdefault("sleep", self.sleep)
        return AAuth(self.identity, **options)

    def sub_auth(
        self, parent: AAuth, identity: AgentIdentity | None = None, **options: Any
    ) -> AAuth:
        """The AAuth of a sub-agent acting through ``parent``."""
        options.setdefault("clock", self.clock)
        options.setdefault("sleep", self.sleep)
        return AAuth(identity or self.sub_identity(), parent=parent, **options)


class Agent:
    """An :class:`AAuth` behind an ``httpx.Client`` (run in a worker thread) or an
    ``httpx.AsyncClient``: every test runs once with each."""

    def __init__(self, mode: str, auth: AAuth, mapping: dict[str, Any], **client: Any) -> None:
        self.mode = mode
        self.auth = auth
        self.sync_client: httpx.Client | None = None
        self.async_client: Any = None  # an httpx or an httpx2 AsyncClient
        if mode == "sync":
            self.sync_client = httpx.Client(
                auth=auth, transport=MappedTransport(mapping, strict=True), **client
            )
        elif mode == "async":
            self.async_client = httpx.AsyncClient(
                auth=auth, transport=AsyncMappedTransport(mapping, strict=True), **client
            )
        else:  # the same agent as an httpx2.Auth, over the same mapping
            self.async_client = httpx2.AsyncClient(
                auth=auth.httpx2(),
                transport=Httpx2Transport(AsyncMappedTransport(mapping, strict=True)),
                **client,
            )

    async def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        if self.mode == "httpx2" and isinstance(kwargs.get("auth"), AAuth):
            kwargs["auth"] = kwargs["auth"].httpx2()
        if self.sync_client is not None:
            client = self.sync_client
            return await anyio.to_thread.run_sync(lambda: client.request(method, url, **kwargs))
        assert self.async_client is not None
        return await self.async_client.request(method, url, **kwargs)

    async def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("GET", url, **kwargs)

    async def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("POST", url, **kwargs)

    async def governance(self, name: str, *args: Any, **kwargs: Any) -> Any:
        if self.sync_client is not None:
            gov = self.auth.governance(self.sync_client)
            return await anyio.to_thread.run_sync(lambda: getattr(gov, name)(*args, **kwargs))
        assert self.async_client is not None
        agov = self.auth.async_governance(self.async_client)
        return await getattr(agov, name)(*args, **kwargs)

    async def aclose(self) -> None:
        if self.sync_client is not None:
            self.sync_client.close()
        if self.async_client is not None:
            await self.async_client.aclose()
