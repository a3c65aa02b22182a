"""Missions at the PS (§Missions, §Mission Log, §Mission Management, §Mission Status
Errors): the log, lookups for the agent and the person, and termination -- which revokes
the mission's outstanding auth tokens for ``revoked``, ``administrative`` and
``superseded`` (§Token Revocation). Proposals, updates and completions are request kinds
(:mod:`..kinds.missions`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from ....protocol.errors import ConfigurationError, ProtocolError
from .. import events as ev
from ..errors import mission_terminated
from ..formats import compact, iso8601
from ..state import ACTIVE, Mission, MissionLogEntry
from .revocation import Revocation

#: Termination reasons after which the mission's outstanding auth tokens are revoked.
REVOKING_REASONS = frozenset({"revoked", "administrative", "superseded"})


class Missions(Revocation):
    """The mission log and the mission lifecycle."""

    async def log_mission(self, s256: str, kind: str, entry: Mapping[str, Any]) -> int:
        """Append to the mission log (§Mission Log)."""
        now = self.clock()
        data = {
            "type": kind,
            "at": iso8601(now),
            **{k: v for k, v in entry.items() if v is not None},
        }
        return await self.run(self.state.append_log, s256, kind, compact(data), now)

    async def mission(self, s256: str) -> Mission | None:
        return await self.run(self.state.mission, s256)

    async def mission_log(self, s256: str) -> list[MissionLogEntry]:
        return await self.run(self.state.mission_log, s256)

    async def missions_for(self, account: str) -> list[Mission]:
        return await self.run(self.state.missions_for_account, account)

    async def terminate_mission(self, s256: str, reason: str = "revoked") -> Mission | None:
        """Terminate a mission (§Mission Management) with ``reason``; for ``revoked``,
        ``administrative`` and ``superseded`` its outstanding auth tokens are revoked at
        their resources (§Token Revocation). ``None`` when it was not active."""
        if not isinstance(reason, str) or not reason:
            raise ConfigurationError("a termination reason is a non-empty string")
        now = self.clock()
        mission = await self.run(self.state.terminate_mission, s256, reason, now)
        if mission is None:
            return None
        await self.log_mission(s256, "terminated", {"reason": reason})
        self.emit(
            ev.MISSION_TERMINATED,
            agent=mission.agent_id,
            account=mission.account,
            mission=s256,
            detail={"reason": reason},
        )
        if reason in REVOKING_REASONS:
            tokens = await self.run(self.state.live_auth_tokens_for_mission, s256, now)
            await self.revoke_auth_tokens(tokens)
        return mission

    async def owned_mission(self, agent_iss: str, agent_id: str, s256: str) -> Mission:
        """The agent's active mission, or ``mission_not_found`` (unknown and not-yours alike)
        / ``mission_terminated`` (§Mission Status Errors). A mission past ``expires_at`` is
        terminated here."""
        mission = await self.run(self.state.owned_mission, s256, agent_iss, agent_id)
        if mission is None:
            raise ProtocolError("no such mission", code="mission_not_found")
        return await self._check_active(mission)

    async def _check_active(self, mission: Mission) -> Mission:
        if mission.active_at(self.clock()):
            return mission
        if mission.state == ACTIVE:  # past expires_at: terminate it now
            ended = await self.terminate_mission(mission.s256, "expired")
            if ended is None:  # terminated meanwhile, perhaps for another reason
                ended = await self.run(self.state.mission, mission.s256)
            mission = ended or replace(mission, state="terminated", termination_reason="expired")
        raise mission_terminated(mission)


__all__ = ["REVOKING_REASONS", "Missions"]
