"""Helpers shared by the test directories, one module per party or area. Importable as
``support.<module>`` from any test (``pythonpath = ["tests"]`` in pyproject.toml); the
fixtures that use them live in the conftest.py files.

* :mod:`support.agent` -- real servers for the agent tests: a resource and a person server
  as Starlette apps verifying every signature, and :class:`~support.agent.Agent`, an agent
  behind httpx.Client or httpx.AsyncClient (tests/agent, tests/prompts, tests/interop).
* :mod:`support.cli` -- ``aauth-agents`` run as a real subprocess with a controlled
  environment (tests/cli).
* :mod:`support.httpsig` -- ``NOW`` and ``fake_jwt`` for the httpsig tests (tests/httpsig).
* :mod:`support.interop` -- the independent Node.js implementations as processes:
  @hellocoop/httpsig (``NodePeer``) and @hellocoop/mockin (``Mockin``) (tests/interop,
  tests/integrations).
* :mod:`support.langchain` -- the LangChain integration's parties (``Party``,
  ``BrowserPerson``, ``in_background``) and a one-tool LangGraph agent graph (tests/langchain).
* :mod:`support.mcp` -- real parties for the MCP integration tests over loopback HTTP: agent
  provider, the in-repo PS or mockin, the resource, an agent (tests/integrations,
  tests/prompts).
* :mod:`support.mockin` -- ``Setup``: the parties of the agent scenarios around mockin or our
  PS behind its interface (tests/interop).
* :mod:`support.notebook` -- an agent's notebook cell and a real ipykernel driven as a
  frontend drives it (tests/prompts).
* :mod:`support.ps` -- a small world of real parts around a person server: agent provider,
  resources, agents (tests/person_server, tests/person_server_ui).
* :mod:`support.ps_backend` -- our PS behind mockin's interface and layout (tests/interop).
* :mod:`support.resource` -- a small world for the resource tests: issuers, an agent, a
  resource behind AAuthMiddleware (tests/resource).
* :mod:`support.tokens` -- a small world of issuers and a token forger (tests/tokens).
* :mod:`support.ui` -- the person's pages: a PS with the UI, the browser's requests over
  httpx, sign-in in Chromium (tests/person_server_ui, tests/prompts, tests/conftest.py).
"""
