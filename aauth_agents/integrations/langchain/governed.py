"""Any tool, run only with the person's permission and recorded afterwards.

::

    send = governed(send_email, person_server=auth)            # one tool
    tools = governed_tools([send_email, run_shell], person_server=auth,
                           description="Tidy my inbox")          # under a mission

Before the tool runs, the agent asks its person server (§Permission Endpoint) with the
tool's name as the ``action``, a readable summary of the arguments as the ``description``
and the arguments as ``parameters``; the person decides (through the agent's prompt surface,
or a LangGraph interrupt: the pending modes of :mod:`.runtime`). Denied, the tool does not
run and a ``ToolException`` says so, in words a model can act on. Granted, it runs; then the
outcome is recorded (§Audit Endpoint: a mission is required -- the one given, else the
agent's current one; without a mission nothing is recorded).

:func:`governed_tools` first proposes a mission naming the tools (§Mission Creation), once,
on the first call of any of them, and works under it (the approval is adopted by the agent:
its later person tokens name the mission). Tools the person approved with the mission
(``approved_tools``) run without asking again (§Permission Endpoint).

The wrapped tool keeps its name, description and argument schema; its own result (content
and artifact) is returned as it is.
"""

from __future__ import annotations

import asyncio
import json
import threading
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import httpx
from langchain_core.messages import ToolMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool, ToolException
from pydantic import BaseModel
from pydantic_core import to_jsonable_python

from ...agent import AAuth, MissionApproval
from ...protocol.errors import AAuthError, ConfigurationError
from .interrupts import InterruptRecords
from .runtime import (
    AAuthTool,
    AAuthToolArtifact,
    ToolRuntime,
    aauth_failure,
    handle_tool_error,
    log,
)
from .tool import TOOL_CALL

#: Characters of one argument value shown in a permission request's description.
SHOWN_VALUE = 200
#: Characters of a tool's output recorded in the audit log.
AUDITED_OUTPUT = 500


class PermissionDeniedError(ToolException):
    """The person did not allow the tool call (§Permission Response: ``denied``); the tool
    did not run. ``reason`` is the person's (or the PS's) explanation, if any."""

    def __init__(self, message: str, *, reason: str | None, artifact: AAuthToolArtifact):
        super().__init__(message)
        self.reason = reason
        self.artifact = artifact


def summarize(name: str, arguments: Mapping[str, Any]) -> str:
    """The Markdown a person reads in a permission request: the tool and each argument,
    long values cut."""
    if not arguments:
        return f"Run `{name}` (no arguments)."
    lines = [f"Run `{name}` with:"]
    for key, value in arguments.items():
        text = (
            value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
        )
        if len(text) > SHOWN_VALUE:
            text = text[:SHOWN_VALUE] + "…"
        lines.append(f"- **{key}**: {text}")
    return "\n".join(lines)


def _output_text(output: Any) -> tuple[str, str]:
    """``(status, text)`` of what a tool returned, for the audit record."""
    if isinstance(output, ToolMessage):
        content = (
            output.content
            if isinstance(output.content, str)
            else json.dumps(to_jsonable_python(output.content), ensure_ascii=False)
        )
        return ("error" if output.status == "error" else "completed"), content
    if isinstance(output, str):
        return "completed", output
    return "completed", json.dumps(to_jsonable_python(output), ensure_ascii=False, default=str)


class _Mission:
    """The mission a set of governed tools works under: given, proposed once per agent
    (:func:`governed_tools`), or the agent's current one."""

    def __init__(
        self, mission: MissionApproval | str | None, proposal: Mapping[str, Any] | None = None
    ) -> None:
        if mission is not None and not isinstance(mission, (MissionApproval, str)):
            raise ConfigurationError("mission must be a MissionApproval or an s256")
        self.given = mission
        self.proposal = proposal
        self._approvals: weakref.WeakKeyDictionary[AAuth, MissionApproval] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()
        self._async_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )

    def known(self, auth: AAuth) -> MissionApproval | str | None:
        if self.given is not None:
            return self.given
        if self.proposal is not None:
            return self._approvals.get(auth.root)
        return auth.mission_s256

    def approval(self, auth: AAuth, client: httpx.Client) -> MissionApproval | str | None:
        known = self.known(auth)
        if known is not None or self.proposal is None:
            return known
        with self._lock:
            approval = self._approvals.get(auth.root)
            if approval is None:
                approval = auth.governance(client).propose_mission(**self.proposal)
                self._approvals[auth.root] = approval
            return approval

    async def aapproval(
        self, auth: AAuth, client: httpx.AsyncClient
    ) -> MissionApproval | str | None:
        known = self.known(auth)
        if known is not None or self.proposal is None:
            return known
        loop = asyncio.get_running_loop()
        lock = self._async_locks.get(loop)
        if lock is None:
            lock = self._async_locks[loop] = asyncio.Lock()
        async with lock:
            approval = self._approvals.get(auth.root)
            if approval is None:
                approval = await auth.async_governance(client).propose_mission(**self.proposal)
                self._approvals[auth.root] = approval
            return approval


def _s256(mission: MissionApproval | str | None) -> str | None:
    return mission.s256 if isinstance(mission, MissionApproval) else mission


def _pre_approved(mission: MissionApproval | str | None, name: str) -> bool:
    """§Mission Approval: ``approved_tools`` run without per-call permission."""
    if not isinstance(mission, MissionApproval):
        return False
    tools = mission.mission.get("approved_tools") or []
    return any(isinstance(t, Mapping) and t.get("name") == name for t in tools)


class _Governed:
    """The sync and async functions of a governed tool."""

    def __init__(
        self,
        tool: BaseTool,
        runtime: ToolRuntime,
        mission: _Mission,
        describe: Callable[[str, Mapping[str, Any]], str],
    ) -> None:
        self.tool, self.runtime, self.mission = tool, runtime, mission
        self.describe = describe

    def _input(self, arguments: dict[str, Any]) -> Any:
        tool_call_id = TOOL_CALL.get()
        if tool_call_id is None:
            return arguments
        return {"type": "tool_call", "id": tool_call_id, "name": self.tool.name, "args": arguments}

    def _denied(self, reason: str | None) -> PermissionDeniedError:
        because = f": {reason}" if reason else "."
        message = f"The person did not allow `{self.tool.name}` to run{because}"
        return PermissionDeniedError(message, reason=reason, artifact=AAuthToolArtifact())

    def _audit_body(self, output: Any) -> dict[str, Any]:
        status, text = _output_text(output)
        if len(text) > AUDITED_OUTPUT:
            text = text[:AUDITED_OUTPUT] + "…"
        return {"status": status, "summary": text}

    def run(self, config: RunnableConfig, callbacks: Any = None, **arguments: Any) -> Any:
        parameters = to_jsonable_python(arguments)
        decided: dict[str, Any] = {}

        def ask(auth: AAuth, client: httpx.Client) -> None:
            mission = self.mission.approval(auth, client)
            decided["mission"], decided["auth"] = mission, auth
            if _pre_approved(mission, self.tool.name):
                return
            result = auth.governance(client).request_permission(
                self.tool.name,
                description=self.describe(self.tool.name, parameters),
                parameters=parameters,
                mission_s256=_s256(mission),
            )
            if not result.granted:
                raise self._denied(result.reason)

        self._decide(lambda: self.runtime.call(config, callbacks, ask))
        child: RunnableConfig = {**config, "callbacks": callbacks}
        try:
            output = self.tool.invoke(self._input(arguments), child)
        except Exception as exc:
            self._audit(decided, parameters, {"status": "error", "summary": str(exc)[:200]})
            raise
        self._audit(decided, parameters, self._audit_body(output))
        return output

    async def arun(self, config: RunnableConfig, callbacks: Any = None, **arguments: Any) -> Any:
        parameters = to_jsonable_python(arguments)
        decided: dict[str, Any] = {}

        async def ask(auth: AAuth, client: httpx.AsyncClient) -> None:
            mission = await self.mission.aapproval(auth, client)
            decided["mission"], decided["auth"] = mission, auth
            if _pre_approved(mission, self.tool.name):
                return
            result = await auth.async_governance(client).request_permission(
                self.tool.name,
                description=self.describe(self.tool.name, parameters),
                parameters=parameters,
                mission_s256=_s256(mission),
            )
            if not result.granted:
                raise self._denied(result.reason)

        try:
            await self.runtime.acall(config, callbacks, ask)
        except (AAuthError, httpx.HTTPError) as exc:
            raise aauth_failure(exc) from exc
        child: RunnableConfig = {**config, "callbacks": callbacks}
        try:
            output = await self.tool.ainvoke(self._input(arguments), child)
        except Exception as exc:
            await self._aaudit(decided, parameters, {"status": "error", "summary": str(exc)[:200]})
            raise
        await self._aaudit(decided, parameters, self._audit_body(output))
        return output

    @staticmethod
    def _decide(call: Callable[[], None]) -> None:
        try:
            call()
        except (AAuthError, httpx.HTTPError) as exc:
            raise aauth_failure(exc) from exc

    def _audit(
        self, decided: Mapping[str, Any], parameters: Any, result: Mapping[str, Any]
    ) -> None:
        mission, auth = _s256(decided.get("mission")), decided.get("auth")
        if mission is None or auth is None:
            return
        try:
            auth.governance(self.runtime.clients.sync()).audit(
                self.tool.name,
                description=f"Ran `{self.tool.name}`.",
                parameters=parameters,
                result=result,
                mission_s256=mission,
            )
        except (AAuthError, httpx.HTTPError) as exc:  # the tool ran; the record is lost
            log.warning("audit of %s failed: %s", self.tool.name, exc)

    async def _aaudit(
        self, decided: Mapping[str, Any], parameters: Any, result: Mapping[str, Any]
    ) -> None:
        mission, auth = _s256(decided.get("mission")), decided.get("auth")
        if mission is None or auth is None:
            return
        try:
            await auth.async_governance(self.runtime.clients.asynchronous()).audit(
                self.tool.name,
                description=f"Ran `{self.tool.name}`.",
                parameters=parameters,
                result=result,
                mission_s256=mission,
            )
        except (AAuthError, httpx.HTTPError) as exc:
            log.warning("audit of %s failed: %s", self.tool.name, exc)


def _governed(
    tool: BaseTool,
    runtime: ToolRuntime,
    mission: _Mission,
    describe: Callable[[str, Mapping[str, Any]], str] | None,
) -> AAuthTool:
    if not isinstance(tool, BaseTool):
        raise ConfigurationError("governed() wraps a LangChain tool (a BaseTool)")
    schema = tool.args_schema
    if schema is None or not (
        isinstance(schema, Mapping) or (isinstance(schema, type) and issubclass(schema, BaseModel))
    ):
        raise ConfigurationError(f"the tool {tool.name} has no argument schema to govern")
    body = _Governed(tool, runtime, mission, describe or summarize)
    return AAuthTool(
        name=tool.name,
        description=tool.description,
        args_schema=schema,
        func=body.run,
        coroutine=body.arun,
        return_direct=tool.return_direct,
        handle_tool_error=handle_tool_error,
        metadata={**(tool.metadata or {}), "aauth_governed": True},
        tags=tool.tags,
    )


def governed(
    tool: BaseTool,
    *,
    person_server: AAuth | Any,
    mission: MissionApproval | str | None = None,
    http_client: httpx.Client | None = None,
    async_http_client: httpx.AsyncClient | None = None,
    on_pending: str = "wait",
    describe: Callable[[str, Mapping[str, Any]], str] | None = None,
    interrupts: InterruptRecords | None = None,
) -> AAuthTool:
    """``tool`` run only with the person's permission, recorded afterwards (see the module
    docstring). ``person_server`` is the agent whose PS governs it: an
    :class:`~aauth_agents.agent.AAuth`, or a callable of the ``RunnableConfig`` returning
    one. ``mission`` -- the mission to work under (default: the agent's current one).
    ``describe(name, arguments)`` -- the Markdown the person reads (default
    :func:`summarize`)."""
    runtime = ToolRuntime(
        person_server,
        http_client=http_client,
        async_http_client=async_http_client,
        on_pending=on_pending,
        interrupts=interrupts,
    )
    return _governed(tool, runtime, _Mission(mission), describe)


def governed_tools(
    tools: Sequence[BaseTool],
    *,
    person_server: AAuth | Any,
    description: str,
    resources: Sequence[str] | None = None,
    http_client: httpx.Client | None = None,
    async_http_client: httpx.AsyncClient | None = None,
    on_pending: str = "wait",
    describe: Callable[[str, Mapping[str, Any]], str] | None = None,
    interrupts: InterruptRecords | None = None,
) -> list[AAuthTool]:
    """``tools`` governed under one mission, proposed (``description``, the tools, and
    ``resources`` if given) on the first call of any of them (see the module docstring)."""
    if not isinstance(description, str) or not description.strip():
        raise ConfigurationError("a mission needs a description")
    tools = list(tools)
    names = [tool.name for tool in tools]
    if len(set(names)) != len(names):
        raise ConfigurationError("the tools of a mission need distinct names")
    proposal: dict[str, Any] = {
        "description": description,
        "tools": [
            {"name": tool.name, "description": (tool.description or tool.name)[:500]}
            for tool in tools
        ],
    }
    if resources is not None:
        proposal["resources"] = list(resources)
    runtime = ToolRuntime(
        person_server,
        http_client=http_client,
        async_http_client=async_http_client,
        on_pending=on_pending,
        interrupts=interrupts,
    )
    mission = _Mission(None, proposal)
    return [_governed(tool, runtime, mission, describe) for tool in tools]


__all__ = ["PermissionDeniedError", "governed", "governed_tools", "summarize"]
