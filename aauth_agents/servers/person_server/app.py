"""The person server as an ASGI app (Starlette): every endpoint of §Person Server Metadata.

The app only moves bytes: it rebuilds each request as an
:class:`~aauth_agents.httpsig.HttpRequest` addressed to the PS's own identifier -- the
``@authority`` every signature must cover is the issuer's host, whatever address the
connection came in on (ARCHITECTURE.md: mapping an identifier to loopback changes only the
connection) -- and hands it to :class:`~aauth_agents.servers.person_server.PersonServer`.

Endpoint paths come from ``config.paths`` (:data:`~.config.PATHS` unless overridden).
The person's pages (``/interact/...``, sign-in, dashboard) are added by the UI through
``routes``: they call :attr:`PersonServer.interactions` and :attr:`PersonServer.accounts`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ...httpsig import HttpRequest
from ...protocol.errors import AAuthError, ProtocolError
from ...resource.body import BodyTooLarge, read_body
from ..proxies import ForwardedHeaders, TrustedProxies
from .config import PersonServerConfig
from .pending import Reply
from .server import PersonServer

log = logging.getLogger("aauth_agents.ps")


def _http_request(ps: PersonServer, request: Request, body: bytes) -> HttpRequest:
    raw_path = request.scope.get("raw_path") or request.url.path.encode()
    path = raw_path.decode("latin-1") if isinstance(raw_path, bytes) else str(raw_path)
    query = request.scope.get("query_string", b"").decode("latin-1")
    url = ps.issuer + path + (f"?{query}" if query else "")
    headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw]
    return HttpRequest(request.method, url, headers, body or None)


def _response(reply: Reply) -> Response:
    return Response(reply.body, status_code=reply.status, headers=dict(reply.headers))


Handler = Callable[..., Awaitable[Reply]]


def _endpoint(
    ps: PersonServer, handler: Handler, *params: str
) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        try:
            body = await read_body(request.stream(), ps.config.max_body)
            http_request = _http_request(ps, request, body)
            args = [str(request.path_params[p]) for p in params]
            with ps.request_scope():
                reply = await handler(http_request, *args)
        except BodyTooLarge:
            reply = Reply.error(
                ProtocolError("the body is too large", code="invalid_request", status=413)
            )
        except AAuthError as exc:
            if exc.status >= 500:
                log.error("%s %s: %s", request.method, request.url.path, exc.detail)
            reply = Reply.error(exc)
        except Exception:
            log.exception("%s %s failed", request.method, request.url.path)
            reply = Reply.error(ProtocolError("internal error", code="server_error"))
        ps.housekeeping()
        return _response(reply)

    return endpoint


def create_person_server(
    config: PersonServerConfig | PersonServer,
    *,
    routes: Sequence[BaseRoute] = (),
) -> Starlette:
    """The ASGI app of a person server. ``config`` is a :class:`PersonServerConfig` (a
    :class:`PersonServer` is built from it) or an existing server; ``routes`` are added
    (the person's pages). The server is ``app.state.person_server``."""
    ps = config if isinstance(config, PersonServer) else PersonServer(config)

    async def metadata(request: Request) -> Response:
        return Response(
            json.dumps(ps.metadata().to_json()),
            media_type="application/json",
            headers={"Cache-Control": "public, max-age=3600"},
        )

    async def jwks(request: Request) -> Response:
        # Short-lived, so verifiers pick up a rotation; an unknown kid refetches anyway.
        await ps.fresh_keys()  # a rotation by another worker
        return Response(
            json.dumps(ps.jwks()),
            media_type="application/json",
            headers={"Cache-Control": "public, max-age=300"},
        )

    async def pending(request: Request) -> Response:
        handlers: dict[str, Handler] = {
            "GET": ps.handle_poll,
            "POST": ps.handle_pending_post,
            "DELETE": ps.handle_pending_delete,
        }
        return await _endpoint(ps, handlers[request.method], "pending_id")(request)

    paths = ps.config.paths  # PATHS unless the deployment moved them
    table: list[BaseRoute] = [
        Route(paths["metadata"], metadata, methods=["GET"]),
        Route(paths["jwks"], jwks, methods=["GET"]),
        Route(paths["person_token"], _endpoint(ps, ps.handle_person_token), methods=["POST"]),
        Route(paths["auth_token"], _endpoint(ps, ps.handle_auth_token), methods=["POST"]),
        Route(paths["pending"] + "/{pending_id}", pending, methods=["GET", "POST", "DELETE"]),
        Route(paths["mission"], _endpoint(ps, ps.handle_mission_proposal), methods=["POST"]),
        Route(
            paths["mission"] + "/{s256}",
            _endpoint(ps, ps.handle_mission_action, "s256"),
            methods=["POST"],
        ),
        Route(paths["permission"], _endpoint(ps, ps.handle_permission), methods=["POST"]),
        Route(paths["audit"], _endpoint(ps, ps.handle_audit), methods=["POST"]),
        Route(paths["interaction"], _endpoint(ps, ps.handle_interaction), methods=["POST"]),
        Route(paths["revocation"], _endpoint(ps, ps.handle_revocation), methods=["POST"]),
        *routes,
    ]
    # Forwarding headers are believed from the configured proxies only (servers.proxies).
    trusted = TrustedProxies(ps.config.trusted_proxies)
    middleware = [Middleware(ForwardedHeaders, trusted=trusted)] if trusted else []
    app = Starlette(routes=table, middleware=middleware)
    app.state.person_server = ps
    return app


def person_server_of(app: Any) -> PersonServer:
    """The :class:`PersonServer` behind an app made by :func:`create_person_server`."""
    server = getattr(getattr(app, "state", None), "person_server", None)
    if not isinstance(server, PersonServer):
        raise TypeError("not a person server app")
    return server


__all__ = ["create_person_server", "person_server_of"]
