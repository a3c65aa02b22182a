"""The ``aauth-agents`` command line. The one place that reads the environment."""

from __future__ import annotations

import argparse
import sys


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aauth-agents",
        description="AAuth (draft-hardt-oauth-aauth-protocol-11) for AI agents.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "demo",
        help="run the agent -> resource flow on loopback and print each step",
        description="Start an agent provider and a resource on 127.0.0.1, then sign requests "
        "as an agent and show how the resource verifies or rejects each one.",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "demo":
        from .demo import run

        return run(sys.stdout)
    raise AssertionError(args.command)  # argparse rejects unknown commands


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
