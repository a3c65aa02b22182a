"""The kinds of request the person server decides, one class each, and their registry.

=====================  ===========================  ==========================================
kind                   class                        endpoint (draft-hardt-oauth-aauth-protocol)
=====================  ===========================  ==========================================
``person_token``       :class:`PersonTokenKind`     §Person Token Endpoint
``auth_token``         :class:`AuthTokenKind`       §PS Token Endpoint (three-party)
``mission``            :class:`MissionKind`         §Mission Creation
``mission_update``     :class:`MissionUpdateKind`   §Mission Update
``mission_completion`` :class:`MissionCompletionKind` §Mission Completion
``permission``         :class:`PermissionKind`      §Permission Endpoint
``question``           :class:`QuestionKind`        §Interaction Endpoint (``type: question``)
``relay``              :class:`RelayKind`           §Interaction Endpoint (interaction, payment)
=====================  ===========================  ==========================================

A sub-agent's request (§Parent-Mediated Authorization) is a person token or auth token
request whose ``subagent`` is set; it is not a kind of its own.

To change what approving a kind does, its terminal response, what the person may edit, or
how the consent page presents it, edit its class. A new kind is a :class:`RequestKind`
subclass added to :data:`KINDS`. The server never tests a kind's name: it looks the class
up with :func:`kind_of`.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from ....protocol.errors import ProtocolError
from .base import (
    EDITS,
    MISSION_EDITS,
    ConsentField,
    ConsentPage,
    Edits,
    RequestKind,
    Terms,
    Wants,
    duration_words,
)
from .governance import PermissionKind, QuestionKind, RelayKind
from .missions import MissionCompletionKind, MissionKind, MissionUpdateKind
from .tokens import AuthTokenKind, PersonTokenKind


def _registry(*kinds: RequestKind) -> Mapping[str, RequestKind]:
    return MappingProxyType({kind.name: kind for kind in kinds})


#: Every request kind by name.
KINDS: Mapping[str, RequestKind] = _registry(
    PersonTokenKind(),
    AuthTokenKind(),
    MissionKind(),
    MissionUpdateKind(),
    MissionCompletionKind(),
    PermissionKind(),
    QuestionKind(),
    RelayKind(),
)


def kind_of(name: str) -> RequestKind:
    """The class of request kind ``name``; ``server_error`` for a kind this PS does not know
    (a pending record written by another version)."""
    kind = KINDS.get(name)
    if kind is None:
        raise ProtocolError(f"unknown request kind {name!r}", code="server_error")
    return kind


__all__ = [
    "EDITS",
    "KINDS",
    "MISSION_EDITS",
    "AuthTokenKind",
    "ConsentField",
    "ConsentPage",
    "Edits",
    "MissionCompletionKind",
    "MissionKind",
    "MissionUpdateKind",
    "PermissionKind",
    "PersonTokenKind",
    "QuestionKind",
    "RelayKind",
    "RequestKind",
    "Terms",
    "Wants",
    "duration_words",
    "kind_of",
]
