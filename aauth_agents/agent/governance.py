"""Governance calls from the agent to its person server (§Mission, §Permission Endpoint,
§Audit Endpoint, §Interaction Endpoint).

Each call is a signed ``POST`` presenting the agent token, with ``content-type`` and
``content-digest`` covered, built by the same sans-I/O flow as the resource requests
(:class:`~aauth_agents.agent.flow.AgentFlow`): a deferred response is polled, a
clarification handed to ``on_clarification``, an interaction to ``on_interaction``, and an
error answer raised as its typed error (``mission_terminated`` ->
:class:`~aauth_agents.agent.errors.MissionTerminatedError`, ...).
:class:`PersonServerClient` runs the flows with an ``httpx.Client``,
:class:`AsyncPersonServerClient` with an ``httpx.AsyncClient``; both share the
:class:`~aauth_agents.agent.AAuth` they come from (its callbacks, caches and mission).

A mission approval (§Mission Approval) is checked before use: ``s256`` must be the digest of
the bytes ``mission`` decodes to, and the blob must name this agent.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx

from ..protocol.errors import ConfigurationError
from ..protocol.identifiers import validate_server_identifier
from ..protocol.mission import InvalidMissionError, validate_s256, verify_mission_approval
from .effects import Flow, run_async, run_sync
from .flow import AgentFlow, CallContext

if TYPE_CHECKING:
    from .client import AAuth


@dataclass(frozen=True)
class MissionApproval:
    """An approved mission: ``s256``, the decoded blob, the PS's ``capabilities`` and the
    ``person_tokens`` it issued per resource (kept out of ``repr``)."""

    s256: str
    mission: Mapping[str, Any]
    capabilities: tuple[str, ...] = ()
    person_tokens: Mapping[str, str] = field(default_factory=dict, repr=False)

    @property
    def description(self) -> str:
        return str(self.mission.get("description", ""))

    @property
    def expires_at(self) -> str | None:
        value = self.mission.get("expires_at")
        return value if isinstance(value, str) else None


@dataclass(frozen=True)
class PermissionResult:
    """§Permission Response: ``permission`` is ``granted`` or ``denied``."""

    permission: str
    reason: str | None = None

    @property
    def granted(self) -> bool:
        return self.permission == "granted"


def _tools(tools: Iterable[Mapping[str, str] | str] | None) -> list[dict[str, str]] | None:
    if tools is None:
        return None
    out: list[dict[str, str]] = []
    for tool in tools:
        if isinstance(tool, str):
            out.append({"name": tool})
        else:
            out.append(dict(tool))
    return out


class GovernanceFlows:
    """The governance flows over one :class:`AgentFlow` (shared by both clients, and by
    callers that run them with :func:`~aauth_agents.agent.effects.run_sync` /
    :func:`~aauth_agents.agent.effects.run_async` themselves, e.g. governed tools)."""

    def __init__(self, auth: AAuth, flow: AgentFlow | None = None) -> None:
        self.auth = auth
        self.flow: AgentFlow = flow if flow is not None else auth.flow

    def _mission(self, mission_s256: str | None, *, required: bool) -> str | None:
        value = mission_s256 if mission_s256 is not None else self.auth.mission_s256
        if value is None:
            if required:
                raise ConfigurationError("this call needs a mission (mission_s256)")
            return None
        try:
            return validate_s256(value)
        except InvalidMissionError as exc:
            raise ConfigurationError(f"mission_s256: {exc.detail}") from exc

    def propose(
        self,
        call: CallContext,
        description: str,
        tools: Iterable[Mapping[str, str] | str] | None,
        resources: Sequence[str] | None,
        adopt: bool,
    ) -> Flow[MissionApproval]:
        """§Mission Creation, then §Mission Approval checked."""
        body: dict[str, Any] = {"description": description}
        if self.auth.config.capabilities:  # §Mission Approval captures them for the mission
            body["capabilities"] = list(self.auth.config.capabilities)
        if tools is not None:
            body["tools"] = _tools(tools)
        if resources is not None:
            for resource in resources:
                try:
                    validate_server_identifier(resource)
                except ValueError as exc:
                    raise ConfigurationError(f"resources: {exc}") from exc
            body["resources"] = list(resources)
        response = yield from self.flow.ps_endpoint_call(call, "mission_endpoint", body)
        data = self.flow._json(response)
        blob, s256 = verify_mission_approval(data)
        if blob.get("agent") != self.auth.identity.agent_id:
            raise InvalidMissionError("the approved mission names another agent")
        capabilities = data.get("capabilities") or []
        tokens = data.get("person_tokens") or {}
        if not isinstance(capabilities, list) or not all(isinstance(c, str) for c in capabilities):
            raise InvalidMissionError("capabilities must be an array of strings")
        if not isinstance(tokens, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in tokens.items()
        ):
            raise InvalidMissionError("person_tokens must map resources to tokens")
        approval = MissionApproval(s256, blob, tuple(capabilities), dict(tokens))
        if adopt:
            self.auth.adopt_mission(approval)
        return approval

    def update(self, call: CallContext, description: str, mission_s256: str | None) -> Flow[str]:
        """§Mission Update: returns the accepted update's ``s256``."""
        mission = self._mission(mission_s256, required=True)
        response = yield from self.flow.ps_endpoint_call(
            call,
            "mission_endpoint",
            {"action": "update", "description": description},
            suffix=f"/{mission}",
        )
        return validate_s256(self.flow._json(response).get("s256"))

    def complete(
        self, call: CallContext, summary: str, mission_s256: str | None
    ) -> Flow[dict[str, Any]]:
        """§Mission Completion: returns the PS's answer once the person accepted."""
        mission = self._mission(mission_s256, required=True)
        assert mission is not None
        response = yield from self.flow.ps_endpoint_call(
            call,
            "mission_endpoint",
            {"action": "completion", "summary": summary},
            suffix=f"/{mission}",
        )
        if self.auth.mission_s256 == mission:
            self.auth.mission_s256 = None
        self.auth.state.drop_mission(mission)
        return self.flow._json(response) if response.content else {}

    def permission(
        self,
        call: CallContext,
        action: str,
        description: str | None,
        parameters: Mapping[str, Any] | None,
        mission_s256: str | None,
    ) -> Flow[PermissionResult]:
        """§Permission Request."""
        body: dict[str, Any] = {"action": action}
        if description is not None:
            body["description"] = description
        if parameters is not None:
            body["parameters"] = dict(parameters)
        mission = self._mission(mission_s256, required=False)
        if mission is not None:
            body["mission_s256"] = mission
        response = yield from self.flow.ps_endpoint_call(call, "permission_endpoint", body)
        data = self.flow._json(response)
        permission = data.get("permission")
        if permission not in ("granted", "denied"):
            raise InvalidMissionError("permission must be granted or denied")
        reason = data.get("reason")
        return PermissionResult(str(permission), reason if isinstance(reason, str) else None)

    def audit(
        self,
        call: CallContext,
        action: str,
        description: str | None,
        parameters: Mapping[str, Any] | None,
        result: Mapping[str, Any] | None,
        mission_s256: str | None,
    ) -> Flow[None]:
        """§Audit Request (a mission is required)."""
        body: dict[str, Any] = {
            "mission_s256": self._mission(mission_s256, required=True),
            "action": action,
        }
        for name, value in (
            ("description", description),
            ("parameters", parameters),
            ("result", result),
        ):
            if value is not None:
                body[name] = value if isinstance(value, str) else dict(value)
        yield from self.flow.ps_endpoint_call(call, "audit_endpoint", body, expect=(200, 201, 204))

    def ask(
        self, call: CallContext, question: str, description: str | None, mission_s256: str | None
    ) -> Flow[str]:
        """§Interaction Request with ``type: question``: the person's answer."""
        body: dict[str, Any] = {"type": "question", "question": question}
        if description is not None:
            body["description"] = description
        mission = self._mission(mission_s256, required=False)
        if mission is not None:
            body["mission_s256"] = mission
        response = yield from self.flow.ps_endpoint_call(call, "interaction_endpoint", body)
        answer = self.flow._json(response).get("answer")
        if not isinstance(answer, str):
            raise InvalidMissionError("the PS answered a question without an answer")
        return answer


def call_context(client: httpx.Client | httpx.AsyncClient, auth: AAuth) -> CallContext:
    """The context of one governance call through ``client`` (its timeouts; the
    :class:`~aauth_agents.agent.pending.PendingRequests` of ``auth``, if a derived view)."""
    return CallContext({"timeout": client.timeout.as_dict()}, pending=auth.config.pending)


class PersonServerClient:
    """Governance calls through an ``httpx.Client`` (see the module docstring).

    ``mission_s256`` arguments default to the :class:`~aauth_agents.agent.AAuth`'s current
    mission."""

    def __init__(self, auth: AAuth, client: httpx.Client) -> None:
        self.auth = auth
        self.client = client
        self._flows = GovernanceFlows(auth, auth.flow_for(client))

    def _run(self, flow: Flow[Any]) -> Any:
        return run_sync(flow, self.client, self.auth.runtime)

    def propose_mission(
        self,
        description: str,
        *,
        tools: Iterable[Mapping[str, str] | str] | None = None,
        resources: Sequence[str] | None = None,
        adopt: bool = True,
    ) -> MissionApproval:
        """Propose a mission; with ``adopt`` the :class:`AAuth` then works under it."""
        approval: MissionApproval = self._run(
            self._flows.propose(
                call_context(self.client, self.auth), description, tools, resources, adopt
            )
        )
        return approval

    def update_mission(self, description: str, *, mission_s256: str | None = None) -> str:
        update: str = self._run(
            self._flows.update(call_context(self.client, self.auth), description, mission_s256)
        )
        return update

    def complete_mission(self, summary: str, *, mission_s256: str | None = None) -> dict[str, Any]:
        answer: dict[str, Any] = self._run(
            self._flows.complete(call_context(self.client, self.auth), summary, mission_s256)
        )
        return answer

    def request_permission(
        self,
        action: str,
        *,
        description: str | None = None,
        parameters: Mapping[str, Any] | None = None,
        mission_s256: str | None = None,
    ) -> PermissionResult:
        result: PermissionResult = self._run(
            self._flows.permission(
                call_context(self.client, self.auth), action, description, parameters, mission_s256
            )
        )
        return result

    def audit(
        self,
        action: str,
        *,
        description: str | None = None,
        parameters: Mapping[str, Any] | None = None,
        result: Mapping[str, Any] | None = None,
        mission_s256: str | None = None,
    ) -> None:
        self._run(
            self._flows.audit(
                call_context(self.client, self.auth),
                action,
                description,
                parameters,
                result,
                mission_s256,
            )
        )

    def ask(
        self, question: str, *, description: str | None = None, mission_s256: str | None = None
    ) -> str:
        answer: str = self._run(
            self._flows.ask(
                call_context(self.client, self.auth), question, description, mission_s256
            )
        )
        return answer


class AsyncPersonServerClient:
    """:class:`PersonServerClient` for ``httpx.AsyncClient`` (or ``httpx2.AsyncClient``)."""

    def __init__(self, auth: AAuth, client: httpx.AsyncClient) -> None:
        self.auth = auth
        self.client = client
        self._flows = GovernanceFlows(auth, auth.flow_for(client))

    async def _run(self, flow: Flow[Any]) -> Any:
        return await run_async(flow, self.client, self.auth.runtime)

    async def propose_mission(
        self,
        description: str,
        *,
        tools: Iterable[Mapping[str, str] | str] | None = None,
        resources: Sequence[str] | None = None,
        adopt: bool = True,
    ) -> MissionApproval:
        approval: MissionApproval = await self._run(
            self._flows.propose(
                call_context(self.client, self.auth), description, tools, resources, adopt
            )
        )
        return approval

    async def update_mission(self, description: str, *, mission_s256: str | None = None) -> str:
        update: str = await self._run(
            self._flows.update(call_context(self.client, self.auth), description, mission_s256)
        )
        return update

    async def complete_mission(
        self, summary: str, *, mission_s256: str | None = None
    ) -> dict[str, Any]:
        answer: dict[str, Any] = await self._run(
            self._flows.complete(call_context(self.client, self.auth), summary, mission_s256)
        )
        return answer

    async def request_permission(
        self,
        action: str,
        *,
        description: str | None = None,
        parameters: Mapping[str, Any] | None = None,
        mission_s256: str | None = None,
    ) -> PermissionResult:
        result: PermissionResult = await self._run(
            self._flows.permission(
                call_context(self.client, self.auth), action, description, parameters, mission_s256
            )
        )
        return result

    async def audit(
        self,
        action: str,
        *,
        description: str | None = None,
        parameters: Mapping[str, Any] | None = None,
        result: Mapping[str, Any] | None = None,
        mission_s256: str | None = None,
    ) -> None:
        await self._run(
            self._flows.audit(
                call_context(self.client, self.auth),
                action,
                description,
                parameters,
                result,
                mission_s256,
            )
        )

    async def ask(
        self, question: str, *, description: str | None = None, mission_s256: str | None = None
    ) -> str:
        answer: str = await self._run(
            self._flows.ask(
                call_context(self.client, self.auth), question, description, mission_s256
            )
        )
        return answer


__all__ = [
    "AsyncPersonServerClient",
    "GovernanceFlows",
    "MissionApproval",
    "PermissionResult",
    "PersonServerClient",
    "call_context",
]
