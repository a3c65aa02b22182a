"""The ``aauth-agents`` command line. The one place that reads the environment
(besides ``AAuth``'s ``trust_env``, which reads ``$AAUTH_AGENTS_NETWORK``).

``aauth-agents keys init``  create an agent key and its self-hosted provider key
``aauth-agents keys show``  print the agent id and key thumbprint (and what a PS needs)
``aauth-agents fetch URL``  one AAuth request from the shell, every challenge handled
``aauth-agents mcp-proxy URL``  a stdio MCP server forwarding to an AAuth-protected MCP server
``aauth-agents demo``       the whole AAuth ladder on loopback, step by step
``aauth-agents dev [--app module:app]``  agent provider, PS, demo resource and your apps on
                           loopback, with the environment an agent needs printed
``aauth-agents serve resource --issuer https://HOST``  run the demo resource (REST and MCP)
``aauth-agents serve ps --issuer https://HOST``        run a person server
``aauth-agents serve ap --issuer https://HOST``        run an agent provider
``aauth-agents serve ap --dir DIR``                    serve the provider `keys init` wrote

Keys live in a directory (``--dir``; default ``$AAUTH_AGENTS_DIR``, else a per-user config
directory) or in the OS keychain (``--keyring SERVICE``). Exit status: 0 success (a 2xx
response for ``fetch``), 1 a non-2xx response, 2 a usage error, 3 an AAuth error (its code is
printed), 4 a network error.

One module per command (:data:`COMMANDS`), each with ``NAME``, ``register(commands)`` (its
subparser) and ``run(args, env)``; :mod:`.common` holds what they share.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from typing import Protocol

from . import demo, dev, fetch, keys, mcp_proxy, serve
from .common import (
    ENV_DIR,
    EXIT_AAUTH,
    EXIT_HTTP,
    EXIT_NETWORK,
    EXIT_OK,
    EXIT_USAGE,
    RESERVED_HEADERS,
    Subparsers,
    default_directory,
    parse_header_option,
)


class Command(Protocol):
    """A command module."""

    NAME: str

    def register(self, commands: Subparsers) -> None: ...

    def run(self, args: argparse.Namespace, env: Mapping[str, str]) -> int: ...


#: The commands, in the order ``--help`` lists them.
COMMANDS: tuple[Command, ...] = (demo, dev, keys, fetch, mcp_proxy, serve)


def build_parser() -> argparse.ArgumentParser:
    """The ``aauth-agents`` argument parser, a subcommand per module in :data:`COMMANDS`."""
    parser = argparse.ArgumentParser(
        prog="aauth-agents",
        description="AAuth (draft-hardt-oauth-aauth-protocol-11) for AI agents.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line (``argv`` or ``sys.argv``); returns the exit status."""
    args = build_parser().parse_args(argv)
    [command] = [c for c in COMMANDS if c.NAME == args.command]  # argparse knows no other
    return command.run(args, os.environ)


__all__ = [
    "COMMANDS",
    "ENV_DIR",
    "EXIT_AAUTH",
    "EXIT_HTTP",
    "EXIT_NETWORK",
    "EXIT_OK",
    "EXIT_USAGE",
    "RESERVED_HEADERS",
    "Command",
    "build_parser",
    "default_directory",
    "main",
    "parse_header_option",
]
