"""The agent for ``httpx2`` clients -- the HTTP library of the MCP SDK 2.x line (pydantic's
continuation of httpx, with the same ``Auth`` generator API).

``AAuth(identity).httpx2()`` is an ``httpx2.Auth`` over the very same agent: the same flow
(:mod:`aauth_agents.agent.flow`), building ``httpx2`` requests, the same drivers, caches,
single flights, callbacks and prompt surfaces. A token one obtains, the other uses.

::

    async with httpx2.AsyncClient(auth=auth.httpx2()) as client:
        await client.get("https://resource.example/files")
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Generator
from typing import TYPE_CHECKING, Any

import httpx2

from .effects import async_resource_flow, sync_resource_flow

if TYPE_CHECKING:
    from .client import AAuth


class AAuthHttpx2(httpx2.Auth):
    """:class:`~aauth_agents.agent.AAuth` as an ``httpx2.Auth`` (see the module docstring);
    made by :meth:`AAuth.httpx2 <aauth_agents.agent.AAuth.httpx2>`."""

    requires_request_body = True  # the body is signed (content-digest)
    requires_response_body = False  # read only when the flow inspects it

    def __init__(self, auth: AAuth) -> None:
        self.aauth = auth
        self.flow = auth.flow.view(http=httpx2)

    def sync_auth_flow(self, request: Any) -> Generator[Any, Any, Any]:
        return sync_resource_flow(self.flow, self.aauth.runtime, request)

    def async_auth_flow(self, request: Any) -> AsyncGenerator[Any, Any]:
        return async_resource_flow(self.flow, self.aauth.runtime, request)


__all__ = ["AAuthHttpx2"]
