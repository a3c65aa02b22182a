"""One HTTP endpoint as a LangChain tool whose requests go through AAuth.

::

    class ReadFile(BaseModel):
        name: str = Field(description="the file to read")

    read_file = aauth_tool(
        "read_file", "Read one of the person's files.", "GET",
        "https://resource.example/files/{name}", args_schema=ReadFile, auth=auth)

    read_file.invoke({"name": "notes.txt"})

Arguments named in the URL template fill the path (percent-encoded, so ``../`` stays inside
the segment); the others go in the query (``GET``, ``HEAD``, ``DELETE``) or in a JSON body
(``POST``, ``PUT``, ``PATCH``). Arguments are validated against ``args_schema`` (a Pydantic
model, or a JSON Schema ``dict``) before anything is sent. The tool returns the response
body as the content (text, or JSON rendered compactly, at most ``max_chars`` characters) and
an :class:`~aauth_agents.integrations.langchain.AAuthToolArtifact` (status, headers, the
resource, the parsed JSON) as the artifact (``response_format="content_and_artifact"``).
See :mod:`aauth_agents.integrations.langchain.runtime` for ``auth``, the clients, the
pending modes, the events and the errors.
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
from langchain_core.runnables import RunnableConfig
from pydantic import BaseModel, create_model
from pydantic_core import to_jsonable_python

from ...agent import AAuth
from ...agent.flow import resource_identifier
from ...protocol.errors import ERROR_STATUS, SIGNATURE_ERROR_CODES, ConfigurationError
from .interrupts import InterruptRecords
from .runtime import (
    AAuthTool,
    AAuthToolArtifact,
    HTTPToolError,
    ToolRuntime,
    aauth_failure,
    handle_tool_error,
    visible_headers,
)

BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
METHODS = BODY_METHODS | {"GET", "HEAD", "DELETE"}
#: Tool names models accept (OpenAI, Anthropic, Gemini).
TOOL_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
#: Argument names the tool's own functions take (injected by LangChain).
RESERVED = frozenset({"config", "callbacks", "run_manager"})
_ERROR_CODES = frozenset(ERROR_STATUS) | SIGNATURE_ERROR_CODES


def path_parameters(template: str) -> tuple[str, ...]:
    """The ``{name}`` fields of a URL template, in order (a malformed template is a typed
    error)."""
    try:
        names = [
            name for _, name, spec, conv in string.Formatter().parse(template) if name is not None
        ]
    except ValueError as exc:
        raise ConfigurationError(f"the URL template {template!r} is malformed: {exc}") from exc
    for name in names:
        if not name.isidentifier():
            raise ConfigurationError(f"the URL template field {{{name}}} is not a plain name")
    return tuple(dict.fromkeys(names))


@dataclass(frozen=True)
class Endpoint:
    """How a tool's arguments become one HTTP request (:mod:`module docstring <.http>`).
    ``locations`` places an argument explicitly (``"path"``, ``"query"``, ``"header"``,
    ``"body"``; an OpenAPI operation says where each goes); ``body_argument`` names the
    argument that is the whole JSON body, when it is not an object of arguments."""

    method: str
    url: str
    path: tuple[str, ...]
    locations: Mapping[str, str]
    headers: Mapping[str, str]
    body_argument: str | None = None

    @classmethod
    def make(
        cls,
        method: str,
        url: str,
        *,
        locations: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        body_argument: str | None = None,
    ) -> Endpoint:
        verb = method.upper()
        if verb not in METHODS:
            raise ConfigurationError(f"method must be one of {sorted(METHODS)}, not {method!r}")
        parsed = httpx.URL(url.replace("{", "%7B").replace("}", "%7D"))
        if parsed.scheme not in ("https", "http") or not parsed.host:
            raise ConfigurationError(f"the tool URL must be an http(s) URL, not {url!r}")
        path = path_parameters(url)
        return cls(verb, url, path, dict(locations or {}), dict(headers or {}), body_argument)

    def place(self, name: str) -> str:
        if name in self.path:
            return "path"
        return self.locations.get(name) or ("body" if self.method in BODY_METHODS else "query")

    def build(
        self, arguments: Mapping[str, Any]
    ) -> tuple[str, dict[str, Any], dict[str, str], Any]:
        """``(url, query, headers, json_body)`` for ``arguments`` (``None`` values are left
        out; the body is ``None`` when no argument goes there)."""
        fill: dict[str, str] = {}
        query: dict[str, Any] = {}
        headers = dict(self.headers)
        body: Any = None
        for name, value in to_jsonable_python(dict(arguments)).items():
            if value is None:
                continue
            where = self.place(name)
            if where == "path":
                fill[name] = quote(_scalar(value), safe="")
            elif where == "query":
                query[name] = (
                    [_scalar(v) for v in value] if isinstance(value, list) else (_scalar(value))
                )
            elif where == "header":
                headers[name] = _scalar(value)
            elif name == self.body_argument:
                body = value
            else:
                if not isinstance(body, dict):
                    body = {}
                body[name] = value
        missing = [name for name in self.path if name not in fill]
        if missing:
            raise ConfigurationError(f"missing path arguments: {', '.join(missing)}")
        return self.url.format(**fill), query, headers, body


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def path_schema(name: str, path: Sequence[str]) -> type[BaseModel]:
    """An argument schema of the path fields alone (each a required string)."""
    fields: dict[str, Any] = dict.fromkeys(path, (str, ...))
    return create_model(f"{name}_arguments", **fields)


def schema_fields(schema: type[BaseModel] | Mapping[str, Any]) -> set[str]:
    if isinstance(schema, Mapping):
        properties = schema.get("properties") or {}
        return set(properties) if isinstance(properties, Mapping) else set()
    return set(schema.model_fields)


class Response:
    """A response as a tool result: content for the model, the artifact for a program."""

    def __init__(self, response: httpx.Response, max_chars: int) -> None:
        self.response = response
        self.max_chars = max_chars

    def data(self) -> Any:
        if "json" not in self.response.headers.get("content-type", "") or not self.response.content:
            return None
        try:
            return self.response.json()
        except ValueError:
            return None

    def content(self, data: Any) -> str:
        text = (
            json.dumps(data, separators=(",", ":"), ensure_ascii=False)
            if data is not None
            else self.response.text
        )
        if len(text) > self.max_chars:
            text = text[: self.max_chars] + f"... ({len(text) - self.max_chars} more characters)"
        return text

    def artifact(self, data: Any, error: BaseException | None = None) -> AAuthToolArtifact:
        request = self.response.request
        return AAuthToolArtifact(
            status=self.response.status_code,
            headers=visible_headers(self.response.headers),
            resource=resource_identifier(request.url),
            url=str(request.url),
            data=data,
            error=error,
        )

    def result(self) -> tuple[str, AAuthToolArtifact]:
        """``(content, artifact)``; an error status raises the tool error."""
        from ...agent.errors import error_for_response

        response = self.response
        data = self.data()
        if response.status_code < 400:
            return self.content(data), self.artifact(data)
        problem = data.get("error") if isinstance(data, dict) else None
        if problem in _ERROR_CODES or "signature-error" in response.headers:
            error = error_for_response(
                response.status_code, response.headers.multi_items(), response.content
            )
            failure = aauth_failure(
                error,
                resource=resource_identifier(response.request.url),
                url=str(response.request.url),
            )
            raise failure
        message = (
            f"HTTP {response.status_code} {response.reason_phrase}: {self.content(data)[:500]}"
        )
        raise HTTPToolError(message, artifact=self.artifact(data))


class HttpToolBody:
    """The sync and async functions of an HTTP tool (both on the agent's one flow)."""

    def __init__(
        self, runtime: ToolRuntime, endpoint: Endpoint, validate: Any, max_chars: int
    ) -> None:
        self.runtime, self.endpoint = runtime, endpoint
        self.validate = validate  # a JSON Schema validator for dict schemas, or None
        self.max_chars = max_chars

    def _prepare(
        self, arguments: dict[str, Any]
    ) -> tuple[str, dict[str, Any], dict[str, str], Any]:
        if self.validate is not None:
            self.validate(arguments)
        try:
            return self.endpoint.build(arguments)
        except ConfigurationError as exc:
            raise HTTPToolError(exc.detail, artifact=AAuthToolArtifact()) from exc

    def run(self, config: RunnableConfig, callbacks: Any = None, **arguments: Any) -> Any:
        url, query, headers, body = self._prepare(arguments)

        def send(auth: AAuth, client: httpx.Client) -> Any:
            try:
                response = client.request(
                    self.endpoint.method, url, params=query, headers=headers, json=body, auth=auth
                )
            except (httpx.HTTPError, _aauth_error()) as exc:
                raise aauth_failure(exc, url=url) from exc
            return Response(response, self.max_chars).result()

        return self.runtime.call(config, callbacks, send)

    async def arun(self, config: RunnableConfig, callbacks: Any = None, **arguments: Any) -> Any:
        url, query, headers, body = self._prepare(arguments)

        async def send(auth: AAuth, client: httpx.AsyncClient) -> Any:
            try:
                response = await client.request(
                    self.endpoint.method, url, params=query, headers=headers, json=body, auth=auth
                )
            except (httpx.HTTPError, _aauth_error()) as exc:
                raise aauth_failure(exc, url=url) from exc
            return Response(response, self.max_chars).result()

        return await self.runtime.acall(config, callbacks, send)


def _aauth_error() -> type[Exception]:
    from ...protocol.errors import AAuthError

    return AAuthError


def json_schema_validator(schema: Mapping[str, Any]) -> Any:
    """A function that raises :class:`HTTPToolError` naming the first problem when arguments
    do not match the JSON Schema ``schema`` (a malformed schema is a typed error now)."""
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError

    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        raise ConfigurationError(
            f"the argument schema is not a JSON Schema: {exc.message}"
        ) from exc
    validator = Draft202012Validator(schema)

    def validate(arguments: Mapping[str, Any]) -> None:
        errors = sorted(validator.iter_errors(arguments), key=lambda e: list(e.absolute_path))
        if errors:
            first = errors[0]
            where = ".".join(str(p) for p in first.absolute_path) or "arguments"
            raise HTTPToolError(
                f"Invalid arguments: {where}: {first.message}", artifact=AAuthToolArtifact()
            )

    return validate


def _arguments(
    name: str, endpoint: Endpoint, args_schema: type[BaseModel] | Mapping[str, Any] | None
) -> tuple[type[BaseModel] | Mapping[str, Any], Any]:
    """The tool's arguments: ``args_schema`` (else one string per path parameter) and, for a
    JSON Schema, its validator. The schema must name every path parameter and no argument
    LangChain reserves."""
    schema: type[BaseModel] | Mapping[str, Any] = (
        args_schema if args_schema is not None else path_schema(name, endpoint.path)
    )
    validate = None
    if isinstance(schema, Mapping):
        validate = json_schema_validator(schema)
    elif not (isinstance(schema, type) and issubclass(schema, BaseModel)):
        raise ConfigurationError("args_schema must be a Pydantic model or a JSON Schema dict")
    fields = schema_fields(schema)
    missing = [field for field in endpoint.path if field not in fields]
    if missing:
        raise ConfigurationError(f"the URL needs {', '.join(missing)}, which args_schema lacks")
    clash = sorted(fields & RESERVED)
    if clash:
        raise ConfigurationError(f"argument names reserved by LangChain: {', '.join(clash)}")
    return schema, validate


def aauth_tool(
    name: str,
    description: str,
    method: str,
    url: str,
    *,
    auth: AAuth | Any,
    args_schema: type[BaseModel] | Mapping[str, Any] | None = None,
    http_client: httpx.Client | None = None,
    async_http_client: httpx.AsyncClient | None = None,
    on_pending: str = "wait",
    headers: Mapping[str, str] | None = None,
    locations: Mapping[str, str] | None = None,
    body_argument: str | None = None,
    max_chars: int = 20_000,
    interrupts: InterruptRecords | None = None,
    **tool_options: Any,
) -> AAuthTool:
    """One HTTP endpoint (``method`` ``url``) as a ``StructuredTool`` with both ``func`` and
    ``coroutine`` (see the module docstring). ``headers`` are sent with every request;
    ``locations`` and ``body_argument`` place arguments explicitly (OpenAPI tools use them);
    ``tool_options`` go to ``StructuredTool`` (``return_direct``, ``tags``, ``metadata``,
    ``handle_tool_error``, ...). Every argument is checked now: a name models refuse, a
    method, URL, schema or pending mode that cannot work is a typed error."""
    if not TOOL_NAME.fullmatch(name):
        raise ConfigurationError(f"tool name {name!r}: letters, digits, _ and -, at most 64")
    if max_chars < 1:
        raise ConfigurationError("max_chars must be positive")
    endpoint = Endpoint.make(
        method, url, locations=locations, headers=headers, body_argument=body_argument
    )
    schema, validate = _arguments(name, endpoint, args_schema)
    runtime = ToolRuntime(
        auth,
        http_client=http_client,
        async_http_client=async_http_client,
        on_pending=on_pending,
        interrupts=interrupts,
    )
    body = HttpToolBody(runtime, endpoint, validate, max_chars)
    tool_options.setdefault("handle_tool_error", handle_tool_error)
    return AAuthTool(
        name=name,
        description=description,
        args_schema=schema,  # type: ignore[arg-type]
        func=body.run,
        coroutine=body.arun,
        response_format="content_and_artifact",
        **tool_options,
    )


__all__ = ["Endpoint", "aauth_tool", "json_schema_validator", "path_parameters"]
