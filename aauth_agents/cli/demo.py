"""``aauth-agents demo``: the whole AAuth ladder on loopback, step by step."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping

from .common import Subparsers

NAME = "demo"


def register(commands: Subparsers) -> None:
    demo = commands.add_parser(
        NAME,
        help="walk the whole AAuth ladder on loopback and print each step",
        description="Start an agent provider, a person server and the demo resource on "
        "127.0.0.1 (in-memory storage), enrol an agent and walk the ladder: agent identity, "
        "person identity, three-party authorization with consent, step-up, a clarification, "
        "a mission with permission and audit, revocation. Exit 0 when every step passed.",
    )
    demo.add_argument(
        "--interactive",
        action="store_true",
        help="the person decides at the terminal (and in the browser, where the PS has its "
        "pages) instead of a scripted person",
    )


def run(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    from ..demo import run

    return run(sys.stdout, interactive=args.interactive)
