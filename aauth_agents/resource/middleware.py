"""``AAuthMiddleware``: pure ASGI protection for Starlette, FastAPI and MCP servers.

    app.add_middleware(AAuthMiddleware, resource=resource,
                       policy=RoutePolicy({"/health": AccessRule.public()},
                                          default=AccessRule.agent()))

Per request the middleware buffers the body, at most ``max_body_bytes`` of it (a covered
``content-digest`` needs it, and it is replayed to the application unchanged), picks the
rule -- an endpoint's :func:`requires`, else the route policy (which may read the body, e.g.
:func:`mcp_tool_rules`: a :class:`BodyRule`, read only after the signature verified) -- and
asks the :class:`~aauth_agents.resource.AAuthResource` for a decision. A verified caller is put on
``request.state.aauth`` (``scope["state"]["aauth"]``) and in the context variable read by
:func:`~aauth_agents.resource.current_caller`, for as long as the application runs.

The resource's own endpoints (metadata, JWKS, authorization and revocation endpoints, pending
URLs, the interaction page, per-call proposals at ``r3_uri``) are served here too, so
wrapping any ASGI app -- a FastMCP ``streamable_http_app()`` included -- publishes them.
The signed ``@authority`` is the request's ``Host``; with ``check_host`` (the default) it
must be the resource identifier's host. WebSocket connections are refused unless their
path is public.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import urlsplit

from ..httpsig import HttpRequest
from ..protocol.errors import ConfigurationError
from .body import BodyTooLarge, read_asgi_body
from .caller import _CURRENT, Caller
from .config import ResourceConfig
from .held import HeldRequest, HeldResult, header_pairs
from .policy import (
    AccessRule,
    BodyRule,
    RoutePolicy,
    RuleSource,
    endpoint_rule,
    resolve_rule,
)
from .server import AAuthResource, Allow, Execute, Reply

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def _replay(body: bytes, receive: Receive) -> Receive:
    """The buffered body first, then the real channel (for ``http.disconnect``)."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


async def _send_reply(send: Send, reply: Reply, head_only: bool = False) -> None:
    headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in reply.headers]
    if not any(k == b"content-length" for k, _ in headers):
        headers.append((b"content-length", str(len(reply.body)).encode()))
    await send({"type": "http.response.start", "status": reply.status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head_only else reply.body})


class AAuthMiddleware:
    """Protect ``app``. ``resource`` is an :class:`AAuthResource` (or a
    :class:`ResourceConfig` to build one); ``policy`` a :class:`RoutePolicy`, a mapping
    accepted by its constructor, or a single rule for every route; ``default`` the rule for
    routes the policy does not name (when ``policy`` is a mapping)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        resource: AAuthResource | ResourceConfig,
        policy: RoutePolicy | AccessRule | Any = None,
        default: RuleSource | None = None,
        serve_endpoints: bool = True,
    ) -> None:
        self.app = app
        self.resource = resource if isinstance(resource, AAuthResource) else AAuthResource(resource)
        if isinstance(policy, RoutePolicy):
            if default is not None:
                raise ConfigurationError("give default= to the RoutePolicy itself")
            self.policy = policy
        elif isinstance(policy, AccessRule):
            self.policy = RoutePolicy(default=policy)
        else:
            self.policy = RoutePolicy(policy or (), default=default)
        self.resource.check_rules(self.policy.static_rules())
        self.serve_endpoints = serve_endpoints
        self._rule_cache: dict[tuple[int, str, str], AccessRule | None] = {}
        identifier = urlsplit(self.resource.config.identifier)
        self._scheme = identifier.scheme
        self._host = identifier.netloc
        port = ":443" if self._scheme == "https" else ":80"
        self._own_hosts = frozenset((self._host, self._host + port))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "websocket":
            rule = self._static_rule(scope)
            if rule is not None and rule.level == "public":
                await self.app(scope, receive, send)
            else:
                await send({"type": "websocket.close", "code": 1008})
        else:  # lifespan and anything else
            await self.app(scope, receive, send)

    def _endpoint_rule(self, scope: Scope) -> AccessRule | None:
        """The :func:`requires` rule of the route, cached per app, method and path (route
        matching is deterministic in those). Under ``app.add_middleware`` Starlette has put
        the app in the scope; wrapped from outside (``AAuthMiddleware(app, ...)``), the routes
        are the wrapped app's -- else its ``@requires`` rules would go unseen."""
        if scope.get("app") is None:
            scope = {**scope, "app": self.app}
        key = (id(scope.get("app")), scope.get("method", ""), scope.get("path", ""))
        try:
            return self._rule_cache[key]
        except KeyError:
            pass
        rule = endpoint_rule(scope)
        if len(self._rule_cache) >= 4096:
            self._rule_cache.clear()
        self._rule_cache[key] = rule
        return rule

    def _static_rule(self, scope: Scope) -> AccessRule | None:
        rule = self._endpoint_rule(scope)
        if rule is not None:
            return rule
        source = self.policy.match(scope.get("method", "GET"), scope.get("path", "/"))
        return source if isinstance(source, AccessRule) else None

    def _host_header(self, scope: Scope) -> str | None:
        for name, value in scope.get("headers", ()):
            if name == b"host":
                return str(value.decode("latin-1"))
        server = scope.get("server")
        return f"{server[0]}:{server[1]}" if server else None

    def _request(self, scope: Scope, body: bytes, host: str | None) -> HttpRequest:
        host = host or self._host
        raw_path = scope.get("raw_path") or scope["path"].encode("utf-8")
        path = raw_path.decode("latin-1").split("?", 1)[0]
        query = scope.get("query_string", b"").decode("latin-1")
        url = f"{self._scheme}://{host}{path}" + (f"?{query}" if query else "")
        return HttpRequest(scope["method"], url, scope.get("headers", ()), body or None)

    def _held(self, scope: Scope, body: bytes) -> HeldRequest:
        raw_path = scope.get("raw_path") or scope["path"].encode("utf-8")
        return HeldRequest(
            method=scope["method"],
            path=scope["path"],
            raw_path=raw_path.decode("latin-1"),
            query_string=scope.get("query_string", b"").decode("latin-1"),
            headers=header_pairs(scope.get("headers", ())),
            body=body,
            root_path=scope.get("root_path", ""),
        )

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        method, path = scope["method"], scope["path"]
        head = method.upper() == "HEAD"
        resource = self.resource
        endpoint = self.serve_endpoints and resource.is_endpoint(method, path)
        explicit = None if endpoint else self._endpoint_rule(scope)
        source: RuleSource = explicit or self.policy.match(method, path)
        if not endpoint and isinstance(source, AccessRule) and source.level == "public":
            await self.app(scope, receive, send)
            return
        try:
            body = await read_asgi_body(receive, resource.config.max_body_bytes)
        except BodyTooLarge:
            await _send_reply(send, Reply.problem(413, "invalid_request", "body too large"))
            return
        except ConnectionAbortedError:
            return
        host = self._host_header(scope)
        if (
            resource.config.check_host
            and not endpoint
            and host is not None
            and not self._own_host(host)
        ):
            await _send_reply(
                send,
                Reply.problem(
                    421, "invalid_request", "the request is not addressed to this resource"
                ),
            )
            return
        try:
            request = self._request(scope, body, host)
            request.target  # noqa: B018 - parse the URL now: a bad Host is a bad request
        except ValueError:
            await _send_reply(send, Reply.problem(400, "invalid_request", "malformed request"))
            return
        outcome: Allow | Reply | Execute
        if endpoint:
            from starlette.requests import Request

            outcome = await resource.endpoint(request, path, Request(scope, _replay(body, receive)))
        else:
            outcome = await self._authorize(scope, source, request, body)
        if isinstance(outcome, Reply):
            await _send_reply(send, outcome, head)
        elif isinstance(outcome, Allow):
            await self._run(scope, _replay(body, receive), send, outcome.caller)
        else:
            await self._execute(scope, receive, send, outcome)

    async def _authorize(
        self, scope: Scope, source: RuleSource, request: HttpRequest, body: bytes
    ) -> Allow | Reply | Execute:
        """The resource's decision; a :class:`BodyRule` is left to it, to be read from the
        body only once the signature verified."""
        if isinstance(source, BodyRule) and source.after_verification:
            return await self.resource.authorize(request, source, self._held(scope, body))
        rule = source if isinstance(source, AccessRule) else resolve_rule(source, request)
        holds = rule.approval or rule.deferred or rule.level in ("session", "per-call")
        return await self.resource.authorize(
            request, rule, self._held(scope, body) if holds else None
        )

    def _own_host(self, host: str) -> bool:
        return host in self._own_hosts or host.lower() in self._own_hosts

    async def _run(self, scope: Scope, receive: Receive, send: Send, caller: Caller | None) -> None:
        if caller is None:
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        state["aauth"] = caller
        token = _CURRENT.set(caller)
        try:
            await self.app(scope, receive, send)
        finally:
            _CURRENT.reset(token)

    async def _execute(self, scope: Scope, receive: Receive, send: Send, execute: Execute) -> None:
        """Run a held invocation once (§Deferred Delivery), store and send its response."""
        held = execute.held
        inner: Scope = {
            **scope,
            "method": held.method,
            "path": held.path,
            "raw_path": held.raw_path.encode("latin-1"),
            "query_string": held.query_string.encode("latin-1"),
            "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in held.headers],
            "root_path": held.root_path,
            "state": dict(scope.get("state", {})),
        }
        status = 500
        headers: list[tuple[str, str]] = []
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal status, headers
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = list(header_pairs(message.get("headers", ())))
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        try:
            await self._run(inner, _replay(held.body, receive), capture, execute.caller)
        except Exception:
            status, headers, chunks = (
                500,
                [("content-type", "application/problem+json")],
                [b'{"error": "server_error", "detail": "the held request failed"}'],
            )
        body = b"".join(chunks)
        headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
        result = HeldResult(status, tuple(headers), body)
        await self.resource.complete(execute, result)
        await _send_reply(send, Reply(status, (*result.headers, *execute.response_headers), body))


async def _not_found(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "http":
        await _send_reply(send, Reply.problem(404, "not_found", "no such endpoint"))


def resource_app(resource: AAuthResource | ResourceConfig) -> AAuthMiddleware:
    """A stand-alone ASGI app serving only what the resource publishes (metadata, JWKS,
    authorization and revocation endpoints, pending URLs, interaction page), for mounting
    next to an application that does its own verification with the verifier."""
    return AAuthMiddleware(_not_found, resource=resource, policy=AccessRule.public())


__all__ = ["AAuthMiddleware", "resource_app"]
