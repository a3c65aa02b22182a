"""``aauth-agents mcp-proxy URL``: a stdio MCP server forwarding to an AAuth-protected
streamable HTTP MCP server."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from typing import IO

from .common import (
    EXIT_OK,
    EXIT_USAGE,
    Failure,
    Subparsers,
    add_map_option,
    add_store_options,
    event_printer,
    fail,
    guarded,
    log_to,
    positive,
    store,
)

NAME = "mcp-proxy"


def register(commands: Subparsers) -> None:
    proxy = commands.add_parser(
        NAME,
        help="a stdio MCP server forwarding to an AAuth-protected streamable HTTP MCP server",
        description="Serve MCP on stdin/stdout for a host that speaks only stdio, and "
        "forward every message to the streamable HTTP MCP server at URL, signed as the agent "
        "(every AAuth challenge answered). When the person must approve, the host shows the "
        "link (URL-mode elicitation) if it can; otherwise it gets a log message and the "
        "browser opens the link. Nothing but MCP messages is written on stdout; the log goes "
        "to stderr. Ends when stdin ends.",
    )
    proxy.add_argument("url", metavar="URL", help="the MCP endpoint, e.g. https://HOST/mcp")
    add_map_option(
        proxy,
        "connect to the second origin for requests to the first; what is signed and "
        "compared is unchanged (repeatable)",
    )
    proxy.add_argument("--justification", help="why the agent asks (shown to the person)")
    proxy.add_argument(
        "--max-wait",
        type=positive,
        default=600.0,
        metavar="SECONDS",
        help="how long to wait for the person's approval of one request (default 600)",
    )
    proxy.add_argument(
        "--timeout",
        type=positive,
        default=60.0,
        metavar="SECONDS",
        help="network timeout of each request (default 60); a response stream may stay "
        "silent for 300 seconds",
    )
    proxy.add_argument(
        "--no-browser",
        action="store_true",
        help="never open the browser (the link is in the host's log and on stderr)",
    )
    proxy.add_argument("-v", "--verbose", action="store_true", help="log each step on stderr")
    add_store_options(proxy)


def run(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    err = sys.stderr
    return guarded(lambda: mcp_proxy(args, env, err), err)


def _claim_stdout() -> IO[bytes]:
    """The process's stdout, for MCP messages only: a duplicate of file descriptor 1 is
    returned, and descriptor 1 and ``sys.stdout`` then point at stderr, so that nothing
    else -- a library's print, a browser started by ``webbrowser`` -- can write there."""
    sys.stdout.flush()
    stdout_fd = sys.stdout.fileno()
    messages = os.fdopen(os.dup(stdout_fd), "wb")
    os.dup2(sys.stderr.fileno(), stdout_fd)
    sys.stdout = sys.stderr
    return messages


def mcp_proxy(args: argparse.Namespace, env: Mapping[str, str], err: IO[str]) -> int:
    import asyncio
    import logging

    import httpx

    from ..agent.provider import load_identity
    from ..protocol.errors import AAuthError
    from ..transport import AsyncMappedTransport

    url = httpx.URL(args.url)
    if url.scheme not in ("http", "https") or not url.host:
        raise Failure(EXIT_USAGE, f"not an http(s) URL: {args.url}")
    messages = _claim_stdout()
    log_to(err, logging.DEBUG if args.verbose else logging.INFO)
    from ..integrations.mcp_proxy import proxy_for_agent

    identity = None
    fatal = None
    try:
        identity = load_identity(store(args, env))
    except AAuthError as exc:
        fatal = (
            f"aauth-agents mcp-proxy has no agent key to sign with ({exc.detail}): "
            "create one with `aauth-agents keys init`, or give --dir / --keyring"
        )
        fail(err, fatal)
    else:
        fail(
            err,
            f"mcp-proxy: agent {identity.agent_id} (key {identity.key.thumbprint()}) "
            f"for {args.url}",
        )
    for origin, destination in args.maps:
        fail(err, f"mcp-proxy: connections to {origin} go to {destination}")
    proxy = proxy_for_agent(
        identity,
        str(url),
        transport=AsyncMappedTransport(dict(args.maps)),
        justification=args.justification,
        max_poll_seconds=args.max_wait,
        timeout=args.timeout,
        open_browser=not args.no_browser,
        stream=err,
        fatal=fatal,
        on_event=event_printer(err) if args.verbose else None,
    )
    try:
        asyncio.run(proxy.serve(sys.stdin.buffer, messages))
    finally:
        messages.close()
    return EXIT_OK
