"""``aauth-agents keys init`` / ``keys show``: the agent key and the key of its self-hosted
agent provider."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from typing import IO, Any

from .common import EXIT_OK, Subparsers, add_store_options, guarded, store

NAME = "keys"


def register(commands: Subparsers) -> None:
    keys = commands.add_parser(
        NAME,
        help="create or show the agent's keys",
        description="An agent key, and the key of a self-hosted agent provider that issues "
        "the agent's tokens (https://DOMAIN for aauth:LOCAL@DOMAIN).",
    )
    keys_commands = keys.add_subparsers(dest="keys_command", required=True)
    init = keys_commands.add_parser(
        "init",
        help="create the agent key and its provider key",
        description="Create an agent key and a self-hosted agent provider key. The provider "
        "is https://DOMAIN; a PS trusts it through its metadata and JWKS "
        "(keys show --provider-metadata).",
    )
    init.add_argument("--agent-id", required=True, metavar="aauth:LOCAL@DOMAIN")
    init.add_argument("--ps", metavar="https://PS", help="the agent's person server")
    init.add_argument("--name", help="display name in the provider's metadata")
    init.add_argument("--alg", choices=("Ed25519", "ES256"), default="Ed25519")
    init.add_argument(
        "--lifetime", type=int, default=3600, help="agent token lifetime in seconds (max 86400)"
    )
    init.add_argument("--force", action="store_true", help="replace an existing agent")
    add_store_options(init)
    show = keys_commands.add_parser(
        "show",
        help="print the agent id and key thumbprint",
        description="Print the agent id, the key thumbprint, the provider and the PS; with "
        "--provider-metadata, all of it as JSON with the provider's metadata and JWKS.",
    )
    show.add_argument(
        "--provider-metadata",
        action="store_true",
        help="print JSON with the provider's metadata and JWKS (what a PS needs to trust it)",
    )
    add_store_options(show)


def run(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    err = sys.stderr
    return guarded(lambda: keys(args, env, sys.stdout, err), err)


def _describe(agent: Any) -> dict[str, Any]:
    return {
        "agent_id": agent.agent_id,
        "thumbprint": agent.thumbprint,
        "alg": agent.key.alg,
        "provider": agent.provider.issuer,
        "ps": agent.ps,
    }


def _print_description(description: Mapping[str, Any], store: Any, out: IO[str]) -> None:
    for name, value in description.items():
        if value is not None:
            print(f"{name}: {value}", file=out)
    print(f"store: {store.location}", file=out)


def keys(args: argparse.Namespace, env: Mapping[str, str], out: IO[str], err: IO[str]) -> int:
    from ..agent.provider import init_local_agent, load_local_agent

    keys = store(args, env)
    if args.keys_command == "init":
        agent = init_local_agent(
            keys,
            args.agent_id,
            ps=args.ps,
            alg=args.alg,
            name=args.name,
            lifetime=args.lifetime,
            replace=args.force,
        )
        _print_description(_describe(agent), keys, out)
        print(
            f"A PS trusts this agent through {agent.provider.issuer}/.well-known/"
            "aauth-agent.json and its JWKS: see `aauth-agents keys show --provider-metadata`.",
            file=err,
        )
        return EXIT_OK
    agent = load_local_agent(keys)
    if args.provider_metadata:
        document = {**_describe(agent), **agent.provider_documents()}
        print(json.dumps(document, indent=2), file=out)
    else:
        _print_description(_describe(agent), keys, out)
    return EXIT_OK
