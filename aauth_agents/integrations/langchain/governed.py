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

import json
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
from langchain_core.messages import ToolMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool, ToolException
from pydantic import BaseModel
from pydantic_core import to_jsonable_python

from ...agent import AAuth, MissionApproval
from ...agent.effects import Flow, run_async, run_sync
from ...agent.flow import CallContext
from ...agent.governance import GovernanceFlows, call_context
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

T = TypeVar("T")

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
    (:func:`governed_tools`; concurrent first calls share one proposal), or the agent's
    current one."""

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

    def flow(self, auth: AAuth, call: CallContext) -> Flow[MissionApproval | str | None]:
        if self.given is not None:
            return self.given
        if self.proposal is None:
            return auth.mission_s256
        approval = self._approvals.get(auth.root)
        if approval is None:
            approval = yield from auth.flow.shared(
                ("governed mission", id(self)), lambda: self._propose(auth, call)
            )
        return approval

    def _propose(self, auth: AAuth, call: CallContext) -> Flow[MissionApproval]:
        assert self.proposal is not None
        approval = self._approvals.get(auth.root)  # (proposed while this call waited)
        if approval is None:
            approval = yield from GovernanceFlows(auth).propose(call, adopt=True, **self.proposal)
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
    """The sync and async functions of a governed tool: the decision and the record are
    governance flows (:class:`~aauth_agents.agent.governance.GovernanceFlows`), run by the
    sync or async driver; only running the tool differs."""

    def __init__(
        self,
        tool: BaseTool,
        runtime: ToolRuntime,
        mission: _Mission,
        describe: Callable[[str, Mapping[str, Any]], str],
    ) -> None:
        self.tool, self.runtime, self.mission = tool, runtime, mission
        self.describe = describe

    def _decide(self, auth: AAuth, call: CallContext, parameters: Any) -> Flow[_Decision]:
        """The mission, then §Permission Request unless the mission pre-approved the tool;
        a denial raises :class:`PermissionDeniedError`."""
        mission = yield from self.mission.flow(auth, call)
        name = self.tool.name
        if not _pre_approved(mission, name):
            result = yield from GovernanceFlows(auth).permission(
                call, name, self.describe(name, parameters), parameters, _s256(mission)
            )
            if not result.granted:
                because = f": {result.reason}" if result.reason else "."
                raise PermissionDeniedError(
                    f"The person did not allow `{name}` to run{because}",
                    reason=result.reason,
                    artifact=AAuthToolArtifact(),
                )
        return _Decision(auth, _s256(mission))

    def _record(
        self,
        decision: _Decision,
        call: CallContext,
        parameters: Any,
        output: Any,
        error: BaseException | None,
    ) -> Flow[None]:
        """§Audit Request of the run (nothing without a mission: §Audit Endpoint)."""
        if decision.mission is None:
            return
        if error is not None:
            result = {"status": "error", "summary": str(error)[:200]}
        else:
            status, text = _output_text(output)
            if len(text) > AUDITED_OUTPUT:
                text = text[:AUDITED_OUTPUT] + "…"
            result = {"status": status, "summary": text}
        name = self.tool.name
        try:
            yield from GovernanceFlows(decision.auth).audit(
                call, name, f"Ran `{name}`.", parameters, result, decision.mission
            )
        except AAuthError as exc:  # the tool ran; only the record is lost
            log.warning("audit of %s failed: %s", name, exc.detail)  # (str() may hold a code)

    def _input(self, arguments: dict[str, Any]) -> Any:
        tool_call_id = TOOL_CALL.get()
        if tool_call_id is None:
            return arguments
        return {"type": "tool_call", "id": tool_call_id, "name": self.tool.name, "args": arguments}

    def run(self, config: RunnableConfig, callbacks: Any = None, **arguments: Any) -> Any:
        parameters = to_jsonable_python(arguments)

        def decide(auth: AAuth, client: httpx.Client) -> _Decision:
            flow = self._decide(auth, call_context(client, auth), parameters)
            return run_sync(flow, client, auth.runtime)

        decision = _governance(lambda: self.runtime.call(config, callbacks, decide))
        client = self.runtime.clients.sync()
        output, error = None, None
        try:
            output = self.tool.invoke(self._input(arguments), {**config, "callbacks": callbacks})
        except Exception as exc:
            error = exc
        record = self._record(
            decision, call_context(client, decision.auth), parameters, output, error
        )
        _unaudited(lambda: run_sync(record, client, decision.auth.runtime))
        if error is not None:
            raise error
        return output

    async def arun(self, config: RunnableConfig, callbacks: Any = None, **arguments: Any) -> Any:
        parameters = to_jsonable_python(arguments)

        async def decide(auth: AAuth, client: httpx.AsyncClient) -> _Decision:
            flow = self._decide(auth, call_context(client, auth), parameters)
            return await run_async(flow, client, auth.runtime)

        try:
            decision = await self.runtime.acall(config, callbacks, decide)
        except (AAuthError, httpx.HTTPError) as exc:
            raise aauth_failure(exc) from exc
        client = self.runtime.clients.asynchronous()
        output, error = None, None
        try:
            output = await self.tool.ainvoke(
                self._input(arguments), {**config, "callbacks": callbacks}
            )
        except Exception as exc:
            error = exc
        record = self._record(
            decision, call_context(client, decision.auth), parameters, output, error
        )
        try:
            await run_async(record, client, decision.auth.runtime)
        except httpx.HTTPError as exc:
            log.warning("audit of %s failed: %s", self.tool.name, exc)
        if error is not None:
            raise error
        return output


@dataclass(frozen=True)
class _Decision:
    """A granted call: the agent (view) that asked, and the mission to record it under."""

    auth: AAuth
    mission: str | None


def _governance(call: Callable[[], T]) -> T:
    """``call()``, an AAuth failure on the way as the tool error."""
    try:
        return call()
    except (AAuthError, httpx.HTTPError) as exc:
        raise aauth_failure(exc) from exc


def _unaudited(record: Callable[[], None]) -> None:
    """Send the audit record; a network failure loses the record, never the result."""
    try:
        record()
    except httpx.HTTPError as exc:
        log.warning("an audit record could not be sent: %s", exc)


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
    proposal["resources"] = list(resources) if resources is not None else None
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
