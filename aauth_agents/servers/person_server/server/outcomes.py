"""What a decision does, dispatched to the request's kind (:mod:`..kinds`): the effects of
an approval (:meth:`Outcomes.apply`), the terminal response once approved
(:meth:`Outcomes.complete`) or refused (:meth:`Outcomes.denied`) -- §Deferred Responses,
§Polling Error Codes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ....protocol.reply import Reply
from ..kinds import kind_of
from ..pending import PendingRequest
from ..policy import Decision
from .core import AgentContext
from .issuance import Issuance


class Outcomes(Issuance):
    """The server's side of the request kinds: each call looks the kind up and lets it act."""

    async def apply(
        self,
        req: PendingRequest,
        account: str,
        decision: Decision | None = None,
        overrides: Mapping[str, Any] | None = None,
        *,
        remember: bool = True,
    ) -> dict[str, Any]:
        """The effects of an approval, made once when the decision is taken: consent
        remembered (unless ``remember`` is false: it already was), mission created, update
        logged, completion accepted... (:meth:`~..kinds.RequestKind.apply`)."""
        result: dict[str, Any] = {"account": account}
        result.update(
            await kind_of(req.kind).apply(
                self, req, account, decision, overrides or {}, remember=remember
            )
        )
        return result

    async def complete(
        self, req: PendingRequest, result: Mapping[str, Any], ctx: AgentContext
    ) -> Reply:
        """The ``200`` of an approved request, built when the agent collects it (tokens are
        minted then, bounded by the ``exp`` of the agent token presenting the poll)."""
        return await kind_of(req.kind).complete(self, req, result, ctx)

    async def denied(
        self, req: PendingRequest, reason: str | None, *, logged: bool = False
    ) -> Reply:
        """A refusal: ``permission: denied`` at the permission endpoint, ``403 denied``
        anywhere else (:meth:`~..kinds.RequestKind.refusal`); recorded unless ``logged``."""
        kind = kind_of(req.kind)
        if not logged:
            await kind.record_denial(self, req, reason)
        return kind.refusal(req, reason)


__all__ = ["Outcomes"]
