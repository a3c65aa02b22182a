"""Every operation of an OpenAPI 3 document as an AAuth tool.

::

    toolkit = AAuthToolkit.from_openapi(
        "openapi.yaml", "https://resource.example", auth=auth, operations=["listFiles"])
    agent = create_agent(model, toolkit.get_tools())

The document is a ``dict``, a JSON or YAML file, or an ``http(s)`` URL fetched through
``auth`` (the document itself may be protected; :meth:`AAuthToolkit.afrom_openapi` fetches it
with the async client). Each selected ``get``/``put``/``post``/``delete``/``patch``/``head``
operation becomes an :func:`~.http.aauth_tool`:

* name -- the ``operationId`` with characters other than ``A-Za-z0-9_-`` replaced by ``_``
  (at most 64, made unique with a suffix ``_2``, ``_3``...); without one, the method and
  path (``get_files_name`` for ``GET /files/{name}``);
* description -- the ``summary``, else the ``description``, else ``METHOD /path``;
* arguments -- a JSON Schema of the path, query and header parameters and the
  ``application/json`` request body. A required body whose schema is a plain object
  (``type: object`` and ``properties``, nothing more) gives its properties as arguments; any
  other body, or one whose property names collide with a parameter, is one ``body`` argument.
  Arguments are checked against the schema before anything is sent.

The libraries do the OpenAPI and JSON Schema work -- openapi-pydantic checks the document's
structure (3.0 and 3.1), jsonref resolves ``$ref`` and jsonschema checks the schemas and the
arguments; this module is the glue. What it cannot turn into a correct request is refused
when the toolkit is made, with :class:`OpenAPIError` (a ``ConfigurationError``), before any
tool sends anything:

* references outside the document (nothing is fetched but the document) and broken ones;
* *recursive* schemas in the parameters or body of a selected operation: an argument schema
  is inlined for the model, and a recursive one has no finite inline form (recursion
  elsewhere, in responses say, is harmless: tools do not use it);
* ``in: cookie`` parameters, header parameters the HTTP client or AAuth sets (``Host``,
  ``Signature*``, ``Content-Digest``, ``AAuth-*``...), parameter styles other than the
  defaults (arrays in the query go as repeated ``name=value``), request bodies that are not
  ``application/json``, path parameters that are not Python identifiers, two arguments with
  one name, and path item ``$ref``.

``Accept``, ``Content-Type`` and ``Authorization`` header parameters are ignored, as OpenAPI
says. OpenAPI 3.0 schemas become JSON Schema (``nullable``, boolean ``exclusiveMinimum`` /
``exclusiveMaximum``). Problems of operations not selected do not matter.

**Where requests go**: ``base_url`` plus each operation's path, never the document's
``servers``. The document is data -- perhaps fetched from another host, often listing several
environments, relative or templated URLs -- and an origin taken from it would decide where
the agent signs requests and which resource the person is asked to consent to. The
developer names the API's origin; every operation's URL is checked to stay on it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jsonref
import yaml
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool, BaseToolkit
from openapi_pydantic import parse_obj
from openapi_pydantic.v3 import v3_0, v3_1
from pydantic import ConfigDict, ValidationError

from ...agent import AAuth, client_options
from ...protocol.errors import ConfigurationError
from .http import RESERVED, aauth_tool, path_parameters
from .interrupts import InterruptRecords
from .runtime import ToolRuntime, check_pending_mode

METHODS = ("get", "put", "post", "delete", "patch", "head")
#: What a tool name may hold (:data:`.http.TOOL_NAME`).
_NOT_IN_NAME = re.compile(r"[^A-Za-z0-9_-]+")
#: Header parameters OpenAPI says to ignore.
IGNORED_HEADERS = frozenset({"accept", "content-type", "authorization"})
#: Headers the HTTP client or AAuth sets: a model must not choose them.
OWN_HEADERS = frozenset(
    "host content-length transfer-encoding cookie signature signature-input signature-key "
    "content-digest".split()
)
HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
DEFAULT_STYLE = {"path": "simple", "query": "form", "header": "simple"}
#: A body schema with only these members is "a plain object" (its properties are arguments).
PLAIN_OBJECT = frozenset(
    "type properties required additionalProperties title description example examples".split()
)
#: Bounds on an operation's resolved parameters and body (an inlined schema stays small).
MAX_NODES = 20_000
MAX_DEPTH = 64
ACCEPT = "application/json, application/yaml;q=0.9, */*;q=0.1"


class OpenAPIError(ConfigurationError):
    """An OpenAPI document, or an operation in it, that cannot become tools."""


@dataclass(frozen=True)
class OpenAPIOperation:
    """One operation, as an ``operations=`` predicate sees it: the tool's ``name``, the HTTP
    ``method`` (``"GET"``), the ``path`` template and the openapi-pydantic ``operation``
    (3.0 or 3.1 model; its ``$ref``\\s unresolved)."""

    name: str
    method: str
    path: str
    operation: Any


OperationFilter = Collection[str] | Callable[[OpenAPIOperation], bool]


# -- the document --------------------------------------------------------------------------


def _parse_text(text: str | bytes, *, yaml_too: bool, where: str) -> Any:
    try:
        return yaml.safe_load(text) if yaml_too else json.loads(text)
    except (ValueError, yaml.YAMLError, RecursionError) as exc:
        kind = "JSON or YAML" if yaml_too else "JSON"
        raise OpenAPIError(f"{where} is not {kind}: {exc}") from exc


def _is_url(document: Any) -> bool:
    return isinstance(document, str) and document.startswith(("https://", "http://"))


def _read(document: Any) -> Any:
    """A dict as it is; a path read as JSON (``.json``) or YAML (anything else)."""
    if isinstance(document, Mapping):
        return document
    if not isinstance(document, (str, os.PathLike)):
        raise OpenAPIError("the document is a dict, a file path or an http(s) URL")
    path = Path(document)
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise OpenAPIError(f"cannot read the OpenAPI document {str(path)!r}: {exc}") from exc
    return _parse_text(text, yaml_too=path.suffix.lower() != ".json", where=str(path))


def _fetched(url: str, response: httpx.Response) -> Any:
    if not response.is_success:
        raise OpenAPIError(f"the OpenAPI document at {url} answered HTTP {response.status_code}")
    is_json = "json" in response.headers.get("content-type", "")
    return _parse_text(response.content, yaml_too=not is_json, where=url)


def _problem(exc: ValidationError, skip: int = 0) -> str:
    """The first errors, briefly (``skip``: leading location parts, a union's tag)."""
    shown = [
        f"{'.'.join(str(part) for part in error['loc'][skip:]) or 'document'}: {error['msg']}"
        for error in exc.errors()[:3]
    ]
    more = f" (and {exc.error_count() - 3} more)" if exc.error_count() > 3 else ""
    return "; ".join(shown) + more


class _Resolved:
    """Copies parts of the resolved document as plain JSON, refusing a recursive or
    oversized part (jsonref makes a recursive schema a cycle of dicts)."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.left = MAX_NODES

    def copy(self, node: Any, ancestors: tuple[int, ...] = ()) -> Any:
        self.left -= 1
        if self.left < 0:
            raise OpenAPIError(f"{self.where}: the schemas are too large once resolved")
        if isinstance(node, (Mapping, list)):
            if id(node) in ancestors:
                raise OpenAPIError(f"{self.where}: a recursive schema cannot be an argument")
            if len(ancestors) >= MAX_DEPTH:
                raise OpenAPIError(f"{self.where}: the schemas are nested too deeply")
            inner = (*ancestors, id(node))
            if isinstance(node, list):
                return [self.copy(item, inner) for item in node]
            if not all(isinstance(key, str) for key in node):
                raise OpenAPIError(f"{self.where}: an object with a key that is not a string")
            return {key: self.copy(value, inner) for key, value in node.items()}
        if node is None or isinstance(node, (str, int, float)):
            return node
        raise OpenAPIError(f"{self.where}: {type(node).__name__} is not a JSON value")


def _no_remote(uri: str) -> Any:
    raise OpenAPIError(f"only references inside the document are followed, not {uri!r}")


def _from_openapi_30(node: Any) -> Any:
    """An OpenAPI 3.0 Schema Object as JSON Schema 2020-12: ``nullable`` becomes a ``null``
    type, boolean ``exclusiveMinimum``/``exclusiveMaximum`` become numbers. (Only boolean
    members are touched, so a property *named* ``nullable`` stays.)"""
    if isinstance(node, list):
        return [_from_openapi_30(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _from_openapi_30(value) for key, value in node.items()}
    if isinstance(out.get("nullable"), bool):
        if out.pop("nullable") and isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
    for exclusive, bound in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if isinstance(out.get(exclusive), bool):
            if out.pop(exclusive) and bound in out:
                out[exclusive] = out.pop(bound)
    return out


class _Document:
    """An OpenAPI 3.0 or 3.1 document, checked by openapi-pydantic, its ``$ref``\\s resolved
    by jsonref."""

    def __init__(self, raw: Any) -> None:
        version = raw.get("openapi") if isinstance(raw, Mapping) else None
        if not isinstance(version, str) or not version.startswith(("3.0.", "3.1.")):
            raise OpenAPIError(f"not an OpenAPI 3.0 or 3.1 document (openapi: {version!r})")
        try:
            self.spec = parse_obj(raw)
        except ValidationError as exc:
            raise OpenAPIError(
                f"not a valid OpenAPI {version} document: {_problem(exc, 1)}"
            ) from exc
        self.models: Any = v3_0 if isinstance(self.spec, v3_0.OpenAPI) else v3_1
        try:
            self.resolved = jsonref.replace_refs(
                raw, loader=_no_remote, merge_props=True, proxies=False, lazy_load=False
            )
        except jsonref.JsonRefError as exc:
            cause = exc.cause if isinstance(exc.cause, OpenAPIError) else None
            raise OpenAPIError(cause.detail if cause else exc.message) from exc
        except RecursionError as exc:  # a cycle of references to references
            raise OpenAPIError("the document's references form a cycle") from exc

    def operations(self) -> list[OpenAPIOperation]:
        """Every operation, named, in the document's order."""
        found: list[OpenAPIOperation] = []
        names: set[str] = set()
        ids: set[str] = set()
        for path, item in (self.spec.paths or {}).items():
            if item.ref is not None:
                raise OpenAPIError(f"{path}: path item references are not supported")
            for method in METHODS:
                operation = getattr(item, method)
                if operation is None:
                    continue
                if "$ref" in (operation.model_extra or {}):
                    raise OpenAPIError(f"{path}: an operation cannot be a reference")
                operation_id = operation.operationId
                if operation_id is not None:
                    if operation_id in ids:
                        raise OpenAPIError(f"operationId {operation_id!r} is used twice")
                    ids.add(operation_id)
                name = _unique(_tool_name(operation_id, method, path), names)
                found.append(OpenAPIOperation(name, method.upper(), path, operation))
        return found

    def arguments(self, chosen: OpenAPIOperation) -> tuple[dict[str, Any], dict[str, str], bool]:
        """``(args_schema, locations, has_body_argument)`` of one operation."""
        where = f"operation {chosen.name}"
        item = self.resolved["paths"][chosen.path]
        operation = item[chosen.method.lower()]
        plain = _Resolved(where)
        arguments = _Arguments(where, openapi_30=self.models is v3_0)
        parameters: dict[tuple[str, str], tuple[Any, Any]] = {}
        for listed in (item.get("parameters") or [], operation.get("parameters") or []):
            for resolved in listed:  # the operation's own replace the path item's
                data = plain.copy(resolved)
                parameter = self._model(self.models.Parameter, data, where)
                parameters[parameter.name, parameter.param_in.value] = parameter, data
        template = set(path_parameters(chosen.path))
        undeclared = template - {name for name, location in parameters if location == "path"}
        if undeclared:
            raise OpenAPIError(f"{where}: no path parameter for {', '.join(sorted(undeclared))}")
        for parameter, data in parameters.values():
            arguments.parameter(parameter, data, template)
        has_body = False
        if operation.get("requestBody") is not None:
            data = plain.copy(operation["requestBody"])
            has_body = arguments.body(self._model(self.models.RequestBody, data, where), data)
        return arguments.json(), arguments.locations, has_body

    @staticmethod
    def _model(model: Any, data: Any, where: str) -> Any:
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            raise OpenAPIError(f"{where}: not a {model.__name__}: {_problem(exc)}") from exc


def _tool_name(operation_id: str | None, method: str, path: str) -> str:
    name = _NOT_IN_NAME.sub("_", operation_id or "")[:64]
    if name:
        return name
    return _NOT_IN_NAME.sub("_", f"{method}{path}").strip("_")[:64]


def _unique(name: str, taken: set[str]) -> str:
    candidate, n = name, 1
    while candidate in taken:
        n += 1
        candidate = f"{name[: 64 - len(str(n)) - 1]}_{n}"
    taken.add(candidate)
    return candidate


def _plain_object(schema: Any) -> bool:
    """A body schema that is only an object of properties (no extra members allowed)."""
    return (
        isinstance(schema, dict)
        and schema.get("type") == "object"
        and isinstance(schema.get("properties"), dict)
        and set(schema) <= PLAIN_OBJECT
        and schema.get("additionalProperties", False) is False
    )


class _Arguments:
    """The argument schema of one operation, built parameter by parameter."""

    def __init__(self, where: str, *, openapi_30: bool) -> None:
        self.where, self.openapi_30 = where, openapi_30
        self.properties: dict[str, Any] = {}
        self.required: list[str] = []
        self.locations: dict[str, str] = {}

    def add(self, name: str, schema: Any, location: str, required: bool) -> None:
        if name in self.properties:
            raise OpenAPIError(f"{self.where}: two arguments are named {name!r}")
        self.properties[name] = _from_openapi_30(schema) if self.openapi_30 else schema
        self.locations[name] = location
        if required:
            self.required.append(name)

    def parameter(self, parameter: Any, data: Mapping[str, Any], declared: set[str]) -> None:
        name, location = parameter.name, parameter.param_in.value
        if location == "cookie":
            raise OpenAPIError(f"{self.where}: cookie parameters are not supported ({name})")
        if location == "header":
            lowered = name.lower()
            if not HEADER_NAME.fullmatch(name):
                raise OpenAPIError(f"{self.where}: {name!r} is not a header name")
            if lowered in IGNORED_HEADERS:
                return
            if lowered in OWN_HEADERS or lowered.startswith("aauth-"):
                raise OpenAPIError(f"{self.where}: the {name} header is not the model's to set")
        if location == "path" and name not in declared:
            raise OpenAPIError(f"{self.where}: path parameter {name!r} is not in the path")
        if parameter.style not in (None, DEFAULT_STYLE[location]) or (
            location == "query" and parameter.explode is False
        ):
            raise OpenAPIError(f"{self.where}: the style of {name!r} is not supported")
        schema = data.get("schema")
        if schema is None:  # the parameter's schema is in content instead
            media = list((data.get("content") or {}).values())
            schema = media[0].get("schema", {}) if media else {}
        if isinstance(schema, dict) and parameter.description and "description" not in schema:
            schema = {**schema, "description": parameter.description}
        self.add(name, schema, location, location == "path" or parameter.required)

    def body(self, request_body: Any, data: Mapping[str, Any]) -> bool:
        """Add the body's arguments; whether it is one ``body`` argument."""
        media = {key.split(";")[0].strip().lower(): key for key in request_body.content}
        if "application/json" not in media:
            raise OpenAPIError(f"{self.where}: only application/json request bodies are supported")
        schema = data["content"][media["application/json"]].get("schema", {})
        if request_body.required and _plain_object(schema):
            properties = schema["properties"]
            if not set(properties) & (set(self.properties) | RESERVED):
                needed = schema.get("required") or []
                for name, value in properties.items():
                    self.add(name, value, "body", name in needed)
                return False
        if isinstance(schema, dict) and request_body.description and "description" not in schema:
            schema = {**schema, "description": request_body.description}
        self.add("body", schema, "body", bool(request_body.required))
        return True

    def json(self) -> dict[str, Any]:
        return {
            "type": "object",
            "properties": self.properties,
            "required": self.required,
            "additionalProperties": False,
        }


# -- the toolkit -----------------------------------------------------------------------------


def _base(base_url: str) -> str:
    try:
        parsed = httpx.URL(base_url)
    except (httpx.InvalidURL, TypeError) as exc:
        raise ConfigurationError(f"base_url {base_url!r} is not a URL") from exc
    if parsed.scheme not in ("https", "http") or not parsed.host or parsed.query or parsed.fragment:
        raise ConfigurationError(f"base_url must be an http(s) URL without query, not {base_url!r}")
    return base_url.rstrip("/")


def _url(base: str, path: str) -> str:
    """``base`` + ``path``, refused unless it stays on ``base``'s origin."""
    url = base + path
    if not path.startswith("/") or "?" in path or "#" in path:
        raise ConfigurationError(f"the path {path!r} must start with / and hold no ? or #")
    try:
        parsed = httpx.URL(url.replace("{", "%7B").replace("}", "%7D"))
    except httpx.InvalidURL as exc:
        raise ConfigurationError(f"the path {path!r} does not make a URL") from exc
    origin = httpx.URL(base)
    if (parsed.scheme, parsed.host, parsed.port) != (origin.scheme, origin.host, origin.port):
        raise ConfigurationError(f"the path {path!r} leaves {base}")
    return url


def _select(
    operations: list[OpenAPIOperation], chosen: OperationFilter | None
) -> list[OpenAPIOperation]:
    if chosen is None:
        selected = operations
    elif callable(chosen):
        selected = [operation for operation in operations if chosen(operation)]
    elif isinstance(chosen, Collection):
        wanted = {chosen} if isinstance(chosen, str) else set(chosen)
        known = {o.name for o in operations} | {o.operation.operationId for o in operations}
        unknown = sorted(str(name) for name in wanted - known)
        if unknown:
            raise OpenAPIError(f"no operations named {', '.join(unknown)} in the document")
        selected = [o for o in operations if o.name in wanted or o.operation.operationId in wanted]
    if not selected:
        raise OpenAPIError("no operation of the document was selected")
    return selected


class AAuthToolkit(BaseToolkit):
    """Tools for the operations of an OpenAPI 3 document, their requests through AAuth (see
    the module docstring). Make one with :meth:`from_openapi` or :meth:`afrom_openapi`."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    tools: list[BaseTool]

    def get_tools(self) -> list[BaseTool]:
        return list(self.tools)

    @classmethod
    def from_openapi(
        cls,
        document: Mapping[str, Any] | str | os.PathLike[str],
        base_url: str,
        *,
        auth: AAuth | Any,
        operations: OperationFilter | None = None,
        http_client: httpx.Client | None = None,
        async_http_client: httpx.AsyncClient | None = None,
        on_pending: str = "wait",
        headers: Mapping[str, str] | None = None,
        max_chars: int = 20_000,
        interrupts: InterruptRecords | None = None,
        config: RunnableConfig | None = None,
        **tool_options: Any,
    ) -> AAuthToolkit:
        """A tool per operation of ``document`` (a dict, a JSON or YAML file path, or a URL
        fetched now through ``auth`` and ``http_client``), sending to ``base_url``.

        ``operations`` picks them: tool names or operationIds, or a predicate of an
        :class:`OpenAPIOperation`. ``config`` is the run the document is fetched for (when
        ``auth`` is a function of the ``RunnableConfig``). The other options are
        :func:`~.http.aauth_tool`'s, for every tool. Problems are typed errors now
        (:class:`OpenAPIError`, ``ConfigurationError``)."""
        options = _options(locals(), tool_options)
        if not _is_url(document):
            return cls(tools=_tools(_read(document), base_url, options))
        url = str(document)

        def fetch(agent: AAuth, client: httpx.Client) -> Any:
            return _fetched(url, client.get(url, auth=agent, headers={"Accept": ACCEPT}))

        with contextlib.ExitStack() as own:
            client = http_client or own.enter_context(httpx.Client(**client_options()))
            raw = ToolRuntime(auth, http_client=client).call(config, None, fetch)
        return cls(tools=_tools(raw, base_url, options))

    @classmethod
    async def afrom_openapi(
        cls,
        document: Mapping[str, Any] | str | os.PathLike[str],
        base_url: str,
        *,
        auth: AAuth | Any,
        operations: OperationFilter | None = None,
        http_client: httpx.Client | None = None,
        async_http_client: httpx.AsyncClient | None = None,
        on_pending: str = "wait",
        headers: Mapping[str, str] | None = None,
        max_chars: int = 20_000,
        interrupts: InterruptRecords | None = None,
        config: RunnableConfig | None = None,
        **tool_options: Any,
    ) -> AAuthToolkit:
        """:meth:`from_openapi`, fetching a URL with ``async_http_client``."""
        options = _options(locals(), tool_options)
        if not _is_url(document):
            return cls(tools=_tools(_read(document), base_url, options))
        url = str(document)

        async def fetch(agent: AAuth, client: httpx.AsyncClient) -> Any:
            return _fetched(url, await client.get(url, auth=agent, headers={"Accept": ACCEPT}))

        async with contextlib.AsyncExitStack() as own:
            client = async_http_client or await own.enter_async_context(
                httpx.AsyncClient(**client_options())
            )
            raw = await ToolRuntime(auth, async_http_client=client).acall(config, None, fetch)
        return cls(tools=_tools(raw, base_url, options))


_FIXED = frozenset({"args_schema", "locations", "body_argument"})


def _options(given: Mapping[str, Any], tool_options: Mapping[str, Any]) -> dict[str, Any]:
    """The options of every tool, checked before anything is fetched."""
    fixed = sorted(_FIXED & set(tool_options))
    if fixed:
        raise ConfigurationError(f"the document decides {', '.join(fixed)}")
    _base(given["base_url"])
    check_pending_mode(given["on_pending"])
    if given["max_chars"] < 1:
        raise ConfigurationError("max_chars must be positive")
    names = "auth operations http_client async_http_client on_pending headers max_chars interrupts"
    return {**{name: given[name] for name in names.split()}, **tool_options}


def _tools(raw: Any, base_url: str, options: dict[str, Any]) -> list[BaseTool]:
    base = _base(base_url)
    document = _Document(raw)
    chosen = _select(document.operations(), options.pop("operations"))
    tools: list[BaseTool] = []
    for operation in chosen:
        model = operation.operation
        description = model.summary or model.description or f"{operation.method} {operation.path}"
        try:
            url = _url(base, operation.path)
            schema, locations, has_body = document.arguments(operation)
            tool = aauth_tool(
                operation.name,
                description,
                operation.method,
                url,
                args_schema=schema,
                locations=locations,
                body_argument="body" if has_body else None,
                **options,
            )
        except OpenAPIError:
            raise
        except ConfigurationError as exc:  # aauth_tool's checks, for this operation
            raise OpenAPIError(f"operation {operation.name}: {exc.detail}") from exc
        tools.append(tool)
    return tools


__all__ = ["AAuthToolkit", "OpenAPIError", "OpenAPIOperation"]
