"""``AAuthToolkit.from_openapi`` end to end: an OpenAPI 3.1 (and 3.0) document describing the
demo resource becomes tools that list, read and write the person's files over loopback
HTTP (writing steps up to files.write); the document read from a dict, a JSON or YAML file,
or fetched through AAuth from a protected host; arguments failing the schema refused before
anything is sent; malformed documents a typed error at construction, with nothing sent; and
for arbitrary documents the toolkit either builds tools or raises the typed error
(hypothesis)."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from langchain_core.tools import BaseToolkit
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from support.langchain import Party

from aauth_agents.integrations.langchain import AAuthToolkit, OpenAPIError, OpenAPIOperation
from aauth_agents.keys import PrivateKey
from aauth_agents.protocol.errors import ConfigurationError
from aauth_agents.resource import AAuthMiddleware, AccessRule, ResourceConfig
from aauth_agents.servers.stack import LocalStack

RESOURCE = "https://resource.example"
DOCS = "https://docs.example"
OK = {"200": {"description": "done"}}


def demo_document(version: str = "3.1.0") -> dict[str, Any]:
    """The demo resource's REST routes, as an API vendor might describe them: shared
    components by ``$ref``, a path-level parameter, a recursive schema in a response only,
    and ``servers`` pointing elsewhere (ignored: base_url decides)."""
    document = {
        "openapi": version,
        "info": {"title": "aauth-agents demo resource", "version": "1"},
        "servers": [{"url": "https://elsewhere.example"}],
        "paths": {
            "/whoami": {
                "get": {
                    "operationId": "whoami",
                    "summary": "Who the calling agent is.",
                    "responses": {
                        "200": {
                            "description": "the caller",
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/Tree"}
                                }
                            },
                        }
                    },
                }
            },
            "/files": {
                "get": {
                    "operationId": "listFiles",
                    "summary": "List the person's files.",
                    "parameters": [
                        {
                            "name": "limit",
                            "in": "query",
                            "description": "at most this many",
                            "schema": {"type": "integer", "minimum": 1},
                        }
                    ],
                    "responses": OK,
                },
                "post": {
                    "operationId": "writeFile",
                    "summary": "Create or replace one of the person's files.",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/NewFile"}}
                        },
                    },
                    "responses": OK,
                },
            },
            "/files/{name}": {
                "parameters": [{"$ref": "#/components/parameters/FileName"}],
                "get": {
                    "operationId": "readFile",
                    "description": "Read one of the person's files.",
                    "responses": OK,
                },
            },
        },
        "components": {
            "schemas": {
                "Name": {"type": "string", "minLength": 1, "maxLength": 64},
                "NewFile": {
                    "type": "object",
                    "properties": {
                        "name": {"$ref": "#/components/schemas/Name"},
                        "content": {"type": "string", "description": "its text"},
                    },
                    "required": ["name", "content"],
                },
                "Tree": {  # recursive, but only in a response: harmless
                    "type": "object",
                    "properties": {
                        "children": {
                            "type": "array",
                            "items": {"$ref": "#/components/schemas/Tree"},
                        }
                    },
                },
            },
            "parameters": {
                "FileName": {
                    "name": "name",
                    "in": "path",
                    "required": True,
                    "description": "the file's name",
                    "schema": {"$ref": "#/components/schemas/Name"},
                }
            },
        },
    }
    return copy.deepcopy(document)  # fresh: tests change it


async def invoke(tool: Any, mode: str, args: dict[str, Any], call_id: str = "call-1") -> Any:
    """A tool call as a model makes it (the answer a ToolMessage), sync or async."""
    call = {"type": "tool_call", "id": call_id, "name": tool.name, "args": args}
    if mode == "sync":
        import anyio.to_thread

        return await anyio.to_thread.run_sync(lambda: tool.invoke(call))
    return await tool.ainvoke(call)


def no_agent(config: Any) -> Any:
    """An ``auth`` for tools that are never called."""
    raise AssertionError("no tool is called")


def tools_of(toolkit: AAuthToolkit) -> dict[str, Any]:
    return {tool.name: tool for tool in toolkit.get_tools()}


# -- names, descriptions, schemas ---------------------------------------------------------


def test_a_31_document_becomes_one_tool_per_operation() -> None:
    toolkit = AAuthToolkit.from_openapi(demo_document(), RESOURCE, auth=no_agent)
    assert isinstance(toolkit, BaseToolkit)
    tools = tools_of(toolkit)
    assert list(tools) == ["whoami", "listFiles", "writeFile", "readFile"]
    assert tools["whoami"].description == "Who the calling agent is."
    assert tools["readFile"].description == "Read one of the person's files."  # no summary
    name = {"type": "string", "minLength": 1, "maxLength": 64}
    assert tools["readFile"].args_schema == {
        "type": "object",
        "properties": {"name": {**name, "description": "the file's name"}},
        "required": ["name"],
        "additionalProperties": False,
    }
    # the object body's properties are the arguments
    assert tools["writeFile"].args_schema["properties"] == {
        "name": name,
        "content": {"type": "string", "description": "its text"},
    }
    assert tools["writeFile"].args_schema["required"] == ["name", "content"]
    assert tools["listFiles"].args_schema["properties"] == {
        "limit": {"type": "integer", "minimum": 1, "description": "at most this many"}
    }
    assert tools["listFiles"].args_schema["required"] == []
    assert json.loads(json.dumps(tools["writeFile"].args_schema))  # plain JSON for a model


def test_a_30_document_becomes_json_schema() -> None:
    document = demo_document("3.0.3")
    limit = document["paths"]["/files"]["get"]["parameters"][0]
    limit["schema"] = {"type": "integer", "minimum": 0, "exclusiveMinimum": True}
    document["components"]["schemas"]["NewFile"]["properties"]["content"]["nullable"] = True
    tools = tools_of(AAuthToolkit.from_openapi(document, RESOURCE, auth=no_agent))
    assert tools["listFiles"].args_schema["properties"]["limit"] == {
        "type": "integer",
        "exclusiveMinimum": 0,
        "description": "at most this many",
    }
    content = tools["writeFile"].args_schema["properties"]["content"]
    assert content == {"type": ["string", "null"], "description": "its text"}


def test_names_are_sanitised_derived_and_unique() -> None:
    document = demo_document()
    paths = document["paths"]
    paths["/whoami"]["get"]["operationId"] = "who am/i?"
    del paths["/files"]["get"]["operationId"]
    paths["/files/{name}"]["get"]["operationId"] = "x" * 80
    paths["/files"]["post"]["operationId"] = "who_am_i_"
    paths["/profile"] = {"get": {"operationId": "who.am.i.", "responses": OK}}
    tools = tools_of(AAuthToolkit.from_openapi(document, RESOURCE, auth=no_agent))
    assert list(tools) == ["who_am_i_", "get_files", "who_am_i__2", "x" * 64, "who_am_i__3"]
    assert tools["who_am_i__3"].description == "GET /profile"


def test_operations_are_picked_by_name_or_predicate() -> None:
    document = demo_document()
    picked = AAuthToolkit.from_openapi(
        document, RESOURCE, auth=no_agent, operations=["readFile", "listFiles"]
    )
    assert [tool.name for tool in picked.get_tools()] == ["listFiles", "readFile"]

    def reads(operation: OpenAPIOperation) -> bool:
        return operation.method == "GET" and operation.path.startswith("/files")

    by_predicate = AAuthToolkit.from_openapi(document, RESOURCE, auth=no_agent, operations=reads)
    assert [tool.name for tool in by_predicate.get_tools()] == ["listFiles", "readFile"]
    with pytest.raises(OpenAPIError, match="deleteFile"):
        AAuthToolkit.from_openapi(document, RESOURCE, auth=no_agent, operations=["deleteFile"])
    # an operation the toolkit cannot build does not matter when it is not picked
    document["paths"]["/whoami"]["get"]["parameters"] = [
        {"name": "session", "in": "cookie", "schema": {"type": "string"}}
    ]
    with pytest.raises(OpenAPIError, match="cookie"):
        AAuthToolkit.from_openapi(document, RESOURCE, auth=no_agent)
    assert AAuthToolkit.from_openapi(document, RESOURCE, auth=no_agent, operations="readFile")


def test_a_body_that_is_not_a_plain_object_is_one_body_argument() -> None:
    document = demo_document()
    body = document["paths"]["/files"]["post"]["requestBody"]
    body["description"] = "the files to write"
    body["content"]["application/json"]["schema"] = {
        "type": "array",
        "items": {"$ref": "#/components/schemas/NewFile"},
    }
    tools = tools_of(AAuthToolkit.from_openapi(document, RESOURCE, auth=no_agent))
    schema = tools["writeFile"].args_schema
    assert schema["required"] == ["body"]
    assert schema["properties"]["body"]["type"] == "array"
    assert schema["properties"]["body"]["description"] == "the files to write"
    assert schema["properties"]["body"]["items"]["required"] == ["name", "content"]
    # a property named like a parameter: the body stays whole
    document = demo_document()
    document["paths"]["/files"]["post"]["parameters"] = [
        {"name": "name", "in": "query", "schema": {"type": "string"}}
    ]
    tools = tools_of(AAuthToolkit.from_openapi(document, RESOURCE, auth=no_agent))
    assert set(tools["writeFile"].args_schema["properties"]) == {"name", "body"}


# -- against the demo resource --------------------------------------------------------------


async def test_the_tools_list_read_and_write_at_the_demo_resource(party: Party, mode: str) -> None:
    toolkit = AAuthToolkit.from_openapi(
        demo_document(), party.stack.resource, auth=party.approving(), **party.clients()
    )
    tools = tools_of(toolkit)
    me = await invoke(tools["whoami"], mode, {})
    assert me.status == "success" and json.loads(me.content)["agent"] == party.identity.agent_id
    listed = await invoke(tools["listFiles"], mode, {"limit": 10}, call_id="call-2")
    assert listed.status == "success", listed.content
    assert {"name": "welcome.txt", "size": 43} in json.loads(listed.content)["files"]
    read = await invoke(tools["readFile"], mode, {"name": "welcome.txt"}, call_id="call-3")
    assert json.loads(read.content)["content"].startswith("Hello from the aauth-agents")
    name = f"notes-{uuid4().hex[:8]}.txt"
    written = await invoke(
        tools["writeFile"], mode, {"name": name, "content": "milk, eggs"}, call_id="call-4"
    )
    assert written.status == "success" and written.artifact.status == 201
    assert json.loads(written.content) == {"name": name, "size": 10, "created": True}
    assert ("resource.example", "GET", "/files/welcome.txt") in party.sent
    assert not any(host == "elsewhere.example" for host, _, _ in party.sent)
    scopes = [
        e.detail["scope"]
        for e in party.stack.events
        if e.name == "issued_auth_token" and e.agent == party.identity.agent_id
    ]
    assert scopes[0] == "files.read" and "files.write" in scopes[1].split()  # a step-up
    assert len(scopes) == 2


async def test_a_30_document_works_too(party: Party, mode: str) -> None:
    tools = tools_of(
        AAuthToolkit.from_openapi(
            demo_document("3.0.3"), RESOURCE, auth=party.approving(), **party.clients()
        )
    )
    read = await invoke(tools["readFile"], mode, {"name": "welcome.txt"})
    assert read.status == "success" and "Hello from" in read.content


async def test_arguments_failing_the_schema_send_nothing(party: Party, mode: str) -> None:
    tools = tools_of(
        AAuthToolkit.from_openapi(
            demo_document(), RESOURCE, auth=party.approving(), **party.clients()
        )
    )
    for tool, args in (
        ("writeFile", {"name": "", "content": "x"}),
        ("writeFile", {"name": "a.txt"}),
        ("writeFile", {"name": "a.txt", "content": "x", "mode": "append"}),
        ("listFiles", {"limit": 0}),
        ("readFile", {"name": 7}),
    ):
        refused = await invoke(tools[tool], mode, args)
        assert refused.status == "error", (tool, args)
        assert refused.content.startswith("Invalid arguments"), refused.content
    assert party.sent == []


# -- where the document comes from ----------------------------------------------------------


def test_files_json_and_yaml(tmp_path: Path) -> None:
    as_json = tmp_path / "openapi.json"
    as_json.write_text(json.dumps(demo_document()))
    as_yaml = tmp_path / "openapi.yaml"
    as_yaml.write_text(yaml.safe_dump(demo_document("3.0.3"), sort_keys=False))
    for path in (as_json, str(as_yaml)):
        tools = tools_of(AAuthToolkit.from_openapi(path, RESOURCE, auth=no_agent))
        assert list(tools) == ["whoami", "listFiles", "writeFile", "readFile"]
    broken = tmp_path / "broken.yaml"
    broken.write_text("openapi: [3.1.0\n")
    for bad in (broken, tmp_path / "missing.json"):
        with pytest.raises(OpenAPIError):
            AAuthToolkit.from_openapi(bad, RESOURCE, auth=no_agent)


class Docs:
    """A host serving the OpenAPI document only to agents (an agent token), recording who
    fetched it; ``/echo/{id}`` answers with what it was sent."""

    def __init__(self, stack: LocalStack) -> None:
        self.fetched_by: list[str | None] = []

        async def as_json(request: Request) -> Response:
            self.fetched_by.append(request.state.aauth.agent)
            return JSONResponse(demo_document())

        async def as_yaml(request: Request) -> Response:
            self.fetched_by.append(request.state.aauth.agent)
            return Response(yaml.safe_dump(demo_document()), media_type="application/yaml")

        async def echo(request: Request) -> Response:
            return JSONResponse(
                {
                    "id": request.path_params["id"],
                    "query": dict(request.query_params.multi_items()),
                    "tags": request.query_params.getlist("tag"),
                    "trace": request.headers.get("x-trace"),
                    "body": json.loads(await request.body() or b"null"),
                }
            )

        app = Starlette(
            routes=[
                Route("/openapi.json", as_json),
                Route("/openapi.yaml", as_yaml),
                Route("/echo/{id:path}", echo, methods=["GET", "PUT"]),
            ]
        )
        config = ResourceConfig(
            identifier=DOCS,
            signing_key=PrivateKey.generate(kid="docs-1"),
            issuer_keys=stack.discovery(),
            access_mode="agent-token",
        )
        stack.add(DOCS, AAuthMiddleware(app, resource=config, policy=AccessRule.agent()))


@pytest.fixture(scope="module")
def docs(stack: LocalStack) -> Iterator[Docs]:
    yield Docs(stack)


@pytest.mark.parametrize("path", ["/openapi.json", "/openapi.yaml"])
async def test_the_document_fetched_through_aauth(
    party: Party, docs: Docs, mode: str, path: str
) -> None:
    clients = party.clients()
    unsigned = await clients["async_http_client"].get(DOCS + path)
    assert unsigned.status_code == 401  # the document is protected
    party.sent.clear()
    auth = party.approving()
    if mode == "sync":
        import anyio.to_thread

        toolkit = await anyio.to_thread.run_sync(
            lambda: AAuthToolkit.from_openapi(DOCS + path, RESOURCE, auth=auth, **clients)
        )
    else:
        toolkit = await AAuthToolkit.afrom_openapi(DOCS + path, RESOURCE, auth=auth, **clients)
    assert docs.fetched_by[-1] == party.identity.agent_id  # the fetch was signed, verified
    assert ("docs.example", "GET", path) in party.sent
    assert {host for host, _, _ in party.sent} == {"docs.example"}
    read = await invoke(tools_of(toolkit)["readFile"], mode, {"name": "welcome.txt"})
    assert read.status == "success"
    with pytest.raises(OpenAPIError, match="404"):
        await AAuthToolkit.afrom_openapi(DOCS + "/missing", RESOURCE, auth=auth, **clients)


def test_parameters_go_where_the_document_says(party: Party, docs: Docs) -> None:
    """Path, query (an array as repeated names), header, and a body that is not an object."""
    parameters = [
        {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}},
        {"name": "tag", "in": "query", "schema": {"type": "array", "items": {"type": "string"}}},
        {"name": "X-Trace", "in": "header", "required": True, "schema": {"type": "string"}},
        {"name": "Accept", "in": "header", "schema": {"type": "string"}},  # ignored
    ]
    document = {
        "openapi": "3.1.0",
        "info": {"title": "echo", "version": "1"},
        "paths": {
            "/echo/{id}": {
                "parameters": parameters,
                "get": {"operationId": "echo", "responses": OK},
                "put": {
                    "operationId": "put",
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": {"type": "array"}}},
                    },
                    "responses": OK,
                },
            }
        },
    }
    toolkit = AAuthToolkit.from_openapi(
        document, DOCS, auth=party.approving(), http_client=party.client()
    )
    echo, put = toolkit.get_tools()
    assert set(echo.args_schema["properties"]) == {"id", "tag", "X-Trace"}
    content, _ = echo.func(config={}, id="a b/c", tag=["x", "y"], **{"X-Trace": "t-1"})
    assert json.loads(content) == {
        "id": "a b/c",
        "query": {"tag": "y"},
        "tags": ["x", "y"],
        "trace": "t-1",
        "body": None,
    }
    content, _ = put.func(config={}, id="1", body=[1, 2], **{"X-Trace": "t-2"})
    assert json.loads(content)["body"] == [1, 2]
    assert ("docs.example", "GET", "/echo/a%20b%2Fc") in party.sent


# -- malformed documents --------------------------------------------------------------------


def _malformed() -> Iterator[Any]:
    yield pytest.param(["not", "a", "document"], id="not-a-mapping")
    yield pytest.param({"swagger": "2.0", "info": {}, "paths": {}}, id="swagger-2")
    for name, change in MALFORMED.items():
        document = demo_document()
        change(document)
        yield pytest.param(document, id=name)


def _set(path: str, value: Any) -> Any:
    def change(document: dict[str, Any]) -> None:
        *parents, last = path.split("|")
        node: Any = document
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        if value is KeyError:
            del node[last]
        else:
            node[last] = value

    return change


FILES = "paths|/files"
MALFORMED = {
    "version-4": _set("openapi", "4.0.0"),
    "no-info": _set("info", KeyError),
    "no-responses-in-3.0": lambda d: (
        d.update(openapi="3.0.3"),
        d["paths"]["/whoami"]["get"].pop("responses"),
    ),
    "paths-not-an-object": _set("paths", ["/files"]),
    "broken-ref": _set("components|schemas|NewFile|properties|name|$ref", "#/nowhere"),
    "remote-ref": _set("components|schemas|Name", {"$ref": "https://schemas.example/name"}),
    "ref-to-ref-cycle": lambda d: d["components"]["schemas"].update(
        Name={"$ref": "#/components/schemas/Alias"}, Alias={"$ref": "#/components/schemas/Name"}
    ),
    "recursive-body": _set(
        "components|schemas|NewFile|properties|content",
        {"$ref": "#/components/schemas/NewFile"},
    ),
    "parameter-ref-to-a-string": _set("paths|/files/{name}|parameters|0|$ref", "#/info/title"),
    "schema-not-an-object": _set("components|schemas|Name", 12),
    "not-a-schema-type": _set("components|schemas|Name", {"type": "text"}),
    "bad-json-schema": _set("components|schemas|Name", {"type": "string", "pattern": "(["}),
    "duplicate-operation-id": _set(f"{FILES}|get|operationId", "writeFile"),
    "cookie-parameter": _set(
        f"{FILES}|get|parameters",
        [{"name": "session", "in": "cookie", "schema": {"type": "string"}}],
    ),
    "signature-header": _set(
        f"{FILES}|get|parameters",
        [{"name": "Signature-Key", "in": "header", "schema": {"type": "string"}}],
    ),
    "deep-object-style": _set(
        f"{FILES}|get|parameters",
        [{"name": "filter", "in": "query", "style": "deepObject", "schema": {"type": "object"}}],
    ),
    "form-body": _set(
        f"{FILES}|post|requestBody|content",
        {"application/x-www-form-urlencoded": {"schema": {"type": "object"}}},
    ),
    "undeclared-path-field": _set("paths|/files/{name}|parameters", []),
    "path-parameter-not-in-path": _set(
        f"{FILES}|get|parameters",
        [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}],
    ),
    "two-arguments-one-name": _set(
        "paths|/files/{name}|get|parameters",
        [{"name": "name", "in": "header", "schema": {"type": "string"}}],
    ),
    "reserved-argument": _set(
        f"{FILES}|get|parameters",
        [{"name": "config", "in": "query", "schema": {"type": "string"}}],
    ),
    "path-leaves-the-origin": lambda d: d["paths"].update(
        {"@evil.example/x": {"get": {"responses": OK}}}
    ),
    "path-not-an-identifier": lambda d: d["paths"].update(
        {"/files/{file-name}": d["paths"].pop("/files/{name}")}
    ),
    "no-operations": _set("paths", {}),
    "operation-by-reference": _set(f"{FILES}|get", {"$ref": "#/info/title"}),
}


@pytest.mark.parametrize("document", list(_malformed()))
def test_a_malformed_document_is_a_typed_error_and_sends_nothing(
    party: Party, document: Any
) -> None:
    with pytest.raises(OpenAPIError) as raised:
        AAuthToolkit.from_openapi(document, RESOURCE, auth=party.approving(), **party.clients())
    assert isinstance(raised.value, ConfigurationError) and raised.value.detail
    assert party.sent == []


def test_bad_options_are_typed_errors_before_any_fetch(party: Party) -> None:
    for bad in (
        {"base_url": "ftp://resource.example"},
        {"base_url": "https://resource.example/?v=1"},
        {"on_pending": "sometimes"},
        {"max_chars": 0},
        {"locations": {}},
        {"auth": "not an agent"},
    ):
        options: dict[str, Any] = {
            "base_url": RESOURCE,
            "auth": party.approving(),
            **party.clients(),
            **bad,
        }
        with pytest.raises(ConfigurationError):
            AAuthToolkit.from_openapi(DOCS + "/openapi.json", **options)
    assert party.sent == []


# -- any document: tools or the typed error (hypothesis) -------------------------------------

_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=8)
    | st.sampled_from(
        [
            "#/components/schemas/NewFile",
            "#/components/schemas/Name",
            "#/components/parameters/FileName",
            "#/info/title",
            "#/paths",
            "/x/{y}",
            "object",
        ]
    ),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                ["$ref", "type", "properties", "name", "in", "schema", "required", "get", "post"]
            )
            | st.text(max_size=6),
            inner,
            max_size=4,
        )
    ),
    max_leaves=12,
)


def _places(node: Any, at: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield at
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _places(value, (*at, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _places(value, (*at, index))


def _replace(document: Any, at: tuple[Any, ...], value: Any) -> Any:
    if not at:
        return value
    node = document
    for key in at[:-1]:
        node = node[key]
    node[at[-1]] = value
    return document


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), version=st.sampled_from(["3.0.3", "3.1.0"]))
def test_any_document_gives_tools_or_the_typed_error(data: st.DataObject, version: str) -> None:
    """A valid document with parts replaced by arbitrary JSON (references, schemas, ...)."""
    document = demo_document(version)
    schemas_only = data.draw(st.booleans())  # the parts the glue reads, or anywhere
    for _ in range(data.draw(st.integers(1, 3))):
        places = list(_places(document))[1:]  # not the root: a string would be a file path
        if schemas_only:
            places = [at for at in places if {"components", "parameters", "requestBody"} & {*at}]
        at = data.draw(st.sampled_from(places))
        document = _replace(document, at, data.draw(_json))
    try:
        toolkit = AAuthToolkit.from_openapi(copy.deepcopy(document), RESOURCE, auth=no_agent)
    except ConfigurationError as exc:
        assert exc.detail
        return
    for tool in toolkit.get_tools():
        assert tool.name and len(tool.name) <= 64
        json.dumps(tool.args_schema)  # a schema a model can be given


@settings(max_examples=200, deadline=None)
@given(document=_json.filter(lambda value: not isinstance(value, str)))  # a str is a path
def test_any_json_gives_tools_or_the_typed_error(document: Any) -> None:
    """Arbitrary JSON as the document, and as its paths."""
    for candidate in (
        document,
        {"openapi": "3.1.0", "info": {"title": "t", "version": "1"}, "paths": document},
    ):
        try:
            AAuthToolkit.from_openapi(candidate, RESOURCE, auth=no_agent)
        except ConfigurationError as exc:
            assert exc.detail
