"""The resource: decisions, challenges, resource tokens, pending records and the endpoints a
resource publishes. Framework-free: it takes :class:`~aauth_agents.httpsig.HttpRequest` s and
returns outcomes; :class:`~aauth_agents.resource.AAuthMiddleware` is the ASGI layer over it.

Outcomes of :meth:`AAuthResource.authorize` and :meth:`AAuthResource.endpoint`:

* :class:`Allow` -- run the application with this caller;
* :class:`Reply` -- send this response (an error, a challenge, a 202, a published document);
* :class:`Execute` -- a poll (or a per-call tool's call re-sent with its approval) completed
  a held invocation: run ``held`` with ``caller``, then hand the response to
  :meth:`AAuthResource.complete` (which stores it, §Deferred Delivery).

Per-call tools (R3 §Per-Call Proposals, :mod:`.percall`): each call is held as a
``per-call`` pending record whose resource token references a proposal built from the
call's arguments, served at ``r3_uri`` to the PS or AS the token names and to nobody else
(R3 §R3 Document Access Restriction). The held call runs when an auth token pinning that
proposal (``r3_uri``, ``r3_s256``, the tool in ``r3_granted``) is presented at the pending
URL -- or with the call itself, re-sent unchanged (the draft's ``401`` completion) -- once:
a repeated presentation of that token is answered from the retained result. A per-call
token presented for another tool, other arguments, another held call, or after its call ran
with something else is refused (``403 invalid_auth_token``), and its scopes are no standing
grant elsewhere: the grant is consumed by the call it approved.

Bad input changes nothing: a request that fails verification, or is refused, leaves no
pending record and writes nothing to a store. What a verified request writes is deliberate:
the person token it presented (for later step-up challenges), the token as known (for the
revocation endpoint), its signature in the replay cache (state-changing requests that are
let through), and the pending record a 202 announces. The one write on failure is the one
§Interaction Code Format requires: a wrong interaction code counts against its record.
"""

from __future__ import annotations

import base64
import hmac
import html
import inspect
import logging
import secrets
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

from ..clock import Every
from ..httpsig import SCHEME_JWKS_URI, HttpRequest, KeyResolution, SignatureKey, SignatureVerifier
from ..httpsig.verify import SAFE_METHODS
from ..protocol.deferred import STATUS_INTERACTING, STATUS_PENDING
from ..protocol.errors import (
    AAuthError,
    ConfigurationError,
    DiscoveryError,
    ProtocolError,
    SignatureError,
)
from ..protocol.identifiers import LOOPBACK_HOSTS, is_server_identifier
from ..protocol.interaction import codes_match, generate_code, normalize_code
from ..protocol.metadata import ResourceMetadata
from ..protocol.r3 import MCP_VOCABULARY, parameters_match, parse_r3_document
from ..protocol.reply import JSON, Reply
from ..protocol.reply import NO_STORE as _NO_STORE
from ..protocol.requirement import Requirement
from ..protocol.scopes import is_identity_scope
from ..protocol.wire import WireFormatError
from ..stores import (
    APPROVED,
    COMPLETED,
    DENIED,
    EXECUTING,
    FAILED,
    INTERACTING,
    LIVE,
    OPEN,
    PENDING,
    Event,
    PendingRecord,
    PersonTokenRecord,
    Stores,
    advance,
)
from ..tokens import (
    DWK_ACCESS,
    DWK_AGENT,
    DWK_PERSON,
    AuthToken,
    PersonToken,
    mint_resource_token,
)
from . import events as ev
from .caller import PERSON as PERSON_KIND
from .caller import Caller, Session
from .config import INTERACTION, ResourceConfig, TrustedIssuerKeys
from .held import HeldRequest, HeldResult
from .percall import ProposedCall, build_proposal, read_mcp_call
from .policy import AGENT, AUTH, PER_CALL, PERSON, PUBLIC, SESSION, AccessRule
from .requests import (
    parse_authorization_request,
    parse_interaction_form,
    parse_revocation_request,
)
from .scopes import missing_scopes
from .session import mint_session_token
from .verifier import ResourceVerifier

log = logging.getLogger(__name__)

KIND_INTERACTION = "interaction"
KIND_APPROVAL = "approval"
KIND_AUTH_TOKEN = "auth-token"  # noqa: S105 (a requirement name)
KIND_PER_CALL = "per-call"
#: Pending kinds completed by presenting an auth token at the pending URL.
_TOKEN_KINDS = (KIND_AUTH_TOKEN, KIND_PER_CALL)

_HTML = "text/html; charset=utf-8"
_SIGNATURE_HEADERS = ("signature", "signature-input", "signature-key")


# -- outcomes ---------------------------------------------------------------------------------


def page(status: int, title: str, body_html: str,
         headers: Iterable[tuple[str, str]] = ()) -> Reply:
    """A small HTML page of the resource's own (the interaction page and its outcomes)."""
    document = (
        "<!doctype html><html><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(title)}</title></head><body>"
        f"<h1>{html.escape(title)}</h1>{body_html}</body></html>"
    )
    return Reply(status, (("Content-Type", _HTML), _NO_STORE,
                          ("Content-Security-Policy", "default-src 'none'"),
                          ("X-Frame-Options", "DENY"), *headers), document.encode())


@dataclass(frozen=True)
class Allow:
    """Let the request through; ``caller`` is ``None`` on public routes."""

    caller: Caller | None


@dataclass(frozen=True)
class Execute:
    """Run the held invocation ``held`` as ``caller``, then call
    :meth:`AAuthResource.complete`; add ``response_headers`` to its response."""

    caller: Caller
    held: HeldRequest
    record: PendingRecord
    response_headers: tuple[tuple[str, str], ...] = ()


Outcome = Allow | Reply | Execute


def _is_signed(request: HttpRequest) -> bool:
    return any(name in _SIGNATURE_HEADERS for name, _ in request.headers)


class _Seen:
    """A bounded set: what was written recently need not be written again."""

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self._items: OrderedDict[tuple[str, ...], None] = OrderedDict()

    def add(self, item: tuple[str, ...]) -> bool:
        """True when ``item`` is new."""
        if item in self._items:
            self._items.move_to_end(item)
            return False
        self._items[item] = None
        while len(self._items) > self.size:
            self._items.popitem(last=False)
        return True

    def discard(self, item: tuple[str, ...]) -> None:
        self._items.pop(item, None)


async def _maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


class AAuthResource:
    """A protected resource built from a :class:`ResourceConfig`.

    ``resource.verifier`` verifies (no policy, no writes); ``authorize`` applies a route's
    :class:`AccessRule`; ``endpoint`` serves what the resource publishes (metadata, JWKS,
    authorization endpoint, revocation endpoint, pending URLs, the interaction page);
    ``resolve`` / ``reject`` / ``expire`` drive pending records; ``revoke_*`` revoke.
    """

    def __init__(self, config: ResourceConfig) -> None:
        self.config = config
        assert config.stores is not None
        self.stores: Stores = config.stores
        self.clock = config.clock
        self.events = ev.EventSink(config.event_hook, clock=config.clock)
        self.verifier = ResourceVerifier(config, events=self.events)
        self.paths = config.paths
        self._metadata = self._build_metadata()
        self._jwks = {"keys": [config.signing_key.public_key.to_jwk(),
                               *(k.to_jwk() for k in config.previous_keys)]}
        self._remembered = _Seen()
        self._purges = Every(self.clock, config.purge_interval)
        self._revocation_verifier = SignatureVerifier(
            window=config.signature_window, clock=config.clock,
            accepted_schemes=(SCHEME_JWKS_URI,), require_body_digest=True,
            require_query=config.require_query)
        self._server_keys = TrustedIssuerKeys(config.issuer_keys, config.trust,
                                              own_as=config.access_server)

    # -- what the resource publishes ---------------------------------------------------------

    def _build_metadata(self) -> dict[str, Any]:
        c = self.config
        members: dict[str, Any] = {
            "issuer": c.identifier,
            "jwks_uri": c.url(self.paths.jwks),
            "access_mode": c.access_mode,
            "name": c.name, "description": c.description, "logo_uri": c.logo_uri,
            "documentation_uri": c.documentation_uri, "tos_uri": c.tos_uri,
            "policy_uri": c.policy_uri,
            "scope_descriptions": dict(c.scope_descriptions) or None,
            "signature_window": c.signature_window,
            "additional_signature_components": list(c.additional_signature_components) or None,
            "authorization_endpoint": c.url(self.paths.authorization)
            if c.publish_authorization_endpoint else None,
            "revocation_endpoint": c.url(self.paths.revocation)
            if c.publish_revocation_endpoint else None,
        }
        clash = set(c.extra_metadata) & {k for k, v in members.items() if v is not None}
        if clash:
            raise ConfigurationError(f"extra_metadata may not override {sorted(clash)}")
        return ResourceMetadata.build(**members, **c.extra_metadata).to_json()

    def metadata(self) -> dict[str, Any]:
        """``/.well-known/aauth-resource.json`` (§Resource Metadata)."""
        return dict(self._metadata)

    def jwks(self) -> dict[str, Any]:
        """The JWKS at ``jwks_uri``: the signing key and ``previous_keys``."""
        return {"keys": [dict(k) for k in self._jwks["keys"]]}

    def check_rules(self, rules: Iterable[AccessRule]) -> None:
        """Refuse, at start-up, rules whose scopes no resource token could carry (§Scopes:
        only scopes in ``scope_descriptions``, and identity scopes)."""
        for rule in rules:
            if rule.level in (AUTH, PER_CALL):
                self._described(rule.scopes)

    def _described(self, scopes: Iterable[str]) -> None:
        unknown = [s for s in scopes
                   if s not in self.config.scope_descriptions and not is_identity_scope(s)]
        if unknown:
            raise ConfigurationError(
                f"scopes {unknown} are not in scope_descriptions; a resource token may "
                "only carry described resource scopes (§Scopes)")

    # -- the decision for a protected route ---------------------------------------------------

    async def authorize(self, request: HttpRequest, rule: AccessRule,
                        held: HeldRequest | None = None) -> Outcome:
        """Apply ``rule`` to ``request``. ``held`` is the invocation to keep when the answer
        is a 202 that holds it (approval, deferred auth-token, interaction, per-call). An
        :class:`Execute` only under a per-call rule: the call, re-sent with the auth token
        approving it, completes its held twin."""
        await self._housekeeping()
        if rule.level == PUBLIC:
            return Allow(None)
        if not _is_signed(request):
            requirement = (Requirement.agent_token() if rule.level in (AGENT, SESSION)
                           else Requirement.person_token())
            return self._challenge(requirement, None, "unsigned")
        try:
            caller = await self.verifier.averify(request)
        except AAuthError as exc:
            return Reply.error(exc)
        now = self.clock()
        if rule.level == PER_CALL:
            return await self._per_call(caller, rule, request, held, now)
        refusal = await self._apply(caller, rule, request, held, now)
        if refusal is not None:
            return refusal
        if rule.approval:
            return await self._pend(KIND_APPROVAL, caller, rule.scopes, held,
                                    Requirement.approval(), self.config.approval_retry_after)
        replayed = await self._replayed(request, caller)
        if replayed is not None:
            return replayed
        await self._remember(caller)
        if caller.kind == PERSON_KIND:
            await self._remember_person(caller)
        self.events.emit(ev.VERIFIED, caller.kind, caller=caller.label, iss=caller.issuer,
                         jti=caller.jti, method=request.method, path=request.target.path)
        return Allow(caller)

    async def _apply(self, caller: Caller, rule: AccessRule, request: HttpRequest,
                     held: HeldRequest | None, now: float) -> Reply | None:
        if rule.level == AGENT:
            return None
        if rule.level == PERSON:
            return None if caller.person is not None else self._challenge(
                Requirement.person_token(), caller, "person_token_required")
        if rule.level == SESSION:
            if caller.session is None:
                return await self._pend_interaction(caller, rule.scopes, held)
            missing = missing_scopes(caller.session.scopes, rule.scopes,
                                     self.config.scope_matcher)
            return self._insufficient(caller, missing) if missing else None
        # AUTH
        token = caller.token
        if isinstance(token, AuthToken):
            standing = self._standing_scopes(caller)
            missing = missing_scopes(standing, rule.scopes, self.config.scope_matcher,
                                     token.claims)
            if not missing:
                return None
            if not rule.step_up:
                return self._insufficient(caller, missing)
            record = await self.stores.person_tokens.afind(
                caller.thumbprint, token.ps, token.sub, token.mission_s256, now=now)
            if record is None:
                return self._challenge(Requirement.person_token(), caller,
                                       "step_up_needs_person_token", missing=list(missing))
            # Keep what was granted: described resource scopes and identity scopes (§Scopes),
            # so the broader token still carries the identity claims the first one did.
            granted = [s for s in standing
                       if s in self.config.scope_descriptions or is_identity_scope(s)]
            scopes = tuple(dict.fromkeys((*granted, *rule.scopes)))
            return await self._auth_challenge(caller, rule, held, record, scopes,
                                              caller.account, "step_up", missing=list(missing))
        if isinstance(token, PersonToken):
            await self._remember_person(caller)  # a later step-up names this person token
            return await self._auth_challenge(caller, rule, held, self._person_record(caller),
                                              rule.scopes, None, "auth_token_required")
        return self._challenge(Requirement.person_token(), caller, "person_token_required")

    # -- challenges --------------------------------------------------------------------------

    def _challenge(self, requirement: Requirement, caller: Caller | None, reason: str,
                   **detail: Any) -> Reply:
        self.events.emit(ev.CHALLENGED, reason, requirement=requirement.value,
                         caller=caller.label if caller else None, **detail)
        error = requirement.value.replace("-", "_") + "_required"
        return Reply.problem(401, error, f"this request needs requirement={requirement.value}",
                             requirement.headers().items())

    def _insufficient(self, caller: Caller, missing: Sequence[str]) -> Reply:
        # The agent is not told which scope it lacked (seed 004, DESIGN.md Conventions).
        self.events.emit(ev.DENIED, "insufficient_scope", caller=caller.label,
                         iss=caller.issuer, jti=caller.jti, missing=list(missing))
        return Reply.error(ProtocolError(
            "insufficient_scope", "the presented authorization does not cover this request"))

    def _person_record(self, caller: Caller) -> PersonTokenRecord:
        token = caller.token
        assert isinstance(token, PersonToken)
        return PersonTokenRecord(agent_jkt=caller.thumbprint, ps=token.iss, sub=token.sub,
                                 jti=token.jti, exp=token.exp, mission_s256=token.mission_s256,
                                 tenant=token.tenant)

    async def _remember_person(self, caller: Caller) -> None:
        """§Resource Token Structure, ``presented_jti``: keep the person token each agent key
        presented, so a later step-up challenge can name it."""
        if self._remembered.add(("person", caller.thumbprint, caller.issuer, caller.jti)):
            await self.stores.person_tokens.aput(self._person_record(caller))

    async def _remember(self, caller: Caller) -> None:
        if self._remembered.add(("token", caller.issuer, caller.jti)):
            await self.stores.revocations.aremember_token(caller.issuer, caller.jti,
                                                          caller.expires_at)

    async def _replayed(self, request: HttpRequest, caller: Caller) -> Reply | None:
        """§Freshness and Replay, for state-changing requests that are let through."""
        replay = self.stores.replay
        signature = caller.signature
        if replay is None or signature is None or request.method.upper() in SAFE_METHODS:
            return None
        if await replay.acheck_and_store(signature.replay_key,
                                         signature.created + self.config.signature_window):
            return None
        self.events.emit(ev.DENIED, "replay", caller=caller.label)
        from ..protocol.errors import InvalidSignatureError

        return Reply.error(InvalidSignatureError("the signature has been seen before"))

    def mint_resource_token(self, agent_jkt: str, person: PersonTokenRecord,
                            scopes: Sequence[str], account: str | None = None, *,
                            r3_uri: str | None = None, r3_s256: str | None = None) -> str:
        """A resource token (§Resource Token Structure) for the agent key ``agent_jkt``,
        resting on the verified person token ``person``: ``ps``, ``sub``, ``presented_jti``,
        ``mission_s256`` and ``tenant`` come from it; ``aud`` is the resource's AS, else the
        person token's issuer; at most ``resource_token_lifetime`` and, under a mission, never
        past the person token (which never outlives the mission)."""
        self._described(scopes)
        aud = self.config.access_server or person.ps
        token = mint_resource_token(
            self.config.signing_key, iss=self.config.identifier, aud=aud, agent_jkt=agent_jkt,
            scope=scopes, ps=person.ps, sub=person.sub, presented_jti=person.jti,
            mission_s256=person.mission_s256, tenant=person.tenant, account=account,
            mission_expires_at=person.exp if person.mission_s256 else None,
            r3_uri=r3_uri, r3_s256=r3_s256,
            lifetime=self.config.resource_token_lifetime, clock=self.clock)
        self.events.emit(ev.ISSUED, "resource_token", aud=aud, scope=" ".join(scopes),
                         presented_jti=person.jti, agent_jkt=agent_jkt, r3_uri=r3_uri)
        return token

    async def _auth_challenge(self, caller: Caller, rule: AccessRule, held: HeldRequest | None,
                              person: PersonTokenRecord, scopes: Sequence[str],
                              account: str | None, reason: str, **detail: Any) -> Reply:
        token = self.mint_resource_token(caller.thumbprint, person, scopes, account)
        requirement = Requirement.auth_token(token)
        if rule.deferred and held is not None:
            return await self._pend(
                KIND_AUTH_TOKEN, caller, scopes, held, requirement,
                self.config.deferred_retry_after,
                extra={"ps": person.ps, "sub": person.sub, "mission_s256": person.mission_s256,
                       "person_exp": person.exp, "presented_jti": person.jti,
                       "rt_exp": self.clock() + self.config.resource_token_lifetime})
        return self._challenge(requirement, caller, reason, **detail)

    # -- per-call tools (R3 §Per-Call Proposals) ----------------------------------------------

    def r3_url(self, record_id: str) -> str:
        """The ``r3_uri`` of the proposal held with pending record ``record_id``."""
        return self.config.url(f"{self.paths.r3}/{record_id}")

    def _proposal_id(self, token: AuthToken) -> str | None:
        """The pending record whose proposal ``token`` pins, when it pins one of ours."""
        prefix = self.config.url(self.paths.r3 + "/")
        uri = token.r3_uri
        if uri is None or not uri.startswith(prefix):
            return None
        record_id = uri[len(prefix):]
        return record_id if record_id and "/" not in record_id else None

    def _standing_scopes(self, caller: Caller) -> tuple[str, ...]:
        """What an auth token grants beyond one call: nothing for a per-call token, whose
        grant is consumed by the call it approved (R3 §Per-Call Proposals, Single use)."""
        token = caller.token
        if isinstance(token, AuthToken) and self._proposal_id(token) is not None:
            return ()
        return caller.scopes

    def _refuse_per_call(self, caller: Caller, reason: str, detail: str, **fields: Any
                         ) -> Reply:
        self.events.emit(ev.DENIED, reason, caller=caller.label, iss=caller.issuer,
                         jti=caller.jti, **fields)
        return Reply.error(ProtocolError("invalid_auth_token", detail, status=403))

    async def _per_call(self, caller: Caller, rule: AccessRule, request: HttpRequest,
                        held: HeldRequest | None, now: float) -> Outcome:
        """A call of a per-call tool. With an auth token pinning one of our proposals it is
        that proposal's completion (:meth:`_presented`); otherwise it is a new invocation:
        held, with a proposal of its own (R3 §Per-Call Proposals, Flow step 1)."""
        token = caller.token
        if isinstance(token, AuthToken) and self._proposal_id(token) is not None:
            return await self._presented(caller, token, request, now)
        if isinstance(token, PersonToken):
            await self._remember_person(caller)
            person: PersonTokenRecord | None = self._person_record(caller)
        elif isinstance(token, AuthToken):
            person = await self.stores.person_tokens.afind(
                caller.thumbprint, token.ps, token.sub, token.mission_s256, now=now)
        else:
            person = None
        if person is None:
            return self._challenge(Requirement.person_token(), caller, "person_token_required")
        if held is None:
            raise ConfigurationError("a per-call rule holds the call: pass held= to authorize")
        try:
            tool, arguments = read_mcp_call(request.body)
            proposal = build_proposal(ProposedCall(tool, arguments, caller), rule.display)
        except WireFormatError as exc:
            self.events.emit(ev.DENIED, exc.code, caller=caller.label, check="per_call")
            return Reply.error(exc)
        record_id = secrets.token_urlsafe(24)
        r3_uri = self.r3_url(record_id)
        aud = self.config.access_server or person.ps
        readers = [[person.ps, DWK_PERSON]]
        if aud != person.ps:
            readers.append([aud, DWK_ACCESS])
        rt = self.mint_resource_token(caller.thumbprint, person, rule.scopes,
                                      r3_uri=r3_uri, r3_s256=proposal.s256)
        return await self._pend(
            KIND_PER_CALL, caller, rule.scopes, held, Requirement.auth_token(rt),
            self.config.deferred_retry_after, record_id=record_id,
            extra={"ps": person.ps, "sub": person.sub, "mission_s256": person.mission_s256,
                   "person_exp": person.exp, "presented_jti": person.jti,
                   "rt_exp": now + self.config.resource_token_lifetime, "tool": tool,
                   "r3_uri": r3_uri, "r3_s256": proposal.s256, "readers": readers,
                   "digested": sorted(proposal.digested),
                   "proposal": base64.b64encode(proposal.document).decode("ascii")})

    def _approves(self, caller: Caller, token: AuthToken, record: PendingRecord
                  ) -> Reply | None:
        """``None`` when ``token`` approves the call held in per-call ``record``: it pins the
        record's proposal (``r3_uri`` and ``r3_s256``, R3 §Per-Call Proposals, Flow step 2)
        and lists its tool in ``r3_granted``; else the refusal."""
        data = record.data
        granted = token.r3_granted
        if token.r3_uri != data.get("r3_uri") or token.r3_s256 != data.get("r3_s256") \
                or granted is None or granted.vocabulary != MCP_VOCABULARY \
                or not granted.covers({"tool": data.get("tool")}):
            return self._refuse_per_call(caller, "per_call_other_call",
                                         "the auth token does not approve this call",
                                         pending=record.id)
        return None

    async def _presented(self, caller: Caller, token: AuthToken, request: HttpRequest,
                         now: float) -> Outcome:
        """A per-call token presented with a call (R3 §Per-Call Proposals, Flow steps 3-4):
        the call it approved, re-sent unchanged, runs in place of its held twin -- once; a
        repeat is answered from the retained result. Another tool, other arguments, or any
        call once the approved one ran with another token: refused, nothing executed."""
        record_id = self._proposal_id(token)
        assert record_id is not None
        record = await self.stores.pending.aget(record_id)
        if record is None or record.kind != KIND_PER_CALL \
                or not hmac.compare_digest(record.agent_jkt, caller.thumbprint):
            return self._refuse_per_call(caller, "per_call_unknown",
                                         "the auth token approves no call held here")
        refusal = self._approves(caller, token, record)
        if refusal is not None:
            return refusal
        data = record.data
        try:
            tool, arguments = read_mcp_call(request.body)
        except WireFormatError as exc:
            return Reply.error(exc)
        if tool != data.get("tool"):
            return self._refuse_per_call(caller, "per_call_other_tool",
                                         "the auth token approves a call of another tool",
                                         pending=record.id)
        proposed = parse_r3_document(base64.b64decode(data["proposal"])).parameters or {}
        same = parameters_match(proposed, frozenset(data.get("digested", ())), arguments)
        if record.state == COMPLETED:
            stored = data.get("result")
            if same and stored is not None \
                    and [caller.issuer, caller.jti] == data.get("completed_by"):
                result = HeldResult.from_json(stored)
                return Reply(result.status, result.headers, result.body)
            return self._refuse_per_call(caller, "per_call_spent",
                                         "the approved call has already run",
                                         pending=record.id)
        if not same:
            return self._refuse_per_call(caller, "per_call_arguments_changed",
                                         "the call's arguments are not the ones approved",
                                         pending=record.id)
        if record.state == EXECUTING:
            return self._pending_reply(record)
        if record.state != PENDING or now >= record.expires_at:
            return self._refuse_per_call(caller, "per_call_ended",
                                         "the approved call is no longer held",
                                         pending=record.id)
        replayed = await self._replayed(request, caller)
        if replayed is not None:
            return replayed
        outcome = await self._poll_deferred(caller, record, now)
        if isinstance(outcome, Execute):
            await self._remember(caller)
        return outcome

    async def _r3_reader(self, key: SignatureKey) -> KeyResolution:
        """``scheme=jwks_uri`` of a PS (``aauth-person.json``) or an AS
        (``aauth-access.json``); the context is ``[server, dwk]``."""
        dwk = key.params.get("dwk")
        if dwk not in (DWK_PERSON, DWK_ACCESS):  # refused before any key is fetched
            raise DiscoveryError("an R3 document is read by a person server or access server")
        resolution = await self._server_key(key)
        return KeyResolution(jwk=resolution.jwk, context=[resolution.context, str(dwk)])

    async def r3_document(self, request: HttpRequest, record_id: str) -> Reply:
        """GET ``r3_uri``: the proposal's bytes as serialized (R3 §Content Addressing), to
        the PS named in the resource token's ``ps`` or the AS in its ``aud``, each signing
        as itself (``Signature-Key: sig=jwks_uri``); any other signer -- an agent above all
        -- is refused (R3 §R3 Document Access Restriction)."""
        if request.method.upper() not in ("GET", "HEAD"):
            return Reply.problem(405, "invalid_request", "use GET", [("Allow", "GET")])
        try:
            verified = await self._revocation_verifier.averify(request, self._r3_reader)
        except SignatureError as exc:
            self.events.emit(ev.DENIED, exc.code, endpoint="r3")
            return Reply.error(exc)
        reader = list(verified.context)
        record = await self.stores.pending.aget(record_id)
        if record is None or record.kind != KIND_PER_CALL \
                or not isinstance(record.data.get("proposal"), str):
            return Reply.problem(404, "not_found", "no such R3 document")
        if reader not in record.data.get("readers", []):
            self.events.emit(ev.DENIED, "r3_not_entitled", endpoint="r3", caller=reader[0],
                             pending=record.id)
            return Reply.problem(403, "access_denied",
                                 "only the PS or AS the resource token names may read this")
        self.events.emit(ev.VERIFIED, "r3_document", caller=reader[0], pending=record.id)
        return Reply(200, (("Content-Type", JSON), _NO_STORE),
                     base64.b64decode(record.data["proposal"]))

    # -- pending records ---------------------------------------------------------------------

    def pending_url(self, record_id: str) -> str:
        return self.config.url(f"{self.paths.pending}/{record_id}")

    def interaction_url(self, interaction_id: str) -> str:
        return self.config.url(f"{self.paths.interaction}/{interaction_id}")

    async def _pend_interaction(self, caller: Caller, scopes: Sequence[str],
                                held: HeldRequest | None,
                                extra: Mapping[str, Any] | None = None) -> Reply:
        return await self._pend(KIND_INTERACTION, caller, scopes, held, None,
                                self.config.interaction_retry_after, extra=extra)

    async def _pend(self, kind: str, caller: Caller, scopes: Sequence[str],
                    held: HeldRequest | None, requirement: Requirement | None, retry_after: int,
                    *, extra: Mapping[str, Any] | None = None,
                    record_id: str | None = None) -> Reply:
        now = self.clock()
        record_id = record_id or secrets.token_urlsafe(24)
        interaction_id = code = None
        if kind == KIND_INTERACTION:
            interaction_id = secrets.token_urlsafe(16)
            shown = generate_code()
            code = normalize_code(shown)
            requirement = Requirement.interaction(self.interaction_url(interaction_id), shown)
        assert requirement is not None
        data = {"held": held.to_json() if held else None, "scopes": list(scopes),
                "requirement": requirement.header_value(), "retry_after": retry_after,
                "agent": caller.agent, **(extra or {})}
        lifetime = self.config.pending_lifetime
        record = PendingRecord(
            id=record_id, kind=kind, state=PENDING, agent_jkt=caller.thumbprint, created_at=now,
            expires_at=now + lifetime, purge_at=now + lifetime + 3600,
            interaction_id=interaction_id, code=code, data=data)
        await self.stores.pending.acreate(record)
        self.events.emit(ev.PENDING, kind, pending=record_id, caller=caller.label,
                         scope=" ".join(scopes) or None)
        return self._pending_reply(record)

    def _pending_reply(self, record: PendingRecord, status: str | None = None) -> Reply:
        headers = [("Location", self.pending_url(record.id)),
                   ("Retry-After", str(record.data.get("retry_after", 0))), _NO_STORE,
                   ("AAuth-Requirement", str(record.data["requirement"]))]
        state = status or (STATUS_INTERACTING if record.state == INTERACTING else STATUS_PENDING)
        return Reply.json(202, {"status": state}, headers)

    async def resolve(self, record_id: str, *, subject: str | None = None,
                      scopes: Sequence[str] | None = None) -> bool:
        """Approve a pending record (an approver's decision, or the person's at the
        resource's own page). An interaction record needs the authenticated ``subject``.
        False when there is nothing pending to resolve."""
        record = await self.stores.pending.aget(record_id)
        if record is None or record.state not in OPEN or record.kind in _TOKEN_KINDS:
            return False
        if record.kind == KIND_INTERACTION and not subject:
            raise ConfigurationError("approving an interaction needs the person's subject")
        data = dict(record.data, subject=subject)
        if scopes is not None:
            data["scopes"] = list(scopes)
        done = await self.stores.pending.areplace(advance(record, Event.APPROVE, data=data))
        if done is not None:
            self.events.emit(ev.RESOLVED, record.kind, pending=record_id, subject=subject)
        return done is not None

    async def reject(self, record_id: str) -> bool:
        """Deny a pending record: its next poll answers ``403 denied``."""
        record = await self.stores.pending.aget(record_id)
        if record is None or record.state not in OPEN:
            return False
        done = await self.stores.pending.areplace(advance(record, Event.DENY))
        if done is not None:
            self.events.emit(ev.REJECTED, record.kind, pending=record_id)
        return done is not None

    async def expire(self, record_id: str) -> bool:
        """End a pending record now: its next poll answers ``408 expired``."""
        record = await self.stores.pending.aget(record_id)
        if record is None or record.state not in (PENDING, INTERACTING, APPROVED):
            return False
        now = self.clock()
        done = await self.stores.pending.areplace(record.evolve(expires_at=now))
        return done is not None

    async def purge(self) -> int:
        """Forget expired pending records, revocations, known tokens and person-token
        records (the seed's ``InteractionManager.cleanup``); returns how many."""
        return await self.stores.apurge(self.clock())

    async def _housekeeping(self) -> None:
        """:meth:`purge` once ``purge_interval`` seconds have passed since the last pass, so a
        long-running resource does not keep every record it ever wrote; the request that
        finds it due pays for one pass (a few indexed deletes)."""
        now = self._purges.due()
        if now is None:
            return
        try:
            await self.stores.apurge(now)
        except Exception:  # housekeeping never fails the request that triggered it
            log.exception("housekeeping failed")

    async def complete(self, execute: Execute, result: HeldResult) -> None:
        """Store the response of a held invocation (§Deferred Delivery: kept until the auth
        token's ``exp``, to answer a repeated presentation without executing again)."""
        record = await self.stores.pending.aget(execute.record.id)
        if record is None or record.state != EXECUTING:
            return
        retain = float(record.data.get("retain_until", 0))
        data = dict(record.data, result=result.to_json(), held=None)
        await self.stores.pending.areplace(advance(
            record, Event.DELIVER, data=data, purge_at=max(record.purge_at, retain)))
        self.events.emit(ev.COMPLETED, record.kind, pending=record.id, status=result.status)

    async def poll(self, request: HttpRequest, record_id: str) -> Reply | Execute:
        """GET on a pending URL (§Deferred Responses, §Pending URL Security)."""
        if request.method.upper() not in ("GET", "HEAD"):
            return Reply.problem(405, "invalid_request", "poll a pending URL with GET",
                                 [("Allow", "GET")])
        record = await self.stores.pending.aget(record_id)
        not_found = Reply.problem(404, "not_found", "no such pending request")
        if record is None:
            return not_found
        try:
            caller = await self.verifier.averify(request)
        except AAuthError as exc:
            return Reply.error(exc)
        if not hmac.compare_digest(caller.thumbprint, record.agent_jkt):
            self.events.emit(ev.DENIED, "pending_wrong_key", pending=record_id,
                             caller=caller.label)
            return not_found  # indistinguishable from an unknown pending URL
        now = self.clock()
        gone = Reply.problem(410, "invalid_code", "this pending request is finished")
        if record.state == COMPLETED:
            stored = record.data.get("result")
            if record.kind in _TOKEN_KINDS and stored is not None and \
                    [caller.issuer, caller.jti] == record.data.get("completed_by"):
                result = HeldResult.from_json(stored)
                return Reply(result.status, result.headers, result.body)
            return gone
        if record.state == FAILED:
            return gone
        if record.state == DENIED:
            if await self.stores.pending.areplace(advance(record, Event.DELIVER)) is None:
                return gone
            return Reply.error(ProtocolError("denied", "the request was denied"))
        if record.state in LIVE and now >= record.expires_at:
            if await self.stores.pending.areplace(advance(record, Event.FAIL)) is None:
                return gone
            self.events.emit(ev.EXPIRED, record.kind, pending=record_id)
            return Reply.error(ProtocolError("expired", "the pending request expired"))
        if record.state == EXECUTING:
            return self._pending_reply(record)
        if record.kind in _TOKEN_KINDS:
            return await self._poll_deferred(caller, record, now)
        if record.state != APPROVED:
            return self._pending_reply(record)
        return await self._finish_approved(caller, record, now)

    async def _poll_deferred(self, caller: Caller, record: PendingRecord,
                             now: float) -> Reply | Execute:
        data = record.data
        token = caller.token
        if not isinstance(token, AuthToken):
            # Still waiting for the auth token; renew an expired resource token (the
            # invocation stays held, nothing is re-sent).
            if caller.kind == PERSON_KIND and now >= float(data.get("rt_exp", 0)) \
                    and caller.person == (data.get("ps"), data.get("sub")):
                person = self._person_record(caller)
                if person.mission_s256 == data.get("mission_s256"):
                    fresh = self.mint_resource_token(
                        caller.thumbprint, person, list(data["scopes"]),
                        r3_uri=data.get("r3_uri"), r3_s256=data.get("r3_s256"))
                    renewed = await self.stores.pending.areplace(record.evolve(data=dict(
                        data, requirement=Requirement.auth_token(fresh).header_value(),
                        rt_exp=now + self.config.resource_token_lifetime,
                        presented_jti=person.jti)))
                    if renewed is not None:
                        record = renewed
            return self._pending_reply(record)
        if (token.ps, token.sub) != (data.get("ps"), data.get("sub")) \
                or token.mission_s256 != data.get("mission_s256"):
            self.events.emit(ev.DENIED, "deferred_person_mismatch", pending=record.id,
                             caller=caller.label)
            return Reply.error(ProtocolError(
                "invalid_auth_token", "the auth token is not for the held request's person",
                status=403))
        if record.kind == KIND_PER_CALL:
            refusal = self._approves(caller, token, record)
            if refusal is not None:
                return refusal
        scopes = caller.scopes if record.kind == KIND_PER_CALL else self._standing_scopes(caller)
        missing = missing_scopes(scopes, list(data["scopes"]), self.config.scope_matcher,
                                 token.claims)
        if missing:
            return self._insufficient(caller, missing)
        executing = await self.stores.pending.areplace(advance(
            record, Event.CLAIM, data=dict(data, completed_by=[caller.issuer, caller.jti],
                                           retain_until=token.exp)))
        if executing is None:  # another poll won the race: it executes, this one waits
            return self._pending_reply(record)
        return self._execute(caller, executing)

    async def _finish_approved(self, caller: Caller, record: PendingRecord,
                               now: float) -> Reply | Execute:
        headers: tuple[tuple[str, str], ...] = ()
        data = record.data
        scopes = [str(s) for s in data.get("scopes", [])]
        if record.kind == KIND_INTERACTION:
            token, session = mint_session_token(
                self.config.signing_key, resource=self.config.identifier,
                sub=str(data["subject"]), agent_jkt=caller.thumbprint, scopes=scopes, now=now,
                lifetime=self.config.session_lifetime, account=data.get("account"),
                agent=caller.agent)
            self.events.emit(ev.ISSUED, "session_token", subject=data["subject"],
                             jti=session.jti, agent_jkt=caller.thumbprint)
            await self.stores.revocations.aremember_token(self.config.identifier, session.jti,
                                                          session.expires_at)
            headers = (("AAuth-Access", token),)
            caller = caller.with_session(session, self.config.identifier)
        executing = await self.stores.pending.areplace(
            advance(record, Event.CLAIM if data.get("held") else Event.DELIVER))
        if executing is None:
            return self._pending_reply(record)
        if data.get("held"):
            return self._execute(caller, executing, headers)
        self.events.emit(ev.COMPLETED, record.kind, pending=record.id)
        body: dict[str, Any] = {"status": "authorized" if record.kind == KIND_INTERACTION
                                else "approved"}
        if scopes:
            body["scope"] = " ".join(scopes)
        return Reply.json(200, body, (_NO_STORE, *headers))

    def _execute(self, caller: Caller, record: PendingRecord,
                 headers: tuple[tuple[str, str], ...] = ()) -> Execute:
        return Execute(caller, HeldRequest.from_json(record.data["held"]), record, headers)

    # -- the interaction page (resource-managed, §Resource-Managed Authorization) -------------

    async def interaction_page(self, request: HttpRequest, interaction_id: str,
                               starlette_request: Any = None) -> Reply:
        record = await self.stores.pending.aget_by_interaction(interaction_id)
        if record is None or record.kind != KIND_INTERACTION:
            return page(404, "Not found", "<p>There is no such request.</p>")
        if request.method.upper() == "POST":
            return await self._interaction_decision(request, record, starlette_request)
        if request.method.upper() not in ("GET", "HEAD"):
            return page(405, "Method not allowed", "", [("Allow", "GET, POST")])
        query = dict(_query_pairs(request.query))
        now = self.clock()
        if now >= record.expires_at:
            return page(408, "Expired", "<p>This request has expired.</p>")
        if record.state != PENDING or record.code is None:
            return page(410, "Already used",
                              "<p>This code has been used or is no longer valid.</p>")
        presented = query.get("code", "")
        try:
            matches = codes_match(record.code, presented)
        except ConfigurationError:  # pragma: no cover - stored codes are normalized
            matches = False
        if not matches:
            attempts = record.code_attempts + 1
            failed = attempts >= self.config.max_code_attempts
            await self.stores.pending.areplace(
                advance(record, Event.FAIL, code_attempts=attempts) if failed
                else record.evolve(code_attempts=attempts))
            self.events.emit(ev.DENIED, "invalid_code", pending=record.id, attempts=attempts)
            return page(410 if failed else 400, "Invalid code",
                              "<p>That code is not valid for this request.</p>")
        page_token = secrets.token_urlsafe(24)
        callback = query.get("callback")
        kept = callback if _safe_callback(callback) else None
        interacting = await self.stores.pending.areplace(advance(
            record, Event.ARRIVE, data=dict(record.data, page_token=page_token, callback=kept)))
        if interacting is None:
            return page(410, "Already used", "<p>This code has just been used.</p>")
        return self._consent_page(interacting, page_token)

    def _consent_page(self, record: PendingRecord, page_token: str) -> Reply:
        name = self.config.name or self.config.identifier
        agent = record.data.get("agent") or "an AI agent"
        describe = self.config.scope_descriptions
        items = "".join(
            f"<li><code>{html.escape(s)}</code> {html.escape(describe.get(s, ''))}</li>"
            for s in record.data.get("scopes", []))
        action = html.escape(self.interaction_url(record.interaction_id or ""))
        body = (
            f"<p><strong>{html.escape(str(agent))}</strong> asks to act for you at "
            f"<strong>{html.escape(name)}</strong>.</p>"
            + (f"<ul>{items}</ul>" if items else "")
            + f"<form method=\"post\" action=\"{action}\">"
            f"<input type=\"hidden\" name=\"page_token\" value=\"{html.escape(page_token)}\">"
            "<button name=\"decision\" value=\"approve\">Approve</button> "
            "<button name=\"decision\" value=\"deny\">Deny</button></form>"
        )
        return page(200, f"Allow access to {name}?", body)

    async def _interaction_decision(self, request: HttpRequest, record: PendingRecord,
                                    starlette_request: Any) -> Reply:
        try:
            form = parse_interaction_form(request.body)
        except WireFormatError as exc:
            return page(400, "Bad request", f"<p>{html.escape(exc.detail)}</p>")
        expected = record.data.get("page_token")
        if record.state != INTERACTING or not isinstance(expected, str) or \
                not hmac.compare_digest(expected.encode(), form.page_token.encode()):
            return page(410, "Already used", "<p>This page is no longer valid.</p>")
        if self.clock() >= record.expires_at:
            return page(408, "Expired", "<p>This request has expired.</p>")
        callback = record.data.get("callback")
        if form.decision == "deny":
            await self.reject(record.id)
            return _finish_page(callback, "access_denied", "You denied the request.")
        authenticate = self.config.person_authenticator
        subject = (await _maybe_await(authenticate(starlette_request))
                   if authenticate is not None and starlette_request is not None else None)
        if not subject:
            return page(401, "Sign in required",
                              "<p>Sign in to this service, then approve again.</p>")
        await self.resolve(record.id, subject=str(subject))
        return _finish_page(callback, None, "Done. You can close this page.")

    # -- the authorization endpoint (§Authorization Endpoint Request) ------------------------

    async def authorization_endpoint(self, request: HttpRequest) -> Reply:
        if request.method.upper() != "POST":
            return Reply.problem(405, "invalid_request", "use POST", [("Allow", "POST")])
        if not _is_signed(request):
            return self._challenge(Requirement.person_token(), None, "unsigned")
        try:
            caller = await self.verifier.averify(request)
        except AAuthError as exc:
            return Reply.error(exc)
        if caller.kind != PERSON_KIND:
            # §Authorization Endpoint Request: the agent MUST present a person token.
            return self._challenge(Requirement.person_token(), caller, "person_token_required")
        try:
            wanted = parse_authorization_request(request.body)
        except WireFormatError as exc:
            self.events.emit(ev.DENIED, exc.code, endpoint="authorization", caller=caller.label)
            return Reply.error(exc)
        unknown = [s for s in wanted.scopes
                   if s not in self.config.scope_descriptions and not is_identity_scope(s)]
        if unknown:
            self.events.emit(ev.DENIED, "invalid_scope", caller=caller.label, scopes=unknown)
            return Reply.error(ProtocolError("invalid_scope",
                                             "a requested scope is not offered here"))
        validator = self.config.account_validator
        if wanted.account is not None and (
            validator is None or not await _maybe_await(validator(caller, wanted.account))
        ):
            self.events.emit(ev.DENIED, "invalid_account", caller=caller.label)
            return Reply.error(ProtocolError(
                "invalid_account", "the account is not held by this person"))
        replayed = await self._replayed(request, caller)
        if replayed is not None:
            return replayed
        await self._remember_person(caller)
        if self.config.authorization_mode == INTERACTION:
            return await self._pend_interaction(caller, wanted.scopes, None,
                                                extra={"account": wanted.account})
        token = self.mint_resource_token(caller.thumbprint, self._person_record(caller),
                                         wanted.scopes, wanted.account)
        return Reply.json(200, {"resource_token": token}, [_NO_STORE])

    # -- the revocation endpoint (§Token Revocation) ------------------------------------------

    async def _server_key(self, key: SignatureKey) -> KeyResolution:
        """``scheme=jwks_uri``: the caller is the server ``id`` (a PS, an AS, an agent
        provider), its key found through ``{id}/.well-known/{dwk}``."""
        server, dwk, kid = key.params.get("id"), key.params.get("dwk"), key.params.get("kid")
        if not is_server_identifier(server) or dwk not in (DWK_PERSON, DWK_ACCESS, DWK_AGENT) \
                or not isinstance(kid, str) or not kid:
            raise DiscoveryError("jwks_uri must name a server identifier, an AAuth dwk and a kid")
        public = await self._server_keys.aget_key(str(server), str(dwk), kid)
        return KeyResolution(jwk=public.to_jwk(), context=str(server))

    async def revocation_endpoint(self, request: HttpRequest) -> Reply:
        if request.method.upper() != "POST":
            return Reply.problem(405, "invalid_request", "use POST", [("Allow", "POST")])
        try:
            verified = await self._revocation_verifier.averify(request, self._server_key)
        except SignatureError as exc:
            self.events.emit(ev.DENIED, exc.code, endpoint="revocation")
            return Reply.error(exc)
        caller = str(verified.context)
        try:
            wanted = parse_revocation_request(request.body)
        except WireFormatError as exc:
            self.events.emit(ev.DENIED, exc.code, endpoint="revocation", caller=caller)
            return Reply.error(exc)
        if caller != wanted.iss and caller not in self.config.trusted_revokers:
            self.events.emit(ev.DENIED, "not_the_issuer", endpoint="revocation", caller=caller,
                             iss=wanted.iss)
            return Reply.problem(403, "access_denied",
                                 "only the token's issuer may revoke it")
        now = self.clock()
        if not await self.stores.revocations.ais_known(wanted.iss, wanted.jti, now=now):
            self.events.emit(ev.DENIED, "unknown_token", endpoint="revocation", caller=caller,
                             iss=wanted.iss, jti=wanted.jti)
            return Reply.problem(404, "not_found", "no such token is known here")
        if self.stores.replay is not None and not await self.stores.replay.acheck_and_store(
            verified.replay_key, verified.created + self.config.signature_window
        ):
            from ..protocol.errors import InvalidSignatureError

            return Reply.error(InvalidSignatureError("the signature has been seen before"))
        await self.revoke_token(wanted.iss, wanted.jti, reason="endpoint", by=caller)
        return Reply.json(200, {"revoked": True}, [_NO_STORE])

    # -- revocation by the resource's operator -----------------------------------------------

    def _until(self, until: float | None) -> float:
        return until if until is not None else self.clock() + self.config.revocation_lifetime

    async def revoke_token(self, iss: str, jti: str, *, until: float | None = None,
                           reason: str = "operator", by: str | None = None) -> None:
        await self.stores.revocations.arevoke_token(iss, jti, self._until(until))
        self._remembered.discard(("token", iss, jti))
        self.events.emit(ev.REVOKED, reason, iss=iss, jti=jti, by=by)

    async def revoke_agent(self, agent: str, *, until: float | None = None) -> None:
        """``agent``: an agent identifier or an agent key's thumbprint ("disconnect this
        agent")."""
        await self.stores.revocations.arevoke_agent(agent, self._until(until))
        self.events.emit(ev.REVOKED, "agent", agent=agent)

    async def revoke_person(self, iss: str, sub: str, *, until: float | None = None) -> None:
        """Every credential naming the person ``(iss, sub)``."""
        await self.stores.revocations.arevoke_person(iss, sub, self._until(until))
        self.events.emit(ev.REVOKED, "person", iss=iss, sub=sub)

    # -- routing of the published endpoints ---------------------------------------------------

    def is_endpoint(self, method: str, path: str) -> bool:
        p = self.paths
        if path in (p.metadata, p.jwks):
            return True
        if path == p.authorization:
            return self.config.publish_authorization_endpoint
        if path == p.revocation:
            return self.config.publish_revocation_endpoint
        return any(path.startswith(prefix + "/") and "/" not in path[len(prefix) + 1:]
                   and len(path) > len(prefix) + 1
                   for prefix in (p.pending, p.interaction, p.r3))

    async def endpoint(self, request: HttpRequest, path: str,
                       starlette_request: Any = None) -> Reply | Execute:
        """Serve one of the resource's own endpoints (``is_endpoint(method, path)``)."""
        p = self.paths
        method = request.method.upper()
        cache = ("Cache-Control", "public, max-age=300")
        if path in (p.metadata, p.jwks):
            if method not in ("GET", "HEAD"):
                return Reply.problem(405, "invalid_request", "use GET", [("Allow", "GET")])
            return Reply.json(200, self.metadata() if path == p.metadata else self.jwks(),
                              [cache])
        if path == p.authorization:
            return await self.authorization_endpoint(request)
        if path == p.revocation:
            return await self.revocation_endpoint(request)
        if path.startswith(p.pending + "/"):
            return await self.poll(request, path[len(p.pending) + 1:])
        if path.startswith(p.r3 + "/"):
            return await self.r3_document(request, path[len(p.r3) + 1:])
        return await self.interaction_page(request, path[len(p.interaction) + 1:],
                                           starlette_request)


def _query_pairs(query: str) -> list[tuple[str, str]]:
    from urllib.parse import parse_qsl

    try:
        return parse_qsl(query, keep_blank_values=True, max_num_fields=16)
    except ValueError:
        return []


def _safe_callback(url: object) -> bool:
    """A callback we may redirect a browser to: https, or http on the loopback host
    (§User Interaction: the agent's ``callback_endpoint``, or a localhost callback)."""
    if not isinstance(url, str) or len(url) > 2048:
        return False
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    if parts.username or parts.password or not parts.hostname:
        return False
    return parts.scheme == "https" or (
        parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS)


def _finish_page(callback: object, error: str | None, text: str) -> Reply:
    if isinstance(callback, str) and _safe_callback(callback):
        target = callback
        if error is not None:
            target += ("&" if urlsplit(callback).query else "?") + urlencode({"error": error})
        return Reply(303, (("Location", target), _NO_STORE), b"")
    return page(200, "Thank you", f"<p>{html.escape(text)}</p>")



__all__ = [
    "KIND_APPROVAL",
    "KIND_AUTH_TOKEN",
    "KIND_INTERACTION",
    "AAuthResource",
    "Allow",
    "Execute",
    "Outcome",
    "Reply",
    "Session",
]
